package sip

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/mediagate/mediagate/media"
)

// rtpSession is one call's media: an RTP socket on an even port and an RTCP
// socket on the next, a receive loop that parses packets with pion/rtp and
// feeds the jitter buffer (audio) or the telephone-event decoder, a
// playout side read by Call.ReadFrame, and a sender that writes each
// packet from WriteAudio's goroutine with a non-blocking send, so the
// mixer tick never waits on the network (STYLE 9; rtpsend.go).
//
// Symmetric RTP: we send to the address in the peer's SDP until its first
// valid packet arrives, then to that packet's source (the peer's NAT
// mapping), and accept packets only from there. A new address in a
// re-INVITE forgets the latch.
type rtpSession struct {
	log      *slog.Logger
	ports    *portAllocator
	mux      *rtpMux // the shared port pair, or nil: conn and rtcpConn are the call's own
	conn     *rawUDP
	rtcpConn *net.UDPConn
	port     int
	ssrc     uint32
	onDTMF   func(DTMF)
	wg       *sync.WaitGroup

	dest      atomic.Pointer[peerAddrs]
	sending   atomic.Bool                  // the peer wants our audio (not on hold)
	expecting atomic.Bool                  // the peer sends audio: the media timeout applies
	lastRx    atomic.Int64                 // unix ns of the last accepted RTP or RTCP packet
	timeout   atomic.Pointer[mediaTimeout] // set by watch
	rx        atomic.Pointer[rxConfig]

	// Playout side, used by ReadFrame under readMu. codec, jb and dec are
	// set by the first configure and never change.
	readMu  sync.Mutex
	codec   Codec
	jb      *media.JitterBuffer
	dec     media.Decoder
	playout *media.Playout
	inband  *media.DTMFDetector
	digits  [4]media.Digit
	ended   bool

	// Receive loop only. Telephone events take sequence numbers of the
	// RTP stream they share with the audio (RFC 4733 §2.1), and phones
	// such as baresip keep sending audio between them: the jitter buffer,
	// seeing a gap before every audio packet, would conceal, re-anchor
	// and add delay for each. It gets the audio numbered without the
	// events: seqShift counts those of the stream seqSSRC so far, maxSeq
	// is the highest sequence number seen in it.
	seqShift, maxSeq uint16
	seqSSRC          uint32
	seqSeen          bool

	rxSock  rxSocket // the RTP socket's receiving side (rtprecv.go)
	tx      sendQueue
	srtp    srtpState
	stats   rtpCounters
	dropLog *logLimiter // at most one Debug line per dropLogEvery on malformed packets
	rtcp    rtcpState

	closeOnce sync.Once
	closed    chan struct{}
}

// peerAddrs is where the peer's media goes; replaced whole on change.
type peerAddrs struct {
	sdpRTP, sdpRTCP netip.AddrPort // from the SDP
	rtp, rtcp       netip.AddrPort // where we send now
	latched         bool           // rtp is the source of received packets
	rtcpLatched     bool
}

// rxConfig is the receive side's view of the negotiated payload types.
type rxConfig struct {
	audioPT uint8
	tePT    int
	te      *media.TelephoneEventDecoder // used by the receive loop only
}

// rtpCounters are the session's packet counters.
type rtpCounters struct {
	received    atomic.Uint64 // accepted RTP packets
	malformed   atomic.Uint64 // RTP and RTCP dropped as malformed, all reasons
	malformedBy [NumDropReasons]atomic.Uint64
	unknownPT   atomic.Uint64 // payload type not negotiated
	foreign     atomic.Uint64 // from another source than the latched one
	sent        atomic.Uint64
	sentBytes   atomic.Uint64 // payload octets, for RTCP SR
	recvBytes   atomic.Uint64 // payload octets of the packets received
	dropped     atomic.Uint64 // refused by WriteAudio: too large, or the send buffer full
	sendErrs    atomic.Uint64
}

// Stats are a call's media counters, for metrics and tests.
type Stats struct {
	// Received counts RTP packets accepted; Malformed the RTP and RTCP
	// packets dropped as malformed (MalformedBy splits them by reason),
	// UnknownPT those of a payload type not negotiated, and Foreign
	// well-formed packets from another source than the latched peer.
	Received, Malformed, UnknownPT, Foreign uint64
	MalformedBy                             [NumDropReasons]uint64
	// Sent counts RTP packets sent, Dropped those WriteAudio refused
	// (too large, or the socket's send buffer was full).
	Sent, Dropped uint64
	// ReceivedBytes and SentBytes are the payload octets of the RTP
	// packets received (accepted) and sent.
	ReceivedBytes, SentBytes uint64
	// Jitter is the jitter buffer's view of the incoming stream.
	Jitter media.JitterStats
	// SRTP reports that the call's media is SRTP (RFC 3711, keyed by
	// SDES): what is sent is protected, and only authenticated packets
	// are accepted (the others count in MalformedBy as DropSRTPAuth and
	// DropSRTPReplay).
	SRTP bool
}

// maxRTP is the largest RTP packet handled: an Ethernet MTU.
const maxRTP = 1500

// newRTPSession binds a port pair, or takes the shared one (mux, when not
// nil), and starts the drain and RTCP goroutines (counted in wg, stopped
// by close).
func newRTPSession(log *slog.Logger, ports *portAllocator, mux *rtpMux, wg *sync.WaitGroup, onDTMF func(DTMF)) (*rtpSession, error) {
	s := &rtpSession{
		log: log, ports: ports, mux: mux, ssrc: rand.Uint32(), onDTMF: onDTMF, wg: wg,
		closed: make(chan struct{}), dropLog: newLogLimiter(1, dropLogEvery),
	}
	s.dest.Store(&peerAddrs{})
	s.lastRx.Store(time.Now().UnixNano())
	if mux != nil {
		s.rtcpConn, s.port = mux.rtcpConn, mux.port
		_ = s.tx.init(nil)
		mux.add(s) // the pair drains and runs the media timeout (rtpMux.watchLoop)
		wg.Add(1)
		go s.rtcpLoop()
		return s, nil
	}
	conn, rtcpConn, port, err := ports.allocate()
	if err != nil {
		return nil, err
	}
	s.conn, s.rtcpConn, s.port = conn, rtcpConn, port
	if err := s.tx.init(conn); err != nil {
		_ = conn.Close()
		_ = rtcpConn.Close()
		ports.release(port)
		return nil, err
	}
	if err := s.rxSock.init(conn, rxBatch); err != nil {
		_ = conn.Close()
		_ = rtcpConn.Close()
		ports.release(port)
		return nil, err
	}
	wg.Add(2)
	go s.drainLoop()
	go s.rtcpLoop()
	return s, nil
}

// addressFree refuses (488) a renegotiated description whose RTP address
// another call on the shared pair has: applying it would fail (route).
func (s *rtpSession) addressFree(rtp netip.AddrPort) error {
	if s.mux != nil && s.mux.taken(s, rtp) {
		return &StatusError{Code: 488, Reason: "Media Address In Use By Another Call"}
	}
	return nil
}

// configure applies a negotiated description: payload types, where to send,
// and whether we send and expect media. The codec is fixed by the first
// call; later ones (re-INVITEs) must carry the same codec. An address the
// shared pair refuses (route) changes nothing.
func (s *rtpSession) configure(rm remoteMedia) error {
	old := s.dest.Load()
	if old.sdpRTP != rm.rtp || old.sdpRTCP != rm.rtcp {
		// A new address (or the first): send there until packets arrive.
		d := &peerAddrs{sdpRTP: rm.rtp, sdpRTCP: rm.rtcp, rtp: rm.rtp, rtcp: rm.rtcp}
		if s.mux != nil {
			if err := s.mux.route(s, old, d); err != nil {
				return err
			}
		}
		s.dest.Store(d)
	}
	s.readMu.Lock()
	if s.jb == nil {
		jb, err := media.NewJitterBuffer(rm.codec.FrameTS())
		if err != nil {
			s.readMu.Unlock()
			return err
		}
		dec, err := newDecoder(rm.codec)
		if err != nil {
			s.readMu.Unlock()
			return err
		}
		s.codec, s.jb, s.dec = rm.codec, jb, dec
		s.playout = media.NewPlayout(jb, dec)
	}
	// In-band detection only where DTMF has no other way: G.711 without
	// telephone-event (G.722 and Opus distort the tones).
	if (rm.codec.Name == CodecPCMU || rm.codec.Name == CodecPCMA) && rm.tePT < 0 {
		if s.inband == nil {
			s.inband = media.NewDTMFDetector()
		}
	} else {
		s.inband = nil
	}
	s.readMu.Unlock()

	s.rx.Store(&rxConfig{audioPT: rm.codec.PayloadType, tePT: rm.tePT,
		te: media.NewTelephoneEventDecoder(rm.teRate)})
	s.tx.setFormat(rm.codec.PayloadType, rm.codec.FrameTS(), rm.codec.ClockRate)
	s.sending.Store(rm.canSend())
	s.expecting.Store(rm.expectsMedia())
	s.lastRx.Store(time.Now().UnixNano())
	return nil
}

// handleRTP checks, latches and dispatches one packet; it allocates
// nothing in steady state. Framing is checked before anything else, so a
// malformed packet, from the peer or anyone, is counted by its reason and
// neither latches nor keeps the call alive.
func (s *rtpSession) handleRTP(b []byte, from netip.AddrPort, pkt *rtp.Packet, now time.Time) {
	if len(b) >= 2 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223 {
		// RTCP on the RTP port (RFC 5761 §4: packet types 192–223), from
		// peers that multiplex whether or not we offered it.
		s.handleRTCP(b, from, now, true)
		return
	}
	b, r, ok := s.srtp.unprotectRTP(b, &pkt.Header)
	if !ok {
		s.drop(r, now)
		return
	}
	if r, ok := checkRTP(b); !ok {
		s.drop(r, now)
		return
	}
	if err := pkt.Unmarshal(b); err != nil {
		// checkRTP passed: only RFC 8285 elements overrunning the
		// extension remain for pion to refuse.
		s.drop(DropRTPExtension, now)
		return
	}
	cfg := s.rx.Load()
	if cfg == nil || (pkt.PayloadType != cfg.audioPT && int(pkt.PayloadType) != cfg.tePT) {
		s.stats.unknownPT.Add(1)
		return
	}
	if !s.admit(from) {
		s.stats.foreign.Add(1)
		return
	}
	s.lastRx.Store(now.UnixNano())
	s.rtcp.noteRTP(pkt.SequenceNumber, pkt.SSRC)
	seq := s.audioSeq(pkt, pkt.PayloadType != cfg.audioPT)
	if pkt.PayloadType == cfg.audioPT {
		err := s.jb.Push(media.Packet{Seq: seq, Timestamp: pkt.Timestamp, SSRC: pkt.SSRC,
			Payload: pkt.Payload}, now)
		if err != nil {
			s.drop(DropRTPPayload, now)
			return
		}
		s.stats.received.Add(1)
		s.stats.recvBytes.Add(uint64(len(pkt.Payload)))
		return
	}
	s.stats.received.Add(1)
	s.stats.recvBytes.Add(uint64(len(pkt.Payload)))
	ev, ok, err := cfg.te.Decode(pkt.Timestamp, pkt.Marker, pkt.Payload, now)
	if err != nil {
		s.drop(DropRTPPayload, now)
		return
	}
	if ok && ev.Press {
		s.onDTMF(DTMF{Digit: ev.Digit, Source: DTMFRFC4733, At: now})
	}
}

// audioSeq returns the sequence number the jitter buffer gets for an
// audio packet: its own less the telephone events (te) before it in the
// stream. An event counts when it advances the highest sequence number
// seen, so a late or repeated one is not counted twice.
func (s *rtpSession) audioSeq(pkt *rtp.Packet, te bool) uint16 {
	if !s.seqSeen || pkt.SSRC != s.seqSSRC {
		s.seqSeen, s.seqSSRC, s.seqShift, s.maxSeq = true, pkt.SSRC, 0, pkt.SequenceNumber-1
	}
	if int16(pkt.SequenceNumber-s.maxSeq) > 0 {
		s.maxSeq = pkt.SequenceNumber
		if te {
			s.seqShift++
		}
	}
	return pkt.SequenceNumber - s.seqShift
}

// admit latches to the first valid packet's source and afterwards accepts
// only that source (symmetric RTP, RFC 4961 §3; latching once blunts RTP
// injection from third parties). The address the peer's SDP names always
// wins the latch back, so a straggler from the old address of a re-INVITE
// cannot keep the stream.
func (s *rtpSession) admit(from netip.AddrPort) bool {
	for {
		d := s.dest.Load()
		if d.latched && (d.rtp == from || from != d.sdpRTP) {
			return d.rtp == from
		}
		nd := *d
		nd.rtp, nd.latched = from, true
		if !nd.rtcpLatched {
			// RTCP goes to the port above the RTP source (RFC 3550 §11)
			// unless the SDP named another port on the same host.
			nd.rtcp = netip.AddrPortFrom(from.Addr(), min(from.Port()+1, 65535))
			if d.sdpRTCP.Addr() == from.Addr() {
				nd.rtcp = d.sdpRTCP
			}
		}
		if s.dest.CompareAndSwap(d, &nd) {
			if d.sdpRTP != from {
				s.log.Debug("rtp latched to another source than the sdp named", addrAttr("from", from))
			}
			return true
		}
	}
}

// readFrame plays out the next 20 ms at the codec's rate into pcm and runs
// in-band DTMF detection on it.
func (s *rtpSession) readFrame(pcm []int16) (int, media.PlayoutStatus) {
	s.drain()
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.playout == nil || s.ended {
		n := 0
		if s.codec.SampleRate > 0 {
			n = min(len(pcm), media.SamplesPerFrame(s.codec.SampleRate))
		}
		clear(pcm[:n])
		return n, media.PlayoutSilence
	}
	now := time.Now()
	n, st := s.playout.NextFrame(now, pcm)
	if s.inband != nil {
		for _, d := range s.inband.Process(pcm[:n], s.digits[:0]) {
			s.onDTMF(DTMF{Digit: d, Source: DTMFInBand, At: now})
		}
	}
	return n, st
}

// watch ends the call through onTimeout when no media arrived for timeout
// while media is expected (not on hold). The drain loop checks it at each
// of its ticks (drainEvery) until close.
func (s *rtpSession) watch(timeout time.Duration, onTimeout func()) {
	s.lastRx.Store(time.Now().UnixNano())
	s.timeout.Store(&mediaTimeout{after: timeout, fire: onTimeout})
}

// mediaTimeout is what watch set up.
type mediaTimeout struct {
	after time.Duration
	fire  func()
}

// checkTimeout looks at the media timeout at now and returns what to run
// when it expired (once), else nil.
func (s *rtpSession) checkTimeout(now time.Time) (fire func()) {
	mt := s.timeout.Load()
	switch {
	case mt == nil:
	case !s.expecting.Load():
		s.lastRx.Store(now.UnixNano()) // on hold: restart the clock
	case now.Sub(time.Unix(0, s.lastRx.Load())) > mt.after && s.timeout.CompareAndSwap(mt, nil):
		return mt.fire
	}
	return nil
}

// close stops the goroutines, sends an RTCP BYE, closes the sockets,
// returns the ports and closes the decoder. It does not wait for the
// goroutines (the owner's WaitGroup does), so the timeout watcher may call
// it.
func (s *rtpSession) close() {
	s.closeOnce.Do(func() {
		s.sendRTCP(true)
		close(s.closed)
		if s.mux != nil {
			s.mux.remove(s, s.dest.Load())
		} else {
			_ = s.conn.Close()
			_ = s.rtcpConn.Close()
			s.ports.release(s.port)
		}
		s.readMu.Lock()
		s.ended = true
		if s.dec != nil {
			_ = s.dec.Close()
		}
		s.readMu.Unlock()
	})
}

// snapshot returns the counters.
func (s *rtpSession) snapshot() Stats {
	s.drain()
	st := Stats{
		Received: s.stats.received.Load(), Malformed: s.stats.malformed.Load(),
		UnknownPT: s.stats.unknownPT.Load(), Foreign: s.stats.foreign.Load(),
		Sent: s.stats.sent.Load(), Dropped: s.stats.dropped.Load(), SRTP: s.srtp.secure(),
		ReceivedBytes: s.stats.recvBytes.Load(), SentBytes: s.stats.sentBytes.Load(),
	}
	for i := range st.MalformedBy {
		st.MalformedBy[i] = s.stats.malformedBy[i].Load()
	}
	s.readMu.Lock()
	if s.jb != nil {
		st.Jitter = s.jb.Stats()
	}
	s.readMu.Unlock()
	return st
}

const rtpHeaderLen = 12

// putRTPHeader writes a fixed RTP header without CSRCs or extensions
// (RFC 3550 §5.1).
func putRTPHeader(b []byte, marker bool, pt uint8, seq uint16, ts, ssrc uint32) {
	b[0] = 2 << 6
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}
