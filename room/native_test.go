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
