package room

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// toneDB is mediatest.ToneDB, used throughout this package's tests.
var toneDB = mediatest.ToneDB

// tone returns a phase-continuous sine source at 48 kHz with peak amp (0..1).
func tone(freq, amp float64) *mediatest.Tone {
	return &mediatest.Tone{Freq: freq, Amp: amp, Rate: media.Rate48k}
}

// codecL16 is a pass-through "codec" for tests: 48 kHz PCM as little-endian
// 16-bit samples, so what a participant receives is exactly what the mixer
// made.
const codecL16 Codec = "test/L16"

var formatL16 = Format{Codec: codecL16}

type l16Encoder struct{}

func (l16Encoder) Rate() int { return media.Rate48k }
func (l16Encoder) Encode(pcm []int16, dst []byte) (int, error) {
	if len(dst) < 2*len(pcm) {
		return 0, media.ErrCodecShortBuffer
	}
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(s))
	}
	return 2 * len(pcm), nil
}
func (l16Encoder) Close() error { return nil }

// countingEncoder counts Encode calls into a shared counter.
type countingEncoder struct {
	media.Encoder
	n *atomic.Int64
}

func (c countingEncoder) Encode(pcm []int16, dst []byte) (int, error) {
	c.n.Add(1)
	return c.Encoder.Encode(pcm, dst)
}

// encoders is an EncoderFactory for tests: L16 plus the real codecs, every
// encoder counted.
type encoders struct {
	created atomic.Int64
	encodes atomic.Int64
}

func (e *encoders) factory(f Format) (media.Encoder, error) {
	var enc media.Encoder = l16Encoder{}
	if f.Codec != codecL16 {
		var err error
		if enc, err = NewEncoder(f); err != nil {
			return nil, err
		}
	}
	e.created.Add(1)
	return countingEncoder{enc, &e.encodes}, nil
}

var _ Participant = (*fake)(nil)

// fake is a Participant built from function fields; nil fields do nothing.
type fake struct {
	info     Info
	read     func(*media.Frame) bool
	write    func(Packet) bool
	detached func(error)
}

func (f *fake) Info() Info { return f.info }
func (f *fake) ReadFrame(dst *media.Frame) bool {
	if f.read == nil {
		return false
	}
	return f.read(dst)
}
func (f *fake) WriteMix(p Packet) bool {
	if f.write == nil {
		return true
	}
	return f.write(p)
}
func (f *fake) Detached(err error) {
	if f.detached != nil {
		f.detached(err)
	}
}

// peer is a test participant that sends a tone (or nothing) and decodes
// everything it receives.
type peer struct {
	fake
	src      *mediatest.Tone
	dec      media.Decoder // nil for L16
	rate     int           // rate of got
	got      []int16       // decoded mix, one frame per packet
	pkts     []Packet      // packets received (Payload not kept)
	refuse   bool          // WriteMix reports a full queue
	detached []error
}

// newPeer returns a peer named id sending freq Hz at amp (freq 0: silent)
// and receiving in format f.
func newPeer(t testing.TB, id string, freq, amp float64, f Format) *peer {
	t.Helper()
	p := &peer{rate: media.Rate48k}
	p.info = Info{ID: ParticipantID(id), Name: "name " + id, Kind: KindWebRTC, Format: f}
	if freq > 0 {
		p.src = tone(freq, amp)
	}
	switch f.Codec {
	case codecL16:
	case CodecOpus:
		dec, err := media.NewOpusDecoder()
		require.NoError(t, err)
		p.dec = dec
	case CodecPCMU:
		p.dec, p.rate = media.NewPCMUDecoder(), media.Rate8k
		p.info.Kind = KindPhone
	case CodecG722:
		p.dec, p.rate = media.NewG722Decoder(), media.Rate16k
		p.info.Kind = KindPhone
	default:
		t.Fatalf("no decoder for %s", f)
	}
	p.read = func(dst *media.Frame) bool {
		if p.src == nil {
			return false
		}
		p.src.Fill(dst[:])
		return true
	}
	p.write = func(pkt Packet) bool {
		if p.refuse {
			return false
		}
		p.pkts = append(p.pkts, Packet{Tick: pkt.Tick, Time: pkt.Time, Shared: pkt.Shared})
		p.decode(t, pkt.Payload)
		return true
	}
	p.fake.detached = func(err error) { p.detached = append(p.detached, err) }
	return p
}

func (p *peer) decode(t testing.TB, payload []byte) {
	if p.dec == nil {
		for i := 0; i+1 < len(payload); i += 2 {
			p.got = append(p.got, int16(binary.LittleEndian.Uint16(payload[i:])))
		}
		return
	}
	pcm := make([]int16, media.SamplesPerFrame(p.rate))
	n, err := p.dec.Decode(payload, pcm)
	require.NoError(t, err)
	p.got = append(p.got, pcm[:n]...)
}

// frames returns the decoded audio of the received packets [from, to).
func (p *peer) frames(from, to int) []int16 {
	n := media.SamplesPerFrame(p.rate)
	return p.got[from*n : to*n]
}

// clock drives a manual-tick room: now advances 20 ms per tick.
type clock struct {
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { return c.now }

// run ticks r n times, 20 ms apart.
func (c *clock) run(r *Room, n int) {
	for range n {
		c.now = c.now.Add(media.FrameDuration)
		r.Tick(c.now)
	}
}

// newTestRoom opens a manual-tick room with counted encoders.
func newTestRoom(t testing.TB, opts ...Option) (*Room, *clock, *encoders) {
	t.Helper()
	c, enc := newClock(), &encoders{}
	all := append([]Option{WithManualTick(), WithClock(c.Now), WithEncoderFactory(enc.factory)}, opts...)
	r := NewRoom("test", all...)
	t.Cleanup(func() { require.NoError(t, r.Close(context.Background())) })
	return r, c, enc
}
