package sip

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// portAllocator hands out RTP/RTCP port pairs from rtp.port_min..port_max:
// an even port for RTP and the odd one above it for RTCP (RFC 3550 §11).
// It walks the range round-robin, so a port just released is the last to
// be reused and stray packets of an old call rarely reach a new one; pairs
// another program holds are skipped.
type portAllocator struct {
	ip       netip.Addr // bind address; unspecified binds all interfaces
	min, max int

	mu   sync.Mutex
	next int
	used map[int]bool
}

// newPortAllocator returns an allocator for the pairs in [lo, hi]; lo is
// rounded up to even, and a pair needs both of its ports in the range.
func newPortAllocator(ip netip.Addr, lo, hi int) (*portAllocator, error) {
	lo += lo % 2
	if lo < 1 || hi > 65535 || lo+1 > hi {
		return nil, fmt.Errorf("%w: rtp port range %d..%d holds no even/odd pair", ErrConfig, lo, hi)
	}
	return &portAllocator{ip: ip, min: lo, max: hi, next: lo, used: map[int]bool{}}, nil
}

// pairs is how many RTP/RTCP pairs the range holds.
func (a *portAllocator) pairs() int { return (a.max - a.min + 1) / 2 }

// allocate binds the next free pair and returns both sockets (the RTP one
// outside Go's poller, see rawUDP) and the RTP port; ErrNoPorts when every
// pair is taken.
func (a *portAllocator) allocate() (rtp *rawUDP, rtcp *net.UDPConn, port int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range a.pairs() {
		p := a.next
		a.next += 2
		if a.next+1 > a.max {
			a.next = a.min
		}
		if a.used[p] {
			continue
		}
		rtp, err := listenRawUDP(netip.AddrPortFrom(a.ip, uint16(p)))
		if err != nil {
			continue // held by another program
		}
		rtcp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.ip, uint16(p+1))))
		if err != nil {
			_ = rtp.Close()
			continue
		}
		a.used[p] = true
		return rtp, rtcp, p, nil
	}
	return nil, nil, 0, fmt.Errorf("%w: %d pairs in %d..%d", ErrNoPorts, a.pairs(), a.min, a.max)
}

// release returns a pair after its sockets are closed.
func (a *portAllocator) release(port int) {
	a.mu.Lock()
	delete(a.used, port)
	a.mu.Unlock()
}

// inUse is how many pairs are allocated, for tests and metrics.
func (a *portAllocator) inUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.used)
}
