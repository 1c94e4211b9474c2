package recorder

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// crashSnapshot records 3.5 s of tone and, while the recording is still
// running, copies its files into a new store directory: what a node that
// crashed at that moment leaves on disk (three full audio pages; the fourth
// page still pending in memory). It returns the directory and the ID.
func crashSnapshot(t *testing.T) (string, ID) {
	t.Helper()
	return snapshotRecording(t, nil, ".opus", true)
}

// snapshotRecording records 3.5 s of a 1 kHz tone with the options mod
// sets (and, with participant, one participant) and copies its audio
// (ext) and manifest into a new directory while the recording runs, as a
// crash would leave them; it returns the directory and the ID.
func snapshotRecording(t *testing.T, mod func(*Options), ext string, participant bool) (string, ID) {
	t.Helper()
	h := newHarness(t, mod)
	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "", src)
	require.NoError(t, err)
	if participant {
		rec.Joined(ParticipantInfo{ID: "p1", Name: "Ada", Number: "+4930123456"}, t0.Add(time.Second))
	}
	src.feed(t, toneFrames(&mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}, 1, 175))
	dir := t.TempDir()
	for _, e := range []string{ext, ".json"} {
		b, err := os.ReadFile(filepath.Join(h.opts.Dir, string(rec.ID())+e))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, string(rec.ID())+e), b, 0o640))
	}
	require.NoError(t, rec.Stop(context.Background()))
	return dir, rec.ID()
}

func TestRecoveryAfterCrash(t *testing.T) {
	const page = 3.0 / 3 // seconds per audio page
	full := 3 * page
	for _, tc := range []struct {
		name     string
		damage   func(t *testing.T, path string)
		duration float64
		playable bool
	}{
		{"cut at a page boundary", func(*testing.T, string) {}, full, true},
		{"torn mid-page", func(t *testing.T, p string) { cut(t, p, -1000) }, 2 * page, true},
		{"garbage appended", func(t *testing.T, p string) { appendBytes(t, p, bytes.Repeat([]byte{0x5a, 0x00, 0xff}, 1000)) }, full, true},
		{"fake page appended", func(t *testing.T, p string) {
			appendBytes(t, p, append([]byte("OggS\x00\x00"), bytes.Repeat([]byte{7}, 400)...))
		}, full, true},
		{"bit flipped in the last page", func(t *testing.T, p string) { flip(t, p, -500) }, 2 * page, true},
		{"headers torn", func(t *testing.T, p string) { cut(t, p, 30) }, 0, false},
		{"no audio file", func(t *testing.T, p string) { require.NoError(t, os.Remove(p)) }, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, id := crashSnapshot(t)
			path := filepath.Join(dir, string(id)+".opus")
			tc.damage(t, path)

			h := newHarness(t, func(o *Options) { o.Dir = dir })
			ev := h.awaitEvent(t, EventRecovered, id)
			require.Equal(t, tc.playable, ev.Err == nil, "%v", ev.Err)
			m, err := h.r.Get(id)
			require.NoError(t, err)
			require.Equal(t, StateInterrupted, m.State)
			require.Contains(t, m.Error, "recovered at start-up")
			require.InDelta(t, tc.duration, m.Duration, 0.01)
			require.Equal(t, m.StartedAt.Add(time.Duration(m.Duration*float64(time.Second))).Truncate(time.Millisecond), m.EndedAt)
			require.Equal(t, m.EndedAt, m.Participants[0].LeftAt, "stays end with the recording")
			require.Equal(t, m, h.diskManifest(t, id), "the repaired manifest is on disk")
			if !tc.playable {
				return
			}
			sum, size := fileSHA(t, path)
			require.Equal(t, sum, m.SHA256)
			require.Equal(t, size, m.Bytes)
			pages := oggPages(t, path)
			require.Equal(t, byte(flagEOS), pages[len(pages)-1].flags, "the last intact page now ends the stream")
			require.InDelta(t, tc.duration, probe(t, path).Duration, 0.05)
			got := mediatest.FFmpegDecode(t, path)
			require.Greater(t, mediatest.ToneDB(got[media.Rate48k/2:media.Rate48k], 1000, media.Rate48k), -8.0)

			h.reopen(t) // recovery is done once
			m2, err := h.r.Get(id)
			require.NoError(t, err)
			require.Equal(t, m, m2)
			sum2, _ := fileSHA(t, path)
			require.Equal(t, sum, sum2)
		})
	}
}

func TestRecoverySkipsCorruptManifests(t *testing.T) {
	dir := t.TempDir()
	id := NewID()
	require.NoError(t, os.WriteFile(filepath.Join(dir, string(id)+".json"), []byte("{not json"), 0o640))
	other := NewID()
	require.NoError(t, os.WriteFile(filepath.Join(dir, string(other)+".json"), []byte(`{"id":"`+string(id)+`","state":"complete"}`), 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "..json"), []byte(`{}`), 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(dir, tempPrefix+string(id)+"-123"), []byte(`{}`), 0o640))
	h := newHarness(t, func(o *Options) { o.Dir = dir })
	require.Empty(t, h.r.List(Filter{}))
	_, err := os.Stat(filepath.Join(dir, tempPrefix+string(id)+"-123"))
	require.ErrorIs(t, err, os.ErrNotExist, "temp files of a crashed manifest write are removed")
	_, err = os.Stat(filepath.Join(dir, string(id)+".json"))
	require.NoError(t, err, "unreadable manifests are left for an operator")
}

func cut(t *testing.T, path string, at int64) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	if at < 0 {
		at += st.Size()
	}
	require.NoError(t, os.Truncate(path, at))
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(b)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func flip(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)+at] ^= 0x10
	require.NoError(t, os.WriteFile(path, b, 0o640))
}
