package main

import (
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/mediagate/mediagate/internal/udpmsg"
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
	bound  int // the port
	closed bool

	to    syscall.SockaddrInet4 // where send sends
	batch *udpmsg.Batch
}

// rawBatch is how many packets one recvmmsg reads at most.
const rawBatch = 8

// listenRaw binds a non-blocking IPv4 UDP socket to host on a free port.
func listenRaw(host netip.Addr) (*rawSock, error) {
	fd, port, err := openRaw(host)
	if err != nil {
		return nil, err
	}
	return &rawSock{fd: fd, bound: port, batch: udpmsg.NewBatch(rawBatch, 1500)}, nil
}

// openRaw opens a non-blocking IPv4 UDP socket with arrival stamps, out of
// Go's poller, bound to host on a free port, and returns it with the port.
func openRaw(host netip.Addr) (fd, port int, err error) {
	fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 256<<10)
	if err == nil {
		err = udpmsg.EnableStamps(uintptr(fd))
	}
	if err == nil {
		err = syscall.Bind(fd, &syscall.SockaddrInet4{Addr: host.As4()})
	}
	var sa syscall.Sockaddr
	if err == nil {
		sa, err = syscall.Getsockname(fd)
	}
	if err != nil {
		_ = syscall.Close(fd)
		return 0, 0, err
	}
	return fd, sa.(*syscall.SockaddrInet4).Port, nil
}

// port is the bound port.
func (s *rawSock) port() int { return s.bound }

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
		n, err := s.batch.Recv(uintptr(s.fd))
		if err != nil {
			return
		}
		for i := range n {
			at, ok := s.batch.Stamp(i)
			if !ok {
				at = time.Now()
			}
			fn(s.batch.Data(i), at)
		}
		if n < rawBatch {
			return
		}
		taken += n
	}
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
