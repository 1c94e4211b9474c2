package room

import (
	"testing"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// BenchmarkMixMinus10 is the mixer's arithmetic alone, per 20 ms tick: ten
// contributing voices summed into the full mix, and ten mix-minus outputs
// (the full mix less each voice), all soft-clipped — the same functions
// Tick uses, without reading participants or encoding. Target here: ≤ 5 µs,
// 0 allocations.
func BenchmarkMixMinus10(b *testing.B) {
	const voices = 10
	speech := mediatest.Speech(b, media.Rate48k, 2)
	var in, out [voices]media.Frame
	for k := range in {
		copy(in[k][:], speech[k*3*media.FrameSamples:])
	}
	var acc [media.FrameSamples]int32
	var full media.Frame
	b.ReportAllocs()
	for b.Loop() {
		clear(acc[:])
		for k := range in {
			for i, s := range in[k] {
				acc[i] += int32(s)
			}
		}
		limit(&acc, &full)
		for k := range in {
			limitMinus(&acc, &in[k], &out[k])
		}
	}
	if full == (media.Frame{}) {
		b.Fatal("the mix of ten voices is silent")
	}
}
