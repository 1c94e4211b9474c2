package sip

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/rtp"

	"github.com/mediagate/mediagate/internal/udpmsg"
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
	batch   *udpmsg.Batch
	got     int   // packets the last recv returned (batch holds them)
	err     error // the last recv's error, EAGAIN when nothing waited
	pkt     rtp.Packet
	last    atomic.Int64 // unix ns of the last drain
	stamped bool         // SO_TIMESTAMPNS is on
}

// init sets r up to read rc, n packets per recvmmsg.
func (r *rxSocket) init(rc syscall.RawConn, n int) error {
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = udpmsg.EnableStamps(fd) }); err != nil {
		return err
	}
	r.stamped = serr == nil
	r.rc, r.read = rc, r.recv
	r.batch = udpmsg.NewBatch(n, maxRTP)
	return nil
}

// recv is one non-blocking recvmmsg; it reports done whatever the
// outcome, so the runtime never parks the caller on the socket. got is
// the number of packets read (0 with err set when none waited).
func (r *rxSocket) recv(fd uintptr) bool {
	r.got, r.err = r.batch.Recv(fd)
	return true
}

// at is packet i's receive time: the kernel's stamp, or now.
func (r *rxSocket) at(i int) time.Time {
	if t, ok := r.batch.Stamp(i); ok {
		return t
	}
	return time.Now()
}

// drain hands every packet waiting on the RTP socket (at most drainBatch)
// to handleRTP; on the shared port, every call's packets to their call.
// It returns false once the call's own socket is closed.
func (s *rtpSession) drain() bool {
	if s.mux != nil {
		s.mux.drain()
		return true
	}
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
			s.handleRTP(r.batch.Data(i), r.batch.From(i), &r.pkt, r.at(i))
		}
		if r.got < r.batch.Len() {
			return true // fewer than asked for: nothing more waited
		}
		taken += r.got
	}
	return true
}

// drainLoop drains the socket every drainEvery unless a reader did
// recently, and runs the media timeout, until the session closes: the one
// goroutine and timer a call's media has besides RTCP. Calls on the
// shared port have none: the pair's watchLoop does both for all.
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
			if fire := s.checkTimeout(now); fire != nil {
				fire()
			}
		}
	}
}
