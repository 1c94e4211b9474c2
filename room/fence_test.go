package room

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFenceAsk: the zero Fence owns everything; an error is stale by the
// fence's Stale or by the asking package's own test, and otherwise an
// "unknown" answer; the deadline reaches Check.
func TestFenceAsk(t *testing.T) {
	never := func(error) bool { return false }
	stale, err := Fence{}.Ask(context.Background(), "board", 7, time.Second, never)
	require.False(t, stale)
	require.NoError(t, err)

	errStale, errDown, errOwn := errors.New("stale"), errors.New("down"), errors.New("own")
	answer := errStale
	f := Fence{
		Check: func(ctx context.Context, id ID, epoch uint64) error {
			if _, ok := ctx.Deadline(); !ok || id != "board" || epoch != 7 {
				return errors.New("bad call")
			}
			return answer
		},
		Stale: func(err error) bool { return errors.Is(err, errStale) },
	}
	stale, err = f.Ask(context.Background(), "board", 7, time.Second, never)
	require.True(t, stale)
	require.ErrorIs(t, err, errStale)
	answer = errDown
	stale, err = f.Ask(context.Background(), "board", 7, time.Second, never)
	require.False(t, stale)
	require.ErrorIs(t, err, errDown)
	answer = errOwn
	stale, _ = f.Ask(context.Background(), "board", 7, time.Second, func(err error) bool { return errors.Is(err, errOwn) })
	require.True(t, stale)
	answer = nil
	stale, err = f.Ask(context.Background(), "board", 7, time.Second, never)
	require.False(t, stale)
	require.NoError(t, err)
}
