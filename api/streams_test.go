package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/stream"
)

// streamKey is the secret of the tests: no answer, log line or audit
// entry may contain it.
const streamKey = "sk-live-0123456789abcdef"

// silentMix is a stream.MixSource that never has a frame: the egress
// waits on it until closed.
type silentMix struct {
	once sync.Once
	done chan struct{}
}

func (m *silentMix) Read(ctx context.Context, _ *room.MixFrame) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return context.Canceled
	}
}

func (m *silentMix) Close() { m.once.Do(func() { close(m.done) }) }

// fakeResolver resolves every name to a documentation address (public to
// package stream), and names under nx.example to nothing.
type fakeResolver struct{}

func (fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if strings.HasSuffix(host, ".nx.example") {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []netip.Addr{netip.MustParseAddr("203.0.113.10")}, nil
}

// fakeStreamer is the RoomStreamer seam over real stream.Egresses (so that
// what the API shows is what package stream reports), whose connections
// fail at once: no network is touched. Its events go to events.
type fakeStreamer struct {
	mu      sync.Mutex
	byRoom  map[room.ID]*stream.Egress
	events  chan stream.Event
	logOut  *strings.Builder
	logLock sync.Mutex
}

var _ RoomStreamer = (*fakeStreamer)(nil)

// lockedWriter serialises the egresses' log writes into a builder.
type lockedWriter struct{ f *fakeStreamer }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.f.logLock.Lock()
	defer w.f.logLock.Unlock()
	return w.f.logOut.Write(p)
}

func (f *fakeStreamer) logs() string {
	f.logLock.Lock()
	defer f.logLock.Unlock()
	return f.logOut.String()
}

func newFakeStreamer(t *testing.T) *fakeStreamer {
	t.Helper()
	f := &fakeStreamer{byRoom: map[room.ID]*stream.Egress{}, events: make(chan stream.Event, 64), logOut: &strings.Builder{}}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, e := range f.byRoom {
			require.NoError(t, e.Close())
		}
	})
	return f
}

func (f *fakeStreamer) StartStream(ctx context.Context, id room.ID, ds []stream.Destination) (stream.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byRoom[id]; ok {
		return stream.Status{}, ErrAlreadyStreaming
	}
	e, err := stream.New(&silentMix{done: make(chan struct{})}, nil, stream.Options{
		Room: id, BackoffMin: time.Hour, BackoffMax: time.Hour, Resolver: fakeResolver{},
		Logger: slog.New(slog.NewTextHandler(lockedWriter{f}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("test network refuses")
		},
		OnEvent: func(ev stream.Event) {
			select {
			case f.events <- ev:
			default:
			}
		},
	})
	if err != nil {
		return stream.Status{}, err
	}
	for _, d := range ds {
		if _, err := e.Add(ctx, d); err != nil {
			_ = e.Close()
			return stream.Status{}, err
		}
	}
	f.byRoom[id] = e
	return e.Status(), nil
}

func (f *fakeStreamer) egress(id room.ID) (*stream.Egress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.byRoom[id]
	if !ok {
		return nil, ErrNotStreaming
	}
	return e, nil
}

func (f *fakeStreamer) AddDestination(ctx context.Context, id room.ID, d stream.Destination) (stream.DestinationStatus, error) {
	e, err := f.egress(id)
	if err != nil {
		return stream.DestinationStatus{}, err
	}
	did, err := e.Add(ctx, d)
	if err != nil {
		return stream.DestinationStatus{}, err
	}
	return e.Destination(did)
}

func (f *fakeStreamer) RemoveDestination(id room.ID, d stream.DestinationID) error {
	e, err := f.egress(id)
	if err != nil {
		return err
	}
	return e.Remove(d)
}

func (f *fakeStreamer) StopStream(id room.ID) error {
	f.mu.Lock()
	e, ok := f.byRoom[id]
	delete(f.byRoom, id)
	f.mu.Unlock()
	if !ok {
		return ErrNotStreaming
	}
	return e.Close()
}

func (f *fakeStreamer) StreamStatus(id room.ID) (stream.Status, error) {
	e, err := f.egress(id)
	if err != nil {
		return stream.Status{}, err
	}
	return e.Status(), nil
}

func (f *fakeStreamer) Streams() []stream.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []stream.Status
	for _, e := range f.byRoom {
		out = append(out, e.Status())
	}
	return out
}

// streamEnv is the admin API with the stream routes over fakeStreamer.
type streamEnv struct {
	*adminEnv
	streams *fakeStreamer
}

func newStreamEnv(t *testing.T) *streamEnv {
	t.Helper()
	e := &streamEnv{adminEnv: newAdminEnv(t), streams: newFakeStreamer(t)}
	key, hash := NewAdminKey()
	e.key = key
	log := slog.New(slog.NewTextHandler(e.log, nil))
	e.h = New(log, WithAdmin(e.mgr, e.auth, []string{hash}), WithKeyStore(e.keys), WithAuditLog(e.audit),
		WithStreams(e.streams)).Handler()
	return e
}

// awaitState waits for destination id of room to reach state.
func (e *streamEnv) awaitState(t *testing.T, id room.ID, d stream.DestinationID, state stream.State) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-e.streams.events:
			if ev.Room == id && ev.Destination == d && ev.State == state {
				return
			}
		case <-timeout:
			t.Fatalf("destination %s of %s never reached %s", d, id, state)
		}
	}
}

// requireNoKey checks that the stream key is nowhere: not in the answer,
// the node's log, the egresses' log or the audit log's files.
func (e *streamEnv) requireNoKey(t *testing.T, answers ...string) {
	t.Helper()
	for _, a := range answers {
		require.NotContains(t, a, streamKey)
	}
	require.NotContains(t, e.log.String(), streamKey)
	require.NotContains(t, e.streams.logs(), streamKey)
	files, err := filepath.Glob(filepath.Join(e.dir, "audit", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "the audit log was written")
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		require.NotContains(t, string(b), streamKey)
	}
}

// TestStreamsLifecycle: an admin starts an egress of a room with two
// destinations (the key in the URL, and apart), sees them by masked URL
// with their state, bytes, reconnects and last error, adds and removes a
// destination and stops the egress; the key never comes back.
func TestStreamsLifecycle(t *testing.T) {
	e := newStreamEnv(t)
	start := body(startRequest{Destinations: []destinationRequest{
		{ID: "yt", Name: "YouTube", URL: "rtmp://a.rtmp.example.com/live2/" + streamKey},
		{ID: "fb", Name: "Facebook", URL: "rtmps://live-api-s.example.com:443/rtmp/", Key: streamKey},
	}})
	w := e.admin(http.MethodPost, "/api/v1/rooms/board/egresses", start)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.Equal(t, "/api/v1/rooms/board/egresses", w.Header().Get("Location"))
	var eg egressJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &eg))
	require.Equal(t, "board", eg.Room)
	require.Equal(t, "acme", eg.Tenant)
	require.Len(t, eg.Destinations, 2)
	require.Equal(t, "rtmp://a.rtmp.example.com/live2", eg.Destinations[0].URL)
	require.Equal(t, "rtmps://live-api-s.example.com:443/rtmp", eg.Destinations[1].URL)
	answers := []string{w.Body.String()}

	// A second start is refused: destinations are added to the running one.
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/rooms/board/egresses", start), http.StatusConflict, "already-streaming")

	// The failed connection shows in the status, masked.
	e.awaitState(t, "board", "yt", stream.StateBackoff)
	w = e.admin(http.MethodGet, "/api/v1/rooms/board/egresses", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	answers = append(answers, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &eg))
	yt := eg.Destinations[0]
	require.Equal(t, "yt", yt.ID)
	require.Equal(t, "YouTube", yt.Name)
	require.Equal(t, string(stream.StateBackoff), yt.State)
	require.Contains(t, yt.LastError, "test network refuses")
	require.NotNil(t, yt.LastErrorAt)
	require.NotNil(t, yt.NextAttempt)
	require.Contains(t, w.Body.String(), `"bytes":0`)
	require.Contains(t, w.Body.String(), `"reconnects":0`)
	require.Contains(t, w.Body.String(), `"bitrate":0`)

	// Add one, remove it, remove it again.
	w = e.admin(http.MethodPost, "/api/v1/rooms/board/egresses/destinations",
		body(destinationRequest{ID: "tw", Name: "Twitch", URL: "rtmp://live.example.net/app", Key: streamKey + "-tw"}))
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	answers = append(answers, w.Body.String())
	var d destinationJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &d))
	require.Equal(t, "tw", d.ID)
	require.Equal(t, "rtmp://live.example.net/app", d.URL)
	w = e.admin(http.MethodDelete, "/api/v1/rooms/board/egresses/destinations/tw", "")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	requireProblem(t, e.admin(http.MethodDelete, "/api/v1/rooms/board/egresses/destinations/tw", ""), http.StatusNotFound, "destination-not-found")

	// The listing has the egress; stopping ends it.
	w = e.admin(http.MethodGet, "/api/v1/egresses", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	answers = append(answers, w.Body.String())
	var list []egressJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Len(t, list, 1)
	require.Equal(t, "board", list[0].Room)
	require.Len(t, list[0].Destinations, 2)
	w = e.admin(http.MethodDelete, "/api/v1/rooms/board/egresses", "")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	requireProblem(t, e.admin(http.MethodGet, "/api/v1/rooms/board/egresses", ""), http.StatusNotFound, "not-streaming")
	requireProblem(t, e.admin(http.MethodDelete, "/api/v1/rooms/board/egresses", ""), http.StatusNotFound, "not-streaming")
	e.requireNoKey(t, answers...)
}

// TestStreamsBadDestinations: a URL stream refuses answers 400 or 422
// from the stream error's HTTPStatus, names the destination without its
// key, and starts nothing.
func TestStreamsBadDestinations(t *testing.T) {
	e := newStreamEnv(t)
	tests := []struct {
		name   string
		dest   destinationRequest
		status int
		slug   string
	}{
		{"scheme", destinationRequest{URL: "srt://ingest.example.com/live/" + streamKey}, http.StatusBadRequest, "unsupported-destination-scheme"},
		{"no key", destinationRequest{URL: "rtmp://ingest.example.com/live"}, http.StatusBadRequest, "invalid-destination-url"},
		{"credentials", destinationRequest{URL: "rtmp://user:" + streamKey + "@ingest.example.com/live/x"}, http.StatusBadRequest, "invalid-destination-url"},
		{"loopback", destinationRequest{URL: "rtmp://127.0.0.1/live/" + streamKey}, http.StatusUnprocessableEntity, "private-destination"},
		{"private", destinationRequest{URL: "rtmp://10.1.2.3/live", Key: streamKey}, http.StatusUnprocessableEntity, "private-destination"},
		{"unresolvable", destinationRequest{URL: "rtmp://ingest.nx.example/live", Key: streamKey}, http.StatusUnprocessableEntity, "destination-unresolvable"},
		{"id", destinationRequest{ID: "a/b", URL: "rtmp://ingest.example.com/live", Key: streamKey}, http.StatusBadRequest, "invalid-destination-id"},
		{"no url", destinationRequest{Key: streamKey}, http.StatusBadRequest, "bad-request"},
		{"name", destinationRequest{Name: "a\x00b", URL: "rtmp://ingest.example.com/live", Key: streamKey}, http.StatusBadRequest, "bad-request"},
	}
	var answers []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.admin(http.MethodPost, "/api/v1/rooms/board/egresses", body(startRequest{Destinations: []destinationRequest{tt.dest}}))
			requireProblem(t, w, tt.status, tt.slug)
			answers = append(answers, w.Body.String())
		})
	}
	requireProblem(t, e.admin(http.MethodGet, "/api/v1/rooms/board/egresses", ""), http.StatusNotFound, "not-streaming")
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/rooms/board/egresses", `{"destinations":[]}`), http.StatusBadRequest, "bad-request")
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/rooms/Board!/egresses", `{"destinations":[]}`), http.StatusBadRequest, "bad-request")
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/rooms/board/egresses/destinations",
		body(destinationRequest{URL: "rtmp://ingest.example.com/live", Key: streamKey})), http.StatusNotFound, "not-streaming")
	e.requireNoKey(t, answers...)
}

// TestStreamsTenantsAndRoles: without a key every route answers 401; a
// viewer of the room's tenant reads but starts, adds, removes and stops
// nothing; another tenant's admin gets 403 and does not see the egress
// in the listing; nothing a refused request asked for happened.
func TestStreamsTenantsAndRoles(t *testing.T) {
	e := newStreamEnv(t)
	acmeViewer, _ := e.newKey(t, "acme wall", RoleViewer, "acme")
	acmeAdmin, _ := e.newKey(t, "acme ops", RoleAdmin, "acme")
	globexAdmin, _ := e.newKey(t, "globex ops", RoleAdmin, "globex")
	start := body(startRequest{Destinations: []destinationRequest{{ID: "yt", URL: "rtmp://a.rtmp.example.com/live2", Key: streamKey}}})
	add := body(destinationRequest{ID: "tw", URL: "rtmp://live.example.net/app", Key: streamKey})
	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/egresses", ""},
		{http.MethodGet, "/api/v1/rooms/board/egresses", ""},
		{http.MethodPost, "/api/v1/rooms/board/egresses", start},
		{http.MethodPost, "/api/v1/rooms/board/egresses/destinations", add},
		{http.MethodDelete, "/api/v1/rooms/board/egresses/destinations/yt", ""},
		{http.MethodDelete, "/api/v1/rooms/board/egresses", ""},
	}
	for _, rt := range routes {
		w := e.do(rt.method, rt.path, rt.body, "Content-Type", "application/json")
		require.Equal(t, http.StatusUnauthorized, w.Code, "%s %s without a key: %s", rt.method, rt.path, w.Body.String())
	}
	for _, rt := range routes[2:] {
		requireProblem(t, e.as(acmeViewer, rt.method, rt.path, rt.body), http.StatusForbidden, "forbidden")
		requireProblem(t, e.as(globexAdmin, rt.method, rt.path, rt.body), http.StatusForbidden, "forbidden")
	}
	require.Empty(t, e.streams.Streams(), "refused starts started nothing")

	w := e.as(acmeAdmin, http.MethodPost, "/api/v1/rooms/board/egresses", start)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	w = e.as(acmeViewer, http.MethodGet, "/api/v1/rooms/board/egresses", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	requireProblem(t, e.as(globexAdmin, http.MethodGet, "/api/v1/rooms/board/egresses", ""), http.StatusForbidden, "forbidden")
	for _, rt := range routes[3:] {
		requireProblem(t, e.as(acmeViewer, rt.method, rt.path, rt.body), http.StatusForbidden, "forbidden")
		requireProblem(t, e.as(globexAdmin, rt.method, rt.path, rt.body), http.StatusForbidden, "forbidden")
	}
	st, err := e.streams.StreamStatus("board")
	require.NoError(t, err)
	require.Len(t, st.Destinations, 1, "refused adds and removes changed nothing")

	for key, want := range map[string]int{acmeViewer: 1, acmeAdmin: 1, globexAdmin: 0, e.key: 1} {
		w := e.as(key, http.MethodGet, "/api/v1/egresses", "")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var list []egressJSON
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
		require.Len(t, list, want)
	}
	w = e.as(acmeAdmin, http.MethodDelete, "/api/v1/rooms/board/egresses", "")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	e.requireNoKey(t)
}
