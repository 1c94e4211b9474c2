package main

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// The dial-in tests' conference: room demo (as in the browser tests,
// with PIN demoPIN) has conference number dialNumber. The number phones
// dial does not matter yet: every call goes through the IVR.
const (
	dialNumber = "1001"
	dialedURI  = "5000"
	// phoneToneHz is what the phones send in the tone tests; the pion
	// participant sends toneHz.
	phoneToneHz = 1000
	// toneMarginDB is how far a received test tone must stand above every
	// other band probed.
	toneMarginDB = 20
)

// dialInNode is a running mediagate that answers phone calls, with its log.
type dialInNode struct {
	*gateway
	logs *logWatch
	sip  netip.AddrPort // its SIP address (UDP and TCP)
}

// startDialIn runs mediagate with a configuration file that makes room demo
// reachable by phone as conference number 1001 with PIN 4711, logging at
// debug level so the test sees the IVR's actions.
func startDialIn(t *testing.T, env ...string) *dialInNode {
	t.Helper()
	return startDialInWith(t, "", env...)
}

// startDialInWith is startDialIn with more top-level sections in the
// configuration file (extra YAML, not rooms).
func startDialInWith(t *testing.T, extra string, env ...string) *dialInNode {
	t.Helper()
	return startDialInBinary(t, binary, extra, env...)
}

// startDialInBinary is startDialInWith with another build of mediagate
// (benchBinary's, without -race).
func startDialInBinary(t *testing.T, bin, extra string, env ...string) *dialInNode {
	t.Helper()
	yaml := fmt.Sprintf("log:\n  level: debug\nrooms:\n  %s:\n    pin: %q\n    number: %q\n", demoRoom, demoPIN, dialNumber) + extra
	path := filepath.Join(t.TempDir(), "mediagate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	g := startGatewayBinary(t, bin, []string{"serve", "--config", path}, env...)
	m := regexp.MustCompile(`sip_port=(\d+)`).FindStringSubmatch(g.ready)
	require.NotNil(t, m, "ready line without sip_port: %s", g.ready)
	port, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return &dialInNode{gateway: g, logs: watchLogs(g),
		sip: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))}
}

// joinToneBot joins room demo as a pion participant that sends toneHz and
// records what it hears; it returns the client and its join token.
func joinToneBot(ctx context.Context, t *testing.T, g *dialInNode) (*rtctest.Client, string) {
	t.Helper()
	token, err := rtctest.PageToken(ctx, g.base, demoRoom, "Tone Bot", demoPIN)
	require.NoError(t, err)
	c, err := rtctest.Join(ctx, t, g.base, demoRoom, token, rtctest.Options{Tone: toneHz})
	require.NoError(t, err)
	return c, token
}

// logWatch keeps a gateway's log lines for a test to wait on.
type logWatch struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced when a line arrives
}

// watchLogs reads g's log lines until the process ends.
func watchLogs(g *gateway) *logWatch {
	w := &logWatch{changed: make(chan struct{})}
	go func() {
		for line := range g.logs {
			w.mu.Lock()
			w.lines = append(w.lines, line)
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	return w
}

// await waits up to timeout for a log line holding every one of parts and
// returns it.
func (w *logWatch) await(tb testing.TB, timeout time.Duration, parts ...string) string {
	tb.Helper()
	return w.awaitAfter(tb, 0, timeout, parts...)
}

// mark is the position of the next log line, for awaitAfter.
func (w *logWatch) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lines)
}

// awaitAfter is await for the lines from position from (a mark) on.
func (w *logWatch) awaitAfter(tb testing.TB, from int, timeout time.Duration, parts ...string) string {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		found, changed := grepLines(w.lines[from:], parts...), w.changed
		w.mu.Unlock()
		if len(found) > 0 {
			return found[0]
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("no log line with %q within %v; the log:\n%s", parts, timeout, w.text())
			return ""
		}
	}
}

// grep returns the lines so far holding every one of parts.
func (w *logWatch) grep(parts ...string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return grepLines(w.lines, parts...)
}

func (w *logWatch) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// grepLines returns the lines holding every one of parts.
func grepLines(lines []string, parts ...string) []string {
	var out []string
	for _, line := range lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// listenTo waits while the gateway plays prompt to a caller, plus the gap
// after it (the IVR's log says when a prompt starts, nothing says when it
// ends), the way a caller listens to a question before keying the answer.
func listenTo(ctx context.Context, t *testing.T, prompts *bridge.Prompts, id bridge.PromptID) {
	t.Helper()
	// 200 ms for the way through the jitter buffers.
	timer := time.NewTimer(prompts.Prompt(bridge.English, id).Duration() + bridge.DefaultPromptGap + 200*time.Millisecond)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		t.Fatalf("listening to %s: %v", id, ctx.Err())
	}
}

// findPrompt finds a prompt (pcm at the recording's rate) in a recording
// by cross-correlation through an FFT and returns where it starts and the
// normalised correlation there.
func findPrompt(rec, prompt []int16) (at int, corr float64) {
	if len(prompt) == 0 || len(rec) < len(prompt) {
		return -1, 0
	}
	n := 1
	for n < len(rec)+len(prompt) {
		n <<= 1
	}
	r, p := make([]complex128, n), make([]complex128, n)
	for i, v := range rec {
		r[i] = complex(float64(v), 0)
	}
	var pp float64
	for i, v := range prompt {
		p[i] = complex(float64(v), 0)
		pp += float64(v) * float64(v)
	}
	fft(r, false)
	fft(p, false)
	for i := range r {
		r[i] *= complex(real(p[i]), -imag(p[i]))
	}
	fft(r, true) // r[k] = Σ rec[i+k]·prompt[i]
	// energy[k] = Σ rec[k:k+len(prompt)]², by a running sum.
	var energy float64
	for _, v := range rec[:len(prompt)] {
		energy += float64(v) * float64(v)
	}
	at, corr = -1, -1
	for k := 0; k+len(prompt) <= len(rec); k++ {
		if k > 0 {
			out, in := float64(rec[k-1]), float64(rec[k+len(prompt)-1])
			energy += in*in - out*out
		}
		if c := real(r[k]) / math.Sqrt(pp*math.Max(energy, 1)); c > corr {
			at, corr = k, c
		}
	}
	return at, corr
}

// probeHz are the frequencies a received tone is compared with: the
// telephone band and, for wideband rates, above it.
func probeHz(rate int) []float64 {
	hz := []float64{250, 440, 900, 1500, 2200, 3100}
	if rate >= media.Rate16k {
		hz = append(hz, 4500, 6500)
	}
	if rate >= media.Rate48k {
		hz = append(hz, 10000, 16000)
	}
	return hz
}

// toneMargin returns the level of freq in pcm (dB relative to a
// full-scale sine) and how far it stands above the strongest of the other
// probed frequencies, which it names. Levels are averaged over 100 ms
// Hann windows: a frame a jitter buffer dropped or repeated breaks the
// tone's phase, which one long window would count as the tone missing.
func toneMargin(pcm []int16, freq float64, rate int) (level, margin, worst float64) {
	level = windowedToneDB(pcm, freq, rate)
	other := math.Inf(-1)
	for _, f := range probeHz(rate) {
		if math.Abs(f-freq) < 150 {
			continue
		}
		if db := windowedToneDB(pcm, f, rate); db > other {
			other, worst = db, f
		}
	}
	return level, level - other, worst
}

// windowedToneDB is mediatest.ToneDB averaged (in power) over the 100 ms
// Hann-windowed pieces of pcm.
func windowedToneDB(pcm []int16, freq float64, rate int) float64 {
	n := min(rate/10, len(pcm))
	win := make([]int16, n)
	var sum float64
	count := 0
	for from := 0; from+n <= len(pcm); from += n {
		for i := range win {
			hann := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
			win[i] = int16(float64(pcm[from+i]) * hann)
		}
		// The window halves a tone's amplitude: its power, a quarter.
		sum += mediatest.Power(win, freq, rate) / 0.25
		count++
	}
	return 10 * math.Log10(sum/float64(max(count, 1))/0.25+1e-20)
}

// hearsTone waits until the last half second c has received holds freq at
// least toneMarginDB above every other probed band, and returns the
// figures of that half second.
func hearsTone(ctx context.Context, tb testing.TB, c *rtctest.Client, freq float64) (level, margin, worst float64) {
	tb.Helper()
	const window = 25 // frames, 0.5 s
	for n := c.Received() + window; ; n++ {
		require.NoError(tb, c.WaitFrames(ctx, n),
			"%.0f Hz not heard: last %.1f dB, %.1f dB above %.0f Hz", freq, level, margin, worst)
		level, margin, worst = toneMargin(c.PCM(n-window, n), freq, media.Rate48k)
		if margin >= toneMarginDB && level > -40 {
			return level, margin, worst
		}
	}
}

// hearsSource records a loop's length (loopSamples8k at 8 kHz) of what c
// hears, from the first frame of speech on, and lines it up with src, a
// file at 8 kHz that a phone began to play at started: the source plays
// once, and the recording is some part of it. It searches the 8.2 s of
// src around where the recording's start left the phone if it took no
// time to arrive, with alignWithin: the phone's jitter buffer drops or
// holds a frame now and then, the more so on a loaded machine, so blocks
// may move 400 ms from the whole recording's offset (random speech still
// scores below 0.4, TestAlignWithin). It returns the alignment, with the
// offset in src, and the delay from the phone to c.
func hearsSource(ctx context.Context, t *testing.T, c *rtctest.Client, src []int16, started time.Time) (alignment, time.Duration) {
	t.Helper()
	frames := loopSamples8k/media.SamplesPerFrame(media.Rate8k) + 1
	first := -1
	for n := c.Received(); first < 0; n++ {
		require.NoError(t, c.WaitFrames(ctx, n+1), "no speech at the pion client")
		if f := c.Frames(n, n+1); mediatest.RMSDBFS(f[0].PCM[:]) > -50 {
			first = n
		}
	}
	require.NoError(t, c.WaitFrames(ctx, first+frames))
	rx := c.Frames(first, first+frames)
	got := decimate(t, rtctest.Samples(rx), loopSamples8k)
	const window = 1 << 16
	sent := int(rx[0].Arrival.Sub(started).Seconds() * media.Rate8k)
	from := min(max(sent-window/2, 0), len(src)-window)
	al := alignWithin(src[from:from+window], got, speechSlip)
	al.offset += from
	return al, rx[0].Arrival.Sub(started) - time.Duration(al.offset)*time.Second/media.Rate8k
}

// speechSlip is how far hearsSource lets blocks move: 400 ms.
const speechSlip = 4 * maxSlip

// TestAlignWithin: the speech measure of the dial-in tests follows a
// recording that lost a frame every 400 ms (200 ms in all, beyond what
// alignBlocks follows) and refuses other speech and silence.
func TestAlignWithin(t *testing.T) {
	speech := mediatest.Speech(t, media.Rate8k, 40)
	src := speech[:1<<16]
	var slipping []int16
	for i := 3 * media.Rate8k; len(slipping) < loopSamples8k; i++ {
		if i%(2*media.Rate8k/5) == 0 {
			i += media.SamplesPerFrame(media.Rate8k)
		}
		slipping = append(slipping, src[i])
	}
	al := alignBlocks(src, slipping)
	t.Logf("alignBlocks: correlation %.3f, blocks within %d", al.corr, al.spread)
	require.Less(t, al.corr, 0.9, "alignBlocks follows 200 ms of slips: the case tests nothing")
	for _, tc := range []struct {
		name     string
		got      []int16
		min, max float64
	}{
		{"slipping", slipping, 0.95, 1.001},
		{"other speech", speech[len(src):][:loopSamples8k], -1, 0.4},
		{"silence", make([]int16, loopSamples8k), -1, 0.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			al := alignWithin(src, tc.got, speechSlip)
			t.Logf("correlation %.3f at offset %d, blocks within %d", al.corr, al.offset, al.spread)
			require.GreaterOrEqual(t, al.corr, tc.min)
			require.LessOrEqual(t, al.corr, tc.max)
		})
	}
}

// waitFrames waits until c has received n more frames: time measured by
// the room's clock, for a phone to hear that much of the room.
func waitFrames(ctx context.Context, t *testing.T, c *rtctest.Client, n int) {
	t.Helper()
	require.NoError(t, c.WaitFrames(ctx, c.Received()+n))
}

// writeTempWAV writes pcm as a WAV file in a temporary directory and
// returns its path.
func writeTempWAV(t *testing.T, name string, pcm []int16, rate int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, writeWAV(path, pcm, rate))
	return path
}

// toneTimeline lists the level of freq in each half second of pcm, for a
// failure message.
func toneTimeline(pcm []int16, freq float64, rate int) string {
	var b strings.Builder
	for i := 0; i+rate/2 <= len(pcm); i += rate / 2 {
		fmt.Fprintf(&b, " %.1fs:%.0f", float64(i)/float64(rate), windowedToneDB(pcm[i:i+rate/2], freq, rate))
	}
	return b.String()
}
