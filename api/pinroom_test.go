package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/internal/promtest"
)

// TestJoinTokenRoomPINLockout (issue [7]): wrong PINs from many client
// networks, each below the per-client limit, lock the room's PIN entry
// when they reach the room limit; then the right PIN from a fresh client
// is refused exactly like a wrong one (429 with the same body and
// Retry-After), another room is not affected, the lockout is logged once
// at warn with the room and no address, the metrics count it under
// scope "room", and once the lockout ends the right PIN works.
func TestJoinTokenRoomPINLockout(t *testing.T) {
	e := newJoinEnv(t)
	shared := cluster.NewMemory(cluster.WithClock(joinClock{&e.now}))
	rooms := cluster.NewLockouts(shared, "room",
		cluster.LockoutPolicy{Failures: 6, Window: 5 * time.Minute, Base: 2 * time.Minute, Max: time.Hour})
	var logs bytes.Buffer
	e.h = New(slog.New(slog.NewJSONHandler(&logs, nil)), WithJoinPage(e.mgr, e.auth),
		WithPINLockouts(shared), WithRoomPINLockouts(rooms)).Handler()

	for _, addr := range []string{"192.0.2.10:1", "192.0.2.11:1", "192.0.2.12:1"} {
		for range 2 {
			requireProblem(t, e.postToken("board", "Eve", "0000", "RemoteAddr", addr), 403, "wrong-pin")
		}
	}
	right := e.postToken("board", "Ada", "4711", "RemoteAddr", "192.0.2.50:1")
	wrong := e.postToken("board", "Ada", "0000", "RemoteAddr", "192.0.2.50:1")
	requireProblem(t, right, 429, "too-many-attempts")
	require.Equal(t, "120", right.Header().Get("Retry-After"), "the room's first lockout")
	require.Equal(t, wrong.Code, right.Code, "no oracle")
	require.Equal(t, wrong.Header(), right.Header(), "no oracle")
	require.Equal(t, wrong.Body.String(), right.Body.String(), "no oracle")
	requireToken(t, e, e.postToken("annex", "Ada", "2468", "RemoteAddr", "192.0.2.50:1"), "annex")

	var warns []map[string]any
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		if rec["level"] == "WARN" {
			warns = append(warns, rec)
		}
	}
	require.Len(t, warns, 1, "logged once: %s", logs.String())
	require.Equal(t, "join: room PIN entry locked out", warns[0]["msg"])
	require.Equal(t, "board", warns[0]["room"])
	require.NotContains(t, logs.String(), "192.0.2.")

	f := promtest.Parse(t, e.do("GET", "/metrics", "").Body)
	require.Equal(t, 6.0, f.Value(t, "mediagate_pin_failures_total", "channel", "web"))
	require.Equal(t, 2.0, f.Value(t, "mediagate_pin_lockouts_total", "channel", "web", "scope", "room"))
	require.Equal(t, 0.0, f.Value(t, "mediagate_pin_lockouts_total", "channel", "web", "scope", "source"))

	e.now = e.now.Add(2 * time.Minute)
	requireToken(t, e, e.postToken("board", "Ada", "4711", "RemoteAddr", "192.0.2.50:1"), "board")
}
