package room

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// nativePeer is a phone-like participant at 8 kHz: the room reads its
// frames with ReadNative and has them resampled (To48k, counted) only
// while it mixes them. ReadFrame must not be called.
type nativePeer struct {
	fake
	t         *testing.T
	src       *mediatest.Tone // nil: digital silence
	pcm       []int16
	rs        *media.Resampler
	upsampled int
}

func newNativePeer(t *testing.T, id string, freq float64) *nativePeer {
	rs, err := media.NewResampler(media.Rate8k, media.Rate48k)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rs.Close() })
	p := &nativePeer{t: t, pcm: make([]int16, media.SamplesPerFrame(media.Rate8k)), rs: rs}
	if freq > 0 {
		p.src = &mediatest.Tone{Freq: freq, Amp: 0.3, Rate: media.Rate8k}
	}
	p.info = Info{ID: ParticipantID(id), Name: id, Kind: KindPhone, Format: PCMU}
	p.read = func(*media.Frame) bool { t.Error("ReadFrame called on a NativeReader"); return false }
	return p
}

func (p *nativePeer) ReadNative() ([]int16, bool) {
	if p.src == nil {
		clear(p.pcm)
	} else {
		p.src.Fill(p.pcm)
	}
	return p.pcm, true
}

func (p *nativePeer) To48k(dst *media.Frame) {
	p.upsampled++
	_, err := p.rs.Process(p.pcm, dst[:])
	require.NoError(p.t, err)
}

// TestNativeReaderResampledOnlyWhenMixed: of six 8 kHz participants, the
// two speaking are resampled every tick and heard by a listener; the four
// silent ones are measured but never resampled; a speaker who falls silent
// is resampled through its hangover and its fade-out tick, then no more.
func TestNativeReaderResampledOnlyWhenMixed(t *testing.T) {
	r, c, _ := newTestRoom(t)
	a, b := newNativePeer(t, "a", 440), newNativePeer(t, "b", 1000)
	silent := []*nativePeer{newNativePeer(t, "s1", 0), newNativePeer(t, "s2", 0),
		newNativePeer(t, "s3", 0), newNativePeer(t, "s4", 0)}
	listener := newPeer(t, "l", 0, 0, formatL16)
	for _, p := range append([]*nativePeer{a, b}, silent...) {
		require.NoError(t, r.Join(p))
	}
	require.NoError(t, r.Join(listener))

	c.run(r, 50)
	require.Equal(t, 50, a.upsampled)
	require.Equal(t, 50, b.upsampled)
	for _, s := range silent {
		require.Zero(t, s.upsampled, "%s is silent and must not be resampled", s.info.ID)
	}
	heard := listener.frames(10, 50)
	require.Greater(t, toneDB(heard, 440, media.Rate48k), -20.0, "the listener hears a")
	require.Greater(t, toneDB(heard, 1000, media.Rate48k), -20.0, "the listener hears b")

	b.src = nil // b stops talking
	c.run(r, 100)
	require.Equal(t, 150, a.upsampled)
	hang := r.cfg.vadHangover
	require.Equal(t, 50+hang+1, b.upsampled, "b: the hangover's %d ticks and the fade-out", hang)
	require.Less(t, toneDB(listener.frames(130, 150), 1000, media.Rate48k), -90.0, "b is gone from the mix")
}

// narrowPeer is a nativePeer that decodes the PCMU it is sent.
func narrowPeer(t *testing.T, id string, freq float64) (*nativePeer, *[]int16) {
	p := newNativePeer(t, id, freq)
	got := new([]int16)
	dec := media.NewPCMUDecoder()
	p.write = func(pkt Packet) bool {
		pcm := make([]int16, media.SamplesPerFrame(media.Rate8k))
		n, err := dec.Decode(pkt.Payload, pcm)
		require.NoError(t, err)
		*got = append(*got, pcm[:n]...)
		return true
	}
	return p, got
}

// TestNarrowRoom: a room of G.711 telephones mixes at 8 kHz: no voice is
// resampled, every caller hears the others (each speaker not itself) at
// the level a 48 kHz mix gives; a mix consumer gets the full mix at 48
// kHz; a member at another rate brings the room back to 48 kHz, and the
// callers hear the speakers on through the switch and back.
func TestNarrowRoom(t *testing.T) {
	r, c, _ := newTestRoom(t)
	a, heardA := narrowPeer(t, "a", 440)
	b, heardB := narrowPeer(t, "b", 1000)
	s, heardS := narrowPeer(t, "s", 0)
	for _, p := range []*nativePeer{a, b, s} {
		require.NoError(t, r.Join(p))
	}
	const n8 = 160
	frames := func(got *[]int16, from, to int) []int16 { return (*got)[from*n8 : to*n8] }

	c.run(r, 50)
	require.Zero(t, a.upsampled+b.upsampled, "a narrow room resamples no voice")
	require.True(t, r.mx.narrow)
	for _, f := range []float64{440, 1000} {
		require.InDelta(t, -10.5, toneDB(frames(heardS, 10, 50), f, media.Rate8k), 1.0, "s hears %v Hz", f)
	}
	require.Less(t, toneDB(frames(heardA, 10, 50), 440, media.Rate8k), -60.0, "a does not hear itself")
	require.Greater(t, toneDB(frames(heardA, 10, 50), 1000, media.Rate8k), -12.0, "a hears b")
	require.Less(t, toneDB(frames(heardB, 10, 50), 1000, media.Rate8k), -60.0, "b does not hear itself")
	require.Greater(t, toneDB(frames(heardB, 10, 50), 440, media.Rate8k), -12.0, "b hears a")

	mc := r.SubscribeMix(100)
	t.Cleanup(mc.Close)
	c.run(r, 25)
	var mix []int16
	var f MixFrame
	for mc.TryRead(&f) {
		mix = append(mix, f.PCM[:]...)
	}
	require.Len(t, mix, 25*media.FrameSamples)
	for _, fr := range []float64{440, 1000} {
		require.InDelta(t, -10.5, toneDB(mix[5*media.FrameSamples:], fr, media.Rate48k), 1.0, "the consumer gets %v Hz at 48 kHz", fr)
	}
	require.Zero(t, a.upsampled+b.upsampled)

	wide := newPeer(t, "w", 0, 0, formatL16)
	require.NoError(t, r.Join(wide))
	c.run(r, 50)
	require.False(t, r.mx.narrow)
	require.Equal(t, 50, a.upsampled, "a 48 kHz member: voices are resampled again")
	require.NoError(t, r.Leave("w"))
	c.run(r, 50)
	require.True(t, r.mx.narrow, "narrow again once the 48 kHz member left")
	require.Equal(t, 50, a.upsampled, "no resampling from the tick it left")
	// s heard both tones in every frame, the switches included (where the
	// resamplers start afresh, and the tones' phase moves by their delay).
	require.Len(t, *heardS, 175*n8)
	for k := 50; k < 175; k++ {
		for _, fr := range []float64{440, 1000} {
			require.InDelta(t, -10.5, toneDB(frames(heardS, k, k+1), fr, media.Rate8k), 4.0,
				"s hears %v Hz in tick %d", fr, k)
		}
	}
}

// announcingPeer is a narrow peer with a prompt of its own: a 2 kHz tone
// at 48 kHz while on.
type announcingPeer struct {
	*nativePeer
	on   bool
	tone *mediatest.Tone
}

func (p *announcingPeer) Announcement(dst *media.Frame) bool {
	if p.on {
		p.tone.Fill(dst[:])
	}
	return p.on
}

// TestNarrowAnnouncement: a caller's announcement does not take a
// narrow room back to 48 kHz: the caller hears it over the room lowered
// by AnnounceDuckDB, the others do not hear it.
func TestNarrowAnnouncement(t *testing.T) {
	r, c, _ := newTestRoom(t)
	a, heardA := narrowPeer(t, "a", 440)
	np, heardS := narrowPeer(t, "s", 0)
	s := &announcingPeer{nativePeer: np, tone: &mediatest.Tone{Freq: 2000, Amp: 0.3, Rate: media.Rate48k}}
	require.NoError(t, r.Join(a))
	require.NoError(t, r.Join(s))
	frames := func(got *[]int16, from, to int) []int16 { return (*got)[from*160 : to*160] }
	c.run(r, 25)
	s.on = true
	c.run(r, 25)
	require.True(t, r.mx.narrow)
	require.Zero(t, a.upsampled)
	during := frames(heardS, 30, 50)
	require.InDelta(t, -10.5, toneDB(during, 2000, media.Rate8k), 1.0, "s hears its announcement")
	require.InDelta(t, -10.5-AnnounceDuckDB, toneDB(during, 440, media.Rate8k), 1.0, "over the room, lowered")
	require.Less(t, toneDB(frames(heardA, 30, 50), 2000, media.Rate8k), -60.0, "a does not hear it")
	require.InDelta(t, -10.5, toneDB(frames(heardS, 5, 25), 440, media.Rate8k), 1.0, "before: the room at full level")
}
