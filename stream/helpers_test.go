package stream

import (
	"context"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/rtc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The sources the egress is wired to in production.
var (
	_ MixSource   = (*room.MixConsumer)(nil)
	_ VideoSource = (*rtc.VideoSub)(nil)
)

// mixFeed is a MixSource fed by a test.
type mixFeed struct {
	frames chan room.MixFrame
	closed chan struct{}
	once   sync.Once
}

func newMixFeed() *mixFeed {
	return &mixFeed{frames: make(chan room.MixFrame, 500), closed: make(chan struct{})}
}

func (m *mixFeed) Read(ctx context.Context, dst *room.MixFrame) error {
	select {
	case f, ok := <-m.frames:
		if !ok {
			return io.EOF
		}
		*dst = f
		return nil
	case <-m.closed:
		return io.EOF
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *mixFeed) Close() { m.once.Do(func() { close(m.closed) }) }

// videoFeed is a VideoSource fed by a test, like rtc.VideoSub: it counts
// keyframe requests.
type videoFeed struct {
	pkts   chan []byte
	plis   chan struct{}
	closed chan struct{}
	once   sync.Once
}

func newVideoFeed() *videoFeed {
	return &videoFeed{pkts: make(chan []byte, 4096), plis: make(chan struct{}, 100), closed: make(chan struct{})}
}

func (v *videoFeed) Read(ctx context.Context, dst []byte) (int, error) {
	select {
	case p := <-v.pkts:
		return copy(dst, p), nil
	case <-v.closed:
		return 0, io.EOF
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (v *videoFeed) RequestKeyframe() {
	select {
	case v.plis <- struct{}{}:
	default:
	}
}

func (v *videoFeed) Close() { v.once.Do(func() { close(v.closed) }) }

// h264Clip is a test video: access units (Annex B) at a frame rate.
type h264Clip struct {
	aus [][]byte
	fps int
}

var clipCache sync.Map // ffmpeg args → *h264Clip

// makeClip encodes seconds of lavfi source src at size and fps with
// libx264 (baseline, no B frames, a keyframe every 2 s), once per test
// binary.
func makeClip(t testing.TB, src, vf, size string, fps, seconds int) *h264Clip {
	t.Helper()
	key := src + vf + size
	if c, ok := clipCache.Load(key); ok {
		return c.(*h264Clip)
	}
	path := filepath.Join(t.TempDir(), "clip.h264")
	sep := "="
	if strings.Contains(src, "=") {
		sep = ":"
	}
	args := []string{"-v", "error", "-f", "lavfi", "-i", src + sep + "s=" + size + ":r=" + itoa(fps) + ":d=" + itoa(seconds)}
	if vf != "" {
		args = append(args, "-vf", vf)
	}
	args = append(args, "-pix_fmt", "yuv420p", "-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency",
		"-g", itoa(2*fps), "-bf", "0", "-threads", "1", "-bsf:v", "h264_mp4toannexb", "-f", "h264", path)
	out, err := exec.Command("ffmpeg", args...).CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	c := &h264Clip{aus: splitAUs(b), fps: fps}
	require.Len(t, c.aus, fps*seconds)
	clipCache.Store(key, c)
	return c
}

func itoa(n int) string { return strconv.Itoa(n) }

// packetizer turns access units into RTP packets as a WebRTC presenter
// sends them (RFC 6184 packetization mode 1, MTU 1200).
type packetizer struct {
	pay  codecs.H264Payloader
	seq  uint16
	ssrc uint32
}

// packets returns au's RTP packets at RTP timestamp ts, the marker on the
// last.
func (p *packetizer) packets(au []byte, ts uint32) [][]byte {
	payloads := p.pay.Payload(1200, au)
	out := make([][]byte, 0, len(payloads))
	for i, pl := range payloads {
		pkt := rtp.Packet{Header: rtp.Header{
			Version: 2, PayloadType: 102, SequenceNumber: p.seq, Timestamp: ts, SSRC: p.ssrc,
			Marker: i == len(payloads)-1,
		}, Payload: pl}
		b, _ := pkt.Marshal()
		out = append(out, b)
		p.seq++
	}
	return out
}

// feeder plays audio into a mixFeed and video into a videoFeed in real
// time: on every 20 ms tick it sends each mix frame and each video access
// unit that is due. Frames carry their ideal time, as the room's ticker
// does, so a stalled test goroutine delays but does not shift them.
type feeder struct {
	mix   *mixFeed   // nil: no audio
	video *videoFeed // nil: no video
	pcm   []int16    // 48 kHz mono; its length is the feed's
	clip  *h264Clip
	// videoFrom and videoTo bound when the presenter sends (s into the
	// feed); videoTo 0 means to the end.
	videoFrom, videoTo float64
	// at, if set, is called with the feed's start time before anything
	// is sent.
	at func(start time.Time)
}

// run feeds everything and returns when the last frame went out or ctx
// ended.
func (f *feeder) run(ctx context.Context) {
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	start := time.Now()
	if f.at != nil {
		f.at(start)
	}
	frames := len(f.pcm) / media.FrameSamples
	pk := packetizer{ssrc: 0x1234}
	sentMix, sentVideo := 0, 0
	for sentMix < frames {
		elapsed := time.Since(start)
		for ; sentMix < frames && time.Duration(sentMix)*media.FrameDuration <= elapsed; sentMix++ {
			if f.mix == nil {
				continue
			}
			var mf room.MixFrame
			mf.Tick = uint64(sentMix + 1)
			mf.Time = start.Add(time.Duration(sentMix) * media.FrameDuration)
			copy(mf.PCM[:], f.pcm[sentMix*media.FrameSamples:])
			f.mix.frames <- mf
		}
		for f.video != nil && sentVideo < len(f.clip.aus) {
			at := float64(sentVideo) / float64(f.clip.fps)
			if time.Duration(at*float64(time.Second)) > elapsed {
				break
			}
			if at >= f.videoFrom && (f.videoTo == 0 || at < f.videoTo) {
				for _, p := range pk.packets(f.clip.aus[sentVideo], uint32(at*90000)+1000) {
					f.video.pkts <- p
				}
			}
			sentVideo++
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// withBeeps returns pcm with 40 ms bursts of freq Hz at amp added at each
// second in at.
func withBeeps(pcm []int16, at []float64, freq, amp float64) []int16 {
	out := append([]int16(nil), pcm...)
	for _, s := range at {
		i0 := int(s * media.Rate48k)
		for i := 0; i < media.Rate48k/25 && i0+i < len(out); i++ {
			v := float64(out[i0+i]) + amp*32767*math.Sin(2*math.Pi*freq*float64(i)/media.Rate48k)
			out[i0+i] = int16(max(-32768, min(32767, v)))
		}
	}
	return out
}

// events collects an egress's events.
type events struct {
	mu    sync.Mutex
	all   []Event
	next  map[DestinationID]int // await's position per destination
	ready chan struct{}         // capacity 1: an event arrived
}

func newEvents() *events {
	return &events{next: map[DestinationID]int{}, ready: make(chan struct{}, 1)}
}

func (e *events) on(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	select {
	case e.ready <- struct{}{}:
	default:
	}
}

// of returns destination id's events so far.
func (e *events) of(id DestinationID) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.all {
		if ev.Destination == id {
			out = append(out, ev)
		}
	}
	return out
}

// states returns destination id's states so far, in order.
func (e *events) states(id DestinationID) []State {
	var out []State
	for _, ev := range e.of(id) {
		out = append(out, ev.State)
	}
	return out
}

// await waits for destination id to reach state after the event the
// previous await for id returned, failing on timeout.
func (e *events) await(t testing.TB, id DestinationID, state State, within time.Duration) Event {
	t.Helper()
	deadline := time.After(within)
	for {
		e.mu.Lock()
		for i := e.next[id]; i < len(e.all); i++ {
			if ev := e.all[i]; ev.Destination == id && ev.State == state {
				e.next[id] = i + 1
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		select {
		case <-e.ready:
		case <-deadline:
			t.Fatalf("destination %s not %s within %v: %v", id, state, within, e.states(id))
		}
	}
}

// testOptions are Options for tests: private addresses allowed, short
// timeouts and backoff.
func testOptions(ev *events) Options {
	return Options{Room: "test", AllowPrivate: true, Timeout: 2 * time.Second, OnEvent: ev.on}
}
