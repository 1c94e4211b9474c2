package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/rtc/rtctest"
)

// reloadRule is a configuration with open rooms alpha and beta and one
// dispatch rule: calls to 2000 go straight into room.
func reloadRule(room string) string {
	return "rooms:\n  alpha:\n    open: true\n  beta:\n    open: true\n" +
		"dialin:\n  numbers:\n    \"2000\":\n      room: " + room + "\n"
}

// reloadNode is a gateway started from a config file the test rewrites.
type reloadNode struct {
	*gateway
	logs  *logWatch
	path  string
	admin apiClient
}

// startReloadNode writes yaml to a config file and runs mediagate on it,
// with an admin key.
func startReloadNode(t *testing.T, yaml string, env ...string) *reloadNode {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mediagate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	key, keyEnv := newAdminKey()
	g := startGateway(t, []string{"serve", "--config", path}, append([]string{keyEnv}, env...)...)
	return &reloadNode{gateway: g, logs: watchLogs(g), path: path, admin: apiClient{t: t, base: g.base, key: key}}
}

// reload writes yaml over the config file, sends SIGHUP and returns the
// log line that answers it (parts name it).
func (n *reloadNode) reload(t *testing.T, yaml string, parts ...string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(n.path, []byte(yaml), 0o644))
	mark := n.logs.mark()
	require.NoError(t, n.cmd.Process.Signal(syscall.SIGHUP))
	return n.logs.awaitAfter(t, mark, 10*time.Second, parts...)
}

// participants returns the participant count of every open room, by ID,
// from the admin API.
func (n *reloadNode) participants(t *testing.T) map[string]int {
	t.Helper()
	code, body := n.admin.do(http.MethodGet, "/api/v1/rooms", "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	var rooms []struct {
		ID    string `json:"id"`
		Count int    `json:"participant_count"`
	}
	require.NoError(t, json.Unmarshal(body, &rooms))
	out := map[string]int{}
	for _, r := range rooms {
		out[r.ID] = r.Count
	}
	return out
}

// callLandsIn places a call to 2000 (sipp, 8 s) and requires that while
// it lasts the room want has one participant and the other none.
func (n *reloadNode) callLandsIn(t *testing.T, want, other string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	phone := newRTPSink(t)
	cmd := sipp(ctx, t, n.gateway, "dialin_fixed.xml", "2000", "-key", "rtp_port", strconv.Itoa(phone.port()))
	out := make(chan error, 1)
	var output []byte
	go func() {
		var err error
		output, err = cmd.CombinedOutput()
		out <- err
	}()
	var seen map[string]int
	require.Eventually(t, func() bool {
		seen = n.participants(t)
		return seen[want] == 1
	}, 6*time.Second, 100*time.Millisecond, "the call is in room %s: %v", want, seen)
	require.Zero(t, seen[other], "room %s is empty", other)
	select {
	case err := <-out:
		require.NoError(t, err, "sipp: %s", lastLines(string(output), 30))
	case <-ctx.Done():
		t.Fatal("sipp did not finish")
	}
}

// TestReloadDispatchRule: SIGHUP with a changed dispatch rule takes effect
// for the next call: 2000 led into alpha, and after the reload it leads
// into beta. The log names the keys applied.
func TestReloadDispatchRule(t *testing.T) {
	n := startReloadNode(t, reloadRule("alpha"))
	line := n.reload(t, reloadRule("beta"), "configuration reloaded")
	require.Contains(t, line, "applied=dialin.numbers.2000.room")
	n.callLandsIn(t, "beta", "alpha")
}

// TestReloadConfigError: a config error on reload keeps the old
// configuration and logs the error naming file:line and key; the next
// call still follows the old rule.
func TestReloadConfigError(t *testing.T) {
	n := startReloadNode(t, reloadRule("alpha"))
	broken := reloadRule("beta") + "      rooom: beta\n" // line 10
	line := n.reload(t, broken, "configuration not reloaded")
	require.Contains(t, line, n.path+":10: dialin.numbers.2000.rooom: unknown key")
	n.callLandsIn(t, "alpha", "beta")
}

// TestReloadRoomPINAndLogLevel: after a reload that changes room demo's
// PIN and the log level, the join page refuses the old PIN and takes the
// new one, and debug records (a participant joining) reach the log.
func TestReloadRoomPINAndLogLevel(t *testing.T) {
	conf := func(level, pin string) string {
		return "log:\n  level: " + level + "\nrooms:\n  " + demoRoom + ":\n    pin: \"" + pin + "\"\n"
	}
	n := startReloadNode(t, conf("info", "4711"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := rtctest.PageToken(ctx, n.base, demoRoom, "Ada", "4711")
	require.NoError(t, err, "the PIN at start")

	line := n.reload(t, conf("debug", "9876"), "configuration reloaded")
	require.Contains(t, line, "applied=log.level,rooms.demo.pin")
	require.NotContains(t, line, "9876", "a PIN is never logged")
	_, err = rtctest.PageToken(ctx, n.base, demoRoom, "Ada", "4711")
	var refused *rtctest.HTTPError
	require.ErrorAs(t, err, &refused, "the old PIN is refused")
	require.Equal(t, http.StatusForbidden, refused.Status)
	require.Contains(t, refused.Body, "wrong-pin")
	token, err := rtctest.PageToken(ctx, n.base, demoRoom, "Ada", "9876")
	require.NoError(t, err, "the new PIN")

	mark := n.logs.mark()
	_, err = rtctest.Join(ctx, t, n.base, demoRoom, token, rtctest.Options{Tone: toneHz})
	require.NoError(t, err)
	n.logs.awaitAfter(t, mark, 10*time.Second, "participant joined", "room="+demoRoom)
}

// TestReloadNeedsRestart: a changed key that cannot be applied is named in
// a warning, and the rest of the reload applies.
func TestReloadNeedsRestart(t *testing.T) {
	n := startReloadNode(t, reloadRule("alpha"))
	mark := n.logs.mark()
	n.reload(t, reloadRule("alpha")+"conference:\n  max_speakers: 3\n", "configuration reloaded", "restart=1")
	n.logs.awaitAfter(t, mark, time.Second, "configuration changes need a restart", "keys=conference.max_speakers")
}

// TestReloadRemovedRoom: a configured room removed by a reload while
// someone is in it stays open until that participant leaves, then closes
// (conference.empty_timeout later); a room added by it opens at once.
func TestReloadRemovedRoom(t *testing.T) {
	const rooms = "conference:\n  empty_timeout: 1s\nrooms:\n  alpha:\n    open: true\n"
	n := startReloadNode(t, rooms+"  beta:\n    open: true\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rtctest.Join(ctx, t, n.base, "beta", "", rtctest.Options{Tone: toneHz})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return n.participants(t)["beta"] == 1 }, 5*time.Second, 50*time.Millisecond)

	mark := n.logs.mark()
	n.reload(t, rooms+"  gamma:\n    open: true\n", "configuration reloaded")
	n.logs.awaitAfter(t, mark, time.Second, "room removed from the configuration; it closes once empty", "room=beta", "participants=1")
	open := n.participants(t)
	require.Contains(t, open, "gamma", "an added room opens at once")
	require.Equal(t, 1, open["beta"], "the removed room keeps its participant")

	require.NoError(t, c.Close())
	require.Eventually(t, func() bool {
		_, ok := n.participants(t)["beta"]
		return !ok
	}, 10*time.Second, 100*time.Millisecond, "the removed room closes once empty")
	require.Contains(t, n.participants(t), "alpha", "a configured room stays open while empty")
}
