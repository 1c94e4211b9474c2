package media

import (
	"fmt"
	"testing"
)

// benchMix is Mix.Run with voices of espeak-ng speech (each from another
// place in the speech) scaled by gain (wrapping when loud), one op per 20
// ms tick.
func benchMix(b *testing.B, voices int, gain float64) {
	pcm := speech(b, Rate48k, 2)
	m := new(Mix)
	for k := range voices {
		src := pcm[k*3*FrameSamples:]
		for i := range m.Voices[k] {
			m.Voices[k][i] = int16(int32(float64(src[i]) * gain))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Run(voices)
	}
	if m.Full == (Frame{}) {
		b.Fatalf("the mix of %d voices is silent", voices)
	}
}

// BenchmarkMixMinus10 is a room's mixing arithmetic per 20 ms tick with ten
// voices of speech: the full mix and ten mix-minus outputs, soft-clipped.
// espeak-ng speaks near full scale, so ten at once drive the limiter on
// about 8 % of the samples. Target: ≤ 5 µs, 0 allocations.
func BenchmarkMixMinus10(b *testing.B) { benchMix(b, 10, 1) }

// BenchmarkMixMinus4 is the same with four voices, room.DefaultMaxSpeakers.
func BenchmarkMixMinus4(b *testing.B) { benchMix(b, 4, 1) }

// BenchmarkMixMinusQuiet10 is ten voices of speech 12 dB down, whose sums
// stay below the knee: the single C pass alone.
func BenchmarkMixMinusQuiet10(b *testing.B) { benchMix(b, 10, 0.1) }

// BenchmarkMixMinusLimited is the worst case: voices so loud (speech × 8)
// that every output goes through the limiter's second pass.
func BenchmarkMixMinusLimited(b *testing.B) {
	for _, n := range []int{4, 10} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchMix(b, n, 8) })
	}
}
