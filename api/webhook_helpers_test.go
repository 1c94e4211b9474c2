package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testWebhookSecret signs the test endpoints' events.
const testWebhookSecret = "test-webhook-secret-0123456789"

// hookRequest is one request a test receiver got.
type hookRequest struct {
	header  http.Header
	body    []byte
	at      time.Time // when it arrived
	status  int       // what the receiver answered
	attempt int
}

// hookReceiver is an httptest server standing in for an operator's
// webhook endpoint: answer decides each request's status (nil: 200), and
// every request is sent to reqs (buffered; a test that sends more than
// its capacity blocks the receiver, not the dispatcher under test).
type hookReceiver struct {
	srv  *httptest.Server
	reqs chan hookRequest
	mu   sync.Mutex
	n    int // requests so far
}

// newHookReceiver starts a receiver, closed in t.Cleanup (register it
// before the Webhooks that post to it, so that they are closed first).
func newHookReceiver(t *testing.T, answer func(n int, body []byte) int) *hookReceiver {
	t.Helper()
	h := &hookReceiver{reqs: make(chan hookRequest, 256)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.n++
		n := h.n
		h.mu.Unlock()
		status := http.StatusOK
		if answer != nil {
			status = answer(n, body)
		}
		attempt, _ := strconv.Atoi(r.Header.Get(WebhookAttemptHeader))
		h.reqs <- hookRequest{header: r.Header.Clone(), body: body, at: time.Now(), status: status, attempt: attempt}
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// next returns the next request, failing after 10 s.
func (h *hookReceiver) next(t *testing.T) hookRequest {
	t.Helper()
	select {
	case r := <-h.reqs:
		return r
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no webhook request within 10s")
		return hookRequest{}
	}
}

// hangingReceiver never answers: each request waits until the client
// gives up or the test ends. got receives each request's arrival.
func hangingReceiver(t testing.TB) (url string, got <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 256)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.URL, arrived
}

// newTestWebhooks returns a dispatcher with fast retries (1 ms backoff),
// closed in t.Cleanup.
func newTestWebhooks(t testing.TB, eps []WebhookEndpoint, opts ...WebhookOption) *Webhooks {
	t.Helper()
	w := NewWebhooks(slog.New(slog.DiscardHandler), eps,
		append([]WebhookOption{WithWebhookNode("node-1"), WithWebhookRetry(5, time.Millisecond, 4*time.Millisecond)}, opts...)...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
	return w
}
