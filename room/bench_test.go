package room

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// Benchmarks of decision 2: a room of Opus listeners with two active
// speakers, one 20 ms tick per op, with real media.OpusEncoders at
// DefaultOpusConfig (complexity 5) and espeak-ng speech as the voices.

// benchSpeech returns 4 s of espeak-ng speech at 48 kHz, whole frames.
func benchSpeech(b *testing.B) []int16 {
	b.Helper()
	return mediatest.Speech(b, media.Rate48k, 4)
}

// benchListener stands for a WebRTC listener: it copies each payload into its
// own send slot, as a real one copies it into its queue.
type benchListener struct {
	fake
	slot [media.MaxOpusPayload]byte
}

// benchRoom opens a manual-tick room with n Opus listeners and two speakers
// talking at once (the same speech, offset by a second).
func benchRoom(b *testing.B, speech []int16, listeners int, opts ...Option) (*Room, *clock) {
	b.Helper()
	c := newClock()
	r := NewRoom("bench", append([]Option{WithManualTick(), WithClock(c.Now)}, opts...)...)
	b.Cleanup(func() { _ = r.Close(context.Background()) })
	opus := OpusFormat(media.DefaultOpusConfig())
	for i := range 2 {
		pos := i * media.Rate48k
		s := &fake{info: Info{ID: ParticipantID(fmt.Sprint("speaker", i)), Format: opus}}
		s.read = func(dst *media.Frame) bool {
			copy(dst[:], speech[pos:])
			pos = (pos + media.FrameSamples) % len(speech)
			return true
		}
		if err := r.Join(s); err != nil {
			b.Fatal(err)
		}
	}
	for i := range listeners {
		l := &benchListener{}
		l.info = Info{ID: ParticipantID(fmt.Sprint("listener", i)), Format: opus}
		l.write = func(pkt Packet) bool { copy(l.slot[:], pkt.Payload); return true }
		if err := r.Join(l); err != nil {
			b.Fatal(err)
		}
	}
	c.run(r, 50) // encoders warm, speakers on their own streams
	return r, c
}

// BenchmarkRoomTick: one tick of a room with 2 speakers and 100 or 500 Opus
// listeners, shared encoding against the per-listener baseline. Metrics:
// ns/listener (tick time / listeners) and encodes/tick.
func BenchmarkRoomTick(b *testing.B) {
	speech := benchSpeech(b)
	for _, tc := range []struct {
		name      string
		listeners int
		opts      []Option
	}{
		{"shared/100", 100, nil},
		{"per-listener/100", 100, []Option{WithPerListenerEncoding()}},
		{"shared/500", 500, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, c := benchRoom(b, speech, tc.listeners, tc.opts...)
			before := r.Stats().Encodes
			b.ReportAllocs()
			for b.Loop() {
				c.run(r, 1)
			}
			n := float64(b.N)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n/float64(tc.listeners), "ns/listener")
			b.ReportMetric(float64(r.Stats().Encodes-before)/n, "encodes/tick")
		})
	}
}

// BenchmarkSharedVsPerListener ticks a shared-encoding room and a
// per-listener-encoding room (100 Opus listeners, 2 speakers each) in the
// same loop, so both see the same machine load, and reports the cost per
// listener of each and how many times cheaper shared encoding is (decision
// 2 requires at least 10).
func BenchmarkSharedVsPerListener(b *testing.B) {
	const listeners = 100
	speech := benchSpeech(b)
	shared, sc := benchRoom(b, speech, listeners)
	base, bc := benchRoom(b, speech, listeners, WithPerListenerEncoding())
	sEnc, bEnc := shared.Stats().Encodes, base.Stats().Encodes
	var sDur, bDur time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		sc.run(shared, 1)
		t1 := time.Now()
		bc.run(base, 1)
		sDur += t1.Sub(t0)
		bDur += time.Since(t1)
	}
	n := float64(b.N)
	sPer := float64(sDur.Nanoseconds()) / n / listeners
	bPer := float64(bDur.Nanoseconds()) / n / listeners
	b.ReportMetric(sPer, "shared-ns/listener")
	b.ReportMetric(bPer, "baseline-ns/listener")
	b.ReportMetric(bPer/sPer, "x-cheaper")
	b.ReportMetric(float64(shared.Stats().Encodes-sEnc)/n, "shared-encodes/tick")
	b.ReportMetric(float64(base.Stats().Encodes-bEnc)/n, "baseline-encodes/tick")
	if bPer/sPer < 10 {
		b.Errorf("shared encoding only %.1f× cheaper per listener than per-listener encoding, want ≥ 10×", bPer/sPer)
	}
}

// BenchmarkRoomTickTotals is BenchmarkRoomTick's shared/100 run the way
// the room's clock runs it with node Totals (WithTotals): timed, checked
// for lateness, encodes split. Compare its ns/listener with shared/100's;
// it must allocate nothing either.
func BenchmarkRoomTickTotals(b *testing.B) {
	speech := benchSpeech(b)
	tot := NewTotals()
	r, c := benchRoom(b, speech, 100, WithTotals(tot))
	b.ReportAllocs()
	for b.Loop() {
		c.now = c.now.Add(media.FrameDuration)
		r.clockTick(c.now)
	}
	n := float64(b.N)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n/100, "ns/listener")
	st := tot.Stats()
	b.ReportMetric(float64(st.SharedEncodes+st.OwnEncodes)/float64(st.Ticks), "encodes/tick")
}
