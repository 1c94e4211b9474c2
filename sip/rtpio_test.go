package sip

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// TestWriteAudioSends: WriteAudio writes each frame to the socket itself,
// numbered and timed, without allocating, from an IPv4 socket to an IPv4
// peer, from a dual-stack socket (bound to ::) to an IPv4 peer (as a
// v4-mapped address) and to an IPv6 one.
func TestWriteAudioSends(t *testing.T) {
	for _, tc := range []struct{ name, bind, peer string }{
		{"ipv4", "127.0.0.1", "127.0.0.1"},
		{"dual-stack to ipv4", "::", "127.0.0.1"},
		{"dual-stack to ipv6", "::", "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(tc.peer), 0)))
			if err != nil {
				t.Skipf("no %s here: %v", tc.peer, err)
			}
			t.Cleanup(func() { _ = peer.Close() })
			base := 40000 + 2*rand.IntN(8000)
			ports, err := newPortAllocator(netip.MustParseAddr(tc.bind), base, base+1)
			require.NoError(t, err)
			var wg sync.WaitGroup
			s, err := newRTPSession(slog.New(slog.DiscardHandler), ports, nil, &wg, func(DTMF) {})
			require.NoError(t, err)
			t.Cleanup(func() { s.close(); wg.Wait() })
			c, _ := lookupCodec(CodecPCMU)
			pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			require.NoError(t, s.configure(remoteMedia{codec: c, tePT: -1, rtp: pa,
				rtcp: netip.AddrPortFrom(pa.Addr(), pa.Port()+1), dir: 1}))

			payload := make([]byte, 160)
			for i := range payload {
				payload[i] = byte(i)
			}
			const frames = 20
			for f := range uint64(frames) {
				require.True(t, s.writeAudio(payload, 100+f))
			}
			buf := make([]byte, 1500)
			var first rtp.Packet
			for i := range frames {
				require.NoError(t, peer.SetReadDeadline(time.Now().Add(2*time.Second)))
				n, err := peer.Read(buf)
				require.NoError(t, err, "packet %d", i)
				var p rtp.Packet
				require.NoError(t, p.Unmarshal(buf[:n]))
				require.Equal(t, payload, p.Payload)
				if i == 0 {
					first = p
					require.True(t, p.Marker, "the first packet starts a talkspurt")
					continue
				}
				require.Equal(t, first.SequenceNumber+uint16(i), p.SequenceNumber)
				require.Equal(t, first.Timestamp+uint32(160*i), p.Timestamp)
				require.False(t, p.Marker)
			}
			st := s.snapshot()
			require.EqualValues(t, frames, st.Sent)
			require.EqualValues(t, frames*160, st.SentBytes)
			require.Zero(t, st.Dropped)

			f := uint64(100 + frames)
			require.Zero(t, testing.AllocsPerRun(100, func() { s.writeAudio(payload, f); f++ }))
		})
	}
}

// listenLoopback opens a UDP socket on a free loopback port, closed at
// cleanup.
func listenLoopback(tb testing.TB) *net.UDPConn {
	tb.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// newRxSocket opens a loopback socket and its rxSocket; the address is
// where to send to it.
func newRxSocket(tb testing.TB) (*rxSocket, netip.AddrPort) {
	tb.Helper()
	conn := listenLoopback(tb)
	rc, err := conn.SyscallConn()
	require.NoError(tb, err)
	r := new(rxSocket)
	require.NoError(tb, r.init(rc, rxBatch))
	return r, conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// stampingOn keeps one socket with SO_TIMESTAMPNS open for the rest of
// the test binary and waits until the kernel stamps packets on arrival.
// Linux switches arrival stamping on and off for the whole machine, with
// the first socket that asks and after the last one closes, in deferred
// work; until it is on, a packet carries the time it was read, and a test
// that closed its sockets a moment ago would see that.
func stampingOn(t *testing.T) {
	t.Helper()
	stampOnce.Do(func() {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
		if err != nil {
			stampErr = err
			return
		}
		rc, _ := conn.SyscallConn()
		if stampErr = stampSock.init(rc, rxBatch); stampErr != nil {
			return
		}
		to := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		for range 100 { // bounded: 100 × 20 ms
			if _, stampErr = conn.WriteToUDPAddrPort([]byte("stamp?"), to); stampErr != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
			stampSock.mu.Lock()
			_ = stampSock.rc.Read(stampSock.read)
			ok := stampSock.err == nil && time.Since(stampSock.at(0)) >= 10*time.Millisecond
			stampSock.mu.Unlock()
			if ok {
				return
			}
		}
		stampErr = errors.New("the kernel does not stamp arrivals")
	})
	require.NoError(t, stampErr)
}

var (
	stampOnce sync.Once
	stampSock rxSocket
	stampErr  error
)

// TestDrainKeepsArrivalTimes: a packet read from the socket long after it
// arrived carries the kernel's receive time, not the read's, and its
// source; an empty socket reads as EAGAIN without waiting; neither
// allocates.
func TestDrainKeepsArrivalTimes(t *testing.T) {
	stampingOn(t)
	r, to := newRxSocket(t)
	require.True(t, r.stamped, "SO_TIMESTAMPNS")

	peer := listenLoopback(t)
	sent := time.Now()
	_, err := peer.WriteToUDPAddrPort([]byte("rtp?"), to)
	require.NoError(t, err)
	// The read comes 50 ms after the arrival: that gap is what is tested.
	time.Sleep(50 * time.Millisecond)

	r.mu.Lock()
	defer r.mu.Unlock()
	require.NoError(t, r.rc.Read(r.read))
	require.NoError(t, r.err)
	require.Equal(t, 1, r.got)
	require.Equal(t, "rtp?", string(r.batch.Data(0)))
	require.Equal(t, peer.LocalAddr().(*net.UDPAddr).AddrPort(), r.batch.From(0))
	require.WithinDuration(t, sent, r.at(0), 10*time.Millisecond, "the arrival time, not the read's")

	start := time.Now()
	require.NoError(t, r.rc.Read(r.read))
	require.ErrorIs(t, r.err, syscall.EAGAIN)
	require.Zero(t, r.got)
	require.Less(t, time.Since(start), 10*time.Millisecond, "an empty socket does not wait")
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = r.rc.Read(r.read) }))
}

// TestRecvBatch: packets waiting from two sources come back in one
// recvmmsg, at most rxBatch at a time, in order, each with its own source,
// length and arrival time; fewer than rxBatch waiting means the socket is
// empty afterwards.
func TestRecvBatch(t *testing.T) {
	stampingOn(t)
	r, to := newRxSocket(t)
	peers := [2]*net.UDPConn{listenLoopback(t), listenLoopback(t)}
	const total = rxBatch + 2
	var sentAt [total]time.Time
	for k := range total {
		sentAt[k] = time.Now()
		_, err := peers[k%2].WriteToUDPAddrPort([]byte(strings.Repeat("x", k+1)), to)
		require.NoError(t, err)
		time.Sleep(time.Millisecond) // arrival times apart, checked below
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	var prev time.Time
	for _, want := range []int{rxBatch, total - rxBatch} {
		deadline := time.Now().Add(2 * time.Second)
		for {
			require.NoError(t, r.rc.Read(r.read))
			if r.err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond) // loopback delivery: polled, bounded
		}
		require.NoError(t, r.err)
		require.Equal(t, want, r.got)
		for i := range r.got {
			require.Len(t, r.batch.Data(i), k+1, "packet %d", k)
			require.Equal(t, peers[k%2].LocalAddr().(*net.UDPAddr).AddrPort(), r.batch.From(i))
			at := r.at(i)
			require.False(t, at.Before(sentAt[k]), "packet %d: received before it was sent", k)
			require.True(t, at.After(prev), "packet %d: the previous packet's time", k)
			prev = at
			k++
		}
	}
	require.NoError(t, r.rc.Read(r.read))
	require.ErrorIs(t, r.err, syscall.EAGAIN)
}

// TestRawUDP: a socket bound to 0.0.0.0 is dual-stack, as net.ListenUDP's
// is: it receives from an IPv4 peer, whose address comes back as IPv4;
// after Close, reads and writes report net.ErrClosed.
func TestRawUDP(t *testing.T) {
	u, err := listenRawUDP(netip.MustParseAddrPort("0.0.0.0:0"))
	require.NoError(t, err)
	local, err := u.LocalAddr()
	require.NoError(t, err)
	require.True(t, local.Addr().Is6(), "dual-stack: an IPv6 socket")

	peer, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = peer.Close() })
	_, err = peer.WriteToUDPAddrPort([]byte("hello"), netip.AddrPortFrom(loopback, local.Port()))
	require.NoError(t, err)

	var r rxSocket
	require.NoError(t, r.init(u, rxBatch))
	deadline := time.Now().Add(2 * time.Second)
	for {
		r.mu.Lock()
		require.NoError(t, r.rc.Read(r.read))
		got, from, rerr := string(r.batch.Data(0)), r.batch.From(0), r.err
		r.mu.Unlock()
		if rerr == nil {
			require.Equal(t, "hello", got)
			require.Equal(t, peer.LocalAddr().(*net.UDPAddr).AddrPort(), from)
			break
		}
		require.ErrorIs(t, rerr, syscall.EAGAIN)
		require.True(t, time.Now().Before(deadline), "nothing received in 2 s")
		time.Sleep(time.Millisecond) // loopback delivery: polled, bounded
	}

	require.NoError(t, u.Close())
	require.ErrorIs(t, u.Close(), net.ErrClosed)
	require.ErrorIs(t, u.Read(func(uintptr) bool { t.Fatal("read on a closed socket"); return true }), net.ErrClosed)
	require.ErrorIs(t, u.Write(func(uintptr) bool { t.Fatal("write on a closed socket"); return true }), net.ErrClosed)
}

// BenchmarkDrainOnePacket is a tick's drain of a call's socket holding
// one packet: one recvmmsg (recvmsg needed a second call for EAGAIN).
func BenchmarkDrainOnePacket(b *testing.B) {
	r, to := newRxSocket(b)
	peer := listenLoopback(b)
	pkt := make([]byte, 172)
	for b.Loop() {
		b.StopTimer()
		_, _ = peer.WriteToUDPAddrPort(pkt, to)
		b.StartTimer()
		r.mu.Lock()
		_ = r.rc.Read(r.read)
		r.mu.Unlock()
		if r.got != 1 {
			b.Fatalf("%d packets, %v", r.got, r.err)
		}
	}
}
