package rtc

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// A session's mix packet written on its pion track goes through the
// track's binding, the interceptors (RTCP reports, TWCC, NACK), the SRTP
// session's lookup and encryption, the mux endpoint, the ICE candidate
// pair and the UDP mux to the server's batch writer: about 12 µs of CPU a
// packet, three quarters of what a WHEP listener cost (docs/benchmarks.md,
// scenario c). directSender does what of that a mix needs: it numbers the
// packet as the track would, encrypts it with the session's SRTP keys
// (dtlsKeys) and queues it on the server's batch writer for the ICE pair's
// remote address; once a second it sends an RTCP sender report through
// pion (RFC 3550 §6.4.1: players align the mix with the presenter's video
// by it). pion still runs ICE, DTLS, its RTCP and the peer's media; it
// never sees the mix packets, so its own sender report for the track
// stays off (it reports only streams it has seen packets of), and its SRTP
// context for the track's SSRC never encrypts RTP, so the two never use
// the same key stream.

// srInterval is how often a direct sender reports (pion's report
// interceptor's default, which the mix had before).
const srInterval = time.Second

// directSender sends one session's mix around pion. Its write runs under
// the voice's sendMu; to is updated from pion's goroutines.
type directSender struct {
	srtp  *srtp.Context
	out   *inputFilter
	rtcp  func([]rtcp.Packet) error      // the PeerConnection's WriteRTCP
	to    atomic.Pointer[netip.AddrPort] // the selected ICE pair's remote
	ssrc  uint32
	pt    uint8
	plain []byte
	enc   []byte
	hdr   rtp.Header

	packets, octets uint32    // RFC 3550 §6.4.1 sender's counts
	lastSR          time.Time // zero: none yet
	sr              rtcp.SenderReport
	srs             []rtcp.Packet // {&sr}: pion marshals it before WriteRTCP returns
	now             func() time.Time
}

// errNoPair: the ICE agent has no selected pair (yet, or any more).
var errNoPair = errors.New("rtc: no selected ICE candidate pair")

// newDirectSender sets up the mix of pc's audio sender to go around pion,
// with the keys of pc's handshake; pc must be connected. It fails when
// the keys are not known (the gateway was the DTLS client) or the pair is
// not on the server's UDP port; the mix then goes through pion.
func newDirectSender(keys *dtlsKeys, out *inputFilter, pc *webrtc.PeerConnection, s *webrtc.RTPSender) (*directSender, error) {
	params := s.GetParameters()
	if len(params.Encodings) != 1 || len(params.Codecs) == 0 || params.Codecs[0].MimeType != webrtc.MimeTypeOpus {
		return nil, fmt.Errorf("rtc: audio sender not negotiated as one Opus stream")
	}
	d := newDirect(out, uint32(params.Encodings[0].SSRC), uint8(params.Codecs[0].PayloadType), pc.WriteRTCP)
	ice := s.Transport().ICETransport()
	ice.OnSelectedCandidatePairChange(d.follow)
	pair, err := ice.GetSelectedCandidatePair()
	if err != nil {
		return nil, err
	}
	if pair == nil {
		return nil, errNoPair
	}
	d.follow(pair)
	if d.to.Load() == nil {
		return nil, fmt.Errorf("rtc: selected pair not UDP over IPv4: %s", pair.Remote.Protocol)
	}
	profile, key, salt, err := keys.srtpKeys()
	if err != nil {
		return nil, err
	}
	if d.srtp, err = srtp.CreateContext(key, salt, profile); err != nil {
		return nil, fmt.Errorf("rtc: SRTP context: %w", err)
	}
	clear(key)
	clear(salt)
	return d, nil
}

// newDirect is a direct sender of stream ssrc with payload type pt on out,
// its reports written by rtcp; its SRTP context and address are still to
// be set.
func newDirect(out *inputFilter, ssrc uint32, pt uint8, rtcp func([]rtcp.Packet) error) *directSender {
	return &directSender{out: out, rtcp: rtcp, now: time.Now, ssrc: ssrc, pt: pt,
		plain: make([]byte, rtpBufSize), enc: make([]byte, 0, rtpBufSize+srtpOverhead)}
}

// srtpOverhead is the most an SRTP profile adds to a packet (the 16-byte
// GCM tag; HMAC-SHA1-80 adds 10).
const srtpOverhead = 16

// follow takes the remote address of a newly selected ICE pair (a UDP
// IPv4 one: the server listens on nothing else).
func (d *directSender) follow(pair *webrtc.ICECandidatePair) {
	if pair == nil || pair.Remote == nil || pair.Remote.Protocol != webrtc.ICEProtocolUDP {
		return
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil || !ip.Unmap().Is4() {
		return
	}
	to := netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)
	d.to.Store(&to)
}

// WriteRTP encrypts pkt as the session's audio stream and queues it.
func (d *directSender) WriteRTP(pkt *rtp.Packet) error {
	pkt.SSRC, pkt.PayloadType = d.ssrc, d.pt
	n, err := pkt.MarshalTo(d.plain)
	if err != nil {
		return err
	}
	ct, err := d.srtp.EncryptRTP(d.enc[:0], d.plain[:n], &d.hdr)
	if err != nil {
		return err
	}
	if _, err := d.out.WriteToAddrPort(ct, *d.to.Load()); err != nil {
		return err
	}
	d.packets++
	d.octets += uint32(len(pkt.Payload))
	if now := d.now(); now.Sub(d.lastSR) >= srInterval {
		d.lastSR = now
		d.sr = rtcp.SenderReport{SSRC: d.ssrc, NTPTime: ntpTime(now), RTPTime: pkt.Timestamp,
			PacketCount: d.packets, OctetCount: d.octets}
		if d.srs == nil {
			d.srs = []rtcp.Packet{&d.sr}
		}
		// An SR the transport refuses is the next one's to make up for.
		_ = d.rtcp(d.srs)
	}
	return nil
}

// ntpTime is t as a 64-bit NTP timestamp (RFC 5905 §6: seconds since 1900
// and a binary fraction).
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	ns := uint64(t.UnixNano())
	secs := ns/1e9 + unixToNTP
	frac := (ns % 1e9) << 32 / 1e9
	return secs<<32 | frac
}
