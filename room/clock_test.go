package room

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
)

// TestSchedule: the room's clock runs the frames that are due, catches up
// on a short stall in one burst and gives up (counting) the frames of a
// long one, so it keeps pace with the wall clock without flooding the
// participants.
func TestSchedule(t *testing.T) {
	next := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	for _, tc := range []struct {
		name        string
		now         time.Time
		ticks, skip int
	}{
		{"early", next.Add(-ms), 0, 0},
		{"on time", next, 1, 0},
		{"a little late", next.Add(19 * ms), 1, 0},
		{"one frame missed", next.Add(20 * ms), 2, 0},
		{"catch-up limit", next.Add(99 * ms), 5, 0},
		{"beyond the limit", next.Add(100 * ms), 5, 1},
		{"a one-second stall", next.Add(time.Second), 5, 46},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ticks, skip := schedule(next, tc.now)
			require.Equal(t, tc.ticks, ticks, "ticks")
			require.Equal(t, tc.skip, skip, "skipped")
			if ticks > 0 {
				// Afterwards the next frame is due after now: the room is
				// back on the wall clock.
				after := next.Add(time.Duration(ticks+skip) * 20 * ms)
				require.True(t, after.After(tc.now))
			}
		})
	}
}

// TestTickPhasesSpread: rooms started one after another tick at phases
// spread over the frame: 100 rooms leave no 2 ms of the 20 ms frame
// without a room and put no more than 13 rooms in any; the first tick
// comes one to two frames after the start, at its phase.
func TestTickPhasesSpread(t *testing.T) {
	var buckets [10]int
	for range 100 {
		p := tickPhase()
		require.GreaterOrEqual(t, p, time.Duration(0))
		require.Less(t, p, media.FrameDuration)
		buckets[p/(2*time.Millisecond)]++
	}
	for i, n := range buckets {
		require.Positive(t, n, "no room in %d–%d ms", 2*i, 2*i+2)
		require.LessOrEqual(t, n, 13, "%d rooms in %d–%d ms", n, 2*i, 2*i+2)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 7_300_000, time.UTC)
	for _, phase := range []time.Duration{0, 3 * time.Millisecond, 7300 * time.Microsecond, 19 * time.Millisecond} {
		first := firstTick(now, phase)
		require.GreaterOrEqual(t, first.Sub(now), media.FrameDuration, "phase %v", phase)
		require.Less(t, first.Sub(now), 2*media.FrameDuration, "phase %v", phase)
		require.Equal(t, phase, first.Sub(first.Truncate(media.FrameDuration)), "phase %v", phase)
	}
}
