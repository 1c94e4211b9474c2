package recorder

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mediagate/mediagate/room"
)

// Fence asks whether this node still owns a room (DESIGN.md decision 4): in
// a cluster one node owns a room under a lease whose fencing epoch grows on
// every acquisition, and every side effect that must happen once (starting
// a recording, writing its manifest) carries the epoch it was started with
// and is refused once that epoch is stale. The recorder does not import
// cluster; the binary adapts its fence in two lines:
//
//	recorder.Fence{
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

// fenceTimeout bounds one ownership check: a recording's goroutine makes
// it, and the mix ring (RecommendedMixBuffer, 3 s) must outlast it.
const fenceTimeout = 500 * time.Millisecond

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

// StartOption sets something about one recording at Start.
type StartOption func(*startOptions)

type startOptions struct {
	epoch uint64
}

// WithEpoch says the recording is made under the room's lease at epoch:
// Start, every manifest write and, every Options.FenceInterval, the audio
// writes ask Options.Fence about it first, and the manifest keeps it (field
// epoch). Without it the epoch is 0, which a cluster's fence never vouches
// for: with a Fence set, leaving it out fails loudly rather than unfenced.
func WithEpoch(epoch uint64) StartOption {
	return func(o *startOptions) { o.epoch = epoch }
}
