package main

import (
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// rawSock is a phone leg's UDP socket kept out of Go's network poller and
// read by the pacer's goroutine, without waiting, right before it sends
// the leg's next frame. On loopback a sendto runs the receiving side's
// kernel work in the sender's context, wake-ups included: a leg blocked in
// a read (or any socket registered with the poller while a thread sleeps
// in epoll_wait) would have the gateway pay for waking the load
// generator, which a gateway sending through a network card never does.
// The kernel stamps each packet's arrival (SO_TIMESTAMPNS), so reading it
// up to 20 ms later loses nothing of the delay measured.
type rawSock struct {
	mu     sync.RWMutex // held for reading by send and drain, for writing by close
	fd     int
	closed bool

	to   syscall.SockaddrInet4 // where send sends
	hdrs [rawBatch]mmsghdr
	iovs [rawBatch]syscall.Iovec
	bufs [rawBatch][1500]byte
	oobs [rawBatch][64]byte
}

// rawBatch is how many packets one recvmmsg reads at most.
const rawBatch = 8

// mmsghdr is struct mmsghdr of recvmmsg(2) on 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

// listenRaw binds a non-blocking IPv4 UDP socket to host on a free port.
func listenRaw(host netip.Addr) (*rawSock, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err == nil {
		err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 256<<10)
	}
	if err == nil {
		err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}
	if err == nil {
		err = syscall.Bind(fd, &syscall.SockaddrInet4{Addr: host.As4()})
	}
	if err != nil {
		_ = syscall.Close(fd)
		return nil, err
	}
	s := &rawSock{fd: fd}
	for i := range s.hdrs {
		s.iovs[i].Base = &s.bufs[i][0]
		s.iovs[i].SetLen(len(s.bufs[i]))
		s.hdrs[i].hdr.Iov, s.hdrs[i].hdr.Iovlen = &s.iovs[i], 1
		s.hdrs[i].hdr.Control = &s.oobs[i][0]
	}
	return s, nil
}

// port is the bound port.
func (s *rawSock) port() int {
	sa, err := syscall.Getsockname(s.fd)
	if err != nil {
		return 0
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// setRemote sets where send sends; call it before the first send.
func (s *rawSock) setRemote(to netip.AddrPort) {
	s.to = syscall.SockaddrInet4{Port: int(to.Port()), Addr: to.Addr().Unmap().As4()}
}

// send sends b without waiting; a full socket buffer drops it, as a
// network would.
func (s *rawSock) send(b []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.closed {
		_ = syscall.Sendto(s.fd, b, syscall.MSG_DONTWAIT, &s.to)
	}
}

// drain hands every packet waiting (at most 64) to fn with its arrival
// time; the bytes are valid during the call only.
func (s *rawSock) drain(fn func(b []byte, at time.Time)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for taken := 0; !s.closed && taken < 64; {
		for i := range s.hdrs {
			s.hdrs[i].hdr.SetControllen(len(s.oobs[i]))
		}
		n, _, errno := syscall.Syscall6(syscall.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.hdrs[0])),
			rawBatch, syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return
		}
		for i := range int(n) {
			fn(s.bufs[i][:s.hdrs[i].len], s.stamp(i))
		}
		if int(n) < rawBatch {
			return
		}
		taken += int(n)
	}
}

// stamp is packet i's kernel receive time, or now.
func (s *rawSock) stamp(i int) time.Time {
	if int(s.hdrs[i].hdr.Controllen) >= syscall.SizeofCmsghdr+int(unsafe.Sizeof(syscall.Timespec{})) {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&s.oobs[i][0]))
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS {
			ts := (*syscall.Timespec)(unsafe.Pointer(&s.oobs[i][syscall.SizeofCmsghdr]))
			return time.Unix(ts.Sec, ts.Nsec)
		}
	}
	return time.Now()
}

// close closes the socket once no send or drain runs.
func (s *rawSock) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("closed twice")
	}
	s.closed = true
	return syscall.Close(s.fd)
}
