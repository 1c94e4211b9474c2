package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testLockoutPolicy scales the lockout policy to a backend's TTL, so the
// Redis run waits out lockouts of a few hundred milliseconds.
func testLockoutPolicy(ttl time.Duration) LockoutPolicy {
	return LockoutPolicy{Failures: 3, Window: 4 * ttl, Base: ttl, Max: 4 * ttl}
}

// runLockoutConformance holds Lockouts to its contract.
func runLockoutConformance(t *testing.T, newBackend func(t *testing.T) backendUnderTest) {
	ctx := context.Background()
	const key = "pin:board:192.0.2.1"

	// lockedFor checks that until is about d from now (Redis answers with
	// the time left, which has moved on by the time it is read).
	lockedFor := func(t *testing.T, b backendUnderTest, d time.Duration, until time.Time) {
		t.Helper()
		require.False(t, until.IsZero(), "want locked for %v", d)
		require.InDelta(t, float64(d), float64(until.Sub(b.now())), float64(b.ttl/4))
	}
	notLocked := func(t *testing.T, b backendUnderTest, key string) {
		t.Helper()
		until, err := b.locks.Locked(ctx, key)
		require.NoError(t, err)
		require.True(t, until.IsZero(), "locked until %v", until)
	}
	// failN fails key n times and returns the last answer.
	failN := func(t *testing.T, b backendUnderTest, key string, n int) time.Time {
		t.Helper()
		var until time.Time
		for i := range n {
			var err error
			until, err = b.locks.Fail(ctx, key)
			require.NoError(t, err)
			if i < n-1 {
				require.True(t, until.IsZero(), "failure %d locked already", i+1)
			}
		}
		return until
	}
	awaitUnlocked := func(t *testing.T, b backendUnderTest, key string) {
		t.Helper()
		eventually(t, b, "lockout ends", func() bool {
			until, err := b.locks.Locked(ctx, key)
			require.NoError(t, err)
			return until.IsZero()
		})
	}

	t.Run("locked at the limit, not before, and each lockout doubles up to max", func(t *testing.T) {
		b := newBackend(t)
		p := testLockoutPolicy(b.ttl)
		notLocked(t, b, key)
		require.True(t, failN(t, b, key, p.Failures-1).IsZero())
		notLocked(t, b, key)
		until, err := b.locks.Fail(ctx, key)
		require.NoError(t, err)
		lockedFor(t, b, p.Base, until)
		locked, err := b.locks.Locked(ctx, key)
		require.NoError(t, err)
		lockedFor(t, b, p.Base, locked)
		notLocked(t, b, "pin:board:192.0.2.2") // keys are independent

		again, err := b.locks.Fail(ctx, key)
		require.NoError(t, err)
		lockedFor(t, b, p.Base, again) // a failure while locked extends nothing

		for _, want := range []time.Duration{2 * p.Base, 4 * p.Base, p.Max} {
			awaitUnlocked(t, b, key)
			lockedFor(t, b, want, failN(t, b, key, p.Failures))
		}
	})

	t.Run("failures outside the window start over", func(t *testing.T) {
		b := newBackend(t)
		p := testLockoutPolicy(b.ttl)
		failN(t, b, key, p.Failures-1)
		b.sleep(p.Window + b.ttl/4)
		require.True(t, failN(t, b, key, p.Failures-1).IsZero(), "the old failures no longer count")
		until, err := b.locks.Fail(ctx, key)
		require.NoError(t, err)
		lockedFor(t, b, p.Base, until)
	})

	t.Run("reset forgets failures and lockouts", func(t *testing.T) {
		b := newBackend(t)
		p := testLockoutPolicy(b.ttl)
		failN(t, b, key, p.Failures-1)
		require.NoError(t, b.locks.Reset(ctx, key))
		require.True(t, failN(t, b, key, p.Failures-1).IsZero(), "reset cleared the count")

		lockedFor(t, b, p.Base, failN(t, b, key, 1))
		awaitUnlocked(t, b, key)
		require.NoError(t, b.locks.Reset(ctx, key))
		lockedFor(t, b, p.Base, failN(t, b, key, p.Failures)) // not 2 × base
		require.NoError(t, b.locks.Reset(ctx, key))
		notLocked(t, b, key)
		require.NoError(t, b.locks.Reset(ctx, "never-failed"))
	})

	t.Run("the lockout count decays after max without failures", func(t *testing.T) {
		b := newBackend(t)
		p := testLockoutPolicy(b.ttl)
		lockedFor(t, b, p.Base, failN(t, b, key, p.Failures))
		awaitUnlocked(t, b, key)
		lockedFor(t, b, 2*p.Base, failN(t, b, key, p.Failures))
		awaitUnlocked(t, b, key)
		b.sleep(p.Max + b.ttl/4)
		lockedFor(t, b, p.Base, failN(t, b, key, p.Failures))
	})
}

// TestLockoutPolicyDefaults: zero fields take the documented defaults and
// lockouts double up to Max.
func TestLockoutPolicyDefaults(t *testing.T) {
	p := LockoutPolicy{}.withDefaults()
	require.Equal(t, LockoutPolicy{Failures: 5, Window: 5 * time.Minute, Base: time.Minute, Max: time.Hour}, p)
	var got []time.Duration
	for n := 1; n <= 9; n++ {
		got = append(got, p.lockFor(n))
	}
	require.Equal(t, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour, time.Hour}, got)
	require.Equal(t, "5 failures in 5m0s: locked 1m0s, doubling up to 1h0m0s", p.String())
}

// TestMemoryLockoutsStayBounded: keys with nothing left to remember are
// swept, so a flood of one-off keys cannot grow the map without bound.
func TestMemoryLockoutsStayBounded(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	m := NewMemory(WithClock(clk))
	for i := range 10_000 {
		_, err := m.Fail(ctx, "k"+time.Duration(i).String())
		require.NoError(t, err)
		clk.Advance(time.Minute)
	}
	m.mu.Lock()
	n := len(m.lockouts)
	m.mu.Unlock()
	require.Less(t, n, 300)
}
