package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagate/mediagate/internal/anon"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer runs a Server on a free loopback port for the test's duration.
func startServer(t *testing.T, opts ...Option) (*Server, string) {
	t.Helper()
	s := New(slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		require.NoError(t, <-done)
	})
	return s, "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestHealthz(t *testing.T) {
	_, base := startServer(t, WithVersion("1.2.3"))
	code, body := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
	var v map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	require.Equal(t, map[string]string{"status": "ok", "version": "1.2.3"}, v)
}

func TestReadyz(t *testing.T) {
	s, base := startServer(t)
	code, _ := get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code)

	var failing error
	s.AddReadyCheck("redis", func(context.Context) error { return failing })
	code, _ = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code, "passing check")

	failing = errors.New("connection refused")
	code, body := get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"not ready","failed":{"redis":"connection refused"}}`, body)

	failing = nil
	s.Drain()
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"draining"}`, body)
	code, _ = get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, "a draining node is still alive")
}

// TestReadinessOption: a check given at construction makes /readyz answer
// 503 with its error while it fails (a cluster store that cannot be
// reached), and a draining node says so without asking it.
func TestReadinessOption(t *testing.T) {
	var mu sync.Mutex
	failing := errors.New("redis: dial tcp 192.0.2.9:6379: connection refused")
	asked, deadlines := 0, 0
	s, base := startServer(t, WithReadiness("cluster", func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		asked++
		if _, ok := ctx.Deadline(); ok {
			deadlines++
		}
		return failing
	}))
	code, body := get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"not ready","failed":{"cluster":"redis: dial tcp 192.0.2.9:6379: connection refused"}}`, body)

	mu.Lock()
	failing = nil
	mu.Unlock()
	code, _ = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code)

	s.Drain()
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"draining"}`, body)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 2, asked, "a draining node does not ask")
	require.Equal(t, 2, deadlines, "the check runs under a deadline")
}

func TestMetrics(t *testing.T) {
	_, base := startServer(t, WithVersion("v9"))
	get(t, base+"/healthz")
	get(t, base+"/no/such/page")
	code, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `mediagate_build_info{version="v9"} 1`)
	require.Contains(t, body, `mediagate_http_requests_total{code="200",route="GET /healthz"} 1`)
	require.Contains(t, body, `mediagate_http_requests_total{code="404",route="unmatched"} 1`)
	require.Contains(t, body, "go_goroutines")
	require.NotContains(t, body, "/no/such/page", "raw paths must not become labels")
}

func TestServeShutdownWaitsForRequests(t *testing.T) {
	s := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	started, release := make(chan struct{}), make(chan struct{})
	s.mux.HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()

	type reply struct {
		body string
		err  error
	}
	got := make(chan reply, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- reply{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- reply{string(b), err}
	}()
	<-started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	require.NoError(t, <-done, "Serve returns as soon as shutdown begins")
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a request was open", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	r := <-got
	require.NoError(t, r.err)
	require.Equal(t, "done", r.body)
	require.NoError(t, <-shut)
}

func TestShutdownGraceExceeded(t *testing.T) {
	s := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	started := make(chan struct{})
	s.mux.HandleFunc("GET /stuck", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // ends only when the connection is closed
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	clientErr := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.Shutdown(ctx), context.DeadlineExceeded)
	require.NoError(t, <-done)
	require.Error(t, <-clientErr, "the stuck request was cut off")
}

func TestAnonymizeAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"203.0.113.77:5060", "203.0.113.0"},
		{"203.0.113.77", "203.0.113.0"},
		{"[2001:db8:abcd:12::1]:443", "2001:db8:abcd::"},
		{"[::ffff:198.51.100.9]:80", "198.51.100.0"},
		{"[fe80::1%eth0]:80", "fe80::"},
		{"not an address", "invalid"},
		{"", "invalid"},
	} {
		got := AnonymizeAddr(tc.in)
		require.Equal(t, tc.want, got, tc.in)
		require.False(t, strings.Contains(got, "77") || strings.Contains(got, ":1]"), "leaks host part: %q", got)
	}
	// log.anonymize_ips: false keeps whole addresses.
	anon.SetEnabled(false)
	t.Cleanup(func() { anon.SetEnabled(true) })
	require.Equal(t, "203.0.113.77", AnonymizeAddr("203.0.113.77:5060"))
	require.Equal(t, "2001:db8:abcd:12::1", AnonymizeAddr("[2001:db8:abcd:12::1]:443"))
	require.Equal(t, "invalid", AnonymizeAddr("not an address"))
}

func TestHandleRefusesNewSessionsWhileDraining(t *testing.T) {
	s, base := startServer(t)
	s.Handle("/whip/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	post := func() *http.Response {
		resp, err := http.Post(base+"/whip/r1", "application/sdp", strings.NewReader("v=0"))
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	require.Equal(t, http.StatusCreated, post().StatusCode)
	s.Drain()
	resp := post()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	require.Equal(t, ContentTypeProblem, resp.Header.Get("Content-Type"))
	req, err := http.NewRequest(http.MethodDelete, base+"/whip/r1/s1", nil)
	require.NoError(t, err)
	dresp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	dresp.Body.Close()
	require.Equal(t, http.StatusCreated, dresp.StatusCode, "leaving still reaches the handler")
}
