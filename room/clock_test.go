package room

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
