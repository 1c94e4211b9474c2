package rtc

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// batchSize is how many datagrams one sendmmsg call carries at most, and
// slotSize the largest datagram that is queued (larger ones, which ICE,
// DTLS and RTP here never send, go out at once with sendto).
const (
	batchSize = 256
	slotSize  = 1500
)

// batchWriter sends the datagrams of every session on the server's UDP
// socket in batches: a write copies its datagram into the pending batch
// and returns; one goroutine hands the batch to the kernel with a single
// sendmmsg. With 300 listeners each tick writes 300 packets at nearly the
// same moment; one system call per packet was half of the gateway's CPU
// in that scenario (docs/benchmarks.md), and a system call costs about a
// microsecond here before it does anything. A datagram waits only for the
// packets queued before it; when the pending batch is full the writer
// sends its own at once, so a stalled socket never blocks a session
// beyond what sendto would.
type batchWriter struct {
	conn *net.UDPConn
	pc   *ipv4.PacketConn

	mu     sync.Mutex
	cur    *batch // filled by writers
	spare  *batch // being sent by the flusher, or empty
	closed bool

	wake chan struct{} // a batch has its first datagram
	done chan struct{}
	wg   sync.WaitGroup

	batches atomic.Uint64 // sendmmsg calls
	sent    atomic.Uint64 // datagrams they carried
	direct  atomic.Uint64 // datagrams sent at once (batch full, too large, not IPv4)
	failed  atomic.Uint64 // datagrams the kernel refused
}

// batch is one sendmmsg's worth of datagrams.
type batch struct {
	n     int
	msgs  [batchSize]ipv4.Message
	bufs  [batchSize][1][]byte
	addrs [batchSize]net.UDPAddr
	data  [batchSize][slotSize]byte
}

func newBatch() *batch {
	b := &batch{}
	for i := range b.msgs {
		b.addrs[i].IP = make(net.IP, net.IPv4len)
		b.msgs[i].Buffers = b.bufs[i][:]
		b.msgs[i].Addr = &b.addrs[i]
	}
	return b
}

// newBatchWriter starts the flusher for conn, an IPv4 UDP socket.
func newBatchWriter(conn *net.UDPConn) *batchWriter {
	w := &batchWriter{conn: conn, pc: ipv4.NewPacketConn(conn), cur: newBatch(), spare: newBatch(),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.wg.Add(1)
	go w.flushLoop()
	return w
}

// WriteToAddrPort queues p for to and returns len(p); errors the kernel
// reports later are counted, as UDP loses datagrams silently anyway.
func (w *batchWriter) WriteToAddrPort(p []byte, to netip.AddrPort) (int, error) {
	ip := to.Addr().Unmap()
	w.mu.Lock()
	b := w.cur
	if w.closed || b.n == batchSize || len(p) > slotSize || !ip.Is4() {
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return 0, net.ErrClosed
		}
		w.direct.Add(1)
		return w.conn.WriteToUDPAddrPort(p, to)
	}
	i := b.n
	b.n++
	b.bufs[i][0] = b.data[i][:copy(b.data[i][:], p)]
	a4 := ip.As4()
	copy(b.addrs[i].IP, a4[:])
	b.addrs[i].Port = int(to.Port())
	first := i == 0
	w.mu.Unlock()
	if first {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// flushLoop sends batches until close.
func (w *batchWriter) flushLoop() {
	defer w.wg.Done()
	for {
		select {
		case <-w.done:
			return
		case <-w.wake:
		}
		for {
			w.mu.Lock()
			b := w.cur
			if b.n == 0 || w.closed {
				w.mu.Unlock()
				break
			}
			w.cur, w.spare = w.spare, b
			w.mu.Unlock()
			w.send(b)
		}
	}
}

// send hands b to the kernel: sendmmsg sends a prefix of the messages and
// fails only when the first one fails, which is then dropped.
func (w *batchWriter) send(b *batch) {
	ms := b.msgs[:b.n]
	for len(ms) > 0 {
		n, err := w.pc.WriteBatch(ms, 0)
		w.batches.Add(1)
		if n > 0 {
			w.sent.Add(uint64(n))
			ms = ms[n:]
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			break
		}
		w.failed.Add(1)
		ms = ms[1:]
	}
	for i := range b.n {
		b.bufs[i][0] = nil
	}
	b.n = 0
}

// close stops the flusher; datagrams still queued are dropped, as the
// socket closes next.
func (w *batchWriter) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.done)
	w.wg.Wait()
}
