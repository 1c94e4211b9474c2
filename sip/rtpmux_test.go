package sip

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// muxPeer is one caller of the shared port: its RTP and RTCP sockets and
// the call's session.
type muxPeer struct {
	rtp, rtcp *net.UDPConn
	s         *rtpSession
	ssrc      uint32
	seq       uint16
}

func sockAddr(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// send sends n PCMU packets to the shared port from the peer's RTP socket.
func (p *muxPeer) send(t *testing.T, to netip.AddrPort, n int) {
	t.Helper()
	for range n {
		b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: p.seq,
			Timestamp: uint32(p.seq) * 160, SSRC: p.ssrc}, Payload: make([]byte, 160)}).Marshal()
		require.NoError(t, err)
		p.seq++
		_, err = p.rtp.WriteToUDPAddrPort(b, to)
		require.NoError(t, err)
	}
}

// TestSharedPort puts three calls on one port pair: each call gets the
// packets its peer sends and no other's, whoever drains; each peer gets
// the packets its call sends, from the shared port; RTCP finds its call
// by the source; a stranger's packets and, after its call ended, a
// peer's are dropped and counted; the pair stays taken until the mux
// closes.
func TestSharedPort(t *testing.T) {
	ports := testPorts(t, 4)
	log := slog.New(slog.DiscardHandler)
	mux, err := newRTPMux(log, ports)
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { wg.Wait(); mux.close(ports) })
	shared := netip.AddrPortFrom(loopback, uint16(mux.port))
	codec, _ := lookupCodec(CodecPCMU)

	peers := make([]*muxPeer, 3)
	for i := range peers {
		p := &muxPeer{rtp: listenLoopback(t), rtcp: listenLoopback(t), ssrc: 0x1000 + uint32(i), seq: 100}
		p.s, err = newRTPSession(log, ports, mux, &wg, func(DTMF) {})
		require.NoError(t, err)
		t.Cleanup(p.s.close)
		require.Equal(t, mux.port, p.s.port)
		require.NoError(t, p.s.configure(remoteMedia{codec: codec, tePT: -1, rtp: sockAddr(p.rtp),
			rtcp: sockAddr(p.rtcp), dir: 1}))
		peers[i] = p
	}
	require.Equal(t, 1, ports.inUse(), "the calls take no pair of their own")

	// Loopback delivers during sendto: the packets wait on the socket
	// when send returns, and one drain by any call takes them all.
	for i, p := range peers {
		p.send(t, shared, 3+i)
	}
	stranger := listenLoopback(t)
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 9}, Payload: make([]byte, 160)}).Marshal()
	_, err = stranger.WriteToUDPAddrPort(b, shared)
	require.NoError(t, err)
	peers[2].s.drain()
	for i, p := range peers {
		st := &p.s.stats
		require.EqualValues(t, 3+i, st.received.Load(), "call %d", i)
		require.Zero(t, st.foreign.Load()+st.malformed.Load()+st.unknownPT.Load(), "call %d", i)
		require.Equal(t, p.ssrc, p.s.seqSSRC, "call %d got another peer's stream", i)
		require.True(t, p.s.dest.Load().latched)
	}
	require.EqualValues(t, 1, mux.unmatched.Load())

	// Sending: each peer gets its own call's packets, from the shared port.
	for frame := range uint64(2) {
		for _, p := range peers {
			require.True(t, p.s.writeAudio(make([]byte, 160), frame))
		}
	}
	buf := make([]byte, 1500)
	for i, p := range peers {
		for range 2 {
			require.NoError(t, p.rtp.SetReadDeadline(time.Now().Add(5*time.Second)))
			n, from, err := p.rtp.ReadFromUDPAddrPort(buf)
			require.NoError(t, err)
			require.Equal(t, shared.Port(), from.Port())
			var pkt rtp.Packet
			require.NoError(t, pkt.Unmarshal(buf[:n]))
			require.Equal(t, p.s.ssrc, pkt.SSRC, "peer %d got another call's packet", i)
		}
	}

	// RTCP from each peer's RTCP socket reaches its call.
	for _, p := range peers {
		rr, _ := (&rtcp.ReceiverReport{SSRC: p.ssrc}).Marshal()
		_, err := p.rtcp.WriteToUDPAddrPort(rr, netip.AddrPortFrom(loopback, uint16(mux.port+1)))
		require.NoError(t, err)
	}
	for i, p := range peers {
		require.Eventually(t, func() bool { return p.s.dest.Load().rtcpLatched }, 5*time.Second,
			time.Millisecond, "call %d's RTCP", i)
		require.Equal(t, sockAddr(p.rtcp), p.s.dest.Load().rtcp)
	}

	// A re-INVITE naming another call's address is refused, and that
	// call keeps its packets.
	err = peers[0].s.configure(remoteMedia{codec: codec, tePT: -1, rtp: sockAddr(peers[2].rtp),
		rtcp: sockAddr(peers[2].rtcp), dir: 1})
	require.ErrorIs(t, err, errAddressShared)
	before := peers[2].s.stats.received.Load()
	peers[2].send(t, shared, 1)
	require.Eventually(t, func() bool { peers[2].s.drain(); return peers[2].s.stats.received.Load() == before+1 },
		5*time.Second, time.Millisecond, "the call keeps its address")

	// An ended call's peer is a stranger; the others go on.
	peers[1].s.close()
	peers[1].send(t, shared, 2)
	peers[0].send(t, shared, 1)
	// Drains are at least muxDrainGap apart: the one above may be recent.
	require.Eventually(t, func() bool { peers[0].s.drain(); return mux.unmatched.Load() == 3 },
		5*time.Second, time.Millisecond, "the ended call's packets are strays")
	require.EqualValues(t, 4, peers[0].s.stats.received.Load())
	require.Equal(t, 1, ports.inUse())
}

// TestUseShared: calls go on the shared port unless their SDP names an
// address a NAT rewrote for them, or none.
func TestUseShared(t *testing.T) {
	pub, carrierSig := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("198.51.100.2")
	for _, c := range []struct {
		rtp  string
		src  netip.Addr
		want bool
	}{
		{"203.0.113.7:4000", pub, true},        // media from the signalling address
		{"203.0.113.7:4000", carrierSig, true}, // a carrier's media server beside its proxy
		{"127.0.0.1:4000", loopback, true},     // this host
		{"[::ffff:127.0.0.1]:4000", loopback, true},
		{"192.168.1.20:4000", pub, false},                        // a phone behind NAT
		{"10.0.0.5:4000", netip.MustParseAddr("10.0.0.5"), true}, // a private network without NAT
		{"0.0.0.0:4000", pub, false},                             // hold (RFC 2543)
		{"203.0.113.7:0", pub, false},                            // no port
	} {
		require.Equal(t, c.want, useShared(netip.MustParseAddrPort(c.rtp), c.src), "%s from %s", c.rtp, c.src)
	}
}
