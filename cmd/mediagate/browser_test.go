package main

import (
	"context"
	byteorder "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/cmplx"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// The room of the browser tests. Its name needs HTML escaping, so the
// page shows whether the template escapes it.
const (
	demoRoom = "demo"
	demoName = `Board <b>Room</b> & "Friends"`
	demoPIN  = "4711"
	// pionName is the pion participant's display name, markup as well:
	// the page must show it as text.
	pionName = "Tone <i>Bot</i> & Co"
	// browserName is what the test types into the page.
	browserName = "Alice"
	// toneHz is what the pion client sends and the page must hear.
	toneHz = 660
	// loopSamples8k is one loop of the fake microphone's file at 8 kHz:
	// a power of two, so one FFT lines a received loop up with it.
	loopSamples8k = 1 << 15 // 4.096 s
	decimation    = media.Rate48k / media.Rate8k
)

// rawMicrophone runs in the page before its own script: getUserMedia
// keeps the page's constraints but switches the audio processing off, and
// window.askedAudio keeps what the page asked for.
const rawMicrophone = `(() => {
  const md = navigator.mediaDevices;
  const gum = md.getUserMedia.bind(md);
  const raw = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
  md.getUserMedia = (c) => {
    window.askedAudio = c && c.audio;
    return gum(Object.assign({}, c, { audio: Object.assign({}, c && c.audio, raw) }));
  };
})();`

// demoRooms is MEDIAGATE_ROOMS for the browser tests.
func demoRooms(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(map[string]map[string]string{demoRoom: {"name": demoName, "pin": demoPIN}})
	require.NoError(t, err)
	return "MEDIAGATE_ROOMS=" + string(b)
}

// TestBrowserJoin: headless Chromium joins room demo from the join page
// with a fake microphone playing speech, next to a pion client sending a
// 660 Hz tone. The page shows the room's name as text and both
// participants; the pion client hears the speech (cross-correlation with
// the source after alignment), the page hears the tone (WebAudio in the
// page), sent to it around pion with the keys of the DTLS handshake the
// gateway served; after Leave the room holds only the pion client.
func TestBrowserJoin(t *testing.T) {
	ifaces, err := net.Interfaces()
	require.NoError(t, err)
	require.Len(t, ifaces, 1, "TestMain runs the tests in a network namespace with only loopback")

	speech := mediatest.Speech(t, media.Rate48k, 5)[:loopSamples8k*decimation]
	wav := filepath.Join(t.TempDir(), "speech48k.wav")
	require.NoError(t, writeWAV(wav, speech, media.Rate48k))

	g := startGateway(t, nil, demoRooms(t))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	// The page's HTML carries the room's name escaped.
	resp, err := http.Get(g.base + "/r/" + demoRoom)
	require.NoError(t, err)
	html, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(html), `Board &lt;b&gt;Room&lt;/b&gt; &amp; &#34;Friends&#34;`)
	require.NotContains(t, string(html), "<b>")

	token, err := rtctest.PageToken(ctx, g.base, demoRoom, pionName, demoPIN)
	require.NoError(t, err)
	pion, err := rtctest.Join(ctx, t, g.base, demoRoom, token, rtctest.Options{Tone: toneHz})
	require.NoError(t, err)

	tab := newBrowser(t, wav)
	joinFromPage(t, tab, g.base, demoPIN, true)
	pageShowsRoom(t, tab)

	// The page hears the pion client's tone (while the pion client records).
	toneDB, otherDB, levelDB := pageHearsTone(t, tab)
	t.Logf("page hears %d Hz at %.1f dB, 1500 Hz at %.1f dB (%.1f dB apart), level %.1f dBFS",
		toneHz, toneDB, otherDB, toneDB-otherDB, levelDB)

	// The pion client hears the browser's speech.
	al := hearsSpeech(ctx, t, pion, speech)
	t.Logf("pion client hears the speech: correlation %.3f at loop offset %.3f s, blocks moved within %.1f ms",
		al.corr, float64(al.offset)/media.Rate8k, float64(al.spread)*1000/media.Rate8k)
	require.GreaterOrEqual(t, al.corr, 0.8, "the speech the pion client received does not match the source")
	screenshot(t, tab, "join.png")

	// Leave: the room is down to the pion client.
	var closed bool
	require.NoError(t, runIn(tab, 10*time.Second,
		chromedp.Click("#leave", chromedp.ByID),
		chromedp.Poll(`window.mediagate.state === 'closed'`, &closed, chromedp.WithPollingTimeout(5*time.Second))))
	var left []string
	require.True(t, eventually(5*time.Second, 50*time.Millisecond, func() bool {
		left = participants(t, g.base, token)
		return len(left) == 1 && left[0] == pionName
	}), "participants after Leave: %q", left)
	// Chromium's session got the mix around pion (rtc's directSender).
	g.awaitLog(t, 10*time.Second, `msg="session ended"`, "reason=left", "mix=direct")
}

// joinFromPage opens room demo's page in tab, types the name and pin,
// clicks Join and, when connect, waits until the page is connected.
func joinFromPage(t *testing.T, tab context.Context, base, pin string, connect bool) {
	t.Helper()
	// The page asks for echo cancellation, noise suppression and gain
	// control, as a page for people with laptop speakers must. They
	// reshape the waveform (cross-correlation 0.3 to 0.7 instead of
	// 0.87 here), and the echo canceller, taking the pion client's
	// steady tone for the far end, holds the near end down for the first
	// seconds. The test measures the way through mediagate, so the page
	// gets a raw microphone.
	require.NoError(t, runIn(tab, 5*time.Second, chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(rawMicrophone).Do(ctx)
		return err
	})))
	start := time.Now()
	require.NoError(t, runIn(tab, 15*time.Second,
		chromedp.Navigate(base+"/r/"+demoRoom),
		chromedp.WaitVisible("#join", chromedp.ByID),
		chromedp.SendKeys("#name", browserName, chromedp.ByID),
		chromedp.SendKeys("#pin", pin, chromedp.ByID)))
	clicked := time.Now()
	require.NoError(t, runIn(tab, 5*time.Second, chromedp.Click("#join", chromedp.ByID)))
	if !connect {
		return
	}
	var connected bool
	require.NoError(t, runIn(tab, 20*time.Second,
		chromedp.Poll(`window.mediagate.state === 'connected'`, &connected,
			chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))),
		"page state %q, error %q", pageString(tab, "window.mediagate.state"), pageString(tab, "window.mediagate.error"))
	t.Logf("page connected %v after the Join click (%v after navigating); it asked for audio %s",
		time.Since(clicked).Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
		pageString(tab, "JSON.stringify(window.askedAudio)"))
}

// pageShowsRoom checks what the page shows once joined: the room's name
// and both participants' names, as text.
func pageShowsRoom(t *testing.T, tab context.Context) {
	t.Helper()
	var names []string
	require.NoError(t, runIn(tab, 10*time.Second,
		chromedp.Poll(`(() => { const n = [...document.querySelectorAll('#participants li .name')].map(e => e.textContent);
			return n.length === 2 && n; })()`, &names, chromedp.WithPollingTimeout(5*time.Second))))
	require.ElementsMatch(t, []string{browserName, pionName}, names)
	var title, heading, count string
	var markup int
	require.NoError(t, runIn(tab, 5*time.Second,
		chromedp.Title(&title),
		chromedp.Text("#room-name", &heading, chromedp.ByID),
		chromedp.Text("#count", &count, chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll('main b, main i').length`, &markup)))
	require.Equal(t, demoName, heading)
	require.Equal(t, demoName+" · mediagate", title)
	require.Equal(t, "(2)", count)
	require.Zero(t, markup, "a name became markup")
}

// TestBrowserWrongPIN: a wrong PIN gets the page's wrong-PIN message and
// leaves the form up for another try.
func TestBrowserWrongPIN(t *testing.T) {
	g := startGateway(t, nil, demoRooms(t))
	tab := newBrowser(t, "")
	joinFromPage(t, tab, g.base, "0000", false)
	var code, message string
	var formHidden, messageHidden bool
	require.NoError(t, runIn(tab, 15*time.Second,
		chromedp.Poll(`window.mediagate.error`, &code, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Text("#message", &message, chromedp.ByID),
		chromedp.Evaluate(`document.getElementById('join-form').hidden`, &formHidden),
		chromedp.Evaluate(`document.getElementById('message').hidden`, &messageHidden)))
	require.Equal(t, "wrong-pin", code)
	require.Equal(t, "Wrong PIN. Check it and try again.", message)
	require.False(t, formHidden)
	require.False(t, messageHidden)
	require.Equal(t, "idle", pageString(tab, "window.mediagate.state"))
}

// TestAlignBlocks: the speech measure of TestBrowserJoin finds speech
// that slipped by a frame and refuses other speech and silence.
func TestAlignBlocks(t *testing.T) {
	speech := mediatest.Speech(t, media.Rate8k, 10)
	want := speech[:loopSamples8k]
	// got: the loop from 1.5 s on, with 20 ms dropped after 2 s.
	var slipped []int16
	for i := 0; len(slipped) < loopSamples8k; i++ {
		if i == 2*media.Rate8k {
			i += media.SamplesPerFrame(media.Rate8k)
		}
		slipped = append(slipped, want[(i+3*media.Rate8k/2)%loopSamples8k])
	}
	for _, tc := range []struct {
		name     string
		got      []int16
		min, max float64
	}{
		{"same", want, 0.999, 1.001},
		{"slipped", slipped, 0.98, 1.001},
		{"other speech", speech[len(speech)-loopSamples8k:], -1, 0.4},
		{"silence", make([]int16, loopSamples8k), -1, 0.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			al := alignBlocks(want, tc.got)
			t.Logf("correlation %.3f at offset %d, blocks within %d", al.corr, al.offset, al.spread)
			require.GreaterOrEqual(t, al.corr, tc.min)
			require.LessOrEqual(t, al.corr, tc.max)
		})
	}
}

// newBrowser starts headless Chromium with the flags of TESTING.md, its
// fake microphone playing wav (its own beeps when empty), and returns a
// tab; the browser is stopped when the test ends.
func newBrowser(t *testing.T, wav string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(800, 700),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
	}
	if wav != "" {
		opts = append(opts, chromedp.Flag("use-file-for-fake-audio-capture", wav))
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		// Closed gracefully, Chromium's processes are gone when it
		// exits, before the test removes its profile directory.
		ctx, cancel := context.WithTimeout(tab, 10*time.Second)
		defer cancel()
		if err := chromedp.Cancel(ctx); err != nil {
			t.Logf("closing chromium: %v", err)
		}
		cancelTab()
		cancelAlloc() // kills Chromium if it is still there and waits for it
	})
	// The page's console and uncaught errors go to the test log.
	chromedp.ListenTarget(tab, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value))
			}
			t.Logf("page console.%s: %s", ev.Type, strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			t.Logf("page exception: %s", ev.ExceptionDetails.Error())
		}
	})
	// The first Run starts Chromium and ties it to its context, so it gets
	// the tab's own; chromedp bounds the start (WSURLReadTimeout, 20 s).
	require.NoError(t, chromedp.Run(tab), "starting chromium")
	return tab
}

// runIn runs actions in tab within d.
func runIn(tab context.Context, d time.Duration, actions ...chromedp.Action) error {
	ctx, cancel := context.WithTimeout(tab, d)
	defer cancel()
	return chromedp.Run(ctx, actions...)
}

// eventually calls cond every interval until it holds and reports whether
// it did within timeout.
func eventually(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// pageString evaluates a JavaScript expression for an error message.
func pageString(tab context.Context, expr string) string {
	var s string
	if err := runIn(tab, 2*time.Second, chromedp.Evaluate("String("+expr+")", &s)); err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// screenshot takes the whole page as a PNG into $MEDIAGATE_SCREENSHOT_DIR
// (else a temporary directory) as name.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	var png []byte
	require.NoError(t, runIn(tab, 10*time.Second, chromedp.FullScreenshot(&png, 100)))
	dir := os.Getenv("MEDIAGATE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// pageHearsTone polls the page's WebAudio measurement until the pion
// client's tone stands 20 dB above an unrelated frequency and well above
// silence, and returns the last figures: tone, 1500 Hz, RMS level.
func pageHearsTone(t *testing.T, tab context.Context) (tone, other, level float64) {
	t.Helper()
	var last []float64
	expr := fmt.Sprintf(`[window.mediagate.rxTone(%d), window.mediagate.rxTone(1500), window.mediagate.rxLevel()]`, toneHz)
	ok := func() bool {
		if err := runIn(tab, 2*time.Second, chromedp.Evaluate(expr, &last)); err != nil {
			t.Logf("measuring in the page: %v", err)
			return false
		}
		return len(last) == 3 && last[0]-last[1] >= 20 && last[0] > -50 && last[2] > -40
	}
	require.True(t, eventually(10*time.Second, 100*time.Millisecond, ok),
		"the page does not hear %d Hz: tone, 1500 Hz, level = %v dB", toneHz, last)
	return last[0], last[1], last[2]
}

// hearsSpeech records one loop of the fake microphone's file at the pion
// client, once speech arrives, and lines it up with the source, both
// decimated to 8 kHz.
func hearsSpeech(ctx context.Context, t *testing.T, c *rtctest.Client, src []int16) alignment {
	t.Helper()
	frames := loopSamples8k/media.SamplesPerFrame(media.Rate8k) + 1
	// Speech has begun when a frame is louder than -50 dBFS.
	first := -1
	for n := c.Received(); first < 0; n++ {
		require.NoError(t, c.WaitFrames(ctx, n+1), "no speech at the pion client")
		if f := c.Frames(n, n+1); mediatest.RMSDBFS(f[0].PCM[:]) > -50 {
			first = n
		}
	}
	require.NoError(t, c.WaitFrames(ctx, first+frames))
	rx := c.Frames(first, first+frames)
	lost := 0
	for i := range rx {
		if rx[i].Lost {
			lost++
		}
	}
	t.Logf("speech arrived %d frames after joining; %d of %d frames concealed; recorded over %v",
		first, lost, frames, rx[len(rx)-1].Arrival.Sub(rx[0].Arrival).Round(time.Millisecond))
	got := decimate(t, rtctest.Samples(rx), loopSamples8k)
	// One loop of the source at 8 kHz, after the filter's start-up.
	want := decimate(t, append(append([]int16(nil), src...), src...), 2*loopSamples8k)[loopSamples8k:]
	return alignBlocks(want, got)
}

// decimate resamples pcm (48 kHz) to 8 kHz with media.Resampler, 20 ms at a
// time, and returns its first n samples.
func decimate(t *testing.T, pcm []int16, n int) []int16 {
	t.Helper()
	r, err := media.NewResampler(media.Rate48k, media.Rate8k)
	require.NoError(t, err)
	defer r.Close()
	out := make([]int16, 0, len(pcm)/decimation+media.SamplesPerFrame(media.Rate8k))
	var in media.Frame
	buf := make([]int16, media.SamplesPerFrame(media.Rate8k))
	for i := 0; len(out) < n; i += media.FrameSamples {
		for k := range in {
			in[k] = pcm[(i+k)%len(pcm)]
		}
		k, err := r.Process(in[:], buf)
		require.NoError(t, err)
		out = append(out, buf[:k]...)
	}
	return out[:n]
}

// alignment is how received speech lines up with its looping source.
type alignment struct {
	corr   float64 // normalised cross-correlation, each block at its offset
	offset int     // where the whole recording lines up in the loop, samples
	spread int     // largest minus smallest offset of the blocks, samples
}

// Piecewise alignment: blocks of alignBlock samples (256 ms at 8 kHz)
// may move up to maxSlip (100 ms) from where the whole recording lines
// up, and each 20 ms frame takes its block's offset or a neighbour's.
const (
	alignBlock = 2048
	maxSlip    = media.Rate8k / 10
	alignFrame = media.Rate8k / 50
)

// alignBlocks lines got (one loop's length of received audio) up with
// want (one loop of the source, len a power of two). The whole recording
// finds its offset in the loop by circular cross-correlation through an
// FFT. The room's adaptive jitter buffer drops or repeats a frame now and
// then, which moves what follows by 20 ms, so each block then finds its
// own offset within maxSlip of that one (silent blocks, pauses the room's
// voice activity cut to zero, keep the previous block's), and each frame
// takes whichever offset of its block and the two next to it fits it
// best, as a slip falls inside some block. The result is one normalised
// correlation over all frames, each at its offset.
func alignBlocks(want, got []int16) alignment { return alignWithin(want, got, maxSlip) }

// alignWithin is alignBlocks with blocks moving up to within samples from
// where the whole recording lines up.
func alignWithin(want, got []int16, within int) alignment {
	n := len(want)
	w := make([]complex128, n)
	for i, v := range want {
		w[i] = complex(float64(v), 0)
	}
	fft(w, false)
	// correlate returns r[k] = Σ got[i]·want[(i+k) mod n] over [from, to).
	correlate := func(from, to int) []complex128 {
		g := make([]complex128, n)
		for i := from; i < to; i++ {
			g[i] = complex(float64(got[i]), 0)
		}
		fft(g, false)
		for k := range g {
			g[k] = w[k] * cmplx.Conj(g[k])
		}
		fft(g, true)
		return g
	}
	r := correlate(0, len(got))
	whole := 0
	for k := range r {
		if real(r[k]) > real(r[whole]) {
			whole = k
		}
	}
	blocks := make([]int, len(got)/alignBlock) // offsets, whole+slip
	slip, lo, hi := 0, 0, 0
	for b := range blocks {
		from := b * alignBlock
		var energy float64
		for _, v := range got[from : from+alignBlock] {
			energy += float64(v) * float64(v)
		}
		if energy > alignBlock*100*100 { // louder than -50 dBFS
			r := correlate(from, from+alignBlock)
			best := -math.MaxFloat64
			for d := -within; d <= within; d++ {
				if v := real(r[(whole+d+n)%n]); v > best {
					best, slip = v, d
				}
			}
			lo, hi = min(lo, slip), max(hi, slip)
		}
		blocks[b] = (whole + slip + n) % n
	}
	dot := func(from, k int) (xy, xx, yy float64) {
		for i := from; i < from+alignFrame; i++ {
			x, y := float64(got[i]), float64(want[(i+k)%n])
			xy, xx, yy = xy+x*y, xx+x*x, yy+y*y
		}
		return xy, xx, yy
	}
	var xy, xx, yy float64
	for from := 0; from+alignFrame <= len(blocks)*alignBlock; from += alignFrame {
		b := from / alignBlock
		fxy, fxx, fyy := dot(from, blocks[b])
		for _, nb := range []int{b - 1, b + 1} {
			if nb < 0 || nb >= len(blocks) || blocks[nb] == blocks[b] {
				continue
			}
			if nxy, nxx, nyy := dot(from, blocks[nb]); nxy/math.Sqrt(nyy+1e-9) > fxy/math.Sqrt(fyy+1e-9) {
				fxy, fxx, fyy = nxy, nxx, nyy
			}
		}
		xy, xx, yy = xy+fxy, xx+fxx, yy+fyy
	}
	return alignment{corr: xy / math.Sqrt(xx*yy+1e-9), offset: whole, spread: hi - lo}
}

// fft transforms a in place (radix 2, len(a) a power of two); inverse
// includes the 1/n.
func fft(a []complex128, inverse bool) {
	n := len(a)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			a[i], a[j] = a[j], a[i]
		}
	}
	sign := -1.0
	if inverse {
		sign = 1
	}
	for size := 2; size <= n; size <<= 1 {
		step := cmplx.Rect(1, sign*2*math.Pi/float64(size))
		for start := 0; start < n; start += size {
			w := complex(1, 0)
			for k := range size / 2 {
				u, v := a[start+k], a[start+k+size/2]*w
				a[start+k], a[start+k+size/2] = u+v, u-v
				w *= step
			}
		}
	}
	if inverse {
		for i := range a {
			a[i] /= complex(float64(n), 0)
		}
	}
}

// participants lists the display names in room demo, as the page's list
// gets them.
func participants(t *testing.T, base, token string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/r/"+demoRoom+"/participants", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var state struct {
		Participants []struct {
			Name string `json:"name"`
		} `json:"participants"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&state))
	names := make([]string, len(state.Participants))
	for i, r := range state.Participants {
		names[i] = r.Name
	}
	return names
}

// writeWAV writes mono 16-bit PCM as a WAV file (RIFF, WAVE_FORMAT_PCM),
// the format Chromium's fake microphone reads.
func writeWAV(path string, pcm []int16, rate int) error {
	data := 2 * len(pcm)
	b := make([]byte, 0, 44+data)
	b = append(b, "RIFF"...)
	b = byteorder.LittleEndian.AppendUint32(b, uint32(36+data))
	b = append(b, "WAVEfmt "...)
	b = byteorder.LittleEndian.AppendUint32(b, 16)           // fmt chunk size
	b = byteorder.LittleEndian.AppendUint16(b, 1)            // PCM
	b = byteorder.LittleEndian.AppendUint16(b, 1)            // channels
	b = byteorder.LittleEndian.AppendUint32(b, uint32(rate)) // sample rate
	b = byteorder.LittleEndian.AppendUint32(b, uint32(2*rate))
	b = byteorder.LittleEndian.AppendUint16(b, 2)  // block align
	b = byteorder.LittleEndian.AppendUint16(b, 16) // bits per sample
	b = append(b, "data"...)
	b = byteorder.LittleEndian.AppendUint32(b, uint32(data))
	for _, s := range pcm {
		b = byteorder.LittleEndian.AppendUint16(b, uint16(s))
	}
	return os.WriteFile(path, b, 0o644)
}
