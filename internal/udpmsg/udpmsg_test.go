package udpmsg

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recvAll reads from conn's descriptor until n datagrams came, bounded.
func recvAll(t *testing.T, conn *net.UDPConn, b *Batch, want int) int {
	t.Helper()
	rc, err := conn.SyscallConn()
	require.NoError(t, err)
	deadline := time.Now().Add(2 * time.Second)
	for {
		var n int
		var rerr error
		require.NoError(t, rc.Read(func(fd uintptr) bool { n, rerr = b.Recv(fd); return true }))
		if rerr == nil && n >= want || time.Now().After(deadline) {
			require.NoError(t, rerr)
			return n
		}
		time.Sleep(time.Millisecond) // loopback delivery: polled, bounded
	}
}

// TestBatch: datagrams from an IPv4 peer to a dual-stack socket come back
// with their payloads, the peer's address as IPv4, and no stamp unless
// asked for; an empty socket answers EAGAIN at once; with EnableStamps
// each datagram carries its arrival time.
func TestBatch(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = peer.Close() })
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(conn.LocalAddr().(*net.UDPAddr).Port))

	b := NewBatch(4, 1500)
	require.Equal(t, 4, b.Len())
	for _, p := range []string{"a", "bb"} {
		_, err := peer.WriteToUDPAddrPort([]byte(p), to)
		require.NoError(t, err)
	}
	require.Equal(t, 2, recvAll(t, conn, b, 2))
	require.Equal(t, "a", string(b.Data(0)))
	require.Equal(t, "bb", string(b.Data(1)))
	require.Equal(t, peer.LocalAddr().(*net.UDPAddr).AddrPort(), b.From(1))
	_, stamped := b.Stamp(0)
	require.False(t, stamped, "no stamp without EnableStamps")

	rc, err := conn.SyscallConn()
	require.NoError(t, err)
	var rerr error
	require.NoError(t, rc.Read(func(fd uintptr) bool { _, rerr = b.Recv(fd); return true }))
	require.ErrorIs(t, rerr, syscall.EAGAIN)

	var serr error
	require.NoError(t, rc.Control(func(fd uintptr) { serr = EnableStamps(fd) }))
	require.NoError(t, serr)
	sent := time.Now()
	_, err = peer.WriteToUDPAddrPort([]byte("c"), to)
	require.NoError(t, err)
	require.Equal(t, 1, recvAll(t, conn, b, 1))
	at, stamped := b.Stamp(0)
	require.True(t, stamped)
	require.WithinDuration(t, sent, at, time.Second)
}
