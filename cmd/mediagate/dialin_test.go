package main

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
)

func TestRoomDirectory(t *testing.T) {
	d := newRoomDirectory(map[string]configs.Room{
		"board": {PIN: "4711", Number: "1001"},
		"lobby": {Open: true, Number: "1002"},
		"vip":   {}, // no number: not reachable by phone
	})
	for _, tc := range []struct {
		number   string
		id       room.ID
		needsPIN bool
		ok       bool
	}{
		{"1001", "board", true, true},
		{"1002", "lobby", false, true},
		{"1003", "", false, false},
		{"", "", false, false},
	} {
		id, needsPIN, ok := d.Lookup(tc.number)
		require.Equal(t, tc.id, id, tc.number)
		require.Equal(t, tc.needsPIN, needsPIN, tc.number)
		require.Equal(t, tc.ok, ok, tc.number)
	}
	require.True(t, d.CheckPIN("board", "4711"))
	require.False(t, d.CheckPIN("board", "4712"))
	require.False(t, d.CheckPIN("board", "47110"))
	require.False(t, d.CheckPIN("board", ""))
	require.False(t, d.CheckPIN("lobby", ""), "a room without a PIN accepts none")
	require.False(t, d.CheckPIN("nowhere", "4711"))
}

// TestDialInDispatcher: the dialin section's rules become the bridge's,
// a fixed room asking for its PIN when it has one.
func TestDialInDispatcher(t *testing.T) {
	cfg := configs.Default()
	cfg.Rooms = map[string]configs.Room{"board": {PIN: "4711"}, "lobby": {Open: true}, "hall": {}}
	cfg.Dialin.Numbers = map[string]configs.DialinNumber{
		"2000": {Room: "board"},
		"2001": {Room: "lobby", Language: "de"},
		"2002": {Room: "hall"},
		"*":    {},
	}
	d := newDispatcher(cfg)
	for number, want := range map[sip.Number]bridge.Rule{
		"2000": {Room: "board", NeedsPIN: true, Lang: bridge.English},
		"2001": {Room: "lobby", Lang: bridge.German},
		"2002": {Room: "hall", Lang: bridge.English},
		"9999": {Lang: bridge.English},
	} {
		got, err := d.Route(number)
		require.NoError(t, err)
		require.Equal(t, want, got, number.Digits())
	}
	_, err := newDispatcher(configs.Default()).Route("9999")
	require.NoError(t, err, "no rules: everything goes to the IVR")
}

// TestDialInPrompts: dialin.prompts_dir may add a language, which rules
// can then name; a language nobody provides, or a directory that does not
// exist, stops the start naming the key.
func TestDialInPrompts(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "fr"), 0o755))
	for _, id := range bridge.AllPrompts {
		b, err := os.ReadFile(filepath.Join("..", "..", "bridge", "prompts", "en", string(id)+".wav"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "fr", string(id)+".wav"), b, 0o644))
	}
	p, err := loadPrompts(configs.Dialin{Language: "fr", PromptsDir: dir,
		Numbers: map[string]configs.DialinNumber{"2000": {Language: "de"}}})
	require.NoError(t, err)
	require.True(t, p.Has("fr"))

	_, err = loadPrompts(configs.Dialin{Language: "en", PromptsDir: dir,
		Numbers: map[string]configs.DialinNumber{"2000": {Language: "it"}}})
	require.ErrorContains(t, err, `dialin.numbers.2000.language: no prompts in language "it"`)
	_, err = loadPrompts(configs.Dialin{Language: "es", PromptsDir: dir})
	require.ErrorContains(t, err, `dialin.language: no prompts in language "es"`)
	_, err = loadPrompts(configs.Dialin{Language: "en", PromptsDir: filepath.Join(dir, "missing")})
	require.ErrorIs(t, err, bridge.ErrPromptOverride)
	require.ErrorContains(t, err, "dialin.prompts_dir")
}

// TestSipTrunks: sip.trunks become package sip's trunks in name order;
// inbound trunks get the node's ID as realm unless they name one, and a
// registration trunk keeps its own (empty: any).
func TestSipTrunks(t *testing.T) {
	cfg := configs.Default()
	cfg.Node.ID = "gw-1"
	cfg.SIP.Trunks = map[string]configs.Trunk{
		"pbx":     {Username: "pbx", Password: "pw"},
		"carrier": {Register: true, Registrar: "sip:sip.carrier.example", Username: "49301", Password: "x", Expires: time.Hour},
		"lan":     {CIDRs: []string{"10.0.0.0/8", "2001:db8::/32"}, Realm: "lan.example"},
	}
	got, err := sipTrunks(cfg)
	require.NoError(t, err)
	require.Equal(t, []sip.Trunk{
		{Name: "carrier", Register: true, Registrar: "sip:sip.carrier.example", Username: "49301", Password: "x", Expires: time.Hour},
		{Name: "lan", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}, Realm: "lan.example"},
		{Name: "pbx", Username: "pbx", Password: "pw", Realm: "gw-1"},
	}, got)
}

// runSippIn runs a sipp scenario of testdata against the gateway's SIP
// port and fails the test if sipp does.
func runSippIn(t *testing.T, g *gateway, scenario string) {
	t.Helper()
	port := regexp.MustCompile(`sip_port=(\d+)`).FindStringSubmatch(g.ready)
	require.NotNil(t, port, "ready line without sip_port: %s", g.ready)
	abs, err := filepath.Abs(filepath.Join("testdata", scenario))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", "127.0.0.1:"+port[1], "-sf", abs, "-s", "1000", "-m", "1",
		"-i", "127.0.0.1", "-p", "0", "-mp", "0", "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_err")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "sipp: %s", lastLines(string(out), 30))
}

// TestDialInUnknownSource: with sip.trunks set from the environment, a
// call from outside every trunk's CIDRs gets 403 from the running binary.
func TestDialInUnknownSource(t *testing.T) {
	g := startGateway(t, nil, `MEDIAGATE_SIP_TRUNKS={"lan": {"cidrs": ["10.0.0.0/8"]}}`)
	runSippIn(t, g, "dialin_forbidden.xml")
}

// TestDialInRegistrationTrunk: `mediagate serve` with a registration
// trunk registers at sipp (challenged, verified), and on SIGTERM removes
// the binding before it exits: the registrar's scenario passes only when
// the REGISTER with Expires 0 comes.
func TestDialInRegistrationTrunk(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := c.LocalAddr().(*net.UDPAddr).Port
	require.NoError(t, c.Close())
	abs, err := filepath.Abs("testdata/registrar.xml")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	reg := exec.CommandContext(ctx, "sipp", "-sf", abs, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "1",
		"-timeout", "30s", "-timeout_error", "-recv_timeout", "15000", "-nostdin", "-trace_err")
	reg.Dir = t.TempDir()
	var out strings.Builder
	reg.Stdout, reg.Stderr = &out, &out
	require.NoError(t, reg.Start())
	regDone := make(chan error, 1)
	go func() { regDone <- reg.Wait() }()
	t.Cleanup(func() { cancel(); <-regDone })

	g := startGateway(t, nil,
		"MEDIAGATE_SIP_TRUNKS_CARRIER_REGISTER=true",
		"MEDIAGATE_SIP_TRUNKS_CARRIER_REGISTRAR=127.0.0.1:"+strconv.Itoa(port),
		"MEDIAGATE_SIP_TRUNKS_CARRIER_USERNAME=gw1",
		"MEDIAGATE_SIP_TRUNKS_CARRIER_PASSWORD=pw-for-carrier")
	waitLog(t, g, `msg="trunk registered"`)
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, g.wait(t))
	select {
	case err := <-regDone:
		regDone <- err
		require.NoError(t, err, "registrar: %s", lastLines(out.String(), 30))
	case <-time.After(20 * time.Second):
		t.Fatal("the registrar saw no un-REGISTER")
	}
	var lines []string
	for l := range g.logs {
		lines = append(lines, l)
	}
	logs := strings.Join(lines, "\n")
	require.Contains(t, logs, `msg="trunk unregistered"`)
	require.NotContains(t, logs, "pw-for-carrier")
}

// waitLog waits for a log line of the gateway containing s.
func waitLog(t *testing.T, g *gateway, s string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-g.logs:
			require.True(t, ok, "mediagate exited before logging %s", s)
			if strings.Contains(l, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no log line with %s", s)
		}
	}
}
