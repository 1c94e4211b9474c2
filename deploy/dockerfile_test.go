// Package deploy_test checks the deployment files at the module root and
// in deploy/ (Dockerfile, systemd unit) and the operator documentation
// against the code: docker build and systemd cannot run on the test
// machines, so what they would find wrong is found here.
package deploy_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/configs"
)

// root is the module root, seen from this package's directory.
const root = ".."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int    // where it starts
	cmd  string // upper-cased keyword
	args string
}

// stage is one FROM and the instructions up to the next.
type stage struct {
	from string
	ins  []instruction
}

// parseDockerfile splits the Dockerfile into stages. It knows what this
// Dockerfile uses: comments, blank lines, backslash continuations.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var stages []stage
	var cur *instruction
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if cur == nil && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if cur == nil {
			cmd, args, _ := strings.Cut(text, " ")
			cur = &instruction{line: n, cmd: strings.ToUpper(cmd)}
			text = args
		}
		more := strings.HasSuffix(text, "\\")
		cur.args = strings.TrimSpace(cur.args + " " + strings.TrimSuffix(text, "\\"))
		if more {
			continue
		}
		if cur.cmd == "FROM" {
			stages = append(stages, stage{from: cur.args})
		} else {
			require.NotEmpty(t, stages, "line %d: %s before the first FROM", cur.line, cur.cmd)
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, *cur)
		}
		cur = nil
	}
	require.NoError(t, sc.Err())
	require.Nil(t, cur, "the Dockerfile ends inside a continued line")
	return stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// port returns the port of a host:port address.
func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	require.GreaterOrEqual(t, len(stages), 2, "multi-stage: a build stage and a runtime stage")
	build, run := stages[0], stages[len(stages)-1]
	require.Regexp(t, `^golang:1\.26-bookworm AS \w+$`, build.from)
	require.Equal(t, "debian:bookworm-slim", run.from)
	require.Len(t, run.all("COPY"), 1)
	require.Contains(t, run.all("COPY")[0].args, "--from=", "the runtime stage takes only the binary from the build stage")

	t.Run("non-root user", func(t *testing.T) {
		users := run.all("USER")
		require.NotEmpty(t, users, "the runtime stage must drop root")
		user := strings.Split(users[len(users)-1].args, ":")[0]
		require.NotContains(t, []string{"root", "0"}, user)
		require.Equal(t, "mediagate", user)
	})

	t.Run("apt without recommends", func(t *testing.T) {
		for _, st := range stages {
			for _, in := range st.all("RUN") {
				if strings.Contains(in.args, "apt-get install") {
					require.Contains(t, in.args, "--no-install-recommends", "line %d", in.line)
					require.Contains(t, in.args, "rm -rf /var/lib/apt/lists", "line %d: the package lists stay out of the layer", in.line)
				}
			}
		}
		var runtimePkgs []string
		for _, in := range run.all("RUN") {
			if _, after, ok := strings.Cut(in.args, "--no-install-recommends"); ok {
				pkgs, _, _ := strings.Cut(after, "&&")
				runtimePkgs = append(runtimePkgs, strings.Fields(pkgs)...)
			}
		}
		for _, p := range runtimePkgs {
			require.NotRegexp(t, `-dev$`, p, "the runtime stage needs no development package")
		}
		// The libraries the binary links against (ldd of a build on Debian 12).
		for _, lib := range []string{"libopus0", "libopusfile0", "libvo-aacenc0", "libspeexdsp1"} {
			require.Contains(t, runtimePkgs, lib)
		}
	})

	t.Run("expose covers the default ports", func(t *testing.T) {
		d := configs.Default()
		exposed := exposedPorts(t, run)
		want := []string{
			fmt.Sprintf("%d/tcp", port(t, d.HTTP.Listen)),
			fmt.Sprintf("%d/udp", port(t, d.SIP.Listen)),
			fmt.Sprintf("%d/tcp", port(t, d.SIP.Listen)),
			fmt.Sprintf("%d/tcp", port(t, d.SIP.TLS.Listen)),
			fmt.Sprintf("%d/udp", d.WebRTC.UDPPort),
			fmt.Sprintf("%d-%d/udp", d.RTP.PortMin, d.RTP.PortMax),
		}
		require.ElementsMatch(t, want, exposed)
	})

	t.Run("no secrets", func(t *testing.T) {
		secret := regexp.MustCompile(`(?i)(KEY|SECRET|PASSWORD|TOKEN|PIN|ADMIN_KEYS)\b`)
		for _, st := range stages {
			for _, cmd := range []string{"ENV", "ARG", "LABEL"} {
				for _, in := range st.all(cmd) {
					name, _, _ := strings.Cut(in.args, "=")
					require.NotRegexp(t, secret, name, "line %d: %s %s would bake a secret into the image", in.line, cmd, in.args)
				}
			}
		}
	})

	t.Run("storage volume", func(t *testing.T) {
		envs := run.all("ENV")
		require.Len(t, envs, 1)
		require.Equal(t, "MEDIAGATE_STORAGE_DIR=/var/lib/mediagate", envs[0].args)
		vols := run.all("VOLUME")
		require.Len(t, vols, 1)
		require.Contains(t, vols[0].args, `"/var/lib/mediagate"`)
	})

	t.Run("entrypoint", func(t *testing.T) {
		eps := run.all("ENTRYPOINT")
		require.Len(t, eps, 1)
		require.Equal(t, `["/usr/local/bin/mediagate", "serve"]`, eps[0].args)
		stops := run.all("STOPSIGNAL")
		require.Len(t, stops, 1)
		require.Equal(t, "SIGTERM", stops[0].args, "SIGTERM drains; SIGINT would stop at once")
	})
}

// exposedPorts lists the EXPOSE arguments of s, "PORT/proto" or
// "MIN-MAX/proto", with the protocol always written out.
func exposedPorts(t *testing.T, s stage) []string {
	t.Helper()
	var out []string
	for _, in := range s.all("EXPOSE") {
		for _, p := range strings.Fields(in.args) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			out = append(out, p)
		}
	}
	return out
}

// TestDockerHealthcheck runs the image's health check command against a
// real server: it must pass while /healthz answers and fail when nothing
// listens.
func TestDockerHealthcheck(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	hcs := stages[len(stages)-1].all("HEALTHCHECK")
	require.Len(t, hcs, 1)
	_, cmdJSON, ok := strings.Cut(hcs[0].args, "CMD ")
	require.True(t, ok)
	m := regexp.MustCompile(`^\["bash", "-c", "(.*)"\]$`).FindStringSubmatch(cmdJSON)
	require.NotNil(t, m, "HEALTHCHECK CMD [\"bash\", \"-c\", \"...\"]")
	script := strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(m[1])
	defPort := port(t, configs.Default().HTTP.Listen)
	target := fmt.Sprintf("/dev/tcp/127.0.0.1/%d ", defPort)
	require.Contains(t, script, target, "the health check asks the default http.listen port")
	path := regexp.MustCompile(`GET (/\S+) HTTP`).FindStringSubmatch(script)
	require.NotNil(t, path)
	require.Equal(t, "/healthz", path[1])

	srv := api.New(slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-done)
	})
	check := func(p int) error {
		s := strings.Replace(script, target, fmt.Sprintf("/dev/tcp/127.0.0.1/%d ", p), 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, "bash", "-c", s).Run()
	}
	require.NoError(t, check(ln.Addr().(*net.TCPAddr).Port), "healthy server")

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedPort := closed.Addr().(*net.TCPAddr).Port
	require.NoError(t, closed.Close())
	require.Error(t, check(closedPort), "nothing listening")
}

func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	var patterns []string
	for l := range strings.Lines(string(data)) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.TrimSuffix(l, "/"))
		}
	}
	for _, p := range []string{".git", "bin", "data"} {
		require.Contains(t, patterns, p)
	}
	// What go build needs must reach the build context: go.mod, go.sum and
	// every directory with an embedded file.
	for _, keep := range []string{"go.mod", "go.sum", "configs", "web", "bridge", "stream", "cmd"} {
		require.False(t, slices.Contains(patterns, keep), "%s is needed by the build", keep)
	}
}
