package cluster

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mediagate/mediagate/internal/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// wipeMemory forgets all of m's state, as a Redis restart without
// persistence forgets all of Redis's.
func wipeMemory(m *Memory) {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.nodes)
	clear(m.leases)
	clear(m.epochs)
	clear(m.bans)
	clear(m.keyRecs)
}

// startRedis runs a throw-away redis-server on a free loopback port with no
// persistence, stopped by PID in t.Cleanup, and returns its address once it
// answers PING.
func startRedis(tb testing.TB) string {
	tb.Helper()
	return redistest.Start(tb).Addr
}

// startRedisProcess is startRedis that also hands out the process, for tests
// that stop or kill Redis to simulate an outage. Extra arguments go to
// redis-server; with --requirepass, pass the password as the last one so
// the readiness check can log in.
func startRedisProcess(tb testing.TB, extra ...string) (string, *os.Process) {
	tb.Helper()
	s := redistest.Start(tb, extra...)
	return s.Addr, s.Process
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int { return redistest.FreePort(tb) }

// runRedisServer starts redis-server on 127.0.0.1 without persistence, with
// args after the defaults (a config file first when args[0] is one), stops
// it by PID in tb.Cleanup, and returns once ready answers PING.
func runRedisServer(tb testing.TB, args []string, ready *Redis) *os.Process {
	tb.Helper()
	return redistest.Run(tb, args, ready.Ping).Process
}
