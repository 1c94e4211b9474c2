package rtc

import (
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/internal/udpmsg"
)

// The shared UDP port takes datagrams from anyone. pion's mux drops what
// it cannot route without counting it, and hands whatever comes from a
// connected peer's address to that peer's DTLS and SRTP; so the server
// puts a filter between the socket and the mux that demultiplexes by
// first octet (RFC 7983 §7, RFC 9443 §3) and drops, counting, what is
// none of STUN, DTLS or (S)RTP/(S)RTCP or whose framing lies. What passes
// still goes through pion's own checks (STUN username and integrity, DTLS
// record decryption, SRTP authentication), which drop without counting.

// InputDrops counts datagrams the WebRTC port dropped before pion, by
// reason.
type InputDrops struct {
	// STUN: first octet 0–3 but not a STUN message (shorter than its
	// 20-octet header, no magic cookie, a length that does not match).
	STUN uint64
	// DTLS: first octet 20–63 but no run of DTLS 1.2 records that fills
	// the datagram exactly (truncated header, length beyond the datagram,
	// a content type or version that is not DTLS).
	DTLS uint64
	// RTP: first octet 128–191 but shorter than an RTP header.
	RTP uint64
	// Other: empty, or a first octet of no protocol this port speaks
	// (ZRTP, TURN channels, anything else).
	Other uint64
}

// Total is the sum of all reasons.
func (d InputDrops) Total() uint64 { return d.STUN + d.DTLS + d.RTP + d.Other }

type inputDrop uint8

const (
	dropSTUN inputDrop = iota
	dropDTLS
	dropRTP
	dropOther
	numInputDrops
)

var inputDropNames = [numInputDrops]string{"stun", "dtls", "rtp", "other"}

// classifyDatagram checks one datagram's first octet and framing.
func classifyDatagram(b []byte) (inputDrop, bool) {
	if len(b) == 0 {
		return dropOther, false
	}
	switch b0 := b[0]; {
	case b0 <= 3:
		// RFC 8489 §5: 20-octet header, magic cookie, length of the
		// attributes a multiple of 4.
		if len(b) < 20 || binary.BigEndian.Uint32(b[4:]) != 0x2112a442 ||
			int(binary.BigEndian.Uint16(b[2:]))+20 != len(b) || len(b)%4 != 0 {
			return dropSTUN, false
		}
		return 0, true
	case b0 >= 20 && b0 <= 63:
		if !dtlsRecords(b) {
			return dropDTLS, false
		}
		return 0, true
	case b0 >= 128 && b0 <= 191:
		if len(b) < 12 {
			return dropRTP, false
		}
		return 0, true
	}
	return dropOther, false
}

// dtlsRecords reports whether b is a run of DTLS 1.x records (RFC 6347
// §4.1: 13-octet header with content type 20–25 and version 254.x, then
// length octets) that ends exactly at the end of b. pion speaks DTLS 1.2
// only, so RFC 9147's unified header (first octet 32–63) is dropped too.
func dtlsRecords(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 13 || b[0] < 20 || b[0] > 25 || b[1] != 0xfe {
			return false
		}
		n := 13 + int(binary.BigEndian.Uint16(b[11:]))
		if n > len(b) {
			return false
		}
		b = b[n:]
	}
	return true
}

// inputFilter is the server's UDP socket as pion's mux sees it: reads
// skip and count the datagrams classifyDatagram refuses; writes go out in
// batches (udpmsg.Writer). It implements the allocation-free
// ReadFromAddrPort/WriteToAddrPort pion's mux uses when offered.
type inputFilter struct {
	conn    *net.UDPConn
	out     *udpmsg.Writer
	log     *slog.Logger
	drops   [numInputDrops]atomic.Uint64
	lastLog atomic.Int64 // unix ns of the last Debug line about drops
}

// inputLogEvery bounds the Debug lines about dropped datagrams: a flood
// of garbage must not flood the log.
const inputLogEvery = 10 * time.Second

// batchSize is how many datagrams one sendmmsg carries at most, and
// slotSize the largest one queued (larger ones, which ICE, DTLS and RTP
// here never send, go out at once).
const (
	batchSize = 256
	slotSize  = 1500
)

func newInputFilter(conn *net.UDPConn, log *slog.Logger) (*inputFilter, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	out, err := udpmsg.NewWriter(rc, batchSize, slotSize)
	if err != nil {
		return nil, err
	}
	return &inputFilter{conn: conn, out: out, log: log}, nil
}

// ReadFromAddrPort returns the next datagram that passes the filter.
func (f *inputFilter) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := f.conn.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, from, err
		}
		if r, ok := classifyDatagram(b[:n]); !ok {
			f.drop(r, from)
			continue
		}
		return n, from, nil
	}
}

func (f *inputFilter) drop(r inputDrop, from netip.AddrPort) {
	f.drops[r].Add(1)
	now := time.Now().UnixNano()
	if last := f.lastLog.Load(); now-last >= int64(inputLogEvery) && f.lastLog.CompareAndSwap(last, now) {
		d := f.snapshot()
		f.log.Debug("malformed datagrams dropped on the webrtc port", "reason", inputDropNames[r],
			"from", from.String(), "stun", d.STUN, "dtls", d.DTLS, "rtp", d.RTP, "other", d.Other)
	}
}

func (f *inputFilter) snapshot() InputDrops {
	return InputDrops{STUN: f.drops[dropSTUN].Load(), DTLS: f.drops[dropDTLS].Load(),
		RTP: f.drops[dropRTP].Load(), Other: f.drops[dropOther].Load()}
}

// ReadFrom is ReadFromAddrPort for net.PacketConn.
func (f *inputFilter) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := f.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToAddrPort queues b for the next batch.
func (f *inputFilter) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if err := f.out.WriteTo(b, to); err != nil {
		return 0, err
	}
	return len(b), nil
}

// WriteTo is WriteToAddrPort for net.PacketConn.
func (f *inputFilter) WriteTo(b []byte, to net.Addr) (int, error) {
	if u, ok := to.(*net.UDPAddr); ok {
		return f.WriteToAddrPort(b, u.AddrPort())
	}
	return f.conn.WriteTo(b, to)
}

// Close stops the batches and closes the socket.
func (f *inputFilter) Close() error {
	f.out.Close()
	return f.conn.Close()
}

func (f *inputFilter) LocalAddr() net.Addr                { return f.conn.LocalAddr() }
func (f *inputFilter) SetDeadline(t time.Time) error      { return f.conn.SetDeadline(t) }
func (f *inputFilter) SetReadDeadline(t time.Time) error  { return f.conn.SetReadDeadline(t) }
func (f *inputFilter) SetWriteDeadline(t time.Time) error { return f.conn.SetWriteDeadline(t) }

var _ net.PacketConn = (*inputFilter)(nil)

// InputDrops returns the datagrams the WebRTC port dropped before pion,
// by reason, since the server started.
func (s *Server) InputDrops() InputDrops { return s.input.snapshot() }
