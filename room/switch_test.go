package room

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
)

// residualDB returns what is left of x after removing the best-fitting
// sinusoid at freq (least squares over amplitude and phase), in dB relative
// to that sinusoid: the noise and distortion a codec or a stream switch
// added to a pure tone.
func residualDB(x []int16, freq float64, rate int) float64 {
	var ss, sc, cc, xs, xc float64
	for i, v := range x {
		s, c := math.Sincos(2 * math.Pi * freq * float64(i) / float64(rate))
		ss, sc, cc = ss+s*s, sc+s*c, cc+c*c
		xs, xc = xs+float64(v)*s, xc+float64(v)*c
	}
	det := ss*cc - sc*sc
	a, b := (xs*cc-xc*sc)/det, (xc*ss-xs*sc)/det
	var res, sig float64
	for i, v := range x {
		s, c := math.Sincos(2 * math.Pi * freq * float64(i) / float64(rate))
		fit := a*s + b*c
		sig += fit * fit
		res += (float64(v) - fit) * (float64(v) - fit)
	}
	return 10 * math.Log10(res/sig+1e-20)
}

// TestEncoderSwitch: with real Opus, a participant that starts speaking
// moves to its own (primed) encoder and, after the hangover, back to the
// shared one; what it hears (another participant's 440 Hz tone) goes on at
// the same level without a click at either switch: no 10 ms window near a
// switch has more than -25 dB of residual (about -29 dB measured; without
// priming the first frame of the own encoder drops 7 dB, its look-ahead
// still empty).
func TestEncoderSwitch(t *testing.T) {
	opus := OpusFormat(media.DefaultOpusConfig())
	r, c, _ := newTestRoom(t, WithVAD(DefaultVADThreshold, 100e6), WithEncoderHangover(200e6))
	a := newPeer(t, "a", 440, 0.2, opus)
	b := newPeer(t, "b", 0, 0.2, opus)
	l := newPeer(t, "l", 0, 0, opus) // keeps the shared stream busy
	for _, p := range []*peer{a, b, l} {
		require.NoError(t, r.Join(p))
	}
	c.run(r, 50)
	b.src = tone(660, 0.2)
	c.run(r, 10)
	b.src = nil
	c.run(r, 50)

	// b's packets: shared 1..50, own 51..(60+5+1+10 = 76), shared after.
	var switches []int
	for k := 1; k < len(b.pkts); k++ {
		if b.pkts[k].Shared != b.pkts[k-1].Shared {
			switches = append(switches, k)
		}
	}
	require.Equal(t, []int{50, 76}, switches)

	const win = media.FrameSamples / 2 // 10 ms
	var steady []float64
	for w := 40 * 2; w < 106*2; w++ {
		x := b.got[w*win : (w+1)*win]
		res := residualDB(x, 440, media.Rate48k)
		require.InDelta(t, 20*math.Log10(0.2), toneDB(x, 440, media.Rate48k), 1.5, "level at %d ms", w*10)
		near := false
		for _, s := range switches {
			near = near || (w >= 2*s-2 && w < 2*s+6)
		}
		if !near {
			steady = append(steady, res)
			continue
		}
		require.Less(t, res, -25.0, "residual at %d ms, switch at %v", w*10, switches)
	}
	worst := -200.0
	for _, s := range steady {
		worst = max(worst, s)
	}
	t.Logf("residual away from switches: worst %.1f dB", worst)
	require.Less(t, worst, -30.0)
}
