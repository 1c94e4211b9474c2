package meter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistogramBuckets(t *testing.T) {
	h := NewHistogram(0.001, 0.01, 0.1)
	for _, d := range []time.Duration{500 * time.Microsecond, time.Millisecond, 5 * time.Millisecond,
		50 * time.Millisecond, time.Second} {
		h.Observe(d)
	}
	s := h.Snapshot()
	require.Equal(t, []float64{0.001, 0.01, 0.1}, s.Bounds)
	require.Equal(t, []uint64{2, 3, 4}, s.Cumulative, "a duration equal to a bound falls in that bucket")
	require.Equal(t, uint64(5), s.Count)
	require.InDelta(t, 1.0565, s.Sum, 1e-9)
}

func TestHistogramObserveAllocatesNothing(t *testing.T) {
	h := NewHistogram(0.001, 0.01)
	require.Zero(t, testing.AllocsPerRun(100, func() { h.Observe(3 * time.Millisecond) }))
}
