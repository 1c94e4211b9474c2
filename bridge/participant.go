package bridge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
)

// hangupTimeout bounds the BYE sent when the room lets go of a caller: the
// room may be closing because the process is shutting down, and teardown
// must neither hang nor be cut short by that cancellation (STYLE 10).
const hangupTimeout = 5 * time.Second

// PhoneParticipant bridges an answered SIP call into a room: the room's
// mixer pulls the caller's voice, resampled to 48 kHz, and pushes the
// caller's encoded mix-minus straight into the call's RTP send queue.
// With WithPrompts the caller also hears its IVR's prompts over the room
// (room.Announcer). When the room lets go of it, it hangs the call up.
// Close releases it.
type PhoneParticipant struct {
	call    *sip.Call
	info    room.Info
	rate    int           // the call's PCM rate
	prompts *Player       // nil: no announcements
	onLeft  func(error)   // nil: Detached hangs up
	first   uint64        // the call's frame number for the room's first packet
	started bool          // the offset is set; the mixer's goroutine only
	offset  uint64        // room tick + offset = the call's frame number; mixer only
	last    atomic.Uint64 // the last frame number WriteMix used

	mu  sync.Mutex // guards the fields below: the mixer against Close
	rs  *media.Resampler
	pcm []int16 // one frame at rate, reused every tick
	// reads counts ReadNative calls, resampled the one of the last To48k:
	// a frame skipped in between (not mixed) restarts the resampler.
	reads, resampled uint64
	pcmOK            bool // pcm holds the last ReadNative's frame
	detached         bool
	closed           bool
	// hungUp is closed when the hang-up Detached started has finished and
	// hangupErr holds its result; nil when Detached started none.
	hungUp    chan struct{}
	hangupErr error
}

var _ room.Announcer = (*PhoneParticipant)(nil)

// PhoneOption configures NewPhoneParticipant.
type PhoneOption func(*PhoneParticipant)

// WithPrompts lets the caller hear what player plays while it is in the
// room: the IVR's announcements after the join (joining, first
// participant, recording notice), the *6 confirmation and the goodbye of
// a room that closes. The room pulls the player's frames (and mixes the
// room under them, see room.Announcer), so nobody else may call its Next
// while the caller is in the room.
func WithPrompts(player *Player) PhoneOption {
	return func(p *PhoneParticipant) { p.prompts = player }
}

// WithFirstFrame numbers the room's first packet to the caller as frame n
// of the call (sip.Call.WriteAudio), and the others after it by the
// room's ticks. The IVR has sent frames on its own clock before the join;
// a fresh room's ticks start at 1, and frames numbered below those already
// sent would be dropped as old, leaving the caller in silence.
func WithFirstFrame(n uint64) PhoneOption {
	return func(p *PhoneParticipant) { p.first = n }
}

// WithDetached hands the room's letting go of the caller to f instead of
// hanging up: the call's IVR session says why first (room_closed or
// goodbye, then BYE). f runs on the room's goroutine (Participant.Detached)
// and must return at once.
func WithDetached(f func(err error)) PhoneOption {
	return func(p *PhoneParticipant) { p.onLeft = f }
}

// NewPhoneParticipant wraps call as room participant id. name is shown in
// the participant list as given: the caller passes a masked number, since
// caller IDs are personal data. The room Format follows the call's codec,
// so the room encodes the caller's mix once in exactly what the call sends
// (Opus with in-band FEC when the peer asked for it, RFC 7587 §6.1).
func NewPhoneParticipant(call *sip.Call, id room.ParticipantID, name string, opts ...PhoneOption) (*PhoneParticipant, error) {
	codec := call.Codec()
	format, err := callFormat(codec)
	if err != nil {
		return nil, err
	}
	p := &PhoneParticipant{
		call: call,
		info: room.Info{ID: id, Name: name, Kind: room.KindPhone, Format: format},
		rate: codec.SampleRate,
	}
	for _, o := range opts {
		o(p)
	}
	if p.rate != media.Rate48k {
		rs, err := media.NewResampler(p.rate, media.Rate48k)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCallCodec, codec, err)
		}
		p.rs = rs
	}
	p.pcm = make([]int16, media.SamplesPerFrame(p.rate))
	return p, nil
}

// callFormat maps a negotiated codec to the room format it is mixed in.
func callFormat(c sip.Codec) (room.Format, error) {
	switch c.Name {
	case sip.CodecPCMU:
		return room.PCMU, nil
	case sip.CodecPCMA:
		return room.PCMA, nil
	case sip.CodecG722:
		return room.G722, nil
	case sip.CodecOpus:
		cfg := media.DefaultOpusConfig()
		cfg.FEC = c.FEC
		return room.OpusFormat(cfg), nil
	}
	return room.Format{}, fmt.Errorf("%w: %s", ErrCallCodec, c)
}

// Info describes the caller; the room reads it once, at Join.
func (p *PhoneParticipant) Info() room.Info { return p.info }

// ReadFrame fills dst with the caller's next 20 ms at 48 kHz. It reports
// false when the call's jitter buffer had nothing to play, so the room mixes
// no voice for the caller instead of a frame of silence. It allocates
// nothing. The room uses ReadNative and To48k instead.
func (p *PhoneParticipant) ReadFrame(dst *media.Frame) bool {
	if p.rs == nil { // Opus decodes at 48 kHz already
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			return false
		}
		_, st := p.call.ReadFrame(dst[:])
		return st != media.PlayoutSilence
	}
	if _, ok := p.ReadNative(); !ok {
		return false
	}
	p.To48k(dst)
	return true
}

var _ room.NativeReader = (*PhoneParticipant)(nil)

// ReadNative takes the caller's next 20 ms at the call's own rate (8 or
// 16 kHz; 48 kHz for Opus), valid until the next call, for the room's
// level measurement (room.NativeReader). It reports false when the jitter
// buffer had nothing to play. It allocates nothing.
func (p *PhoneParticipant) ReadNative() ([]int16, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads++
	p.pcmOK = false
	if p.closed {
		return nil, false
	}
	n, st := p.call.ReadFrame(p.pcm)
	if st == media.PlayoutSilence || p.rs != nil && n != len(p.pcm) {
		return nil, false
	}
	clear(p.pcm[n:])
	p.pcmOK = true
	return p.pcm, true
}

// To48k writes the frame ReadNative returned, at 48 kHz, into dst; silence
// when there is none. The room calls it only while the caller's voice is
// mixed: when frames were skipped since the last call, the resampler
// starts from silence instead of from the tail of a frame long past (the
// frames skipped were not mixed, so nobody hears the difference).
func (p *PhoneParticipant) To48k(dst *media.Frame) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.pcmOK {
		clear(dst[:])
		return
	}
	p.pcmOK = false // at most once per frame
	if p.rs == nil {
		copy(dst[:], p.pcm)
		return
	}
	if p.resampled != p.reads-1 {
		p.rs.Reset()
	}
	p.resampled = p.reads
	if _, err := p.rs.Process(p.pcm, dst[:]); err != nil {
		clear(dst[:])
	}
}

// WriteMix queues the caller's encoded mix for sending as one RTP packet;
// the room's tick numbers the frame (shifted by WithFirstFrame), so ticks
// the call missed keep the RTP timeline (RFC 3550 §5.1). It never blocks
// and reports false when the call's send queue is full.
func (p *PhoneParticipant) WriteMix(pkt room.Packet) bool {
	if !p.started {
		p.started = true
		p.offset = p.first - pkt.Tick // modulo 2^64: frame = first + (tick - first tick)
	}
	frame := pkt.Tick + p.offset
	p.last.Store(frame)
	return p.call.WriteAudio(pkt.Payload, frame)
}

// LastFrame is the call's frame number of the last packet the room sent,
// 0 before the first. The IVR continues after it when the room has let go
// of the caller, so its farewell prompts are not dropped as old frames.
func (p *PhoneParticipant) LastFrame() uint64 { return p.last.Load() }

// Announcement gives the room the next 20 ms of the prompt playing to the
// caller (room.Announcer), if WithPrompts gave a player and it plays. It
// allocates nothing.
func (p *PhoneParticipant) Announcement(dst *media.Frame) bool {
	return p.prompts != nil && p.prompts.Next(dst)
}

// Detached hangs the call up once the room has let go of the caller
// (kicked, room closed, encoder failure, or its own Leave): a caller who
// can no longer hear or be heard must not be left on an open line. The BYE
// runs on its own goroutine, since Detached must return at once, bounded
// by hangupTimeout and by no caller's cancellation; Close waits for it. A
// call that has already ended, or a participant already closed, is left
// alone. With WithDetached, the function given is called instead.
func (p *PhoneParticipant) Detached(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.detached || p.closed {
		return
	}
	p.detached = true
	if p.onLeft != nil {
		p.onLeft(err)
		return
	}
	select {
	case <-p.call.Done():
		return
	default:
	}
	done := make(chan struct{})
	p.hungUp = done
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), hangupTimeout)
		defer cancel()
		p.hangupErr = p.call.Hangup(ctx)
	}()
}

// Close waits for the hang-up Detached started, releases the resampler's
// C memory and returns the hang-up's error. Call it once the room has
// detached the participant (or when it never joined): a participant
// closed while still in a room stops playing and is not hung up by it. It
// is safe to call more than once; ReadFrame reports false afterwards.
func (p *PhoneParticipant) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.rs != nil {
		_ = p.rs.Close()
	}
	done := p.hungUp
	p.mu.Unlock()
	if done == nil {
		return nil
	}
	<-done
	return p.hangupErr
}
