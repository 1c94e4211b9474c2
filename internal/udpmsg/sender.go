package udpmsg

import (
	"errors"
	"net/netip"
	"syscall"
)

// ErrFamily is an IPv6 destination on an IPv4 socket.
var ErrFamily = errors.New("udpmsg: IPv6 destination on an IPv4 socket")

// Sender sends one datagram at a time on a UDP socket with sendto(2) and
// never waits for the socket to become writable: a full send buffer is
// syscall.EAGAIN to the caller (net.UDPConn would park the goroutine).
// Its fields are the arguments of the send in progress, bound once so
// that a send allocates nothing, and the last destination's sockaddr is
// kept for the next send to it. It is not safe for concurrent use: the
// caller serialises sends.
type Sender struct {
	rc    syscall.RawConn
	inet6 bool // the socket is AF_INET6: IPv4 peers as v4-mapped addresses
	do    func(fd uintptr) bool
	buf   []byte
	sa4   syscall.SockaddrInet4
	sa6   syscall.SockaddrInet6
	to    netip.AddrPort // the destination sa4 or sa6 holds
	err   error
}

// Init binds the sender to the UDP socket rc and learns its family.
func (s *Sender) Init(rc syscall.RawConn) error {
	var sa syscall.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = syscall.Getsockname(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	_, s.inet6 = sa.(*syscall.SockaddrInet6)
	s.rc, s.do = rc, s.sendto
	return nil
}

// Send writes p to to: syscall.EAGAIN when the send buffer is full,
// ErrFamily for an IPv6 destination on an IPv4 socket.
func (s *Sender) Send(p []byte, to netip.AddrPort) error {
	if to != s.to || !s.to.IsValid() {
		a := to.Addr()
		switch {
		case s.inet6:
			s.sa6 = syscall.SockaddrInet6{Port: int(to.Port()), Addr: a.As16()}
		case a.Unmap().Is4():
			s.sa4 = syscall.SockaddrInet4{Port: int(to.Port()), Addr: a.Unmap().As4()}
		default:
			return ErrFamily
		}
		s.to = to
	}
	s.buf, s.err = p, nil
	err := s.rc.Write(s.do)
	s.buf = nil
	if err != nil {
		return err
	}
	return s.err
}

// sendto is the write itself; it reports done whatever the outcome, so
// the runtime never waits for the socket to become writable.
func (s *Sender) sendto(fd uintptr) bool {
	var sa syscall.Sockaddr = &s.sa4
	if s.inet6 {
		sa = &s.sa6
	}
	for {
		s.err = syscall.Sendto(int(fd), s.buf, syscall.MSG_DONTWAIT, sa)
		if s.err != syscall.EINTR {
			return true
		}
	}
}
