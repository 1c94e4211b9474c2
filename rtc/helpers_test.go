package rtc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger writes warnings and errors to stderr (debug with
// RTC_TEST_LOG=debug), so a failing test shows what pion complained about.
func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("RTC_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// env is a server under test: a real room.Manager with real tickers, the
// rtc.Server on loopback, and its handler behind a real HTTP server.
type env struct {
	t    *testing.T
	mgr  *room.Manager
	srv  *Server
	http *httptest.Server
	api  *webrtc.API // the clients' pion API
}

// newEnv starts a server; opts come after the test defaults (loopback,
// AllowAll). mgrOpts configure the room manager.
func newEnv(t *testing.T, mgrOpts []room.ManagerOption, opts ...Option) *env {
	t.Helper()
	mgr := room.NewManager(append([]room.ManagerOption{room.WithRoomDefaults(room.WithLogger(testLogger()))}, mgrOpts...)...)
	all := append([]Option{
		WithLogger(testLogger()),
		WithSettings(Settings{LoopbackOnly: true}),
		WithAuthorizer(AllowAll()),
	}, opts...)
	srv, err := NewServer(mgr, all...)
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	e := &env{t: t, mgr: mgr, srv: srv, http: hs, api: clientAPI(t)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
		require.NoError(t, mgr.Close(ctx))
		hs.Close()
	})
	return e
}

// clientLogs is where the test clients' pion messages go.
func clientLogs() pionLogs { return pionLogs{testLogger().With("side", "client")} }

// clientAPI is the pion API for test clients (rtctest.NewAPI: loopback
// only, pion's default codecs).
func clientAPI(t *testing.T) *webrtc.API {
	t.Helper()
	return clientAPIWith(t, nil)
}

// clientAPIWith is clientAPI with the codecs of me.
func clientAPIWith(t *testing.T, me *webrtc.MediaEngine) *webrtc.API {
	t.Helper()
	api, _, err := rtctest.NewAPI(me, nil, clientLogs())
	require.NoError(t, err)
	return api
}

// recvFrame is one received and decoded 20 ms packet of a client's mix.
type recvFrame = rtctest.Frame

// client is an rtctest WHIP/WHEP client with what rtc's own tests add:
// its participant ID, a socket that can stall, and presenter video.
type client struct {
	*rtctest.Client
	t        *testing.T
	pc       *webrtc.PeerConnection
	location string // the session's path on e.http
	pid      room.ParticipantID
	tone     float64
	sock     *stallConn // the client's socket, when stallable
	closed   <-chan struct{}

	video chan *rtp.Packet // video packets received (WHEP viewer)
	plis  chan struct{}    // keyframe requests received (WHIP presenter)

	stop chan struct{} // stops the video sender
	wg   sync.WaitGroup
}

// clientOpts choose what a test client does.
type clientOpts struct {
	tone      float64             // Hz sent by a WHIP client; 0 sends silence
	listen    bool                // WHEP: receive only
	stallable bool                // route the client's UDP through a stallConn
	video     bool                // WHIP: also send H.264; WHEP: also receive video
	backlog   int                 // frames sent at once before keeping time
	markEvery bool                // the marker bit on every packet, as pion's packetizer sets it
	pcm       []int16             // sent instead of the tone (48 kHz, looped)
	api       *webrtc.API         // instead of the env's (other codecs or extensions)
	offer     func(string) string // rewrites the offer before it is posted
}

// join connects a client to room id and waits until it is connected. The
// client's goroutines end with the test.
func (e *env) join(id room.ID, o clientOpts) *client {
	t := e.t
	t.Helper()
	c := &client{t: t, tone: o.tone, video: make(chan *rtp.Packet, 4096), plis: make(chan struct{}, 64),
		stop: make(chan struct{})}
	opts := rtctest.Options{Tone: o.tone, PCM: o.pcm, Backlog: o.backlog, MarkEvery: o.markEvery, ListenOnly: o.listen, API: e.api, Logs: clientLogs(), Offer: o.offer}
	if o.api != nil {
		opts.API = o.api
	}
	if o.stallable {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		c.sock = &stallConn{PacketConn: conn, resume: make(chan struct{})}
		opts.API, opts.Conn = nil, c.sock
	}
	var video *webrtc.TrackLocalStaticSample
	switch {
	case o.video && o.listen:
		opts.Prepare = func(pc *webrtc.PeerConnection) error {
			_, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
				webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
			return err
		}
		opts.OnTrack = c.receiveVideo
	case o.video:
		opts.Prepare = func(pc *webrtc.PeerConnection) error {
			var err error
			video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "client")
			if err != nil {
				return err
			}
			tr, err := pc.AddTransceiverFromTrack(video,
				webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
			if err != nil {
				return err
			}
			c.wg.Go(func() { c.readPLI(tr.Sender()) })
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rc, err := rtctest.Join(ctx, t, e.http.URL, string(id), "", opts)
	t.Cleanup(func() {
		close(c.stop)
		if rc != nil {
			_ = rc.Close()
		}
		c.wg.Wait()
	})
	require.NoError(t, err, "client in %s", id)
	c.Client, c.pc, c.closed = rc, rc.PeerConnection(), rc.Done()
	c.location = strings.TrimPrefix(rc.Location(), e.http.URL)
	c.pid = e.participantOf(c.location)
	if video != nil {
		c.wg.Go(func() { sendVideo(c.stop, video) })
	}
	return c
}

// participantOf returns the participant ID of the session at location.
func (e *env) participantOf(location string) room.ParticipantID {
	e.t.Helper()
	return e.sessionAt(location).info.ID
}

// sessionAt is the server's session at location (its path on e.http).
func (e *env) sessionAt(location string) *participant {
	e.t.Helper()
	p := e.srv.lookup(location[strings.LastIndex(location, "/")+1:])
	require.NotNil(e.t, p, "no session at %s", location)
	return p
}

// offerOf makes pc's offer with every candidate in it (non-trickle).
func offerOf(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		t.Fatal("client gathering timed out")
	}
	return pc.LocalDescription().SDP
}

// post sends body to /{kind}/{id} as application/sdp, or with contentType.
func (e *env) post(kind string, id room.ID, body, contentType string) (*http.Response, string) {
	e.t.Helper()
	if contentType == "" {
		contentType = ContentTypeSDP
	}
	return e.do(http.MethodPost, "/"+kind+"/"+string(id), body, contentType, nil)
}

// do sends one request and returns the response with its body read.
func (e *env) do(method, path, body, contentType string, header http.Header) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	require.NoError(e.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.http.Client().Do(req)
	require.NoError(e.t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	require.NoError(e.t, resp.Body.Close())
	return resp, string(b)
}

// problem decodes a problem+json body.
func problem(t *testing.T, resp *http.Response, body string) Problem {
	t.Helper()
	require.Equal(t, ContentTypeProblem, resp.Header.Get("Content-Type"), body)
	var p Problem
	require.NoError(t, json.Unmarshal([]byte(body), &p), body)
	return p
}

// receiveVideo queues the video packets the client receives.
func (c *client) receiveVideo(tr *webrtc.TrackRemote) {
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		select {
		case c.video <- pkt:
		default:
		}
	}
}

// readPLI signals the keyframe requests that reach a presenter.
func (c *client) readPLI(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				select {
				case c.plis <- struct{}{}:
				default:
				}
			}
		}
	}
}

// sendVideo sends fake H.264 at 30 frames/s: a keyframe (SPS, PPS, IDR)
// every 30 frames, else one non-IDR slice; each NAL carries its frame
// number after the header so the receiver can check what it got.
func sendVideo(stop <-chan struct{}, track *webrtc.TrackLocalStaticSample) {
	tick := time.NewTicker(33 * time.Millisecond)
	defer tick.Stop()
	for i := uint32(0); ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if err := track.WriteSample(pionmedia.Sample{Data: fakeFrame(i), Duration: 33 * time.Millisecond}); err != nil {
			return
		}
	}
}

// fakeFrame is frame i of sendVideo in Annex B.
func fakeFrame(i uint32) []byte {
	start := []byte{0, 0, 0, 1}
	slice := binary.BigEndian.AppendUint32([]byte{0x41}, i) // non-IDR slice
	if i%30 != 0 {
		return append(start, slice...)
	}
	var b []byte
	b = append(append(b, start...), 0x67, 0x42, 0xe0, 0x1f) // SPS
	b = append(append(b, start...), 0x68, 0xce, 0x3c, 0x80) // PPS
	idr := binary.BigEndian.AppendUint32([]byte{0x65}, i)
	return append(append(b, start...), idr...)
}

// session returns the server's side of c.
func (e *env) session(c *client) *participant {
	e.t.Helper()
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	for _, p := range e.srv.sessions {
		if p.location == c.location {
			return p
		}
	}
	e.t.Fatalf("no session at %s", c.location)
	return nil
}

// received returns how many frames arrived so far.
func (c *client) received() int { return c.Received() }

// waitFrames waits until the client holds n frames.
func (c *client) waitFrames(n int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*media.FrameDuration+10*time.Second)
	defer cancel()
	require.NoError(c.t, c.WaitFrames(ctx, n), "client %s", c.pid)
}

// window returns frames [from, to).
func (c *client) window(from, to int) []recvFrame { return c.Frames(from, to) }

// toneDB is the level of freq in frames, dB relative to a full-scale sine,
// over blocks of toneBlock frames: a frame the jitter buffer drops to lower
// its delay must not cost the tone dB (mediatest.BlockToneDB).
func toneDB(frames []recvFrame, freq float64) float64 {
	return mediatest.BlockToneDB(rtctest.Samples(frames), freq, media.Rate48k, toneBlock*media.FrameSamples)
}

// toneBlock is 100 ms: whole cycles of the tests' 440, 660 and 880 Hz,
// and 10 Hz bins that keep the tones apart.
const toneBlock = 5

// stallConn is a client's UDP socket that stops being read on stall():
// the kernel buffer fills and the server's packets are dropped on the
// floor, as with a peer whose network or process hangs.
type stallConn struct {
	net.PacketConn
	stalled   atomic.Bool
	resume    chan struct{}
	closeOnce sync.Once
}

func (s *stallConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if s.stalled.Load() {
		<-s.resume
	}
	return s.PacketConn.ReadFrom(b)
}

func (s *stallConn) stall() { s.stalled.Store(true) }

// Close releases a stalled reader too: the client's mux closes its socket.
func (s *stallConn) Close() error {
	s.release()
	return nil
}

func (s *stallConn) release() {
	s.closeOnce.Do(func() { close(s.resume) })
	_ = s.PacketConn.Close()
}

// frameToneDB is the level of freq in one frame, Hann-windowed so that the
// other tones of the mix (220 Hz away and more, 4.4 bins of a 20 ms frame)
// do not leak into it.
func frameToneDB(f *recvFrame, freq float64) float64 {
	var w media.Frame
	for i, s := range f.PCM {
		h := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(f.PCM)-1))
		w[i] = int16(float64(s) * h)
	}
	return mediatest.ToneDB(w[:], freq, media.Rate48k)
}

// arrivals describes the spacing of frames' arrival times.
type arrivals struct {
	count     int
	mean, max time.Duration
}

func spacing(frames []recvFrame) arrivals {
	a := arrivals{count: len(frames)}
	if len(frames) < 2 {
		return a
	}
	for i := 1; i < len(frames); i++ {
		a.max = max(a.max, frames[i].Arrival.Sub(frames[i-1].Arrival))
	}
	a.mean = frames[len(frames)-1].Arrival.Sub(frames[0].Arrival) / time.Duration(len(frames)-1)
	return a
}

// canary measures how late a 5 ms ticker of the test process fires, so a
// timing assertion that fails on an overloaded machine says so.
type canary struct {
	late atomic.Int64 // the largest lateness seen, ns
}

// startCanary runs until the test ends.
func startCanary(t *testing.T) *canary {
	c := &canary{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		const period = 5 * time.Millisecond
		tick := time.NewTicker(period)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				if late := now.Sub(last) - period; late > time.Duration(c.late.Load()) {
					c.late.Store(int64(late))
				}
				last = now
			}
		}
	})
	t.Cleanup(func() {
		close(done)
		wg.Wait()
	})
	return c
}

// String reports the worst lateness, for assertion messages.
func (c *canary) String() string {
	return fmt.Sprintf("(the test process's own 5 ms ticker was up to %v late: machine overloaded?)",
		time.Duration(c.late.Load()).Round(time.Millisecond))
}
