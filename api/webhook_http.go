package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// webhookOutcome is what one attempt came to.
type webhookOutcome uint8

const (
	outcomeRetry     webhookOutcome = iota // try again later
	outcomeDelivered                       // 2xx
	outcomeRejected                        // a final answer: give up
)

// attemptResult is one attempt's outcome, with what the log and the
// backoff need.
type attemptResult struct {
	outcome    webhookOutcome
	status     int           // the answer's status; 0 without one
	retryAfter time.Duration // the answer's Retry-After, if any
	err        error         // why there was no answer
}

// errText is the attempt's error for a log line: without the request's
// URL, which may hold credentials or tokens.
func (r attemptResult) errText() string {
	if r.err == nil {
		return ""
	}
	var ue *url.Error
	if errors.As(r.err, &ue) {
		return ue.Err.Error()
	}
	return r.err.Error()
}

// attempt POSTs q to the endpoint once, within its timeout.
func (w *Webhooks) attempt(ctx context.Context, cfg *WebhookEndpoint, q *queuedEvent, n int) attemptResult {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(q.body))
	if err != nil {
		return attemptResult{outcome: outcomeRejected, err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.o.userAgent)
	req.Header.Set(WebhookIDHeader, q.id)
	req.Header.Set(WebhookTypeHeader, string(q.typ))
	req.Header.Set(WebhookAttemptHeader, strconv.Itoa(n))
	req.Header.Set(WebhookSignatureHeader, SignWebhook(cfg.Secret, w.o.now(), q.body))
	resp, err := w.o.client.Do(req)
	if err != nil {
		return attemptResult{outcome: outcomeRetry, err: err}
	}
	// Read a little of the answer so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	res := attemptResult{status: resp.StatusCode}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		res.outcome = outcomeDelivered
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		res.outcome = outcomeRetry
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			res.retryAfter = time.Duration(s) * time.Second
		}
	default:
		res.outcome = outcomeRejected
	}
	return res
}

// The metrics of Webhooks.
var (
	webhookDeliveriesDesc = prometheus.NewDesc("mediagate_webhook_deliveries_total",
		"Webhook events by final outcome: delivered (2xx), rejected (a final 4xx or redirect), exhausted (every attempt failed), abandoned (pending at shutdown or removal).",
		[]string{"endpoint", "outcome"}, nil)
	webhookDroppedDesc = prometheus.NewDesc("mediagate_webhook_dropped_total",
		"Webhook events not delivered: queue full, rejected, exhausted or abandoned.",
		[]string{"endpoint"}, nil)
	webhookRetriesDesc = prometheus.NewDesc("mediagate_webhook_retries_total",
		"Webhook delivery attempts after the first.",
		[]string{"endpoint"}, nil)
	webhookQueueDesc = prometheus.NewDesc("mediagate_webhook_queue_length",
		"Webhook events waiting in the endpoint's queue.",
		[]string{"endpoint"}, nil)
)

var _ prometheus.Collector = (*Webhooks)(nil)

// Describe sends the descriptors of the webhook metrics.
func (w *Webhooks) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{webhookDeliveriesDesc, webhookDroppedDesc, webhookRetriesDesc, webhookQueueDesc} {
		ch <- d
	}
}

// Collect sends the endpoints' counters (labelled by endpoint name only).
func (w *Webhooks) Collect(ch chan<- prometheus.Metric) {
	for name, s := range w.Stats() {
		for outcome, v := range map[string]uint64{"delivered": s.Delivered, "rejected": s.Rejected,
			"exhausted": s.Exhausted, "abandoned": s.Abandoned} {
			ch <- prometheus.MustNewConstMetric(webhookDeliveriesDesc, prometheus.CounterValue, float64(v), name, outcome)
		}
		ch <- prometheus.MustNewConstMetric(webhookDroppedDesc, prometheus.CounterValue, float64(s.Dropped), name)
		ch <- prometheus.MustNewConstMetric(webhookRetriesDesc, prometheus.CounterValue, float64(s.Retries), name)
		ch <- prometheus.MustNewConstMetric(webhookQueueDesc, prometheus.GaugeValue, float64(s.Queued), name)
	}
}
