package main

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/mediagate/mediagate/internal/udpmsg"
)

// The WebRTC legs' sockets, read the way the phone legs' are (rawsock.go):
// out of Go's network poller, so that a datagram the gateway sends on
// loopback does not wake a load-generator thread from inside the
// gateway's sendmmsg, which a gateway sending through a network card never
// pays. Measured in the suite, this took a tenth off the generator's own
// CPU in (b) and (c) and Janus's in (b); the gateway's sendmmsg still
// costs about 4 µs a datagram (the loopback receive path), so the wake-ups
// were not where that went.
//
// Each leg has a socket of its own (a gateway tells its WebRTC peers
// apart by their address), registered with the poller's epoll instance
// for readiness only: nobody ever sleeps in epoll_wait on it. The
// poller's goroutine asks epoll without waiting every pollEvery, drains
// the sockets that have packets with recvmmsg and hands the packets to
// their leg's pion (an ice.UDPMux over the polledConn). The kernel stamps
// each packet's arrival (SO_TIMESTAMPNS); the stamps of RTP packets are
// kept by sequence number, so the receiver measures delay from the
// arrival, not from when pion got round to the packet.

// pollEvery is how often the poller looks for packets: it delays what a
// leg's pion sees by up to this much, and costs the generator that many
// wake-ups a second.
const pollEvery = time.Millisecond

// poller reads the polledConns of a run.
type poller struct {
	host netip.Addr
	ep   int

	mu    sync.Mutex
	conns map[int32]*polledConn

	stop chan struct{}
	done chan struct{}
}

// newPoller starts a poller for sockets bound to host.
func newPoller(host netip.Addr) (*poller, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{host: host, ep: ep, conns: map[int32]*polledConn{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p, nil
}

// close stops the poller once every conn is closed or not; conns still
// open read EOF from then on.
func (p *poller) close() {
	close(p.stop)
	<-p.done
	_ = syscall.Close(p.ep)
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 64)
	batch := udpmsg.NewBatch(rawBatch, 1500)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		for {
			n, err := syscall.EpollWait(p.ep, events, 0)
			if err != nil || n == 0 {
				break
			}
			for _, ev := range events[:n] {
				p.mu.Lock()
				c := p.conns[ev.Fd]
				p.mu.Unlock()
				if c != nil {
					c.drain(batch)
				}
			}
			if n < len(events) {
				break
			}
		}
	}
}

// listen opens a polled socket on a free port of the poller's host.
func (p *poller) listen() (*polledConn, error) {
	fd, port, err := openRaw(p.host)
	if err != nil {
		return nil, err
	}
	c := &polledConn{p: p, fd: fd, in: make(chan inPacket, 256), closed: make(chan struct{}),
		local: net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.host, uint16(port)))}
	p.mu.Lock()
	p.conns[int32(fd)] = c
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(p.ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// inPacket is one datagram on its way from the poller to pion.
type inPacket struct {
	data []byte
	from netip.AddrPort
}

// polledConn is a net.PacketConn (and ice.AddrPortReaderWriter) for one
// leg's pion, over a socket the poller reads. Writes go out at once with
// a non-blocking sendto; a full socket buffer drops the datagram.
type polledConn struct {
	p     *poller
	fd    int
	local *net.UDPAddr
	in    chan inPacket

	closeOnce sync.Once
	closed    chan struct{}
	sendMu    sync.RWMutex // held for reading by sends, for writing by Close

	stampMu sync.Mutex
	stamps  [256]rtpStamp // by sequence number % 256
}

// rtpStamp is when the RTP packet with sequence number seq arrived.
type rtpStamp struct {
	seq uint16
	at  time.Time
}

// drain reads what the socket holds (the poller's goroutine).
func (c *polledConn) drain(b *udpmsg.Batch) {
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	select {
	case <-c.closed:
		return
	default:
	}
	for taken := 0; taken < 64; {
		n, err := b.Recv(uintptr(c.fd))
		if err != nil {
			return
		}
		for i := range n {
			data := b.Data(i)
			at, ok := b.Stamp(i)
			if !ok {
				at = time.Now()
			}
			if isRTP(data) {
				seq := binary.BigEndian.Uint16(data[2:4])
				c.stampMu.Lock()
				c.stamps[seq%uint16(len(c.stamps))] = rtpStamp{seq: seq, at: at}
				c.stampMu.Unlock()
			}
			select {
			case c.in <- inPacket{data: append([]byte(nil), data...), from: b.From(i)}:
			default: // pion is behind: the packet is lost, as on a network
			}
		}
		if n < b.Len() {
			return
		}
		taken += n
	}
}

// isRTP tells an RTP packet from RTCP (payload types 192..223 with the
// marker bit, RFC 5761 §4), STUN and DTLS, which share the socket.
func isRTP(b []byte) bool {
	return len(b) >= 12 && b[0]>>6 == 2 && (b[1] < 192 || b[1] > 223)
}

// arrival is when the RTP packet with sequence number seq arrived, if its
// stamp is still kept.
func (c *polledConn) arrival(seq uint16) (time.Time, bool) {
	c.stampMu.Lock()
	defer c.stampMu.Unlock()
	s := c.stamps[seq%uint16(len(c.stamps))]
	return s.at, s.seq == seq && !s.at.IsZero()
}

// ReadFromAddrPort waits for the next datagram.
func (c *polledConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case p := <-c.in:
		return copy(b, p.data), p.from, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, io.EOF // what ice.UDPMux ends on quietly
	}
}

// ReadFrom waits for the next datagram.
func (c *polledConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToAddrPort sends b to addr without waiting.
func (c *polledConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if !addr.Addr().Unmap().Is4() {
		return 0, errors.New("polledConn: IPv4 only")
	}
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	to := syscall.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().Unmap().As4()}
	if err := syscall.Sendto(c.fd, b, syscall.MSG_DONTWAIT, &to); err != nil && !errors.Is(err, syscall.EAGAIN) {
		return 0, err
	}
	return len(b), nil
}

// WriteTo sends b to addr, a *net.UDPAddr, without waiting.
func (c *polledConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("polledConn: not a UDP address")
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// Close unregisters and closes the socket; a pending read returns
// net.ErrClosed.
func (c *polledConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.p.mu.Lock()
		delete(c.p.conns, int32(c.fd))
		c.p.mu.Unlock()
		c.sendMu.Lock()
		defer c.sendMu.Unlock()
		_ = syscall.Close(c.fd) // also leaves the epoll set
	})
	return nil
}

// LocalAddr is the bound address.
func (c *polledConn) LocalAddr() net.Addr { return c.local }

// Deadlines are not needed: reads end with Close, writes never wait.
func (c *polledConn) SetDeadline(time.Time) error      { return nil }
func (c *polledConn) SetReadDeadline(time.Time) error  { return nil }
func (c *polledConn) SetWriteDeadline(time.Time) error { return nil }
