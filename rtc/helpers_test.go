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

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
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
	e := &env{t: t, mgr: mgr, srv: srv, http: hs, api: clientAPI(t, nil)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
		require.NoError(t, mgr.Close(ctx))
		hs.Close()
	})
	return e
}

// clientAPI is a pion API for test clients on loopback (TESTING.md), with
// pion's default codecs and interceptors; conn, when given, is the one UDP
// socket the client uses.
func clientAPI(t *testing.T, conn net.PacketConn) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	require.NoError(t, me.RegisterDefaultCodecs())
	return clientAPIWith(t, me, conn)
}

func clientAPIWith(t *testing.T, me *webrtc.MediaEngine, conn net.PacketConn) *webrtc.API {
	t.Helper()
	ir := &interceptor.Registry{}
	require.NoError(t, webrtc.RegisterDefaultInterceptors(me, ir))
	logs := pionLogs{testLogger().With("side", "client")}
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if conn != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(logs.NewLogger("client-mux"), conn))
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// recvFrame is one received and decoded 20 ms packet of a client's mix.
type recvFrame struct {
	arrival time.Time
	ts      uint32
	pcm     media.Frame
}

// client is a pion WHIP/WHEP client: it sends a tone (unless listening)
// and records what it receives, decoded.
type client struct {
	t        *testing.T
	env      *env
	pc       *webrtc.PeerConnection
	location string
	pid      room.ParticipantID
	tone     float64
	sock     *stallConn // the client's socket, when stallable

	connected chan struct{}
	closed    chan struct{} // the PeerConnection closed or failed
	stateOnce sync.Once
	closeOnce sync.Once

	mu     sync.Mutex
	frames []recvFrame
	notify chan struct{}

	video chan *rtp.Packet // video packets received (WHEP viewer)
	plis  chan struct{}    // keyframe requests received (WHIP presenter)

	cancel  context.CancelFunc
	wgMu    sync.Mutex
	closing bool
	wg      sync.WaitGroup
}

// clientOpts choose what a test client does.
type clientOpts struct {
	tone      float64 // Hz sent by a WHIP client; 0 sends silence
	listen    bool    // WHEP: receive only
	stallable bool    // route the client's UDP through a stallConn
	video     bool    // WHIP: also send H.264; WHEP: also receive video
	api       *webrtc.API
}

// join connects a client to room id and waits until it is connected. The
// client's goroutines end with the test.
func (e *env) join(id room.ID, o clientOpts) *client {
	t := e.t
	t.Helper()
	c := &client{t: t, env: e, tone: o.tone, connected: make(chan struct{}), closed: make(chan struct{}),
		notify: make(chan struct{}, 1), video: make(chan *rtp.Packet, 4096), plis: make(chan struct{}, 64)}
	api := e.api
	if o.api != nil {
		api = o.api
	}
	if o.stallable {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		c.sock = &stallConn{PacketConn: conn, resume: make(chan struct{})}
		api = clientAPI(t, c.sock)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	c.pc = pc
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	t.Cleanup(c.close)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			c.stateOnce.Do(func() { close(c.connected) })
		case webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed:
			c.closeOnce.Do(func() { close(c.closed) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			c.receive(tr)
		} else {
			c.receiveVideo(tr)
		}
	})
	var send *webrtc.TrackLocalStaticSample
	if o.listen {
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	} else {
		send, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "client")
		require.NoError(t, err)
		_, err = pc.AddTransceiverFromTrack(send,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
		require.NoError(t, err)
	}
	var video *webrtc.TrackLocalStaticSample
	switch {
	case o.video && o.listen:
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	case o.video:
		video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "client")
		require.NoError(t, err)
		tr, err := pc.AddTransceiverFromTrack(video,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		require.NoError(t, err)
		c.wg.Go(func() { c.readPLI(tr.Sender()) })
	}
	kind := "whip"
	if o.listen {
		kind = "whep"
	}
	resp, answer := e.post(kind, id, offerOf(t, pc), "")
	require.Equal(t, http.StatusCreated, resp.StatusCode, answer)
	c.location = resp.Header.Get("Location")
	c.pid = e.participantOf(c.location)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	select {
	case <-c.connected:
	case <-time.After(10 * time.Second):
		t.Fatalf("client in %s not connected", id)
	}
	c.wgMu.Lock()
	if send != nil {
		c.wg.Go(func() { c.sendTone(ctx, send) })
	}
	if video != nil {
		c.wg.Go(func() { sendVideo(ctx, video) })
	}
	c.wgMu.Unlock()
	return c
}

// participantOf returns the participant ID of the session at location.
func (e *env) participantOf(location string) room.ParticipantID {
	e.t.Helper()
	p := e.srv.lookup(location[strings.LastIndex(location, "/")+1:])
	require.NotNil(e.t, p, "no session at %s", location)
	return p.info.ID
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

// sendTone sends the client's tone as Opus every 20 ms until ctx ends,
// timed by a ticker like a microphone.
func (c *client) sendTone(ctx context.Context, track *webrtc.TrackLocalStaticSample) {
	enc, err := media.NewOpusEncoder()
	if err != nil {
		c.t.Error(err)
		return
	}
	defer enc.Close()
	src := mediatest.Tone{Freq: c.tone, Amp: 0.25, Rate: media.Rate48k}
	var pcm media.Frame
	buf := make([]byte, media.MaxOpusPayload)
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if c.tone > 0 {
			src.Fill(pcm[:])
		}
		n, err := enc.Encode(pcm[:], buf)
		if err != nil {
			c.t.Error(err)
			return
		}
		if err := track.WriteSample(pionmedia.Sample{Data: buf[:n], Duration: media.FrameDuration}); err != nil {
			return
		}
	}
}

// receive decodes the client's incoming mix until the track ends (pion
// runs it in its own goroutine; close waits for it).
func (c *client) receive(tr *webrtc.TrackRemote) {
	c.wgMu.Lock()
	if c.closing {
		c.wgMu.Unlock()
		return
	}
	c.wg.Add(1)
	c.wgMu.Unlock()
	defer c.wg.Done()
	dec, err := media.NewOpusDecoder()
	if err != nil {
		c.t.Error(err)
		return
	}
	defer dec.Close()
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		f := recvFrame{arrival: time.Now(), ts: pkt.Timestamp}
		if _, err := dec.Decode(pkt.Payload, f.pcm[:]); err != nil {
			continue
		}
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
}

// receiveVideo queues the video packets the client receives.
func (c *client) receiveVideo(tr *webrtc.TrackRemote) {
	c.wgMu.Lock()
	if c.closing {
		c.wgMu.Unlock()
		return
	}
	c.wg.Add(1)
	c.wgMu.Unlock()
	defer c.wg.Done()
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
func sendVideo(ctx context.Context, track *webrtc.TrackLocalStaticSample) {
	tick := time.NewTicker(33 * time.Millisecond)
	defer tick.Stop()
	for i := uint32(0); ; i++ {
		select {
		case <-ctx.Done():
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

// received returns how many frames arrived so far.
func (c *client) received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.frames)
}

// waitFrames waits until the client holds n frames.
func (c *client) waitFrames(n int) {
	c.t.Helper()
	deadline := time.After(time.Duration(n)*media.FrameDuration + 10*time.Second)
	for c.received() < n {
		select {
		case <-c.notify:
		case <-deadline:
			c.t.Fatalf("client %s: %d of %d frames", c.pid, c.received(), n)
		}
	}
}

// window returns frames [from, to).
func (c *client) window(from, to int) []recvFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]recvFrame(nil), c.frames[from:to]...)
}

// close stops the client and waits for its goroutines.
func (c *client) close() {
	c.wgMu.Lock()
	c.closing = true
	c.wgMu.Unlock()
	c.cancel()
	_ = c.pc.Close()
	if c.sock != nil {
		c.sock.release()
	}
	c.wg.Wait()
}

// pcm concatenates the frames' samples.
func pcm(frames []recvFrame) []int16 {
	out := make([]int16, 0, len(frames)*media.FrameSamples)
	for i := range frames {
		out = append(out, frames[i].pcm[:]...)
	}
	return out
}

// toneDB is the level of freq in frames, dB relative to a full-scale sine.
func toneDB(frames []recvFrame, freq float64) float64 {
	return mediatest.ToneDB(pcm(frames), freq, media.Rate48k)
}

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

func (s *stallConn) release() {
	s.closeOnce.Do(func() { close(s.resume) })
	_ = s.PacketConn.Close()
}

// frameToneDB is the level of freq in one frame, Hann-windowed so that the
// other tones of the mix (220 Hz away and more, 4.4 bins of a 20 ms frame)
// do not leak into it.
func frameToneDB(f *recvFrame, freq float64) float64 {
	var w media.Frame
	for i, s := range f.pcm {
		h := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(f.pcm)-1))
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
		a.max = max(a.max, frames[i].arrival.Sub(frames[i-1].arrival))
	}
	a.mean = frames[len(frames)-1].arrival.Sub(frames[0].arrival) / time.Duration(len(frames)-1)
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
