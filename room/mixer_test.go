package room

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

var toneFreqs = [3]float64{440, 660, 880}

// threeTones joins three peers sending 440, 660 and 880 Hz at amp, receiving
// in the given formats.
func threeTones(t *testing.T, r *Room, amp float64, formats [3]Format) [3]*peer {
	t.Helper()
	var ps [3]*peer
	for i, f := range toneFreqs {
		ps[i] = newPeer(t, fmt.Sprintf("p%d", i), f, amp, formats[i])
		require.NoError(t, r.Join(ps[i]))
	}
	return ps
}

// TestMixMinus: each of three participants hears the other two tones and
// not its own, through the pass-through codec, real Opus, and the phone
// codecs (resampled to 8 and 16 kHz).
func TestMixMinus(t *testing.T) {
	opus := OpusFormat(media.DefaultOpusConfig())
	for _, tc := range []struct {
		name    string
		formats [3]Format
		tol     float64 // dB the others' tones may differ from what was sent
	}{
		{"pcm", [3]Format{formatL16, formatL16, formatL16}, 0.1},
		{"opus", [3]Format{opus, opus, opus}, 2},
		{"opus+pcmu+g722", [3]Format{opus, PCMU, G722}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, c, _ := newTestRoom(t)
			const amp = 0.2
			ps := threeTones(t, r, amp, tc.formats)
			c.run(r, 50)
			want := 20 * math.Log10(amp)
			for i, p := range ps {
				require.Len(t, p.pkts, 50)
				got := p.frames(25, 50) // the last 0.5 s
				own := toneDB(got, toneFreqs[i], p.rate)
				for j, f := range toneFreqs {
					if j == i {
						continue
					}
					other := toneDB(got, f, p.rate)
					require.InDelta(t, want, other, tc.tol, "%s hears %v Hz", p.info.ID, f)
					require.GreaterOrEqual(t, other-own, 20.0, "%s: %v Hz vs own %v Hz", p.info.ID, f, toneFreqs[i])
				}
				if tc.name == "pcm" {
					require.Less(t, own, -90.0, "exact mix-minus leaves nothing of the own tone")
				}
			}
		})
	}
}

// TestMuteRemovesTone: a muted participant's tone leaves the others' mix
// within 100 ms (5 ticks) and comes back after unmute; it still hears them.
func TestMuteRemovesTone(t *testing.T) {
	r, c, _ := newTestRoom(t)
	ps := threeTones(t, r, 0.2, [3]Format{formatL16, formatL16, formatL16})
	c.run(r, 20)
	a, b := ps[0], ps[1]
	before := toneDB(a.frames(15, 20), 660, media.Rate48k)
	require.Greater(t, before, -16.0)

	require.NoError(t, r.Mute(b.info.ID, true))
	c.run(r, 20)
	// From the fifth tick after the mute on (packet 24 is tick 25), over
	// the rest of the run so the Goertzel bins are narrow enough to keep
	// 440 and 880 Hz out of the 660 Hz one.
	require.Less(t, toneDB(a.frames(24, 40), 660, media.Rate48k), before-40)
	// Exactly: from the second tick after the mute (the first fades b out)
	// a hears c's tone alone, sample for sample.
	cTone := &mediatest.Tone{Freq: 880, Amp: 0.2, Rate: media.Rate48k, Pos: 21 * media.FrameSamples}
	var want media.Frame
	for k := 21; k < 40; k++ {
		cTone.Fill(want[:])
		require.Equal(t, want[:], a.frames(k, k+1), "tick %d", k+1)
	}
	require.Greater(t, toneDB(a.frames(35, 40), 880, media.Rate48k), -16.0, "the others stay")
	require.Greater(t, toneDB(b.frames(35, 40), 440, media.Rate48k), -16.0, "muted still hears")
	state := r.Participants()[1]
	require.True(t, state.Muted)
	require.False(t, state.Speaking)
	require.Less(t, int(state.Level), 20, "level is measured before the mute")

	require.NoError(t, r.Mute(b.info.ID, false))
	c.run(r, 6)
	require.InDelta(t, before, toneDB(a.frames(41, 46), 660, media.Rate48k), 0.5)
}

// TestSlowParticipantDoesNotDisturbOthers: a participant whose queue is
// always full loses its packets, counted, while the others get every tick
// on time and at level.
func TestSlowParticipantDoesNotDisturbOthers(t *testing.T) {
	r, c, _ := newTestRoom(t)
	ps := threeTones(t, r, 0.2, [3]Format{formatL16, formatL16, formatL16})
	ps[2].refuse = true
	c.run(r, 50)
	want := 20 * math.Log10(0.2)
	for _, p := range ps[:2] {
		require.Len(t, p.pkts, 50)
		for k, pkt := range p.pkts {
			require.Equal(t, uint64(k+1), pkt.Tick)
		}
		require.InDelta(t, want, toneDB(p.frames(25, 50), 880, media.Rate48k), 0.1, "the slow one's voice is mixed")
	}
	list := r.Participants()
	require.Equal(t, []uint64{0, 0, 50}, []uint64{list[0].Dropped, list[1].Dropped, list[2].Dropped})
	require.Equal(t, uint64(50), r.Stats().Dropped)
}

// TestSharedEncoding: silent listeners of one format cost one encode per
// tick together, each speaker one more, and listeners get the same bytes;
// the per-listener baseline encodes for everyone.
func TestSharedEncoding(t *testing.T) {
	for _, tc := range []struct {
		name      string
		listeners []Format
		opts      []Option
		perTick   int64
		rates     int // full-mix resamplers: one per rate, not per format
	}{
		{"10 pcm", repeat(formatL16, 10), nil, 1 + 2, 0},
		{"50 opus", repeat(OpusFormat(media.DefaultOpusConfig()), 50), nil, 1 + 2, 0},
		{"pcmu+pcma+g722", []Format{PCMU, PCMU, PCMA, PCMA, G722}, nil, 3 + 2, 2},
		{"10 pcm per-listener", repeat(formatL16, 10), []Option{WithPerListenerEncoding()}, 10 + 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, c, enc := newTestRoom(t, tc.opts...)
			var payloads []*byte // first byte of each listener's payload, one tick
			for i, f := range tc.listeners {
				p := &fake{info: Info{ID: ParticipantID(fmt.Sprint("l", i)), Format: f}}
				p.write = func(pkt Packet) bool {
					if pkt.Tick == 10 && f == tc.listeners[0] {
						require.Equal(t, !r.cfg.perListener, pkt.Shared)
						payloads = append(payloads, &pkt.Payload[0])
					}
					return true
				}
				require.NoError(t, r.Join(p))
			}
			for i, f := range []float64{440, 660} {
				s := newPeer(t, fmt.Sprint("s", i), f, 0.2, formatL16)
				require.NoError(t, r.Join(s))
			}
			c.run(r, 5) // speakers settle on their own encoders
			before := enc.encodes.Load()
			c.run(r, 10)
			require.Equal(t, tc.perTick*10, enc.encodes.Load()-before)
			require.Equal(t, uint64(tc.perTick*10), r.Stats().Encodes-uint64(before))
			require.Len(t, r.mx.rates, tc.rates)
			for _, p := range payloads[1:] {
				if r.cfg.perListener {
					require.NotSame(t, payloads[0], p)
				} else {
					require.Same(t, payloads[0], p, "listeners share one payload")
				}
			}
		})
	}
}

func repeat(f Format, n int) []Format {
	out := make([]Format, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// TestEncoderHangover: a participant stays on its own encoder while it
// speaks, through the VAD hangover and the encoder hangover, then moves back
// to the shared stream; entering its own stream costs primeFrames priming
// encodes.
func TestEncoderHangover(t *testing.T) {
	r, c, enc := newTestRoom(t, WithVAD(DefaultVADThreshold, 100e6), WithEncoderHangover(200e6))
	a := newPeer(t, "a", 440, 0.2, formatL16) // speaks throughout
	b := newPeer(t, "b", 0, 0, formatL16)
	listener := newPeer(t, "l", 0, 0, formatL16)
	for _, p := range []*peer{a, b, listener} {
		require.NoError(t, r.Join(p))
	}
	c.run(r, 10)
	b.src = tone(660, 0.2)
	c.run(r, 10)
	b.src = nil
	c.run(r, 30)
	// b is voiced for ticks 11..25 (5 ticks of VAD hangover), fades out
	// at 26, and keeps its own encoder 10 ticks more: shared again from 37.
	for _, pkt := range b.pkts {
		require.Equal(t, pkt.Tick <= 10 || pkt.Tick >= 37, pkt.Shared, "tick %d", pkt.Tick)
	}
	for _, pkt := range listener.pkts {
		require.True(t, pkt.Shared)
	}
	// b's mix-minus never held its own tone, and it heard a all along.
	require.Less(t, toneDB(b.frames(10, 20), 660, media.Rate48k), -90.0)
	require.InDelta(t, 20*math.Log10(0.2), toneDB(b.frames(0, 50), 440, media.Rate48k), 0.1)
	// 50 ticks: the shared stream 50, a's own 50 (nothing to prime with at
	// tick 1), b's own 26 plus primeFrames when it took over at tick 11.
	require.Equal(t, int64(50+50+26+primeFrames), enc.encodes.Load())
}

// TestSoftClip: two full-scale tones do not wrap around and stay below full
// scale; quiet sums pass unchanged.
func TestSoftClip(t *testing.T) {
	r, c, _ := newTestRoom(t)
	for i, f := range []float64{440, 660} {
		require.NoError(t, r.Join(newPeer(t, fmt.Sprint("loud", i), f, 1.0, formatL16)))
	}
	l := newPeer(t, "listener", 0, 0, formatL16)
	require.NoError(t, r.Join(l))
	c.run(r, 10)

	a, b := tone(440, 1), tone(660, 1)
	var fa, fb media.Frame
	peak := 0
	for k := range 10 {
		a.Fill(fa[:])
		b.Fill(fb[:])
		got := l.frames(k, k+1)
		for i := range got {
			sum := int(fa[i]) + int(fb[i])
			out := int(got[i])
			peak = max(peak, abs(out))
			require.LessOrEqual(t, abs(out), abs(sum), "limiting never amplifies")
			if abs(sum) > 1000 {
				require.Equal(t, sum > 0, out > 0, "sample %d of tick %d wrapped: sum %d out %d", i, k, sum, out)
			}
			if abs(sum) <= media.LimitKnee {
				require.Equal(t, sum, out, "below the knee the mix is exact")
			}
		}
	}
	require.Less(t, peak, 32767)
	require.LessOrEqual(t, peak, media.LimitCeiling)
	require.Greater(t, peak, media.LimitKnee, "the test drove the limiter")
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestMaxSpeakers: beyond the cap only the loudest voices are mixed.
func TestMaxSpeakers(t *testing.T) {
	r, c, _ := newTestRoom(t, WithMaxSpeakers(2))
	amps := []float64{0.05, 0.2, 0.1}
	for i, f := range toneFreqs {
		require.NoError(t, r.Join(newPeer(t, fmt.Sprint("s", i), f, amps[i], formatL16)))
	}
	l := newPeer(t, "listener", 0, 0, formatL16)
	require.NoError(t, r.Join(l))
	c.run(r, 10)
	got := l.frames(5, 10)
	require.Less(t, toneDB(got, 440, media.Rate48k), -90.0, "the quietest is left out")
	require.InDelta(t, 20*math.Log10(0.2), toneDB(got, 660, media.Rate48k), 0.1)
	require.InDelta(t, 20*math.Log10(0.1), toneDB(got, 880, media.Rate48k), 0.1)
}

// TestMixVoiceCap: with no MaxSpeakers cap, a room still mixes at most
// media.MaxMixVoices voices, the loudest, and each of them still hears
// everyone in the mix but itself.
func TestMixVoiceCap(t *testing.T) {
	r, c, _ := newTestRoom(t, WithMaxSpeakers(0))
	// Two quiet ones first, so the cut is not by order; the 16 loud ones
	// sum below the limiter's knee.
	const loud, quiet = 0.04, 0.015
	var speakers []*peer
	var freqs []float64
	for i := range media.MaxMixVoices + 2 {
		amp := loud
		if i < 2 {
			amp = quiet
		}
		freqs = append(freqs, 300+100*float64(i))
		p := newPeer(t, fmt.Sprint("s", i), freqs[i], amp, formatL16)
		require.NoError(t, r.Join(p))
		speakers = append(speakers, p)
	}
	l := newPeer(t, "listener", 0, 0, formatL16)
	require.NoError(t, r.Join(l))
	c.run(r, 10)
	got, own := l.frames(5, 10), speakers[2].frames(5, 10)
	for i, f := range freqs {
		if i < 2 {
			require.Less(t, toneDB(got, f, media.Rate48k), -90.0, "the quiet %v Hz is left out", f)
			continue
		}
		require.InDelta(t, 20*math.Log10(loud), toneDB(got, f, media.Rate48k), 0.1, "%v Hz in the mix", f)
		if i == 2 {
			require.Less(t, toneDB(own, f, media.Rate48k), -90.0, "s2 hears itself")
		} else {
			require.InDelta(t, 20*math.Log10(loud), toneDB(own, f, media.Rate48k), 0.1, "s2 hears %v Hz", f)
		}
	}
}

// TestTickAllocatesNothing: a steady-state tick with speakers, listeners of
// several formats, a mix consumer and an event subscriber allocates nothing.
func TestTickAllocatesNothing(t *testing.T) {
	r, c, _ := newTestRoom(t)
	opus := OpusFormat(media.DefaultOpusConfig())
	for i, f := range []Format{formatL16, opus, PCMU, G722} {
		s := tone(300+100*float64(i), 0.1)
		require.NoError(t, r.Join(&fake{
			info: Info{ID: ParticipantID(fmt.Sprint("s", i)), Format: f},
			read: func(dst *media.Frame) bool { s.Fill(dst[:]); return true },
		}))
		require.NoError(t, r.Join(&fake{info: Info{ID: ParticipantID(fmt.Sprint("l", i)), Format: f}}))
	}
	cons := r.SubscribeMix(4)
	defer cons.Close()
	sub := r.SubscribeEvents(4)
	defer sub.Close()
	c.run(r, 10)
	allocs := testing.AllocsPerRun(50, func() { c.run(r, 1) })
	require.Zero(t, allocs)
}
