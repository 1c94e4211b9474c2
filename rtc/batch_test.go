package rtc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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

// TestBatchWriterDelivers writes from many goroutines to several receivers
// at once, datagrams of every size from 1 byte past the slot size, and
// checks every datagram arrives once, intact, at its own receiver.
func TestBatchWriterDelivers(t *testing.T) {
	const writers, perWriter, receivers = 16, 200, 4
	w := newBatchWriter(listenUDP4(t))
	t.Cleanup(w.close)
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
				if n, err := w.WriteToAddrPort(p, to); err != nil || n != len(p) {
					t.Errorf("write %d/%d: %d, %v", g, k, n, err)
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
					i, err, len(seen), w.sent.Load(), w.batches.Load(), w.direct.Load(), w.failed.Load())
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
	if w.batches.Load() == 0 || w.sent.Load() == 0 {
		t.Fatalf("nothing went through sendmmsg: %d batches, %d direct", w.batches.Load(), w.direct.Load())
	}
	t.Logf("%d datagrams: %d in %d sendmmsg calls, %d direct", len(seen), w.sent.Load(), w.batches.Load(), w.direct.Load())
}

// TestBatchWriterClosed refuses writes after close and keeps no goroutine.
func TestBatchWriterClosed(t *testing.T) {
	w := newBatchWriter(listenUDP4(t))
	to := listenUDP4(t).LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := w.WriteToAddrPort([]byte("x"), to); err != nil {
		t.Fatal(err)
	}
	w.close()
	w.close()
	if _, err := w.WriteToAddrPort([]byte("x"), to); err != net.ErrClosed {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

// TestBatchWriterDropsRefused skips a datagram the kernel refuses (one to
// port 0) and sends the ones after it.
func TestBatchWriterDropsRefused(t *testing.T) {
	w := newBatchWriter(listenUDP4(t))
	t.Cleanup(w.close)
	rx := listenUDP4(t)
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	bad := netip.AddrPortFrom(to.Addr(), 0)
	for i := range 3 {
		dst := to
		if i == 1 {
			dst = bad
		}
		if _, err := w.WriteToAddrPort(fmt.Appendf(nil, "d%d", i), dst); err != nil {
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
	for w.failed.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if w.failed.Load() != 1 {
		t.Fatalf("%d refused datagrams counted, want 1", w.failed.Load())
	}
}

// BenchmarkWebRTCSend is the cost of sending one 100-byte datagram to one
// of 300 listeners, as a room tick does for each: sendto per datagram
// against the batch writer, written by 300 goroutines at once.
func BenchmarkWebRTCSend(b *testing.B) {
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
	run := func(b *testing.B, write func([]byte, netip.AddrPort) (int, error), flushed func() uint64) {
		var wg sync.WaitGroup
		var total uint64
		for b.Loop() {
			for range listeners {
				wg.Go(func() { _, _ = write(p, to) })
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
		run(b, func(p []byte, to netip.AddrPort) (int, error) {
			defer n.Add(1)
			return c.WriteToUDPAddrPort(p, to)
		}, n.Load)
	})
	b.Run("batched", func(b *testing.B) {
		w := newBatchWriter(listenUDP4(b))
		defer w.close()
		run(b, w.WriteToAddrPort, func() uint64 { return w.sent.Load() + w.direct.Load() + w.failed.Load() })
	})
}
