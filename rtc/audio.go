package rtc

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

const (
	// DefaultOpusComplexity is webrtc.opus_complexity's default. libopus
	// (VoIP, 32 kbit/s, FEC for 10 % loss) spends about 77 µs on a 20 ms
	// frame of speech at complexity 1 against 190 µs at 5 (the setting
	// until then) and 135-185 µs at 2 to 4 (media's BenchmarkOpusEncode),
	// for the same fidelity by waveform correlation (0.949 against 0.952,
	// TestOpusComplexityFidelity): the steps above 1 buy quality per bit,
	// which a mix at 32 kbit/s does not need. With two such encodes per
	// room tick, the mix encoders were 44 % of the gateway's CPU in mixed
	// rooms (docs/benchmarks.md, session 9).
	DefaultOpusComplexity = 1
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
// settings with the server's (or link's) application and complexity, and
// in-band FEC when the peer takes it and the application has it (CELT-only
// low delay has none: FEC is SILK's).
func opusFormat(fec bool, set OpusSettings) room.Format {
	cfg := media.DefaultOpusConfig()
	cfg.Application, cfg.Complexity = set.Application, set.Complexity
	if fec && set.Application != media.OpusRestrictedLowDelay {
		cfg.FEC, cfg.PacketLossPerc = true, opusLossPerc
	}
	return room.OpusFormat(cfg)
}

// OpusSettings are how a room encodes the mixes of WebRTC participants
// (webrtc.opus_application, webrtc.opus_complexity).
type OpusSettings struct {
	// Application is libopus's tuning: VoIP (the zero value) and audio
	// with FEC when the peer takes it; restricted low delay is CELT only,
	// about 40 % of VoIP's encode cost and 4 ms less look-ahead, but
	// without FEC.
	Application media.OpusApplication
	// Complexity is 0..10; the configuration's default is
	// DefaultOpusComplexity.
	Complexity int
}

// check refuses settings libopus does not have (media.ErrCodecConfig).
func (o OpusSettings) check() error { return opusFormat(false, o).Opus.Validate() }

// voice is the audio of one PeerConnection that is a room member, the part
// WHIP/WHEP sessions and node-to-node links share: the peer's Opus packets
// go through a jitter buffer and a decoder to the mixer (ReadFrame), and
// the room's encoded mix is written as RTP on the outgoing track by the
// room's tick itself (WriteMix), once the owner has called startSending.
// The owner runs readAudio as a goroutine of its own.
//
// The write does not wait: pion's path to the socket takes short locks,
// SRTP and the interceptors, and ends in the server's udpmsg.Writer, which
// queues the datagram for its next sendmmsg (or drops it when the kernel
// refuses). A goroutine per voice woken by a queue cost more than the
// write itself with 300 listeners: the scheduler's work for 15000 wake-ups
// a second was a quarter of the gateway's CPU.
type voice struct {
	out *webrtc.TrackLocalStaticRTP
	// direct, when set before startSending, takes the mix packets instead
	// of out: around pion (directSender).
	direct *directSender

	sending atomic.Bool // startSending was called
	sendMu  sync.Mutex  // snd; one WriteMix at a time
	snd     *sender
	dropped atomic.Uint64 // mix packets the track refused

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
	v.snd = newSender()
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
// jitter buffer's and playout's business. A packet whose RFC 6464 audio
// level (from r's negotiated extension, when there is one) is quieter than
// silentLevel is pushed as silent: it is not decoded, which is most of
// what a silent browser participant costs.
func (v *voice) readAudio(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	buf := make([]byte, rtpBufSize)
	var pkt rtp.Packet
	levelID := audioLevelID(r)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil || len(pkt.Payload) == 0 {
			continue
		}
		err = v.jb.Push(media.Packet{
			Seq: pkt.SequenceNumber, Timestamp: pkt.Timestamp, SSRC: pkt.SSRC, Payload: pkt.Payload,
			Silent: levelID != 0 && quiet(pkt.GetExtension(levelID)),
		}, v.now())
		if err == nil {
			v.received.Add(1)
			v.started.Store(true)
		}
	}
}

// silentLevel is the RFC 6464 level (-dBov) below which a peer's packet
// is taken for silence and not decoded: 25 dB under the room's default
// voice-activity threshold (room.DefaultVADThreshold, 45), so what is
// skipped would neither count as speech nor be heard in a mix.
const silentLevel = 70

// audioLevelID is the ID the audio level extension was negotiated with on
// r, or 0 when it was not.
func audioLevelID(r *webrtc.RTPReceiver) uint8 {
	if r == nil {
		return 0
	}
	for _, e := range r.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI && e.ID > 0 && e.ID < 256 {
			return uint8(e.ID)
		}
	}
	return 0
}

// quiet reports whether an audio level extension's payload (RFC 6464
// §3: V bit, then the level in -dBov) says the packet is silence; a
// missing or malformed extension is sound.
func quiet(ext []byte) bool {
	return len(ext) > 0 && ext[0]&0x7f > silentLevel
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

// startSending lets writeMix write: the track is negotiated.
func (v *voice) startSending() { v.sending.Store(true) }

// writeMix is room.Participant's WriteMix: the packet is written on the
// track at once; before startSending there is nothing to send yet.
func (v *voice) writeMix(pkt room.Packet) bool {
	if !v.sending.Load() {
		return true
	}
	v.sendMu.Lock()
	var w rtpWriter = v.out
	if v.direct != nil {
		w = v.direct
	}
	err := v.snd.write(w, pkt.Tick, pkt.Payload)
	v.sendMu.Unlock()
	if err != nil {
		v.dropped.Add(1)
		return false
	}
	v.sent.Add(1)
	return true
}

// detached releases the decoder once the room has let go: the mixer made
// its last readFrame.
func (v *voice) detached() {
	if v.dec != nil {
		_ = v.dec.Close()
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

// rtpWriter is where a sender's packets go: the session's track, or its
// directSender.
type rtpWriter interface {
	WriteRTP(*rtp.Packet) error
}

// write sends the payload of the room's tick on w.
func (s *sender) write(w rtpWriter, tick uint64, payload []byte) error {
	if s.first {
		s.firstTick = tick
	}
	s.pkt.Marker = s.first // RFC 3551 §4.1: the stream starts a talkspurt
	s.first = false
	s.pkt.Timestamp = s.base + uint32(tick-s.firstTick)*opusFrameTS
	s.pkt.Payload = payload
	err := w.WriteRTP(&s.pkt)
	s.pkt.SequenceNumber++
	s.pkt.Payload = nil // the room's buffer, not ours to keep
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
