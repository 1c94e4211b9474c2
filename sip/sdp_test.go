package sip

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/stretchr/testify/require"
)

// offer builds an SDP offer from m= and attribute lines.
func offer(lines ...string) []byte {
	return []byte("v=0\r\no=peer 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n" +
		strings.Join(lines, "\r\n") + "\r\n")
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name    string
		sdp     []byte
		prefs   []string
		codec   string
		pt      uint8
		tePT    int
		rtp     string
		rtcp    string
		dir     sdp.Direction
		fec     bool
		wantErr error
	}{
		{name: "static types, preference decides", sdp: offer("m=audio 4000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000"),
			prefs: DefaultCodecs, codec: CodecPCMA, pt: 8, tePT: 101, rtp: "192.0.2.10:4000", rtcp: "192.0.2.10:4001", dir: sdp.DirectionSendRecv},
		{name: "our order, not the offer's", sdp: offer("m=audio 4000 RTP/AVP 0 8 9"),
			prefs: []string{CodecPCMU, CodecPCMA}, codec: CodecPCMU, pt: 0, tePT: -1, rtp: "192.0.2.10:4000", rtcp: "192.0.2.10:4001", dir: sdp.DirectionSendRecv},
		{name: "G.722 keeps an 8 kHz clock", sdp: offer("m=audio 4000 RTP/AVP 9 101", "a=rtpmap:9 G722/8000", "a=rtpmap:101 telephone-event/8000"),
			prefs: DefaultCodecs, codec: CodecG722, pt: 9, tePT: 101, rtp: "192.0.2.10:4000", rtcp: "192.0.2.10:4001", dir: sdp.DirectionSendRecv},
		{name: "opus with fec and 48 kHz events", sdp: offer("m=audio 4000 RTP/AVP 111 101 110",
			"a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
			"a=rtpmap:101 telephone-event/8000", "a=rtpmap:110 telephone-event/48000"),
			prefs: []string{CodecOpus}, codec: CodecOpus, pt: 111, tePT: 110, fec: true, rtp: "192.0.2.10:4000", rtcp: "192.0.2.10:4001", dir: sdp.DirectionSendRecv},
		{name: "dynamic type renamed", sdp: offer("m=audio 4000 RTP/AVP 98", "a=rtpmap:98 PCMA/8000"),
			prefs: DefaultCodecs, codec: CodecPCMA, pt: 98, tePT: -1, rtp: "192.0.2.10:4000", rtcp: "192.0.2.10:4001", dir: sdp.DirectionSendRecv},
		{name: "media-level address, rtcp attribute, sendonly", sdp: offer("m=audio 4000 RTP/AVP 0", "c=IN IP4 198.51.100.7", "a=rtcp:5001", "a=sendonly"),
			prefs: DefaultCodecs, codec: CodecPCMU, pt: 0, tePT: -1, rtp: "198.51.100.7:4000", rtcp: "198.51.100.7:5001", dir: sdp.DirectionSendOnly},
		{name: "video first, audio second", sdp: offer("m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000", "m=audio 4000 RTP/AVP 8"),
			prefs: DefaultCodecs, codec: CodecPCMA, pt: 8, tePT: -1, rtp: "192.0.2.10:4000", rtcp: "192.0.2.10:4001", dir: sdp.DirectionSendRecv},
		{name: "only G.729", sdp: offer("m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000"), prefs: DefaultCodecs, wantErr: ErrNoCommonCodec},
		{name: "srtp without a=crypto", sdp: offer("m=audio 4000 RTP/SAVP 8"), prefs: DefaultCodecs, wantErr: ErrCrypto},
		{name: "refused stream", sdp: offer("m=audio 0 RTP/AVP 8"), prefs: DefaultCodecs, wantErr: ErrNoCommonCodec},
		{name: "opus must be signalled stereo", sdp: offer("m=audio 4000 RTP/AVP 111", "a=rtpmap:111 opus/48000"), prefs: DefaultCodecs, wantErr: ErrNoCommonCodec},
		{name: "not preferred at all", sdp: offer("m=audio 4000 RTP/AVP 0"), prefs: []string{CodecPCMA}, wantErr: ErrNoCommonCodec},
		{name: "host name instead of address", sdp: []byte("v=0\r\no=p 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 pbx.example.com\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"),
			prefs: DefaultCodecs, wantErr: ErrBadSDP},
		{name: "no connection line", sdp: []byte("v=0\r\no=p 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"),
			prefs: DefaultCodecs, wantErr: ErrBadSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd, err := parseSDP(tt.sdp)
			require.NoError(t, err)
			rm, err := negotiate(sd, tt.prefs, SRTPOptional)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.codec, rm.codec.Name)
			require.Equal(t, tt.pt, rm.codec.PayloadType)
			require.Equal(t, tt.tePT, rm.tePT)
			require.Equal(t, tt.fec, rm.codec.FEC)
			require.Equal(t, netip.MustParseAddrPort(tt.rtp), rm.rtp)
			require.Equal(t, netip.MustParseAddrPort(tt.rtcp), rm.rtcp)
			require.Equal(t, tt.dir, rm.dir)
		})
	}
}

func TestParseSDPRejectsGarbage(t *testing.T) {
	for _, b := range []string{"", "hello", "v=0\r\nm=audio x RTP/AVP 0\r\n"} {
		_, err := parseSDP([]byte(b))
		require.ErrorIs(t, err, ErrBadSDP, "%q", b)
	}
}

// TestBuildAnswer checks the answer line by line: one codec with the
// offer's payload type, telephone-event, ptime 20, the answering direction
// (RFC 3264 §6.1) and refused streams with port 0 in the offer's order.
func TestBuildAnswer(t *testing.T) {
	local := localMedia{addr: netip.MustParseAddr("203.0.113.5"), port: 30000, sessID: 42, version: 3}
	tests := []struct {
		name  string
		offer []byte
		want  []string
	}{
		{"pcma with events", offer("m=audio 4000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000"), []string{
			"o=mediagate 42 3 IN IP4 203.0.113.5", "c=IN IP4 203.0.113.5", "m=audio 30000 RTP/AVP 8 101",
			"a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv"}},
		{"hold", offer("m=audio 4000 RTP/AVP 8", "a=sendonly"), []string{"m=audio 30000 RTP/AVP 8", "a=recvonly"}},
		{"inactive", offer("m=audio 4000 RTP/AVP 8", "a=inactive"), []string{"a=inactive"}},
		{"session-level recvonly", []byte("v=0\r\no=p 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=recvonly\r\nm=audio 4000 RTP/AVP 8\r\n"),
			[]string{"a=sendonly"}},
		{"rfc 2543 hold", []byte("v=0\r\no=p 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n"),
			[]string{"a=recvonly"}},
		{"video refused", offer("m=audio 4000 RTP/AVP 8", "m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000"),
			[]string{"m=audio 30000 RTP/AVP 8", "m=video 0 RTP/AVP 96"}},
		{"opus", offer("m=audio 4000 RTP/AVP 111", "a=rtpmap:111 opus/48000/2"),
			[]string{"m=audio 30000 RTP/AVP 111", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd, err := parseSDP(tt.offer)
			require.NoError(t, err)
			rm, err := negotiate(sd, DefaultCodecs, SRTPOptional)
			require.NoError(t, err)
			b, err := buildAnswer(local, sd, rm)
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSpace(string(b)), "\r\n")
			for _, w := range tt.want {
				require.Contains(t, lines, w, "answer:\n%s", b)
			}
			_, err = parseSDP(b)
			require.NoError(t, err, "the answer parses")
		})
	}
}

// TestOfferAnswerRoundTrip: our offer (offerless INVITE) lists every
// preferred codec with events at both clock rates; an answer picking one
// is read back, and an answer picking a codec we did not offer is refused.
func TestOfferAnswerRoundTrip(t *testing.T) {
	local := localMedia{addr: netip.MustParseAddr("203.0.113.5"), port: 30000, sessID: 1, version: 1}
	b, err := buildOffer(local, DefaultCodecs, sdp.DirectionSendRecv)
	require.NoError(t, err)
	s := string(b)
	require.Contains(t, s, "m=audio 30000 RTP/AVP 9 8 0 111 101 110\r\n")
	require.Contains(t, s, "a=rtpmap:110 telephone-event/48000\r\n")
	require.Contains(t, s, "a=rtpmap:101 telephone-event/8000\r\n")

	tests := []struct {
		name    string
		answer  []byte
		want    string
		wantErr error
	}{
		{"first listed wins", offer("m=audio 4000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000"), CodecPCMU, nil},
		{"opus", offer("m=audio 4000 RTP/AVP 111", "a=rtpmap:111 opus/48000/2"), CodecOpus, nil},
		{"not offered", offer("m=audio 4000 RTP/AVP 18"), "", ErrNoCommonCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd, err := parseSDP(tt.answer)
			require.NoError(t, err)
			rm, err := readAnswer(sd, DefaultCodecs, "", nil)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, rm.codec.Name)
		})
	}
	// A re-INVITE answer must keep the call's codec.
	sd, err := parseSDP(offer("m=audio 4000 RTP/AVP 0"))
	require.NoError(t, err)
	_, err = readAnswer(sd, DefaultCodecs, CodecPCMA, nil)
	require.ErrorIs(t, err, ErrNoCommonCodec)
}

func TestParseCodecs(t *testing.T) {
	got, err := ParseCodecs([]string{"pcma", "OPUS", " g722 "})
	require.NoError(t, err)
	require.Equal(t, []string{CodecPCMA, CodecOpus, CodecG722}, got)
	for _, bad := range [][]string{nil, {"G729"}, {"PCMA", "pcma"}} {
		_, err := ParseCodecs(bad)
		require.ErrorIs(t, err, ErrUnknownCodec, "%q", bad)
	}
}

// FuzzNegotiate feeds session descriptions from the network to the parser
// and the offer/answer code: nothing may panic, and an accepted offer must
// yield an answer that parses.
func FuzzNegotiate(f *testing.F) {
	f.Add(offer("m=audio 4000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000"))
	f.Add(offer("m=audio 4000 RTP/AVP 111", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 useinbandfec=1", "a=rtcp:4001 IN IP4 192.0.2.9"))
	f.Add(offer("m=video 5000 RTP/AVP 96", "m=audio 4000 RTP/AVPF 9", "a=inactive"))
	f.Add([]byte("v=0\r\no=p 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 65535 RTP/AVP 8\r\na=rtcp:\r\n"))
	local := localMedia{addr: netip.MustParseAddr("203.0.113.5"), port: 30000, sessID: 1, version: 1}
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := parseSDP(b)
		if err != nil {
			return
		}
		rm, err := negotiate(sd, DefaultCodecs, SRTPOptional)
		if err != nil {
			return
		}
		ans, err := buildAnswer(local, sd, rm)
		if err != nil {
			return
		}
		if _, err := parseSDP(ans); err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, ans)
		}
	})
}
