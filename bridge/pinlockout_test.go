package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
	"github.com/mediagate/mediagate/sip/siptest"
)

// TestPINLockoutKey: callers are told apart by address (IPv4 /32, IPv6
// /64) unless they come from a trunk, where the carrier's address is
// everyone's and the calling number (hashed: no number in the shared
// state) tells them apart.
func TestPINLockoutKey(t *testing.T) {
	src := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	a := pinLockoutKey("board", sip.CallInfo{Source: src("192.0.2.7:5060"), Caller: "+4930111"})
	require.Equal(t, "pin-ivr:board:192.0.2.7/32", a)
	require.Equal(t, a, pinLockoutKey("board", sip.CallInfo{Source: src("[::ffff:192.0.2.7]:5062")}))
	require.NotEqual(t, a, pinLockoutKey("annex", sip.CallInfo{Source: src("192.0.2.7:5060")}))
	require.Equal(t, "pin-ivr:board:2001:db8:1:2::/64",
		pinLockoutKey("board", sip.CallInfo{Source: src("[2001:db8:1:2:aaaa::1]:5060")}))

	t1 := pinLockoutKey("board", sip.CallInfo{Source: src("203.0.113.5:5060"), Trunk: "carrier", Caller: "+4930111"})
	t2 := pinLockoutKey("board", sip.CallInfo{Source: src("203.0.113.5:5060"), Trunk: "carrier", Caller: "+4930222"})
	require.NotEqual(t, t1, t2, "two callers of one carrier")
	require.NotContains(t, t1, "4930111")
	require.Equal(t, t1, pinLockoutKey("board", sip.CallInfo{Source: src("203.0.113.9:5060"), Trunk: "carrier", Caller: "+4930111"}))
}

// fakeLockouts are PINLockouts built from a limit: the limit-th failure of
// a key locks it for a minute. They record the failures and resets.
type fakeLockouts struct {
	mu     sync.Mutex
	limit  int
	fails  map[string]int
	until  map[string]time.Time
	failed []string
	reset  []string
}

func newFakeLockouts(limit int) *fakeLockouts {
	return &fakeLockouts{limit: limit, fails: map[string]int{}, until: map[string]time.Time{}}
}

func (f *fakeLockouts) Fail(_ context.Context, key string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = append(f.failed, key)
	if u := f.until[key]; !u.IsZero() {
		return u, nil
	}
	f.fails[key]++
	if f.fails[key] >= f.limit {
		f.until[key] = time.Now().Add(time.Minute)
	}
	return f.until[key], nil
}

func (f *fakeLockouts) Locked(_ context.Context, key string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.until[key], nil
}

func (f *fakeLockouts) Reset(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset = append(f.reset, key)
	delete(f.fails, key)
	delete(f.until, key)
	return nil
}

// calls returns the keys failed and reset so far.
func (f *fakeLockouts) calls() (failed, reset []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.failed), slices.Clone(f.reset)
}

// pinSession is a session of a call from calling number +4930111222 with
// the directory of room demo (PIN 4711) and the given lockouts; its log
// lines (debug and up, JSON) go to the returned buffer. The test calls
// checkPIN on its own goroutine; the session does not run.
func pinSession(t *testing.T, src, rl PINLockouts) (*session, *bytes.Buffer) {
	t.Helper()
	prompts, err := Load("")
	require.NoError(t, err)
	c, _ := answeredCallWith(t, siptest.Options{From: "+4930111222"})
	logs := &bytes.Buffer{}
	s, err := newSession(c, SessionDeps{Prompts: prompts, Lang: English, Rooms: room.NewManager(),
		Directory: fakeDirectory{}, PINLockouts: src, RoomPINLockouts: rl,
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	t.Cleanup(s.close)
	return s, logs
}

// TestCheckPINRoomLockout (issue [7]): a wrong PIN counts for the caller
// and for the room; a right PIN clears the caller's count only; the
// room's lockout is logged once at warn with the room and nothing of the
// caller; while the room is locked every PIN, the right one too, is
// refused and nothing is counted.
func TestCheckPINRoomLockout(t *testing.T) {
	t.Run("wrong PINs count for caller and room, a right one clears the caller's only", func(t *testing.T) {
		src, rl := newFakeLockouts(100), newFakeLockouts(100)
		s, _ := pinSession(t, src, rl)
		key := pinLockoutKey("demo", s.call.Info())
		require.False(t, s.checkPIN("demo", "9999"))
		require.True(t, s.checkPIN("demo", "4711"))
		failed, reset := src.calls()
		require.Equal(t, []string{key}, failed)
		require.Equal(t, []string{key}, reset)
		failed, reset = rl.calls()
		require.Equal(t, []string{"demo"}, failed)
		require.Empty(t, reset, "a right PIN leaves the room's count")
	})

	t.Run("the room locks, logged once, and then refuses the right PIN", func(t *testing.T) {
		src, rl := newFakeLockouts(100), newFakeLockouts(3)
		s, logs := pinSession(t, src, rl)
		for range 3 {
			require.False(t, s.checkPIN("demo", "9999"))
		}
		require.False(t, s.checkPIN("demo", "4711"), "the right PIN while the room is locked")
		require.False(t, s.checkPIN("demo", "9999"))
		failed, reset := rl.calls()
		require.Len(t, failed, 3, "nothing counted while locked")
		require.Empty(t, reset)
		failed, reset = src.calls()
		require.Len(t, failed, 3, "the caller's count neither")
		require.Empty(t, reset, "the refused right PIN clears nothing")

		var warns []map[string]any
		for line := range strings.Lines(logs.String()) {
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &rec))
			if rec["level"] == "WARN" {
				warns = append(warns, rec)
			}
		}
		require.Len(t, warns, 1, "logged once: %s", logs)
		require.Equal(t, "session: room PIN entry locked out", warns[0]["msg"])
		require.Equal(t, "demo", warns[0]["room"])
		require.NotContains(t, logs.String(), "4930111222")
		require.NotContains(t, logs.String(), "127.0.0.1")
		require.NotContains(t, logs.String(), "4711")
	})

	t.Run("another room is not locked", func(t *testing.T) {
		rl := newFakeLockouts(1)
		_, err := rl.Fail(context.Background(), "annex")
		require.NoError(t, err)
		s, _ := pinSession(t, nil, rl)
		require.True(t, s.checkPIN("demo", "4711"))
	})
}
