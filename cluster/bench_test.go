package cluster

import (
	"context"
	"strconv"
	"testing"
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
