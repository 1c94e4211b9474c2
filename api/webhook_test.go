package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestWebhookSigned: an event arrives as JSON with its id, type,
// created_at, node and room, the Mediagate-Event and Mediagate-Event-Id
// headers, and a signature that VerifyWebhook accepts with the secret and
// refuses with another.
func TestWebhookSigned(t *testing.T) {
	rcv := newHookReceiver(t, nil)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w := newTestWebhooks(t, []WebhookEndpoint{{Name: "ops", URL: rcv.srv.URL, Secret: testWebhookSecret}},
		WithWebhookClock(func() time.Time { return at }))
	w.Publish(WebhookEvent{Type: WebhookParticipantJoined, Room: "board",
		Participant: &WebhookParticipant{ID: "p1", Name: "*******56", Kind: "phone"}})

	r := rcv.next(t)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, "participant.joined", r.header.Get(WebhookTypeHeader))
	require.Equal(t, "1", r.header.Get(WebhookAttemptHeader))
	sig := r.header.Get(WebhookSignatureHeader)
	require.NoError(t, VerifyWebhook(testWebhookSecret, sig, r.body, at.Add(time.Minute), DefaultWebhookTolerance))
	require.ErrorIs(t, VerifyWebhook("another-secret-0123456789", sig, r.body, at, DefaultWebhookTolerance), ErrWebhookSignature)

	var ev map[string]any
	require.NoError(t, json.Unmarshal(r.body, &ev))
	require.Equal(t, r.header.Get(WebhookIDHeader), ev["id"])
	require.Regexp(t, `^evt_[A-Z2-7]{26}$`, ev["id"])
	require.Equal(t, "participant.joined", ev["type"])
	require.Equal(t, "2026-11-23T10:00:00Z", ev["created_at"])
	require.Equal(t, "node-1", ev["node"])
	require.Equal(t, "board", ev["room"])
	require.Equal(t, map[string]any{"id": "p1", "name": "*******56", "kind": "phone"}, ev["participant"])
}

// TestVerifyWebhook: VerifyWebhook refuses a changed body, a wrong secret,
// an old timestamp (a replay) and one far ahead, and malformed headers;
// it accepts any of several v1 signatures (secret rotation).
func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"evt_1","type":"room.started"}`)
	good := SignWebhook(testWebhookSecret, now, body)
	require.Regexp(t, `^t=1800000000,v1=[0-9a-f]{64}$`, good)
	other := SignWebhook("old-secret-0123456789abc", now, body)
	_, otherSig, _ := strings.Cut(other, ",")

	tests := []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", good, body, now, nil},
		{"valid at the edge of the tolerance", good, body, now.Add(DefaultWebhookTolerance), nil},
		{"two signatures, one right", good + "," + otherSig, body, now, nil},
		{"changed body", good, []byte(`{"id":"evt_1","type":"room.finished"}`), now, ErrWebhookSignature},
		{"wrong secret", other, body, now, ErrWebhookSignature},
		{"replayed later", good, body, now.Add(DefaultWebhookTolerance + time.Second), ErrWebhookTimestamp},
		{"from the future", good, body, now.Add(-DefaultWebhookTolerance - time.Second), ErrWebhookTimestamp},
		{"no timestamp", "v1=abcd", body, now, ErrWebhookSignatureMalformed},
		{"no signature", "t=1800000000", body, now, ErrWebhookSignatureMalformed},
		{"garbage", "hello", body, now, ErrWebhookSignatureMalformed},
		{"empty", "", body, now, ErrWebhookSignatureMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyWebhook(testWebhookSecret, tt.header, tt.body, tt.now, DefaultWebhookTolerance)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// TestWebhookRetriesWithBackoff: an endpoint answering 500 twice (and 503
// with Retry-After) gets the same event again, attempt by attempt, each
// freshly signed, until its 200; the retries are counted.
func TestWebhookRetriesWithBackoff(t *testing.T) {
	rcv := newHookReceiver(t, func(n int, _ []byte) int {
		if n < 3 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	w := newTestWebhooks(t, []WebhookEndpoint{{Name: "ops", URL: rcv.srv.URL, Secret: testWebhookSecret}})
	w.Publish(WebhookEvent{Type: WebhookRoomStarted, Room: "board"})
	var ids []string
	for i := 1; i <= 3; i++ {
		r := rcv.next(t)
		require.Equal(t, i, r.attempt)
		ids = append(ids, r.header.Get(WebhookIDHeader))
		require.NoError(t, VerifyWebhook(testWebhookSecret, r.header.Get(WebhookSignatureHeader), r.body, time.Now(), time.Minute))
	}
	require.Equal(t, []string{ids[0], ids[0], ids[0]}, ids, "a retry sends the same event")
	require.Eventually(t, func() bool { return w.Stats()["ops"].Delivered == 1 }, 5*time.Second, time.Millisecond)
	s := w.Stats()["ops"]
	require.Equal(t, uint64(2), s.Retries)
	require.Zero(t, s.Dropped)
}

// TestWebhookBackoff: the waits double per attempt up to the cap, with
// ±50 % jitter, and a longer Retry-After wins up to the cap.
func TestWebhookBackoff(t *testing.T) {
	w := &Webhooks{o: webhookOptions{backoff: 2 * time.Second, maxBackoff: 30 * time.Second}}
	for attempt, base := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 3: 8 * time.Second, 4: 16 * time.Second, 6: 30 * time.Second} {
		for range 50 {
			d := w.backoff(attempt, 0)
			require.GreaterOrEqual(t, d, base/2, "attempt %d", attempt)
			require.Less(t, d, base*3/2, "attempt %d", attempt)
		}
	}
	require.Equal(t, 25*time.Second, max(w.backoff(1, 25*time.Second), 25*time.Second))
	require.GreaterOrEqual(t, w.backoff(1, 25*time.Second), 25*time.Second)
	require.LessOrEqual(t, w.backoff(1, time.Hour), 45*time.Second, "Retry-After is capped")
}

// TestWebhookRejectedOrExhausted: a 400 is not retried; a 429 is; an
// endpoint failing every attempt gets exactly the configured attempts;
// both count as dropped.
func TestWebhookRejectedOrExhausted(t *testing.T) {
	bad := newHookReceiver(t, func(int, []byte) int { return http.StatusBadRequest })
	down := newHookReceiver(t, func(int, []byte) int { return http.StatusTooManyRequests })
	w := newTestWebhooks(t, []WebhookEndpoint{
		{Name: "bad", URL: bad.srv.URL, Secret: testWebhookSecret},
		{Name: "down", URL: down.srv.URL, Secret: testWebhookSecret},
	})
	w.Publish(WebhookEvent{Type: WebhookRoomStarted, Room: "board"})
	require.Eventually(t, func() bool {
		s := w.Stats()
		return s["bad"].Dropped == 1 && s["down"].Dropped == 1
	}, 5*time.Second, time.Millisecond)
	s := w.Stats()
	require.Equal(t, WebhookStats{Rejected: 1, Dropped: 1}, s["bad"])
	require.Equal(t, WebhookStats{Exhausted: 1, Dropped: 1, Retries: 4}, s["down"])
	require.Len(t, bad.reqs, 1)
	require.Len(t, down.reqs, 5)
}

// TestWebhookOrderPerRoomUnderRetries: with every third request failing,
// each room's events are still delivered in the order they were
// published, and all of them.
func TestWebhookOrderPerRoomUnderRetries(t *testing.T) {
	rcv := newHookReceiver(t, func(n int, _ []byte) int {
		if n%3 == 0 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	w := newTestWebhooks(t, []WebhookEndpoint{{Name: "ops", URL: rcv.srv.URL, Secret: testWebhookSecret}})
	rooms := []room.ID{"a", "b", "c"}
	const n = 30
	for i := range n {
		w.Publish(WebhookEvent{Type: WebhookParticipantJoined, Room: rooms[i%3],
			Participant: &WebhookParticipant{ID: room.ParticipantID(fmt.Sprint(i))}})
	}
	got := map[room.ID][]string{}
	for delivered := 0; delivered < n; {
		r := rcv.next(t)
		if r.status != http.StatusOK {
			continue
		}
		delivered++
		var ev WebhookEvent
		require.NoError(t, json.Unmarshal(r.body, &ev))
		got[ev.Room] = append(got[ev.Room], string(ev.Participant.ID))
	}
	for i, id := range rooms {
		var want []string
		for j := i; j < n; j += 3 {
			want = append(want, fmt.Sprint(j))
		}
		require.Equal(t, want, got[id], "room %s in order", id)
	}
	require.Eventually(t, func() bool { return w.Stats()["ops"].Delivered == n }, 5*time.Second, time.Millisecond)
	require.Positive(t, w.Stats()["ops"].Retries, "some events were retried")
}

// TestWebhookQueueFull: while an endpoint hangs on its first event, its
// queue fills and further events are dropped and counted, in Stats and
// in mediagate_webhook_dropped_total.
func TestWebhookQueueFull(t *testing.T) {
	url, arrived := hangingReceiver(t)
	w := newTestWebhooks(t, []WebhookEndpoint{{Name: "slow", URL: url, Secret: testWebhookSecret, Timeout: time.Minute}},
		WithWebhookQueue(2))
	w.Publish(WebhookEvent{Type: WebhookRoomStarted, Room: "a"})
	<-arrived // the worker holds the first event; the queue is empty
	for range 9 {
		w.Publish(WebhookEvent{Type: WebhookParticipantJoined, Room: "a"})
	}
	s := w.Stats()["slow"]
	require.Equal(t, uint64(7), s.QueueFull)
	require.Equal(t, uint64(7), s.Dropped)
	require.Equal(t, 2, s.Queued)

	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(w))
	values := gatherWebhookMetrics(t, reg)
	require.Equal(t, 7.0, values[`mediagate_webhook_dropped_total{endpoint="slow"}`])
	require.Equal(t, 2.0, values[`mediagate_webhook_queue_length{endpoint="slow"}`])
	require.Equal(t, 0.0, values[`mediagate_webhook_deliveries_total{endpoint="slow",outcome="delivered"}`])
}

// gatherWebhookMetrics returns the webhook series of reg as
// name{labels} → value.
func gatherWebhookMetrics(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue()
			if m.GetGauge() != nil {
				v = m.GetGauge().GetValue()
			}
			out[fmt.Sprintf("%s{%s}", mf.GetName(), strings.Join(labels, ","))] = v
		}
	}
	return out
}

// TestWebhookHangingEndpointDoesNotDelayOthers: while one endpoint never
// answers, another gets every event promptly: Publish returns at once and
// the fast endpoint's delivery latency stays far below the hanging
// endpoint's timeout.
func TestWebhookHangingEndpointDoesNotDelayOthers(t *testing.T) {
	hang, arrived := hangingReceiver(t)
	fast := newHookReceiver(t, nil)
	w := newTestWebhooks(t, []WebhookEndpoint{
		{Name: "hang", URL: hang, Secret: testWebhookSecret, Timeout: time.Minute},
		{Name: "fast", URL: fast.srv.URL, Secret: testWebhookSecret},
	})
	const n = 20
	var worst time.Duration
	for i := range n {
		start := time.Now()
		w.Publish(WebhookEvent{Type: WebhookParticipantJoined, Room: "a",
			Participant: &WebhookParticipant{ID: room.ParticipantID(fmt.Sprint(i))}})
		r := fast.next(t)
		worst = max(worst, r.at.Sub(start))
		if i == 0 {
			<-arrived // the hanging endpoint holds its first event from here on
		}
	}
	require.Less(t, worst, 5*time.Second, "the fast endpoint's worst delivery latency (the hanging one's timeout is 1 min)")
	require.Eventually(t, func() bool { return w.Stats()["fast"].Delivered == n }, 5*time.Second, time.Millisecond)
	s := w.Stats()
	require.Zero(t, s["hang"].Delivered)
	require.Equal(t, n-1, s["hang"].Queued, "the hanging endpoint's events wait in its own queue")
}

// TestWebhookSetEndpoints: a kept endpoint keeps its queue and takes its
// new URL from the next attempt; a removed one stops (its pending events
// abandoned); a new one gets the events from now on; the events filter
// applies.
func TestWebhookSetEndpoints(t *testing.T) {
	old, arrived := hangingReceiver(t)
	moved := newHookReceiver(t, nil)
	added := newHookReceiver(t, nil)
	w := newTestWebhooks(t, []WebhookEndpoint{
		{Name: "gone", URL: old, Secret: testWebhookSecret, Timeout: time.Minute},
		{Name: "kept", URL: "http://127.0.0.1:1/unreachable", Secret: testWebhookSecret},
	}, WithWebhookRetry(1000, time.Millisecond, 2*time.Millisecond))
	w.Publish(WebhookEvent{Type: WebhookRoomStarted, Room: "a"})
	<-arrived
	w.Publish(WebhookEvent{Type: WebhookRoomFinished, Room: "a"})
	w.SetEndpoints([]WebhookEndpoint{
		{Name: "kept", URL: moved.srv.URL, Secret: testWebhookSecret},
		{Name: "added", URL: added.srv.URL, Secret: testWebhookSecret, Events: []WebhookEventType{WebhookRecordingStarted}},
	})
	require.Equal(t, []string{"added", "kept"}, w.Endpoints())
	for _, typ := range []string{"room.started", "room.finished"} {
		require.Equal(t, typ, moved.next(t).header.Get(WebhookTypeHeader), "the kept queue, now at the new URL")
	}
	w.Publish(WebhookEvent{Type: WebhookRoomStarted, Room: "b"})
	w.Publish(WebhookEvent{Type: WebhookRecordingStarted, Room: "b"})
	require.Equal(t, "room.started", moved.next(t).header.Get(WebhookTypeHeader))
	require.Equal(t, "recording.started", moved.next(t).header.Get(WebhookTypeHeader))
	require.Equal(t, "recording.started", added.next(t).header.Get(WebhookTypeHeader), "only the filtered type")
	require.Eventually(t, func() bool { return w.Stats()["gone"].Abandoned == 2 }, 5*time.Second, time.Millisecond)
	require.Equal(t, uint64(2), w.Stats()["gone"].Dropped)
	require.Empty(t, added.reqs)
}

// TestWebhookCloseDelivers: Close delivers what is queued before it
// returns; Publish after Close drops silently.
func TestWebhookCloseDelivers(t *testing.T) {
	rcv := newHookReceiver(t, nil)
	w := NewWebhooks(slog.New(slog.DiscardHandler), []WebhookEndpoint{{Name: "ops", URL: rcv.srv.URL, Secret: testWebhookSecret}})
	for range 5 {
		w.Publish(WebhookEvent{Type: WebhookRoomStarted})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, w.Close(ctx))
	require.Equal(t, uint64(5), w.Stats()["ops"].Delivered)
	w.Publish(WebhookEvent{Type: WebhookRoomStarted})
	require.Len(t, rcv.reqs, 5)
}

// TestWebhookEventTypes: the api's event types are those configs accepts
// in webhooks.<name>.events.
func TestWebhookEventTypes(t *testing.T) {
	var names []string
	for _, e := range WebhookEventTypes {
		names = append(names, string(e))
	}
	require.Equal(t, configs.WebhookEvents, names)
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(names))), len(names))
}

// BenchmarkWebhookPublish: what Publish costs the caller (a room's event
// follower, the recorder, the bridge): encoding the event once and a
// non-blocking hand-off to each endpoint's queue (here two endpoints,
// one of them hung so its queue is full and drops).
func BenchmarkWebhookPublish(b *testing.B) {
	hang, _ := hangingReceiver(b)
	w := newTestWebhooks(b, []WebhookEndpoint{
		{Name: "hang", URL: hang, Secret: testWebhookSecret, Timeout: time.Minute},
		{Name: "hang2", URL: hang, Secret: testWebhookSecret, Timeout: time.Minute},
	})
	ev := WebhookEvent{Type: WebhookParticipantJoined, Room: "board",
		Participant: &WebhookParticipant{ID: "a84b4c76e66710@pbx", Name: "********56", Kind: "phone"}}
	b.ReportAllocs()
	for b.Loop() {
		w.Publish(ev)
	}
}
