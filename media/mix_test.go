package media

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/stretchr/testify/require"
)

// mixReference is Mix.Run written out plainly: an int32 sum and limitSample
// per sample, for n voices.
func mixReference(voices []Frame) (full Frame, minus []Frame) {
	var acc [FrameSamples]int32
	for _, v := range voices {
		for i, s := range v {
			acc[i] += int32(s)
		}
	}
	for i, x := range acc {
		full[i] = limitSample(x)
	}
	minus = make([]Frame, len(voices))
	for k, v := range voices {
		for i, x := range acc {
			minus[k][i] = limitSample(x - int32(v[i]))
		}
	}
	return full, minus
}

// forKernels runs f once per build of the C kernel this machine can run,
// so that an AVX2 machine checks the portable build too.
func forKernels(t *testing.T, f func(t *testing.T)) {
	saved := mixAVX2
	t.Cleanup(func() { mixAVX2 = saved })
	for _, avx2 := range []bool{false, true} {
		if avx2 && !saved {
			t.Log("no AVX2 on this CPU: portable build only")
			continue
		}
		name := map[bool]string{false: "portable", true: "avx2"}[avx2]
		t.Run(name, func(t *testing.T) {
			mixAVX2 = avx2
			f(t)
		})
	}
}

// mixSource fills voice k of frame f.
type mixSource func(t *testing.T, f, k int, dst *Frame)

func randomVoices(seed uint64, amp int) mixSource {
	return func(_ *testing.T, f, k int, dst *Frame) {
		rng := rand.New(rand.NewPCG(seed, uint64(f*MaxMixVoices+k)))
		for i := range dst {
			dst[i] = int16(rng.IntN(2*amp+1) - amp)
		}
	}
}

func speechVoices(gain float64) mixSource {
	return func(t *testing.T, f, k int, dst *Frame) {
		pcm := speech(t, Rate48k, 2)
		// Voice k starts 7 frames after voice k-1, so the voices differ.
		off := ((k*7 + f) * FrameSamples) % (len(pcm) - FrameSamples)
		for i := range dst {
			dst[i] = int16(max(min(math.Round(float64(pcm[off+i])*gain), 32767), -32768))
		}
	}
}

func toneVoices(amp float64) mixSource {
	return func(_ *testing.T, f, k int, dst *Frame) {
		tone := mediatest.Tone{Freq: 300 + 110*float64(k), Amp: amp, Rate: Rate48k, Pos: f * FrameSamples}
		tone.Fill(dst[:])
	}
}

// TestMixMatchesReference: Run agrees sample for sample with the plain Go
// sum and limiter, for quiet inputs (the C pass alone) and loud ones (the
// limiter's second pass), and overwrites whatever the outputs held.
func TestMixMatchesReference(t *testing.T) {
	sources := []struct {
		name    string
		src     mixSource
		limited bool // whether some n ≥ 2 drives the limiter
	}{
		{"random full scale", randomVoices(1, 32767), true},
		{"random quiet", randomVoices(2, 1000), false},
		{"speech", speechVoices(1), true},
		{"speech -20 dB", speechVoices(0.1), false},
		{"full-scale tones", toneVoices(1), true},
	}
	var m Mix
	forKernels(t, func(t *testing.T) {
		for _, tc := range sources {
			for _, n := range []int{0, 1, 2, 4, 10, 16} {
				t.Run(fmt.Sprintf("%s/%d", tc.name, n), func(t *testing.T) {
					limited := false
					for f := range 4 {
						for k := range m.Minus {
							m.Minus[k][0], m.Minus[k][FrameSamples-1] = 12345, -12345
						}
						m.Full[0], m.Full[FrameSamples-1] = 12345, -12345
						for k := range n {
							tc.src(t, f, k, &m.Voices[k])
						}
						full, minus := mixReference(m.Voices[:n])
						m.Run(n)
						require.Equal(t, full, m.Full, "full mix of frame %d", f)
						for k := range n {
							require.Equal(t, minus[k], m.Minus[k], "mix-minus %d of frame %d", k, f)
						}
						for _, x := range m.Full {
							limited = limited || x > LimitKnee || x < -LimitKnee
						}
					}
					if n == 0 {
						require.Equal(t, Frame{}, m.Full, "nobody speaks: silence")
					}
					if n >= 4 || !tc.limited {
						require.Equal(t, tc.limited, limited, "whether the limiter was driven")
					}
				})
			}
		}
	})
}

// TestMixClampsVoices: n beyond MaxMixVoices mixes the first MaxMixVoices,
// a negative n none; neither panics.
func TestMixClampsVoices(t *testing.T) {
	forKernels(t, func(t *testing.T) {
		var m Mix
		src := randomVoices(3, 3000)
		for k := range m.Voices {
			src(t, 0, k, &m.Voices[k])
		}
		full, minus := mixReference(m.Voices[:])
		m.Run(MaxMixVoices + 5)
		require.Equal(t, full, m.Full)
		require.Equal(t, minus, m.Minus[:])
		m.Run(-1)
		require.Equal(t, Frame{}, m.Full)
	})
}

// TestMixLimiterSweep: every sum from -131000 to 131000, well past the
// end of the table, comes out of both outputs as limitSample says.
func TestMixLimiterSweep(t *testing.T) {
	const voices, top = 4, 131000
	forKernels(t, func(t *testing.T) {
		m := new(Mix)
		for start := -top; start <= top; start += FrameSamples {
			for i := range FrameSamples {
				x := min(start+i, top)
				for k := range voices {
					m.Voices[k][i] = int16(x / voices)
				}
				m.Voices[0][i] += int16(x % voices)
			}
			m.Run(voices)
			for i := range FrameSamples {
				x := int32(min(start+i, top))
				if m.Full[i] != limitSample(x) {
					t.Fatalf("full mix of %d: %d, want %d", x, m.Full[i], limitSample(x))
				}
				for k := range voices {
					if want := limitSample(x - int32(m.Voices[k][i])); m.Minus[k][i] != want {
						t.Fatalf("mix-minus %d of %d: %d, want %d", k, x, m.Minus[k][i], want)
					}
				}
			}
		}
	})
}

// TestMixSoftClip: two full-scale tones do not wrap around and stay below
// full scale; samples whose sum is below the knee are exact.
func TestMixSoftClip(t *testing.T) {
	var m Mix
	src := toneVoices(1)
	peak := 0
	for f := range 10 {
		src(t, f, 0, &m.Voices[0])
		src(t, f, 1, &m.Voices[1])
		m.Run(2)
		for i, out := range m.Full {
			sum := int(m.Voices[0][i]) + int(m.Voices[1][i])
			peak = max(peak, abs(int(out)))
			require.LessOrEqual(t, abs(int(out)), abs(sum), "limiting never amplifies")
			if abs(sum) > 1000 {
				require.Equal(t, sum > 0, out > 0, "sample %d of frame %d wrapped: sum %d out %d", i, f, sum, out)
			}
			if abs(sum) <= LimitKnee {
				require.Equal(t, sum, int(out), "below the knee the mix is exact")
			}
		}
		for k := range 2 {
			for _, out := range m.Minus[k] {
				peak = max(peak, abs(int(out)))
			}
		}
	}
	require.LessOrEqual(t, peak, LimitCeiling)
	require.Greater(t, peak, LimitKnee, "the test drove the limiter")
}

// TestMixMinusExcludesOwnVoice: each of four tones is absent from its own
// mix-minus and present at its level in the others and in the full mix.
func TestMixMinusExcludesOwnVoice(t *testing.T) {
	const voices, frames, amp = 4, 10, 0.2
	var m Mix
	src := toneVoices(amp)
	minus := make([][]int16, voices)
	var full []int16
	for f := range frames {
		for k := range voices {
			src(t, f, k, &m.Voices[k])
		}
		m.Run(voices)
		full = append(full, m.Full[:]...)
		for k := range voices {
			minus[k] = append(minus[k], m.Minus[k][:]...)
		}
	}
	level := 20 * math.Log10(amp)
	for k := range voices {
		freq := 300 + 110*float64(k)
		require.InDelta(t, level, toneDB(full, freq, Rate48k), 0.1, "voice %d in the full mix", k)
		for j := range voices {
			got := toneDB(minus[j], freq, Rate48k)
			if j == k {
				require.Less(t, got, -90.0, "voice %d in its own mix-minus", k)
			} else {
				require.InDelta(t, level, got, 0.1, "voice %d in the mix-minus of %d", k, j)
			}
		}
	}
}

// TestMixAllocatesNothing: the per-tick call allocates nothing, quiet or
// limited.
func TestMixAllocatesNothing(t *testing.T) {
	forKernels(t, func(t *testing.T) {
		m := new(Mix)
		for _, src := range []mixSource{randomVoices(4, 1000), randomVoices(5, 32767)} {
			for k := range 10 {
				src(t, 0, k, &m.Voices[k])
			}
			require.Zero(t, testing.AllocsPerRun(100, func() { m.Run(10) }))
		}
	})
}

// TestLimiterCurve: the curve is continuous (slope ≤ 1), monotonic,
// identity up to the knee and bounded by the ceiling for any sum.
func TestLimiterCurve(t *testing.T) {
	// Plain comparisons: a million require calls would dominate the run.
	prev := limitSample(0)
	for x := int32(1); x < 40*32768; x++ {
		y := limitSample(x)
		if y < prev || y-prev > 1 || limitSample(-x) != -y {
			t.Fatalf("at %d: f=%d after %d, f(-x)=%d: want monotonic, slope ≤ 1, symmetric", x, y, prev, limitSample(-x))
		}
		prev = y
	}
	require.Equal(t, int16(LimitKnee), limitSample(LimitKnee))
	require.Equal(t, int16(1000), limitSample(1000))
	require.LessOrEqual(t, int(limitSample(math.MaxInt32/2)), LimitCeiling)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
