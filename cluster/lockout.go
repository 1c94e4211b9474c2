package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lockouts counts failed PIN attempts per key (a room and a caller, say) on
// every node at once, so a guesser cannot spread attempts over the nodes,
// and locks a key out for longer each time it is locked out again.
type Lockouts interface {
	// Fail records a failed attempt for key and returns until when key is
	// locked (the zero time when it is not). A failure while key is locked
	// is not counted: it returns the running lockout unchanged.
	Fail(ctx context.Context, key string) (time.Time, error)
	// Locked returns until when key is locked now (zero when it is not).
	Locked(ctx context.Context, key string) (time.Time, error)
	// Reset forgets key's failures and lockouts (after a success).
	Reset(ctx context.Context, key string) error
}

// LockoutPolicy says when a key is locked out and for how long: Failures
// failures within Window (counted from the first of them) lock it for
// Base; each further lockout of the same key doubles that, up to Max. The
// count of lockouts decays to zero after Max without a failure (counted
// from the end of the last lockout). Zero fields take the defaults.
type LockoutPolicy struct {
	Failures int
	Window   time.Duration
	Base     time.Duration
	Max      time.Duration
}

// Defaults of LockoutPolicy: five wrong PINs in five minutes cost a minute,
// then 2, 4, 8 ... up to an hour, which stops guessing a 4-digit PIN
// without locking out for long a caller who mistyped.
const (
	DefaultLockoutFailures = 5
	DefaultLockoutWindow   = 5 * time.Minute
	DefaultLockoutBase     = time.Minute
	DefaultLockoutMax      = time.Hour
)

// WithLockoutPolicy sets when and how long the state's own Lockouts (the
// Fail, Locked and Reset methods of Memory and Redis) lock a key out;
// NewLockouts makes Lockouts with a policy of their own.
func WithLockoutPolicy(p LockoutPolicy) Option { return func(c *config) { c.lockout = p } }

// LockoutStore is cluster state that can keep Lockouts under more than one
// policy: *Memory and *Redis (the methods are unexported, so no other type
// implements it).
type LockoutStore interface {
	failIn(ctx context.Context, ns, key string, p LockoutPolicy) (time.Time, error)
	lockedIn(ctx context.Context, ns, key string) (time.Time, error)
	resetIn(ctx context.Context, ns, key string) error
}

var (
	_ LockoutStore = (*Memory)(nil)
	_ LockoutStore = (*Redis)(nil)
)

// NewLockouts returns Lockouts kept in s under policy p (zero fields take
// the defaults), with their keys in namespace ns: apart from s's own
// Lockouts and from those of any other namespace, so one key (a room,
// say) can be counted under two policies at once. ns is a short word
// without ':', '{' or '}'; the empty ns is s's own keys (with p instead
// of s's policy), which is rarely what is wanted.
func NewLockouts(s LockoutStore, ns string, p LockoutPolicy) Lockouts {
	return nsLockouts{s: s, ns: ns, p: p.withDefaults()}
}

// nsLockouts are Lockouts in a namespace of a LockoutStore.
type nsLockouts struct {
	s  LockoutStore
	ns string
	p  LockoutPolicy
}

// Fail implements Lockouts.
func (l nsLockouts) Fail(ctx context.Context, key string) (time.Time, error) {
	return l.s.failIn(ctx, l.ns, key, l.p)
}

// Locked implements Lockouts.
func (l nsLockouts) Locked(ctx context.Context, key string) (time.Time, error) {
	return l.s.lockedIn(ctx, l.ns, key)
}

// Reset implements Lockouts.
func (l nsLockouts) Reset(ctx context.Context, key string) error { return l.s.resetIn(ctx, l.ns, key) }

// withDefaults fills the zero fields of p.
func (p LockoutPolicy) withDefaults() LockoutPolicy {
	if p.Failures <= 0 {
		p.Failures = DefaultLockoutFailures
	}
	if p.Window <= 0 {
		p.Window = DefaultLockoutWindow
	}
	if p.Base <= 0 {
		p.Base = DefaultLockoutBase
	}
	if p.Max <= 0 {
		p.Max = DefaultLockoutMax
	}
	p.Max = max(p.Max, p.Base)
	return p
}

// lockFor is how long the n-th lockout (n ≥ 1) of a key lasts.
func (p LockoutPolicy) lockFor(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

var (
	_ Lockouts = (*Memory)(nil)
	_ Lockouts = (*Redis)(nil)
)

// memLockoutKey is a key of Memory's lockouts: the namespace (empty for
// the state's own) and the key.
type memLockoutKey struct{ ns, key string }

// memLockout is one key's state in Memory.
type memLockout struct {
	fails       int
	windowEnds  time.Time
	lockedUntil time.Time
	level       int       // lockouts so far
	levelEnds   time.Time // when level decays to zero
}

// lockout returns key's state with everything expired cleared; the caller
// holds m.mu.
func (m *Memory) lockout(key memLockoutKey, now time.Time) memLockout {
	s := m.lockouts[key]
	if !now.Before(s.windowEnds) {
		s.fails = 0
	}
	if !now.Before(s.levelEnds) {
		s.level = 0
	}
	if !now.Before(s.lockedUntil) {
		s.lockedUntil = time.Time{}
	}
	return s
}

// Fail implements Lockouts.
func (m *Memory) Fail(ctx context.Context, key string) (time.Time, error) {
	return m.failIn(ctx, "", key, m.cfg.lockout)
}

// failIn is Fail for key of namespace ns under policy p.
func (m *Memory) failIn(_ context.Context, ns, key string, p LockoutPolicy) (time.Time, error) {
	k := memLockoutKey{ns, key}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.clock.Now()
	s := m.lockout(k, now)
	if !s.lockedUntil.IsZero() {
		return s.lockedUntil, nil
	}
	if s.fails == 0 {
		s.windowEnds = now.Add(p.Window)
	}
	s.fails++
	if s.levelEnds.Before(now.Add(p.Max)) {
		s.levelEnds = now.Add(p.Max)
	}
	if s.fails >= p.Failures {
		s.level++
		d := p.lockFor(s.level)
		s.fails, s.windowEnds = 0, time.Time{}
		s.lockedUntil = now.Add(d)
		s.levelEnds = now.Add(d + p.Max)
	}
	m.lockouts[k] = s
	if len(m.lockouts) >= m.lockoutSweepAt {
		for k := range m.lockouts {
			if s := m.lockout(k, now); s.fails == 0 && s.level == 0 && s.lockedUntil.IsZero() {
				delete(m.lockouts, k)
			}
		}
		m.lockoutSweepAt = 2*len(m.lockouts) + 64 // amortised O(1) per Fail
	}
	return s.lockedUntil, nil
}

// Locked implements Lockouts.
func (m *Memory) Locked(ctx context.Context, key string) (time.Time, error) {
	return m.lockedIn(ctx, "", key)
}

func (m *Memory) lockedIn(_ context.Context, ns, key string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lockout(memLockoutKey{ns, key}, m.cfg.clock.Now()).lockedUntil, nil
}

// Reset implements Lockouts.
func (m *Memory) Reset(ctx context.Context, key string) error { return m.resetIn(ctx, "", key) }

func (m *Memory) resetIn(_ context.Context, ns, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.lockouts, memLockoutKey{ns, key})
	return nil
}

// lockoutKeys are the Redis keys of key in namespace ns:
// PREFIX:lockout:{KEY}:... for the state's own, PREFIX:lockout.NS:{KEY}:...
// for a namespace.
func (r *Redis) lockoutKeys(ns, key string) []string {
	base := r.cfg.prefix + ":lockout"
	if ns != "" {
		base += "." + ns
	}
	base += ":{" + key + "}"
	return []string{base + ":fails", base + ":until", base + ":level"}
}

// failScript counts a failure and locks the key out when the count reaches
// the limit. Every expiry is a duration (PX), never a wall-clock time, so
// the nodes' clocks do not matter. KEYS: fails, until, level; ARGV:
// failures, window, base, max (ms). Returns the lockout's remaining ms, or
// 0 when the key is not locked.
var failScript = redis.NewScript(`
local left = redis.call('PTTL', KEYS[2])
if left > 0 then return left end
local maxms = tonumber(ARGV[4])
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('PTTL', KEYS[3]) < maxms then redis.call('PEXPIRE', KEYS[3], maxms) end
if n < tonumber(ARGV[1]) then return 0 end
local level = redis.call('INCR', KEYS[3])
local d = tonumber(ARGV[3])
for i = 2, level do
  if d >= maxms then break end
  d = d * 2
end
if d > maxms then d = maxms end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], level, 'PX', d)
redis.call('PEXPIRE', KEYS[3], d + maxms)
return d
`)

// Fail implements Lockouts.
func (r *Redis) Fail(ctx context.Context, key string) (time.Time, error) {
	return r.failIn(ctx, "", key, r.cfg.lockout)
}

func (r *Redis) failIn(ctx context.Context, ns, key string, p LockoutPolicy) (time.Time, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	ms, err := failScript.Run(ctx, r.c, r.lockoutKeys(ns, key), p.Failures,
		p.Window.Milliseconds(), p.Base.Milliseconds(), p.Max.Milliseconds()).Int64()
	if err != nil {
		return time.Time{}, backend("lockout fail", err)
	}
	return untilFrom(ms), nil
}

// untilFrom turns the milliseconds left of a lockout into a local time.
func untilFrom(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(ms) * time.Millisecond)
}

// Locked implements Lockouts.
func (r *Redis) Locked(ctx context.Context, key string) (time.Time, error) {
	return r.lockedIn(ctx, "", key)
}

func (r *Redis) lockedIn(ctx context.Context, ns, key string) (time.Time, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	d, err := r.c.PTTL(ctx, r.lockoutKeys(ns, key)[1]).Result()
	if err != nil {
		return time.Time{}, backend("locked", err)
	}
	// go-redis reports a missing key as -2 ns and no expiry as -1 ns.
	return untilFrom(d.Milliseconds()), nil
}

// Reset implements Lockouts.
func (r *Redis) Reset(ctx context.Context, key string) error { return r.resetIn(ctx, "", key) }

func (r *Redis) resetIn(ctx context.Context, ns, key string) error {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	if err := r.c.Del(ctx, r.lockoutKeys(ns, key)...).Err(); err != nil {
		return backend("lockout reset", err)
	}
	return nil
}

// String describes the policy for logs and errors.
func (p LockoutPolicy) String() string {
	return fmt.Sprintf("%d failures in %s: locked %s, doubling up to %s", p.Failures, p.Window, p.Base, p.Max)
}
