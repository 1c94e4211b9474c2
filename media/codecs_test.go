package media

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// codecRun encodes in frame by frame and decodes every payload, returning
// the decoded PCM and the payload sizes.
func codecRun(t testing.TB, enc Encoder, dec Decoder, in []int16) (out []int16, sizes []int) {
	t.Helper()
	spf := SamplesPerFrame(enc.Rate())
	payload := make([]byte, MaxOpusPayload)
	pcm := make([]int16, SamplesPerFrame(dec.Rate()))
	for f := 0; f+spf <= len(in); f += spf {
		n, err := enc.Encode(in[f:f+spf], payload)
		require.NoError(t, err)
		m, err := dec.Decode(payload[:n], pcm)
		require.NoError(t, err)
		out = append(out, pcm[:m]...)
		sizes = append(sizes, n)
	}
	return out, sizes
}

// codecBandDB returns the power of samples between lo and hi Hz in dB
// relative to a full-scale sine, summing Goertzel bins one block-length
// apart (a sine on a bin counts whole, as in toneDB).
func codecBandDB(samples []int16, lo, hi float64, rate int) float64 {
	step := float64(rate) / float64(len(samples))
	var p float64
	for f := math.Ceil(lo/step) * step; f < hi; f += step {
		p += GoertzelPower(samples, f, rate)
	}
	return 10 * math.Log10(p/0.25+1e-20)
}

func newOpusPair(t testing.TB, opts ...OpusOption) (*OpusEncoder, *OpusDecoder) {
	t.Helper()
	enc, err := NewOpusEncoder(opts...)
	require.NoError(t, err)
	dec, err := NewOpusDecoder(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { enc.Close(); dec.Close() })
	return enc, dec
}

// codecNoise returns n samples of deterministic white noise at about
// -15 dBFS, a broadband signal whose delay through a codec is unambiguous
// (a tone's is only known modulo its period).
func codecNoise(n int) []int16 {
	out := make([]int16, n)
	seed := uint32(7)
	for i := range out {
		seed = seed*1664525 + 1013904223
		out[i] = int16(int32(seed>>16)-32768) / 4
	}
	return out
}

func TestG722Tones(t *testing.T) {
	const skip = Rate16k / 10 // ADPCM step sizes adapt in the first 100 ms
	noise := codecNoise(Rate16k / 2)
	out, _ := codecRun(t, NewG722Encoder(), NewG722Decoder(), noise)
	delay, corr := bestLag(noise[skip:2*skip], out[skip:], 64)
	t.Logf("delay %d samples (noise correlation %.3f)", delay, corr)
	require.Equal(t, 22, delay, "the two 24-tap QMFs delay G.722 by 22 samples")
	require.Greater(t, corr, 0.9)

	// G.722 is specified for 50–7000 Hz; its digital path passes 7.5 kHz
	// too (the band edge is the analogue filter in front of a phone's ADC).
	for _, freq := range []float64{1000, 5000, 7000, 7500} {
		t.Run(fmt.Sprintf("%gHz", freq), func(t *testing.T) {
			in := sine(freq, 0.5, Rate16k, Rate16k)
			out, sizes := codecRun(t, NewG722Encoder(), NewG722Decoder(), in)
			require.Len(t, out, len(in))
			require.Equal(t, g722FrameBytes, sizes[0])
			want, got := in[skip:len(in)-delay], out[skip+delay:]
			snr := snrDB(want, got, 0)
			t.Logf("SNR %.1f dB, level %.2f → %.2f dB", snr, toneDB(want, freq, Rate16k), toneDB(got, freq, Rate16k))
			require.InDelta(t, toneDB(want, freq, Rate16k), toneDB(got, freq, Rate16k), 1)
			require.GreaterOrEqual(t, snr, 20.0)
		})
	}
}

func TestG722ConcealFades(t *testing.T) {
	enc, dec := NewG722Encoder(), NewG722Decoder()
	in := sine(440, 0.5, Rate16k, 10*g722FrameSamples)
	payload := make([]byte, g722FrameBytes)
	pcm := make([]int16, g722FrameSamples)
	for f := 0; f < len(in); f += g722FrameSamples {
		_, err := enc.Encode(in[f:f+g722FrameSamples], payload)
		require.NoError(t, err)
		_, err = dec.Decode(payload, pcm)
		require.NoError(t, err)
	}
	levels := []float64{rmsDBFS(pcm)}
	for range fadeFrames + 2 {
		n, err := dec.Conceal(nil, pcm)
		require.NoError(t, err)
		require.Equal(t, g722FrameSamples, n)
		levels = append(levels, rmsDBFS(pcm))
	}
	t.Logf("levels: %.1f", levels)
	require.InDelta(t, levels[0]-2.3, levels[1], 0.5, "first loss ramps 0 → -6 dB")
	for k := 2; k < fadeFrames; k++ {
		require.InDelta(t, levels[k-1]-6, levels[k], 0.5, "loss %d", k)
	}
	require.Less(t, levels[fadeFrames+1], -150.0, "silent after %d losses", fadeFrames)
}

func TestOpusSpeechRoundTrip(t *testing.T) {
	in := speech(t, Rate48k, 5)
	enc, dec := newOpusPair(t, WithOpusBitrate(32000))
	out, sizes := codecRun(t, enc, dec, in)
	var bytes int
	for _, n := range sizes {
		bytes += n
	}
	kbps := float64(bytes*8) / 5 / 1000
	lag, _ := bestLag(in[Rate48k:Rate48k+Rate48k/5], out[Rate48k:], 1000)
	_, corr := bestLag(in[:len(in)-lag], out[lag:], 0)
	t.Logf("delay %d samples, correlation %.3f, %.1f kbit/s", lag, corr, kbps)
	require.InDelta(t, 312, lag, 10, "libopus VoIP delay is 6.5 ms")
	require.GreaterOrEqual(t, corr, 0.9)
	require.InDelta(t, 32, kbps, 6)
}

func TestOpusToneStaysInBand(t *testing.T) {
	in := sine(1000, 0.5, Rate48k, Rate48k)
	enc, dec := newOpusPair(t)
	out, _ := codecRun(t, enc, dec, in)
	block := out[Rate48k/2 : Rate48k/2+Rate48k/10] // 100 ms: bins 10 Hz apart
	tone, high := toneDB(block, 1000, Rate48k), codecBandDB(block, 3000, 24000, Rate48k)
	t.Logf("1 kHz at %.1f dB, 3–24 kHz at %.1f dB", tone, high)
	require.InDelta(t, -6, tone, 1)
	require.GreaterOrEqual(t, tone-high, 30.0)
}

func TestOpusPLCDecays(t *testing.T) {
	in := speech(t, Rate48k, 5)
	enc, dec := newOpusPair(t)
	// Lose the packets after the first loud frame past 1 s.
	end := Rate48k
	for ; rmsDBFS(in[end-FrameSamples:end]) < -25; end += FrameSamples {
		require.Less(t, end, len(in), "no loud speech")
	}
	out, _ := codecRun(t, enc, dec, in[:end])
	require.Greater(t, rmsDBFS(out[len(out)-FrameSamples:]), -40.0, "loss must follow speech")
	var levels []float64
	pcm := make([]int16, FrameSamples)
	for range 10 {
		n, err := dec.Conceal(nil, pcm)
		require.NoError(t, err)
		require.Equal(t, FrameSamples, n)
		levels = append(levels, rmsDBFS(pcm))
	}
	t.Logf("PLC levels: %.1f", levels)
	require.Greater(t, levels[0], -40.0, "first concealed frame continues the speech")
	// libopus fades its extrapolation out over about 100 ms, down to a
	// noise floor.
	for k := 1; k < 6; k++ {
		require.Less(t, levels[k], levels[k-1], "loss %d", k+1)
	}
	for k := 6; k < len(levels); k++ {
		require.Less(t, levels[k], -60.0, "loss %d", k+1)
	}
}

// TestOpusComplexityFidelity: at the mix's 32 kbit/s with FEC, complexity
// 1 (rtc's default, a third of complexity 5's CPU in BenchmarkOpusEncode)
// reproduces speech as faithfully as 5 does, by waveform correlation.
func TestOpusComplexityFidelity(t *testing.T) {
	in := speech(t, Rate48k, 2)
	corr := map[int]float64{}
	for _, c := range []int{1, 5} {
		enc, dec := newOpusPair(t, WithOpusComplexity(c), WithOpusBitrate(32000), WithOpusFEC(10))
		out, _ := codecRun(t, enc, dec, in)
		lag, _ := bestLag(in[Rate48k/2:Rate48k/2+Rate48k/5], out[Rate48k/2:], 1000)
		_, corr[c] = bestLag(in[:len(in)-lag], out[lag:], 0)
		t.Logf("complexity %d: delay %d samples, correlation %.3f", c, lag, corr[c])
	}
	require.Greater(t, corr[1], 0.9)
	require.InDelta(t, corr[5], corr[1], 0.02)
}

func TestOpusFECRecoversLoss(t *testing.T) {
	for _, c := range []int{1, 5} {
		t.Run(fmt.Sprintf("complexity=%d", c), func(t *testing.T) { testOpusFECRecoversLoss(t, c) })
	}
}

func testOpusFECRecoversLoss(t *testing.T, complexity int) {
	in := speech(t, Rate48k, 5)
	enc, ref := newOpusPair(t, WithOpusFEC(20), WithOpusComplexity(complexity))
	var packets [][]byte
	var want []int16 // decoded without loss
	pcm := make([]int16, FrameSamples)
	for f := 0; f+FrameSamples <= len(in); f += FrameSamples {
		p := make([]byte, MaxOpusPayload)
		n, err := enc.Encode(in[f:f+FrameSamples], p)
		require.NoError(t, err)
		packets = append(packets, p[:n])
		_, err = ref.Decode(p[:n], pcm)
		require.NoError(t, err)
		want = append(want, pcm...)
	}
	fec, err := NewOpusDecoder()
	require.NoError(t, err)
	plc, err := NewOpusDecoder()
	require.NoError(t, err)
	var fecCorr, plcCorr []float64
	fecPCM, plcPCM := make([]int16, FrameSamples), make([]int16, FrameSamples)
	for i := range packets {
		wantFrame := want[i*FrameSamples : (i+1)*FrameSamples]
		if i%10 != 5 || i+1 == len(packets) || rmsDBFS(wantFrame) < -40 {
			_, err := fec.Decode(packets[i], fecPCM)
			require.NoError(t, err)
			_, err = plc.Decode(packets[i], plcPCM)
			require.NoError(t, err)
			continue
		}
		_, err := fec.Conceal(packets[i+1], fecPCM)
		require.NoError(t, err)
		_, err = plc.Conceal(nil, plcPCM)
		require.NoError(t, err)
		_, c := bestLag(wantFrame, fecPCM, 0)
		fecCorr = append(fecCorr, c)
		_, c = bestLag(wantFrame, plcPCM, 0)
		plcCorr = append(plcCorr, c)
	}
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	t.Logf("%d losses: correlation with the lossless decode FEC %.3f, PLC %.3f",
		len(fecCorr), mean(fecCorr), mean(plcCorr))
	require.GreaterOrEqual(t, len(fecCorr), 10)
	require.Greater(t, mean(fecCorr), mean(plcCorr)+0.2)
	require.Greater(t, mean(fecCorr), 0.7)
}

func TestOpusDTXSilence(t *testing.T) {
	enc, dec := newOpusPair(t, WithOpusDTX(true))
	out, sizes := codecRun(t, enc, dec, make([]int16, 2*Rate48k))
	// libopus keeps sending for 200 ms (10 frames) of silence before DTX
	// starts, then sends a comfort-noise update every 400 ms.
	tiny := 0
	for _, n := range sizes[10:] {
		if n <= 3 {
			tiny++
		}
	}
	t.Logf("%d of %d payloads after the hang-over are ≤ 3 bytes; sizes %v", tiny, len(sizes)-10, sizes)
	require.GreaterOrEqual(t, tiny, (len(sizes)-10)*9/10)
	require.Less(t, rmsDBFS(out), -60.0, "silence decodes as (near) silence")
}

// aacADTS prefixes a raw AAC-LC frame with the 7-byte ADTS header of
// ISO 13818-7 §6.2.1 / ISO 14496-3 §1.A.2.2 so ffmpeg can read a plain file.
func aacADTS(frame []byte, freqIndex, channels int) []byte {
	n := len(frame) + 7
	h := []byte{
		0xFF, 0xF1, // syncword, MPEG-4, layer 0, no CRC
		byte(1<<6 | freqIndex<<2 | channels>>2), // profile LC (2-1), rate, private 0
		byte(channels&3<<6 | n>>11),
		byte(n >> 3),
		byte(n&7<<5 | 0x1F), // buffer fullness 0x7FF: variable rate
		0xFC,                // one raw data block
	}
	return append(h, frame...)
}

func TestAACEncodeDecodesToTone(t *testing.T) {
	enc, err := NewAACEncoder(Rate48k, 1, 64000)
	require.NoError(t, err)
	defer enc.Close()
	require.Equal(t, []byte{0x11, 0x88}, enc.AudioSpecificConfig())

	const frames = Rate48k/AACFrameSamples + 1 // just over 1 s
	in := sine(1000, 0.5, Rate48k, frames*AACFrameSamples)
	var adts []byte
	var bytes int
	dst := make([]byte, AACMaxPayload)
	for f := range frames {
		n, err := enc.Encode(in[f*AACFrameSamples:(f+1)*AACFrameSamples], dst)
		require.NoError(t, err)
		require.Positive(t, n)
		require.Zero(t, dst[0]>>5, "raw frame starts with a single channel element, not ADTS sync")
		adts = append(adts, aacADTS(dst[:n], 3, 1)...)
		bytes += n
	}
	kbps := float64(bytes*8) / (float64(frames*AACFrameSamples) / Rate48k) / 1000
	t.Logf("%d frames, %.1f kbit/s", frames, kbps)
	require.InDelta(t, 64, kbps, 16)

	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg not installed: run scripts/bootstrap")
	}
	file := filepath.Join(t.TempDir(), "tone.aac")
	require.NoError(t, os.WriteFile(file, adts, 0o600))
	raw, err := exec.Command(ffmpeg, "-v", "error", "-f", "aac", "-i", file,
		"-f", "s16le", "-ac", "1", "-ar", "48000", "-").Output()
	require.NoError(t, err)
	out := make([]int16, len(raw)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	require.InDelta(t, len(in), len(out), 2*AACFrameSamples)
	block := out[Rate48k/2 : Rate48k/2+Rate48k/10]
	tone, high := toneDB(block, 1000, Rate48k), codecBandDB(block, 3000, 24000, Rate48k)
	t.Logf("decoded by ffmpeg: 1 kHz at %.1f dB, 3–24 kHz at %.1f dB", tone, high)
	require.InDelta(t, -6, tone, 1)
	require.GreaterOrEqual(t, tone-high, 30.0)
}

func TestAACAudioSpecificConfig(t *testing.T) {
	tests := []struct {
		rate, channels int
		want           []byte
	}{
		{48000, 1, []byte{0x11, 0x88}},
		{48000, 2, []byte{0x11, 0x90}},
		{44100, 2, []byte{0x12, 0x10}},
		{16000, 1, []byte{0x14, 0x08}},
	}
	for _, tc := range tests {
		enc, err := NewAACEncoder(tc.rate, tc.channels, 32000*tc.channels)
		require.NoError(t, err)
		require.Equal(t, tc.want, enc.AudioSpecificConfig(), "%d Hz × %d", tc.rate, tc.channels)
		require.NoError(t, enc.Close())
	}
}

func TestCodecConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		new  func() error
	}{
		{"aac rate", func() error { _, err := NewAACEncoder(44000, 1, 64000); return err }},
		{"aac channels", func() error { _, err := NewAACEncoder(48000, 3, 64000); return err }},
		{"aac bitrate", func() error { _, err := NewAACEncoder(48000, 1, 1000); return err }},
		{"opus rate", func() error { _, err := NewOpusEncoder(WithOpusRate(44100)); return err }},
		{"opus complexity", func() error { _, err := NewOpusEncoder(WithOpusComplexity(11)); return err }},
		{"opus loss", func() error { _, err := NewOpusEncoder(WithOpusFEC(101)); return err }},
		{"opus decoder rate", func() error { _, err := NewOpusDecoder(WithOpusRate(22050)); return err }},
	}
	for _, tc := range tests {
		require.ErrorIs(t, tc.new(), ErrCodecConfig, tc.name)
	}
}

// TestCodecLifecycle checks every codec's misuse paths: wrong frame size,
// short buffers, use after Close and a second Close.
func TestCodecLifecycle(t *testing.T) {
	newOpusEnc := func() Encoder { e, err := NewOpusEncoder(); require.NoError(t, err); return e }
	newOpusDec := func() Decoder { d, err := NewOpusDecoder(); require.NoError(t, err); return d }
	tests := []struct {
		name string
		enc  func() Encoder
		dec  func() Decoder
	}{
		{"pcmu", func() Encoder { return NewPCMUEncoder() }, func() Decoder { return NewPCMUDecoder() }},
		{"pcma", func() Encoder { return NewPCMAEncoder() }, func() Decoder { return NewPCMADecoder() }},
		{"g722", func() Encoder { return NewG722Encoder() }, func() Decoder { return NewG722Decoder() }},
		{"opus", newOpusEnc, newOpusDec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, dec := tc.enc(), tc.dec()
			spf := SamplesPerFrame(enc.Rate())
			pcm, dst := make([]int16, spf), make([]byte, MaxOpusPayload)
			_, err := enc.Encode(pcm[:spf-1], dst)
			require.ErrorIs(t, err, ErrCodecFrameSize)
			_, err = enc.Encode(append(pcm, 0), dst)
			require.ErrorIs(t, err, ErrCodecFrameSize)
			n, err := enc.Encode(pcm, dst)
			require.NoError(t, err)
			_, err = enc.Encode(pcm, dst[:0])
			require.ErrorIs(t, err, ErrCodecShortBuffer)
			_, err = dec.Decode(dst[:n], pcm[:1])
			require.ErrorIs(t, err, ErrCodecShortBuffer)
			_, err = dec.Conceal(nil, pcm[:1])
			require.ErrorIs(t, err, ErrCodecShortBuffer)

			require.NoError(t, enc.Close())
			require.NoError(t, enc.Close())
			_, err = enc.Encode(pcm, dst)
			require.ErrorIs(t, err, ErrCodecClosed)
			require.NoError(t, dec.Close())
			require.NoError(t, dec.Close())
			_, err = dec.Decode(dst[:n], pcm)
			require.ErrorIs(t, err, ErrCodecClosed)
			_, err = dec.Conceal(nil, pcm)
			require.ErrorIs(t, err, ErrCodecClosed)
		})
	}
	t.Run("aac", func(t *testing.T) {
		enc, err := NewAACEncoder(Rate48k, 2, 128000)
		require.NoError(t, err)
		pcm, dst := make([]int16, 2*AACFrameSamples), make([]byte, AACMaxPayload)
		_, err = enc.Encode(pcm[:AACFrameSamples], dst)
		require.ErrorIs(t, err, ErrCodecFrameSize, "stereo takes 2×1024 interleaved samples")
		_, err = enc.Encode(pcm, dst[:1])
		require.ErrorIs(t, err, ErrCodecShortBuffer)
		_, err = enc.Encode(pcm, dst)
		require.NoError(t, err)
		require.NoError(t, enc.Close())
		require.NoError(t, enc.Close())
		_, err = enc.Encode(pcm, dst)
		require.ErrorIs(t, err, ErrCodecClosed)
	})
}

// TestOpusApplicationNames: every application has a name ParseOpusApplication
// takes back, and anything else is refused with the names allowed.
func TestOpusApplicationNames(t *testing.T) {
	for _, a := range []OpusApplication{OpusVoIP, OpusAudio, OpusRestrictedLowDelay} {
		got, err := ParseOpusApplication(a.String())
		require.NoError(t, err)
		require.Equal(t, a, got)
	}
	_, err := ParseOpusApplication("celt")
	require.ErrorIs(t, err, ErrCodecConfig)
	require.ErrorContains(t, err, `"celt", want voip, audio or lowdelay`)
	require.Equal(t, "OpusApplication(7)", OpusApplication(7).String())
}
