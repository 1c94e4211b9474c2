package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/stream"
)

// fuzzStreamer accepts every egress StartStream is asked for: the body's
// decoding and checks are what FuzzAdminBodies exercises. Only StartStream
// is ever called.
type fuzzStreamer struct{ RoomStreamer }

func (fuzzStreamer) StartStream(_ context.Context, id room.ID, ds []stream.Destination) (stream.Status, error) {
	st := stream.Status{Room: id}
	for i, d := range ds {
		st.Destinations = append(st.Destinations, stream.DestinationStatus{ID: stream.DestinationID(rune('a' + i)), URL: d.URL})
	}
	return st, nil
}

// fuzzRoutes are the admin routes FuzzAdminBodies posts bodies to; %s is
// the recording made at the start.
var fuzzRoutes = []string{
	"/api/v1/rooms/board/tokens",
	"/api/v1/keys",
	"/api/v1/recordings/%s/extend",
	"/api/v1/recordings/%s/hold",
	"/api/v1/rooms/board/egresses",
	"/r/board/token", // the join page's, no key
}

// newFuzzAPI is the admin API with join page, key store, audit log,
// recordings (one complete recording) and streams, built once per fuzz
// target; it returns the handler, the admin key and the recording's ID.
func newFuzzAPI(f *testing.F) (http.Handler, string, recorder.ID) {
	f.Helper()
	dir := f.TempDir()
	log := slog.New(slog.DiscardHandler)
	clock := &recClock{now: t0}
	auth, err := NewAuth(configs.Auth{TokenSecret: testSecret, PageTokenLifetime: 10 * time.Minute}, joinRooms,
		WithAuthClock(clock.Now))
	if err != nil {
		f.Fatal(err)
	}
	mgr := room.NewManager(room.WithRoomDefaults(room.WithManualTick(), room.WithEmptyTimeout(-1)))
	f.Cleanup(func() { _ = mgr.Close(context.Background()) })
	keys, err := OpenKeyStore(filepath.Join(dir, KeyStoreFileName))
	if err != nil {
		f.Fatal(err)
	}
	audit, err := OpenAuditLog(filepath.Join(dir, "audit"), log, WithAuditClock(clock.Now))
	if err != nil {
		f.Fatal(err)
	}
	rec, err := recorder.New(recorder.Options{
		Dir: filepath.Join(dir, "store"), Node: "node-a", ReceiptKey: recTestKey, Now: clock.Now, Sync: recorder.SyncNever,
		Policies: []recorder.Policy{{Name: "minute", Duration: time.Minute, Max: time.Hour}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = rec.Close(context.Background()) })
	r, err := rec.Start("board", "acme", "minute", toneSource(1))
	if err != nil {
		f.Fatal(err)
	}
	<-r.Done()
	if err := r.Err(); err != nil {
		f.Fatal(err)
	}
	key, hash := NewAdminKey()
	h := New(log, WithJoinPage(mgr, auth), WithAdmin(mgr, auth, []string{hash}), WithKeyStore(keys),
		WithAuditLog(audit), WithStreams(fuzzStreamer{}), WithRecordings(Recordings{
			Recorder: rec, Rooms: &fakeRoomRecorder{}, LinkSecret: recTestKey, Now: clock.Now,
		})).Handler()
	return h, key, r.Manifest().ID
}

// FuzzAdminBodies posts arbitrary bodies, with an arbitrary Content-Type,
// to the admin routes that decode JSON (token issue, key create, recording
// extend and hold, egress start) and to the join page's token route.
// Properties: nothing panics; the answer is never 5xx; a 2xx carries JSON;
// a 4xx is problem+json whose status repeats the code, with a type and a
// title.
func FuzzAdminBodies(f *testing.F) {
	f.Add(uint8(0), "application/json", []byte(`{"identity":"u1","name":"Ada","grants":{"publish":true,"listen":true},"ttl_seconds":600}`))
	f.Add(uint8(1), "application/json", []byte(`{"name":"ops","role":"viewer","tenant":"acme"}`))
	f.Add(uint8(1), "application/json", []byte(`{"name":"x","role":"admin","tenant":"","expires_at":"9999-12-31T23:59:59Z"}`))
	f.Add(uint8(2), "application/json", []byte(`{"until":"2025-03-01T13:00:00Z"}`))
	f.Add(uint8(2), "application/json", []byte(`{"until":"0001-01-01T00:00:00Z"}`))
	f.Add(uint8(3), "application/json; charset=utf-8", []byte(`{"reason":"case 42"}`))
	f.Add(uint8(4), "application/json", []byte(`{"destinations":[{"name":"YouTube","url":"rtmp://live.example.com/app","key":"k-1"}]}`))
	f.Add(uint8(4), "application/json", []byte(`{"destinations":[{"url":"rtmps://[::1]:0/a/b"}],"destinations":null}`))
	f.Add(uint8(5), "application/json", []byte(`{"name":"Ada","pin":"4711"}`))
	f.Add(uint8(0), "text/plain", []byte(`{}`))
	f.Add(uint8(1), "application/json", []byte(`{"name":"a"} {"name":"b"}`))
	f.Add(uint8(3), "application/json", []byte("\"\xff\xfe\""))
	h, key, recID := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, route uint8, contentType string, body []byte) {
		path := strings.ReplaceAll(fuzzRoutes[int(route)%len(fuzzRoutes)], "%s", string(recID))
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
		r.RemoteAddr = "192.0.2.1:40000"
		if !strings.HasPrefix(path, "/r/") {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkAnswer(t, path, w)
	})
}

// checkAnswer checks a response of FuzzAdminBodies.
func checkAnswer(t *testing.T, path string, w *httptest.ResponseRecorder) {
	t.Helper()
	ct, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type"))
	switch {
	case w.Code >= 200 && w.Code < 300:
		if w.Code != http.StatusNoContent && (ct != "application/json" || !json.Valid(w.Body.Bytes())) {
			t.Fatalf("%s: %d with %q: %s", path, w.Code, ct, w.Body)
		}
	case w.Code >= 400 && w.Code < 500:
		var p Problem
		if ct != "application/problem+json" || json.Unmarshal(w.Body.Bytes(), &p) != nil ||
			p.Status != w.Code || p.Type == "" || p.Title == "" {
			t.Fatalf("%s: %d not a problem (%q): %s", path, w.Code, ct, w.Body)
		}
	default:
		t.Fatalf("%s: %d: %s", path, w.Code, w.Body)
	}
}
