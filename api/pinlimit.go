package api

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/mediagate/mediagate/room"
)

// The join page's PIN check is rate-limited per room and client address,
// so a four-digit PIN cannot be found by trying: after pinMaxFailures wrong
// PINs within pinWindow, every further attempt (right or wrong, so the
// answer tells nothing) gets 429 until the oldest failure leaves the
// window. The count lives on this node; a cluster behind a load balancer
// multiplies it by the number of nodes.
const (
	pinMaxFailures = 5
	pinWindow      = 5 * time.Minute
	// pinSweepMin is the map size from which stale entries are swept.
	pinSweepMin = 1024
)

// pinKey is one room seen from one client network.
type pinKey struct {
	room   room.ID
	client netip.Prefix
}

// pinLimiter counts PIN attempts. An attempt counts as a failure from the
// moment it starts (try) and is forgiven when the PIN was right, so that
// many attempts sent at once cannot slip past the limit.
type pinLimiter struct {
	mu      sync.Mutex
	fails   map[pinKey][]time.Time // attempt times within the window, oldest first
	sweepAt int
}

func newPINLimiter() *pinLimiter {
	return &pinLimiter{fails: make(map[pinKey][]time.Time), sweepAt: pinSweepMin}
}

// try reserves an attempt for k at now. It reports false, with how long
// to wait, when k has used up its attempts.
func (l *pinLimiter) try(k pinKey, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := recent(l.fails[k], now)
	if len(ts) >= pinMaxFailures {
		l.fails[k] = ts
		return ts[0].Add(pinWindow).Sub(now), false
	}
	l.fails[k] = append(ts, now)
	if len(l.fails) >= l.sweepAt {
		l.sweep(now)
	}
	return 0, true
}

// forgive clears k's failures after a right PIN.
func (l *pinLimiter) forgive(k pinKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, k)
}

// sweep drops keys without recent failures and sets the next sweep at
// twice the size left, so sweeping stays amortised O(1) per attempt.
func (l *pinLimiter) sweep(now time.Time) {
	for k, ts := range l.fails {
		if len(recent(ts, now)) == 0 {
			delete(l.fails, k)
		}
	}
	l.sweepAt = max(pinSweepMin, 2*len(l.fails))
}

// recent drops the times that left the window.
func recent(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= pinWindow {
		i++
	}
	return ts[i:]
}

// clientPrefix is the network a request comes from, as the limiter counts
// it: the IPv4 address, or the IPv6 /64 (one subscriber's LAN, whose
// addresses a client can change at will).
func clientPrefix(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Prefix{} // all unparsable addresses share one bucket
	}
	ip := ap.Addr().Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// roomLockedOut returns how long room id's PIN entry is locked out over
// all clients and callers (0 when it is not, without room lockouts, or
// when they cannot be read).
func (j *joinPage) roomLockedOut(ctx context.Context, id room.ID) time.Duration {
	if j.roomLockouts == nil {
		return 0
	}
	until, err := j.roomLockouts.Locked(ctx, string(id))
	if err != nil || !until.After(j.auth.now()) {
		return 0
	}
	return max(until.Sub(j.auth.now()), time.Second)
}

// roomFailed records a wrong PIN for room id; the failure that locks the
// room (it was not locked a moment ago) logs the lockout, once, with the
// room and nothing of the client.
func (j *joinPage) roomFailed(ctx context.Context, id room.ID) {
	if j.roomLockouts == nil {
		return
	}
	if until, err := j.roomLockouts.Fail(ctx, string(id)); err == nil && !until.IsZero() {
		j.log.Warn("join: room PIN entry locked out", "room", string(id), "until", until.UTC().Format(time.RFC3339))
	}
}
