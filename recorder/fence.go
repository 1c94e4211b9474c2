package recorder

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

// fenceTimeout bounds one ownership check: a recording's goroutine makes
// it, and the mix ring (RecommendedMixBuffer, 3 s) must outlast it.
const fenceTimeout = 500 * time.Millisecond

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
