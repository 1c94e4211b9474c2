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

// testRoomPolicy is a second policy, unlike testLockoutPolicy in every
// field, for Lockouts made with NewLockouts.
func testRoomPolicy(ttl time.Duration) LockoutPolicy {
	return LockoutPolicy{Failures: 4, Window: 3 * ttl, Base: ttl / 2, Max: 2 * ttl}
}

// lockoutsUnderTest picks the Lockouts of a backend to test and the
// policy they were made with.
type lockoutsUnderTest func(b backendUnderTest) (Lockouts, LockoutPolicy)

// ownLockouts are the state's own Lockouts (WithLockoutPolicy).
func ownLockouts(b backendUnderTest) (Lockouts, LockoutPolicy) {
	return b.locks, testLockoutPolicy(b.ttl)
}

// roomLockouts are Lockouts of namespace "room" with a policy of their own.
func roomLockouts(b backendUnderTest) (Lockouts, LockoutPolicy) {
	p := testRoomPolicy(b.ttl)
	return NewLockouts(b.store, "room", p), p
}

// runLockoutConformance holds the Lockouts that pick chooses to their
// contract under the policy they were made with.
func runLockoutConformance(t *testing.T, newBackendOf func(t *testing.T) backendUnderTest, pick lockoutsUnderTest) {
	ctx := context.Background()
	// newBackend is newBackendOf with b.locks the Lockouts under test;
	// policy is their policy.
	policy := func(b backendUnderTest) LockoutPolicy {
		_, p := pick(b)
		return p
	}
	newBackend := func(t *testing.T) backendUnderTest {
		b := newBackendOf(t)
		b.locks, _ = pick(b)
		return b
	}
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
		p := policy(b)
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
		p := policy(b)
		failN(t, b, key, p.Failures-1)
		b.sleep(p.Window + b.ttl/4)
		require.True(t, failN(t, b, key, p.Failures-1).IsZero(), "the old failures no longer count")
		until, err := b.locks.Fail(ctx, key)
		require.NoError(t, err)
		lockedFor(t, b, p.Base, until)
	})

	t.Run("reset forgets failures and lockouts", func(t *testing.T) {
		b := newBackend(t)
		p := policy(b)
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
		p := policy(b)
		lockedFor(t, b, p.Base, failN(t, b, key, p.Failures))
		awaitUnlocked(t, b, key)
		lockedFor(t, b, 2*p.Base, failN(t, b, key, p.Failures))
		awaitUnlocked(t, b, key)
		b.sleep(p.Max + b.ttl/4)
		lockedFor(t, b, p.Base, failN(t, b, key, p.Failures))
	})
}

// runLockoutNamespaces: the state's own Lockouts and those of two
// namespaces keep one key apart, each under its own policy.
func runLockoutNamespaces(t *testing.T, newBackend func(t *testing.T) backendUnderTest) {
	ctx := context.Background()
	b := newBackend(t)
	own, ownP := ownLockouts(b)
	room, roomP := roomLockouts(b)
	other := NewLockouts(b.store, "other", roomP)
	require.Less(t, ownP.Failures, roomP.Failures)
	const key = "board"
	for range ownP.Failures {
		_, err := own.Fail(ctx, key)
		require.NoError(t, err)
	}
	for _, l := range []Lockouts{room, other} {
		until, err := l.Locked(ctx, key)
		require.NoError(t, err)
		require.True(t, until.IsZero(), "the state's own lockout shows in a namespace")
	}
	for i := range roomP.Failures {
		until, err := room.Fail(ctx, key)
		require.NoError(t, err)
		require.Equal(t, i == roomP.Failures-1, !until.IsZero(), "room failure %d: the own failures counted", i+1)
	}
	until, err := other.Locked(ctx, key)
	require.NoError(t, err)
	require.True(t, until.IsZero(), "namespace room's lockout shows in namespace other")
	require.NoError(t, own.Reset(ctx, key))
	until, err = room.Locked(ctx, key)
	require.NoError(t, err)
	require.False(t, until.IsZero(), "resetting the own key reset the namespace's")
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
