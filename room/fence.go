package room

import (
	"context"
	"time"
)

// Fence asks whether this node still owns a room (DESIGN.md decision 4):
// in a cluster one node owns a room under a lease whose fencing epoch grows
// on every acquisition, and every side effect that must happen once
// (starting a recording, writing its manifest, pushing the room to a
// platform) carries the epoch it was started with and is refused once that
// epoch is stale. The recorder and the egress take a Fence; they do not
// import cluster, and the binary adapts the cluster's fence in two lines:
//
//	room.Fence{
//		Check: func(ctx context.Context, r room.ID, epoch uint64) error { return f.CheckEpoch(ctx, cluster.RoomID(r), epoch) },
//		Stale: func(err error) bool { return errors.Is(err, cluster.ErrStaleEpoch) },
//	}
//
// The zero Fence (Check nil) is one node: every room is always owned.
type Fence struct {
	// Check returns nil while the holder of epoch still owns room, and an
	// error otherwise: one Stale reports for a stale epoch (taken over,
	// expired, released), any other when ownership cannot be known now
	// (the shared state is unreachable).
	Check func(ctx context.Context, room ID, epoch uint64) error
	// Stale reports whether an error of Check means the epoch is stale;
	// nil means the user's own test alone (see Ask).
	Stale func(err error) bool
}

// Ask asks the fence about room at epoch within timeout. It returns nil
// when the fence is off or the room is owned, and otherwise Check's error
// with whether it says the epoch is stale (by Stale, or by stale, the
// asking package's own test).
func (f Fence) Ask(ctx context.Context, id ID, epoch uint64, timeout time.Duration, stale func(error) bool) (bool, error) {
	if f.Check == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := f.Check(ctx, id, epoch)
	if err == nil {
		return false, nil
	}
	return (f.Stale != nil && f.Stale(err)) || stale(err), err
}
