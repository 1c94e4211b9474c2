package media

import (
	"testing"
	"time"
)

// BenchmarkInbandDTMF measures the in-band detector per 20 ms frame at
// 8 kHz: on a held key (every window runs every test), on speech (the usual
// case on a call) and on silence (the quick path).
func BenchmarkInbandDTMF(b *testing.B) {
	key := make([]int16, Rate8k)
	DTMFTone(Digit5, Rate8k, key, 0, dbAmp(-10))
	for _, bc := range []struct {
		name string
		pcm  []int16
	}{
		{name: "key", pcm: key},
		{name: "speech", pcm: speech(b, Rate8k, 60)},
		{name: "silence", pcm: make([]int16, Rate8k)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := SamplesPerFrame(Rate8k)
			d := NewDTMFDetector()
			dst := make([]Digit, 0, 64)
			i := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if i+n > len(bc.pcm) {
					i = 0
				}
				dst = d.Process(bc.pcm[i:i+n], dst[:0])
				i += n
			}
		})
	}
}

// BenchmarkVAD measures the voice activity detector per 48 kHz frame of
// speech.
func BenchmarkVAD(b *testing.B) {
	sp := speech(b, Rate48k, 20)
	v := NewVAD(Rate48k)
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if i+FrameSamples > len(sp) {
			i = 0
		}
		v.Process(sp[i : i+FrameSamples])
		i += FrameSamples
	}
}

// BenchmarkRFC4733 measures the telephone-event decoder per packet, over
// whole key presses (start, updates, three end packets).
func BenchmarkRFC4733(b *testing.B) {
	pkts := TelephoneEventPackets(nil, Digit7, 0, 800, 160, 10)
	d := NewTelephoneEventDecoder(Rate8k)
	at := time.Unix(0, 0)
	var base uint32
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if i == len(pkts) {
			i = 0
			base += 2000
		}
		p := &pkts[i]
		if _, _, err := d.Decode(base+p.Timestamp, p.Marker, p.Payload[:], at); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkDTMFTone measures generating one 20 ms frame of in-band DTMF at
// 8 kHz.
func BenchmarkDTMFTone(b *testing.B) {
	frame := make([]int16, SamplesPerFrame(Rate8k))
	off := 0
	b.ReportAllocs()
	for b.Loop() {
		DTMFTone(Digit9, Rate8k, frame, off, 0.5)
		off += len(frame)
	}
}
