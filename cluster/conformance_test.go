package cluster

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// backendUnderTest is one implementation of the cluster interfaces plus the
// means to let time pass for it.
type backendUnderTest struct {
	reg    Registry
	leases Leases
	fence  Fence
	bans   Bans
	events Events
	index  RecordingsIndex
	locks  Lockouts
	store  LockoutStore // for NewLockouts
	keys   KeyRecords
	// ttl is the lease and node TTL the implementation was built with.
	ttl time.Duration
	// sleep lets d pass: the fake clock moves, or the test really sleeps.
	sleep func(d time.Duration)
	// now is the implementation's idea of the current time.
	now func() time.Time
	// wipe forgets all state, as a Redis restart without persistence
	// (or FLUSHALL) does.
	wipe func()
}

// eventually lets time pass in small steps until cond holds, failing after
// 20 TTLs, so an expiry that never happens fails instead of hanging.
func eventually(t *testing.T, b backendUnderTest, what string, cond func() bool) {
	t.Helper()
	step := b.ttl / 8
	for range 160 {
		if cond() {
			return
		}
		b.sleep(step)
	}
	t.Fatalf("%s: not within %v", what, 20*b.ttl)
}

func TestConformanceMemory(t *testing.T) {
	runConformance(t, func(t *testing.T) backendUnderTest {
		clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
		const ttl = 5 * time.Second
		m := NewMemory(WithClock(clk), WithLeaseTTL(ttl), WithNodeTTL(ttl), WithLockoutPolicy(testLockoutPolicy(ttl)))
		return backendUnderTest{reg: m, leases: m, fence: m, bans: m, events: m, index: m, locks: m, store: m, keys: m, ttl: ttl, sleep: clk.Advance, now: clk.Now,
			wipe: func() { wipeMemory(m) }}
	})
}

func TestConformanceRedis(t *testing.T) {
	addr := startRedis(t)
	runConformance(t, func(t *testing.T) backendUnderTest {
		const ttl = 400 * time.Millisecond
		r := NewRedis(addr, WithLeaseTTL(ttl), WithNodeTTL(ttl), WithKeyPrefix(t.Name()), WithLockoutPolicy(testLockoutPolicy(ttl)))
		t.Cleanup(func() { require.NoError(t, r.Close()) })
		return backendUnderTest{reg: r, leases: r, fence: r, bans: r, events: r, index: r, locks: r, store: r, keys: r, ttl: ttl, sleep: time.Sleep, now: time.Now,
			wipe: func() { require.NoError(t, r.c.FlushAll(context.Background()).Err()) }}
	})
}

func runConformance(t *testing.T, newBackend func(t *testing.T) backendUnderTest) {
	t.Run("recordings index", func(t *testing.T) { runIndexConformance(t, newBackend) })
	t.Run("lockouts", func(t *testing.T) { runLockoutConformance(t, newBackend, ownLockouts) })
	t.Run("namespaced lockouts", func(t *testing.T) { runLockoutConformance(t, newBackend, roomLockouts) })
	t.Run("namespaces apart", func(t *testing.T) { runLockoutNamespaces(t, newBackend) })
	t.Run("key records", func(t *testing.T) { runKeyRecordsConformance(t, newBackend) })
	ctx := context.Background()
	const room RoomID = "room-1"

	t.Run("acquire and contend", func(t *testing.T) {
		b := newBackend(t)
		la, err := b.leases.Acquire(ctx, room, "a")
		require.NoError(t, err)
		require.Equal(t, room, la.Room)
		require.Equal(t, NodeID("a"), la.Owner)
		require.NotEmpty(t, la.Token)
		require.Positive(t, la.Epoch)

		_, err = b.leases.Acquire(ctx, room, "b")
		require.ErrorIs(t, err, ErrLeaseHeld)
		_, err = b.leases.Acquire(ctx, room, "a")
		require.ErrorIs(t, err, ErrLeaseHeld, "even the holder cannot take a second lease")

		own, err := b.leases.Owner(ctx, room)
		require.NoError(t, err)
		require.Equal(t, Lease{Room: room, Owner: "a", Epoch: la.Epoch}, own, "owner lookup never reveals the token")
		require.NoError(t, b.fence.CheckEpoch(ctx, room, la.Epoch))
		require.ErrorIs(t, b.fence.CheckEpoch(ctx, room, la.Epoch+1), ErrStaleEpoch)

		_, err = b.leases.Owner(ctx, "other")
		require.ErrorIs(t, err, ErrNoOwner)
		lo, err := b.leases.Acquire(ctx, "other", "b")
		require.NoError(t, err, "rooms are leased independently")
		require.Positive(t, lo.Epoch)
	})

	t.Run("renew keeps, silence expires", func(t *testing.T) {
		b := newBackend(t)
		l, err := b.leases.Acquire(ctx, room, "a")
		require.NoError(t, err)
		for range 8 { // 8 × TTL/4 = twice the TTL
			b.sleep(b.ttl / 4)
			require.NoError(t, b.leases.Renew(ctx, l))
		}
		own, err := b.leases.Owner(ctx, room)
		require.NoError(t, err, "renewed lease outlived its first TTL")
		require.Equal(t, NodeID("a"), own.Owner)

		eventually(t, b, "unrenewed lease expires", func() bool {
			_, err := b.leases.Owner(ctx, room)
			return errors.Is(err, ErrNoOwner)
		})
		require.ErrorIs(t, b.leases.Renew(ctx, l), ErrLeaseLost)
		require.ErrorIs(t, b.fence.CheckEpoch(ctx, room, l.Epoch), ErrStaleEpoch)
	})

	t.Run("takeover raises epoch and fences the old owner", func(t *testing.T) {
		b := newBackend(t)
		la, err := b.leases.Acquire(ctx, room, "a")
		require.NoError(t, err)
		var lb Lease
		eventually(t, b, "b takes the room after a's lease expires", func() bool {
			lb, err = b.leases.Acquire(ctx, room, "b")
			if err != nil {
				require.ErrorIs(t, err, ErrLeaseHeld)
			}
			return err == nil
		})
		require.Greater(t, lb.Epoch, la.Epoch)
		require.NotEqual(t, la.Token, lb.Token)

		require.ErrorIs(t, b.fence.CheckEpoch(ctx, room, la.Epoch), ErrStaleEpoch, "old owner's write refused")
		require.NoError(t, b.fence.CheckEpoch(ctx, room, lb.Epoch))
		require.ErrorIs(t, b.leases.Renew(ctx, la), ErrLeaseLost, "old owner cannot extend the new lease")
		require.ErrorIs(t, b.leases.Release(ctx, la), ErrLeaseLost, "old owner cannot release the new lease")
		own, err := b.leases.Owner(ctx, room)
		require.NoError(t, err)
		require.Equal(t, NodeID("b"), own.Owner)
		require.Equal(t, lb.Epoch, own.Epoch)
	})

	t.Run("release only by owner", func(t *testing.T) {
		b := newBackend(t)
		la, err := b.leases.Acquire(ctx, room, "a")
		require.NoError(t, err)
		for _, forged := range []Lease{
			{Room: room, Owner: "b", Token: "guess", Epoch: la.Epoch},
			{Room: room, Owner: "a", Token: "guess", Epoch: la.Epoch},
			{Room: room, Owner: "a", Token: la.Token, Epoch: la.Epoch + 1},
		} {
			require.ErrorIs(t, b.leases.Release(ctx, forged), ErrLeaseLost, "%+v", forged)
		}
		require.NoError(t, b.fence.CheckEpoch(ctx, room, la.Epoch), "forged releases changed nothing")

		require.NoError(t, b.leases.Release(ctx, la))
		_, err = b.leases.Owner(ctx, room)
		require.ErrorIs(t, err, ErrNoOwner)
		require.ErrorIs(t, b.fence.CheckEpoch(ctx, room, la.Epoch), ErrStaleEpoch, "released epoch is stale")
		require.ErrorIs(t, b.leases.Release(ctx, la), ErrLeaseLost, "second release")

		again, err := b.leases.Acquire(ctx, room, "a")
		require.NoError(t, err, "released room is free at once")
		require.Equal(t, la.Epoch+1, again.Epoch)
	})

	t.Run("reassert after the store lost everything", func(t *testing.T) {
		b := newBackend(t)
		la, err := b.leases.Acquire(ctx, room, "a")
		require.NoError(t, err)
		require.NoError(t, b.leases.Release(ctx, la))
		la, err = b.leases.Acquire(ctx, room, "a") // epoch 2: the counter matters
		require.NoError(t, err)

		b.wipe()
		_, err = b.leases.Owner(ctx, room)
		require.ErrorIs(t, err, ErrNoOwner, "the wipe took the lease")
		require.NoError(t, b.leases.Reassert(ctx, la))
		own, err := b.leases.Owner(ctx, room)
		require.NoError(t, err)
		require.Equal(t, Lease{Room: room, Owner: "a", Epoch: la.Epoch}, own)
		require.NoError(t, b.fence.CheckEpoch(ctx, room, la.Epoch))
		require.NoError(t, b.leases.Renew(ctx, la), "the same token renews the reasserted lease")
		_, err = b.leases.Acquire(ctx, room, "b")
		require.ErrorIs(t, err, ErrLeaseHeld)

		require.NoError(t, b.leases.Release(ctx, la))
		lb, err := b.leases.Acquire(ctx, room, "b")
		require.NoError(t, err)
		require.Greater(t, lb.Epoch, la.Epoch, "the counter was restored: no epoch is handed out twice")
	})

	t.Run("a refused reassert still restores the counter", func(t *testing.T) {
		b := newBackend(t)
		for range 3 {
			l, err := b.leases.Acquire(ctx, room, "a")
			require.NoError(t, err)
			require.NoError(t, b.leases.Release(ctx, l))
		}
		la, err := b.leases.Acquire(ctx, room, "a")
		require.NoError(t, err)
		require.Equal(t, uint64(4), la.Epoch)
		b.wipe()
		// Another node may already have acquired the room in the store
		// that came back empty (epoch 1): then a's reassert must fail.
		lb, err := b.leases.Acquire(ctx, room, "b")
		require.NoError(t, err)
		require.Equal(t, uint64(1), lb.Epoch)
		require.ErrorIs(t, b.leases.Reassert(ctx, la), ErrLeaseLost, "another node holds the room now")
		own, err := b.leases.Owner(ctx, room)
		require.NoError(t, err)
		require.Equal(t, NodeID("b"), own.Owner, "a refused reassert leaves the holder alone")
		require.NoError(t, b.leases.Release(ctx, lb))
		lc, err := b.leases.Acquire(ctx, room, "c")
		require.NoError(t, err)
		require.Equal(t, la.Epoch+1, lc.Epoch, "epochs 2..4 are never handed out twice")
		require.NoError(t, b.leases.Release(ctx, lc))
		require.ErrorIs(t, b.leases.Reassert(ctx, la), ErrLeaseLost, "a is superseded now")
	})

	t.Run("reassert renews, refuses others and superseded leases", func(t *testing.T) {
		b := newBackend(t)
		la, err := b.leases.Acquire(ctx, room, "a")
		require.NoError(t, err)
		for range 8 { // 8 × TTL/4 = twice the TTL
			b.sleep(b.ttl / 4)
			require.NoError(t, b.leases.Reassert(ctx, la), "same value: renewed")
		}
		require.NoError(t, b.fence.CheckEpoch(ctx, room, la.Epoch))

		forged := la
		forged.Token = "guess"
		require.ErrorIs(t, b.leases.Reassert(ctx, forged), ErrLeaseLost, "another token")
		require.ErrorIs(t, b.leases.Reassert(ctx, Lease{Room: room, Owner: "a"}), ErrLeaseLost, "no token, no epoch")

		require.NoError(t, b.leases.Release(ctx, la))
		lb, err := b.leases.Acquire(ctx, room, "b")
		require.NoError(t, err)
		require.ErrorIs(t, b.leases.Reassert(ctx, la), ErrLeaseLost, "taken over")
		require.NoError(t, b.leases.Release(ctx, lb))
		require.ErrorIs(t, b.leases.Reassert(ctx, la), ErrLeaseLost, "superseded: the counter is past la's epoch")
		_, err = b.leases.Owner(ctx, room)
		require.ErrorIs(t, err, ErrNoOwner, "a refused reassert sets nothing")

		// A lease that merely expired, with nobody after it, comes back.
		lc, err := b.leases.Acquire(ctx, room, "c")
		require.NoError(t, err)
		eventually(t, b, "c's lease expires", func() bool {
			_, err := b.leases.Owner(ctx, room)
			return errors.Is(err, ErrNoOwner)
		})
		require.NoError(t, b.leases.Reassert(ctx, lc))
		require.NoError(t, b.fence.CheckEpoch(ctx, room, lc.Epoch))
	})

	t.Run("concurrent acquire has one winner", func(t *testing.T) {
		b := newBackend(t)
		var wg sync.WaitGroup
		wins := make(chan Lease, 8)
		for i := range 8 {
			wg.Go(func() {
				l, err := b.leases.Acquire(ctx, room, NodeID("n"+strconv.Itoa(i)))
				if err == nil {
					wins <- l
				} else if !errors.Is(err, ErrLeaseHeld) {
					t.Errorf("acquire: %v", err)
				}
			})
		}
		wg.Wait()
		close(wins)
		var got []Lease
		for l := range wins {
			got = append(got, l)
		}
		require.Len(t, got, 1)
		own, err := b.leases.Owner(ctx, room)
		require.NoError(t, err)
		require.Equal(t, got[0].Owner, own.Owner)
	})

	t.Run("registry ttl", func(t *testing.T) {
		b := newBackend(t)
		nodes, err := b.reg.Nodes(ctx)
		require.NoError(t, err)
		require.Empty(t, nodes)

		a := NodeInfo{ID: "a", SIPAddr: "10.0.0.1:5060", HTTPURL: "http://10.0.0.1:8080", Calls: 3, Rooms: 1, CPU: 0.25}
		nb := NodeInfo{ID: "b", SIPAddr: "10.0.0.2:5060", HTTPURL: "http://10.0.0.2:8080"}
		require.NoError(t, b.reg.Heartbeat(ctx, nb))
		require.NoError(t, b.reg.Heartbeat(ctx, a))
		nodes, err = b.reg.Nodes(ctx)
		require.NoError(t, err)
		require.Equal(t, []NodeInfo{a, nb}, nodes)

		a.Calls = 4
		require.NoError(t, b.reg.Heartbeat(ctx, a))
		nodes, err = b.reg.Nodes(ctx)
		require.NoError(t, err)
		require.Equal(t, []NodeInfo{a, nb}, nodes, "latest heartbeat wins")

		eventually(t, b, "silent node a expires while b beats", func() bool {
			require.NoError(t, b.reg.Heartbeat(ctx, nb))
			nodes, err := b.reg.Nodes(ctx)
			require.NoError(t, err)
			return len(nodes) == 1 && nodes[0] == nb
		})
		require.NoError(t, b.reg.Heartbeat(ctx, a))
		nodes, err = b.reg.Nodes(ctx)
		require.NoError(t, err)
		require.Equal(t, []NodeInfo{a, nb}, nodes, "a returns with its next heartbeat")
	})

	t.Run("bans expire", func(t *testing.T) {
		b := newBackend(t)
		require.NoError(t, b.bans.Ban(ctx, "192.0.2.1", b.now().Add(b.ttl)))
		require.NoError(t, b.bans.Ban(ctx, "192.0.2.9", b.now().Add(-time.Second)))
		for addr, want := range map[string]bool{"192.0.2.1": true, "192.0.2.2": false, "192.0.2.9": false} {
			got, err := b.bans.IsBanned(ctx, addr)
			require.NoError(t, err)
			require.Equal(t, want, got, addr)
		}
		eventually(t, b, "ban ends", func() bool {
			banned, err := b.bans.IsBanned(ctx, "192.0.2.1")
			require.NoError(t, err)
			return !banned
		})
	})

	t.Run("events reach every subscriber of the topic", func(t *testing.T) {
		b := newBackend(t)
		s1, err := b.events.Subscribe(ctx, "rooms", 4)
		require.NoError(t, err)
		s2, err := b.events.Subscribe(ctx, "rooms", 4)
		require.NoError(t, err)
		other, err := b.events.Subscribe(ctx, "bans", 4)
		require.NoError(t, err)
		defer func() { require.NoError(t, other.Close()) }()

		require.NoError(t, b.events.Publish(ctx, "rooms", []byte("moved room-1")))
		for _, s := range []*Subscription{s1, s2} {
			select {
			case got := <-s.C:
				require.Equal(t, "moved room-1", string(got))
			case <-time.After(5 * time.Second):
				t.Fatal("notice not delivered")
			}
		}
		require.NoError(t, s1.Close())
		require.NoError(t, s1.Close(), "second Close is harmless")
		_, open := <-s1.C
		require.False(t, open, "Close closes C")

		require.NoError(t, b.events.Publish(ctx, "rooms", []byte("again")))
		select {
		case got := <-s2.C:
			require.Equal(t, "again", string(got))
		case <-time.After(5 * time.Second):
			t.Fatal("remaining subscriber lost the notice")
		}
		require.NoError(t, s2.Close())
		select {
		case got := <-other.C:
			t.Fatalf("other topic received %q", got)
		default:
		}
	})
}
