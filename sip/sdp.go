package sip

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// SDP offer/answer (RFC 3264) for one audio stream. mediagate answers with
// exactly one audio codec — the first of its preference list (sip.codecs)
// that the offer holds — plus telephone-event when offered (at the codec's
// clock rate if the offer has it there), so a call never switches codec
// mid-stream. Other streams (video, a second audio line) are refused with
// port 0 (§6). An RTP/SAVP(F) stream with a usable a=crypto attribute
// (SDES, RFC 4568) is answered in kind with our own key, as the trunk's
// SRTPPolicy allows.

// remoteMedia is what a peer's session description says about the audio
// stream mediagate uses.
type remoteMedia struct {
	codec Codec
	// tePT is the telephone-event payload type, or -1 when the peer has
	// none (RFC 4733 §7.1.1); teRate is its clock rate. It is the one at
	// the codec's clock rate when offered (§2.1), else another one: phones
	// that offer Opus with telephone-event/8000 alone (baresip 1.0, for
	// one) have no other way to key the IVR's digits, as in-band DTMF
	// does not survive Opus. The rate only scales event durations.
	tePT   int
	teRate int
	// rtp and rtcp are where to send; rtp has an unspecified address
	// (0.0.0.0) for an RFC 2543 hold.
	rtp, rtcp netip.AddrPort
	// dir is the peer's direction attribute (RFC 3264 §5.1).
	dir sdp.Direction
	// index is the position of the audio stream among the m= lines.
	index int
	// crypto is the peer's SDES key for an SRTP stream, nil for plain RTP.
	crypto *cryptoAttr
}

// canSend reports whether the peer wants our audio: it is not sendonly,
// inactive or an old-style hold with address 0.0.0.0 (RFC 3264 §8.4).
func (m remoteMedia) canSend() bool {
	return (m.dir == sdp.DirectionSendRecv || m.dir == sdp.DirectionRecvOnly) && !m.rtp.Addr().IsUnspecified()
}

// expectsMedia reports whether the peer sends audio, so that silence means
// a dead peer (the media timeout applies).
func (m remoteMedia) expectsMedia() bool {
	return (m.dir == sdp.DirectionSendRecv || m.dir == sdp.DirectionSendOnly) && !m.rtp.Addr().IsUnspecified()
}

// localMedia is our side of the stream: the address and port in c= and m=,
// and the o= line's session id and version (RFC 4566 §5.2: the version
// grows with every change of the description).
type localMedia struct {
	addr    netip.Addr
	port    int
	sessID  uint64
	version uint64
	// crypto is our SDES key for an SRTP call (the tag and suite of the
	// current exchange), nil for plain RTP.
	crypto *cryptoAttr
}

// parseSDP parses a session description; errors wrap ErrBadSDP.
func parseSDP(body []byte) (*sdp.SessionDescription, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadSDP)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	return &sd, nil
}

// negotiate picks the audio stream and codec of an offer (RFC 3264 §6.1):
// the first acceptable audio m= line, the first codec of prefs it lists.
// A plain stream is acceptable unless policy is SRTPRequired, an SRTP
// stream with a usable a=crypto unless it is SRTPOff. Without such a
// stream the error says why: ErrSRTPRequired, ErrNoCommonTransport,
// ErrCrypto or ErrNoCommonCodec.
func negotiate(offer *sdp.SessionDescription, prefs []string, policy SRTPPolicy) (remoteMedia, error) {
	var plain, secure bool
	var cryptoErr error
	for i, md := range offer.MediaDescriptions {
		sec, ok := audioTransport(md)
		if !ok {
			continue
		}
		plain, secure = plain || !sec, secure || sec
		if (sec && policy == SRTPOff) || (!sec && policy == SRTPRequired) {
			continue
		}
		var ca *cryptoAttr
		if sec {
			c, err := pickCrypto(md)
			if err != nil {
				cryptoErr = cmp.Or(cryptoErr, err)
				continue
			}
			ca = &c
		}
		for _, name := range prefs {
			for _, f := range md.MediaName.Formats {
				c, ok := formatCodec(md, f)
				if !ok || c.Name != name {
					continue
				}
				rm, err := describeRemote(offer, md, i, c)
				rm.crypto = ca
				return rm, err
			}
		}
	}
	switch {
	case policy == SRTPRequired && plain && !secure:
		return remoteMedia{}, ErrSRTPRequired
	case policy == SRTPOff && secure && !plain:
		return remoteMedia{}, ErrNoCommonTransport
	case cryptoErr != nil:
		return remoteMedia{}, cryptoErr
	}
	return remoteMedia{}, ErrNoCommonCodec
}

// readAnswer takes the answer to our offer (RFC 3264 §7): the audio stream's
// first format that is a codec of ours. want, when set, is the codec the
// call already carries; an answer without it is refused, since the codec
// does not change during a call. ours is the a=crypto of our offer: the
// answer's stream must then be SRTP with the same tag and suite (RFC 4568
// §7.1.2), else plain RTP.
func readAnswer(answer *sdp.SessionDescription, prefs []string, want string, ours *cryptoAttr) (remoteMedia, error) {
	for i, md := range answer.MediaDescriptions {
		sec, ok := audioTransport(md)
		if !ok || sec != (ours != nil) {
			continue
		}
		for _, f := range md.MediaName.Formats {
			c, ok := formatCodec(md, f)
			if !ok || !slices.Contains(prefs, c.Name) || (want != "" && c.Name != want) {
				continue
			}
			rm, err := describeRemote(answer, md, i, c)
			if err != nil || ours == nil {
				return rm, err
			}
			ca, err := findCrypto(md, *ours)
			if err != nil {
				return remoteMedia{}, err
			}
			rm.crypto = &ca
			return rm, nil
		}
	}
	return remoteMedia{}, ErrNoCommonCodec
}

// audioTransport reports whether an m= line is audio that is not refused
// (port 0) over RTP/AVP(F) or, secure, RTP/SAVP(F).
func audioTransport(md *sdp.MediaDescription) (secure, ok bool) {
	if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
		return false, false
	}
	switch strings.Join(md.MediaName.Protos, "/") {
	case "RTP/AVP", "RTP/AVPF":
		return false, true
	case "RTP/SAVP", "RTP/SAVPF":
		return true, true
	}
	return false, false
}

// formatCodec maps one format of an m= line to a known codec: by rtpmap
// when present (dynamic types, RFC 4566 §6), else by static type (RFC 3551
// §6).
func formatCodec(md *sdp.MediaDescription, format string) (Codec, bool) {
	pt, err := strconv.ParseUint(format, 10, 7)
	if err != nil {
		return Codec{}, false
	}
	name, rate, ch, ok := rtpmap(md, format)
	if !ok {
		for _, c := range known {
			if c.PayloadType == uint8(pt) && pt < 96 {
				return c, true
			}
		}
		return Codec{}, false
	}
	c, found := lookupCodec(name)
	if !found || rate != c.ClockRate || (c.Name == CodecOpus && ch != 2) {
		return Codec{}, false
	}
	c.PayloadType = uint8(pt)
	if c.Name == CodecOpus {
		c.FEC = fmtpParam(md, format, "useinbandfec") == "1"
	}
	return c, true
}

// describeRemote fills remoteMedia for the chosen stream and codec.
func describeRemote(sd *sdp.SessionDescription, md *sdp.MediaDescription, index int, c Codec) (remoteMedia, error) {
	rm := remoteMedia{codec: c, tePT: -1, index: index, dir: direction(sd, md)}
	for _, f := range md.MediaName.Formats {
		name, rate, _, ok := rtpmap(md, f)
		if !ok || !strings.EqualFold(name, "telephone-event") || (rm.tePT >= 0 && rate != c.ClockRate) {
			continue
		}
		rm.tePT, _ = strconv.Atoi(f)
		rm.teRate = rate
		if rate == c.ClockRate {
			break
		}
	}
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return remoteMedia{}, fmt.Errorf("%w: no connection address", ErrBadSDP)
	}
	ip, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		return remoteMedia{}, fmt.Errorf("%w: connection address is not an ip address", ErrBadSDP)
	}
	port := md.MediaName.Port.Value
	if port <= 0 || port > 65535 {
		return remoteMedia{}, fmt.Errorf("%w: port %d", ErrBadSDP, port)
	}
	rm.rtp = netip.AddrPortFrom(ip, uint16(port))
	// RFC 3605: a=rtcp:port [IN IP4 addr]; otherwise RTP port + 1
	// (RFC 3550 §11).
	rm.rtcp = netip.AddrPortFrom(ip, uint16(min(port+1, 65535)))
	if v, ok := md.Attribute("rtcp"); ok {
		f := strings.Fields(v)
		if len(f) == 0 {
			return rm, nil
		}
		if p, err := strconv.ParseUint(f[0], 10, 16); err == nil && p > 0 {
			rip := ip
			if len(f) == 4 {
				if a, err := netip.ParseAddr(f[3]); err == nil {
					rip = a
				}
			}
			rm.rtcp = netip.AddrPortFrom(rip, uint16(p))
		}
	}
	return rm, nil
}

// direction returns the stream's direction attribute, else the session's,
// else sendrecv (RFC 4566 §6, RFC 3264 §5.1).
func direction(sd *sdp.SessionDescription, md *sdp.MediaDescription) sdp.Direction {
	for _, attrs := range [][]sdp.Attribute{md.Attributes, sd.Attributes} {
		for _, a := range attrs {
			if d, err := sdp.NewDirection(a.Key); err == nil {
				return d
			}
		}
	}
	return sdp.DirectionSendRecv
}

// rtpmap returns the encoding name, clock rate and channels of a format's
// a=rtpmap attribute (RFC 4566 §6).
func rtpmap(md *sdp.MediaDescription, format string) (name string, rate, channels int, ok bool) {
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, found := strings.Cut(a.Value, " ")
		if !found || pt != format {
			continue
		}
		parts := strings.Split(strings.TrimSpace(enc), "/")
		if len(parts) < 2 {
			return "", 0, 0, false
		}
		rate, err := strconv.Atoi(parts[1])
		if err != nil {
			return "", 0, 0, false
		}
		channels = 1
		if len(parts) > 2 {
			if channels, err = strconv.Atoi(parts[2]); err != nil {
				return "", 0, 0, false
			}
		}
		return parts[0], rate, channels, true
	}
	return "", 0, 0, false
}

// fmtpParam returns one parameter of a format's a=fmtp attribute.
func fmtpParam(md *sdp.MediaDescription, format, key string) string {
	for _, a := range md.Attributes {
		pt, params, found := strings.Cut(a.Value, " ")
		if a.Key != "fmtp" || !found || pt != format {
			continue
		}
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, key) {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

// answerDirection is our direction in an answer to an offer with dir
// (RFC 3264 §6.1); an RFC 2543 hold (0.0.0.0) is answered as sendonly.
func answerDirection(rm remoteMedia) sdp.Direction {
	if rm.rtp.Addr().IsUnspecified() {
		return sdp.DirectionRecvOnly
	}
	switch rm.dir {
	case sdp.DirectionSendOnly:
		return sdp.DirectionRecvOnly
	case sdp.DirectionRecvOnly:
		return sdp.DirectionSendOnly
	case sdp.DirectionInactive:
		return sdp.DirectionInactive
	}
	return sdp.DirectionSendRecv
}

// buildAnswer writes our answer to offer: the chosen codec (with the
// offer's payload type, §6.1) and telephone-event on the audio stream,
// every other stream refused with port 0.
func buildAnswer(local localMedia, offer *sdp.SessionDescription, rm remoteMedia) ([]byte, error) {
	sd := newSession(local)
	for i, md := range offer.MediaDescriptions {
		if i != rm.index {
			sd.MediaDescriptions = append(sd.MediaDescriptions, &sdp.MediaDescription{
				MediaName: sdp.MediaName{Media: md.MediaName.Media, Port: sdp.RangedPort{Value: 0},
					Protos: md.MediaName.Protos, Formats: md.MediaName.Formats},
			})
			continue
		}
		var te []teFormat
		if rm.tePT >= 0 {
			te = append(te, teFormat{rm.tePT, rm.teRate})
		}
		if (rm.crypto != nil) != (local.crypto != nil) {
			return nil, errors.New("sip: srtp answer and our key disagree")
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions,
			audioStream(local, md.MediaName.Protos, []Codec{rm.codec}, te, answerDirection(rm)))
	}
	return sd.Marshal()
}

// buildOffer writes an offer of every codec in prefs (our payload types)
// with telephone-event at 8 and 48 kHz as needed, for an INVITE without
// an offer (RFC 3261 §13.2.1) or a re-INVITE without one (where prefs
// holds only the call's codec).
func buildOffer(local localMedia, prefs []string, dir sdp.Direction) ([]byte, error) {
	var codecs []Codec
	var te []teFormat
	for _, name := range prefs {
		c, _ := lookupCodec(name)
		codecs = append(codecs, c)
		f := teFormat{tePT8k, 8000}
		if c.ClockRate == 48000 {
			f = teFormat{tePT48k, 48000}
		}
		if !slices.Contains(te, f) {
			te = append(te, f)
		}
	}
	sd := newSession(local)
	protos := []string{"RTP", "AVP"}
	if local.crypto != nil {
		protos[1] = "SAVP"
	}
	sd.MediaDescriptions = []*sdp.MediaDescription{audioStream(local, protos, codecs, te, dir)}
	return sd.Marshal()
}

// newSession returns the session-level part of our descriptions.
func newSession(local localMedia) *sdp.SessionDescription {
	at := "IP4"
	if local.addr.Is6() && !local.addr.Is4In6() {
		at = "IP6"
	}
	addr := local.addr.Unmap().String()
	return &sdp.SessionDescription{
		Origin: sdp.Origin{Username: "mediagate", SessionID: local.sessID, SessionVersion: local.version,
			NetworkType: "IN", AddressType: at, UnicastAddress: addr},
		SessionName: "mediagate",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: at,
			Address: &sdp.Address{Address: addr}},
		TimeDescriptions: []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
}

// audioStream writes our m=audio line with rtpmap/fmtp for each codec and
// telephone-event payload type, ptime 20 (RFC 4566 §6) and the direction.
func audioStream(local localMedia, protos []string, codecs []Codec, te []teFormat, dir sdp.Direction) *sdp.MediaDescription {
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: "audio",
		Port: sdp.RangedPort{Value: local.port}, Protos: protos}}
	for _, c := range codecs {
		pt := strconv.Itoa(int(c.PayloadType))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", rtpmapValue(pt, c.Name, c.ClockRate, c.Channels)))
		if c.Name == CodecOpus {
			// RFC 7587 §6.1: we decode FEC, so ask the peer to send it.
			md.Attributes = append(md.Attributes, sdp.NewAttribute("fmtp", pt+" minptime=10;useinbandfec=1"))
		}
	}
	for _, t := range te {
		pt := strconv.Itoa(t.pt)
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes,
			sdp.NewAttribute("rtpmap", rtpmapValue(pt, "telephone-event", t.rate, 1)),
			sdp.NewAttribute("fmtp", pt+" 0-16")) // RFC 4733 §2.4.1
	}
	md.Attributes = append(md.Attributes, sdp.NewAttribute("ptime", "20"), sdp.NewPropertyAttribute(dir.String()))
	if local.crypto != nil {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto", local.crypto.value()))
	}
	return md
}

func rtpmapValue(pt, name string, rate, channels int) string {
	v := pt + " " + name + "/" + strconv.Itoa(rate)
	if channels > 1 {
		v += "/" + strconv.Itoa(channels)
	}
	return v
}

// teFormat is a telephone-event payload type and its clock rate.
type teFormat struct{ pt, rate int }
