package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
)

// unit is a systemd unit file: section → key → values in order (a key
// may repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = strings.Trim(l, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			require.True(t, ok, "line %d: %q is no key=value", n, l)
			require.NotEmpty(t, section, "line %d: key before the first section", n)
			u[section][k] = append(u[section][k], v)
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// one returns the single value of key in section.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	require.Len(t, vs, 1, "[%s] %s", section, key)
	return vs[0]
}

func TestSystemdUnit(t *testing.T) {
	path := filepath.Join(root, "deploy", "mediagate.service")
	u := parseUnit(t, path)
	svc := func(key string) string { return u.one(t, "Service", key) }

	for key, want := range map[string]string{
		"NoNewPrivileges":          "yes",
		"ProtectSystem":            "strict",
		"ProtectHome":              "yes",
		"PrivateTmp":               "yes",
		"User":                     "mediagate",
		"StateDirectory":           "mediagate",
		"CapabilityBoundingSet":    "",
		"AmbientCapabilities":      "",
		"ExecReload":               "/bin/kill -HUP $MAINPID",
		"KillSignal":               "SIGTERM",
		"Restart":                  "on-failure",
		"RestartPreventExitStatus": "2",
		"Environment":              "MEDIAGATE_STORAGE_DIR=/var/lib/mediagate",
	} {
		require.Equal(t, want, svc(key), "[Service] %s", key)
	}
	require.Equal(t, "/usr/local/bin/mediagate serve --config /etc/mediagate/mediagate.yaml", svc("ExecStart"))
	require.Equal(t, "multi-user.target", u.one(t, "Install", "WantedBy"))

	t.Run("no capability needed for the default ports", func(t *testing.T) {
		d := configs.Default()
		for _, addr := range []string{d.HTTP.Listen, d.SIP.Listen, d.SIP.TLS.Listen} {
			require.GreaterOrEqual(t, port(t, addr), 1024, "%s needs CAP_NET_BIND_SERVICE", addr)
		}
		require.GreaterOrEqual(t, d.WebRTC.UDPPort, 1024)
		require.GreaterOrEqual(t, d.RTP.PortMin, 1024)
	})

	t.Run("address families", func(t *testing.T) {
		fams := strings.Fields(svc("RestrictAddressFamilies"))
		require.Subset(t, fams, []string{"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"})
		require.Len(t, fams, 4, "nothing else")
	})

	t.Run("stop outlasts the drain", func(t *testing.T) {
		stop, err := time.ParseDuration(svc("TimeoutStopSec"))
		require.NoError(t, err)
		require.Greater(t, stop, configs.Default().Node.DrainTimeout+5*time.Second,
			"systemd would kill calls node.drain_timeout lets finish")
	})

	t.Run("open files", func(t *testing.T) {
		require.Equal(t, "65536", svc("LimitNOFILE"))
	})
}

// TestSystemdAnalyzeVerify has systemd itself check the unit (unknown keys,
// bad values), where systemd-analyze is installed.
func TestSystemdAnalyzeVerify(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "mediagate.service"))
	require.NoError(t, err)
	// verify wants ExecStart to exist; the binary is not installed here.
	data = []byte(strings.ReplaceAll(string(data), "/usr/local/bin/mediagate", "/bin/true"))
	dir := t.TempDir()
	file := filepath.Join(dir, "mediagate.service")
	require.NoError(t, os.WriteFile(file, data, 0o644))
	out, err := exec.Command(bin, "verify", file).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify warns")
}
