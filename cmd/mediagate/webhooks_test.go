package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip/siptest"
	"github.com/mediagate/mediagate/stream"
)

// webhookTestSecret signs the test receivers' events.
const webhookTestSecret = "e2e-webhook-secret-0123456789abcdef"

// hookLatency bounds how long after its cause an event may reach a
// prompt receiver in the tests: generous for a loaded machine, and far
// below the hanging receiver's 1 min timeout, which a receiver held back
// by it would wait out.
const hookLatency = 5 * time.Second

// receivedHook is one event a test receiver accepted.
type receivedHook struct {
	ev  api.WebhookEvent
	raw []byte // the body as sent
	at  time.Time
}

// startHookReceiver runs an endpoint that verifies every request's
// signature (answering 401 to a bad one, which the test then misses) and
// passes the events on.
func startHookReceiver(t *testing.T) (url string, events <-chan receivedHook) {
	t.Helper()
	ch := make(chan receivedHook, 256)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = api.VerifyWebhook(webhookTestSecret, r.Header.Get(api.WebhookSignatureHeader), body, time.Now(), api.DefaultWebhookTolerance)
		}
		var ev api.WebhookEvent
		if err == nil {
			err = json.Unmarshal(body, &ev)
		}
		if err != nil || ev.ID != r.Header.Get(api.WebhookIDHeader) || string(ev.Type) != r.Header.Get(api.WebhookTypeHeader) {
			t.Errorf("webhook refused: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ch <- receivedHook{ev: ev, raw: body, at: time.Now()}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch
}

// startHangingReceiver runs an endpoint that never answers; arrived
// counts the requests it holds.
func startHangingReceiver(t *testing.T) (url string, arrived <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 256)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.URL, ch
}

// awaitHook returns the next event of type typ, collecting the ones
// before it into seen, and fails after timeout.
func awaitHook(t *testing.T, events <-chan receivedHook, seen *[]receivedHook, typ api.WebhookEventType, timeout time.Duration) receivedHook {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case h := <-events:
			*seen = append(*seen, h)
			if h.ev.Type == typ {
				return h
			}
		case <-deadline:
			var got []string
			for _, h := range *seen {
				got = append(got, string(h.ev.Type))
			}
			require.FailNow(t, "webhook not received", "%s within %s; got %v", typ, timeout, got)
		}
	}
}

// awaitHooks waits until seen[from:] holds events of each of types (as
// often as listed), collecting what arrives into seen.
func awaitHooks(t *testing.T, events <-chan receivedHook, seen *[]receivedHook, from int, timeout time.Duration, types ...api.WebhookEventType) {
	t.Helper()
	missing := func() []api.WebhookEventType {
		left := slices.Clone(types)
		for _, h := range (*seen)[from:] {
			if i := slices.Index(left, h.ev.Type); i >= 0 {
				left = slices.Delete(left, i, i+1)
			}
		}
		return left
	}
	deadline := time.After(timeout)
	for len(missing()) > 0 {
		select {
		case h := <-events:
			*seen = append(*seen, h)
		case <-deadline:
			require.FailNow(t, "webhooks not received", "%v within %s", missing(), timeout)
		}
	}
}

// TestWebhooksEndToEnd: a phone call into room demo (a fixed dispatch
// rule, then the PIN) and a recording started, stopped and deleted
// through the admin API reach a receiver as signed events (each verified with
// api.VerifyWebhook) in their order per room: room.started, the pion
// participant's and the phone's participant.joined after call.started,
// recording.started, .ended and .deleted (with its deletion receipt), the
// phone's participant.left
// and call.ended, room.finished never (the configured room stays open).
// Numbers arrive masked. A second receiver that never answers holds its
// first event all along: it delays neither the first receiver's events
// (each arrives within 5 s of what caused it, where waiting for the
// hanging one would take its 1 min timeout) nor the media (the phone
// hears the room's tone meanwhile), and its queue shows in /metrics.
func TestWebhooksEndToEnd(t *testing.T) {
	t.Parallel()
	fastURL, events := startHookReceiver(t)
	hangURL, hangArrived := startHangingReceiver(t)
	hooks := fmt.Sprintf(`MEDIAGATE_WEBHOOKS={"fast": {"url": %q, "secret": %q}, "hang": {"url": %q, "secret": %q, "timeout": "1m"}}`,
		fastURL, webhookTestSecret, hangURL, webhookTestSecret)
	key, keyEnv := newAdminKey()
	g := startDialIn(t, keyEnv, hooks, `MEDIAGATE_DIALIN_NUMBERS={"5000": {"room": "`+demoRoom+`"}}`)
	admin := apiClient{t, g.base, key}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var seen []receivedHook
	started := awaitHook(t, events, &seen, api.WebhookRoomStarted, 10*time.Second)
	require.Equal(t, demoRoom, string(started.ev.Room))
	select {
	case <-hangArrived: // the hanging endpoint holds room.started from now on
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the hanging receiver got nothing")
	}

	pion, _ := joinToneBot(ctx, t, g)
	joined := awaitHook(t, events, &seen, api.WebhookParticipantJoined, 10*time.Second)
	require.Equal(t, "webrtc", joined.ev.Participant.Kind)

	call, err := siptest.NewPhone(t).Dial(ctx, g.sip,
		siptest.Options{Codec: siptest.PCMU, TelephoneEvent: true, User: "5000", From: "4930123456"})
	require.NoError(t, err)
	answered := time.Now()
	callStarted := awaitHook(t, events, &seen, api.WebhookCallStarted, 10*time.Second)
	require.Less(t, callStarted.at.Sub(answered), hookLatency, "call.started is not held back by the hanging endpoint")
	require.Equal(t, demoRoom, string(callStarted.ev.Room), "the dispatch rule's room")
	require.Equal(t, "********56", callStarted.ev.Call.From)
	require.Equal(t, "**00", callStarted.ev.Call.To)
	require.NoError(t, call.Press(ctx, demoPIN+"#", siptest.RFC4733))
	g.logs.await(t, 10*time.Second, "session: joined", "room="+demoRoom)
	phoneJoined := awaitHook(t, events, &seen, api.WebhookParticipantJoined, hookLatency)
	require.Equal(t, "phone", phoneJoined.ev.Participant.Kind)
	require.Equal(t, callStarted.ev.Call.ID, string(phoneJoined.ev.Participant.ID))
	require.NotContains(t, phoneJoined.ev.Participant.Name, "4930123456", "the caller's name is masked")

	rec := admin.manifest(http.MethodPost, "/api/v1/rooms/"+demoRoom+"/recording/start", "", http.StatusCreated)
	recStarted := awaitHook(t, events, &seen, api.WebhookRecordingStarted, hookLatency)
	require.Equal(t, rec.ID, recStarted.ev.Recording.ID)
	require.Equal(t, demoRoom, string(recStarted.ev.Room))
	level, margin, worst := phoneHearsTone(ctx, t, call, toneHz)
	t.Logf("while a receiver hangs, the phone hears the room's %d Hz at %.1f dB, %.1f dB above %.0f Hz", toneHz, level, margin, worst)
	admin.manifest(http.MethodPost, "/api/v1/rooms/"+demoRoom+"/recording/stop", "", http.StatusOK)
	recEnded := awaitHook(t, events, &seen, api.WebhookRecordingEnded, 5*time.Second)
	require.Equal(t, "complete", string(recEnded.ev.Recording.State))
	require.Positive(t, recEnded.ev.Recording.Duration)
	deleted := admin.manifest(http.MethodDelete, "/api/v1/recordings/"+string(rec.ID), `{"reason":"admin"}`, http.StatusOK)
	recDeleted := awaitHook(t, events, &seen, api.WebhookRecordingDeleted, 5*time.Second)
	rc := recDeleted.ev.Receipt
	require.NotNil(t, rc, "recording.deleted carries the receipt")
	require.Equal(t, deleted.Deletion.Receipt, rc.ID)
	require.Equal(t, rec.ID, rc.Recording)
	require.Equal(t, demoRoom, string(rc.Room))
	require.Equal(t, deleted.Deletion.SHA256, rc.SHA256)
	require.Equal(t, recEnded.ev.Recording.ID, rc.Recording)
	require.Equal(t, "admin", string(rc.Reason))

	from := len(seen)
	require.NoError(t, call.Hangup(ctx))
	require.NoError(t, pion.Close())
	// The phone's and the pion participant's leaves, and the call's end
	// (which the bridge and the room report each on its own, so either
	// may come first).
	awaitHooks(t, events, &seen, from, 10*time.Second,
		api.WebhookCallEnded, api.WebhookParticipantLeft, api.WebhookParticipantLeft)

	requireHookOrder(t, seen, callStarted.ev.Call.ID)
	require.Len(t, hangArrived, 0, "the hanging receiver still holds its first event")
	require.Equal(t, float64(len(seen)-1), metricValue(t, g.base, `mediagate_webhook_queue_length{endpoint="hang"}`),
		"the hanging endpoint's events wait in its queue")
	require.Eventually(t, func() bool { // counted once the receiver's answer is in
		return metricValue(t, g.base, `mediagate_webhook_deliveries_total{endpoint="fast",outcome="delivered"}`) == float64(len(seen))
	}, 5*time.Second, 20*time.Millisecond)
}

// requireHookOrder checks the order of room demo's events as the receiver
// got them: each is unique by ID, and what caused another came first.
func requireHookOrder(t *testing.T, seen []receivedHook, callID string) {
	t.Helper()
	var order []string
	ids := map[string]bool{}
	for _, h := range seen {
		require.False(t, ids[h.ev.ID], "event %s delivered twice", h.ev.ID)
		ids[h.ev.ID] = true
		require.Equal(t, demoRoom, string(h.ev.Room), "%s", h.ev.Type)
		name := string(h.ev.Type)
		if p := h.ev.Participant; p != nil {
			name += "/" + p.Kind
		}
		order = append(order, name)
	}
	t.Logf("room %s: %s", demoRoom, strings.Join(order, ", "))
	before := func(a, b string) {
		i, j := slices.Index(order, a), slices.Index(order, b)
		require.True(t, i >= 0 && j >= 0 && i < j, "%s before %s in %v", a, b, order)
	}
	require.Equal(t, "room.started", order[0])
	before("participant.joined/webrtc", "call.started")
	before("call.started", "participant.joined/phone")
	before("participant.joined/phone", "recording.started")
	before("recording.started", "recording.ended")
	before("recording.ended", "recording.deleted")
	before("recording.ended", "participant.left/phone")
	before("call.started", "call.ended")
	require.NotContains(t, order, "room.finished", "a configured room stays open")
	require.NotEmpty(t, callID)
}

// metricValue reads one series of the gateway's /metrics.
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	line := regexp.MustCompile(`^(\S+) (\S+)$`)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil && m[1] == series {
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			return v
		}
	}
	require.NoError(t, sc.Err())
	require.FailNow(t, "series not exposed", series)
	return 0
}

// TestEgressWebhooks: a room's live stream reaches a receiver as
// egress.started, the destination's state changes as egress.updated
// (connecting first, stopped last) and egress.ended, in that order, with
// the destination's masked URL: the stream key is in no event.
func TestEgressWebhooks(t *testing.T) {
	const key = "sk-hooks-0123456789"
	url, events := startHookReceiver(t)
	log := slog.New(slog.DiscardHandler)
	hooks := newTestNodeWebhooks(t, url)
	addr, conns := acceptAll(t)
	mgr := room.NewManager(room.WithOnOpen(hooks.roomOpened))
	t.Cleanup(func() { require.NoError(t, mgr.Close(context.Background())) })
	_, err := mgr.Create("board", room.WithEmptyTimeout(-1))
	require.NoError(t, err)
	g := newRoomStreams(log, stream.Options{AllowPrivate: true, Timeout: time.Minute}, nil, 0)
	g.rooms, g.hooks = mgr, hooks
	t.Cleanup(func() { require.NoError(t, g.close(context.Background())) })

	_, err = g.StartStream(context.Background(), "board", []stream.Destination{{ID: "local", URL: "rtmp://" + addr + "/live", Key: key}})
	require.NoError(t, err)
	awaitConn(t, conns)
	require.NoError(t, g.StopStream("board"))

	var seen []receivedHook
	awaitHook(t, events, &seen, api.WebhookEgressEnded, 10*time.Second)
	var order []string
	for _, h := range seen {
		require.Equal(t, "board", string(h.ev.Room))
		name := string(h.ev.Type)
		if d := destinationOf(h.ev); d != nil {
			require.Equal(t, "local", d.ID)
			require.Equal(t, "rtmp://"+addr+"/live", d.URL, "the masked URL")
			require.NotContains(t, d.Error, key)
			name += "/" + d.State
		}
		order = append(order, name)
	}
	t.Logf("room board: %s", strings.Join(order, ", "))
	require.Equal(t, []string{"room.started", "egress.started", "egress.updated/connecting"}, order[:3])
	require.Equal(t, []string{"egress.updated/stopped", "egress.ended"}, order[len(order)-2:])
}

// destinationOf is the event's egress destination, if any.
func destinationOf(ev api.WebhookEvent) *api.WebhookDestination {
	if ev.Egress == nil {
		return nil
	}
	return ev.Egress.Destination
}

// newTestNodeWebhooks returns the node's event sources publishing to one
// endpoint at url, closed in t.Cleanup.
func newTestNodeWebhooks(t *testing.T, url string) *nodeWebhooks {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	hooks := &nodeWebhooks{log: log, hooks: api.NewWebhooks(log, []api.WebhookEndpoint{{Name: "fast", URL: url, Secret: webhookTestSecret}},
		api.WithWebhookNode("n1"))}
	t.Cleanup(func() { require.NoError(t, hooks.close(context.Background())) })
	return hooks
}

// TestRecordingWebhooks: a recording's life reaches a receiver in order:
// recording.started, .ended (complete), .expiring at the first warning
// lead before its expiry, and .deleted by the sweeper once expired, with
// the receipt the recorder wrote (the same ID, hash and reason as the
// receipts log's line).
func TestRecordingWebhooks(t *testing.T) {
	url, events := startHookReceiver(t)
	hooks := newTestNodeWebhooks(t, url)
	cfg := configs.Default()
	cfg.Storage.Dir, cfg.Node.ID = t.TempDir(), "n1"
	ro := recorderOptions(cfg, []byte(strings.Repeat("k", recorder.MinReceiptKeyLen)), slog.New(slog.DiscardHandler))
	ro.OnEvent = hooks.recordingEvent
	rec, err := recorder.New(ro)
	require.NoError(t, err)
	hooks.rec.Store(rec)
	t.Cleanup(func() { require.NoError(t, rec.Close(context.Background())) })
	mgr := room.NewManager()
	t.Cleanup(func() { require.NoError(t, mgr.Close(context.Background())) })
	rm, err := mgr.Create("board", room.WithEmptyTimeout(-1))
	require.NoError(t, err)

	r, err := rec.Start("board", configs.DefaultTenant, cfg.Recording.RoomPolicy("board"), rm.SubscribeMix(recorder.RecommendedMixBuffer))
	require.NoError(t, err)
	id := r.Manifest().ID
	var seen []receivedHook
	awaitHook(t, events, &seen, api.WebhookRecordingStarted, 5*time.Second)
	require.NoError(t, r.Stop(context.Background()))
	ended := awaitHook(t, events, &seen, api.WebhookRecordingEnded, 5*time.Second)
	require.Equal(t, recorder.StateComplete, ended.ev.Recording.State)

	m, err := rec.Get(id)
	require.NoError(t, err)
	rec.WarnExpiring(m.ExpiresAt.Add(-cfg.Recording.ExpiryWarnings[0] + time.Minute))
	expiring := awaitHook(t, events, &seen, api.WebhookRecordingExpiring, 5*time.Second)
	require.Equal(t, cfg.Recording.ExpiryWarnings[0].Seconds(), expiring.ev.Recording.Lead)
	require.True(t, m.ExpiresAt.Equal(expiring.ev.Recording.ExpiresAt))

	rec.Sweep(m.ExpiresAt.Add(time.Minute))
	deleted := awaitHook(t, events, &seen, api.WebhookRecordingDeleted, 5*time.Second)
	receipts, err := rec.Receipts(recorder.ReceiptFilter{})
	require.NoError(t, err)
	require.Len(t, receipts, 1)
	line := receipts[0]
	require.Equal(t, &api.WebhookReceipt{ID: line.ID, Recording: id, Tenant: line.Tenant, Room: "board", SHA256: line.SHA256,
		Bytes: line.Bytes, ExpiresAt: line.ExpiresAt, DeletedAt: line.DeletedAt, Reason: recorder.ReasonExpired, Node: "n1"},
		deleted.ev.Receipt)

	var order []string
	for _, h := range seen {
		require.Equal(t, "board", string(h.ev.Room))
		require.Equal(t, id, h.ev.Recording.ID)
		order = append(order, string(h.ev.Type))
	}
	require.Equal(t, []string{"recording.started", "recording.ended", "recording.expiring", "recording.deleted"}, order)
}
