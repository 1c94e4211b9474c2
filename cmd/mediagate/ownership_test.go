package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/room"
)

// manualClock is the memory cluster's clock, moved by the test.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// flakyState is the memory cluster state with an off switch: while down,
// every call fails with cluster.ErrBackend, as an unreachable Redis does.
type flakyState struct {
	*cluster.Memory
	down atomic.Bool
}

func (f *flakyState) err(op string) error {
	if f.down.Load() {
		return fmt.Errorf("%s: %w", op, cluster.ErrBackend)
	}
	return nil
}

func (f *flakyState) Acquire(ctx context.Context, r cluster.RoomID, n cluster.NodeID) (cluster.Lease, error) {
	if err := f.err("acquire"); err != nil {
		return cluster.Lease{}, err
	}
	return f.Memory.Acquire(ctx, r, n)
}

func (f *flakyState) Renew(ctx context.Context, l cluster.Lease) error {
	if err := f.err("renew"); err != nil {
		return err
	}
	return f.Memory.Renew(ctx, l)
}

func (f *flakyState) Owner(ctx context.Context, r cluster.RoomID) (cluster.Lease, error) {
	if err := f.err("owner"); err != nil {
		return cluster.Lease{}, err
	}
	return f.Memory.Owner(ctx, r)
}

func (f *flakyState) Nodes(ctx context.Context) ([]cluster.NodeInfo, error) {
	if err := f.err("nodes"); err != nil {
		return nil, err
	}
	return f.Memory.Nodes(ctx)
}

func newTestOwnership(t *testing.T, degraded bool) (*ownership, *flakyState, *manualClock) {
	t.Helper()
	clk := &manualClock{now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	st := &flakyState{Memory: cluster.NewMemory(cluster.WithClock(clk))}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return newOwnership(log, "a", st, cluster.DefaultLeaseTTL, degraded), st, clk
}

// TestOwnershipGate: the first admission of a room takes its lease, a
// second one shares it, the lease goes with the last release; a room
// another live node holds is a MovedError with that node's URL; one whose
// holder is not live (dead, lease not yet expired) is unavailable.
func TestOwnershipGate(t *testing.T) {
	ctx := context.Background()
	o, st, _ := newTestOwnership(t, false)
	rel1, err := o.gate("demo")
	require.NoError(t, err)
	rel2, err := o.gate("demo")
	require.NoError(t, err)
	epoch, ok := o.Epoch("demo")
	require.True(t, ok)
	require.Positive(t, epoch)
	rel1()
	rel1() // a second call of one release does nothing
	l, err := st.Owner(ctx, "demo")
	require.NoError(t, err)
	require.Equal(t, cluster.NodeID("a"), l.Owner)
	rel2()
	_, err = st.Owner(ctx, "demo")
	require.ErrorIs(t, err, cluster.ErrNoOwner)
	_, ok = o.Epoch("demo")
	require.False(t, ok)

	_, err = st.Acquire(ctx, "board", "b")
	require.NoError(t, err)
	_, err = o.gate("board")
	require.ErrorIs(t, err, room.ErrUnavailable, "b has sent no heartbeat: not live")
	require.NoError(t, st.Heartbeat(ctx, cluster.NodeInfo{ID: "b", HTTPURL: "http://127.0.0.1:8081"}))
	_, err = o.gate("board")
	var moved *room.MovedError
	require.ErrorAs(t, err, &moved)
	require.Equal(t, room.MovedError{Room: "board", Node: "b", URL: "http://127.0.0.1:8081"}, *moved)
}

// TestOwnershipLost: a node whose lease expired while it was away and
// that another node took gives the room up (lost) and writes nothing more
// with its epoch; one whose lease expired without a successor (the state
// forgot it) re-asserts it with the same epoch and keeps the room.
func TestOwnershipLost(t *testing.T) {
	ctx := context.Background()
	o, st, clk := newTestOwnership(t, false)
	var lost []room.ID
	o.lost = func(id room.ID) { lost = append(lost, id) }
	_, err := o.gate("demo")
	require.NoError(t, err)
	_, err = o.gate("board")
	require.NoError(t, err)
	boardEpoch, _ := o.Epoch("board")

	clk.advance(2 * cluster.DefaultLeaseTTL) // paused past the TTL
	l, err := st.Acquire(ctx, "demo", "b")
	require.NoError(t, err)
	o.renewAll(ctx)
	require.Equal(t, []room.ID{"demo"}, lost)
	_, ok := o.Epoch("demo")
	require.False(t, ok)
	require.ErrorIs(t, st.CheckEpoch(ctx, "demo", l.Epoch-1), cluster.ErrStaleEpoch)

	epoch, ok := o.Epoch("board")
	require.True(t, ok, "nobody took board: the lease is re-asserted")
	require.Equal(t, boardEpoch, epoch)
	require.NoError(t, st.CheckEpoch(ctx, "board", epoch))
}

// TestOwnershipOutage: with the cluster state unreachable, a new room is
// refused (ErrUnavailable) and a held one is kept; with degraded_local it
// opens without a lease and gets one once the state answers again.
func TestOwnershipOutage(t *testing.T) {
	ctx := context.Background()
	o, st, _ := newTestOwnership(t, false)
	o.lost = func(id room.ID) { t.Errorf("room %s lost during an outage", id) }
	_, err := o.gate("demo")
	require.NoError(t, err)
	st.down.Store(true)
	_, err = o.gate("board")
	require.ErrorIs(t, err, room.ErrUnavailable)
	o.renewAll(ctx)
	_, ok := o.Epoch("demo")
	require.True(t, ok)

	d, st2, _ := newTestOwnership(t, true)
	st2.down.Store(true)
	rel, err := d.gate("board")
	require.NoError(t, err)
	_, ok = d.Epoch("board")
	require.False(t, ok, "no epoch without a lease")
	st2.down.Store(false)
	d.renewAll(ctx)
	epoch, ok := d.Epoch("board")
	require.True(t, ok)
	require.NoError(t, st2.CheckEpoch(ctx, "board", epoch))
	rel()
	_, err = st2.Owner(ctx, "board")
	require.ErrorIs(t, err, cluster.ErrNoOwner)
}
