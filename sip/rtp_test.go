package sip

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testPorts returns an allocator over pairs random ports on loopback.
func testPorts(t testing.TB, pairs int) *portAllocator {
	t.Helper()
	base := 40000 + 2*rand.IntN(8000)
	a, err := newPortAllocator(loopback, base, base+2*pairs-1)
	require.NoError(t, err)
	return a
}

func TestPortAllocator(t *testing.T) {
	a := testPorts(t, 3)
	// Another program holds the second pair's RTCP port: it is skipped.
	busy, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(a.min+3))))
	require.NoError(t, err)
	defer busy.Close()

	var ports []int
	var conns []io.Closer
	for range 2 {
		rtpc, rtcpc, p, err := a.allocate()
		require.NoError(t, err)
		require.Zero(t, p%2, "rtp on an even port (RFC 3550 §11)")
		require.Equal(t, p+1, rtcpc.LocalAddr().(*net.UDPAddr).Port, "rtcp on the next")
		local, err := rtpc.LocalAddr()
		require.NoError(t, err)
		require.Equal(t, p, int(local.Port()))
		ports = append(ports, p)
		conns = append(conns, rtpc, rtcpc)
	}
	require.Equal(t, []int{a.min, a.min + 4}, ports)
	_, _, _, err = a.allocate()
	require.ErrorIs(t, err, ErrNoPorts)

	for _, c := range conns[:2] {
		require.NoError(t, c.Close())
	}
	a.release(ports[0])
	_, rtcpc, p, err := a.allocate()
	require.NoError(t, err)
	require.Equal(t, a.min, p, "a released pair is used again")
	conns = append(conns, rtcpc)
	for _, c := range conns[2:] {
		_ = c.Close()
	}

	_, err = newPortAllocator(loopback, 10001, 10001)
	require.ErrorIs(t, err, ErrConfig)
}

// testSession is an RTP session talking to a loopback peer socket.
type testSession struct {
	s    *rtpSession
	peer *net.UDPConn
	wg   sync.WaitGroup
	dtmf []DTMF
	mu   sync.Mutex
}

func newTestSession(t testing.TB, codec string, tePT int) *testSession {
	t.Helper()
	ts := &testSession{}
	peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	require.NoError(t, err)
	ts.peer = peer
	s, err := newRTPSession(slog.New(slog.DiscardHandler), testPorts(t, 1), nil, &ts.wg, func(d DTMF) {
		ts.mu.Lock()
		ts.dtmf = append(ts.dtmf, d)
		ts.mu.Unlock()
	})
	require.NoError(t, err)
	ts.s = s
	c, _ := lookupCodec(codec)
	pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	require.NoError(t, s.configure(remoteMedia{codec: c, tePT: tePT, rtp: pa,
		rtcp: netip.AddrPortFrom(loopback, pa.Port()+1), dir: 1}))
	t.Cleanup(func() {
		s.close()
		ts.wg.Wait()
		_ = peer.Close()
	})
	return ts
}

// readPacket reads one RTP packet at the peer.
func (ts *testSession) readPacket(t *testing.T) rtp.Packet {
	t.Helper()
	buf := make([]byte, 1500)
	require.NoError(t, ts.peer.SetReadDeadline(time.Now().Add(2*time.Second)))
	n, err := ts.peer.Read(buf)
	require.NoError(t, err)
	var p rtp.Packet
	require.NoError(t, p.Unmarshal(buf[:n]))
	return p
}

// TestWriteAudio: each frame becomes one packet with consecutive sequence
// numbers; the timestamp follows the frame numbers, and the first packet
// and the one after a gap carry the marker (RFC 3550 §5.1, RFC 3551 §4.1).
func TestWriteAudio(t *testing.T) {
	ts := newTestSession(t, CodecPCMA, 101)
	payload := make([]byte, 160)
	var got []rtp.Packet
	for _, frame := range []uint64{7, 8, 9, 12} {
		payload[0] = byte(frame)
		require.True(t, ts.s.writeAudio(payload, frame))
		got = append(got, ts.readPacket(t))
	}
	require.False(t, ts.s.writeAudio(make([]byte, maxRTP), 13), "oversized payload")
	for i, p := range got {
		require.EqualValues(t, 8, p.PayloadType)
		require.Equal(t, got[0].SSRC, p.SSRC)
		require.Equal(t, got[0].SequenceNumber+uint16(i), p.SequenceNumber)
		require.Len(t, p.Payload, 160)
	}
	require.Equal(t, []bool{true, false, false, true}, []bool{got[0].Marker, got[1].Marker, got[2].Marker, got[3].Marker})
	require.Equal(t, got[0].Timestamp+160, got[1].Timestamp)
	require.Equal(t, got[0].Timestamp+5*160, got[3].Timestamp, "skipped frames keep the timeline")
	require.Equal(t, byte(12), got[3].Payload[0])

	// On hold nothing is sent, and the timeline goes on.
	ts.s.sending.Store(false)
	require.True(t, ts.s.writeAudio(payload, 13))
	ts.s.sending.Store(true)
	require.True(t, ts.s.writeAudio(payload, 14))
	p := ts.readPacket(t)
	require.Equal(t, got[0].Timestamp+7*160, p.Timestamp)
	require.Equal(t, got[3].SequenceNumber+1, p.SequenceNumber, "no sequence number was used while held")
}

// rtpBytes marshals an RTP packet.
func rtpBytes(pt uint8, seq uint16, ts uint32, marker bool, payload []byte) []byte {
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts,
		SSRC: 99, Marker: marker}, Payload: payload}).Marshal()
	return b
}

// TestHandleRTP: audio goes to the jitter buffer and plays out, events
// become DTMF once per press, and packets of other types, other sources
// or broken framing are dropped and counted.
func TestHandleRTP(t *testing.T) {
	ts := newTestSession(t, CodecPCMU, 101)
	s := ts.s
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	var pkt rtp.Packet
	now := time.Now()
	enc := media.NewPCMUEncoder()
	tone := mediatest.Tone{Freq: 700, Amp: 0.3, Rate: 8000}
	pcm := make([]int16, 160)
	payload := make([]byte, 160)
	for i := range 20 {
		tone.Fill(pcm)
		n, err := enc.Encode(pcm, payload)
		require.NoError(t, err)
		s.handleRTP(rtpBytes(0, uint16(i), uint32(i*160), i == 0, payload[:n]), src, &pkt, now.Add(time.Duration(i)*20*time.Millisecond))
	}
	ev := media.TelephoneEvent{Event: 9, Duration: 160}.Marshal()
	end := media.TelephoneEvent{Event: 9, End: true, Duration: 800}.Marshal()
	for i, p := range [][]byte{ev[:], ev[:], end[:], end[:]} {
		s.handleRTP(rtpBytes(101, uint16(20+i), 3200, i == 0, p), src, &pkt, now)
	}
	s.handleRTP(rtpBytes(18, 30, 0, false, payload), src, &pkt, now)                                       // G.729: not negotiated
	s.handleRTP(rtpBytes(0, 31, 0, false, payload), netip.MustParseAddrPort("127.0.0.1:40002"), &pkt, now) // not the latched source
	rr, err := (&rtcp.ReceiverReport{SSRC: 99}).Marshal()
	require.NoError(t, err)
	s.handleRTP(rr, src, &pkt, now)                                        // RTCP muxed on the RTP port (RFC 5761): not counted as RTP
	s.handleRTP([]byte{0x80, 0}, src, &pkt, now)                           // truncated
	s.handleRTP(append([]byte{0x40}, make([]byte, 20)...), src, &pkt, now) // version 1

	st := s.snapshot()
	require.EqualValues(t, 24, st.Received)
	require.EqualValues(t, 1, st.UnknownPT)
	require.EqualValues(t, 1, st.Foreign)
	require.EqualValues(t, 2, st.Malformed)
	require.Equal(t, src, s.dest.Load().rtp, "latched")
	ts.mu.Lock()
	require.Equal(t, []DTMF{{Digit: media.Digit9, Source: DTMFRFC4733, At: now}}, ts.dtmf)
	ts.mu.Unlock()

	var heard []int16
	for range 20 {
		n, _ := s.readFrame(pcm)
		heard = append(heard, pcm[:n]...)
	}
	require.GreaterOrEqual(t, toneAbove(heard, 700, 8000), 20.0, "the tone plays out")
}

// TestInBandDTMF: a G.711 call without telephone-event has its keys found
// in the audio ReadFrame decodes.
func TestInBandDTMF(t *testing.T) {
	ts := newTestSession(t, CodecPCMA, -1)
	s := ts.s
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	var pkt rtp.Packet
	enc := media.NewPCMAEncoder()
	pcm := make([]int16, 160)
	payload := make([]byte, 160)
	start := time.Now()
	for i := range 25 {
		clear(pcm)
		if i >= 2 && i < 7 { // 100 ms of '4'
			media.DTMFTone(media.Digit4, 8000, pcm, (i-2)*160, 0.2)
		}
		n, _ := enc.Encode(pcm, payload)
		s.handleRTP(rtpBytes(8, uint16(i), uint32(i*160), i == 0, payload[:n]), src, &pkt, start.Add(time.Duration(i)*20*time.Millisecond))
	}
	for range 25 {
		s.readFrame(pcm)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	require.Len(t, ts.dtmf, 1)
	require.Equal(t, media.Digit4, ts.dtmf[0].Digit)
	require.Equal(t, DTMFInBand, ts.dtmf[0].Source)
}

// TestRTCPReports: after receiving packets with a gap the receiver report
// counts the loss; after sending, an SR with our counts goes out, with
// SDES, and a BYE at close.
func TestRTCPReports(t *testing.T) {
	var r rtcpState
	for _, seq := range []uint16{65530, 65531, 65533, 65534, 65535, 0, 1} {
		r.noteRTP(seq, 7)
	}
	rr, ok := r.report(0, time.Now())
	require.True(t, ok)
	require.EqualValues(t, 7, rr.SSRC)
	require.EqualValues(t, 1, rr.TotalLost)
	require.EqualValues(t, 0x10001, rr.LastSequenceNumber, "extended across the wrap")
	require.EqualValues(t, 256/8, rr.FractionLost)

	ts := newTestSession(t, CodecPCMU, -1)
	rtcpPeer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, ts.peer.LocalAddr().(*net.UDPAddr).AddrPort().Port()+1)))
	if err != nil {
		t.Skip("rtcp peer port taken")
	}
	defer rtcpPeer.Close()
	require.True(t, ts.s.writeAudio(make([]byte, 160), 0))
	ts.readPacket(t)
	require.Eventually(t, func() bool { return ts.s.snapshot().Sent == 1 }, time.Second, time.Millisecond)
	ts.s.sendRTCP(true)
	buf := make([]byte, 1500)
	require.NoError(t, rtcpPeer.SetReadDeadline(time.Now().Add(2*time.Second)))
	n, err := rtcpPeer.Read(buf)
	require.NoError(t, err)
	pkts, err := rtcp.Unmarshal(buf[:n])
	require.NoError(t, err)
	require.Len(t, pkts, 3)
	sr, ok := pkts[0].(*rtcp.SenderReport)
	require.True(t, ok)
	require.EqualValues(t, 1, sr.PacketCount)
	require.EqualValues(t, 160, sr.OctetCount)
	require.IsType(t, &rtcp.SourceDescription{}, pkts[1])
	require.IsType(t, &rtcp.Goodbye{}, pkts[2])
}

// BenchmarkReceive is the receive path of one packet plus its playout:
// parse, latch check, jitter buffer, decode. It must not allocate.
func BenchmarkReceive(b *testing.B) {
	ts := newTestSession(b, CodecPCMA, 101)
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	var pkt rtp.Packet
	buf := rtpBytes(8, 0, 0, false, make([]byte, 160))
	pcm := make([]int16, 160)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		seq, stamp := uint16(i), uint32(i*160)
		buf[2], buf[3] = byte(seq>>8), byte(seq)
		buf[4], buf[5], buf[6], buf[7] = byte(stamp>>24), byte(stamp>>16), byte(stamp>>8), byte(stamp)
		ts.s.handleRTP(buf, src, &pkt, now.Add(time.Duration(i)*media.FrameDuration))
		ts.s.readFrame(pcm)
	}
}

// BenchmarkWriteAudio is the mixer's side of the send path: one frame
// built and written to the socket (a non-blocking sendto on loopback). It
// may not allocate.
func BenchmarkWriteAudio(b *testing.B) {
	ts := newTestSession(b, CodecPCMA, 101)
	payload := make([]byte, 160)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ts.s.writeAudio(payload, uint64(i))
	}
}
