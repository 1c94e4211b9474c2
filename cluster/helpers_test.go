package cluster

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
}

// startRedis runs a throw-away redis-server on a free loopback port with no
// persistence, stops it by PID in t.Cleanup, and returns its address once it
// answers PING.
func startRedis(tb testing.TB) string {
	tb.Helper()
	addr, _ := startRedisProcess(tb)
	return addr
}

// startRedisProcess is startRedis that also hands out the process, for tests
// that stop or kill Redis to simulate an outage.
// Extra arguments go to redis-server; with --requirepass, pass the same
// password as the last one so the readiness check can log in.
func startRedisProcess(tb testing.TB, extra ...string) (string, *os.Process) {
	tb.Helper()
	port := freePort(tb)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var pass []Option
	if len(extra) >= 2 && extra[len(extra)-2] == "--requirepass" {
		pass = append(pass, WithPassword(extra[len(extra)-1]))
	}
	r := NewRedis(addr, append(pass, WithTimeout(200*time.Millisecond))...)
	defer r.Close()
	args := append([]string{"--port", strconv.Itoa(port)}, extra...)
	proc := runRedisServer(tb, args, r)
	return addr, proc
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(tb, l.Close())
	return port
}

// runRedisServer starts redis-server on 127.0.0.1 without persistence, with
// args after the defaults (a config file first when args[0] is one), stops
// it by PID in tb.Cleanup, and returns once ready answers PING.
func runRedisServer(tb testing.TB, args []string, ready *Redis) *os.Process {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal("redis-server not installed: run scripts/bootstrap (package redis-server)")
	}
	dir := tb.TempDir()
	var conf []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "--") {
		conf, args = args[:1], args[1:]
	}
	cmd := exec.Command(bin, append(conf, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir,
		"--logfile", dir+"/redis.log")...)
	cmd.Args = append(cmd.Args, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot die
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	deadline := time.Now().Add(5 * time.Second)
	for {
		err := ready.Ping(context.Background())
		if err == nil {
			return cmd.Process
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(dir + "/redis.log")
			tb.Fatalf("redis-server %v did not answer: %v\n%s", args, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
