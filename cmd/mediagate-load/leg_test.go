package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSchedulePeriod: a prober's bursts start period() frames apart, each
// frames long, and a prober's Opus loop is that long, so a WebRTC leg that
// goes back to the loop's start with each burst plays one encoder's stream
// without a cut (encodeLoop).
func TestSchedulePeriod(t *testing.T) {
	s := schedule{room: &roomState{}, every: 50, frames: 5, in: 3}
	var starts []int
	on := 0
	for i := range 400 {
		probe, start := s.probe(time.Time{})
		if start {
			require.True(t, probe, "frame %d starts a burst but is no probe frame", i)
			starts = append(starts, i)
		}
		if probe {
			on++
		}
	}
	require.Len(t, starts, 8)
	require.Equal(t, 2, starts[0], "the first burst comes when in runs out")
	for k := 1; k < len(starts); k++ {
		require.Equal(t, 54, starts[k]-starts[k-1])
		require.Equal(t, s.period(), starts[k]-starts[k-1])
	}
	require.Equal(t, 8*5, on, "probe frames")

	loop, err := (&opusLoops{}).loop(prober, 300, 1, s)
	require.NoError(t, err)
	require.Len(t, loop, s.period())
}
