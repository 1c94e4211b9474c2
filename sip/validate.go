package sip

import (
	"encoding/binary"
	"time"
)

// Every datagram on a call's media ports is checked here before anything
// reads it: RTP against RFC 3550 §5.1 and A.1, RTCP against §6.4 and A.2.
// Whatever fails is dropped and counted by reason; it neither latches the
// peer's address nor counts as media for the timeout.

// DropReason says why a received packet was dropped as malformed.
type DropReason uint8

// Reasons a packet is malformed. Their String values are short snake_case
// words, usable as metric labels.
const (
	DropRTPShort     DropReason = iota // shorter than the 12-octet fixed header
	DropRTPVersion                     // version field not 2
	DropRTPCSRC                        // CSRC count × 4 runs past the packet
	DropRTPExtension                   // header extension runs past the packet
	DropRTPPadding                     // padding count 0 or longer than the payload
	DropRTPPayload                     // header fine, payload refused (jitter buffer, telephone-event decoder)
	DropRTCPShort                      // shorter than a 4-octet RTCP header
	DropRTCPVersion                    // a part's version field not 2
	DropRTCPLength                     // length fields do not add up to the datagram
	DropRTCPPadding                    // padding on a part but the last, or a padding count that lies
	DropRTCPCompound                   // a compound packet not starting with SR or RR (RFC 3550 §6.1)
	DropRTCPContent                    // framing fine, a part's content unparsable
	DropSRTPAuth                       // SRTP or SRTCP authentication failed (RFC 3711 §3.4): forged, garbled or another key
	DropSRTPReplay                     // SRTP or SRTCP index seen before (RFC 3711 §3.3.2): a replay

	// NumDropReasons is the number of reasons: the length of
	// Stats.MalformedBy.
	NumDropReasons = iota
)

var dropReasonNames = [NumDropReasons]string{
	"rtp_short", "rtp_version", "rtp_csrc", "rtp_extension", "rtp_padding", "rtp_payload",
	"rtcp_short", "rtcp_version", "rtcp_length", "rtcp_padding", "rtcp_compound", "rtcp_content",
	"srtp_auth", "srtp_replay",
}

func (r DropReason) String() string {
	if int(r) < len(dropReasonNames) {
		return dropReasonNames[r]
	}
	return "unknown"
}

// checkRTP checks an RTP packet's framing: fixed header, version, CSRC
// list, header extension and padding must all fit (RFC 3550 §5.1, §5.3.1).
func checkRTP(b []byte) (DropReason, bool) {
	if len(b) < rtpHeaderLen {
		return DropRTPShort, false
	}
	if b[0]>>6 != 2 {
		return DropRTPVersion, false
	}
	n := rtpHeaderLen + 4*int(b[0]&0x0f)
	if n > len(b) {
		return DropRTPCSRC, false
	}
	if b[0]&0x10 != 0 {
		// §5.3.1: 16-bit profile word, 16-bit length in 32-bit words.
		if n+4 > len(b) {
			return DropRTPExtension, false
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
		if n > len(b) {
			return DropRTPExtension, false
		}
	}
	if b[0]&0x20 != 0 {
		// §5.1: the last octet counts the padding, itself included.
		if pad := int(b[len(b)-1]); pad == 0 || n+pad > len(b) {
			return DropRTPPadding, false
		}
	}
	return 0, true
}

// checkRTCP checks an RTCP datagram's framing (RFC 3550 §6.4.1, A.2):
// every part has version 2 and a length that stays inside the datagram,
// the lengths add up to it exactly, only the last part is padded, with a
// padding count that fits that part, and the first part is an SR or RR.
func checkRTCP(b []byte) (DropReason, bool) {
	if len(b) < 4 {
		return DropRTCPShort, false
	}
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return DropRTCPLength, false
		}
		h := b[off:]
		if h[0]>>6 != 2 {
			return DropRTCPVersion, false
		}
		size := 4 + 4*int(binary.BigEndian.Uint16(h[2:]))
		if size > len(h) {
			return DropRTCPLength, false
		}
		if h[0]&0x20 != 0 {
			if off+size != len(b) {
				return DropRTCPPadding, false
			}
			if pad := int(h[size-1]); pad == 0 || pad > size-4 {
				return DropRTCPPadding, false
			}
		}
		off += size
	}
	if pt := b[1]; pt != 200 && pt != 201 { // SR, RR
		return DropRTCPCompound, false
	}
	return 0, true
}

// dropLogEvery is how often at most a call logs (at Debug) that it drops
// malformed packets: a flood must not become a flood of log lines.
const dropLogEvery = 10 * time.Second

// drop counts a malformed packet.
func (s *rtpSession) drop(r DropReason, now time.Time) {
	s.stats.malformed.Add(1)
	s.stats.malformedBy[r].Add(1)
	if ok, _ := s.dropLog.allow(now); ok {
		s.log.Debug("malformed media packets dropped", "reason", r.String(),
			"malformed", s.stats.malformed.Load(), "every", dropLogEvery)
	}
}
