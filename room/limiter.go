package room

import (
	"math"

	"github.com/mediagate/mediagate/media"
)

// The soft clipper that turns the mixer's int32 sums back into int16. Sums
// up to the knee (-3 dBFS) pass unchanged; above it a tanh curve, with slope
// 1 at the knee so there is no corner to hear, bends them towards the
// ceiling (-1 dBFS), which nothing reaches. Two loud voices therefore never
// wrap around (a full-scale click) and never hit full scale either: G.722's
// decoder wraps within about 0.5 dB of full scale (media/g722.go), and
// codecs round-tripping a full-scale signal overshoot.

const (
	limitKnee    = 23197 // -3 dBFS of 32767
	limitCeiling = 29204 // -1 dBFS of 32767
	limitRange   = limitCeiling - limitKnee
	limitStep    = 64   // table resolution in excess-over-knee units
	limitEntries = 1024 // covers an excess of 65536 ≈ 10.9 × limitRange, where tanh is 1
)

// limitTable[i] is the output for an input of limitKnee + i*limitStep.
var limitTable = func() (t [limitEntries + 1]int32) {
	for i := range t {
		e := float64(i*limitStep) / limitRange
		t[i] = int32(math.Floor(limitKnee + limitRange*math.Tanh(e)))
	}
	return t
}()

// limitAbove returns the limited value of a sum x > limitKnee: the table
// with linear interpolation between entries. It stays below limitCeiling.
func limitAbove(x int32) int16 {
	e := x - limitKnee
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
	case x > limitKnee:
		return limitAbove(x)
	case x < -limitKnee:
		return -limitAbove(-x)
	}
	return int16(x)
}

// limit soft-clips the sums acc into out.
func limit(acc *[media.FrameSamples]int32, out *media.Frame) {
	for i, x := range acc {
		out[i] = limitSample(x)
	}
}

// limitMinus soft-clips acc minus own, the mix-minus of the participant
// whose contribution own is, into out.
func limitMinus(acc *[media.FrameSamples]int32, own, out *media.Frame) {
	for i, x := range acc {
		out[i] = limitSample(x - int32(own[i]))
	}
}
