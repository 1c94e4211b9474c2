package media

import "math"

// In-band DTMF detection (ITU-T Q.23 tones, Q.24 timing) on 8 kHz linear PCM,
// which is what G.711 decodes to.
//
// The signal is cut into windows of dtmfWindow = 102 samples (12.75 ms),
// overlapping by half: a new window is analysed every dtmfHop = 51 samples.
// 102 samples put the neighbouring row tones (73–89 Hz apart) about 20 dB
// down each other's bins while keeping windows short; the overlap gives the
// timing rules enough windows to work with:
//
//   - A window shows a digit only if its two tones carry at least
//     dtmfMinDominance of the window's energy. A window the tone covers only
//     partly fails that test, so the run of dtmfOnsetWindows (4) windows
//     that makes a press needs a tone of at least 27 ms, while any tone of
//     34 ms or more holds four whole windows: 40 ms is always accepted and a
//     20 ms burst never (Q.24: accept 40 ms, reject below 23 ms).
//   - A held digit is released after dtmfReleaseWindows (5) windows without
//     it. A 40 ms pause spoils at least 7 windows, so it always separates two
//     presses; a 10 ms drop-out spoils at most 3, so it never splits one.
const (
	dtmfRate           = Rate8k
	dtmfWindow         = 102
	dtmfHop            = dtmfWindow / 2
	dtmfOnsetWindows   = 4
	dtmfReleaseWindows = 5
)

// Thresholds of the per-window tests. Tone powers are squared amplitudes
// relative to full scale (a full-scale sine is 1).
var (
	// Weakest tone accepted: -38 dBFS peak per tone, 7 dB below the tones
	// of a -25 dBFS dual tone.
	dtmfMinTone = math.Pow(10, -38.0/10)
	// Forward (normal) twist: the high tone may be up to 8 dB stronger;
	// reverse twist: the low tone up to 4 dB stronger.
	dtmfForwardTwist = math.Pow(10, 8.0/10)
	dtmfReverseTwist = math.Pow(10, 4.0/10)
	// Every other row (column) bin must be 8 dB below the chosen one.
	dtmfRelativePeak = math.Pow(10, 8.0/10)
	// The two tones must hold 80 % of the window's energy: speech spreads
	// its energy over many harmonics and formants (a minute of espeak-ng
	// speech that passes the other tests never exceeds about 52 %).
	dtmfMinDominance = 0.8
	// A second harmonic within 10 dB of its tone means the "tone" is a
	// harmonic of a voice, not a DTMF generator.
	dtmfHarmonic = math.Pow(10, -10.0/10)
)

// dtmfCoeff holds the Goertzel coefficients 2·cos(2πf/8000) of the four row
// tones followed by the four column tones.
var dtmfCoeff = func() (c [8]float64) {
	for i, f := range append(dtmfRowHz[:], dtmfColHz[:]...) {
		c[i] = 2 * math.Cos(2*math.Pi*float64(f)/dtmfRate)
	}
	return c
}()

// dtmfRowHarmonicClear[r][c] says whether the second harmonic of row tone r
// lies at least 200 Hz from column tone c. Closer (2×770 = 1540 Hz against
// 1477 Hz), the column tone's leakage into the harmonic's bin would look like
// a harmonic, so only the column tone's harmonic (2418–3266 Hz, clear of every
// DTMF tone) is checked for such digits.
var dtmfRowHarmonicClear = func() (ok [4][4]bool) {
	for r, fr := range dtmfRowHz {
		for c, fc := range dtmfColHz {
			ok[r][c] = math.Abs(float64(2*fr-fc)) >= 200
		}
	}
	return ok
}()

// DTMFDetector finds DTMF key presses in 8 kHz linear PCM fed in chunks of
// any size (usually one 20 ms frame of 160 samples). Each press is reported
// once, 32–38 ms into the tone. It does not allocate and is not
// safe for concurrent use. The zero value is ready to use.
type DTMFDetector struct {
	buf [dtmfWindow]int16 // samples of the window being filled
	n   int               // how many of buf are filled
	x   [dtmfWindow]float64

	cand   Digit // digit seen in the last candN windows in a row
	candN  int
	held   bool // a press has been reported and not yet released
	digit  Digit
	misses int // windows in a row without the held digit
}

// NewDTMFDetector returns a detector for 8 kHz PCM.
func NewDTMFDetector() *DTMFDetector { return &DTMFDetector{} }

// Reset forgets any partial window and held key, for a new call or after a
// gap in the audio.
func (d *DTMFDetector) Reset() { *d = DTMFDetector{} }

// Held reports the key being held right now, if any, so a gateway relaying
// in-band DTMF as RFC 4733 events knows when the key is released.
func (d *DTMFDetector) Held() (Digit, bool) { return d.digit, d.held }

// Process feeds 8 kHz samples and appends every key press that completes in
// them to dst, returning the extended slice. Pass dst with spare capacity (a
// press needs at least 40 ms, so a 20 ms frame completes at most one) and
// nothing is allocated.
func (d *DTMFDetector) Process(pcm []int16, dst []Digit) []Digit {
	for len(pcm) > 0 {
		k := copy(d.buf[d.n:], pcm)
		d.n += k
		pcm = pcm[k:]
		if d.n < dtmfWindow {
			break
		}
		digit, ok := d.classify()
		dst = d.step(digit, ok, dst)
		copy(d.buf[:], d.buf[dtmfHop:])
		d.n = dtmfWindow - dtmfHop
	}
	return dst
}

// step runs the Q.24 timing rules on one window's verdict.
func (d *DTMFDetector) step(digit Digit, ok bool, dst []Digit) []Digit {
	switch {
	case !ok:
		d.candN = 0
	case d.candN > 0 && digit == d.cand:
		d.candN++
	default:
		d.cand, d.candN = digit, 1
	}
	if d.held {
		if ok && digit == d.digit {
			d.misses = 0
		} else if d.misses++; d.misses >= dtmfReleaseWindows {
			d.held = false
		}
	}
	if !d.held && d.candN >= dtmfOnsetWindows {
		d.held, d.digit, d.misses = true, d.cand, 0
		dst = append(dst, d.cand)
	}
	return dst
}

// classify decides whether the current window holds a DTMF digit.
func (d *DTMFDetector) classify() (Digit, bool) {
	var energy float64
	for i, s := range d.buf {
		v := float64(s) / 32768
		d.x[i] = v
		energy += v * v
	}
	meanSq := energy / dtmfWindow
	// A valid digit has two tones of at least dtmfMinTone each; a quiet
	// window is rejected before any Goertzel work.
	if meanSq < dtmfMinTone/2 {
		return 0, false
	}
	var pow [8]float64
	goertzel4(&d.x, (*[4]float64)(dtmfCoeff[:4]), (*[4]float64)(pow[:4]))
	goertzel4(&d.x, (*[4]float64)(dtmfCoeff[4:]), (*[4]float64)(pow[4:]))
	r := strongest(pow[:4])
	c := strongest(pow[4:])
	pr, pc := pow[r], pow[4+c]
	switch {
	case pr < dtmfMinTone || pc < dtmfMinTone:
		return 0, false
	case pc > pr*dtmfForwardTwist || pr > pc*dtmfReverseTwist:
		return 0, false
	case !dominates(pow[:4], r) || !dominates(pow[4:], c):
		return 0, false
	case (pr+pc)/2 < dtmfMinDominance*meanSq:
		return 0, false
	}
	if !d.harmonicsClear(r, c, pr, pc) {
		return 0, false
	}
	return digitAt[r][c], true
}

// goertzel4 runs four Goertzel filters side by side over one window and
// stores each bin's squared tone amplitude (4|X|²/N², 1 for a full-scale
// sine on the bin) in pow. Four independent recurrences per sample keep the
// CPU's floating-point units busy where one bin at a time would wait on
// each multiply-add; four fit in registers where eight would spill.
func goertzel4(x *[dtmfWindow]float64, c, pow *[4]float64) {
	c0, c1, c2, c3 := c[0], c[1], c[2], c[3]
	var a1, a2, b1, b2, e1, e2, f1, f2 float64
	for _, v := range x {
		a1, a2 = v+c0*a1-a2, a1
		b1, b2 = v+c1*b1-b2, b1
		e1, e2 = v+c2*e1-e2, e1
		f1, f2 = v+c3*f1-f2, f1
	}
	const scale = 4.0 / (dtmfWindow * dtmfWindow)
	pow[0] = scale * (a1*a1 + a2*a2 - c0*a1*a2)
	pow[1] = scale * (b1*b1 + b2*b2 - c1*b1*b2)
	pow[2] = scale * (e1*e1 + e2*e2 - c2*e1*e2)
	pow[3] = scale * (f1*f1 + f2*f2 - c3*f1*f2)
}

// harmonicsClear checks that neither tone comes with a strong second
// harmonic, as voiced speech does. It only runs on windows that passed the
// cheaper tests.
func (d *DTMFDetector) harmonicsClear(r, c int, pr, pc float64) bool {
	if 4*GoertzelPower(d.buf[:], float64(2*dtmfColHz[c]), dtmfRate) > pc*dtmfHarmonic {
		return false
	}
	if dtmfRowHarmonicClear[r][c] &&
		4*GoertzelPower(d.buf[:], float64(2*dtmfRowHz[r]), dtmfRate) > pr*dtmfHarmonic {
		return false
	}
	return true
}

// strongest returns the index of the largest power.
func strongest(p []float64) int {
	best := 0
	for i := range p {
		if p[i] > p[best] {
			best = i
		}
	}
	return best
}

// dominates reports whether p[best] stands dtmfRelativePeak above every
// other power in its group.
func dominates(p []float64, best int) bool {
	for i, v := range p {
		if i != best && v*dtmfRelativePeak > p[best] {
			return false
		}
	}
	return true
}
