package sip

import (
	"errors"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"

	"github.com/mediagate/mediagate/internal/udpmsg"
)

// sendQueue is the sending side of a call's RTP: the RTP header state
// (sequence numbers, the timestamp timeline) and the socket write.
// WriteAudio builds, protects and sends each packet on its caller's
// goroutine (the room's tick, or the IVR's before the join) under mu. The
// write never waits: a socket whose send buffer is full drops the packet
// (counted as dropped) as a full queue would. Writing inline instead of
// handing the packet to a goroutine of the call's own saves a goroutine
// wake-up and a channel operation per packet, which was most of a caller's
// CPU beside the syscalls.
type sendQueue struct {
	mu     sync.Mutex
	pt     uint8
	step   uint32 // timestamp units per frame
	clock  int
	seq    uint16
	tsBase uint32
	first  uint64 // frame number of the first packet
	last   uint64 // frame number of the last packet
	start  bool
	lastTS uint32    // timestamp of the last packet sent, for RTCP SR
	lastAt time.Time // when it was sent

	pkt [maxRTP]byte               // the packet being sent
	out [maxRTP + srtpTrailer]byte // its SRTP protected form
	w   udpmsg.Sender              // the call's own socket (not on the shared port)
}

// init starts the timeline; conn is the call's own socket, nil on the
// shared port (rtpMux).
func (q *sendQueue) init(conn syscall.RawConn) error {
	q.seq = uint16(rand.Uint32())
	q.tsBase = rand.Uint32()
	if conn == nil {
		return nil
	}
	return q.w.Init(conn)
}

func (q *sendQueue) setFormat(pt uint8, step uint32, clock int) {
	q.mu.Lock()
	q.pt, q.step, q.clock = pt, step, clock
	q.mu.Unlock()
}

// writeAudio sends one frame's payload; see Call.WriteAudio.
func (s *rtpSession) writeAudio(payload []byte, frame uint64) bool {
	q := &s.tx
	if len(payload) > maxRTP-rtpHeaderLen {
		s.stats.dropped.Add(1)
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.step == 0 {
		return true // not negotiated yet: nothing to send
	}
	marker := false
	switch {
	case !q.start:
		q.start, q.first, marker = true, frame, true
	case frame <= q.last:
		return true // a frame number already sent
	case frame != q.last+1:
		marker = true // RFC 3551 §4.1: first packet after a gap
	}
	q.last = frame
	ts := q.tsBase + uint32(frame-q.first)*q.step
	q.lastTS, q.lastAt = ts, time.Now()
	if !s.sending.Load() {
		return true // on hold: the timeline goes on, nothing is sent
	}
	putRTPHeader(q.pkt[:rtpHeaderLen], marker, q.pt, q.seq, ts, s.ssrc)
	n := rtpHeaderLen + copy(q.pkt[rtpHeaderLen:], payload)
	q.seq++
	to := s.dest.Load().rtp
	if !to.IsValid() || to.Addr().IsUnspecified() {
		return true // nowhere to send yet (the sequence number is spent, as a lost packet's)
	}
	out, err := s.srtp.protectRTP(q.out[:], q.pkt[:n])
	switch {
	case err != nil:
	case s.mux != nil:
		err = s.mux.out.WriteTo(out, to) // copied: the batch goes out after the tick's other packets
	default:
		err = q.w.Send(out, to)
	}
	switch {
	case errors.Is(err, syscall.EAGAIN):
		s.stats.dropped.Add(1)
		return false
	case err != nil:
		s.stats.sendErrs.Add(1)
	default:
		s.stats.sent.Add(1)
		s.stats.sentBytes.Add(uint64(n - rtpHeaderLen))
	}
	return true
}
