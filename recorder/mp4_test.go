package recorder

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
)

// fragmentSeconds is the audio in one full fragment, primingSeconds the
// encoder's delay, which ffprobe counts in and the manifest does not.
const (
	fragmentSeconds = float64(framesPerFragment*media.AACFrameSamples) / media.Rate48k
	primingSeconds  = float64(aacPriming) / media.Rate48k
)

func m4aOptions(o *Options) { o.Format = FormatM4A }

// tonePCM concatenates the frames' samples.
func tonePCM(frames []room.MixFrame) []int16 {
	out := make([]int16, 0, len(frames)*media.FrameSamples)
	for i := range frames {
		out = append(out, frames[i].PCM[:]...)
	}
	return out
}

// requireTone checks that got holds all of want after the encoder's
// priming: 0.2 s from 1 s into want correlate with got at the priming, and
// the last 20 ms of want are in got at their level.
func requireTone(t *testing.T, want, got []int16) {
	t.Helper()
	const at, n = media.Rate48k, media.Rate48k / 5
	require.GreaterOrEqual(t, len(got), len(want)+aacPriming, "decoded audio too short for all of the tone")
	_, corr := mediatest.BestLag(want[at:at+n], got[at+aacPriming:], 0)
	require.GreaterOrEqual(t, corr, 0.9, "the tone is not in the decoded audio after the priming")
	wantDB := mediatest.ToneDB(want[at:at+n], 1000, media.Rate48k)
	require.InDelta(t, wantDB, mediatest.ToneDB(got[at+aacPriming:at+aacPriming+n], 1000, media.Rate48k), 1, "the tone at its level")
	end := len(want) + aacPriming
	require.InDelta(t, wantDB, mediatest.ToneDB(got[end-media.FrameSamples:end], 1000, media.Rate48k), 1,
		"the end of the tone is in the file")
}

// TestM4ARecordingPlays records 3 s of a 1 kHz tone as M4A and has ffprobe
// and ffmpeg, the real peers, read it.
func TestM4ARecordingPlays(t *testing.T) {
	h := newHarness(t, m4aOptions)
	frames := toneFrames(&mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}, 1, 150)
	m := h.record(t, "acme", "", frames)

	require.Equal(t, FormatM4A, m.Format)
	path := h.audioPath(t, m.ID)
	require.True(t, strings.HasSuffix(path, string(m.ID)+".m4a"), path)
	sum, size := fileSHA(t, path)
	require.Equal(t, sum, m.SHA256)
	require.Equal(t, size, m.Bytes)

	// 3 s and the 1600 samples of priming are 142.2 AAC frames: 143, the
	// last padded. The manifest counts them without the priming (3.017 s),
	// ffprobe with it (3.051 s).
	p := probe(t, path)
	require.Equal(t, "aac", p.Codec)
	require.Equal(t, media.Rate48k, p.SampleRate)
	require.Equal(t, 1, p.Channels)
	require.InDelta(t, 3.0, m.Duration, 0.05)
	require.InDelta(t, 3.0+primingSeconds, p.Duration, 0.05)
	require.InDelta(t, m.Duration+primingSeconds, p.Duration, 0.001, "the manifest counts as ffprobe does, less the priming")

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	s, err := scanMP4(f)
	require.NoError(t, err)
	require.Equal(t, size, s.end, "every fragment complete")
	require.Equal(t, 4, s.fragments, "46 + 46 + 46 + 5 frames: none over a second")

	requireTone(t, tonePCM(frames), mediatest.FFmpegDecode(t, path))
}

// TestMP4WriterSyncsEveryFragment checks decision 6 on the writer: the
// header and every fragment are synced as written, and a fragment holds at
// most a second.
func TestMP4WriterSyncsEveryFragment(t *testing.T) {
	var buf bytes.Buffer
	syncs := 0
	w := newMP4Writer(&buf, func() error { syncs++; return nil }, sha256.New())
	require.NoError(t, w.WriteHeader([]byte{0x11, 0x88}, AACBitrate))
	require.Equal(t, 1, syncs)
	frame := bytes.Repeat([]byte{0x21}, 300)
	for i := range 2*framesPerFragment + 5 {
		flushed, err := w.WritePacket(frame)
		require.NoError(t, err)
		require.Equal(t, i > 0 && i%framesPerFragment == 0, flushed, "frame %d", i)
	}
	require.Equal(t, 3, syncs)
	require.Equal(t, int64(buf.Len()), w.Written())
	require.InDelta(t, 2*fragmentSeconds-primingSeconds, w.Duration(), 1e-9)
	require.NoError(t, w.Close())
	require.Equal(t, 4, syncs)
	require.LessOrEqual(t, fragmentSeconds, 1.0)

	s, err := scanMP4(&buf)
	require.NoError(t, err)
	require.Equal(t, w.Written(), s.end)
	require.Equal(t, 3, s.fragments)
	require.Equal(t, uint64(2*framesPerFragment+5)*media.AACFrameSamples, s.samples)

	_, err = w.WritePacket(nil)
	require.Error(t, err, "an empty AAC frame")
}

// TestM4APathAllocatesNothing: the per-frame path, AAC encoder and MP4
// writer, fragment writes included, allocates nothing.
func TestM4APathAllocatesNothing(t *testing.T) {
	tr, err := newTrack(&Options{Format: FormatM4A}, FormatM4A, io.Discard, nil, sha256.New())
	require.NoError(t, err)
	defer tr.enc.Close()
	var frame media.Frame
	(&mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}).Fill(frame[:])
	pkt := make([]byte, tr.max)
	allocs := testing.AllocsPerRun(200, func() {
		n, err := tr.enc.Encode(&frame, pkt)
		if err == nil && n > 0 {
			_, err = tr.out.WritePacket(pkt[:n])
		}
		if err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs)
}

// m4aCrashSnapshot records 3.5 s of tone as M4A and copies the files while
// the recording runs, as crashSnapshot does: three complete fragments on
// disk, the fourth pending in memory.
func m4aCrashSnapshot(t *testing.T) (string, ID) {
	t.Helper()
	return snapshotRecording(t, m4aOptions, ".m4a", false)
}

func TestM4ARecoveryAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name      string
		damage    func(t *testing.T, path string)
		fragments int
		playable  bool
	}{
		{"cut at a fragment boundary", func(*testing.T, string) {}, 3, true},
		{"torn mid-fragment", func(t *testing.T, p string) { cut(t, p, -1000) }, 2, true},
		{"garbage appended", func(t *testing.T, p string) { appendBytes(t, p, bytes.Repeat([]byte{0, 0, 0, 9}, 300)) }, 3, true},
		{"fake moof appended", func(t *testing.T, p string) {
			appendBytes(t, p, append([]byte("\x00\x00\x01\x00moof"), bytes.Repeat([]byte{7}, 248)...))
		}, 3, true},
		{"headers torn", func(t *testing.T, p string) { cut(t, p, 100) }, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, id := m4aCrashSnapshot(t)
			path := filepath.Join(dir, string(id)+".m4a")
			tc.damage(t, path)

			h := newHarness(t, func(o *Options) { o.Dir = dir })
			ev := h.awaitEvent(t, EventRecovered, id)
			require.Equal(t, tc.playable, ev.Err == nil, "%v", ev.Err)
			m, err := h.r.Get(id)
			require.NoError(t, err)
			require.Equal(t, StateInterrupted, m.State)
			require.Equal(t, FormatM4A, m.Format)
			want := max(float64(tc.fragments)*fragmentSeconds-primingSeconds, 0)
			require.InDelta(t, want, m.Duration, 1e-9)
			sum, size := fileSHA(t, path)
			require.Equal(t, sum, m.SHA256)
			require.Equal(t, size, m.Bytes)
			if !tc.playable {
				require.Zero(t, size, "torn headers leave an empty file")
				return
			}
			require.InDelta(t, want+primingSeconds, probe(t, path).Duration, 0.001)
			mediatest.FFmpegDecode(t, path)
		})
	}
}

// TestAACPriming measures the encoder's delay with speech, which unlike a
// tone has one best lag: it must be aacPriming.
func TestAACPriming(t *testing.T) {
	h := newHarness(t, m4aOptions)
	speech := mediatest.Speech(t, media.Rate48k, 2)
	frames := make([]room.MixFrame, len(speech)/media.FrameSamples)
	for i := range frames {
		frames[i].Tick = uint64(i + 1)
		copy(frames[i].PCM[:], speech[i*media.FrameSamples:])
	}
	m := h.record(t, "acme", "", frames)
	got := mediatest.FFmpegDecode(t, h.audioPath(t, m.ID))
	const at = media.Rate48k / 2
	lag, corr := mediatest.BestLag(speech[at:at+media.Rate48k/2], got[at:], 2*aacPriming)
	require.GreaterOrEqual(t, corr, 0.99)
	require.Equal(t, aacPriming, lag)
}

// BenchmarkM4AFrame is the per-frame cost of the M4A path: AAC encoding and
// MP4 writing of one 20 ms frame, without fsync.
func BenchmarkM4AFrame(b *testing.B) {
	tr, err := newTrack(&Options{}, FormatM4A, io.Discard, nil, sha256.New())
	if err != nil {
		b.Fatal(err)
	}
	defer tr.enc.Close()
	speech := mediatest.Speech(b, media.Rate48k, 4)
	var frame media.Frame
	pkt := make([]byte, tr.max)
	b.ReportAllocs()
	pos := 0
	for b.Loop() {
		copy(frame[:], speech[pos:])
		pos = (pos + media.FrameSamples) % (len(speech) - media.FrameSamples)
		n, err := tr.enc.Encode(&frame, pkt)
		if err == nil && n > 0 {
			_, err = tr.out.WritePacket(pkt[:n])
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/frame")
}

// seedMP4 is a small valid file: header and two fragments of fake frames
// of varied sizes.
func seedMP4() []byte {
	var buf bytes.Buffer
	w := newMP4Writer(&buf, nil, sha256.New())
	_ = w.WriteHeader([]byte{0x11, 0x88}, AACBitrate)
	for i := range 60 {
		_, _ = w.WritePacket(bytes.Repeat([]byte{0x21}, 1+i%4))
	}
	_ = w.Close()
	return buf.Bytes()
}

// FuzzScanMP4 feeds arbitrary files to the M4A recovery scanner. It must
// never panic, never claim more than the data, and be stable: the intact
// part scans the same on its own.
func FuzzScanMP4(f *testing.F) {
	s := seedMP4()
	f.Add(s)
	f.Add(s[:len(s)-10])
	f.Add(append(append([]byte{}, s...), "\x00\x00\x00\x10moof\x00\x00\x00\x08mfhd"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scanMP4(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("scan of in-memory data failed: %v", err)
		}
		if s.end < 0 || s.end > int64(len(data)) || !s.headers && (s.fragments > 0 || s.samples > 0) {
			t.Fatalf("scan claims %+v of %d bytes", s, len(data))
		}
		again, err := scanMP4(bytes.NewReader(data[:s.end]))
		if err != nil || again != s {
			t.Fatalf("intact part scans differently: %+v vs %+v (%v)", again, s, err)
		}
	})
}
