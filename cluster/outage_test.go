package cluster

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRedisOutageHitsDeadline freezes redis-server (SIGSTOP) and checks that
// every call gives up within the configured timeout with ErrBackend, so a hung
// Redis never stalls a SIP or HTTP handler, and that service resumes after.
func TestRedisOutageHitsDeadline(t *testing.T) {
	addr, proc := startRedisProcess(t)
	const timeout = 200 * time.Millisecond
	r := NewRedis(addr, WithTimeout(timeout), WithLeaseTTL(time.Minute))
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	ctx := context.Background()
	l, err := r.Acquire(ctx, "room", "a")
	require.NoError(t, err)

	require.NoError(t, proc.Signal(syscall.SIGSTOP))
	calls := map[string]func() error{
		"acquire":    func() error { _, err := r.Acquire(ctx, "other", "a"); return err },
		"renew":      func() error { return r.Renew(ctx, l) },
		"release":    func() error { return r.Release(ctx, l) },
		"reassert":   func() error { return r.Reassert(ctx, l) },
		"owner":      func() error { _, err := r.Owner(ctx, "room"); return err },
		"checkEpoch": func() error { return r.CheckEpoch(ctx, "room", l.Epoch) },
		"heartbeat":  func() error { return r.Heartbeat(ctx, NodeInfo{ID: "a"}) },
		"nodes":      func() error { _, err := r.Nodes(ctx); return err },
		"ban":        func() error { return r.Ban(ctx, "192.0.2.1", time.Now().Add(time.Minute)) },
		"isBanned":   func() error { _, err := r.IsBanned(ctx, "192.0.2.1"); return err },
		"ping":       func() error { return r.Ping(ctx) },
		"putRecording": func() error {
			return r.PutRecording(ctx, RecordingEntry{ID: "r1", StartedAt: time.Now()})
		},
		"recording":       func() error { _, err := r.Recording(ctx, "r1"); return err },
		"recordings":      func() error { _, err := r.Recordings(ctx, RecordingFilter{}); return err },
		"deleteRecording": func() error { return r.DeleteRecording(ctx, "r1") },
		"fail":            func() error { _, err := r.Fail(ctx, "k"); return err },
		"locked":          func() error { _, err := r.Locked(ctx, "k"); return err },
		"reset":           func() error { return r.Reset(ctx, "k") },
		"putKeyRecord":    func() error { return r.PutKeyRecord(ctx, "0123456789ab", []byte(`{}`)) },
		"keyRecords":      func() error { _, err := r.KeyRecords(ctx); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		took := time.Since(start)
		require.ErrorIs(t, err, ErrBackend, name)
		require.Less(t, took, 5*timeout, "%s took %v", name, took)
	}

	require.NoError(t, proc.Signal(syscall.SIGCONT))
	require.Eventually(t, func() bool { return r.Ping(ctx) == nil }, 5*time.Second, 20*time.Millisecond)
	own, err := r.Owner(ctx, "room")
	require.NoError(t, err)
	require.Equal(t, l.Epoch, own.Epoch)
}

// TestRedisPasswordAndDB checks that WithPassword logs in (a wrong password
// is ErrBackend, not "no owner") and WithDB keeps deployments apart.
func TestRedisPasswordAndDB(t *testing.T) {
	addr, _ := startRedisProcess(t, "--requirepass", "s3cret")
	ctx := context.Background()

	wrong := NewRedis(addr, WithPassword("nope"))
	t.Cleanup(func() { require.NoError(t, wrong.Close()) })
	_, err := wrong.Owner(ctx, "room")
	require.ErrorIs(t, err, ErrBackend)

	db3 := NewRedis(addr, WithPassword("s3cret"), WithDB(3))
	t.Cleanup(func() { require.NoError(t, db3.Close()) })
	db0 := NewRedis(addr, WithPassword("s3cret"))
	t.Cleanup(func() { require.NoError(t, db0.Close()) })
	l, err := db3.Acquire(ctx, "room", "a")
	require.NoError(t, err)
	own, err := db3.Owner(ctx, "room")
	require.NoError(t, err)
	require.Equal(t, l.Epoch, own.Epoch)
	_, err = db0.Owner(ctx, "room")
	require.ErrorIs(t, err, ErrNoOwner, "DB 0 does not see DB 3's lease")
}
