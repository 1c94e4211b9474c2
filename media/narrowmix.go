package media

// NarrowSamples is one 20 ms frame at 8 kHz.
const NarrowSamples = 160

// NarrowFrame is 20 ms of 8 kHz mono PCM.
type NarrowFrame [NarrowSamples]int16

// NarrowMix is Mix at 8 kHz, for rooms where every voice comes and goes
// at 8 kHz (telephones in G.711): mixing at the telephones' own rate
// saves each speaker's resampling up to 48 kHz and each encoded mix's
// resampling back down, which cost more than mixing and encoding together.
// The arithmetic, the limiter included, is Mix's, on a sixth of the
// samples, in Go. The zero value is ready; it is not safe for concurrent
// use.
type NarrowMix struct {
	// Voices are the inputs: the caller copies this tick's contributing
	// frames into Voices[:n] before Run.
	Voices [MaxMixVoices]NarrowFrame
	// Minus[k] is, after Run(n) and for k < n, the mix without Voices[k].
	Minus [MaxMixVoices]NarrowFrame
	// Full is, after Run, the mix of all n voices.
	Full NarrowFrame

	acc [NarrowSamples]int32
}

// Run mixes Voices[:n] into Full and Minus[:n] as Mix.Run does: each
// sample exactly limitSample of its int32 sum. It allocates nothing.
func (m *NarrowMix) Run(n int) {
	n = min(max(n, 0), MaxMixVoices)
	acc := &m.acc
	*acc = [NarrowSamples]int32{}
	for k := range n {
		v := &m.Voices[k]
		for i := range NarrowSamples {
			acc[i] += int32(v[i])
		}
	}
	var silence NarrowFrame
	narrowOut(acc, &silence, &m.Full)
	for k := range n {
		narrowOut(acc, &m.Voices[k], &m.Minus[k])
	}
}

// narrowOut writes acc less own to out, through the limiter only when
// some sample passes its knee.
func narrowOut(acc *[NarrowSamples]int32, own, out *NarrowFrame) {
	var peak int32
	for i := range NarrowSamples {
		x := acc[i] - int32(own[i])
		peak = max(peak, x^x>>31) // |x|, or |x|-1 when negative: the test below allows for it
		out[i] = int16(x)
	}
	if peak < LimitKnee {
		return
	}
	for i := range NarrowSamples {
		out[i] = limitSample(acc[i] - int32(own[i]))
	}
}
