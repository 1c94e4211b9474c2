package sip

import (
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// rawUDP is a non-blocking UDP socket kept out of Go's network poller: a
// call's RTP socket. The call reads it when it plays out (rtprecv.go) and
// writes it from WriteAudio (rtpsend.go), never waiting on it, so the
// poller has nothing to do for it; registered there, every arriving
// packet would wake a thread blocked in epoll_wait for nothing. It
// implements syscall.RawConn: f runs once, with the descriptor held open.
type rawUDP struct {
	mu     sync.RWMutex
	fd     int
	closed bool
}

var _ syscall.RawConn = (*rawUDP)(nil)

// listenRawUDP binds a UDP socket to addr as net.ListenUDP("udp") would:
// an unspecified address (0.0.0.0 or ::) binds a dual-stack IPv6 socket.
func listenRawUDP(addr netip.AddrPort) (*rawUDP, error) {
	ip := addr.Addr()
	family, dual := syscall.AF_INET6, ip.IsUnspecified()
	if ip.Is4() && !dual {
		family = syscall.AF_INET
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Err: err}
	}
	var sa syscall.Sockaddr
	if family == syscall.AF_INET {
		sa = &syscall.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	} else {
		if dual {
			err = syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0)
			ip = netip.IPv6Unspecified()
		}
		sa = &syscall.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
	}
	if err == nil {
		err = syscall.Bind(fd, sa)
	}
	if err != nil {
		_ = syscall.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: "udp", Err: err}
	}
	return &rawUDP{fd: fd}, nil
}

// Control runs f with the descriptor held open.
func (u *rawUDP) Control(f func(fd uintptr)) error {
	return u.Read(func(fd uintptr) bool { f(fd); return true })
}

// Read runs f once; there is no waiting for readability.
func (u *rawUDP) Read(f func(fd uintptr) bool) error {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.closed {
		return net.ErrClosed
	}
	f(uintptr(u.fd))
	return nil
}

// Write runs f once; there is no waiting for writability.
func (u *rawUDP) Write(f func(fd uintptr) bool) error { return u.Read(f) }

// Close closes the socket once no Read or Write runs.
func (u *rawUDP) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return net.ErrClosed
	}
	u.closed = true
	return syscall.Close(u.fd)
}

// LocalAddr is the bound address.
func (u *rawUDP) LocalAddr() (netip.AddrPort, error) {
	var ap netip.AddrPort
	var serr error
	err := u.Control(func(fd uintptr) {
		var sa syscall.Sockaddr
		if sa, serr = syscall.Getsockname(int(fd)); serr != nil {
			return
		}
		switch sa := sa.(type) {
		case *syscall.SockaddrInet4:
			ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
		case *syscall.SockaddrInet6:
			ap = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
		}
	})
	if err == nil {
		err = serr
	}
	return ap, err
}
