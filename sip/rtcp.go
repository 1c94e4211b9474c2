package sip

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// Minimal RTCP (RFC 3550 §6): a compound SR or RR plus SDES CNAME every
// ~5 s, a BYE when the call ends, and reading the peer's reports only to
// fill LSR/DLSR and to count as a sign of life for the media timeout.

// rtcpInterval is the report interval: the RFC 3550 §6.2 minimum for a
// two-party session, randomised by ±50 % (§6.3.1) when scheduled.
const rtcpInterval = 5 * time.Second

// rtcpState tracks what receiver reports need (RFC 3550 §6.4.1, A.1, A.3).
type rtcpState struct {
	mu          sync.Mutex
	remoteSSRC  uint32
	haveSeq     bool
	baseSeq     uint32 // extended sequence number of the first packet
	maxSeq      uint32 // highest extended sequence number
	received    uint32
	expectPrior uint32 // for the fraction lost of each interval
	recvPrior   uint32
	lastSR      uint32    // middle 32 bits of the last SR's NTP time
	lastSRAt    time.Time // when it arrived
}

// noteRTP records one accepted packet's sequence number.
func (r *rtcpState) noteRTP(seq uint16, ssrc uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.haveSeq || ssrc != r.remoteSSRC {
		r.remoteSSRC, r.haveSeq = ssrc, true
		r.baseSeq, r.maxSeq, r.received = uint32(seq), uint32(seq), 0
		r.expectPrior, r.recvPrior = 0, 0
	}
	r.received++
	// Extend seq to the cycle nearest the highest seen (A.1).
	ext := r.maxSeq&^0xffff | uint32(seq)
	if d := int32(ext - r.maxSeq); d < -0x8000 {
		ext += 0x10000
	} else if d > 0x8000 && ext >= 0x10000 {
		ext -= 0x10000
	}
	if int32(ext-r.maxSeq) > 0 {
		r.maxSeq = ext
	}
}

// report builds the reception report block, or false before any packet.
func (r *rtcpState) report(jitterTS uint32, now time.Time) (rtcp.ReceptionReport, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.haveSeq {
		return rtcp.ReceptionReport{}, false
	}
	expected := r.maxSeq - r.baseSeq + 1
	lost := int64(expected) - int64(r.received)
	lost = min(max(lost, 0), 0x7fffff)
	expInt, recvInt := expected-r.expectPrior, r.received-r.recvPrior
	r.expectPrior, r.recvPrior = expected, r.received
	var fraction uint8
	if expInt > 0 && expInt > recvInt {
		fraction = uint8((expInt - recvInt) << 8 / expInt)
	}
	rr := rtcp.ReceptionReport{SSRC: r.remoteSSRC, FractionLost: fraction, TotalLost: uint32(lost),
		LastSequenceNumber: r.maxSeq, Jitter: jitterTS, LastSenderReport: r.lastSR}
	if !r.lastSRAt.IsZero() {
		rr.Delay = uint32(now.Sub(r.lastSRAt) * 65536 / time.Second) // units of 1/65536 s
	}
	return rr, true
}

// rtcpLoop reads the peer's RTCP (on the call's own port; the shared
// port has one reader for all, rtpMux.rtcpLoop) and sends our reports
// until close.
func (s *rtpSession) rtcpLoop() {
	defer s.wg.Done()
	if s.mux == nil {
		s.wg.Add(1)
		go s.readRTCP()
	}
	t := time.NewTimer(jittered(rtcpInterval))
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			s.sendRTCP(false)
			t.Reset(jittered(rtcpInterval))
		}
	}
}

// readRTCP reads the call's own RTCP socket until it closes.
func (s *rtpSession) readRTCP() {
	defer s.wg.Done()
	readRTCPConn(s.rtcpConn, func(b []byte, from netip.AddrPort, now time.Time) {
		s.handleRTCP(b, from, now, false)
	})
}

// readRTCPConn reads conn until it closes and hands each datagram, its
// source (IPv4 not mapped) and its arrival time to handle.
func readRTCPConn(conn *net.UDPConn, handle func(b []byte, from netip.AddrPort, now time.Time)) {
	buf := make([]byte, maxRTP)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		handle(buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), time.Now())
	}
}

func jittered(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// handleRTCP takes a packet from the peer, on the RTCP port or muxed on
// the RTP port. Its framing is checked first (a malformed one is counted
// by reason and changes nothing); it must then come from the host we
// latched RTP to (or the SDP's when nothing arrived yet), and when muxed
// after the latch from the latched address itself.
func (s *rtpSession) handleRTCP(b []byte, from netip.AddrPort, now time.Time, muxed bool) {
	b, r, ok := s.srtp.unprotectRTCP(b)
	if !ok {
		s.drop(r, now)
		return
	}
	if r, ok := checkRTCP(b); !ok {
		s.drop(r, now)
		return
	}
	d := s.dest.Load()
	if (muxed && d.latched && from != d.rtp) || (from.Addr() != d.rtp.Addr() && from.Addr() != d.sdpRTCP.Addr()) {
		s.stats.foreign.Add(1)
		return
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		s.drop(DropRTCPContent, now)
		return
	}
	s.lastRx.Store(now.UnixNano())
	if !d.rtcpLatched {
		nd := *d
		nd.rtcp, nd.rtcpLatched = from, true
		s.dest.CompareAndSwap(d, &nd)
	}
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			s.rtcp.mu.Lock()
			s.rtcp.lastSR, s.rtcp.lastSRAt = uint32(sr.NTPTime>>16), now
			s.rtcp.mu.Unlock()
		}
	}
}

// sendRTCP sends an SR (once we have sent RTP) or an RR, then SDES CNAME
// (RFC 3550 §6.1: every compound packet has one), and BYE when bye is set.
func (s *rtpSession) sendRTCP(bye bool) {
	to := s.dest.Load().rtcp
	if !to.IsValid() || to.Addr().IsUnspecified() {
		return
	}
	now := time.Now()
	var jitterTS uint32
	s.readMu.Lock()
	if s.jb != nil {
		jitterTS = uint32(s.jb.Stats().Jitter * time.Duration(s.codec.ClockRate) / time.Second)
	}
	s.readMu.Unlock()
	var reports []rtcp.ReceptionReport
	if rr, ok := s.rtcp.report(jitterTS, now); ok {
		reports = append(reports, rr)
	}
	var first rtcp.Packet = &rtcp.ReceiverReport{SSRC: s.ssrc, Reports: reports}
	if sent := s.stats.sent.Load(); sent > 0 {
		q := &s.tx
		q.mu.Lock()
		rtpTS := q.lastTS + uint32(now.Sub(q.lastAt)*time.Duration(q.clock)/time.Second)
		q.mu.Unlock()
		first = &rtcp.SenderReport{SSRC: s.ssrc, NTPTime: ntpTime(now), RTPTime: rtpTS,
			PacketCount: uint32(sent), OctetCount: uint32(s.stats.sentBytes.Load()), Reports: reports}
	}
	pkts := []rtcp.Packet{first, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: s.ssrc, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "mediagate"}},
	}}}}
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{s.ssrc}})
	}
	b, err := rtcp.Marshal(pkts)
	if err == nil {
		b, err = s.srtp.protectRTCP(b)
	}
	if err != nil {
		return
	}
	_, _ = s.rtcpConn.WriteToUDPAddrPort(b, to)
}

// ntpTime converts t to the 64-bit NTP format of RFC 3550 §4.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}
