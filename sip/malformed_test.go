package sip

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media/mediatest"
)

// rtpHdr is a 12-octet RTP header with first octet b0 and payload type 0.
func rtpHdr(b0 byte, tail ...byte) []byte {
	return append([]byte{b0, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0x12, 0x34}, tail...)
}

// malformedKinds are one packet of each kind of breakage, where it goes
// (the RTP port, or the RTCP port when rtcpPort is set) and the reason it
// must be counted under.
var malformedKinds = []struct {
	name     string
	b        []byte
	rtcpPort bool
	reason   DropReason
}{
	{"short", []byte{0x80, 0, 0, 1, 0, 0}, false, DropRTPShort},
	{"v1", rtpHdr(0x40, make([]byte, 160)...), false, DropRTPVersion},
	{"v0", rtpHdr(0x00, make([]byte, 160)...), false, DropRTPVersion},
	{"csrc overflow", rtpHdr(0x8f, make([]byte, 20)...), false, DropRTPCSRC},                        // 15 CSRCs, 5 present
	{"extension overflow", rtpHdr(0x90, 0xbe, 0xde, 0, 40, 0x10, 1, 0, 0), false, DropRTPExtension}, // says 160 octets, has 4
	{"padding lie", rtpHdr(0xa0, 1, 2, 3, 200), false, DropRTPPadding},                              // 200 padding octets in a 4-octet payload
	{"rtcp length lie muxed", []byte{0x80, 200, 0, 0xff, 0, 0, 0, 1}, false, DropRTCPLength},
	{"rtcp length lie", []byte{0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2}, true, DropRTCPLength},
	{"rtcp v1", []byte{0x40, 201, 0, 1, 0, 0, 0, 1}, true, DropRTCPVersion},
	{"rtcp bye alone", []byte{0x81, 203, 0, 1, 0, 0, 0, 1}, true, DropRTCPCompound},
	{"rtcp short", []byte{0x80, 201}, true, DropRTCPShort},
}

// classify is what the session must make of b: RTCP checks for the RTCP
// port and RTCP-typed packets on the RTP port (RFC 5761 §4), else RTP.
func classify(b []byte, rtcpPort bool) (DropReason, bool) {
	if rtcpPort || (len(b) >= 2 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223) {
		return checkRTCP(b)
	}
	return checkRTP(b)
}

// TestCheckPackets: each kind of breakage gets its reason; well-formed
// RTP (with CSRCs, an extension, padding) and compound RTCP pass.
func TestCheckPackets(t *testing.T) {
	for _, k := range malformedKinds {
		r, ok := classify(k.b, k.rtcpPort)
		require.False(t, ok, k.name)
		require.Equal(t, k.reason, r, k.name)
	}
	good, err := (&rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 4, CSRC: []uint32{1, 2},
		Extension: true, ExtensionProfile: 0x1000, Extensions: []rtp.Extension{}}, Payload: []byte{1, 2, 3}}).Marshal()
	require.NoError(t, err)
	_, ok := checkRTP(good)
	require.True(t, ok)
	compound, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}, &rtcp.Goodbye{Sources: []uint32{1}}})
	require.NoError(t, err)
	_, ok = checkRTCP(compound)
	require.True(t, ok)
	r, ok := checkRTCP(compound[:len(compound)-2])
	require.False(t, ok)
	require.Equal(t, DropRTCPLength, r, "truncated compound")
	bye := []byte{0x81, 203, 0, 1, 0, 0, 0, 1}
	r, _ = checkRTCP(append([]byte{0xa0, 201, 0, 1, 0, 0, 0, 4}, bye...))
	require.Equal(t, DropRTCPPadding, r, "padding on a part but the last")
	r, _ = checkRTCP(append(compound[:8:8], 0xa1, 203, 0, 1, 0, 0, 0, 9))
	require.Equal(t, DropRTCPPadding, r, "padding count beyond its part")
	require.Equal(t, "rtp_csrc", DropRTPCSRC.String())

	// An RFC 8285 element running past its extension passes the framing
	// check; pion refuses it, and handleRTP counts it as an extension drop.
	overrun := rtpHdr(0x90, 0xbe, 0xde, 0, 1, 0x1f, 1, 2, 3, 0, 0, 0, 0)
	_, ok = checkRTP(overrun)
	require.True(t, ok)
	ts := newTestSession(t, CodecPCMU, -1)
	var pkt rtp.Packet
	ts.s.handleRTP(overrun, netip.MustParseAddrPort("127.0.0.1:40000"), &pkt, time.Now())
	st := ts.s.snapshot()
	require.EqualValues(t, 1, st.MalformedBy[DropRTPExtension])
	require.EqualValues(t, 1, st.Malformed)
	require.False(t, ts.s.dest.Load().latched, "a malformed packet does not latch")
}

// FuzzCheckRTP: what checkRTP passes, pion parses (RFC 8285 elements
// aside, which handleRTP counts as an extension drop).
func FuzzCheckRTP(f *testing.F) {
	for _, k := range malformedKinds {
		f.Add(k.b)
	}
	f.Add(rtpBytes(0, 1, 160, true, make([]byte, 160)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, ok := checkRTP(b); !ok {
			return
		}
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil && b[0]&0x10 == 0 {
			t.Fatalf("checkRTP passed what pion refuses: %v", err)
		}
	})
}

// FuzzCheckRTCP: what checkRTCP passes has framing pion accepts.
func FuzzCheckRTCP(f *testing.F) {
	for _, k := range malformedKinds {
		f.Add(k.b)
	}
	b, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}, &rtcp.Goodbye{Sources: []uint32{1}}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, ok := checkRTCP(b); !ok {
			return
		}
		for off := 0; off < len(b); {
			var h rtcp.Header
			if err := h.Unmarshal(b[off:]); err != nil {
				t.Fatalf("part at %d: %v", off, err)
			}
			off += 4 * (int(h.Length) + 1)
			if off > len(b) {
				t.Fatalf("part overruns")
			}
		}
	})
}

// TestMalformedMedia: while the caller sends a 660 Hz tone, every kind of
// malformed packet and seeded random bytes arrive interleaved with it,
// from the caller's own address and from another socket. Each is dropped
// and counted under its reason, none counts as foreign, the latched
// address stays, and the tone plays out as before.
func TestMalformedMedia(t *testing.T) {
	h := newAnsweringHandler()
	u := startUA(t, h)
	sp := newSIPPeer(t)
	rp := newRTPPeer(t, CodecPCMU, 0)
	_, answer := sp.invite(t, u, "2000", peerOffer(1, rp.port(), CodecPCMU, "sendrecv"))
	to, _ := answerAddr(t, answer)
	c := h.call(t)
	rp.sendTone(to, 660)
	const rate = 8000
	eventually(t, 3*time.Second, func() bool { return c.Stats().Received >= 25 }, "the tone arrives")
	// The handler reads on its own ticker, which a loaded machine delays.
	eventually(t, 5*time.Second, func() bool { return h.heardLen() >= rate/2 }, "half a second of it is read")
	learned := c.media.dest.Load()
	require.True(t, learned.latched)
	require.Equal(t, netip.AddrPortFrom(loopback, uint16(rp.port())), learned.rtp)
	before := h.heardSince(h.heardLen() - rate/2)
	beforeDB, beforeAbove := mediatest.ToneDB(before, 660, rate), toneAbove(before, 660, rate)
	st0, sent0 := c.Stats(), rp.sent.Load()

	intruder, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	require.NoError(t, err)
	defer intruder.Close()
	rtcpTo := netip.AddrPortFrom(to.Addr(), to.Port()+1)
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	var want [NumDropReasons]uint64
	sent := 0
	mark := h.heardLen()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for round := range 10 {
		for _, src := range []*net.UDPConn{rp.conn, intruder} {
			random := make([]byte, 8+rng.IntN(200))
			for {
				for i := range random {
					random[i] = byte(rng.Uint32())
				}
				if _, ok := classify(random, false); !ok {
					break // random bytes that happen to be valid RTP would be audio
				}
			}
			for _, k := range append(malformedKinds[:len(malformedKinds):len(malformedKinds)],
				struct {
					name     string
					b        []byte
					rtcpPort bool
					reason   DropReason
				}{"random", random, false, 0}) {
				<-tick.C
				dst := to
				if k.rtcpPort {
					dst = rtcpTo
				}
				_, err := src.WriteToUDPAddrPort(k.b, dst)
				require.NoError(t, err, "round %d %s", round, k.name)
				r, _ := classify(k.b, k.rtcpPort)
				want[r]++
				sent++
			}
		}
	}
	eventually(t, 3*time.Second, func() bool { return c.Stats().Malformed-st0.Malformed == uint64(sent) },
		"every malformed packet is counted")
	tone := rp.sent.Load() - sent0
	eventually(t, 3*time.Second, func() bool { return c.Stats().Received-st0.Received >= uint64(tone) },
		"every tone packet sent meanwhile is accepted")
	st := c.Stats()
	for r := range NumDropReasons {
		require.Equal(t, want[r], st.MalformedBy[r]-st0.MalformedBy[r], DropReason(r).String())
	}
	require.Equal(t, st0.Foreign, st.Foreign, "garbage is malformed, not foreign")
	require.Equal(t, st0.UnknownPT, st.UnknownPT)
	after := c.media.dest.Load()
	require.Equal(t, learned.rtp, after.rtp, "the latched address stays")
	require.Equal(t, learned.rtcp, after.rtcp)

	during := h.heardSince(mark)
	during = during[:len(during)/400*400] // whole periods of 660 Hz at 8 kHz: Goertzel without leakage
	duringDB, duringAbove := mediatest.ToneDB(during, 660, rate), toneAbove(during, 660, rate)
	t.Logf("%d malformed packets among %d tone packets in %v: %v; tone 660 Hz before %.1f dB (%.1f dB above the rest, %.1f dBFS), "+
		"during %.1f dB (%.1f dB above, %.1f dBFS); jitter %+v",
		sent, tone, time.Duration(len(during))*time.Second/rate, st.MalformedBy, beforeDB, beforeAbove, mediatest.RMSDBFS(before),
		duringDB, duringAbove, mediatest.RMSDBFS(during), st.Jitter)
	require.GreaterOrEqual(t, duringAbove, 20.0, "the tone plays out during the garbage")
	// The level by RMS: Goertzel's reading moves by a dB or so with the
	// phase jumps of the jitter buffer's own delay steering; 2 dB leaves
	// room for a playout underrun on a loaded machine (a 20 ms gap in
	// 1.2 s is -0.07 dB, silence for half the window -3 dB).
	require.InDelta(t, mediatest.RMSDBFS(before), mediatest.RMSDBFS(during), 2.0, "at the same level")
	require.Zero(t, st.Jitter.DecodeErrors, "no garbage reached the decoder")
	require.NoError(t, c.Hangup(context.Background()))
}

// TestMalformedNotMedia: a caller that sends only malformed packets is hung
// up after sip.media_timeout like one that sends nothing.
func TestMalformedNotMedia(t *testing.T) {
	h := newAnsweringHandler()
	u := startUA(t, h, WithMediaTimeout(400*time.Millisecond))
	sp := newSIPPeer(t)
	rp := newRTPPeer(t, CodecPCMU, 0)
	_, answer := sp.invite(t, u, "2000", peerOffer(1, rp.port(), CodecPCMU, "sendrecv"))
	to, _ := answerAddr(t, answer)
	c := h.call(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-c.Done():
			require.True(t, errors.Is(c.Err(), ErrMediaTimeout), "ended by %v", c.Err())
			require.Positive(t, c.Stats().Malformed)
			require.Zero(t, c.Stats().Received)
			return
		case <-deadline:
			t.Fatal("a caller sending only garbage was not timed out")
		case <-tick.C:
			k := malformedKinds[i%len(malformedKinds)]
			dst := to
			if k.rtcpPort {
				dst = netip.AddrPortFrom(to.Addr(), to.Port()+1)
			}
			_, _ = rp.conn.WriteToUDPAddrPort(k.b, dst)
		}
	}
}
