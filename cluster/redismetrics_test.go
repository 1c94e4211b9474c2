package cluster

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// opsOf returns the counters of command name.
func opsOf(r *Redis, name string) RedisOpStats {
	for _, s := range r.OpStats() {
		if s.Command == name {
			return s
		}
	}
	return RedisOpStats{Command: name}
}

// TestRedisOpStats against a real redis-server: commands are counted by
// name with their latency; a missing key and a script's first run
// (NOSCRIPT, retried by go-redis) are no errors; calls to a frozen
// server are.
func TestRedisOpStats(t *testing.T) {
	addr, proc := startRedisProcess(t)
	const timeout = 200 * time.Millisecond
	r := NewRedis(addr, WithTimeout(timeout))
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	ctx := context.Background()

	require.NoError(t, r.Ping(ctx))
	_, err := r.Owner(ctx, "nobody") // GET of a missing key: redis.Nil
	require.ErrorIs(t, err, ErrNoOwner)
	_, err = r.Acquire(ctx, "room", "a") // a script: EVALSHA, then EVAL on NOSCRIPT
	require.NoError(t, err)
	ping := opsOf(r, "ping")
	require.Equal(t, uint64(1), ping.Ops)
	require.Equal(t, uint64(1), ping.Seconds.Count)
	require.Greater(t, ping.Seconds.Sum, 0.0)
	require.Less(t, ping.Seconds.Sum, 1.0)
	for _, s := range r.OpStats() {
		require.Zero(t, s.Errors, "%s: no failure yet", s.Command)
	}
	require.Positive(t, opsOf(r, "get").Ops)
	require.Positive(t, opsOf(r, "evalsha").Ops)

	require.NoError(t, proc.Signal(syscall.SIGSTOP))
	require.Error(t, r.Ping(ctx))
	require.NoError(t, proc.Signal(syscall.SIGCONT))
	ping = opsOf(r, "ping")
	require.Equal(t, uint64(2), ping.Ops)
	require.Equal(t, uint64(1), ping.Errors)
}
