package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/internal/promtest"
	"github.com/mediagate/mediagate/sip/siptest"
)

// TestLockoutPolicyDefaults: auth.pin_lockout's defaults are package
// cluster's; the room's policy is the same but for room_failures.
func TestLockoutPolicyDefaults(t *testing.T) {
	p := cluster.LockoutPolicy{Failures: cluster.DefaultLockoutFailures, Window: cluster.DefaultLockoutWindow,
		Base: cluster.DefaultLockoutBase, Max: cluster.DefaultLockoutMax}
	require.Equal(t, p, lockoutPolicy(configs.Default().Auth.PINLockout))
	p.Failures = 30
	require.Equal(t, p, roomLockoutPolicy(configs.Default().Auth.PINLockout))
}

// TestDialInPINLockout (issue [7]): with auth.pin_lockout.failures set to
// 4 (the default is 5), a caller on the carrier's trunk guessing PINs
// over two calls is locked out after four wrong PINs (three per call, the
// IVR's limit), not after three: the right PIN from that caller is then
// refused like a wrong one, while another caller on the same trunk (the
// same address: the carrier's) gets in with it. The metrics count the
// wrong PINs and the refused attempt.
func TestDialInPINLockout(t *testing.T) {
	t.Parallel()
	const failures = 4
	g := startDialIn(t, `MEDIAGATE_SIP_TRUNKS={"carrier": {"cidrs": ["127.0.0.0/8"]}}`,
		fmt.Sprintf("MEDIAGATE_AUTH_PIN_LOCKOUT_FAILURES=%d", failures))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dial := func(from string) *siptest.Call { return dialFrom(ctx, t, g, from) }
	lookup := func(call *siptest.Call) { lookupNumber(ctx, t, g, call, dialNumber) }
	tryPINs := func(call *siptest.Call, pins ...string) { keyPINs(ctx, t, g, call, pins...) }

	const guesser, legit = "+4930111111", "+4930222222"
	first := dial(guesser)
	lookup(first)
	tryPINs(first, "1111", "2222", "3333")
	require.Empty(t, g.logs.grep("PIN guessing locked out"), "locked out before auth.pin_lockout.failures")
	second := dial(guesser)
	lookup(second)
	tryPINs(second, "4444")
	g.logs.await(t, 5*time.Second, "PIN guessing locked out", "room="+demoRoom)
	tryPINs(second, demoPIN)
	g.logs.await(t, 5*time.Second, "session: PIN locked out", "room="+demoRoom)
	require.Empty(t, g.logs.grep("session: joined"), "a locked-out caller got in with the right PIN")

	other := dial(legit)
	lookup(other)
	tryPINs(other, demoPIN)
	g.logs.await(t, 10*time.Second, "session: joined", "room="+demoRoom)
	require.NoError(t, other.Err())

	// The metrics count the four wrong PINs (the right one refused while
	// locked out is not compared, so not a wrong PIN) and the one refused
	// attempt, and name neither caller.
	f := promtest.Scrape(t, g.base+"/metrics")
	require.Equal(t, float64(failures), f.Value(t, "mediagate_pin_failures_total", "channel", "sip"))
	require.Equal(t, 1.0, f.Value(t, "mediagate_pin_lockouts_total", "channel", "sip", "scope", "source"))
	require.Equal(t, 3.0, f.Value(t, "mediagate_calls_total", "outcome", "answered"))
	for _, v := range f.LabelValues() {
		require.NotContains(t, v, "4930", "a calling number in a label")
	}
}

// dialFrom calls g's IVR (dialedURI) from calling number from, offering
// PCMU and RFC 4733 events.
func dialFrom(ctx context.Context, t *testing.T, g *dialInNode, from string) *siptest.Call {
	t.Helper()
	call, err := siptest.NewPhone(t).Dial(ctx, g.sip,
		siptest.Options{Codec: siptest.PCMU, TelephoneEvent: true, User: dialedURI, From: from})
	require.NoError(t, err)
	return call
}

// lookupNumber keys conference number on call and waits for the IVR's
// lookup.
func lookupNumber(ctx context.Context, t *testing.T, g *dialInNode, call *siptest.Call, number string) {
	t.Helper()
	mark := len(g.logs.grep("lookup(" + number + ")"))
	require.NoError(t, call.Press(ctx, number+"#", siptest.RFC4733))
	awaitMore(ctx, t, g.logs, "lookup("+number+")", mark)
}

// keyPINs keys each of pins on call, waiting for the IVR's check of each.
func keyPINs(ctx context.Context, t *testing.T, g *dialInNode, call *siptest.Call, pins ...string) {
	t.Helper()
	for _, pin := range pins {
		n := len(g.logs.grep("check-pin("))
		require.NoError(t, call.Press(ctx, pin+"#", siptest.RFC4733))
		awaitMore(ctx, t, g.logs, "check-pin(", n)
	}
}

// awaitMore waits until w has more than n lines holding part.
func awaitMore(ctx context.Context, t *testing.T, w *logWatch, part string, n int) {
	t.Helper()
	for len(w.grep(part)) <= n {
		w.mu.Lock()
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("no new %q in the log: %v\n%s", part, ctx.Err(), w.text())
		}
	}
}
