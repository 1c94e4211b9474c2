package media

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// g711Law bundles one law's functions for table tests.
type g711Law struct {
	name   string
	encode func([]byte, []int16) int
	decode func([]int16, []byte) int
	newEnc func() Encoder
	newDec func() Decoder
}

var g711Laws = []g711Law{
	{"ulaw", EncodeULaw, DecodeULaw,
		func() Encoder { return NewPCMUEncoder() }, func() Decoder { return NewPCMUDecoder() }},
	{"alaw", EncodeALaw, DecodeALaw,
		func() Encoder { return NewPCMAEncoder() }, func() Decoder { return NewPCMADecoder() }},
}

// refULawExpand is µ-law decoding written as ITU-T G.191's g711.c states it
// (step size per segment, half-step offset, bias 4·33), independent of the
// table builder.
func refULawExpand(c byte) int16 {
	sign := 1
	if c < 0x80 {
		sign = -1
	}
	m := int(^c)
	exponent := (m >> 4) & 7
	step := 4 << (exponent + 1)
	return int16(sign * ((0x80 << exponent) + step*(m&0xF) + step/2 - 4*33))
}

// refALawExpand is A-law decoding as G.191's g711.c states it.
func refALawExpand(c byte) int16 {
	ix := int(c^0x55) & 0x7F
	iexp, mant := ix>>4, ix&0xF
	if iexp > 0 {
		mant += 16
	}
	mant = mant<<4 + 8
	if iexp > 1 {
		mant <<= iexp - 1
	}
	if c > 127 {
		return int16(mant)
	}
	return int16(-mant)
}

// refULawCompress and refALawCompress are G.191's quantisers (segment found
// by shifting, not by bit length).
func refULawCompress(x int16) byte {
	var absno int
	if x < 0 {
		absno = int(^x)>>2 + 33
	} else {
		absno = int(x)>>2 + 33
	}
	absno = min(absno, 0x1FFF)
	segno := 1
	for i := absno >> 6; i != 0; i >>= 1 {
		segno++
	}
	out := (8-segno)<<4 | (0xF - (absno>>segno)&0xF)
	if x >= 0 {
		out |= 0x80
	}
	return byte(out)
}

func refALawCompress(x int16) byte {
	var ix int
	if x < 0 {
		ix = int(^x) >> 4
	} else {
		ix = int(x) >> 4
	}
	if ix > 15 {
		iexp := 1
		for ix > 16+15 {
			ix >>= 1
			iexp++
		}
		ix += (iexp - 1) << 4
	}
	if x >= 0 {
		ix |= 0x80
	}
	return byte(ix ^ 0x55)
}

func TestG711MatchesReference(t *testing.T) {
	refs := map[string]struct {
		expand   func(byte) int16
		compress func(int16) byte
	}{
		"ulaw": {refULawExpand, refULawCompress},
		"alaw": {refALawExpand, refALawCompress},
	}
	for _, law := range g711Laws {
		t.Run(law.name, func(t *testing.T) {
			ref := refs[law.name]
			codes := make([]byte, 256)
			for i := range codes {
				codes[i] = byte(i)
			}
			pcm := make([]int16, 256)
			require.Equal(t, 256, law.decode(pcm, codes))
			for c, v := range pcm {
				require.Equal(t, ref.expand(byte(c)), v, "decode of code %#02x", c)
			}
			all := make([]int16, 1<<16)
			for i := range all {
				all[i] = int16(i)
			}
			enc := make([]byte, len(all))
			require.Equal(t, len(all), law.encode(enc, all))
			for i, x := range all {
				require.Equal(t, ref.compress(x), enc[i], "encode of %d", x)
			}
		})
	}
}

// TestG711FollowsCompandingLaw checks the segmented code against the
// continuous laws of G.711: µ-law F(x) = ln(1+µ|x|)/ln(1+µ) with µ = 255,
// A-law F(x) = A|x|/(1+ln A) below 1/A and (1+ln(A|x|))/(1+ln A) above, with
// A = 87.6. The code's magnitude index (0..127) must follow 128·F of its
// decoded value to within the chord approximation.
func TestG711FollowsCompandingLaw(t *testing.T) {
	ulaw := func(x float64) float64 { return math.Log1p(255*x) / math.Log(256) }
	alaw := func(x float64) float64 {
		const a = 87.6
		if x < 1/a {
			return a * x / (1 + math.Log(a))
		}
		return (1 + math.Log(a*x)) / (1 + math.Log(a))
	}
	tests := []struct {
		name     string
		decode   func([]int16, []byte) int
		index    func(c byte) int // 0 = smallest magnitude
		law      func(float64) float64
		fullSc   float64 // decoder value of x = 1
		maxError float64 // codes
	}{
		{"ulaw", DecodeULaw, func(c byte) int { return 127 - int(c&0x7F) }, ulaw, 32636, 1.5},
		{"alaw", DecodeALaw, func(c byte) int { return int((c ^ 0x55) & 0x7F) }, alaw, 32768, 1.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var worst float64
			for c := 0x80; c < 0x100; c++ {
				var v [1]int16
				tc.decode(v[:], []byte{byte(c)})
				want := 128*tc.law(float64(v[0])/tc.fullSc) - 0.5
				worst = max(worst, math.Abs(want-float64(tc.index(byte(c)))))
			}
			t.Logf("worst deviation from the continuous law: %.2f codes", worst)
			require.Less(t, worst, tc.maxError)
		})
	}
}

func TestG711CodeWordRoundTrip(t *testing.T) {
	for _, law := range g711Laws {
		t.Run(law.name, func(t *testing.T) {
			for c := range 256 {
				var pcm [1]int16
				var back [1]byte
				law.decode(pcm[:], []byte{byte(c)})
				law.encode(back[:], pcm[:])
				want := byte(c)
				if law.name == "ulaw" && c == 0x7F {
					// G.711 Table 2a: negative zero decodes to 0 like 0xFF,
					// and 0 encodes as positive zero.
					want = 0xFF
				}
				require.Equal(t, want, back[0], "code %#02x decoded to %d", c, pcm[0])
			}
		})
	}
}

func TestG711SineSNR(t *testing.T) {
	// 1020 Hz, the "1 kHz" of ITU-T O.133: exactly 1000 Hz repeats the
	// same 8 sample values at 8 kHz and measures those, not the quantiser.
	const freq = 1020
	in := sine(freq, 0.5, Rate8k, Rate8k) // 1 s at -6 dBFS
	for _, law := range g711Laws {
		t.Run(law.name, func(t *testing.T) {
			enc, dec := law.newEnc(), law.newDec()
			out := make([]int16, 0, len(in))
			var payload [g711FrameSamples]byte
			var pcm [g711FrameSamples]int16
			for f := 0; f+g711FrameSamples <= len(in); f += g711FrameSamples {
				n, err := enc.Encode(in[f:f+g711FrameSamples], payload[:])
				require.NoError(t, err)
				require.Equal(t, g711FrameSamples, n)
				m, err := dec.Decode(payload[:n], pcm[:])
				require.NoError(t, err)
				out = append(out, pcm[:m]...)
			}
			snr := snrDB(in, out, 0)
			t.Logf("SNR %.1f dB", snr)
			require.GreaterOrEqual(t, snr, 35.0)
			require.InDelta(t, toneDB(in, freq, Rate8k), toneDB(out, freq, Rate8k), 0.1)
		})
	}
}

func TestG711Silence(t *testing.T) {
	tests := []struct {
		law  g711Law
		idle byte // the code of digital silence
	}{
		{g711Laws[0], 0xFF},
		{g711Laws[1], 0xD5},
	}
	for _, tc := range tests {
		t.Run(tc.law.name, func(t *testing.T) {
			silence := make([]int16, g711FrameSamples)
			payload := make([]byte, g711FrameSamples)
			tc.law.encode(payload, silence)
			for _, c := range payload {
				require.Equal(t, tc.idle, c)
			}
			out := make([]int16, g711FrameSamples)
			tc.law.decode(out, payload)
			// A-law has no zero level: its smallest step decodes to ±8.
			require.Less(t, rmsDBFS(out), -70.0)
			for _, s := range out {
				require.LessOrEqual(t, math.Abs(float64(s)), 8.0)
			}
		})
	}
}

func TestG711ConcealFades(t *testing.T) {
	for _, law := range g711Laws {
		t.Run(law.name, func(t *testing.T) {
			enc, dec := law.newEnc(), law.newDec()
			tone := sine(440, 0.5, Rate8k, g711FrameSamples)
			payload := make([]byte, g711FrameSamples)
			pcm := make([]int16, g711FrameSamples)
			_, err := enc.Encode(tone, payload)
			require.NoError(t, err)
			_, err = dec.Decode(payload, pcm)
			require.NoError(t, err)
			base := rmsDBFS(pcm)
			for k := 1; k <= 7; k++ {
				n, err := dec.Conceal(payload, pcm) // next is ignored
				require.NoError(t, err)
				require.Equal(t, g711FrameSamples, n)
				level := rmsDBFS(pcm)
				if k > fadeFrames {
					require.Less(t, level, -150.0, "loss %d must be silent", k)
					continue
				}
				// Loss k ramps the gain from g0 = 2^-(k-1) to g1 = 2^-k (0
				// for the last): mean power (g0²+g0·g1+g1²)/3 of the frame.
				g0, g1 := math.Pow(0.5, float64(k-1)), math.Pow(0.5, float64(k))
				if k == fadeFrames {
					g1 = 0
				}
				want := base + 10*math.Log10((g0*g0+g0*g1+g1*g1)/3)
				require.InDelta(t, want, level, 0.5, "loss %d", k)
			}
			// A good packet ends the fade.
			_, err = dec.Decode(payload, pcm)
			require.NoError(t, err)
			_, err = dec.Conceal(nil, pcm)
			require.NoError(t, err)
			require.Greater(t, rmsDBFS(pcm), rmsDBFS(tone)-4)
		})
	}
}
