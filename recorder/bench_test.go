package recorder

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
)

// Benchmarks of the recording path, per 20 ms tick unless named otherwise,
// with real Opus encoders at the default configuration (complexity 5,
// 32 kbit/s) and espeak-ng speech as the mix.

// benchSource hands out speech frames as fast as the recording takes them.
// After n frames it reports on taken and blocks until release, so the
// benchmark stops its timer before the recording's final manifest write.
type benchSource struct {
	speech  []int16
	pos     int
	tick    uint64
	n       int
	taken   *sync.WaitGroup
	release chan struct{}
}

func (s *benchSource) Read(ctx context.Context, dst *room.MixFrame) error {
	if s.n == 0 {
		s.taken.Done()
		s.n = -1
		<-s.release
		return io.EOF
	}
	s.n--
	s.tick++
	dst.Tick = s.tick
	copy(dst.PCM[:], s.speech[s.pos:])
	s.pos = (s.pos + media.FrameSamples) % (len(s.speech) - media.FrameSamples)
	return nil
}

func (s *benchSource) Close() {}

// BenchmarkRecordingTick runs 20 recordings at once, each encoding and
// writing b.N frames of speech in its own goroutine, as 20 recorded rooms
// on one node do. One op is one tick of all 20; cpu-µs/rec-tick is the
// process CPU time (user+system, getrusage) per recording per tick, the
// number to size nodes by. fsync and nosync compare the SyncPolicies.
func BenchmarkRecordingTick(b *testing.B) {
	speech := mediatest.Speech(b, media.Rate48k, 4)
	for _, policy := range []SyncPolicy{SyncEveryPage, SyncNever} {
		b.Run(syncName[policy], func(b *testing.B) { benchRecordings(b, speech, 20, policy) })
	}
}

var syncName = map[SyncPolicy]string{SyncEveryPage: "fsync", SyncNever: "nosync"}

func benchRecordings(b *testing.B, speech []int16, recordings int, policy SyncPolicy) {
	r, err := New(Options{Dir: b.TempDir(), Node: "bench", ReceiptKey: testKey, Sync: policy})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	var taken sync.WaitGroup
	release := make(chan struct{})
	recs := make([]*Recording, recordings)
	b.ReportAllocs()
	b.StopTimer()
	taken.Add(recordings)
	for i := range recs {
		src := &benchSource{speech: speech, pos: i * 7 * media.FrameSamples, n: b.N, taken: &taken, release: release}
		if recs[i], err = r.Start(room.ID(fmt.Sprint("room", i)), "bench", "", src); err != nil {
			b.Fatal(err)
		}
	}
	before := cpuTime()
	b.StartTimer()
	taken.Wait()
	b.StopTimer()
	cpu := cpuTime() - before
	close(release)
	for _, rec := range recs {
		<-rec.Done()
		if err := rec.Err(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*recordings), "cpu-µs/rec-tick")
}

// cpuTime is the process's user plus system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecordingFrame is one recording's per-frame path in one
// goroutine, no hand-off: encode, page assembly, write, and (fsync) one
// fsync per 50 frames; -encrypted seals every page too (sealed.go). It
// must allocate nothing.
func BenchmarkRecordingFrame(b *testing.B) {
	speech := mediatest.Speech(b, media.Rate48k, 4)
	for _, policy := range []SyncPolicy{SyncEveryPage, SyncNever} {
		for _, key := range [][]byte{nil, encKey} {
			name := syncName[policy]
			if key != nil {
				name += "-encrypted"
			}
			b.Run(name, func(b *testing.B) { benchFrame(b, speech, policy, key) })
		}
	}
}

// benchFrame is BenchmarkRecordingFrame with policy, encrypted with key
// (nil: not).
func benchFrame(b *testing.B, speech []int16, policy SyncPolicy, key []byte) {
	r, err := New(Options{Dir: b.TempDir(), Node: "bench", ReceiptKey: testKey, Sync: policy, EncryptionKey: key})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	e := &entry{m: Manifest{ID: NewID(), Tenant: "bench", Room: "r", State: StateRecording}}
	if key != nil {
		e.m.Encryption = EncryptionAESGCM
	}
	rec := newRecording(r, e, &scriptSource{})
	e.rec = rec
	if err := rec.open(); err != nil {
		b.Fatal(err)
	}
	defer rec.f.Close()
	pos := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec.frame.Tick++
		copy(rec.frame.PCM[:], speech[pos:])
		pos = (pos + media.FrameSamples) % (len(speech) - media.FrameSamples)
		if err := rec.writeFrame(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOggWritePacket is the container alone: one 80-byte packet (a
// 20 ms frame at 32 kbit/s) per op, pages written to a file without fsync.
func BenchmarkOggWritePacket(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "x.opus"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := newOggWriter(f, nil, sha256.New(), 1, 312)
	pkt := make([]byte, 80)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := w.WritePacket(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPageFsync is the cost SyncEveryPage adds once per second per
// recording: write one 4 KB page (a second at 32 kbit/s) and fsync it.
func BenchmarkPageFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "x.opus"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := f.Write(page); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
