package sip

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mediagate/mediagate/internal/udpmsg"
)

// rtpMux is one RTP/RTCP port pair shared by many calls (WithSharedRTP):
// packets are told apart by their source, the address the peer's SDP
// names, which symmetric RTP (RFC 4961) makes the address it sends from.
// With a socket per call, each packet costs two system calls of its own
// (a recvmmsg that finds it and the sendto of the reply), about half of
// the gateway's CPU with 1000 callers. On the shared socket one recvmmsg
// takes the packets of many calls and one sendmmsg (udpmsg.Writer) sends
// a room tick's packets to all its callers. What it gives up: a caller
// whose packets come from another address than its SDP names (a phone
// behind NAT) cannot be latched, as nothing tells its packets from a
// stranger's; such calls keep a port pair of their own (useShared).
type rtpMux struct {
	log      *slog.Logger
	conn     *rawUDP
	rtcpConn *net.UDPConn
	port     int
	out      *udpmsg.Writer
	rx       rxSocket

	mu       sync.Mutex
	byRTP    map[netip.AddrPort]*rtpSession // by the SDP's RTP address
	byRTCP   map[netip.AddrPort]*rtpSession // by the SDP's RTCP address
	sessions map[*rtpSession]struct{}       // every call on the pair, for the media timeout

	unmatched atomic.Uint64 // packets from no call's address
	dropLog   *logLimiter
	done      chan struct{}
	wg        sync.WaitGroup
}

// muxBatch is how many packets one recvmmsg takes from the shared socket
// and muxSlots how many one sendmmsg sends at most; muxDrainMax bounds one
// drain, so a flood cannot hold a room's tick; muxDrainGap is the least
// time between two drains.
const (
	muxBatch    = 32
	muxSlots    = 256
	muxDrainMax = 1024
	muxDrainGap = 500 * time.Microsecond
)

// newRTPMux binds a port pair from ports for the calls to share.
func newRTPMux(log *slog.Logger, ports *portAllocator) (*rtpMux, error) {
	conn, rtcpConn, port, err := ports.allocate()
	if err != nil {
		return nil, err
	}
	m := &rtpMux{log: log, conn: conn, rtcpConn: rtcpConn, port: port,
		byRTP: map[netip.AddrPort]*rtpSession{}, byRTCP: map[netip.AddrPort]*rtpSession{},
		sessions: map[*rtpSession]struct{}{},
		dropLog:  newLogLimiter(1, dropLogEvery), done: make(chan struct{})}
	m.out, err = udpmsg.NewWriter(conn, muxSlots, maxRTP+srtpTrailer)
	if err == nil {
		err = m.growBuffers()
	}
	if err == nil {
		err = m.rx.init(conn, muxBatch)
	}
	if err != nil {
		if m.out != nil {
			m.out.Close()
		}
		_ = conn.Close()
		_ = rtcpConn.Close()
		ports.release(port)
		return nil, err
	}
	m.wg.Add(2)
	go m.rtcpLoop()
	go m.watchLoop()
	log.Info("rtp shared port", "rtp", port, "rtcp", port+1)
	return m, nil
}

// muxBuffer is the socket buffer size asked for in each direction: a
// thousand calls send 50 packets a second each, and a datagram of 200
// bytes takes about a kilobyte of buffer in the kernel, so the default
// (212 KB on Linux) overflows when a drain or a batch waits a few
// milliseconds. The kernel caps it at net.core.rmem_max and wmem_max.
const muxBuffer = 4 << 20

// growBuffers asks for muxBuffer in both directions and logs what the
// kernel granted when it is less.
func (m *rtpMux) growBuffers() error {
	var rcv, snd int
	var serr error
	err := m.conn.Control(func(fd uintptr) {
		for _, opt := range []int{syscall.SO_RCVBUF, syscall.SO_SNDBUF} {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, muxBuffer); serr != nil {
				return
			}
		}
		if rcv, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF); serr != nil {
			return
		}
		snd, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	})
	if err == nil {
		err = serr
	}
	if err == nil && (rcv < muxBuffer || snd < muxBuffer) { // Linux reports twice what was granted
		m.log.Warn("rtp shared port: the kernel granted smaller socket buffers than asked for; raise net.core.rmem_max and net.core.wmem_max",
			"receive_bytes", rcv/2, "send_bytes", snd/2, "asked_bytes", muxBuffer)
	}
	return err
}

// useShared reports whether a call whose offer names rtp and whose INVITE
// came from src goes on the shared port: when its media address is not
// one a NAT would have to rewrite (a private or unspecified address while
// the signalling came from elsewhere).
func useShared(rtp netip.AddrPort, src netip.Addr) bool {
	a := rtp.Addr().Unmap()
	switch {
	case !a.IsValid() || a.IsUnspecified() || rtp.Port() == 0:
		return false
	case a == src.Unmap():
		return true
	}
	return !a.IsPrivate() && !a.IsLinkLocalUnicast() && !a.IsLoopback()
}

// routed reports whether a call on the pair has rtp as its peer's
// address: a second call from the same address could not be told from
// the first, so it takes a pair of its own.
func (m *rtpMux) routed(rtp netip.AddrPort) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byRTP[rtp] != nil
}

// add puts s on the pair; route gives it its packets.
func (m *rtpMux) add(s *rtpSession) {
	m.mu.Lock()
	m.sessions[s] = struct{}{}
	m.mu.Unlock()
}

// errAddressShared refuses a description naming the RTP address of
// another call on the shared pair (a re-INVITE; a new call with such an
// address gets a pair of its own instead, see routed).
var errAddressShared = errors.New("sip: the rtp address is another call's on the shared port")

// route makes packets from the peer of s (the addresses in d, from its
// SDP) reach s, replacing what old routed. RTCP is taken from the SDP's
// RTCP address and from the port above the RTP address (RFC 3550 §11).
// An address another call on the pair has is refused: taking it would
// take that call's packets.
func (m *rtpMux) route(s *rtpSession, old, d *peerAddrs) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.takenLocked(s, d.sdpRTP) {
		return errAddressShared
	}
	if old != nil {
		m.unrouteLocked(s, old)
	}
	if d.sdpRTP.IsValid() {
		m.byRTP[d.sdpRTP] = s
	}
	if d.sdpRTCP.IsValid() {
		m.byRTCP[d.sdpRTCP] = s
	}
	return nil
}

// taken reports whether another call than s on the pair has the RTP
// address rtp, so that a description naming it is refused before it is
// answered (route refuses it too).
func (m *rtpMux) taken(s *rtpSession, rtp netip.AddrPort) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.takenLocked(s, rtp)
}

func (m *rtpMux) takenLocked(s *rtpSession, rtp netip.AddrPort) bool {
	other := m.byRTP[rtp]
	return other != nil && other != s
}

// remove takes s off the pair (at close): its routes (from d) and its
// media timeout.
func (m *rtpMux) remove(s *rtpSession, d *peerAddrs) {
	m.mu.Lock()
	m.unrouteLocked(s, d)
	delete(m.sessions, s)
	m.mu.Unlock()
}

func (m *rtpMux) unrouteLocked(s *rtpSession, d *peerAddrs) {
	if m.byRTP[d.sdpRTP] == s {
		delete(m.byRTP, d.sdpRTP)
	}
	if m.byRTCP[d.sdpRTCP] == s {
		delete(m.byRTCP, d.sdpRTCP)
	}
}

// session is the call packets from src belong to, or nil.
func (m *rtpMux) session(src netip.AddrPort, rtcp bool) *rtpSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !rtcp {
		return m.byRTP[src]
	}
	if s := m.byRTCP[src]; s != nil {
		return s
	}
	if src.Port() > 0 {
		return m.byRTP[netip.AddrPortFrom(src.Addr(), src.Port()-1)]
	}
	return nil
}

// drain hands every packet waiting on the shared socket (at most
// muxDrainMax) to its call: whichever call plays out first drains for
// all. Every call of every room reads its audio each tick, but one
// recvmmsg per muxDrainGap serves them all; a call whose packet came in
// since then finds it when the next tick of any room drains. A drain
// that finds another one running leaves the packets to it.
func (m *rtpMux) drain() {
	r := &m.rx
	if time.Now().UnixNano()-r.last.Load() < int64(muxDrainGap) || !r.mu.TryLock() {
		return
	}
	defer r.mu.Unlock()
	r.last.Store(time.Now().UnixNano())
	for taken := 0; taken < muxDrainMax; {
		if err := m.conn.Read(r.read); err != nil || r.err != nil {
			return // closed, or EAGAIN: drained
		}
		for i := range r.got {
			from := r.batch.From(i)
			if s := m.session(from, false); s != nil {
				s.handleRTP(r.batch.Data(i), from, &r.pkt, r.at(i))
			} else {
				m.stray(from)
			}
		}
		if r.got < r.batch.Len() {
			return
		}
		taken += r.got
	}
}

// stray counts a packet from an address no call's SDP names.
func (m *rtpMux) stray(from netip.AddrPort) {
	m.unmatched.Add(1)
	if ok, _ := m.dropLog.allow(time.Now()); ok {
		m.log.Debug("rtp from an address no call on the shared port expects", addrAttr("from", from),
			"unmatched", m.unmatched.Load())
	}
}

// watchLoop drains the RTP socket every drainEvery when no call played
// out meanwhile, and runs the calls' media timeouts, until close: one
// timer for the pair where a call of its own port has one per call.
func (m *rtpMux) watchLoop() {
	defer m.wg.Done()
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	var calls []*rtpSession
	for {
		select {
		case <-m.done:
			return
		case now := <-t.C:
			if now.UnixNano()-m.rx.last.Load() >= int64(drainEvery/2) {
				m.drain()
			}
			m.mu.Lock()
			calls = calls[:0]
			for s := range m.sessions {
				calls = append(calls, s)
			}
			m.mu.Unlock()
			for _, s := range calls {
				if fire := s.checkTimeout(now); fire != nil {
					// The hangup waits for the BYE's answer: not here,
					// where it would hold every other call's timeout.
					s.wg.Add(1)
					go func() { defer s.wg.Done(); fire() }()
				}
			}
			clear(calls) // no call kept alive until the next tick
		}
	}
}

// rtcpLoop reads the shared RTCP socket (RTCP is a packet per call every
// few seconds: one goroutine in the poller is cheap) until close.
func (m *rtpMux) rtcpLoop() {
	defer m.wg.Done()
	readRTCPConn(m.rtcpConn, func(b []byte, from netip.AddrPort, now time.Time) {
		if s := m.session(from, true); s != nil {
			s.handleRTCP(b, from, now, false)
		} else {
			m.stray(from)
		}
	})
}

// close closes the pair once the UA's calls are gone.
func (m *rtpMux) close(ports *portAllocator) {
	close(m.done)
	m.out.Close()
	_ = m.conn.Close()
	_ = m.rtcpConn.Close()
	m.wg.Wait()
	ports.release(m.port)
}
