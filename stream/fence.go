package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mediagate/mediagate/room"
)

// Fence asks whether this node still owns a room (DESIGN.md decision 4): in
// a cluster one node owns a room under a lease whose fencing epoch grows on
// every acquisition, and an egress pushes the room only while the epoch it
// was started with (Options.Epoch) is current, so that a node paused past
// its lease never pushes the room a second time beside its new owner. The
// package does not import cluster; the binary adapts its fence in two
// lines:
//
//	stream.Fence{
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
	Check func(ctx context.Context, room room.ID, epoch uint64) error
	// Stale reports whether an error of Check means the epoch is stale.
	// nil: errors.Is(err, ErrStale), for a Check that wraps ErrStale.
	Stale func(err error) bool
}

// fenceTimeout bounds one ownership check. A destination makes it before
// each connection and, while live, between batches: its queue (about 6 s
// at DefaultQueue) must outlast it.
const fenceTimeout = time.Second

// check asks the fence about room at epoch. It returns nil when the fence
// is off or the room is owned; an error wrapping ErrStale (and Check's
// error) when the epoch is stale; an error wrapping ErrFenceUnavailable
// when the fence cannot tell.
func (f Fence) check(ctx context.Context, roomID room.ID, epoch uint64) error {
	if f.Check == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	err := f.Check(ctx, roomID, epoch)
	switch {
	case err == nil:
		return nil
	case f.stale(err):
		return fmt.Errorf("%w: room %s, epoch %d: %w", ErrStale, roomID, epoch, err)
	default:
		return fmt.Errorf("%w: room %s: %w", ErrFenceUnavailable, roomID, err)
	}
}

func (f Fence) stale(err error) bool {
	if f.Stale == nil {
		return errors.Is(err, ErrStale)
	}
	return f.Stale(err) || errors.Is(err, ErrStale)
}

// checkFence asks Options.Fence about the egress's room and epoch.
func (e *Egress) checkFence(ctx context.Context) error {
	return e.opts.Fence.check(ctx, e.opts.Room, e.opts.Epoch)
}

// refuseStale returns the fence's answer if it says the epoch is stale;
// nil otherwise, also when the fence cannot tell: starting pushes nothing,
// and each connection asks again before it does.
func (e *Egress) refuseStale(ctx context.Context) error {
	if err := e.checkFence(ctx); errors.Is(err, ErrStale) {
		return err
	}
	return nil
}
