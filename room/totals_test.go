package room

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
)

// TestTotalsSplitEncodes: shared totals count the ticks and split the
// encodes into one shared per tick for the silent listeners and one own
// per speaker, in the room's Stats and in the Totals alike.
func TestTotalsSplitEncodes(t *testing.T) {
	tot := NewTotals()
	r, c, _ := newTestRoom(t, WithTotals(tot))
	for i := range 5 {
		require.NoError(t, r.Join(&fake{info: Info{ID: ParticipantID(fmt.Sprint("l", i)), Format: formatL16},
			write: func(Packet) bool { return true }}))
	}
	for i, f := range []float64{440, 660} {
		require.NoError(t, r.Join(newPeer(t, fmt.Sprint("s", i), f, 0.2, formatL16)))
	}
	c.run(r, 5) // speakers settle on their own encoders
	before := tot.Stats()
	c.run(r, 10)
	after := tot.Stats()
	require.Equal(t, uint64(15), after.Ticks)
	require.Equal(t, uint64(10), after.SharedEncodes-before.SharedEncodes, "one shared encode per tick")
	require.Equal(t, uint64(20), after.OwnEncodes-before.OwnEncodes, "one own encode per speaker and tick")
	st := r.Stats()
	require.Equal(t, st.Encodes, st.SharedEncodes+st.OwnEncodes)
	require.Equal(t, after.SharedEncodes, st.SharedEncodes)
	require.Zero(t, after.TickSeconds.Count, "manual ticks are not timed: only the room's clock is")
}

// TestTotalsLateTicks: the clock's ticks are timed, and one that starts
// more than LateTick after it was due counts as late.
func TestTotalsLateTicks(t *testing.T) {
	tot := NewTotals()
	r, _, _ := newTestRoom(t, WithTotals(tot))
	now := time.Now()
	r.clockTick(now.Add(media.FrameDuration)) // early: not late
	r.clockTick(now.Add(-3 * LateTick))       // well behind
	st := tot.Stats()
	require.Equal(t, uint64(2), st.Ticks)
	require.Equal(t, uint64(1), st.LateTicks)
	require.Equal(t, uint64(2), st.TickSeconds.Count)
	require.Greater(t, st.TickSeconds.Sum, 0.0)
}
