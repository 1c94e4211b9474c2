package rtc

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

const (
	// sendQueueLen is how many mix packets wait for the sender goroutine:
	// 160 ms. A sender further behind than that is stuck, and the room's
	// packets are dropped (and counted) rather than queued.
	sendQueueLen = 8
	// opusLossPerc is the loss the room's Opus encoders plan FEC for when
	// the peer takes FEC (RFC 7587 §6.1); 10 % buys robust one-packet
	// recovery for a few kbit/s.
	opusLossPerc = 10
	// opusFrameTS is one 20 ms frame at Opus's 48 kHz RTP clock
	// (RFC 7587 §4.1).
	opusFrameTS = 960
	// rtpBufSize holds any RTP packet pion hands over (its receive MTU).
	rtpBufSize = 1500
)

// opusCapability is the Opus of every audio track this package sends:
// 48 kHz, stereo-signalled as RFC 7587 §7 requires, with opusFmtp.
var opusCapability = webrtc.RTPCodecCapability{
	MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: opusFmtp,
}

// opusFormat is the room format of a peer's mix: the default Opus
// settings, with in-band FEC when the peer takes it.
func opusFormat(fec bool) room.Format {
	cfg := media.DefaultOpusConfig()
	if fec {
		cfg.FEC, cfg.PacketLossPerc = true, opusLossPerc
	}
	return room.OpusFormat(cfg)
}

// voice is the audio of one PeerConnection that is a room member, the part
// WHIP/WHEP sessions and node-to-node links share: the peer's Opus packets
// go through a jitter buffer and a decoder to the mixer (ReadFrame), and
// the room's encoded mix goes through a bounded queue to the sender
// goroutine, which writes it as RTP on the outgoing track (WriteMix). The
// owner runs readAudio and sendLoop as its own goroutines.
type voice struct {
	out   *webrtc.TrackLocalStaticRTP
	queue sendQueue

	// Inbound audio, when the peer sends: readAudio pushes, the mixer
	// pops through playout in readFrame.
	jb      *media.JitterBuffer
	dec     *media.OpusDecoder
	playout *media.Playout
	started atomic.Bool // a packet arrived: readFrame has audio

	now func() time.Time // the clock of arrivals and playout; time.Now but in benchmarks

	received atomic.Uint64 // RTP packets pushed into the jitter buffer
	sent     atomic.Uint64 // mix packets written to the track
}

// init makes the outgoing track ("mix", stream "mediagate") and, when
// receive is set, the jitter buffer and decoder of the peer's audio.
func (v *voice) init(receive bool) error {
	v.now = time.Now
	v.queue.init()
	var err error
	if v.out, err = webrtc.NewTrackLocalStaticRTP(opusCapability, "mix", "mediagate"); err != nil {
		return fmt.Errorf("rtc: audio track: %w", err)
	}
	if !receive {
		return nil
	}
	if v.jb, err = media.NewJitterBuffer(opusFrameTS); err != nil {
		return fmt.Errorf("rtc: jitter buffer: %w", err)
	}
	if v.dec, err = media.NewOpusDecoder(); err != nil {
		return fmt.Errorf("rtc: opus decoder: %w", err)
	}
	v.playout = media.NewPlayout(v.jb, v.dec)
	return nil
}

// readAudio pushes the peer's Opus packets into the jitter buffer with
// their arrival time until the track ends. DTX gaps and losses are the
// jitter buffer's and playout's business.
func (v *voice) readAudio(t *webrtc.TrackRemote) {
	buf := make([]byte, rtpBufSize)
	var pkt rtp.Packet
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil || len(pkt.Payload) == 0 {
			continue
		}
		err = v.jb.Push(media.Packet{
			Seq: pkt.SequenceNumber, Timestamp: pkt.Timestamp, SSRC: pkt.SSRC,
			Marker: pkt.Marker, Payload: pkt.Payload,
		}, v.now())
		if err == nil {
			v.received.Add(1)
			v.started.Store(true)
		}
	}
}

// readFrame is room.Participant's ReadFrame: the next 20 ms from the
// jitter buffer, decoded or concealed, or false before the first packet
// (and always for a peer that does not send).
func (v *voice) readFrame(dst *media.Frame) bool {
	if v.playout == nil || !v.started.Load() {
		return false
	}
	v.playout.NextFrame(v.now(), dst[:])
	return true
}

// writeMix is room.Participant's WriteMix: the payload is copied into a
// free slot of the send queue, or dropped when the sender is behind.
func (v *voice) writeMix(pkt room.Packet) bool {
	select {
	case sl := <-v.queue.free:
		sl.tick = pkt.Tick
		sl.n = copy(sl.buf[:], pkt.Payload)
		v.queue.full <- sl
		return true
	default:
		v.queue.dropped.Add(1)
		return false
	}
}

// detached releases the decoder once the room has let go: the mixer made
// its last readFrame.
func (v *voice) detached() {
	if v.dec != nil {
		_ = v.dec.Close()
	}
}

// sendLoop writes queued mix packets to the peer until done is closed.
func (v *voice) sendLoop(done <-chan struct{}) {
	snd := newSender()
	for {
		select {
		case <-done:
			return
		case sl := <-v.queue.full:
			err := snd.write(v.out, sl)
			v.queue.free <- sl
			if err == nil {
				v.sent.Add(1)
			}
		}
	}
}

// sendSlot is one queued mix packet.
type sendSlot struct {
	tick uint64
	n    int
	buf  [media.MaxOpusPayload]byte
}

// sendQueue hands mix packets from the mixer to the sender goroutine
// without waiting and without allocating: slots circulate between free
// and full, both buffered for every slot, so neither send ever blocks.
type sendQueue struct {
	slots      [sendQueueLen]sendSlot
	free, full chan *sendSlot
	dropped    atomic.Uint64
}

func (q *sendQueue) init() {
	q.free = make(chan *sendSlot, sendQueueLen)
	q.full = make(chan *sendSlot, sendQueueLen)
	for i := range q.slots {
		q.free <- &q.slots[i]
	}
}

// sender numbers a participant's outgoing mix packets. Sequence numbers
// count packets sent (RFC 3550 §5.1); the timestamp follows the room's
// tick, so packets dropped on the way leave a timestamp gap the peer's
// jitter buffer plays as silence or conceals.
type sender struct {
	pkt       rtp.Packet
	base      uint32
	first     bool
	firstTick uint64
}

func newSender() *sender {
	s := &sender{base: randUint32(), first: true}
	s.pkt.Version = 2
	s.pkt.SequenceNumber = uint16(randUint32())
	return s
}

// write sends one queued packet on track.
func (s *sender) write(track *webrtc.TrackLocalStaticRTP, sl *sendSlot) error {
	if s.first {
		s.firstTick = sl.tick
	}
	s.pkt.Marker = s.first // RFC 3551 §4.1: the stream starts a talkspurt
	s.first = false
	s.pkt.Timestamp = s.base + uint32(sl.tick-s.firstTick)*opusFrameTS
	s.pkt.Payload = sl.buf[:sl.n]
	err := track.WriteRTP(&s.pkt)
	s.pkt.SequenceNumber++
	return err
}

// rtcpReader is what RTPSender and RTPReceiver have in common.
type rtcpReader interface {
	Read(b []byte) (int, interceptor.Attributes, error)
}

// drainRTCP reads RTCP until the sender or receiver stops: pion's
// interceptors (NACK, reports) only see packets that are read.
func drainRTCP(r rtcpReader) {
	buf := make([]byte, rtpBufSize)
	for {
		if _, _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// drainRTP reads and drops a track's packets until it ends.
func drainRTP(t *webrtc.TrackRemote) {
	buf := make([]byte, rtpBufSize)
	for {
		if _, _, err := t.Read(buf); err != nil {
			return
		}
	}
}

// randUint32 picks the random initial sequence number and timestamp of an
// RTP stream (RFC 3550 §5.1).
func randUint32() uint32 { return rand.Uint32() }
