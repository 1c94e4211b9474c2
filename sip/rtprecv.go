package sip

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/pion/rtp"
)

// The receiving side of a call's RTP. There is no goroutine per call
// waiting on the socket: whoever plays the call out (the room's tick, or
// the IVR's before the join) drains the socket first, with non-blocking
// recvmsg calls, and each packet keeps the time the kernel received it
// (SO_TIMESTAMPNS), so the jitter buffer sees true arrival times. A
// goroutine of the call drains every drainEvery as well, for calls nobody
// plays out for a while (DTMF, latching and the media timeout go on). A
// goroutine woken for every packet of every call was, beside the
// syscalls, the largest cost of a caller.

// drainEvery is how often a call's socket is drained when nobody reads
// the call's audio; at most drainBatch packets are taken per drain.
const (
	drainEvery = 100 * time.Millisecond
	drainBatch = 64
)

// rxSocket drains a UDP socket without waiting; its buffers are used under
// mu only.
type rxSocket struct {
	mu      sync.Mutex
	rc      syscall.RawConn
	read    func(fd uintptr) bool // r.recv, bound once: no allocation per packet
	buf     [maxRTP]byte
	oob     [64]byte
	name    syscall.RawSockaddrAny
	n       int
	at      time.Time
	from    netip.AddrPort
	err     error
	pkt     rtp.Packet
	last    atomic.Int64 // unix ns of the last drain
	stamped bool         // SO_TIMESTAMPNS is on
}

func (r *rxSocket) init(rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	r.stamped = serr == nil
	r.rc, r.read = rc, r.recv
	return nil
}

// recv is one non-blocking recvmsg; it reports done whatever the outcome,
// so the runtime never parks the caller on the socket.
func (r *rxSocket) recv(fd uintptr) bool {
	iov := syscall.Iovec{Base: &r.buf[0]}
	iov.SetLen(len(r.buf))
	msg := syscall.Msghdr{Name: (*byte)(unsafe.Pointer(&r.name)), Namelen: uint32(syscall.SizeofSockaddrAny),
		Iov: &iov, Iovlen: 1, Control: &r.oob[0]}
	msg.SetControllen(len(r.oob))
	for {
		n, _, errno := syscall.Syscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), syscall.MSG_DONTWAIT)
		switch errno {
		case syscall.EINTR:
			continue
		case 0:
			r.n, r.err = int(n), nil
			r.from = sockaddrAddrPort(&r.name)
			r.at = r.stamp(int(msg.Controllen))
		default:
			r.err = errno
		}
		return true
	}
}

// stamp is the kernel's receive time from the control message, or now.
func (r *rxSocket) stamp(controllen int) time.Time {
	if r.stamped && controllen >= syscall.SizeofCmsghdr+int(unsafe.Sizeof(syscall.Timespec{})) {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&r.oob[0]))
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS {
			ts := (*syscall.Timespec)(unsafe.Pointer(&r.oob[syscall.SizeofCmsghdr]))
			return time.Unix(ts.Sec, ts.Nsec)
		}
	}
	return time.Now()
}

// sockaddrAddrPort converts a received source address; IPv4-mapped IPv6
// addresses come back as IPv4.
func sockaddrAddrPort(sa *syscall.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), ntohs(p.Port))
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), ntohs(p.Port))
	}
	return netip.AddrPort{}
}

func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// drain hands every packet waiting on the RTP socket (at most drainBatch)
// to handleRTP. It returns false once the socket is closed.
func (s *rtpSession) drain() bool {
	r := &s.rxSock
	if r.rc == nil {
		return true // a session without a socket (the fuzz target's)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last.Store(time.Now().UnixNano())
	for range drainBatch {
		if err := r.rc.Read(r.read); err != nil {
			return !errors.Is(err, net.ErrClosed)
		}
		if r.err != nil {
			return true // EAGAIN: drained (or a transient error)
		}
		s.handleRTP(r.buf[:r.n], r.from, &r.pkt, r.at)
	}
	return true
}

// drainLoop drains the socket every drainEvery unless a reader did
// recently, until the session closes.
func (s *rtpSession) drainLoop() {
	defer s.wg.Done()
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case now := <-t.C:
			if now.UnixNano()-s.rxSock.last.Load() < int64(drainEvery/2) {
				continue
			}
			if !s.drain() {
				return
			}
		}
	}
}
