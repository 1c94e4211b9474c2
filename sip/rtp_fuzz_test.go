package sip

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// rtpFuzzOffers are the negotiations FuzzRTPInput's first byte picks:
// G.711 with telephone-event, G.711 alone (in-band detection runs), Opus
// with telephone-event/8000 and G.722. A first byte with bit 7 set picks
// rtpFuzzSRTPOffer instead (so that the committed seeds keep their offer).
var rtpFuzzOffers = [][]byte{
	offer("m=audio 4000 RTP/AVP 8 101", "a=rtpmap:101 telephone-event/8000"),
	offer("m=audio 4000 RTP/AVP 0"),
	offer("m=audio 4000 RTP/AVP 111 101", "a=rtpmap:111 opus/48000/2", "a=rtpmap:101 telephone-event/8000"),
	offer("m=audio 4000 RTP/AVP 9 101", "a=rtpmap:101 telephone-event/8000", "a=rtcp:4005"),
}

// rtpFuzzSRTPOffer is G.711 with telephone-event over SRTP keyed with
// testKey both ways: the unprotect path comes before everything else.
var rtpFuzzSRTPOffer = offer("m=audio 4000 RTP/SAVP 0 101", "a=rtpmap:101 telephone-event/8000",
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+testKey)

// srtpSeed protects packets with testKey for FuzzRTPInput's SRTP seeds.
func srtpSeed(pkts ...[]byte) [][]byte {
	c, _ := parseCrypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey)
	ctx, _ := srtp.CreateContext(c.key[:16], c.key[16:], c.suite.profile())
	var out [][]byte
	for _, p := range pkts {
		b, _ := ctx.EncryptRTP(nil, p, nil)
		out = append(out, b)
	}
	return out
}

// rtpFuzzSources are where FuzzRTPInput's packets come from: the address
// the SDP names, another port of that host, and a third party.
var rtpFuzzSources = []netip.AddrPort{
	netip.MustParseAddrPort("192.0.2.10:4000"),
	netip.MustParseAddrPort("192.0.2.10:4002"),
	netip.MustParseAddrPort("198.51.100.7:4000"),
}

// rtpPacket is an RTP packet for the seeds.
func rtpPacket(pt uint8, seq uint16, ts uint32, marker bool, payload []byte) []byte {
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq,
		Timestamp: ts, SSRC: 0x1234, Marker: marker}, Payload: payload}).Marshal()
	return b
}

// rtpRecords frames packets as FuzzRTPInput reads them: a flags byte (bits
// 0–1 the source, bit 2 the RTCP port), a length byte, the packet.
func rtpRecords(offer byte, pkts ...[]byte) []byte {
	b := []byte{offer}
	for i, p := range pkts {
		b = append(b, byte(i%2), byte(len(p)))
		b = append(b, p...)
	}
	return b
}

// FuzzRTPInput feeds a configured RTP session (no sockets) what its RTP and
// RTCP ports could receive, from the peer and from others, and plays out a
// frame after every packet. Properties: nothing panics; each packet is
// counted at most once among received (or malformed), unknown payload type
// and foreign; every frame is 20 ms at the codec's rate; every digit
// reported is a DTMF key; the session stays latched to a source that sent.
func FuzzRTPInput(f *testing.F) {
	f.Add(rtpRecords(0, rtpPacket(8, 1, 160, true, make([]byte, 160)), rtpPacket(8, 2, 320, false, make([]byte, 160))))
	f.Add(rtpRecords(0, rtpPacket(101, 3, 480, true, []byte{5, 0x0a, 0, 160}), rtpPacket(101, 4, 480, false, []byte{5, 0x8a, 1, 64})))
	f.Add(rtpRecords(1, rtpPacket(0, 65535, 0, false, make([]byte, 160)), rtpPacket(0, 0, 160, false, make([]byte, 7))))
	f.Add(rtpRecords(2, rtpPacket(111, 9, 960, false, []byte{0xfc, 0xff, 0xfe}), rtpPacket(96, 10, 1920, false, nil)))
	// An RTCP receiver report multiplexed on the RTP port (RFC 5761), then
	// one claiming more than it holds.
	f.Add(rtpRecords(3, []byte{0x81, 201, 0, 7, 0, 0, 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		[]byte{0x80, 200, 0xff, 0xff, 0, 0, 0, 1}))
	f.Add([]byte{0, 0x02, 12, 0x80, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	// SRTP: audio and a telephone event, protected, the event again (a
	// replay), then the audio in plain (its index seen: a replay too).
	protected := srtpSeed(rtpPacket(0, 1, 160, true, make([]byte, 160)), rtpPacket(101, 2, 160, false, []byte{5, 0x8a, 1, 64}))
	f.Add(rtpRecords(0x80, protected[0], protected[1], protected[1], rtpPacket(0, 1, 160, true, make([]byte, 160))))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		o := rtpFuzzOffers[int(data[0])%len(rtpFuzzOffers)]
		if data[0]&0x80 != 0 {
			o = rtpFuzzSRTPOffer
		}
		sd, err := parseSDP(o)
		if err != nil {
			t.Fatal(err)
		}
		rm, err := negotiate(sd, DefaultCodecs, SRTPOptional)
		if err != nil {
			t.Fatal(err)
		}
		s := &rtpSession{log: slog.New(slog.DiscardHandler), closed: make(chan struct{}), dropLog: newLogLimiter(1, dropLogEvery),
			onDTMF: func(d DTMF) {
				if !d.Digit.Valid() {
					t.Fatalf("digit %v from %v", d.Digit, d.Source)
				}
			}}
		s.dest.Store(&peerAddrs{})
		if err := s.configure(rm); err != nil {
			t.Fatal(err)
		}
		if rm.crypto != nil {
			if err := s.srtp.set(rm.crypto, rm.crypto); err != nil {
				t.Fatal(err)
			}
		}
		senders := map[netip.AddrPort]bool{rm.rtp: true}
		pcm := make([]int16, 960)
		want := min(len(pcm), rm.codec.SampleRate/50)
		now := time.Unix(1e9, 0)
		var pkt rtp.Packet
		packets := uint64(0)
		for rest := data[1:]; len(rest) >= 2; {
			flags, n := rest[0], int(rest[1])
			rest = rest[2:]
			n = min(n, len(rest))
			b := append([]byte(nil), rest[:n]...) // unprotect works in place
			rest = rest[n:]
			from := rtpFuzzSources[int(flags&3)%len(rtpFuzzSources)]
			now = now.Add(20 * time.Millisecond)
			packets++
			if flags&4 != 0 {
				s.handleRTCP(b, from, now, flags&8 != 0)
			} else {
				s.handleRTP(b, from, &pkt, now)
				senders[from] = true
			}
			if got, _ := s.readFrame(pcm); got != want {
				t.Fatalf("frame of %d samples, want %d", got, want)
			}
		}
		st := s.snapshot()
		// A telephone event that fails to decode counts as received and as
		// malformed (handleRTP counts it received first; see
		// testdata/fuzz/FuzzRTPInput/te-received-and-malformed), so the
		// two are bounded apart.
		if st.Received+st.UnknownPT+st.Foreign > packets || st.Malformed+st.UnknownPT+st.Foreign > packets {
			t.Fatalf("%d packets counted more than once: %+v", packets, st)
		}
		if d := s.dest.Load(); d.latched && !senders[d.rtp] {
			t.Fatalf("latched to %v, which sent nothing on the rtp port", d.rtp)
		}
	})
}
