package media

import "math"

// GoertzelPower returns the power of the frequency freq (Hz) in samples taken
// at rate (Hz), normalised so that a full-scale sine at freq over the whole
// block gives about 0.25 (amplitude²/4). It is the single-bin DFT used by the
// in-band DTMF detector and by tests that check which tones a signal holds.
func GoertzelPower(samples []int16, freq float64, rate int) float64 {
	if len(samples) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2 float64
	for _, x := range samples {
		s0 := float64(x)/32768 + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(samples))
	return p / (n * n)
}
