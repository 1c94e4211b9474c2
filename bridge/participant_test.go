package bridge

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
	"github.com/mediagate/mediagate/sip/siptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestCallFormat: each negotiated codec maps to the room format the call
// sends, Opus carrying the peer's FEC wish; anything else is refused.
func TestCallFormat(t *testing.T) {
	fec := media.DefaultOpusConfig()
	fec.FEC = true
	tests := []struct {
		codec sip.Codec
		want  room.Format
		err   error
	}{
		{sip.Codec{Name: sip.CodecPCMU, SampleRate: 8000}, room.PCMU, nil},
		{sip.Codec{Name: sip.CodecPCMA, SampleRate: 8000}, room.PCMA, nil},
		{sip.Codec{Name: sip.CodecG722, SampleRate: 16000}, room.G722, nil},
		{sip.Codec{Name: sip.CodecOpus, SampleRate: 48000}, room.OpusFormat(media.DefaultOpusConfig()), nil},
		{sip.Codec{Name: sip.CodecOpus, SampleRate: 48000, FEC: true}, room.OpusFormat(fec), nil},
		{sip.Codec{Name: "GSM", SampleRate: 8000}, room.Format{}, ErrCallCodec},
	}
	for _, tt := range tests {
		t.Run(tt.codec.Name, func(t *testing.T) {
			got, err := callFormat(tt.codec)
			require.ErrorIs(t, err, tt.err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestPhoneParticipantInRoom: a sipgo caller sending a 440 Hz tone as PCMU
// is answered, wrapped in a PhoneParticipant and joined to a real room where
// another participant sends 660 Hz. The caller hears 660 Hz and not its own
// tone (mix-minus), the other participant hears 440 Hz, and kicking the
// caller from the room hangs the call up with a BYE.
func TestPhoneParticipantInRoom(t *testing.T) {
	rm := room.NewRoom("bridge-test", room.WithEmptyTimeout(-1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, rm.Close(ctx))
	})
	other := &toneParticipant{tone: mediatest.Tone{Freq: 660, Amp: 0.3, Rate: media.Rate48k}}
	require.NoError(t, rm.Join(other))

	joined := make(chan *PhoneParticipant, 1)
	u := startTestUA(t, sip.HandlerFunc(func(_ context.Context, in *sip.IncomingCall) {
		c, err := in.Answer()
		if err != nil {
			return
		}
		p, err := NewPhoneParticipant(c, room.ParticipantID(c.ID()), "+4930****99")
		if err != nil {
			_ = c.Hangup(context.Background())
			return
		}
		if err := rm.Join(p); err != nil {
			_ = c.Hangup(context.Background())
			_ = p.Close()
			return
		}
		joined <- p
	}))

	phone := dial(t, u, siptest.Options{})
	var p *PhoneParticipant
	select {
	case p = <-joined:
	case <-time.After(5 * time.Second):
		t.Fatal("the call was not bridged")
	}
	require.Equal(t, room.KindPhone, p.Info().Kind)
	require.Equal(t, room.PCMU, p.Info().Format)
	phone.PlayTone(440, 0.3)

	const window = 4000 // 0.5 s at 8 kHz
	require.Eventually(t, func() bool {
		got := phone.Last(window)
		return len(got) == window && phoneToneGap(got, 660, 440) >= 20
	}, 5*time.Second, 20*time.Millisecond, "the caller hears the room's 660 Hz and not its own 440 Hz")
	require.Eventually(t, func() bool {
		got := other.last(window)
		return len(got) == window && phoneToneGap(got, 440, 660) >= 20
	}, 5*time.Second, 20*time.Millisecond, "the room hears the caller's 440 Hz")

	require.NoError(t, rm.Kick(p.Info().ID))
	select {
	case <-phone.HungUp():
	case <-time.After(5 * time.Second):
		t.Fatal("kicking the caller sent no BYE")
	}
	require.NoError(t, p.Close())
	require.False(t, p.ReadFrame(new(media.Frame)), "a closed participant has nothing to play")
}

// answeredCall starts a UA that answers one call and a siptest phone that
// places it offering PCMU; it returns the call and the phone's side.
func answeredCall(t testing.TB) (*sip.Call, *siptest.Call) {
	t.Helper()
	return answeredCallWith(t, siptest.Options{})
}

// answeredCallWith is answeredCall with the phone dialing with o.
func answeredCallWith(t testing.TB, o siptest.Options) (*sip.Call, *siptest.Call) {
	t.Helper()
	calls := make(chan *sip.Call, 1)
	u := startTestUA(t, sip.HandlerFunc(func(_ context.Context, in *sip.IncomingCall) {
		if c, err := in.Answer(); err == nil {
			calls <- c
		}
	}))
	phone := dial(t, u, o)
	select {
	case c := <-calls:
		return c, phone
	case <-time.After(5 * time.Second):
		t.Fatal("no call answered")
		return nil, nil
	}
}

// dial calls u from a new siptest phone with o and returns the answered
// call; it hangs up when the test ends.
func dial(t testing.TB, u *sip.UA, o siptest.Options) *siptest.Call {
	t.Helper()
	c, err := tryDial(t, u, o)
	require.NoError(t, err)
	return c
}

// tryDial is dial returning Dial's error (a *siptest.RefusedError when u
// refuses the call); o.User defaults to 2000.
func tryDial(t testing.TB, u *sip.UA, o siptest.Options) (*siptest.Call, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if o.User == "" {
		o.User = "2000"
	}
	gw := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(u.Port()))
	return siptest.NewPhone(t).Dial(ctx, gw, o)
}

// TestPhoneParticipantReadFrame: outside any room, ReadFrame turns the
// caller's 8 kHz 440 Hz tone into 48 kHz audio with the tone 20 dB above
// its neighbours, without allocating; after the caller hangs up, Detached
// leaves the ended call alone and Close reports no error.
func TestPhoneParticipantReadFrame(t *testing.T) {
	c, phone := answeredCall(t)
	p, err := NewPhoneParticipant(c, room.ParticipantID(c.ID()), "caller")
	require.NoError(t, err)
	phone.PlayTone(440, 0.3)

	var frame media.Frame
	heard := make([]int16, 0, 25*len(frame))
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for len(heard) < cap(heard) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("only %d samples of audio in 5 s", len(heard))
		}
		if p.ReadFrame(&frame) {
			heard = append(heard, frame[:]...)
		}
	}
	tail := heard[len(heard)/2:] // past the jitter buffer's start-up
	tone := mediatest.ToneDB(tail, 440, media.Rate48k)
	require.Greater(t, tone, -20.0, "the tone arrives at its level")
	for _, f := range []float64{220, 660, 880, 3000} {
		require.GreaterOrEqual(t, tone-mediatest.ToneDB(tail, f, media.Rate48k), 20.0, "%v Hz", f)
	}
	require.Zero(t, testing.AllocsPerRun(50, func() { p.ReadFrame(&frame) }), "ReadFrame allocates")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, phone.Hangup(ctx))
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not end on BYE")
	}
	p.Detached(room.ErrRoomClosed)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close twice")
}

// TestPhoneParticipantNative: the room's path (ReadNative every tick, To48k
// only for frames it mixes). Frames in a row are resampled as one stream;
// after frames that were read but not resampled, the resampler starts
// from silence, as a fresh one would; To48k twice for one frame, or for a
// frame with nothing to play, gives silence.
func TestPhoneParticipantNative(t *testing.T) {
	c, phone := answeredCall(t)
	p, err := NewPhoneParticipant(c, room.ParticipantID(c.ID()), "caller")
	require.NoError(t, err)
	t.Cleanup(func() { p.Detached(nil); _ = p.Close() })
	phone.PlayTone(440, 0.3)

	// Each frame read is also resampled by two references: one fed every
	// frame (a continuous stream), one fresh.
	cont, err := media.NewResampler(media.Rate8k, media.Rate48k)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cont.Close() })
	// read waits for the next frame; gap reports ticks without one before
	// it (the participant restarts its resampler after those too).
	read := func() (pcm []int16, gap bool) {
		t.Helper()
		tick := time.NewTicker(media.FrameDuration)
		defer tick.Stop()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatal("no audio in 5 s")
			}
			if pcm, ok := p.ReadNative(); ok {
				require.Len(t, pcm, media.SamplesPerFrame(media.Rate8k))
				return pcm, gap
			}
			gap = true
		}
	}
	var want, got media.Frame
	for range 5 { // in a row: the continuous stream
		pcm, gap := read()
		if gap {
			cont.Reset()
		}
		_, err := cont.Process(pcm, want[:])
		require.NoError(t, err)
		p.To48k(&got)
		require.Equal(t, want, got)
	}
	require.Greater(t, mediatest.ToneDB(got[:], 440, media.Rate48k), -20.0)

	for range 3 { // read, not mixed
		pcm, _ := read()
		_, err := cont.Process(pcm, want[:])
		require.NoError(t, err)
	}
	pcm, _ := read()
	_, err = cont.Process(pcm, want[:])
	require.NoError(t, err)
	fresh, err := media.NewResampler(media.Rate8k, media.Rate48k)
	require.NoError(t, err)
	t.Cleanup(func() { _ = fresh.Close() })
	var first media.Frame
	_, err = fresh.Process(pcm, first[:])
	require.NoError(t, err)
	p.To48k(&got)
	require.Equal(t, first, got, "after skipped frames: as a fresh resampler")
	require.NotEqual(t, want, got, "not the continuous stream's frame")

	p.To48k(&got)
	require.Equal(t, media.Frame{}, got, "the same frame twice")
	require.Zero(t, testing.AllocsPerRun(50, func() { p.ReadNative(); p.To48k(&got) }), "allocates")
}

// BenchmarkPhoneParticipantReadFrame measures the mixer's per-tick cost of
// a PCMU caller: jitter-buffer read, decode and 8→48 kHz resampling.
func BenchmarkPhoneParticipantReadFrame(b *testing.B) {
	c, _ := answeredCall(b)
	p, err := NewPhoneParticipant(c, room.ParticipantID(c.ID()), "caller")
	require.NoError(b, err)
	b.Cleanup(func() {
		p.Detached(nil)
		_ = p.Close()
	})
	var frame media.Frame
	b.ReportAllocs()
	for b.Loop() {
		p.ReadFrame(&frame)
	}
}

// phoneToneGap is how far freq stands above other in pcm (8 kHz), in dB.
func phoneToneGap(pcm []int16, freq, other float64) float64 {
	return mediatest.ToneDB(pcm, freq, media.Rate8k) - mediatest.ToneDB(pcm, other, media.Rate8k)
}

// startTestUA starts a sip.UA on loopback with a random RTP range and
// closes it at cleanup.
func startTestUA(t testing.TB, h sip.Handler) *sip.UA {
	t.Helper()
	base := 20000 + 2*rand.IntN(10000)
	u, err := sip.New("127.0.0.1:0", h, sip.WithRTPPorts(base, base+99),
		sip.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, u.Close(ctx))
	})
	return u
}

// toneParticipant is a room participant that speaks a tone and records its
// µ-law mix decoded to 8 kHz PCM.
type toneParticipant struct {
	tone mediatest.Tone // touched only by the mixer's goroutine

	mu    sync.Mutex
	heard []int16
}

func (f *toneParticipant) Info() room.Info {
	return room.Info{ID: "tone", Name: "tone", Kind: room.KindOther, Format: room.PCMU}
}

func (f *toneParticipant) ReadFrame(dst *media.Frame) bool { f.tone.Fill(dst[:]); return true }

func (f *toneParticipant) WriteMix(pkt room.Packet) bool {
	pcm := make([]int16, len(pkt.Payload))
	n := media.DecodeULaw(pcm, pkt.Payload)
	f.mu.Lock()
	f.heard = append(f.heard, pcm[:n]...)
	f.mu.Unlock()
	return true
}

func (f *toneParticipant) Detached(error) {}

// last returns up to the last n samples heard.
func (f *toneParticipant) last(n int) []int16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int16(nil), f.heard[max(len(f.heard)-n, 0):]...)
}
