package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRedisNodesShareState: two nodes with their own clients of one Redis
// see each other's recordings and PIN failures, so a guesser
// cannot spread attempts over the nodes.
func TestRedisNodesShareState(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()
	policy := LockoutPolicy{Failures: 4, Window: time.Minute, Base: time.Minute, Max: time.Hour}
	var nodes [2]*Redis
	for i := range nodes {
		nodes[i] = NewRedis(addr, WithLockoutPolicy(policy))
		t.Cleanup(func() { require.NoError(t, nodes[i].Close()) })
	}
	a, b := nodes[0], nodes[1]

	for i := range 4 {
		until, err := nodes[i%2].Fail(ctx, "pin:board:192.0.2.1")
		require.NoError(t, err)
		require.Equal(t, i == 3, !until.IsZero(), "failure %d", i+1)
	}
	for _, n := range nodes {
		until, err := n.Locked(ctx, "pin:board:192.0.2.1")
		require.NoError(t, err)
		require.WithinDuration(t, time.Now().Add(time.Minute), until, 5*time.Second)
	}
	require.NoError(t, b.Reset(ctx, "pin:board:192.0.2.1"))
	until, err := a.Locked(ctx, "pin:board:192.0.2.1")
	require.NoError(t, err)
	require.True(t, until.IsZero(), "a reset on one node unlocks on all")

	e := RecordingEntry{ID: "r1", Node: "a", Tenant: "acme", Room: "board", State: RecordingActive,
		StartedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	require.NoError(t, a.PutRecording(ctx, e))
	got, err := b.Recordings(ctx, RecordingFilter{Node: "a"})
	require.NoError(t, err)
	require.Equal(t, []RecordingEntry{e}, got)
}
