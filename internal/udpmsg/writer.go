package udpmsg

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Writer sends the datagrams written to one UDP socket in batches: a
// write copies its datagram into the pending batch and returns, and one
// goroutine hands the batch to the kernel with a single sendmmsg(2). When
// many writers send at nearly the same moment (a room tick writing to 300
// listeners, or to the callers of a room on a shared RTP socket), one
// system call per datagram costs more than the kernel's work for it: a
// system call costs about a microsecond here before it does anything. A
// datagram waits only for those queued before it; when the pending batch
// is full, or the datagram is larger than a slot, the writer sends its
// own at once (sendto), so a stalled socket never blocks a writer beyond
// what sendto would. Errors the kernel reports for queued datagrams are
// counted (Stats), as UDP loses datagrams silently anyway.
type Writer struct {
	rc    syscall.RawConn
	inet6 bool // the socket is AF_INET6: IPv4 peers as v4-mapped addresses

	mu     sync.Mutex
	cur    *sendBatch // filled by writers
	spare  *sendBatch // being sent by the flusher, or empty
	closed bool
	direct Sender // sends a datagram at once, under mu

	wake chan struct{} // a batch has its first datagram
	done chan struct{}
	wg   sync.WaitGroup

	// The flusher's sendmmsg arguments and result, bound once so that a
	// batch allocates nothing.
	fb    *sendBatch
	foff  int
	fn    uintptr
	ferr  syscall.Errno
	flush func(fd uintptr) bool

	stats struct{ batches, sent, direct, failed atomic.Uint64 }
}

// WriterStats count what a Writer did.
type WriterStats struct {
	Batches uint64 // sendmmsg calls
	Sent    uint64 // datagrams they carried
	Direct  uint64 // datagrams sent at once (batch full, or too large for a slot)
	Failed  uint64 // datagrams the kernel refused
}

// sendBatch is one sendmmsg's worth of datagrams.
type sendBatch struct {
	n     int
	hdrs  []mmsghdr
	iovs  []syscall.Iovec
	names []syscall.RawSockaddrInet6 // large enough for either family
	data  [][]byte                   // the slots
}

func newSendBatch(n, slot int) *sendBatch {
	b := &sendBatch{hdrs: make([]mmsghdr, n), iovs: make([]syscall.Iovec, n),
		names: make([]syscall.RawSockaddrInet6, n), data: make([][]byte, n)}
	for i := range n {
		b.data[i] = make([]byte, slot)
		b.iovs[i].Base = &b.data[i][0]
		h := &b.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov, h.Iovlen = &b.iovs[i], 1
	}
	return b
}

// NewWriter starts the flusher for the UDP socket rc: batches of up to n
// datagrams of up to slot bytes each. rc's Write must run its function at
// once (a socket outside the poller, or one whose function reports done).
func NewWriter(rc syscall.RawConn, n, slot int) (*Writer, error) {
	w := &Writer{rc: rc, cur: newSendBatch(n, slot), spare: newSendBatch(n, slot),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	if err := w.direct.Init(rc); err != nil {
		return nil, err
	}
	w.inet6 = w.direct.inet6
	w.flush = w.sendmmsg
	w.wg.Add(1)
	go w.flushLoop()
	return w, nil
}

// WriteTo queues p for to. It fails only when the writer is closed, to
// cannot be reached from this socket's family, or a datagram sent at once
// failed (syscall.EAGAIN: the send buffer is full).
func (w *Writer) WriteTo(p []byte, to netip.AddrPort) error {
	if !w.inet6 && !to.Addr().Unmap().Is4() {
		return ErrFamily
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return net.ErrClosed
	}
	b := w.cur
	if b.n == len(b.hdrs) || len(p) > len(b.data[0]) {
		w.stats.direct.Add(1)
		return w.direct.Send(p, to)
	}
	i := b.n
	b.n++
	b.iovs[i].SetLen(copy(b.data[i], p))
	b.hdrs[i].hdr.Namelen = putSockaddr(&b.names[i], to, w.inet6)
	if i == 0 {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// putSockaddr writes to into sa as the socket's family expects and
// returns its length (ntohs swaps the port's bytes, as htons would).
func putSockaddr(sa *syscall.RawSockaddrInet6, to netip.AddrPort, inet6 bool) uint32 {
	if inet6 {
		*sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Port: ntohs(to.Port()), Addr: to.Addr().As16()}
		return syscall.SizeofSockaddrInet6
	}
	sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
	*sa4 = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Port: ntohs(to.Port()), Addr: to.Addr().Unmap().As4()}
	return syscall.SizeofSockaddrInet4
}

// flushLoop sends batches until close.
func (w *Writer) flushLoop() {
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
func (w *Writer) send(b *sendBatch) {
	w.fb = b
	for w.foff = 0; w.foff < b.n; {
		if err := w.rc.Write(w.flush); err != nil {
			break // closed
		}
		w.stats.batches.Add(1)
		if w.ferr == 0 && w.fn > 0 {
			w.stats.sent.Add(uint64(w.fn))
			w.foff += int(w.fn)
			continue
		}
		w.stats.failed.Add(1)
		w.foff++
	}
	b.n, w.fb = 0, nil
}

// sendmmsg is one sendmmsg(2) of fb's datagrams from foff on.
func (w *Writer) sendmmsg(fd uintptr) bool {
	b := w.fb
	for {
		w.fn, _, w.ferr = syscall.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[w.foff])),
			uintptr(b.n-w.foff), syscall.MSG_DONTWAIT, 0, 0)
		if w.ferr != syscall.EINTR {
			return true
		}
	}
}

// Stats returns the counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Batches: w.stats.batches.Load(), Sent: w.stats.sent.Load(),
		Direct: w.stats.direct.Load(), Failed: w.stats.failed.Load()}
}

// Close stops the flusher and sends what is still queued, so that the
// last words of a closing peer (a DTLS close_notify, an RTCP BYE) leave
// before the socket closes. Writes after Close fail with net.ErrClosed.
func (w *Writer) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.done)
	w.wg.Wait()
	if b := w.cur; b.n > 0 { // the flusher is gone: nobody else touches cur
		w.send(b)
	}
}
