package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/rtc"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// binary is the mediagate binary built once for the tests that run it as a
// real process, the way an operator does.
var binary string

// netnsEnv marks the test binary that runs inside its own network
// namespace (see runInNetns).
const netnsEnv = "MEDIAGATE_TEST_NETNS"

func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" {
		os.Exit(runInNetns())
	}
	dir, err := os.MkdirTemp("", "mediagate-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "mediagate")
	build := exec.Command("go", "build", "-race", "-ldflags", "-X main.version=test-1", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("building mediagate: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		code = checkLeaks()
	}
	os.Exit(code)
}

// runInNetns runs this test binary again inside a new network namespace
// whose only interface is loopback, and returns its exit code. Chromium
// offers WebRTC candidates on the machine's external addresses unless it
// has none (TESTING.md, "Loopback traps"), and mediagate, started by the
// tests, must share Chromium's namespace; so every test of the package
// runs in there, and none of them can reach or disturb the network. It
// needs root (or unprivileged user namespaces, then mapped to root); it
// fails rather than skips without, as CI has it.
func runInNetns() int {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: cmd/mediagate tests run in their own network namespace and need unshare (util-linux):", err)
		return 1
	}
	ns := []string{"--net"}
	if os.Geteuid() != 0 {
		ns = append(ns, "--map-root-user")
	}
	const loUp = `ip link set lo up && exec "$0" "$@"`
	if out, err := exec.Command(unshare, append(ns, "--", "sh", "-c", loUp, "true")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cmd/mediagate tests run in their own network namespace (unshare %s -- ip link set lo up), "+
			"which needs root or unprivileged user namespaces: %v\n%s", strings.Join(ns, " "), err, out)
		return 1
	}
	cmd := exec.Command(unshare, append(append(ns, "--", "sh", "-c", loUp), os.Args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	// unshare and sh exec the test binary in the same process, which so
	// dies with this one (go test's timeout kills this one).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "FAIL: the tests in the network namespace:", err)
		return 1
	}
}

// checkLeaks fails the package when a test left goroutines behind (the
// pion clients, chromedp).
func checkLeaks() int {
	if err := goleak.Find(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: goroutines left after the tests:", err)
		return 1
	}
	return 0
}

// gateway is a running mediagate process.
type gateway struct {
	cmd   *exec.Cmd
	base  string        // http://127.0.0.1:PORT (https:// when https=true)
	ready string        // the ready log line
	logs  chan string   // every log line after the ready line
	done  chan struct{} // closed when the process has exited
}

// startGateway runs mediagate with args and env (added to a clean environment)
// in a temporary working directory and waits for its ready line.
func startGateway(t *testing.T, args []string, env ...string) *gateway {
	t.Helper()
	return startGatewayIn(t, t.TempDir(), args, env...)
}

// startGatewayIn is startGateway in working directory dir, where the
// default storage.dir (./data) is, so a second gateway can find what the
// first left.
func startGatewayIn(t *testing.T, dir string, args []string, env ...string) *gateway {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	return startCommand(t, cmd, env...)
}

// startGatewayBinary is startGateway with another build of mediagate (the
// benchmarks' one without -race).
func startGatewayBinary(t testing.TB, bin string, args []string, env ...string) *gateway {
	t.Helper()
	return startCommand(t, exec.Command(bin, args...), env...)
}

// startCommand is startGateway for a command that execs mediagate in the
// end (a wrapper that sets up a namespace first, say): the process the
// test kills is mediagate's. It runs in cmd.Dir, a temporary directory
// when that is empty.
func startCommand(t testing.TB, cmd *exec.Cmd, env ...string) *gateway {
	t.Helper()
	if cmd.Dir == "" {
		cmd.Dir = t.TempDir()
	}
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + cmd.Dir,
		"MEDIAGATE_HTTP_LISTEN=127.0.0.1:0", "MEDIAGATE_WEBRTC_UDP_PORT=0", "MEDIAGATE_SIP_LISTEN=127.0.0.1:0"}, env...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	n := &gateway{cmd: cmd, logs: make(chan string, 100), done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "mediagate ready") {
				ready <- line
				continue
			}
			select {
			case n.logs <- line:
			default:
			}
		}
		close(n.logs)
	}()
	go func() { _ = cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-n.done
	})
	select {
	case line := <-ready:
		m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)
		require.NotNil(t, m, "ready line without addr: %s", line)
		n.base = "http://" + m[1]
		if strings.Contains(line, " https=true") {
			n.base = "https://" + m[1]
		}
		n.ready = line
	case <-n.done:
		var lines []string
		for l := range n.logs {
			lines = append(lines, l)
		}
		t.Fatalf("mediagate exited before it was ready: %v\n%s", cmd.ProcessState, strings.Join(lines, "\n"))
	case <-time.After(30 * time.Second):
		t.Fatal("mediagate not ready after 30 s")
	}
	return n
}

func (n *gateway) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-n.done:
		return n.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatal("mediagate did not exit within 30 s")
		return -1
	}
}

func TestServeDefaultsHealthzAndSIGTERM(t *testing.T) {
	n := startGateway(t, nil)
	resp, err := http.Get(n.base + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `"version":"test-1"`)

	resp, err = http.Get(n.base + "/metrics")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `mediagate_build_info{version="test-1"} 1`)

	require.NoError(t, n.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, n.wait(t))
	var lines []string
	for l := range n.logs {
		lines = append(lines, l)
	}
	require.Contains(t, strings.Join(lines, "\n"), "stopped cleanly")
}

// TestOpusDefaults: the configuration's defaults for webrtc.opus_* are
// the ones rtc documents and measured, and every application the
// configuration takes is one media knows.
func TestOpusDefaults(t *testing.T) {
	w := configs.Default().WebRTC
	require.Equal(t, rtc.DefaultOpusComplexity, w.OpusComplexity)
	app, err := media.ParseOpusApplication(w.OpusApplication)
	require.NoError(t, err)
	require.Equal(t, media.OpusVoIP, app)
	for _, name := range []string{"voip", "audio", "lowdelay"} {
		c := configs.Default()
		c.WebRTC.OpusApplication = name
		require.NoError(t, c.Validate(), name)
		_, err := media.ParseOpusApplication(name)
		require.NoError(t, err, name)
	}
}

func TestSIGINTStops(t *testing.T) {
	n := startGateway(t, nil)
	require.NoError(t, n.cmd.Process.Signal(syscall.SIGINT))
	require.Equal(t, 0, n.wait(t))
}

func TestBadConfigRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		env        []string
		want       []string
	}{
		{"unknown key", "http:\n  listen: \":0\"\n  listn: x\n", nil,
			[]string{"bad.yaml:3", "http.listn", "unknown"}},
		{"bad value", "log:\n  level: loud\n", nil,
			[]string{"bad.yaml:2", "log.level"}},
		{"bad env", "", []string{"MEDIAGATE_RTP_PORT_MIN=abc"},
			[]string{"MEDIAGATE_RTP_PORT_MIN"}},
		{"dispatch rule to an unknown room", "dialin:\n  numbers:\n    \"2000\":\n      room: board\n", nil,
			[]string{"bad.yaml:4", "dialin.numbers.2000.room"}},
		{"bad trunk", "sip:\n  trunks:\n    lan:\n      cidrs: [10.0.0.1/8]\n", nil,
			[]string{"bad.yaml:4", "sip.trunks.lan.cidrs[0]", "host bits"}},
		{"bad room tenant", "rooms:\n  board:\n    tenant: \"acme corp\"\n", nil,
			[]string{"bad.yaml:3", "rooms.board.tenant", `"acme corp" must be 1 to 64 characters`}},
		{"bad trunk env", "", []string{`MEDIAGATE_SIP_TRUNKS={"pbx": {"username": "pbx", "password": "pw-Secret-42", "register": true}}`},
			[]string{"MEDIAGATE_SIP_TRUNKS", "sip.trunks.pbx.register: needs sip.trunks.pbx.registrar"}},
		{"tls cert without key", "sip:\n  tls:\n    cert: /etc/mediagate/sip.pem\n", nil,
			[]string{"bad.yaml:3", "sip.tls.cert", "sip.tls.key"}},
		{"min-se below rfc 4028", "", []string{"MEDIAGATE_SIP_MIN_SE=30s"},
			[]string{"MEDIAGATE_SIP_MIN_SE", "below 90s"}},
		{"recording format", "recording:\n  format: mp3\n", nil,
			[]string{"bad.yaml:2", "recording.format", `"mp3" is not one of opus, m4a`}},
		{"recording policy", "recording:\n  room_policies:\n    board: legal\n", nil,
			[]string{"bad.yaml:3", "recording.room_policies.board", `"legal" is no policy`}},
		{"short receipt key", "", []string{"MEDIAGATE_RECORDING_RECEIPT_KEY=pw-Secret-42"},
			[]string{"MEDIAGATE_RECORDING_RECEIPT_KEY", "must be at least 32 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o644))
			// A config that is wrongly accepted starts a server: the
			// deadline kills it instead of hanging the test.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "serve", "--config", path)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, ctx.Err(), "mediagate accepted the configuration and kept running: %s", out)
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "output: %s", out)
			require.Equal(t, exitUsage, ee.ExitCode())
			for _, w := range tc.want {
				require.Contains(t, string(out), w)
			}
			require.NotContains(t, string(out), "pw-Secret-42", "a password or key is never printed")
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	out, err := exec.Command(binary, "--config", "/nonexistent/mediagate.yaml").CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, exitUsage, ee.ExitCode())
	require.Contains(t, string(out), "/nonexistent/mediagate.yaml")
}

func TestVersionAndUsage(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		require.NoError(t, err)
		require.Equal(t, "mediagate test-1\n", string(out))
	}
	out, err := exec.Command(binary, "frobnicate").CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, exitUsage, ee.ExitCode())
	require.Contains(t, string(out), `unknown command "frobnicate"`)
}

// TestDialIn: `mediagate serve` answers a SIP call on sip.listen (sipp as
// the phone: 100, 200 with a PCMU answer, BYE from the caller answered with
// 200). What the caller hears and how it reaches its room is tested in
// bridge (TestSessionJoinsRoom).
func TestDialIn(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatal("sipp not installed: run scripts/bootstrap")
	}
	g := startGateway(t, nil)
	port := regexp.MustCompile(`sip_port=(\d+)`).FindStringSubmatch(g.ready)
	require.NotNil(t, port, "ready line without sip_port: %s", g.ready)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", "127.0.0.1:"+port[1],
		"-sf", "testdata/dialin.xml", "-s", "1000", "-m", "1",
		"-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", "0", "-mp", "0",
		"-timeout", "20s", "-timeout_error", "-nostdin", "-trace_err",
		"-max_recv_loops", "1000")
	cmd.Dir = t.TempDir()
	abs, err := filepath.Abs("testdata/dialin.xml")
	require.NoError(t, err)
	cmd.Args[3] = abs
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "sipp: %s", lastLines(string(out), 30))
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
