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

// WithLockoutPolicy sets when and how long Lockouts lock a key out.
func WithLockoutPolicy(p LockoutPolicy) Option { return func(c *config) { c.lockout = p } }

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
func (m *Memory) lockout(key string, now time.Time) memLockout {
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
func (m *Memory) Fail(_ context.Context, key string) (time.Time, error) {
	p := m.cfg.lockout
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.clock.Now()
	s := m.lockout(key, now)
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
	m.lockouts[key] = s
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
func (m *Memory) Locked(_ context.Context, key string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lockout(key, m.cfg.clock.Now()).lockedUntil, nil
}

// Reset implements Lockouts.
func (m *Memory) Reset(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.lockouts, key)
	return nil
}

func (r *Redis) lockoutKeys(key string) []string {
	base := r.cfg.prefix + ":lockout:{" + key + "}"
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
	p := r.cfg.lockout
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	ms, err := failScript.Run(ctx, r.c, r.lockoutKeys(key), p.Failures,
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
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	d, err := r.c.PTTL(ctx, r.lockoutKeys(key)[1]).Result()
	if err != nil {
		return time.Time{}, backend("locked", err)
	}
	// go-redis reports a missing key as -2 ns and no expiry as -1 ns.
	return untilFrom(d.Milliseconds()), nil
}

// Reset implements Lockouts.
func (r *Redis) Reset(ctx context.Context, key string) error {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	if err := r.c.Del(ctx, r.lockoutKeys(key)...).Err(); err != nil {
		return backend("lockout reset", err)
	}
	return nil
}

// String describes the policy for logs and errors.
func (p LockoutPolicy) String() string {
	return fmt.Sprintf("%d failures in %s: locked %s, doubling up to %s", p.Failures, p.Window, p.Base, p.Max)
}
