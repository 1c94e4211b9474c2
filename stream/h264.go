package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// H.264 access units, from Annex B byte streams (start codes, ITU-T H.264
// Annex B) to the AVCC form FLV carries (4-byte big-endian lengths,
// ISO 14496-15 §5.3.4.2).

// NAL unit types (H.264 Table 7-1) the egress looks at.
const (
	nalSlice  = 1
	nalIDR    = 5
	nalSPS    = 7
	nalPPS    = 8
	nalAUD    = 9
	nalFiller = 12
)

// annexB iterates over the NAL units of an Annex B buffer without
// allocating: for it := (annexB{b: au}); ; { nal := it.next(); ... }.
type annexB struct{ b []byte }

var startCode = []byte{0, 0, 1}

// next returns the next NAL unit (without start code and trailing zero
// bytes, which include a 4-byte start code's first zero), or nil at the
// end. Bytes before the first start code count as a unit.
func (a *annexB) next() []byte {
	for len(a.b) > 0 {
		var nal []byte
		if i := bytes.Index(a.b, startCode); i < 0 {
			nal, a.b = a.b, nil
		} else {
			nal, a.b = a.b[:i], a.b[i+3:]
		}
		if nal = bytes.TrimRight(nal, "\x00"); len(nal) > 0 {
			return nal
		}
	}
	return nil
}

// auInfo is what scanAU learns about an access unit.
type auInfo struct {
	key      bool   // has an IDR slice
	sps, pps []byte // the first SPS and PPS in it, if any (slices of the AU)
	size     int    // AVCC size of the units appendAVCC keeps
}

// scanAU looks at an Annex B access unit's NAL units.
func scanAU(au []byte) auInfo {
	var info auInfo
	it := annexB{b: au}
	for nal := it.next(); nal != nil; nal = it.next() {
		switch nal[0] & 0x1f {
		case nalIDR:
			info.key = true
		case nalSPS:
			if info.sps == nil {
				info.sps = nal
			}
		case nalPPS:
			if info.pps == nil {
				info.pps = nal
			}
		case nalAUD, nalFiller:
			continue
		}
		info.size += 4 + len(nal)
	}
	return info
}

// appendAVCC appends au's NAL units with 4-byte lengths, dropping access
// unit delimiters and filler (FLV frames are delimited by their tags).
func appendAVCC(dst, au []byte) []byte {
	it := annexB{b: au}
	for nal := it.next(); nal != nil; nal = it.next() {
		switch nal[0] & 0x1f {
		case nalAUD, nalFiller:
			continue
		}
		dst = appendNAL(dst, nal)
	}
	return dst
}

// appendNAL appends one NAL unit with its 4-byte length.
func appendNAL(dst, nal []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(nal)))
	return append(dst, nal...)
}

// splitAUs cuts an Annex B stream made of whole access units, each
// starting with its first slice or with parameter sets (as x264 writes
// them without AUDs), into access units: a new unit starts at a slice
// whose first_mb_in_slice is 0, or at an SPS/PPS/AUD/SEI after a slice.
func splitAUs(stream []byte) [][]byte {
	var aus [][]byte
	start, sawSlice := -1, false
	pos := 0
	for pos < len(stream) {
		i := bytes.Index(stream[pos:], startCode)
		if i < 0 {
			break
		}
		sc := pos + i
		if sc > 0 && stream[sc-1] == 0 {
			sc-- // 4-byte start code
		}
		hdr := pos + i + 3
		if hdr >= len(stream) {
			break
		}
		typ := stream[hdr] & 0x1f
		first := (typ == nalSlice || typ == nalIDR) && hdr+1 < len(stream) && stream[hdr+1]&0x80 != 0 // ue(v) 0 is the bit "1"
		boundary := start < 0 || (sawSlice && (first || typ == nalSPS || typ == nalPPS || typ == nalAUD || typ == 6))
		if boundary {
			if start >= 0 {
				aus = append(aus, stream[start:sc])
			}
			start, sawSlice = sc, false
		}
		if typ == nalSlice || typ == nalIDR {
			sawSlice = true
		}
		pos = hdr
	}
	if start >= 0 {
		aus = append(aus, stream[start:])
	}
	return aus
}

// RTP payload types of RFC 6184 §5.2 that WebRTC senders use.
const (
	rtpSTAPA = 24
	rtpFUA   = 28
)

// errPayload means an RTP payload is not RFC 6184 as the egress takes it:
// empty, truncated, a STAP-B, MTAP or FU-B (packetization mode 2, which
// WebRTC does not negotiate), or an FU-A fragment whose start was lost.
var errPayload = errors.New("stream: bad h264 rtp payload")

// depacketizer reassembles H.264 RTP payloads (RFC 6184 §5.6 single NAL
// unit, §5.7.1 STAP-A, §5.8 FU-A) into an Annex B access unit, appending to
// the caller's buffer: nothing is allocated once the buffer has grown. It
// gives the same bytes as pion's codecs.H264Packet (FuzzDepacketize
// checks), which copies each unit three times into fresh slices.
type depacketizer struct {
	inFU bool // an FU-A's start was seen and its end was not
}

// annexBStart is the 4-byte start code pion writes too.
var annexBStart = []byte{0, 0, 0, 1}

// reset forgets a fragment in progress (after a lost packet).
func (d *depacketizer) reset() { d.inFU = false }

// append appends payload's NAL units (or fragment) to au.
func (d *depacketizer) append(au, payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		return au, errPayload
	}
	switch typ := payload[0] & 0x1f; {
	case typ >= 1 && typ <= 23:
		d.inFU = false
		au = append(au, annexBStart...)
		return append(au, payload...), nil
	case typ == rtpSTAPA:
		d.inFU = false
		for p := payload[1:]; len(p) > 0; {
			if len(p) < 2 {
				return au, nil // trailing padding, as pion reads it
			}
			n := int(binary.BigEndian.Uint16(p))
			if n == 0 || n > len(p)-2 {
				return au, errPayload
			}
			au = append(au, annexBStart...)
			au = append(au, p[2:2+n]...)
			p = p[2+n:]
		}
		return au, nil
	case typ == rtpFUA:
		if len(payload) < 2 {
			return au, errPayload
		}
		if payload[1]&0x80 != 0 { // start: rebuild the NAL header
			au = append(au, annexBStart...)
			au = append(au, payload[0]&0xe0|payload[1]&0x1f)
			d.inFU = true
		} else if !d.inFU {
			return au, errPayload
		}
		au = append(au, payload[2:]...)
		if payload[1]&0x40 != 0 {
			d.inFU = false
		}
		return au, nil
	}
	return au, errPayload
}
