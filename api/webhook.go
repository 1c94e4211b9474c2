package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// WebhookEndpoint is one receiver of webhook events (configs.Webhook plus
// its name).
type WebhookEndpoint struct {
	// Name labels the endpoint's metrics and log lines; the URL, which
	// may hold credentials, never appears in either.
	Name string
	// URL is where events are POSTed.
	URL string
	// Secret signs the events (Mediagate-Signature).
	Secret string
	// Events are the types sent; empty means all.
	Events []WebhookEventType
	// Timeout bounds one attempt; 0 means DefaultWebhookTimeout.
	Timeout time.Duration
}

// Defaults of NewWebhooks.
const (
	// DefaultWebhookTimeout bounds one delivery attempt.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultWebhookQueue is how many events an endpoint holds while it is
	// slow or down; more are dropped and counted.
	DefaultWebhookQueue = 1024
	// DefaultWebhookAttempts, DefaultWebhookBackoff and
	// DefaultWebhookMaxBackoff: 5 attempts, waiting about 2, 4, 8 and
	// 16 s between them (±50 % jitter), about a minute with timeouts.
	DefaultWebhookAttempts   = 5
	DefaultWebhookBackoff    = 2 * time.Second
	DefaultWebhookMaxBackoff = 30 * time.Second
)

// Webhooks delivers events to the configured endpoints: Publish never
// blocks and never does I/O; each endpoint has a bounded FIFO queue and one
// worker goroutine that POSTs the events in the order they were published,
// signed (SignWebhook). An event that fails (no connection, a timeout, a
// 5xx, 408 or 429 answer) is retried with exponential backoff and jitter
// (a Retry-After answer is honoured up to the maximum backoff), and holds
// back the endpoint's later events meanwhile: that keeps every room's
// events in order (and all others too) at the price of delaying other
// rooms' events on that endpoint. Another 2xx delivers it; any other
// answer (4xx, 3xx) gives it up at once. After the last attempt it is
// given up too. A full queue drops the new event. A slow or dead endpoint
// delays only its own queue.
//
// Every event not delivered (queue full, given up, abandoned at Close or
// when its endpoint was removed) counts as dropped. Webhooks is a
// prometheus.Collector of mediagate_webhook_deliveries_total{endpoint,
// outcome}, mediagate_webhook_dropped_total{endpoint},
// mediagate_webhook_retries_total{endpoint} and
// mediagate_webhook_queue_length{endpoint}.
//
// Goroutines: one worker per endpoint, owned by Webhooks: SetEndpoints
// stops those of removed endpoints, Close all of them. A nil *Webhooks
// publishes nothing.
type Webhooks struct {
	log *slog.Logger
	o   webhookOptions

	mu     sync.RWMutex
	eps    map[string]*webhookEndpoint
	counts map[string]*webhookCounts // by name, kept across SetEndpoints
	closed bool
	wg     sync.WaitGroup
}

// WebhookOption configures NewWebhooks.
type WebhookOption func(*webhookOptions)

type webhookOptions struct {
	node       string
	queue      int
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	client     *http.Client
	now        func() time.Time
	userAgent  string
}

// WithWebhookNode sets the "node" of every event.
func WithWebhookNode(node string) WebhookOption { return func(o *webhookOptions) { o.node = node } }

// WithWebhookQueue sets each endpoint's queue length (default
// DefaultWebhookQueue).
func WithWebhookQueue(n int) WebhookOption { return func(o *webhookOptions) { o.queue = n } }

// WithWebhookRetry sets the attempts per event and the backoff before the
// second attempt, doubled for each further one up to maxBackoff.
func WithWebhookRetry(attempts int, backoff, maxBackoff time.Duration) WebhookOption {
	return func(o *webhookOptions) { o.attempts, o.backoff, o.maxBackoff = attempts, backoff, maxBackoff }
}

// WithWebhookClient sets the HTTP client (for a test CA, say); its
// redirect policy is replaced: redirects are not followed.
func WithWebhookClient(c *http.Client) WebhookOption { return func(o *webhookOptions) { o.client = c } }

// WithWebhookClock sets the clock of created_at and of the signatures.
func WithWebhookClock(now func() time.Time) WebhookOption {
	return func(o *webhookOptions) { o.now = now }
}

// WithWebhookUserAgent sets the User-Agent of the requests (default
// "mediagate").
func WithWebhookUserAgent(ua string) WebhookOption {
	return func(o *webhookOptions) { o.userAgent = ua }
}

// webhookEndpoint is an endpoint's queue and worker.
type webhookEndpoint struct {
	cfg    atomic.Pointer[WebhookEndpoint] // replaced by SetEndpoints
	queue  chan *queuedEvent
	ctx    context.Context // ends the worker and its attempts
	cancel context.CancelFunc
	stop   chan struct{} // closed by Close: deliver what is queued, then return
	counts *webhookCounts
	// dropping is set by a drop for a full queue and cleared by the next
	// event that fits, so a drop is logged once per episode.
	dropping atomic.Bool
}

// queuedEvent is an encoded event waiting for delivery.
type queuedEvent struct {
	id   string
	typ  WebhookEventType
	body []byte
}

// webhookCounts are an endpoint's counters.
type webhookCounts struct {
	delivered, rejected, exhausted, abandoned, queueFull, retries atomic.Uint64
}

// WebhookStats are an endpoint's counters since the start.
type WebhookStats struct {
	// Delivered events were answered with a 2xx.
	Delivered uint64
	// Rejected events got a final non-retryable answer (4xx but 408 and
	// 429, or a redirect); Exhausted ones failed every attempt;
	// Abandoned ones were pending at Close or when the endpoint was
	// removed; QueueFull ones never got into the queue.
	Rejected, Exhausted, Abandoned, QueueFull uint64
	// Dropped is every event not delivered: the four above together.
	Dropped uint64
	// Retries counts attempts after the first.
	Retries uint64
	// Queued is the queue's length now (0 for a removed endpoint).
	Queued int
}

// NewWebhooks returns a dispatcher for endpoints (each must have a
// distinct name); SetEndpoints replaces them later.
func NewWebhooks(log *slog.Logger, endpoints []WebhookEndpoint, opts ...WebhookOption) *Webhooks {
	o := webhookOptions{queue: DefaultWebhookQueue, attempts: DefaultWebhookAttempts,
		backoff: DefaultWebhookBackoff, maxBackoff: DefaultWebhookMaxBackoff, now: time.Now, userAgent: "mediagate"}
	for _, opt := range opts {
		opt(&o)
	}
	o.queue, o.attempts = max(o.queue, 1), max(o.attempts, 1)
	c := http.Client{}
	if o.client != nil {
		c = *o.client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.client = &c
	w := &Webhooks{log: log.With("component", "webhooks"), o: o,
		eps: map[string]*webhookEndpoint{}, counts: map[string]*webhookCounts{}}
	w.SetEndpoints(endpoints)
	return w
}

// SetEndpoints replaces the endpoint set, as a configuration reload does:
// an endpoint whose name is new starts with an empty queue; one that is
// kept keeps its queue and counters and uses its new URL, secret, events
// and timeout from the next attempt on; one that is gone stops, its
// pending events abandoned (counted as dropped). After Close it does
// nothing.
func (w *Webhooks) SetEndpoints(endpoints []WebhookEndpoint) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	keep := map[string]bool{}
	for _, e := range endpoints {
		e.Events = slices.Clone(e.Events)
		keep[e.Name] = true
		if ep, ok := w.eps[e.Name]; ok {
			ep.cfg.Store(&e)
			continue
		}
		c := w.counts[e.Name]
		if c == nil {
			c = &webhookCounts{}
			w.counts[e.Name] = c
		}
		ep := &webhookEndpoint{queue: make(chan *queuedEvent, w.o.queue), stop: make(chan struct{}), counts: c}
		ep.ctx, ep.cancel = context.WithCancel(context.Background())
		ep.cfg.Store(&e)
		w.eps[e.Name] = ep
		w.wg.Add(1)
		go w.run(ep)
	}
	for name, ep := range w.eps {
		if !keep[name] {
			ep.cancel()
			delete(w.eps, name)
		}
	}
}

// Endpoints returns the names of the endpoints, sorted.
func (w *Webhooks) Endpoints() []string {
	if w == nil {
		return nil
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	return slices.Sorted(maps.Keys(w.eps))
}

// Publish queues ev for every endpoint that takes its type, filling in
// ID, CreatedAt (when zero) and Node. It never blocks: an endpoint whose
// queue is full drops the event (counted, and logged once per episode).
// After Close it drops everything.
func (w *Webhooks) Publish(ev WebhookEvent) {
	if w == nil {
		return
	}
	if ev.ID == "" {
		ev.ID = newEventID()
	}
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = w.o.now()
	}
	ev.CreatedAt = ev.CreatedAt.UTC()
	if ev.Node == "" {
		ev.Node = w.o.node
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed || len(w.eps) == 0 {
		return
	}
	body, err := json.Marshal(ev)
	if err != nil { // cannot happen: the event holds plain values only
		w.log.Error("webhook event not encoded", "type", string(ev.Type), "err", err)
		return
	}
	q := &queuedEvent{id: ev.ID, typ: ev.Type, body: body}
	for name, ep := range w.eps {
		if !wants(ep.cfg.Load(), ev.Type) {
			continue
		}
		select {
		case ep.queue <- q:
			ep.dropping.Store(false)
		default:
			ep.counts.queueFull.Add(1)
			if !ep.dropping.Swap(true) {
				w.log.Warn("webhook queue full; dropping events until it drains", "endpoint", name, "queue", cap(ep.queue))
			}
		}
	}
}

// wants reports whether the endpoint takes events of type t.
func wants(e *WebhookEndpoint, t WebhookEventType) bool {
	return len(e.Events) == 0 || slices.Contains(e.Events, t)
}

// Stats returns every endpoint's counters, by name; endpoints removed by
// SetEndpoints stay with their final counts.
func (w *Webhooks) Stats() map[string]WebhookStats {
	if w == nil {
		return nil
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make(map[string]WebhookStats, len(w.counts))
	for name, c := range w.counts {
		s := WebhookStats{Delivered: c.delivered.Load(), Rejected: c.rejected.Load(), Exhausted: c.exhausted.Load(),
			Abandoned: c.abandoned.Load(), QueueFull: c.queueFull.Load(), Retries: c.retries.Load()}
		s.Dropped = s.Rejected + s.Exhausted + s.Abandoned + s.QueueFull
		if ep, ok := w.eps[name]; ok {
			s.Queued = len(ep.queue)
		}
		out[name] = s
	}
	return out
}

// Close stops taking events and lets every worker deliver what its queue
// holds until ctx ends; then it abandons the rest (in-flight requests and
// backoff waits are cancelled) and waits for the workers. It returns
// ctx's error when it had to abandon events.
func (w *Webhooks) Close(ctx context.Context) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	eps := slices.Collect(maps.Values(w.eps))
	w.mu.Unlock()
	for _, ep := range eps {
		close(ep.stop)
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		for _, ep := range eps {
			ep.cancel()
		}
		<-done // bounded: every attempt and wait ends with its context
	}
	for _, ep := range eps {
		ep.cancel()
	}
	return err
}

// run is an endpoint's worker: it delivers the queue's events one by one
// until the endpoint is removed (its pending events abandoned) or Close
// (its pending events delivered first, until Close's deadline).
func (w *Webhooks) run(ep *webhookEndpoint) {
	defer w.wg.Done()
	for {
		select {
		case q := <-ep.queue:
			w.deliver(ep, q)
		case <-ep.ctx.Done():
			ep.counts.abandoned.Add(uint64(len(ep.queue)))
			return
		case <-ep.stop:
			for {
				select {
				case q := <-ep.queue:
					w.deliver(ep, q)
				default:
					return
				}
			}
		}
	}
}

// deliver makes up to the configured attempts to deliver q, waiting with
// backoff between them.
func (w *Webhooks) deliver(ep *webhookEndpoint, q *queuedEvent) {
	for attempt := 1; ; attempt++ {
		cfg := ep.cfg.Load()
		res := w.attempt(ep.ctx, cfg, q, attempt)
		switch {
		case res.outcome == outcomeDelivered:
			ep.counts.delivered.Add(1)
			return
		case ep.ctx.Err() != nil:
			ep.counts.abandoned.Add(1)
			return
		case res.outcome == outcomeRejected:
			ep.counts.rejected.Add(1)
			w.log.Warn("webhook rejected; not retried", "endpoint", cfg.Name, "event", q.id, "type", string(q.typ), "status", res.status)
			return
		case attempt >= w.o.attempts:
			ep.counts.exhausted.Add(1)
			w.log.Warn("webhook not delivered; giving up", "endpoint", cfg.Name, "event", q.id, "type", string(q.typ),
				"attempts", attempt, "status", res.status, "err", res.errText())
			return
		}
		ep.counts.retries.Add(1)
		wait := w.backoff(attempt, res.retryAfter)
		w.log.Debug("webhook attempt failed; retrying", "endpoint", cfg.Name, "event", q.id, "attempt", attempt,
			"status", res.status, "err", res.errText(), "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ep.ctx.Done():
			t.Stop()
			ep.counts.abandoned.Add(1)
			return
		}
	}
}

// backoff is the wait after the attempt-th failed attempt: the base
// doubled per attempt, capped, with ±50 % jitter so that many nodes do not
// retry in step; a longer Retry-After (up to the cap) wins.
func (w *Webhooks) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := w.o.backoff
	for i := 1; i < attempt && d < w.o.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.o.maxBackoff)
	if d > 1 {
		d = d/2 + rand.N(d)
	}
	return max(d, min(retryAfter, w.o.maxBackoff))
}
