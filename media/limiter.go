package media

import "math"

// The soft clipper that turns the mixer's int32 sums back into int16. Sums
// up to the knee (-3 dBFS) pass unchanged; above it a tanh curve, with slope
// 1 at the knee so there is no corner to hear, bends them towards the
// ceiling (-1 dBFS), which nothing reaches. Two loud voices therefore never
// wrap around (a full-scale click) and never hit full scale either: G.722's
// decoder wraps within about 0.5 dB of full scale (g722.go), and codecs
// round-tripping a full-scale signal overshoot.
//
// limitSample is the definition; the C kernel of Mix.Run (mix.go) follows
// it with the same table and integer arithmetic, and the tests hold the two
// to sample-exact agreement.

const (
	// LimitKnee is the largest magnitude (-3 dBFS of 32767) that Mix passes
	// unchanged, so quiet mixes are exact sums.
	LimitKnee = 23197
	// LimitCeiling (-1 dBFS of 32767) bounds every sample Mix writes, with
	// headroom for codecs that overshoot or wrap near full scale.
	LimitCeiling = 29204

	limitRange   = LimitCeiling - LimitKnee
	limitStep    = 64   // table resolution in excess-over-knee units (a power of 2: the C kernel shifts)
	limitEntries = 1024 // covers an excess of 65536 ≈ 10.9 × limitRange, where tanh is 1
)

// limitTable[i] is the output for an input of LimitKnee + i*limitStep. The
// C kernel reads it too (it holds no Go pointers).
var limitTable = func() (t [limitEntries + 1]int32) {
	for i := range t {
		e := float64(i*limitStep) / limitRange
		t[i] = int32(math.Floor(LimitKnee + limitRange*math.Tanh(e)))
	}
	return t
}()

// limitAbove returns the limited value of a sum x > LimitKnee: the table
// with linear interpolation between entries. It stays below LimitCeiling.
func limitAbove(x int32) int16 {
	e := x - LimitKnee
	i := e / limitStep
	if i >= limitEntries {
		return int16(limitTable[limitEntries])
	}
	f := e % limitStep
	lo, hi := limitTable[i], limitTable[i+1]
	return int16(lo + (hi-lo)*f/limitStep)
}

// limitSample soft-clips one sum.
func limitSample(x int32) int16 {
	switch {
	case x > LimitKnee:
		return limitAbove(x)
	case x < -LimitKnee:
		return -limitAbove(-x)
	}
	return int16(x)
}
