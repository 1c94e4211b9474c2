package cluster

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkLeases measures what a room join costs in cluster round trips:
// taking a room (acquire, later release) and asking who owns it, through a
// real redis-server on loopback and through memory for comparison.
func BenchmarkLeases(b *testing.B) {
	addr := startRedis(b)
	r := NewRedis(addr, WithKeyPrefix("bench"))
	b.Cleanup(func() { _ = r.Close() })
	for _, impl := range []struct {
		name   string
		leases Leases
	}{{"redis", r}, {"memory", NewMemory()}} {
		ctx := context.Background()
		b.Run(impl.name+"/acquire+release", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				l, err := impl.leases.Acquire(ctx, RoomID("r"+strconv.Itoa(i%64)), "a")
				if err != nil {
					b.Fatal(err)
				}
				if err := impl.leases.Release(ctx, l); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(impl.name+"/owner", func(b *testing.B) {
			if _, err := impl.leases.Acquire(ctx, "owned", "a"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := impl.leases.Owner(ctx, "owned"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecordings measures an admin listing: the newest 50 of 1000
// recordings, all tenants, and one tenant's newest 50 when that tenant has
// a tenth of them (the list reads past the first page).
func BenchmarkRecordings(b *testing.B) {
	addr := startRedis(b)
	r := NewRedis(addr, WithKeyPrefix("bench"))
	b.Cleanup(func() { _ = r.Close() })
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for _, impl := range []struct {
		name  string
		index RecordingsIndex
	}{{"redis", r}, {"memory", NewMemory()}} {
		for i := range 1000 {
			tenant := "busy"
			if i%10 == 0 {
				tenant = "small"
			}
			e := RecordingEntry{ID: "rec-" + strconv.Itoa(i), Node: "gw1", Tenant: tenant, Room: "board",
				State: RecordingComplete, StartedAt: t0.Add(time.Duration(i) * time.Minute),
				ExpiresAt: t0.Add(720 * time.Hour), Bytes: 1 << 20, Duration: time.Hour}
			if err := impl.index.PutRecording(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
		for _, f := range []struct {
			name   string
			filter RecordingFilter
		}{{"newest50of1000", RecordingFilter{Limit: 50}}, {"tenant50of1000", RecordingFilter{Tenant: "small", Limit: 50}}} {
			b.Run(impl.name+"/"+f.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					got, err := impl.index.Recordings(ctx, f.filter)
					if err != nil || len(got) != 50 {
						b.Fatal(len(got), err)
					}
				}
			})
		}
	}
}

// BenchmarkLockoutFail measures what a wrong PIN costs in cluster round
// trips: one Fail on a fresh key (counted, not locked).
func BenchmarkLockoutFail(b *testing.B) {
	addr := startRedis(b)
	r := NewRedis(addr, WithKeyPrefix("bench"))
	b.Cleanup(func() { _ = r.Close() })
	ctx := context.Background()
	for _, impl := range []struct {
		name  string
		locks Lockouts
	}{{"redis", r}, {"memory", NewMemory()}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := impl.locks.Fail(ctx, "pin:board:"+strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
