// Package redistest runs a throw-away redis-server for tests (TESTING.md,
// "Redis"): on 127.0.0.1, without persistence, stopped by PID when the
// test ends.
package redistest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server.
type Server struct {
	// Addr is its host:port on 127.0.0.1 (Start only).
	Addr string
	// Process is the redis-server process, for tests that pause
	// (SIGSTOP), kill or restart it to make an outage.
	Process *os.Process

	args   []string
	dir    string
	ready  func(context.Context) error
	exited chan struct{} // closed when the current process has exited
}

// Start runs redis-server on a free loopback port with extra arguments
// and returns once it answers PING. With "--requirepass", pass the
// password as the last argument so the check can log in.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	port := FreePort(tb)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	password := ""
	if len(extra) >= 2 && extra[len(extra)-2] == "--requirepass" {
		password = extra[len(extra)-1]
	}
	ping := func(ctx context.Context) error {
		c := redis.NewClient(&redis.Options{Addr: addr, Password: password,
			DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
		defer c.Close()
		return c.Ping(ctx).Err()
	}
	s := Run(tb, append([]string{"--port", strconv.Itoa(port)}, extra...), ping)
	s.Addr = addr
	return s
}

// Run starts redis-server on 127.0.0.1 without persistence, with args
// after the defaults (a config file first when args[0] is one), and
// returns once ready reports nil (within 5 s).
func Run(tb testing.TB, args []string, ready func(context.Context) error) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal("redis-server not installed: run scripts/bootstrap (package redis-server)")
	}
	s := &Server{dir: tb.TempDir(), ready: ready}
	var conf []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "--") {
		conf, args = args[:1], args[1:]
	}
	s.args = append(append([]string{bin}, conf...), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", s.dir,
		"--logfile", s.dir+"/redis.log")
	s.args = append(s.args, args...)
	s.run(tb)
	return s
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run starts the process (again) and waits until it is ready.
func (s *Server) run(tb testing.TB) {
	tb.Helper()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	s.Process = cmd.Process
	exited := make(chan struct{})
	s.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot die
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.ready(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.dir + "/redis.log")
			tb.Fatalf("redis-server %v did not answer: %v\n%s", s.args[1:], err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL), as a crash would, and waits
// until the process has exited.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	_ = s.Process.Signal(syscall.SIGCONT)
	_ = s.Process.Kill()
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		tb.Fatalf("redis-server %v did not exit after SIGKILL", s.args[1:])
	}
}

// Restart starts a killed server again with the same arguments, empty
// (it keeps nothing on disk), and waits until it is ready.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.run(tb)
}
