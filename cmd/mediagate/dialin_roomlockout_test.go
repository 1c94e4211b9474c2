package main

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/internal/promtest"
	"github.com/mediagate/mediagate/sip/siptest"
)

// TestDialInRoomPINLockout (issue [7]): guessing spread over calling
// numbers on the carrier's trunk, each below auth.pin_lockout.failures,
// locks room demo's PIN entry once the room has
// auth.pin_lockout.room_failures wrong PINs: then the right PIN from a
// fresh number is refused like a wrong one, while room annex is not
// affected; the lockout is logged once at warn with the room and no
// number; once the lockout (5 s here) has passed, the right PIN gets in.
// The callers who try the right PINs wait at the PIN prompt before the
// room locks, so they key them well within the lockout.
func TestDialInRoomPINLockout(t *testing.T) {
	t.Parallel()
	const roomFailures, perCaller = 6, 2
	g := startDialIn(t, `MEDIAGATE_SIP_TRUNKS={"carrier": {"cidrs": ["127.0.0.0/8"]}}`,
		fmt.Sprintf(`MEDIAGATE_ROOMS={%q: {"pin": %q, "number": %q}, "annex": {"pin": "2468", "number": "1002"}}`,
			demoRoom, demoPIN, dialNumber),
		fmt.Sprintf("MEDIAGATE_AUTH_PIN_LOCKOUT_ROOM_FAILURES=%d", roomFailures),
		"MEDIAGATE_AUTH_PIN_LOCKOUT_LOCKOUT=5s", "MEDIAGATE_AUTH_PIN_LOCKOUT_LOCKOUT_MAX=5s")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	// Three guessers, two wrong PINs each: below the per-caller limit (5),
	// at the room's. Before the last wrong PIN, two callers dial in and
	// wait at the PIN prompt (well within its 10 s first-digit timeout),
	// one for room demo, one for room annex.
	var fresh, annex *siptest.Call
	for i := range roomFailures / perCaller {
		call := dialFrom(ctx, t, g, fmt.Sprintf("+49301000%04d", i))
		lookupNumber(ctx, t, g, call, dialNumber)
		keyPINs(ctx, t, g, call, "0000")
		if i == roomFailures/perCaller-1 {
			fresh = dialFrom(ctx, t, g, "+4930555555")
			lookupNumber(ctx, t, g, fresh, dialNumber)
			annex = dialFrom(ctx, t, g, "+4930666666")
			lookupNumber(ctx, t, g, annex, "1002")
			require.Empty(t, g.logs.grep("room PIN entry locked out"), "locked before room_failures")
		}
		keyPINs(ctx, t, g, call, "1111")
	}
	locked := g.logs.await(t, 10*time.Second, "level=WARN", "session: room PIN entry locked out", "room="+demoRoom)
	require.Empty(t, g.logs.grep("PIN guessing locked out"), "no caller reached its own limit")

	mark := g.logs.mark()
	keyPINs(ctx, t, g, fresh, demoPIN)
	g.logs.awaitAfter(t, mark, 5*time.Second, "session: room PIN entry locked", "room="+demoRoom)
	require.Empty(t, g.logs.grep("session: joined"), "the right PIN got in while the room was locked")

	keyPINs(ctx, t, g, annex, "2468")
	g.logs.await(t, 10*time.Second, "session: joined", "room=annex")

	require.Len(t, g.logs.grep("room PIN entry locked out"), 1, "logged once per lockout")
	require.NotContains(t, locked, "4930", "a calling number in the lockout's line")
	require.NotContains(t, locked, "127.0.0.1", "an address in the lockout's line")

	// Await the lockout's end (the log's until is to the second), then
	// the right PIN gets in.
	m := regexp.MustCompile(`until=(\S+)`).FindStringSubmatch(locked)
	require.NotNil(t, m, locked)
	until, err := time.Parse(time.RFC3339, m[1])
	require.NoError(t, err)
	select {
	case <-time.After(time.Until(until.Add(time.Second))):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	mark = g.logs.mark()
	keyPINs(ctx, t, g, fresh, demoPIN)
	g.logs.awaitAfter(t, mark, 10*time.Second, "session: joined", "room="+demoRoom)

	f := promtest.Scrape(t, g.base+"/metrics")
	require.Equal(t, float64(roomFailures), f.Value(t, "mediagate_pin_failures_total", "channel", "sip"))
	require.Equal(t, 1.0, f.Value(t, "mediagate_pin_lockouts_total", "channel", "sip", "scope", "room"))
	require.Zero(t, f.Value(t, "mediagate_pin_lockouts_total", "channel", "sip", "scope", "source"))
}
