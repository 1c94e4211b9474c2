package cluster

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMemoryPublishNeverWaits fills a subscriber's buffer and checks that
// further notices are counted as dropped instead of blocking the publisher.
func TestMemoryPublishNeverWaits(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	s, err := m.Subscribe(ctx, "t", 1)
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, m.Publish(ctx, "t", []byte("x")))
	}
	require.Equal(t, uint64(2), s.Dropped())
	require.NoError(t, s.Close())
	require.NoError(t, m.Publish(ctx, "t", []byte("after close")), "publishing to a closed subscription is a no-op")
}

// TestMemoryBansStayBounded bans many one-off addresses for a moment each and
// checks that expired bans are swept, not kept forever.
func TestMemoryBansStayBounded(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	m := NewMemory(WithClock(clk))
	for i := range 10_000 {
		require.NoError(t, m.Ban(ctx, "198.51.100."+strconv.Itoa(i), clk.Now().Add(time.Second)))
		clk.Advance(time.Second)
	}
	m.mu.Lock()
	n := len(m.bans)
	m.mu.Unlock()
	require.Less(t, n, 200)
	banned, err := m.IsBanned(ctx, "198.51.100.9999")
	require.NoError(t, err)
	require.False(t, banned)
	require.NoError(t, m.Ban(ctx, "198.51.100.1", clk.Now().Add(time.Second)))
	banned, err = m.IsBanned(ctx, "198.51.100.1")
	require.NoError(t, err)
	require.True(t, banned)
}
