package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// recTestKey signs the receipts (and, derived, the links) of the tests.
var recTestKey = bytes.Repeat([]byte("r"), recorder.MinReceiptKeyLen)

// recClock is the injectable clock of the recorder and the links.
type recClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *recClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *recClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recEnv is the admin API with the recordings routes over a real recorder
// on a temp store, on a clock the test moves, with a one-minute policy.
type recEnv struct {
	*adminEnv
	clock *recClock
	rec   *recorder.Recorder
	dir   string // the store, inside root
	root  string // holds the store and files outside it
	rooms *fakeRoomRecorder
}

// fakeRoomRecorder is the RoomRecorder seam, built from function fields.
type fakeRoomRecorder struct {
	start func(room.ID) (recorder.Manifest, error)
	stop  func(context.Context, room.ID) (recorder.Manifest, error)
}

func (f *fakeRoomRecorder) StartRecording(id room.ID) (recorder.Manifest, error) { return f.start(id) }
func (f *fakeRoomRecorder) StopRecording(ctx context.Context, id room.ID) (recorder.Manifest, error) {
	return f.stop(ctx, id)
}

func newRecEnv(t *testing.T) *recEnv {
	t.Helper()
	return newRecEnvFormat(t, "")
}

// newRecEnvFormat is newRecEnv with the recorder writing format.
func newRecEnvFormat(t *testing.T, format string) *recEnv {
	t.Helper()
	return newRecEnvOptions(t, func(o *recorder.Options) { o.Format = format })
}

// newRecEnvOptions is newRecEnv with the recorder's options changed by mod.
func newRecEnvOptions(t *testing.T, mod func(*recorder.Options)) *recEnv {
	t.Helper()
	e := &recEnv{adminEnv: newAdminEnv(t), clock: &recClock{now: t0}, root: t.TempDir(), rooms: &fakeRoomRecorder{}}
	e.dir = filepath.Join(e.root, "store")
	opts := recorder.Options{
		Dir: e.dir, Node: "node-a", ReceiptKey: recTestKey, Now: e.clock.Now, Sync: recorder.SyncNever,
		Policies: []recorder.Policy{{Name: "minute", Duration: time.Minute, Max: time.Hour}},
	}
	mod(&opts)
	rec, err := recorder.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rec.Close(context.Background())) })
	e.rec = rec
	key, hash := NewAdminKey()
	e.key = key
	log := slog.New(slog.NewTextHandler(e.log, nil))
	e.h = New(log, WithAdmin(e.mgr, e.auth, []string{hash}), WithRecordings(Recordings{
		Recorder: rec, Rooms: e.rooms, LinkSecret: recTestKey, Now: e.clock.Now,
	})).Handler()
	return e
}

// frames is a recorder.Source that plays a fixed list of mix frames and
// then ends, as a room that closes.
type frames struct {
	f []room.MixFrame
	i int
}

func (s *frames) Read(_ context.Context, dst *room.MixFrame) error {
	if s.i == len(s.f) {
		return io.EOF
	}
	*dst = s.f[s.i]
	s.i++
	return nil
}

func (s *frames) Close() {}

// toneSource returns seconds of a 700 Hz tone as mix frames.
func toneSource(seconds int) *frames {
	tone := &mediatest.Tone{Freq: 700, Amp: 0.4, Rate: media.Rate48k}
	s := &frames{f: make([]room.MixFrame, seconds*50)}
	for i := range s.f {
		s.f[i].Tick = uint64(i + 1)
		tone.Fill(s.f[i].PCM[:])
	}
	return s
}

// record makes a complete two-second recording of roomID for tenant under
// policy, with one participant, and returns its manifest.
func (e *recEnv) record(t *testing.T, roomID room.ID, tenant recorder.Tenant, policy string) recorder.Manifest {
	t.Helper()
	rec, err := e.rec.Start(roomID, tenant, policy, toneSource(2))
	require.NoError(t, err)
	rec.Joined(recorder.ParticipantInfo{ID: "p1", Name: "Ada Lovelace", Number: "+4930123456", Kind: room.KindPhone}, time.Time{})
	select {
	case <-rec.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("recording did not end")
	}
	require.NoError(t, rec.Err())
	return rec.Manifest()
}

// manifest fetches a manifest through the API.
func (e *recEnv) manifest(t *testing.T, id recorder.ID) recorder.Manifest {
	t.Helper()
	w := e.admin(http.MethodGet, "/api/v1/recordings/"+string(id), "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var m recorder.Manifest
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m))
	return m
}

// download fetches a recording's audio through the API and checks that the
// ETag is the SHA-256 of what came.
func (e *recEnv) download(t *testing.T, id recorder.ID) []byte {
	t.Helper()
	w := e.admin(http.MethodGet, "/api/v1/recordings/"+string(id)+"/download", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, recorder.Format, w.Header().Get("Content-Type"))
	sum := sha256.Sum256(w.Body.Bytes())
	require.Equal(t, `"`+hex.EncodeToString(sum[:])+`"`, w.Header().Get("ETag"))
	return w.Body.Bytes()
}

// storeFiles lists the names in the store.
func (e *recEnv) storeFiles(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(e.dir)
	require.NoError(t, err)
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

// verifyReceipts checks the receipts log with the key and returns the
// number of receipts.
func (e *recEnv) verifyReceipts(t *testing.T) int {
	t.Helper()
	f, err := os.Open(filepath.Join(e.dir, recorder.ReceiptsFileName))
	require.NoError(t, err)
	defer f.Close()
	n, err := recorder.Verify(f, recTestKey)
	require.NoError(t, err)
	return n
}

// body is a JSON request body.
func body(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// doURL sends a request for a path with query, with the given headers
// ("Authorization" among them or not).
func (e *recEnv) doURL(method, target string, kv ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(""))
	r.RemoteAddr = "192.0.2.1:40000"
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}
