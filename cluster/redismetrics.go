package cluster

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mediagate/mediagate/internal/meter"
)

// RedisLatencyBuckets are the upper bounds (seconds) of the Redis command
// latency histogram: a local Redis answers in well under a millisecond,
// and every call is cut at the configured timeout (default 2 s).
var RedisLatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// maxRedisOps bounds the command names tracked; mediagate issues a fixed
// handful, so the bound only guards against a surprise.
const maxRedisOps = 64

// RedisOpStats are the counters of one Redis command (lower-case name:
// "get", "evalsha", "publish").
type RedisOpStats struct {
	Command string
	// Ops counts the commands sent, Errors those that failed (a missing
	// key is no failure, nor is a script cache miss go-redis retries).
	Ops, Errors uint64
	// Seconds is how long they took, round trip included.
	Seconds meter.HistogramSnapshot
}

// opMeters counts Redis commands by name; it is the client's redis.Hook.
type opMeters struct {
	mu  sync.Mutex
	ops map[string]*opMeter
}

type opMeter struct {
	ops, errs atomic.Uint64
	took      *meter.Histogram
}

var _ redis.Hook = (*opMeters)(nil)

func newOpMeters() *opMeters { return &opMeters{ops: map[string]*opMeter{}} }

// get returns the meter of command name, made on first use.
func (m *opMeters) get(name string) *opMeter {
	m.mu.Lock()
	defer m.mu.Unlock()
	if om, ok := m.ops[name]; ok {
		return om
	}
	if len(m.ops) >= maxRedisOps {
		name = "other"
		if om, ok := m.ops[name]; ok {
			return om
		}
	}
	om := &opMeter{took: meter.NewHistogram(RedisLatencyBuckets...)}
	m.ops[name] = om
	return om
}

func (m *opMeters) count(name string, took time.Duration, err error) {
	om := m.get(name)
	om.ops.Add(1)
	om.took.Observe(took)
	if failed(err) && name != "client" {
		om.errs.Add(1)
	}
}

// failed tells Redis failures from answers: redis.Nil is "no such key",
// NOSCRIPT is go-redis' cue to send the script itself (Script.Run). The
// errors of CLIENT are not counted either (see count): it is go-redis'
// CLIENT SETINFO on every new connection, which Redis before 7.2 refuses
// and go-redis ignores.
func failed(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && !strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// DialHook implements redis.Hook; dials are not counted.
func (m *opMeters) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook implements redis.Hook: one command.
func (m *opMeters) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		m.count(cmd.Name(), time.Since(start), err)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook: each command of a pipeline
// (or MULTI/EXEC transaction) counts with its own error and the
// pipeline's round trip as its latency.
func (m *opMeters) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		took := time.Since(start)
		for _, c := range cmds {
			m.count(c.Name(), took, c.Err())
		}
		return err
	}
}

// stats returns the counters by command name, sorted.
func (m *opMeters) stats() []RedisOpStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]RedisOpStats, 0, len(m.ops))
	for name, om := range m.ops {
		out = append(out, RedisOpStats{Command: name, Ops: om.ops.Load(), Errors: om.errs.Load(), Seconds: om.took.Snapshot()})
	}
	slices.SortFunc(out, func(a, b RedisOpStats) int { return strings.Compare(a.Command, b.Command) })
	return out
}

// OpStats returns the counters of the Redis commands this client sent,
// by command, for metrics.
func (r *Redis) OpStats() []RedisOpStats { return r.ops.stats() }
