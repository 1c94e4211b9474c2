package media

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNarrowMixMatchesMix: NarrowMix gives, sample for sample, what Mix
// gives for the same samples (Mix works on each sample alone), the
// limiter included, for every voice count and for loud and quiet voices.
func TestNarrowMixMatchesMix(t *testing.T) {
	var wide Mix
	var narrow NarrowMix
	for _, src := range []struct {
		name string
		src  mixSource
	}{{"random full scale", randomVoices(1, 32767)}, {"random quiet", randomVoices(2, 1000)}, {"speech", speechVoices(1)}} {
		for _, n := range []int{0, 1, 2, 4, 10, 16} {
			t.Run(fmt.Sprintf("%s/%d", src.name, n), func(t *testing.T) {
				limited := false
				for f := range 4 {
					for k := range n {
						src.src(t, f, k, &wide.Voices[k])
						copy(narrow.Voices[k][:], wide.Voices[k][:])
					}
					wide.Run(n)
					narrow.Run(n)
					require.Equal(t, wide.Full[:NarrowSamples], narrow.Full[:], "full mix of frame %d", f)
					for k := range n {
						require.Equal(t, wide.Minus[k][:NarrowSamples], narrow.Minus[k][:], "mix-minus %d of frame %d", k, f)
					}
					for _, x := range narrow.Full {
						limited = limited || x > LimitKnee || x < -LimitKnee
					}
				}
				if n >= 2 && src.name == "random full scale" {
					require.True(t, limited, "the limiter was driven")
				}
			})
		}
	}
	require.Zero(t, testing.AllocsPerRun(10, func() { narrow.Run(10) }))
}

// BenchmarkNarrowMix10 mixes ten voices at 8 kHz, each within ±2000, so
// the sum stays below the limiter's knee as ordinary speech does
// (BenchmarkMixMinus10 is the 48 kHz mix of ten).
func BenchmarkNarrowMix10(b *testing.B) {
	var m NarrowMix
	for k := range 10 {
		for i := range m.Voices[k] {
			m.Voices[k][i] = int16((i*131+k*977)%4000 - 2000)
		}
	}
	for b.Loop() {
		m.Run(10)
	}
}
