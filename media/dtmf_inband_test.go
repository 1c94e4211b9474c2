package media

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// dtmfSequence returns 8 kHz PCM holding the keys of seq, each toneMs long
// with gapMs of silence between them, 100 ms of silence before the first and
// after the last. amp is the peak of each dual tone (see DTMFTone).
func dtmfSequence(t testing.TB, seq string, toneMs, gapMs int, amp float64) []int16 {
	t.Helper()
	ms := Rate8k / 1000
	pcm := make([]int16, 100*ms)
	for i, r := range seq {
		d, err := ParseDigit(r)
		require.NoError(t, err)
		if i > 0 {
			pcm = append(pcm, make([]int16, gapMs*ms)...)
		}
		tone := make([]int16, toneMs*ms)
		DTMFTone(d, Rate8k, tone, 0, amp)
		pcm = append(pcm, tone...)
	}
	return append(pcm, make([]int16, 100*ms)...)
}

// ulawRoundTrip returns pcm after G.711 µ-law encoding and decoding, the
// path in-band DTMF takes through a PSTN trunk.
func ulawRoundTrip(pcm []int16) []int16 {
	enc := make([]byte, len(pcm))
	out := make([]int16, len(pcm))
	EncodeULaw(enc, pcm)
	DecodeULaw(out, enc)
	return out
}

// detectDTMF runs a fresh detector over pcm fed in chunks of chunk samples
// and returns the keys it reported.
func detectDTMF(pcm []int16, chunk int) string {
	d := NewDTMFDetector()
	var got []Digit
	for len(pcm) > 0 {
		n := min(chunk, len(pcm))
		got = d.Process(pcm[:n], got)
		pcm = pcm[n:]
	}
	s := make([]rune, len(got))
	for i, g := range got {
		s[i] = g.Rune()
	}
	return string(s)
}

// dbAmp turns a level in dBFS into a linear amplitude.
func dbAmp(db float64) float64 { return math.Pow(10, db/20) }

func TestDTMFDetectorAllDigitsAtLevels(t *testing.T) {
	const all = "0123456789*#ABCD"
	for _, level := range []float64{-3, -6, -10, -15, -20, -25} {
		for _, ulaw := range []bool{false, true} {
			t.Run(fmt.Sprintf("%gdBFS/ulaw=%v", level, ulaw), func(t *testing.T) {
				pcm := dtmfSequence(t, all, 60, 60, dbAmp(level))
				if ulaw {
					pcm = ulawRoundTrip(pcm)
				}
				// The signal is what the test claims: each tone of the
				// first key (0: 941 + 1336 Hz) sits 6 dB under the peak.
				first := pcm[800 : 800+480]
				require.InDelta(t, level-6.02, toneDB(first, 941, Rate8k), 0.5)
				require.InDelta(t, level-6.02, toneDB(first, 1336, Rate8k), 0.5)
				require.Equal(t, all, detectDTMF(pcm, 160))
			})
		}
	}
}

func TestDTMFDetectorDurations(t *testing.T) {
	// Every alignment of the tone against the detector's windows, for
	// every key: Q.24 asks to accept 40 ms and reject short bursts.
	for _, tc := range []struct {
		toneMs int
		want   int // presses per tone
	}{
		{toneMs: 40, want: 1},
		{toneMs: 22, want: 0},
		{toneMs: 20, want: 0},
		{toneMs: 10, want: 0},
	} {
		t.Run(fmt.Sprintf("%dms", tc.toneMs), func(t *testing.T) {
			for d := range Digit(NumDigits) {
				for shift := range dtmfWindow {
					pcm := make([]int16, shift+tc.toneMs*8+800)
					DTMFTone(d, Rate8k, pcm[shift:shift+tc.toneMs*8], 0, dbAmp(-10))
					got := detectDTMF(ulawRoundTrip(pcm), 160)
					require.Len(t, got, tc.want, "digit %v shifted by %d samples: %q", d, shift, got)
					if tc.want > 0 {
						require.Equal(t, d.String(), got)
					}
				}
			}
		})
	}
}

func TestDTMFDetectorSequences(t *testing.T) {
	for _, tc := range []struct {
		name          string
		seq           string
		toneMs, gapMs int
		want          string
	}{
		{name: "123# 40ms", seq: "123#", toneMs: 40, gapMs: 40, want: "123#"},
		{name: "55 40ms gap", seq: "55", toneMs: 40, gapMs: 40, want: "55"},
		{name: "55 long", seq: "55", toneMs: 300, gapMs: 60, want: "55"},
		{name: "no gap between different keys", seq: "19", toneMs: 80, gapMs: 0, want: "19"},
		{name: "held 2 s", seq: "0", toneMs: 2000, want: "0"},
	} {
		for _, ulaw := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ulaw=%v", tc.name, ulaw), func(t *testing.T) {
				pcm := dtmfSequence(t, tc.seq, tc.toneMs, tc.gapMs, dbAmp(-12))
				if ulaw {
					pcm = ulawRoundTrip(pcm)
				}
				// The result must not depend on how the audio is chunked.
				for _, chunk := range []int{160, 1, 37, 320, len(pcm)} {
					require.Equal(t, tc.want, detectDTMF(pcm, chunk), "chunk %d", chunk)
				}
			})
		}
	}
}

func TestDTMFDetectorDropout(t *testing.T) {
	// A 10 ms hole in a held key (a lost packet concealed by silence) must
	// not turn one press into two; a 40 ms pause must.
	for _, tc := range []struct {
		holeMs int
		want   string
	}{
		{holeMs: 5, want: "7"},
		{holeMs: 10, want: "7"},
		{holeMs: 40, want: "77"},
	} {
		t.Run(fmt.Sprintf("%dms", tc.holeMs), func(t *testing.T) {
			for shift := 0; shift < dtmfWindow; shift += 3 {
				pcm := make([]int16, 2400+shift)
				DTMFTone(Digit7, Rate8k, pcm[400+shift:2000+shift], 0, dbAmp(-10))
				clear(pcm[1200+shift : 1200+shift+tc.holeMs*8])
				require.Equal(t, tc.want, detectDTMF(pcm, 160), "shift %d", shift)
			}
		})
	}
}

// dualTone returns n samples of a row and a column tone with the given peak
// amplitudes and a relative frequency error.
func dualTone(row, col float64, ampRow, ampCol, freqErr float64, n int) []int16 {
	lo := sine(row*(1+freqErr), ampRow, Rate8k, n)
	hi := sine(col*(1+freqErr), ampCol, Rate8k, n)
	out := make([]int16, n+1600)
	for i := range lo {
		out[800+i] = lo[i] + hi[i]
	}
	return out
}

func TestDTMFDetectorTwistAndFrequency(t *testing.T) {
	// Digit 9: 852 + 1477 Hz. Twist limits are 8 dB forward (high tone
	// louder) and 4 dB reverse; Q.24 asks to accept ±1.5 % frequency error.
	for _, tc := range []struct {
		name         string
		rowDB, colDB float64
		freqErr      float64
		want         string
	}{
		{name: "forward twist 6 dB", rowDB: -20, colDB: -14, want: "9"},
		{name: "reverse twist 3 dB", rowDB: -14, colDB: -17, want: "9"},
		{name: "forward twist 11 dB", rowDB: -25, colDB: -14, want: ""},
		{name: "reverse twist 7 dB", rowDB: -14, colDB: -21, want: ""},
		{name: "+1.5 %", rowDB: -14, colDB: -14, freqErr: 0.015, want: "9"},
		{name: "-1.5 %", rowDB: -14, colDB: -14, freqErr: -0.015, want: "9"},
		{name: "+6 %", rowDB: -14, colDB: -14, freqErr: 0.06, want: ""},
		{name: "too quiet (-44 dBFS tones)", rowDB: -44, colDB: -44, want: ""},
		{name: "quietest accepted (-36 dBFS tones)", rowDB: -36, colDB: -36, want: "9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pcm := dualTone(852, 1477, dbAmp(tc.rowDB), dbAmp(tc.colDB), tc.freqErr, 800)
			tone := pcm[800:1600]
			require.InDelta(t, tc.rowDB-tc.colDB,
				toneDB(tone, 852*(1+tc.freqErr), Rate8k)-toneDB(tone, 1477*(1+tc.freqErr), Rate8k), 0.5)
			require.Equal(t, tc.want, detectDTMF(pcm, 160))
		})
	}
}

func TestDTMFDetectorRejectsNonDigits(t *testing.T) {
	n := Rate8k // 1 s
	mix := func(parts ...[]int16) []int16 {
		out := make([]int16, n)
		for _, p := range parts {
			for i := range out {
				out[i] += p[i]
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		pcm  []int16
	}{
		{name: "697 Hz alone", pcm: sine(697, 0.5, Rate8k, n)},
		{name: "1209 Hz alone", pcm: sine(1209, 0.5, Rate8k, n)},
		{name: "two row tones", pcm: mix(sine(697, 0.25, Rate8k, n), sine(852, 0.25, Rate8k, n))},
		{name: "dial tone 350+440", pcm: mix(sine(350, 0.25, Rate8k, n), sine(440, 0.25, Rate8k, n))},
		{name: "digit plus its 2nd harmonics", pcm: mix(
			sine(770, 0.2, Rate8k, n), sine(1336, 0.2, Rate8k, n),
			sine(2*1336, 0.15, Rate8k, n), sine(2*770, 0.15, Rate8k, n))},
		{name: "digit 5 plus a 400 Hz tone", pcm: mix(
			sine(770, 0.2, Rate8k, n), sine(1336, 0.2, Rate8k, n), sine(400, 0.2, Rate8k, n))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Greater(t, rmsDBFS(tc.pcm), -15.0) // loud, not silence
			require.Empty(t, detectDTMF(tc.pcm, 160))
		})
	}
}

func TestDTMFDetectorRejectsSpeech(t *testing.T) {
	// Talk-off: a minute of speech from several voices must not produce a
	// single key, at normal level, twice as loud with clipping, and after
	// G.711.
	sp := speech(t, Rate8k, 60)
	require.Greater(t, rmsDBFS(sp), -35.0, "speech is audible")
	loud := make([]int16, len(sp))
	for i, s := range sp {
		loud[i] = int16(max(-32768, min(32767, 2*int32(s))))
	}
	for _, tc := range []struct {
		name string
		pcm  []int16
	}{
		{name: "speech", pcm: sp},
		{name: "speech x2 clipped", pcm: loud},
		{name: "speech ulaw", pcm: ulawRoundTrip(sp)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Empty(t, detectDTMF(tc.pcm, 160))
		})
	}
	// The same detector still hears a key pressed over the speech's end.
	keyed := append(append([]int16(nil), sp[:8000]...), dtmfSequence(t, "4", 60, 0, dbAmp(-10))...)
	require.Equal(t, "4", detectDTMF(keyed, 160))
}

func TestDTMFDetectorHeldAndNoAlloc(t *testing.T) {
	pcm := dtmfSequence(t, "8", 200, 0, dbAmp(-10))
	d := NewDTMFDetector()
	dst := make([]Digit, 0, 4)
	var heldFrames int
	allocs := testing.AllocsPerRun(1, func() {
		d.Reset()
		dst = dst[:0]
		heldFrames = 0
		for i := 0; i+160 <= len(pcm); i += 160 {
			dst = d.Process(pcm[i:i+160], dst)
			if k, ok := d.Held(); ok {
				require.Equal(t, Digit8, k)
				heldFrames++
			}
		}
	})
	require.Zero(t, allocs)
	require.Equal(t, []Digit{Digit8}, dst)
	// Held from about 32 ms into the 200 ms tone until the release.
	require.InDelta(t, 9, heldFrames, 1)
}

func TestDTMFDetectorSecondHarmonic(t *testing.T) {
	// A harmonic 7 dB under its tone leaves the two tones 90 % of the
	// energy, so only the second-harmonic test can reject it: voiced
	// speech, not a generator.
	n := Rate8k / 2
	withHarmonic := func(row, col, harm, harmDB float64) []int16 {
		out := make([]int16, n+1600)
		lo, hi := sine(row, 0.3, Rate8k, n), sine(col, 0.3, Rate8k, n)
		h := sine(harm, 0.3*dbAmp(harmDB), Rate8k, n)
		for i := range lo {
			out[800+i] = lo[i] + hi[i] + h[i]
		}
		return out
	}
	for _, tc := range []struct {
		name string
		pcm  []int16
		want string
	}{
		{name: "5, column harmonic -7 dB", pcm: withHarmonic(770, 1336, 2*1336, -7), want: ""},
		{name: "5, column harmonic -15 dB", pcm: withHarmonic(770, 1336, 2*1336, -15), want: "5"},
		{name: "4, row harmonic -7 dB", pcm: withHarmonic(770, 1209, 2*770, -7), want: ""},
		{name: "4, row harmonic -15 dB", pcm: withHarmonic(770, 1209, 2*770, -15), want: "4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, detectDTMF(tc.pcm, 160))
		})
	}
}
