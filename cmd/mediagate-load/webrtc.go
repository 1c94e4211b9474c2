package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/mediagate/mediagate/media"
)

// WebRTC participants: a pion PeerConnection per participant joining a
// mediagate room over WHIP (POST /whip/{room}, no trickle, an open room)
// or a Janus AudioBridge room through the plugin's join (janus.go),
// sending Opus every 20 ms from the pacer and decoding what it receives
// for the probe. The frames it sends are encoded once per run and played
// in a loop (encodeLoop: a second of a speaker's tone, a prober's burst
// interval, silence), so the generator spends no encoder per participant;
// what it receives it decodes (about 30 µs a frame).

// webrtcClients makes the legs' PeerConnections: pion APIs with pion's
// default codecs and interceptors and, as browsers offer it, the RFC 6464
// audio level header extension. Each leg has its own API whose ICE runs on
// a polledConn of the run's poller (pollnet.go) bound to one local address,
// so it stays off other networks (TESTING.md, "Loopback traps") and
// packets the gateway sends it do not wake the generator from inside the
// gateway.
type webrtcClients struct {
	poll *poller
	logs *logging.DefaultLoggerFactory
}

// newWebRTCClients starts the poller for legs bound to host, or in the
// suite's namespace to benchAddr (netns.go): Janus's ICE (libnice) does not
// pair loopback candidates. A leg's host candidate on the address the
// gateway offers pairs at once; one on loopback answering a gateway that
// offers only its interface address is paired as peer-reflexive, which
// pion accepts only after SetPrflxAcceptanceMinWait.
func newWebRTCClients(host string) (*webrtcClients, error) {
	if inNetns() {
		host = benchAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return nil, err
	}
	p, err := newPoller(addr)
	if err != nil {
		return nil, err
	}
	logs := logging.NewDefaultLoggerFactory()
	logs.DefaultLogLevel = logging.LogLevelError
	// The mux complains of writes to a leg that is closing.
	logs.ScopeLevels["mux"] = logging.LogLevelDisabled
	return &webrtcClients{poll: p, logs: logs}, nil
}

// close stops the poller; close every leg first.
func (w *webrtcClients) close() { w.poll.close() }

// newPeerConnection is a PeerConnection on a socket of its own, and that
// socket.
func (w *webrtcClients) newPeerConnection() (*webrtc.PeerConnection, *polledConn, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, nil, err
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, nil, err
	}
	conn, err := w.poll.listen()
	if err != nil {
		return nil, nil, err
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{Logger: w.logs.NewLogger("mux"), UDPConn: conn})
	se := webrtc.SettingEngine{LoggerFactory: w.logs}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEUDPMux(mux)
	// Outside the namespace the pair is peer-reflexive (see
	// newWebRTCClients); pion's default wait of a second for it would be
	// counted as the gateway's setup time. Browsers do not wait.
	se.SetPrflxAcceptanceMinWait(0)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		_ = mux.Close()
		return nil, nil, err
	}
	return pc, conn, nil
}

// opusLoops are the pre-encoded Opus frames of a run, by what they carry.
type opusLoops struct {
	mu    sync.Mutex
	loops map[loopKey][]opusFrame
}

// loopKey says what a loop of every frames carries: a tone at bg (0:
// silence) and, for a prober, its probe tone in the first burst frames.
type loopKey struct {
	bg, probe    float64
	every, burst int
}

// opusFrame is one encoded frame and its RFC 6464 audio level, which a
// browser sends with it.
type opusFrame struct {
	data  []byte
	level []byte // the extension's one byte: V bit clear, -dBov
}

// encodeLoop returns k.every frames a leg can play round and round as one
// encoder's stream: frame i carries k's probe tone while i < k.burst and
// its tone (or silence) after. Opus is predictive, so a decoder must get
// one encoder's frames in order: cutting a separately encoded probe into
// a tone made the first frames of each burst decode as noise, and its
// onset heard a frame or two late. Two rounds of the same signal are
// encoded and the second kept, so its first frame follows the state the
// decoder has at the wrap.
func encodeLoop(k loopKey) ([]opusFrame, error) {
	enc, err := media.NewOpusEncoder()
	if err != nil {
		return nil, err
	}
	defer func() { _ = enc.Close() }()
	out := make([]opusFrame, k.every)
	pcm := make([]int16, media.FrameSamples)
	buf := make([]byte, media.MaxOpusPayload)
	for i := range 2 * k.every {
		freq, amp := k.bg, bgAmp
		if k.bg == 0 {
			amp = 0
		}
		if i%k.every < k.burst {
			freq, amp = k.probe, probeAmp
		}
		for s := range pcm {
			n := (i%k.every)*media.FrameSamples + s // both rounds the same
			pcm[s] = int16(amp * 32767 * math.Sin(2*math.Pi*freq*float64(n)/media.Rate48k))
		}
		m, err := enc.Encode(pcm, buf)
		if err != nil {
			return nil, err
		}
		if i >= k.every {
			out[i-k.every] = opusFrame{data: bytes.Clone(buf[:m]), level: []byte{media.MeasureLevel(pcm).AudioLevel()}}
		}
	}
	return out, nil
}

// loop returns the loop a participant of role with tone bgFreq sends; a
// prober's carries its slot's probe in the first frames of each burst
// interval of sched.
func (o *opusLoops) loop(r role, bgFreq float64, slot int, sched schedule) ([]opusFrame, error) {
	k := loopKey{every: 50}
	switch r {
	case speaker:
		k.bg = bgFreq
	case prober:
		k = loopKey{bg: bgFreq, probe: probeFreqs[slot], every: sched.period(), burst: sched.frames}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if l := o.loops[k]; l != nil {
		return l, nil
	}
	l, err := encodeLoop(k)
	if err != nil {
		return nil, err
	}
	if o.loops == nil {
		o.loops = map[loopKey][]opusFrame{}
	}
	o.loops[k] = l
	return l, nil
}

// webrtcLeg is one WHIP participant.
type webrtcLeg struct {
	receiver
	role     role
	pc       *webrtc.PeerConnection
	conn     *polledConn // pc's socket
	track    *webrtc.TrackLocalStaticRTP
	sender   *webrtc.RTPSender
	location string // the WHIP session's URL, for the DELETE

	// Sender state, used by the pacer only.
	loop    []opusFrame
	pos     int // loop frame sent next
	bursts  schedule
	levelID uint8 // the audio level extension's ID; 0 when not negotiated
	pkt     rtp.Packet

	wg sync.WaitGroup // the receive goroutine
}

// offerAnswer is a WebRTC signalling exchange: our complete offer out, the
// answer back, and where the session can be ended (a WHIP resource; empty
// when the signaller ends its sessions itself).
type offerAnswer func(ctx context.Context, offer string) (answer, location string, err error)

// joinWebRTC connects a WebRTC participant through signal (WHIP to
// mediagate, the AudioBridge plugin to Janus) and returns it with the
// time from the offer being ready to the connection being up.
func joinWebRTC(ctx context.Context, clients *webrtcClients, loops *opusLoops, cfg legConfig, signal offerAnswer) (*webrtcLeg, time.Duration, error) {
	l := &webrtcLeg{role: cfg.role}
	l.init(cfg)
	if cfg.role == prober {
		l.bursts = newSchedule(cfg)
		l.pos = l.bursts.frames // tone until the first burst
	}
	var err error
	if l.loop, err = loops.loop(cfg.role, cfg.bgFreq, cfg.probeSlot, l.bursts); err != nil {
		return nil, 0, fmt.Errorf("opus: %w", err)
	}
	if l.pc, l.conn, err = clients.newPeerConnection(); err != nil {
		return nil, 0, err
	}
	pc := l.pc
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		l.wg.Add(1)
		defer l.wg.Done()
		l.receive(tr)
	})
	if cfg.listenOnly {
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	} else if l.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus},
		"audio", "load"); err == nil {
		var tr *webrtc.RTPTransceiver
		tr, err = pc.AddTransceiverFromTrack(l.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
		if err == nil {
			l.sender = tr.Sender()
		}
	}
	if err != nil {
		_ = pc.Close()
		return nil, 0, err
	}
	start := time.Now()
	if err := l.connect(ctx, signal, connected); err != nil {
		l.close()
		return nil, 0, err
	}
	setup := time.Since(start)
	if l.sender != nil {
		for _, e := range l.sender.GetParameters().HeaderExtensions {
			if e.URI == sdp.AudioLevelURI && e.ID > 0 && e.ID < 15 {
				l.levelID = uint8(e.ID)
			}
		}
		l.pkt.Header = rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}
	}
	return l, setup, nil
}

// whip is the offerAnswer of mediagate's WHIP endpoint for room at base
// (mediagate's HTTP base URL), or of its WHEP endpoint for a listener
// (listen); the room is open, so no token.
func whip(base, room string, listen bool) offerAnswer {
	endpoint := "/whip/"
	if listen {
		endpoint = "/whep/"
	}
	return func(ctx context.Context, offer string) (string, string, error) {
		target := base + endpoint + url.PathEscape(room)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(offer))
		if err != nil {
			return "", "", err
		}
		req.Header.Set("Content-Type", "application/sdp")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", "", err
		}
		answer, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		_ = res.Body.Close()
		if err != nil {
			return "", "", err
		}
		if res.StatusCode != http.StatusCreated {
			return "", "", fmt.Errorf("POST %s%s: %s: %s", endpoint, room, res.Status, bytes.TrimSpace(answer))
		}
		location := ""
		if loc, err := res.Request.URL.Parse(res.Header.Get("Location")); err == nil {
			location = loc.String()
		}
		return string(answer), location, nil
	}
}

// connect offers (every candidate gathered: neither mediagate nor our
// Janus client trickles), has signal deliver the offer and waits up to
// 10 s for the connection.
func (l *webrtcLeg) connect(ctx context.Context, signal offerAnswer, connected chan struct{}) error {
	offer, err := l.pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	answer, location, err := signal(ctx, l.pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	l.location = location
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return err
	}
	select {
	case <-connected:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return fmt.Errorf("not connected after 10 s (%s)", l.pc.ICEConnectionState())
	}
}

// send writes the participant's next Opus frame, one packet with its
// audio level as a browser sends it; the pacer calls it every 20 ms.
func (l *webrtcLeg) send(now time.Time) {
	if l.track == nil { // a WHEP listener
		return
	}
	if l.role == prober {
		if _, start := l.bursts.probe(now); start {
			l.pos = 0 // the loop is there already, but for the first burst
		}
	}
	f := l.loop[l.pos%len(l.loop)]
	l.pos++
	l.pkt.Payload = f.data
	if l.levelID != 0 {
		_ = l.pkt.SetExtension(l.levelID, f.level)
	}
	_ = l.track.WriteRTP(&l.pkt)
	l.pkt.Marker = false
	l.pkt.SequenceNumber++
	l.pkt.Timestamp += media.FrameSamples
}

// receive decodes the room's mix until the track ends.
func (l *webrtcLeg) receive(tr *webrtc.TrackRemote) {
	if tr.Kind() != webrtc.RTPCodecTypeAudio {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
		}
	}
	dec, err := media.NewOpusDecoder()
	if err != nil {
		logf("opus decoder: %v", err)
		return
	}
	defer func() { _ = dec.Close() }()
	pcm := make([]int16, media.FrameSamples)
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now, ok := l.conn.arrival(pkt.SequenceNumber)
		if !ok {
			now = time.Now()
		}
		l.count(pkt.SequenceNumber)
		if !l.detects {
			continue
		}
		if n, err := dec.Decode(pkt.Payload, pcm); err == nil && n == len(pcm) {
			l.detect(pcm, media.Rate48k, now)
		}
	}
}

// close ends the WHIP session (DELETE, bounded) and the PeerConnection,
// and waits for the receiver.
func (l *webrtcLeg) close() {
	if l.location != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if req, err := http.NewRequestWithContext(ctx, http.MethodDelete, l.location, nil); err == nil {
			if res, err := http.DefaultClient.Do(req); err == nil {
				_ = res.Body.Close()
			}
		}
		cancel()
	}
	_ = l.pc.Close()
	_ = l.conn.Close() // pion leaves the mux (and so the socket) open
	l.wg.Wait()
}
