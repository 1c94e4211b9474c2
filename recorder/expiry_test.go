package recorder

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// warningsOf returns the IDs and leads of ws.
func warningsOf(ws []Warning) map[ID]time.Duration {
	out := map[ID]time.Duration{}
	for _, w := range ws {
		out[w.ID] = w.Lead
	}
	return out
}

// TestWarnExpiring: each lead time is warned about once, when its threshold
// is crossed; downtime over two thresholds gives the most urgent one only;
// extending starts the warnings over; held, deleted and expired recordings
// get none.
func TestWarnExpiring(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ExpiryWarnings = []time.Duration{day, 7 * day, day} })
	require.Equal(t, []time.Duration{7 * day, day}, h.r.opts.ExpiryWarnings, "longest first, once each")
	a := h.record(t, "acme", "", shortTone()) // expires at t0+30d
	b := h.record(t, "acme", "", shortTone())
	held := h.record(t, "acme", "", shortTone())
	_, err := h.r.SetLegalHold(held.ID, "dispute 7", "admin-1")
	require.NoError(t, err)

	h.clock.Set(t0.Add(23*day - time.Millisecond))
	require.Empty(t, h.r.WarnExpiring(h.clock.Now()), "8 days before expiry")

	h.clock.Set(t0.Add(23 * day))
	ws := h.r.WarnExpiring(h.clock.Now())
	require.Equal(t, map[ID]time.Duration{a.ID: 7 * day, b.ID: 7 * day}, warningsOf(ws))
	ev := h.awaitEvent(t, EventExpiring, a.ID)
	require.Equal(t, a.ExpiresAt, ev.ExpiresAt)
	require.Equal(t, 7*day, ev.Lead)
	require.Equal(t, Tenant("acme"), ev.Tenant)
	require.Equal(t, "expiring", ev.Type.String())
	require.Equal(t, a.Room, ws[0].Room)

	h.clock.Set(t0.Add(25 * day))
	require.Empty(t, h.r.WarnExpiring(h.clock.Now()), "7-day warning given already")

	// b is extended by 10 days: its warnings start over.
	_, err = h.r.Extend(b.ID, b.ExpiresAt.Add(10*day))
	require.NoError(t, err)
	h.clock.Set(t0.Add(29 * day))
	ws = h.r.WarnExpiring(h.clock.Now())
	require.Equal(t, map[ID]time.Duration{a.ID: day}, warningsOf(ws))
	h.clock.Set(t0.Add(33 * day))
	ws = h.r.WarnExpiring(h.clock.Now())
	require.Equal(t, map[ID]time.Duration{b.ID: 7 * day}, warningsOf(ws), "a expired: nothing more about it")

	// Downtime past both thresholds: one warning, the urgent one.
	c := h.record(t, "acme", "", shortTone()) // started at t0+33d
	h.clock.Set(c.ExpiresAt.Add(-time.Hour))
	ws = h.r.WarnExpiring(h.clock.Now())
	require.Equal(t, map[ID]time.Duration{c.ID: day}, warningsOf(ws))

	// A deleted recording is not warned about.
	d := h.record(t, "acme", "", shortTone())
	_, err = h.r.Delete(d.ID, ReasonAdmin, "admin-1")
	require.NoError(t, err)
	h.clock.Set(d.ExpiresAt.Add(-time.Hour))
	require.NotContains(t, warningsOf(h.r.WarnExpiring(h.clock.Now())), d.ID)

	_, err = New(Options{Dir: t.TempDir(), ReceiptKey: testKey, ExpiryWarnings: []time.Duration{0}})
	require.ErrorIs(t, err, ErrOptions)
}

// TestRunWarns: Run raises the warnings after its sweeps.
func TestRunWarns(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.SweepInterval = 10 * time.Millisecond
		o.ExpiryWarnings = []time.Duration{day}
	})
	m := h.record(t, "acme", "", shortTone())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx) }()
	h.clock.Set(m.ExpiresAt.Add(-day))
	ev := h.awaitEvent(t, EventExpiring, m.ID)
	require.Equal(t, day, ev.Lead)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestListExpiresBefore: the filter selects what must be downloaded or
// extended soon, not what is already deleted.
func TestListExpiresBefore(t *testing.T) {
	h := newHarness(t, nil)
	a := h.record(t, "acme", "", shortTone())
	h.clock.Set(t0.Add(2 * day))
	b := h.record(t, "acme", "", shortTone())
	require.Equal(t, []ID{a.ID}, ids(h.r.List(Filter{ExpiresBefore: t0.Add(31 * day)})))
	require.Equal(t, []ID{a.ID, b.ID}, ids(h.r.List(Filter{ExpiresBefore: t0.Add(33 * day)})))
	_, err := h.r.Delete(a.ID, ReasonAdmin, "admin-1")
	require.NoError(t, err)
	require.Equal(t, []ID{b.ID}, ids(h.r.List(Filter{ExpiresBefore: t0.Add(33 * day)})))
}
