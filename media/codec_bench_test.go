package media

import (
	"testing"
)

// Codec benchmarks: the cost of one 20 ms frame (AAC: one 1024-sample
// frame) of speech, cycling through 2 s of espeak-ng speech so the codecs
// work on real signal, not silence. Every one must report 0 allocs/op.

// benchFrames cuts 2 s of speech at rate into frames of n samples.
func benchFrames(b *testing.B, rate, n int) [][]int16 {
	b.Helper()
	pcm := speech(b, rate, 2)
	var frames [][]int16
	for f := 0; f+n <= len(pcm); f += n {
		frames = append(frames, pcm[f:f+n])
	}
	return frames
}

// benchPayloads encodes frames with enc, for decoder benchmarks.
func benchPayloads(b *testing.B, enc Encoder, frames [][]int16) [][]byte {
	b.Helper()
	out := make([][]byte, len(frames))
	for i, f := range frames {
		p := make([]byte, MaxOpusPayload)
		n, err := enc.Encode(f, p)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = p[:n]
	}
	return out
}

func BenchmarkG711EncodeDecode(b *testing.B) {
	frames := benchFrames(b, Rate8k, g711FrameSamples)
	for _, law := range g711Laws {
		b.Run(law.name, func(b *testing.B) {
			enc, dec := law.newEnc(), law.newDec()
			payload := make([]byte, g711FrameSamples)
			pcm := make([]int16, g711FrameSamples)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				n, err := enc.Encode(frames[i%len(frames)], payload)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := dec.Decode(payload[:n], pcm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkG722Encode(b *testing.B) {
	frames := benchFrames(b, Rate16k, g722FrameSamples)
	enc := NewG722Encoder()
	payload := make([]byte, g722FrameBytes)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := enc.Encode(frames[i%len(frames)], payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkG722Decode(b *testing.B) {
	payloads := benchPayloads(b, NewG722Encoder(), benchFrames(b, Rate16k, g722FrameSamples))
	dec := NewG722Decoder()
	pcm := make([]int16, g722FrameSamples)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := dec.Decode(payloads[i%len(payloads)], pcm); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpusEncode is the room's mix encoder at the complexities
// worth comparing (rtc.DefaultOpusComplexity is 1), with the FEC WebRTC
// peers take and without, and CELT-only low delay (no FEC) for scale.
func BenchmarkOpusEncode(b *testing.B) {
	frames := benchFrames(b, Rate48k, FrameSamples)
	for _, c := range []struct {
		name string
		opts []OpusOption
	}{
		{"complexity=1", []OpusOption{WithOpusComplexity(1)}},
		{"complexity=1/fec", []OpusOption{WithOpusComplexity(1), WithOpusFEC(10)}},
		{"complexity=5", []OpusOption{WithOpusComplexity(5)}},
		{"complexity=5/fec", []OpusOption{WithOpusComplexity(5), WithOpusFEC(10)}},
		{"complexity=10/fec", []OpusOption{WithOpusComplexity(10), WithOpusFEC(10)}},
		{"lowdelay/complexity=1", []OpusOption{WithOpusComplexity(1), WithOpusApplication(OpusRestrictedLowDelay)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			enc, err := NewOpusEncoder(append(c.opts, WithOpusBitrate(32000))...)
			if err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, MaxOpusPayload)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := enc.Encode(frames[i%len(frames)], payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpusDecode(b *testing.B) {
	enc, err := NewOpusEncoder(WithOpusBitrate(32000))
	if err != nil {
		b.Fatal(err)
	}
	payloads := benchPayloads(b, enc, benchFrames(b, Rate48k, FrameSamples))
	dec, err := NewOpusDecoder()
	if err != nil {
		b.Fatal(err)
	}
	pcm := make([]int16, FrameSamples)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := dec.Decode(payloads[i%len(payloads)], pcm); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAACEncode is per 1024-sample frame (21.3 ms at 48 kHz).
func BenchmarkAACEncode(b *testing.B) {
	frames := benchFrames(b, Rate48k, AACFrameSamples)
	enc, err := NewAACEncoder(Rate48k, 1, 64000)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	dst := make([]byte, AACMaxPayload)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := enc.Encode(frames[i%len(frames)], dst); err != nil {
			b.Fatal(err)
		}
	}
}
