package recorder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testKey signs receipts in tests.
var testKey = bytes.Repeat([]byte("k"), MinReceiptKeyLen)

// t0 is the tests' start of time.
var t0 = time.Date(2031, 3, 14, 9, 0, 0, 0, time.UTC)

// testClock is an injectable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock { return &testClock{now: t0} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// harness is a Recorder on a temp store with a test clock and its events.
type harness struct {
	r      *Recorder
	clock  *testClock
	events chan Event
	opts   Options
}

// newHarness opens a Recorder in a fresh temp dir (or opts.Dir if mod sets
// it); mod may change the options.
func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{clock: newClock(), events: make(chan Event, 1000)}
	h.opts = Options{
		Dir: t.TempDir(), Node: "node-a", ReceiptKey: testKey, Now: h.clock.Now,
		OnEvent: func(ev Event) {
			select {
			case h.events <- ev:
			default:
			}
		},
	}
	if mod != nil {
		mod(&h.opts)
	}
	r, err := New(h.opts)
	require.NoError(t, err)
	h.r = r
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return h
}

// reopen closes the recorder and opens a new one on the same store, as a
// restart does.
func (h *harness) reopen(t *testing.T) {
	t.Helper()
	require.NoError(t, h.r.Close(context.Background()))
	r, err := New(h.opts)
	require.NoError(t, err)
	h.r = r
	t.Cleanup(func() { _ = r.Close(context.Background()) })
}

// awaitEvent waits (bounded) for an event of type typ for id ("" any).
func (h *harness) awaitEvent(t *testing.T, typ EventType, id ID) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-h.events:
			if ev.Type == typ && (id == "" || ev.ID == id) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event for %q within 10 s", typ, id)
		}
	}
}

// record runs a whole recording of frames from a script and waits for it.
func (h *harness) record(t *testing.T, tenant Tenant, policy string, frames []room.MixFrame) Manifest {
	t.Helper()
	rec, err := h.r.Start("room-1", tenant, policy, &scriptSource{frames: frames})
	require.NoError(t, err)
	waitDone(t, rec)
	require.NoError(t, rec.Err())
	return rec.Manifest()
}

func waitDone(t *testing.T, rec *Recording) {
	t.Helper()
	select {
	case <-rec.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("recording did not end within 20 s")
	}
}

// scriptSource replays frames, then reports io.EOF as a closed room does.
type scriptSource struct {
	frames []room.MixFrame
	i      int
}

func (s *scriptSource) Read(ctx context.Context, dst *room.MixFrame) error {
	if s.i == len(s.frames) {
		return io.EOF
	}
	*dst = s.frames[s.i]
	s.i++
	return nil
}

func (s *scriptSource) Close() {}

// chanSource hands the recording the frames a test sends on frames; each
// Read reports on reads how many frames were taken before it, so a test
// knows when the recording has dealt with frame n (it asks for n+1).
type chanSource struct {
	frames chan room.MixFrame
	reads  chan int
	taken  int // the recording's goroutine's count
	sent   int // the test's count
	closed chan struct{}
	once   sync.Once
}

func newChanSource() *chanSource {
	return &chanSource{frames: make(chan room.MixFrame, 1000), reads: make(chan int, 10000), closed: make(chan struct{})}
}

func (s *chanSource) Read(ctx context.Context, dst *room.MixFrame) error {
	select {
	case s.reads <- s.taken:
	default:
	}
	select {
	case f, ok := <-s.frames:
		if !ok {
			return io.EOF
		}
		*dst = f
		s.taken++
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *chanSource) Close() { s.once.Do(func() { close(s.closed) }) }

// feed sends frames and waits until the recording has written them all:
// it has, once it asks for the frame after the last one sent.
func (s *chanSource) feed(t *testing.T, frames []room.MixFrame) {
	t.Helper()
	for _, f := range frames {
		s.frames <- f
	}
	s.sent += len(frames)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-s.reads:
			if n == s.sent {
				return
			}
		case <-deadline:
			t.Fatal("recording did not take the frames within 10 s")
		}
	}
}

// toneFrames returns n mix frames of a phase-continuous tone from tick
// first on.
func toneFrames(tone *mediatest.Tone, first uint64, n int) []room.MixFrame {
	out := make([]room.MixFrame, n)
	for i := range out {
		out[i].Tick = first + uint64(i)
		out[i].Time = t0.Add(time.Duration(i) * media.FrameDuration)
		tone.Fill(out[i].PCM[:])
	}
	return out
}

// probe runs ffprobe on an Ogg/Opus file.
type probeResult struct {
	Duration   float64
	Codec      string
	SampleRate int
	Channels   int
}

func probe(t *testing.T, path string) probeResult {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries",
		"format=duration:stream=codec_name,sample_rate,channels", "-of", "json", path).CombinedOutput()
	require.NoError(t, err, "ffprobe: %s", out)
	var v struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			Codec      string `json:"codec_name"`
			SampleRate string `json:"sample_rate"`
			Channels   int    `json:"channels"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &v), "%s", out)
	require.Len(t, v.Streams, 1, "%s", out)
	var p probeResult
	p.Duration, err = strconv.ParseFloat(v.Format.Duration, 64)
	require.NoError(t, err, "%s", out)
	p.Codec, p.Channels = v.Streams[0].Codec, v.Streams[0].Channels
	p.SampleRate, _ = strconv.Atoi(v.Streams[0].SampleRate)
	return p
}

// fileSHA returns the hex SHA-256 and size of a file.
func fileSHA(t *testing.T, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), int64(len(b))
}

// audioPath returns the audio file of id in h's store, in h's format.
func (h *harness) audioPath(t *testing.T, id ID) string {
	t.Helper()
	p, err := h.r.st.audioPath(id, h.opts.Format) // not Get: callers may hold the entry's lock
	require.NoError(t, err)
	return p
}

func (h *harness) manifestPath(t *testing.T, id ID) string {
	t.Helper()
	p, err := h.r.st.manifestPath(id)
	require.NoError(t, err)
	return p
}

// diskManifest reads id's manifest from disk.
func (h *harness) diskManifest(t *testing.T, id ID) Manifest {
	t.Helper()
	m, err := h.r.st.readManifest(id)
	require.NoError(t, err)
	return m
}

// errorsAs is errors.As, named so tests read as the API handler will.
func errorsAs(err error, target any) bool { return errors.As(err, target) }
