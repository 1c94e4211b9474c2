package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/rtc/rtctest"
)

// TestRoomsCLI drives `mediagate rooms` against a running gateway: the
// list and a room's participants, mute and unmute, lock (a join is
// refused) and unlock, and invitation links to a PIN room: the link's
// token joins without the PIN, a listen-only one cannot speak.
func TestRoomsCLI(t *testing.T) {
	key, keyEnv := newAdminKey()
	g := startGateway(t, nil, keyEnv, "MEDIAGATE_STORAGE_DIR="+t.TempDir(),
		`MEDIAGATE_ROOMS={"board": {"open": true}, "vault": {"name": "Vault", "pin": "4711"}}`)
	env := []string{"MEDIAGATE_API_KEY=" + key, "MEDIAGATE_SERVER=" + g.base}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ada, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{Tone: 440})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ada.Close() })

	out, errOut, code := cli(t, env, "rooms", "ls")
	require.Equal(t, exitOK, code, errOut)
	require.Regexp(t, `(?m)^board\s+-\s+default\s+open on \S+\s+no\s+1\s+yes$`, out)
	require.Regexp(t, `(?m)^vault\s+Vault\s+default\s+(open on \S+|closed)\s+no\s+0\s+yes$`, out)

	board := func() cliRoom {
		t.Helper()
		out, errOut, code := cli(t, env, "rooms", "get", "board", "--json")
		require.Equal(t, exitOK, code, errOut)
		var r cliRoom
		require.NoError(t, json.Unmarshal([]byte(out), &r))
		return r
	}
	r := board()
	require.Len(t, r.Participants, 1)
	p := r.Participants[0]
	require.Equal(t, "webrtc", p.Kind)
	out, errOut, code = cli(t, env, "rooms", "get", "board")
	require.Equal(t, exitOK, code, errOut)
	require.Regexp(t, `^room board: open on \S+, not locked, 1 participants\n`, out)
	require.Regexp(t, `(?m)^`+regexp.QuoteMeta(p.ID)+`\s+\S+\s+webrtc\s+(yes|no)\s+no\s+-?\d+ dBov\s+`, out)

	out, errOut, code = cli(t, env, "rooms", "mute", "board", p.ID)
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "participant "+p.ID+" of room board muted\n", out)
	require.True(t, board().Participants[0].Muted)
	_, errOut, code = cli(t, env, "rooms", "unmute", "board", p.ID)
	require.Equal(t, exitOK, code, errOut)
	require.False(t, board().Participants[0].Muted)

	out, errOut, code = cli(t, env, "rooms", "lock", "board")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "room board locked\n", out)
	require.True(t, board().Locked)
	_, err = rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{})
	var he *rtctest.HTTPError
	require.ErrorAs(t, err, &he, "a join to a locked room")
	require.Equal(t, http.StatusForbidden, he.Status, he.Body)
	require.Contains(t, he.Body, "room-locked")
	_, errOut, code = cli(t, env, "rooms", "unlock", "board")
	require.Equal(t, exitOK, code, errOut)
	bob, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{})
	require.NoError(t, err, "unlocked again")
	t.Cleanup(func() { _ = bob.Close() })

	// An invitation to the PIN room joins without the PIN.
	_, err = rtctest.Join(ctx, t, g.base, "vault", "", rtctest.Options{})
	require.Error(t, err, "the PIN room without a token")
	out, errOut, code = cli(t, env, "rooms", "invite", "vault", "--name", "Grace", "--ttl", "10m")
	require.Equal(t, exitOK, code, errOut)
	grace, err := rtctest.Join(ctx, t, g.base, "vault", inviteToken(t, g.base, "vault", out), rtctest.Options{})
	require.NoError(t, err, "the invitation's token")
	t.Cleanup(func() { _ = grace.Close() })
	out, errOut, code = cli(t, env, "rooms", "get", "vault")
	require.Equal(t, exitOK, code, errOut)
	require.Regexp(t, `^room vault \(Vault\): open on \S+, not locked, 1 participants\n`, out)
	require.Contains(t, out, "Grace")

	// A listen-only invitation listens and cannot speak.
	out, errOut, code = cli(t, env, "rooms", "invite", "vault", "--listen")
	require.Equal(t, exitOK, code, errOut)
	token := inviteToken(t, g.base, "vault", out)
	_, err = rtctest.Join(ctx, t, g.base, "vault", token, rtctest.Options{})
	require.ErrorAs(t, err, &he, "speaking with a listen-only invitation")
	require.Equal(t, http.StatusForbidden, he.Status, he.Body)
	ear, err := rtctest.Join(ctx, t, g.base, "vault", token, rtctest.Options{ListenOnly: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ear.Close() })

	requireCLIErrors(t, []cliCase{
		{env, []string{"rooms"}, exitUsage, "mediagate rooms ls"},
		{env, []string{"rooms", "frob"}, exitUsage, `unknown command "frob"`},
		{env, []string{"rooms", "get"}, exitUsage, "rooms get takes one room"},
		{env, []string{"rooms", "get", "nosuch"}, exitFailed, "404"},
		{env, []string{"rooms", "mute", "board"}, exitUsage, "takes a room and a participant"},
		{env, []string{"rooms", "mute", "board", "nobody"}, exitFailed, "404"},
		{env, []string{"rooms", "lock", "vault", "board"}, exitUsage, "rooms lock takes one room"},
		{env, []string{"rooms", "invite", "vault", "--listen", "--present"}, exitUsage, "exclude each other"},
		{env, []string{"rooms", "invite", "vault", "--ttl", "1.5s"}, exitUsage, "whole seconds"},
		{[]string{"MEDIAGATE_SERVER=" + g.base}, []string{"rooms", "ls"}, exitUsage, "MEDIAGATE_API_KEY is not set"},
	})
}

// inviteToken checks the output of `rooms invite room` (the join page's
// link on base with a token in its fragment, then its expiry) and returns
// the token.
func inviteToken(t *testing.T, base, room, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.True(t, strings.HasPrefix(lines[1], "valid until "), out)
	link, fragment, ok := strings.Cut(lines[0], "#token=")
	require.True(t, ok, out)
	require.Equal(t, base+"/r/"+room, link)
	token, err := url.QueryUnescape(fragment)
	require.NoError(t, err)
	require.NotEmpty(t, token)
	return token
}
