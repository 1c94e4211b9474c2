package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
)

// errTestStale is the test fence's answer for a stale epoch, as
// cluster.ErrStaleEpoch is the real one's.
var errTestStale = errors.New("stale epoch")

// errTestBackend is the test fence's answer when it cannot tell.
var errTestBackend = errors.New("redis: connection refused")

// testFence is Options.Fence for tests: it answers what set says and
// counts the questions.
type testFence struct {
	mu    sync.Mutex
	err   error
	calls int
	rooms map[room.ID]uint64 // the last epoch asked about per room
}

func newTestFence() *testFence { return &testFence{rooms: map[room.ID]uint64{}} }

func (f *testFence) fence() Fence {
	return Fence{
		Check: func(_ context.Context, r room.ID, epoch uint64) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls++
			f.rooms[r] = epoch
			return f.err
		},
		Stale: func(err error) bool { return errors.Is(err, errTestStale) },
	}
}

func (f *testFence) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *testFence) asked() (int, map[room.ID]uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rooms := map[room.ID]uint64{}
	for k, v := range f.rooms {
		rooms[k] = v
	}
	return f.calls, rooms
}

// fileState is what a test compares to prove a file was not written.
type fileState struct {
	data  []byte
	mtime time.Time
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fileState{b, fi.ModTime()}
}

func TestStartIsFenced(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer error
		fence  func(*testFence) Fence
		want   []error
		status int
	}{
		{"stale", errTestStale, (*testFence).fence, []error{ErrStale, errTestStale}, 409},
		{"stale, wrapping ErrStale without Stale", ErrStale, func(f *testFence) Fence {
			fe := f.fence()
			fe.Stale = nil
			return fe
		}, []error{ErrStale}, 409},
		{"unreachable", errTestBackend, (*testFence).fence, []error{ErrFenceUnavailable, errTestBackend}, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFence()
			f.set(tc.answer)
			h := newHarness(t, func(o *Options) { o.Fence = tc.fence(f) })
			src := newChanSource()
			_, err := h.r.Start("room-1", "acme", "", src, WithEpoch(41))
			for _, want := range tc.want {
				require.ErrorIs(t, err, want)
			}
			require.Equal(t, tc.status, httpStatus(err))
			require.NotErrorIs(t, err, ErrInterrupted)
			select {
			case <-src.closed:
			default:
				t.Fatal("source not closed")
			}
			_, asked := f.asked()
			require.Equal(t, map[room.ID]uint64{"room-1": 41}, asked)
			require.Empty(t, h.r.List(Filter{}))
			ents, err := os.ReadDir(h.opts.Dir)
			require.NoError(t, err)
			for _, e := range ents {
				require.Equal(t, ReceiptsFileName, e.Name(), "nothing but the receipts log in the store")
			}
		})
	}
}

func TestEpochInManifest(t *testing.T) {
	f := newTestFence()
	h := newHarness(t, func(o *Options) { o.Fence = f.fence() })
	rec, err := h.r.Start("room-1", "acme", "", &scriptSource{frames: shortTone()}, WithEpoch(7))
	require.NoError(t, err)
	waitDone(t, rec)
	require.NoError(t, rec.Err())
	require.Equal(t, uint64(7), h.diskManifest(t, rec.ID()).Epoch)
	require.Equal(t, StateComplete, h.diskManifest(t, rec.ID()).State)
	calls, _ := f.asked()
	require.GreaterOrEqual(t, calls, 2, "at the start and before the final manifest")

	ph := newHarness(t, nil)
	plain := ph.record(t, "acme", "", shortTone())
	for path, want := range map[string]bool{h.manifestPath(t, rec.ID()): true, ph.manifestPath(t, plain.ID): false} {
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		var fields map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &fields))
		_, has := fields["epoch"]
		require.Equal(t, want, has, "epoch is omitted when 0")
	}
}

func TestStaleEpochStopsRecordingWithoutWriting(t *testing.T) {
	for _, format := range []string{FormatOpus, FormatM4A} {
		t.Run(Extension(format)[1:], func(t *testing.T) { testStaleEpochStopsRecording(t, format) })
	}
}

func testStaleEpochStopsRecording(t *testing.T, format string) {
	f := newTestFence()
	h := newHarness(t, func(o *Options) {
		o.Fence = f.fence()
		o.FenceInterval = time.Nanosecond
		o.Format = format
	})
	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "", src, WithEpoch(5))
	require.NoError(t, err)
	rec.Joined(ParticipantInfo{ID: "p1", Name: "Ada", Kind: room.KindWebRTC}, t0.Add(time.Second))
	tone := &mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}
	src.feed(t, toneFrames(tone, 1, 2*packetsPerPage+1)) // two audio pages on disk, the manifest with Ada
	audioPath, manifestPath := h.audioPath(t, rec.ID()), h.manifestPath(t, rec.ID())
	audioBefore, manifestBefore := stateOf(t, audioPath), stateOf(t, manifestPath)
	require.Equal(t, 1, h.diskManifest(t, rec.ID()).ParticipantCount)

	// Another node takes the room over; this one learns it at its next frame.
	f.set(errTestStale)
	rec.Joined(ParticipantInfo{ID: "p2", Name: "Bob", Kind: room.KindPhone}, t0.Add(2*time.Second))
	for _, fr := range toneFrames(tone, 2*packetsPerPage+2, 2*packetsPerPage) {
		src.frames <- fr
	}
	waitDone(t, rec)
	require.ErrorIs(t, rec.Err(), ErrStale)
	require.ErrorIs(t, rec.Err(), ErrInterrupted)
	require.ErrorIs(t, rec.Err(), errTestStale)
	ev := h.awaitEvent(t, EventInterrupted, rec.ID())
	require.ErrorIs(t, ev.Err, ErrStale)

	require.Equal(t, audioBefore, stateOf(t, audioPath), "no audio written after the turn, the file not touched")
	require.Equal(t, manifestBefore, stateOf(t, manifestPath), "the manifest on disk stays as the owner wrote it")
	disk := h.diskManifest(t, rec.ID())
	require.Equal(t, StateRecording, disk.State)
	require.Equal(t, uint64(5), disk.Epoch)

	// In memory the recording is interrupted, and describes the file as it is.
	m, err := h.r.Get(rec.ID())
	require.NoError(t, err)
	require.Equal(t, StateInterrupted, m.State)
	require.Contains(t, m.Error, "room ownership lost")
	sum, size := fileSHA(t, audioPath)
	require.Equal(t, size, m.Bytes)
	require.Equal(t, sum, m.SHA256)
	require.InDelta(t, 2.0, m.Duration, 0.2, "two pages or fragments of a second")
	require.Equal(t, 2, m.ParticipantCount, "Bob's join is known here, never written")
	require.Equal(t, m, rec.Manifest())
	require.Equal(t, StateInterrupted, rec.State())

	// It is downloadable (the complete pages play) ...
	rc, got, err := h.r.Open(rec.ID())
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, audioBefore.data, b)
	require.Equal(t, sum, got.SHA256)
	require.InDelta(t, m.Duration, probe(t, audioPath).Duration, 0.05)

	// ... and after a restart, start-up recovery completes the manifest on disk.
	h.reopen(t)
	disk = h.diskManifest(t, rec.ID())
	require.Equal(t, StateInterrupted, disk.State)
	require.Equal(t, uint64(5), disk.Epoch)
	require.Equal(t, 1, disk.ParticipantCount, "what the owner wrote, nothing from after the turn")
	require.InDelta(t, m.Duration, disk.Duration, 0.01)
}

func TestStaleEpochAtStopWritesNoLastPage(t *testing.T) {
	f := newTestFence()
	h := newHarness(t, func(o *Options) { o.Fence = f.fence() }) // the default interval: only Stop asks again
	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "", src, WithEpoch(5))
	require.NoError(t, err)
	src.feed(t, toneFrames(&mediatest.Tone{Freq: 700, Amp: 0.5, Rate: media.Rate48k}, 1, 20)) // less than a page
	audioBefore, manifestBefore := stateOf(t, h.audioPath(t, rec.ID())), stateOf(t, h.manifestPath(t, rec.ID()))

	f.set(errTestStale)
	require.ErrorIs(t, rec.Stop(context.Background()), ErrStale)
	require.Equal(t, audioBefore, stateOf(t, h.audioPath(t, rec.ID())), "the pending page is dropped")
	require.Equal(t, manifestBefore, stateOf(t, h.manifestPath(t, rec.ID())))
	require.Equal(t, StateInterrupted, rec.State())
}

func TestFenceOutageDoesNotStopRecording(t *testing.T) {
	f := newTestFence()
	var buf bytes.Buffer
	var mu sync.Mutex
	h := newHarness(t, func(o *Options) {
		o.Fence = f.fence()
		o.FenceInterval = time.Nanosecond
		o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	})
	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "", src, WithEpoch(9))
	require.NoError(t, err)
	f.set(errTestBackend) // Redis goes away
	before, _ := f.asked()
	rec.Joined(ParticipantInfo{ID: "p1", Name: "Ada", Kind: room.KindWebRTC}, t0.Add(time.Second))
	tone := &mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}
	src.feed(t, toneFrames(tone, 1, packetsPerPage+1))
	after, _ := f.asked()
	require.Greater(t, after, before+packetsPerPage, "asked before every frame, and answered with an error")
	disk := h.diskManifest(t, rec.ID())
	require.Equal(t, 1, disk.ParticipantCount, "manifest writes go on")
	require.Positive(t, disk.Bytes)

	f.set(nil) // and comes back
	src.feed(t, toneFrames(tone, packetsPerPage+2, packetsPerPage))
	require.NoError(t, rec.Stop(context.Background()))
	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	require.Equal(t, 1, strings.Count(logs, "cannot be checked; recording goes on"), "logged once per outage:\n%s", logs)
	require.Equal(t, 1, strings.Count(logs, "room ownership confirmed again"), logs)
	disk = h.diskManifest(t, rec.ID())
	require.Equal(t, StateComplete, disk.State)
	require.InDelta(t, 2.0, disk.Duration, 0.05)
	_, size := fileSHA(t, h.audioPath(t, rec.ID()))
	require.Equal(t, size, disk.Bytes)
}

func TestDeletionWritesOneReceipt(t *testing.T) {
	h := newHarness(t, nil)
	m := h.record(t, "acme", "", shortTone())
	other := h.record(t, "acme", "", shortTone())
	h.clock.Set(m.ExpiresAt.Add(time.Minute)) // the sweeper wants them too

	const n = 8
	var wg sync.WaitGroup
	results := make(chan Manifest, 2*n)
	errs := make(chan error, 2*n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			d, err := h.r.Delete(m.ID, ReasonAdmin, "admin-"+string(rune('a'+i)))
			results <- d
			errs <- err
		}()
		go func() {
			defer wg.Done()
			<-start
			rep := h.r.Sweep(h.clock.Now())
			if len(rep.Failed) > 0 {
				errs <- rep.Failed[0].Err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for d := range results {
		require.Equal(t, StateDeleted, d.State)
	}
	rs := h.receiptLines(t)
	require.Len(t, rs, 2, "one receipt per recording, however many deleted it at once")
	require.ElementsMatch(t, []ID{m.ID, other.ID}, []ID{rs[0].Recording, rs[1].Recording})

	again, err := h.r.Delete(m.ID, ReasonErasure, "dpo")
	require.NoError(t, err)
	require.Equal(t, StateDeleted, again.State)
	h.Sweep(t)
	h.reopen(t)
	_, err = h.r.Delete(m.ID, ReasonAdmin, "admin")
	require.NoError(t, err)
	require.Empty(t, h.r.Sweep(h.clock.Now()).Deleted)
	require.Len(t, h.receiptLines(t), 2, "deleting a deleted recording, before or after a restart, writes nothing")
	log := h.receiptsFile(t)
	require.Equal(t, 2, bytes.Count(log, []byte("\n")))
}

// Sweep runs a sweep at the harness's time and requires it deleted nothing.
func (h *harness) Sweep(t *testing.T) {
	t.Helper()
	rep := h.r.Sweep(h.clock.Now())
	require.Empty(t, rep.Deleted)
	require.Empty(t, rep.Failed)
}
