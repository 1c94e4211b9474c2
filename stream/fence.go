package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mediagate/mediagate/room"
)

// Fence asks whether this node still owns a room: see room.Fence. The
// zero Fence is one node, where every room is always owned; a Check error
// wrapping ErrStale counts as stale without a Stale function.
type Fence = room.Fence

// fenceTimeout bounds one ownership check. A destination makes it before
// each connection and, while live, between batches: its queue (about 6 s
// at DefaultQueue) must outlast it.
const fenceTimeout = time.Second

// checkFence asks f about room at epoch. It returns nil when the fence
// is off or the room is owned; an error wrapping ErrStale (and Check's
// error) when the epoch is stale; an error wrapping ErrFenceUnavailable
// when the fence cannot tell.
func checkFence(ctx context.Context, f Fence, roomID room.ID, epoch uint64) error {
	stale, err := f.Ask(ctx, roomID, epoch, fenceTimeout, func(err error) bool { return errors.Is(err, ErrStale) })
	switch {
	case err == nil:
		return nil
	case stale:
		return fmt.Errorf("%w: room %s, epoch %d: %w", ErrStale, roomID, epoch, err)
	default:
		return fmt.Errorf("%w: room %s: %w", ErrFenceUnavailable, roomID, err)
	}
}

// checkFence asks Options.Fence about the egress's room and epoch.
func (e *Egress) checkFence(ctx context.Context) error {
	return checkFence(ctx, e.opts.Fence, e.opts.Room, e.opts.Epoch)
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
