package udpmsg

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slotSize is the tests' slot: an Ethernet MTU.
const slotSize = 1500

// newWriter returns a Writer of 256 slots on a new socket, both closed
// at cleanup: "udp4" binds IPv4 loopback, "udp" a dual-stack IPv6 socket
// on every address (as sip's RTP sockets by default).
func newWriter(tb testing.TB, network string) *Writer {
	tb.Helper()
	w, err := NewWriter(rawSocket(tb, network), 256, slotSize)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Close)
	return w
}

// rawSocket opens a socket closed at cleanup and returns its RawConn:
// "udp4" binds IPv4 loopback, "udp" a dual-stack IPv6 socket on every
// address.
func rawSocket(tb testing.TB, network string) syscall.RawConn {
	tb.Helper()
	var addr *net.UDPAddr
	if network == "udp4" {
		addr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	}
	c, err := net.ListenUDP(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	rc, err := c.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	return rc
}

// listenUDP4 opens a loopback IPv4 socket closed at cleanup.
func listenUDP4(tb testing.TB) *net.UDPConn {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// TestWriterDelivers writes from many goroutines to several receivers
// at once, datagrams of every size from 1 byte past the slot size, and
// checks every datagram arrives once, intact, at its own receiver.
// An IPv6 socket sends to IPv4 receivers as v4-mapped addresses.
func TestWriterDelivers(t *testing.T) {
	for _, network := range []string{"udp4", "udp"} {
		t.Run(network, func(t *testing.T) { testWriterDelivers(t, newWriter(t, network)) })
	}
}

func testWriterDelivers(t *testing.T, w *Writer) {
	const writers, perWriter, receivers = 16, 200, 4
	var rx [receivers]*net.UDPConn
	for i := range rx {
		rx[i] = listenUDP4(t)
		_ = rx[i].SetReadBuffer(4 << 20)
	}
	payload := func(g, k int) []byte {
		n := 12 + (g*perWriter+k)%(slotSize+40) // some longer than a slot
		b := bytes.Repeat([]byte{byte(g*31 + k)}, n)
		binary.BigEndian.PutUint32(b[0:], uint32(g))
		binary.BigEndian.PutUint32(b[4:], uint32(k))
		binary.BigEndian.PutUint32(b[8:], uint32(n))
		return b
	}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			to := rx[g%receivers].LocalAddr().(*net.UDPAddr).AddrPort()
			for k := range perWriter {
				p := payload(g, k)
				if err := w.WriteTo(p, to); err != nil {
					t.Errorf("write %d/%d: %v", g, k, err)
					return
				}
			}
		})
	}
	wg.Wait()

	seen := make(map[[2]uint32]bool)
	buf := make([]byte, 2*slotSize)
	for i, c := range rx {
		want := writers / receivers * perWriter
		for range want {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("receiver %d: %v after %d datagrams (sent %d in %d batches, %d direct, %d failed)",
					i, err, len(seen), w.Stats().Sent, w.Stats().Batches, w.Stats().Direct, w.Stats().Failed)
			}
			g, k := binary.BigEndian.Uint32(buf[0:]), binary.BigEndian.Uint32(buf[4:])
			if int(g)%receivers != i {
				t.Fatalf("receiver %d got writer %d's datagram", i, g)
			}
			if want := payload(int(g), int(k)); !bytes.Equal(buf[:n], want) {
				t.Fatalf("datagram %d/%d: %d bytes, want %d, or content differs", g, k, n, len(want))
			}
			key := [2]uint32{g, k}
			if seen[key] {
				t.Fatalf("datagram %d/%d twice", g, k)
			}
			seen[key] = true
		}
	}
	if len(seen) != writers*perWriter {
		t.Fatalf("%d datagrams, want %d", len(seen), writers*perWriter)
	}
	st := w.Stats()
	if st.Batches == 0 || st.Sent == 0 || st.Failed != 0 {
		t.Fatalf("sendmmsg: %d batches carried %d, %d direct, %d failed", st.Batches, st.Sent, st.Direct, st.Failed)
	}
	t.Logf("%d datagrams: %d in %d sendmmsg calls, %d direct", len(seen), st.Sent, st.Batches, st.Direct)
}

// TestWriterClosed refuses writes after close, and an IPv4 socket
// refuses IPv6 destinations.
func TestWriterClosed(t *testing.T) {
	w := newWriter(t, "udp4")
	to := listenUDP4(t).LocalAddr().(*net.UDPAddr).AddrPort()
	if err := w.WriteTo([]byte("x"), to); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTo([]byte("x"), netip.MustParseAddrPort("[::1]:9")); err != ErrFamily {
		t.Fatalf("IPv6 destination on an IPv4 socket: %v, want ErrFamily", err)
	}
	w.Close()
	w.Close()
	if err := w.WriteTo([]byte("x"), to); err != net.ErrClosed {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

// TestWriterDropsRefused skips a datagram the kernel refuses (one to
// port 0) and sends the ones after it.
func TestWriterDropsRefused(t *testing.T) {
	w := newWriter(t, "udp4")
	rx := listenUDP4(t)
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	bad := netip.AddrPortFrom(to.Addr(), 0)
	for i := range 3 {
		dst := to
		if i == 1 {
			dst = bad
		}
		if err := w.WriteTo(fmt.Appendf(nil, "d%d", i), dst); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	for _, want := range []string{"d0", "d2"} {
		_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := rx.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("got %q, %v; want %q", buf[:n], err, want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.Stats().Failed != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if f := w.Stats().Failed; f != 1 {
		t.Fatalf("%d refused datagrams counted, want 1", f)
	}
}

// BenchmarkWriter is the cost of sending one 100-byte datagram to one of
// 300 listeners, as a room tick does for each: sendto per datagram
// against the Writer, written by 300 goroutines at once.
func BenchmarkWriter(b *testing.B) {
	const listeners = 300
	rx := listenUDP4(b)
	_ = rx.SetReadBuffer(8 << 20)
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	go func() { // drain, so the receive buffer never fills
		buf := make([]byte, 2048)
		for {
			if _, err := rx.Read(buf); err != nil {
				return
			}
		}
	}()
	p := make([]byte, 100)
	// run times writing a tick's datagrams until flushed reports them all
	// handed to the kernel.
	run := func(b *testing.B, write func([]byte, netip.AddrPort) error, flushed func() uint64) {
		var wg sync.WaitGroup
		var total uint64
		for b.Loop() {
			for range listeners {
				wg.Go(func() { _ = write(p, to) })
			}
			wg.Wait()
			total += listeners
			for flushed() < total {
				runtime.Gosched()
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*listeners), "ns/datagram")
	}
	b.Run("sendto", func(b *testing.B) {
		c := listenUDP4(b)
		var n atomic.Uint64
		run(b, func(p []byte, to netip.AddrPort) error {
			defer n.Add(1)
			_, err := c.WriteToUDPAddrPort(p, to)
			return err
		}, n.Load)
	})
	b.Run("batched", func(b *testing.B) {
		w := newWriter(b, "udp4")
		run(b, w.WriteTo, func() uint64 { st := w.Stats(); return st.Sent + st.Direct + st.Failed })
	})
}

// TestWriterCloseSends: what was queued when Close is called still leaves,
// in order (a peer's last words before its socket closes).
func TestWriterCloseSends(t *testing.T) {
	const n = 200
	for range 5 {
		w := newWriter(t, "udp4")
		rx := listenUDP4(t)
		_ = rx.SetReadBuffer(4 << 20)
		to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
		for i := range n {
			require.NoError(t, w.WriteTo(fmt.Appendf(nil, "d%d", i), to))
		}
		w.Close()
		buf := make([]byte, 64)
		for i := range n {
			_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := rx.Read(buf)
			require.NoError(t, err, "datagram %d of %d", i, n)
			require.Equal(t, fmt.Sprintf("d%d", i), string(buf[:k]))
		}
	}
}
