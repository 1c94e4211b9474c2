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
// the call's audio; at most drainBatch packets are taken per drain, up to
// rxBatch per recvmmsg.
const (
	drainEvery = 100 * time.Millisecond
	drainBatch = 64
	rxBatch    = 4
)

// rxSocket drains a UDP socket without waiting; its buffers are used under
// mu only. One recvmmsg takes up to rxBatch packets: a call's socket holds
// one packet at a tick, so a drain is one system call where recvmsg took
// two (the packet, then EAGAIN), and a system call costs about a
// microsecond on the machines we measured before it does any work.
type rxSocket struct {
	mu      sync.Mutex
	rc      syscall.RawConn
	read    func(fd uintptr) bool // r.recv, bound once: no allocation per packet
	hdrs    [rxBatch]mmsghdr
	iovs    [rxBatch]syscall.Iovec
	bufs    [rxBatch][maxRTP]byte
	oobs    [rxBatch][64]byte
	names   [rxBatch]syscall.RawSockaddrAny
	got     int // packets the last recv returned; their fields follow
	n       [rxBatch]int
	at      [rxBatch]time.Time
	from    [rxBatch]netip.AddrPort
	err     error
	pkt     rtp.Packet
	last    atomic.Int64 // unix ns of the last drain
	stamped bool         // SO_TIMESTAMPNS is on
}

// mmsghdr is struct mmsghdr of recvmmsg(2).
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
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
	for i := range r.hdrs {
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(maxRTP)
		h := &r.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov, h.Iovlen = &r.iovs[i], 1
		h.Control = &r.oobs[i][0]
	}
	return nil
}

// recv is one non-blocking recvmmsg; it reports done whatever the
// outcome, so the runtime never parks the caller on the socket. got is
// the number of packets read (0 with err set when none waited).
func (r *rxSocket) recv(fd uintptr) bool {
	for i := range r.hdrs { // the kernel shortened them last time
		h := &r.hdrs[i].hdr
		h.Namelen = uint32(syscall.SizeofSockaddrAny)
		h.SetControllen(len(r.oobs[i]))
	}
	for {
		n, _, errno := syscall.Syscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), rxBatch,
			syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case syscall.EINTR:
			continue
		case 0:
			r.got, r.err = int(n), nil
			for i := range r.got {
				r.n[i] = int(r.hdrs[i].len)
				r.from[i] = sockaddrAddrPort(&r.names[i])
				r.at[i] = r.stamp(i, int(r.hdrs[i].hdr.Controllen))
			}
		default:
			r.got, r.err = 0, errno
		}
		return true
	}
}

// stamp is packet i's receive time from its control message, or now.
func (r *rxSocket) stamp(i, controllen int) time.Time {
	if r.stamped && controllen >= syscall.SizeofCmsghdr+int(unsafe.Sizeof(syscall.Timespec{})) {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&r.oobs[i][0]))
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS {
			ts := (*syscall.Timespec)(unsafe.Pointer(&r.oobs[i][syscall.SizeofCmsghdr]))
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
	for taken := 0; taken < drainBatch; {
		if err := r.rc.Read(r.read); err != nil {
			return !errors.Is(err, net.ErrClosed)
		}
		if r.err != nil {
			return true // EAGAIN: drained (or a transient error)
		}
		for i := range r.got {
			s.handleRTP(r.bufs[i][:r.n[i]], r.from[i], &r.pkt, r.at[i])
		}
		if r.got < rxBatch {
			return true // fewer than asked for: nothing more waited
		}
		taken += r.got
	}
	return true
}

// drainLoop drains the socket every drainEvery unless a reader did
// recently, and runs the media timeout, until the session closes: the one
// goroutine and timer a call's media has besides RTCP.
func (s *rtpSession) drainLoop() {
	defer s.wg.Done()
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case now := <-t.C:
			if now.UnixNano()-s.rxSock.last.Load() >= int64(drainEvery/2) && !s.drain() {
				return
			}
			s.checkTimeout(now)
		}
	}
}
