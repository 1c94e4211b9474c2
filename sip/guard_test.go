package sip

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is the guard's injected clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mapBans is an in-memory BanList (the seam cluster.Bans fills in the
// binary) that counts lookups.
type mapBans struct {
	now     func() time.Time
	mu      sync.Mutex
	bans    map[string]time.Time
	lookups int
	pushed  chan string // each Ban's addr, when not nil
}

func newMapBans(now func() time.Time) *mapBans {
	return &mapBans{now: now, bans: map[string]time.Time{}}
}

func (m *mapBans) Ban(_ context.Context, addr string, until time.Time) error {
	m.mu.Lock()
	m.bans[addr] = until
	m.mu.Unlock()
	if m.pushed != nil {
		m.pushed <- addr
	}
	return nil
}

func (m *mapBans) IsBanned(_ context.Context, addr string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	return m.now().Before(m.bans[addr]), nil
}

var _ BanList = (*mapBans)(nil)

func testGuard(t *testing.T, c GuardConfig, bans BanList, clk *fakeClock, exempt ...netip.Addr) *guard {
	t.Helper()
	g := newGuard(c, bans, func(a netip.Addr) bool {
		for _, e := range exempt {
			if a == e {
				return true
			}
		}
		return false
	}, clk.now, slog.New(slog.DiscardHandler))
	t.Cleanup(g.close)
	return g
}

func TestBucket(t *testing.T) {
	clk := newFakeClock()
	b := bucket{tokens: 16, last: clk.now()}
	take := func() bool { return b.take(clk.now(), 16, 2*time.Second) }
	for i := range 16 {
		require.True(t, take(), "message %d within the burst", i+1)
	}
	require.False(t, take(), "17th message in no time")
	clk.advance(124 * time.Millisecond)
	require.False(t, take(), "a token takes 125ms to refill at 16 per 2s")
	clk.advance(time.Millisecond)
	require.True(t, take())
	require.False(t, take())
	clk.advance(time.Hour)
	for range 16 {
		require.True(t, take())
	}
	require.False(t, take(), "the bucket holds at most rate tokens")

	// A steady 8 messages a second (the refill rate) is never refused.
	clk.advance(time.Hour)
	for i := range 1000 {
		clk.advance(125 * time.Millisecond)
		require.True(t, take(), "steady message %d", i)
	}
}

func TestBanDuration(t *testing.T) {
	c := DefaultGuardConfig()
	want := []time.Duration{10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 80 * time.Minute,
		160 * time.Minute, 320 * time.Minute, 640 * time.Minute, 1280 * time.Minute, 24 * time.Hour, 24 * time.Hour}
	for i, d := range want {
		require.Equal(t, d, c.banDuration(i+1), "ban %d", i+1)
	}
	require.Equal(t, 24*time.Hour, c.banDuration(1000), "no overflow")
}

// flood sends messages from a until one is refused and returns how many
// passed.
func flood(t *testing.T, g *guard, a netip.Addr) int {
	t.Helper()
	for n := 0; n < 1000; n++ {
		if !g.packet(a) {
			return n
		}
	}
	t.Fatal("never refused")
	return 0
}

func TestGuardBanEscalation(t *testing.T) {
	clk := newFakeClock()
	g := testGuard(t, DefaultGuardConfig(), nil, clk)
	a := netip.MustParseAddr("192.0.2.7")
	other := netip.MustParseAddr("192.0.2.8")

	for i, ban := range []time.Duration{10 * time.Minute, 20 * time.Minute, 40 * time.Minute} {
		burst := 16
		if i > 0 {
			burst-- // the message that showed the last ban over took a token
		}
		require.Equal(t, burst, flood(t, g, a), "round %d: the burst passes", i)
		require.True(t, g.packet(other), "another source is not affected")
		clk.advance(ban - time.Second)
		require.False(t, g.packet(a), "round %d: still banned", i)
		clk.advance(time.Second)
		require.True(t, g.packet(a), "round %d: ban of %v over", i, ban)
	}
	s := g.stats()
	require.Equal(t, uint64(3), s.Bans)
	require.Equal(t, uint64(3), s.DroppedRate)
	require.Equal(t, uint64(3), s.DroppedBanned)
	require.Zero(t, s.ActiveBans)

	// Good behaviour for BanMax after the last ban: forgotten, back to 10m.
	clk.advance(24 * time.Hour)
	g.packet(other) // sweeps
	require.Equal(t, 16, flood(t, g, a))
	require.Equal(t, 1, g.stats().ActiveBans)
	clk.advance(10 * time.Minute)
	require.True(t, g.packet(a))
}

func TestGuardExempt(t *testing.T) {
	clk := newFakeClock()
	trunk := netip.MustParseAddr("203.0.113.5")
	g := testGuard(t, DefaultGuardConfig(), nil, clk, trunk)
	for range 10000 {
		require.True(t, g.packet(trunk))
	}
	require.Zero(t, g.stats().Bans)
}

func TestGuardSharedBans(t *testing.T) {
	clk := newFakeClock()
	bans := newMapBans(clk.now)
	bans.pushed = make(chan string, 1)
	a := netip.MustParseAddr("192.0.2.7")
	g1 := testGuard(t, DefaultGuardConfig(), bans, clk)
	g2 := testGuard(t, DefaultGuardConfig(), bans, clk)

	require.True(t, g2.packet(a))
	require.False(t, g2.bannedShared(a), "not banned anywhere yet")
	require.Equal(t, 16, flood(t, g1, a))
	require.Equal(t, "192.0.2.7", <-bans.pushed, "g1 shares its ban")

	clk.advance(time.Second)
	require.True(t, g2.packet(a), "g2 has not looked yet")
	require.True(t, g2.bannedShared(a), "g2 learns the ban")
	for range 100 {
		require.False(t, g2.packet(a), "dropped unread until the next lookup")
		require.False(t, g2.bannedShared(a), "no lookup within a second")
	}
	require.Equal(t, 2, bans.lookups, "one lookup per source and second")
	require.Zero(t, g2.stats().Bans, "g2 imposed no ban of its own")
}

func TestGuardCallCaps(t *testing.T) {
	clk := newFakeClock()
	trunk := netip.MustParseAddr("203.0.113.5")
	a, b := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.8")
	g := testGuard(t, GuardConfig{MaxCallsPerSource: 2, MaxCalls: 4}, nil, clk, trunk)
	require.NoError(t, g.takeCall(a))
	require.NoError(t, g.takeCall(a))
	require.ErrorIs(t, g.takeCall(a), ErrCallLimit)
	require.Equal(t, 503, statusOf(g.takeCall(a)))
	require.NoError(t, g.takeCall(trunk))
	require.NoError(t, g.takeCall(trunk), "no per-source cap for trunks")
	require.ErrorIs(t, g.takeCall(b), ErrCallLimit, "the node is full")
	g.giveCall(a)
	require.NoError(t, g.takeCall(b))
	require.Equal(t, uint64(3), g.stats().RefusedCalls)
}

func TestGuardConfigCheck(t *testing.T) {
	ok := DefaultGuardConfig()
	require.NoError(t, ok.check())
	require.NoError(t, (*GuardConfig)(nil).check())
	for _, c := range []GuardConfig{
		{Rate: -1},
		{Rate: 16, Ban: time.Minute, BanMax: time.Hour},
		{Rate: 16, Window: time.Second, BanMax: time.Hour},
		{Rate: 16, Window: time.Second, Ban: time.Hour, BanMax: time.Minute},
		{MaxCalls: -1},
	} {
		require.ErrorIs(t, c.check(), ErrConfig, "%+v", c)
	}
}
