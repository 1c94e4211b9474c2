package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// options describe one load run against one gateway (mediagate or Janus).
type options struct {
	scenario   string
	target     string // "mediagate" or "janus": whose signalling and metrics
	gatewayPID int
	sipAddr    string // mediagate's SIP address, host:port
	httpURL    string // mediagate's HTTP base (for /metrics), or Janus's API URL
	host       string // local address for the generator's sockets
	calls      int
	roomSize   int
	speakers   int
	numberBase int // room k is dialled at numberBase+k
	rate       float64
	warmup     time.Duration
	duration   time.Duration
	probeEvery time.Duration
	// webrtcPerRoom participants of each room join over WHIP (mediagate
	// only) instead of SIP, interleaved with the callers: phone, WebRTC,
	// phone, ... while both kinds remain. roomPrefix names room k
	// (roomPrefix + %03d) for WHIP.
	webrtcPerRoom int
	roomPrefix    string
	// whepListeners joins the WebRTC participants that do not speak as
	// listeners over WHEP (receive only), as browsers that only listen do.
	whepListeners bool
	// record and stream are how many rooms (the first ones) record and
	// stream automatically (mediagate started by the suite only).
	record, stream int
	// sharedRTP runs the gateway with rtp.shared, and gatewayEnv are
	// further MEDIAGATE_ settings for it (mediagate started by the suite
	// only).
	sharedRTP  bool
	gatewayEnv []string
	// pprofURL is the gateway's profiler (http.pprof_listen), and
	// profileOut where the CPU profile of the measurement window goes;
	// both or neither.
	pprofURL, profileOut string
	webrtc               *webrtcClients // set by runTarget when webrtcPerRoom > 0
	opus                 *opusLoops
}

// isWebRTC tells whether the participant at idx of a room joins over WHIP.
func (o options) isWebRTC(idx int) bool {
	phones, w := o.roomSize-o.webrtcPerRoom, o.webrtcPerRoom
	if both := min(phones, w); idx < 2*both {
		return idx%2 == 1
	}
	return w > phones
}

// participant is one joined participant, whichever its kind.
type participant interface {
	sender
	lossCounters() (expected, received int64)
	takeDelays() []pathDelay
	close()
}

// signaller brings a leg into room k and finds where its RTP goes; the SIP
// dialer and the Janus AudioBridge client are the two.
type signaller interface {
	join(ctx context.Context, room int, l *leg) (remote netip.AddrPort, setup time.Duration, err error)
	// leaveAll ends every joined leg's session.
	leaveAll()
	close()
}

// webrtcSignaller is a signaller that also joins WebRTC participants to
// room k (Janus); mediagate's are joined over WHIP.
type webrtcSignaller interface {
	webrtcJoin(room int) offerAnswer
}

// sipSignaller joins legs by calling the room's dial-in number.
type sipSignaller struct {
	ua    *sipUA
	gw    netip.AddrPort
	base  int
	mu    sync.Mutex
	calls []*sipCall
}

func (s *sipSignaller) join(ctx context.Context, room int, l *leg) (netip.AddrPort, time.Duration, error) {
	c, err := s.ua.dial(ctx, s.gw, strconv.Itoa(s.base+room), l.port())
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	return c.remote, c.setup, nil
}

func (s *sipSignaller) leaveAll() {
	s.mu.Lock()
	calls := s.calls
	s.calls = nil
	s.mu.Unlock()
	parallel(len(calls), 32, func(i int) { hangup(calls[i].dialog) })
}

func (s *sipSignaller) close() { s.ua.close() }

// dropped is how many calls the gateway ended with a BYE.
func (s *sipSignaller) dropped() int { return s.ua.hungUp() }

// parallel runs f(0..n-1) on at most width goroutines and waits.
func parallel(n, width int, f func(int)) {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// sample is what run reads at the start and the end of the measurement.
type sample struct {
	at               time.Time
	gwCPU, selfCPU   time.Duration
	mixer            mixerCounters
	expected, gotten int64
}

// run places the load, measures for o.duration after o.warmup, ends the
// load and returns the report.
func run(ctx context.Context, o options, sig signaller) (Report, error) {
	rep := Report{Scenario: o.scenario, Target: o.target, Participants: o.calls,
		RoomSize: o.roomSize, Speakers: o.speakers}
	pid := strconv.Itoa(o.gatewayPID)
	rssIdle, err := procRSS(pid)
	if err != nil {
		return rep, fmt.Errorf("gateway pid %s: %w", pid, err)
	}
	var measure atomic.Bool
	pctx, stopPacer := context.WithCancel(ctx)
	var p pacer
	legs, setups, failed := placeLegs(pctx, o, sig, &p, &measure)
	defer func() {
		sig.leaveAll()
		stopPacer()
		p.wait()
		parallel(len(legs), 16, func(i int) { legs[i].close() })
	}()
	rep.Failed = failed
	rep.SetupP50Ms, rep.SetupP99Ms = ms(percentile(setups, 50)), ms(percentile(setups, 99))
	if len(legs) == 0 {
		return rep, errors.New("no participant joined")
	}
	if err := wait(ctx, o.warmup); err != nil {
		return rep, err
	}
	mixerURL := o.httpURL + "/metrics"
	client := &http.Client{Timeout: 5 * time.Second}
	take := func() (sample, error) {
		s := sample{at: time.Now()}
		var err error
		if s.gwCPU, err = procCPU(pid); err != nil {
			return s, err
		}
		if s.selfCPU, err = procCPU("self"); err != nil {
			return s, err
		}
		if o.target == "mediagate" {
			if s.mixer, err = scrapeMixer(client, mixerURL); err != nil {
				return s, err
			}
		}
		for _, l := range legs {
			e, g := l.lossCounters()
			s.expected += e
			s.gotten += g
		}
		return s, nil
	}
	s0, err := take()
	if err != nil {
		return rep, err
	}
	measure.Store(true)
	profiled := make(chan error, 1)
	if o.profileOut != "" {
		go func() { profiled <- fetchProfile(ctx, o.pprofURL, o.duration, o.profileOut) }()
	} else {
		profiled <- nil
	}
	if err := wait(ctx, o.duration); err != nil {
		return rep, err
	}
	measure.Store(false)
	if err := <-profiled; err != nil {
		logf("CPU profile of the gateway: %v", err)
	}
	s1, err := take()
	if err != nil {
		return rep, err
	}
	rss, err := procRSS(pid)
	if err != nil {
		return rep, err
	}
	var delays []pathDelay
	for _, l := range legs {
		delays = append(delays, l.takeDelays()...)
	}
	rep.fill(s0, s1, len(legs), rss, rssIdle, delays, o.target == "mediagate")
	if d, ok := sig.(interface{ dropped() int }); ok {
		rep.Dropped = d.dropped()
	}
	return rep, nil
}

// placeLegs opens a leg per participant and joins it at o.rate per second;
// it returns the joined legs, their setup times and how many failed.
func placeLegs(ctx context.Context, o options, sig signaller, p *pacer, measure *atomic.Bool) ([]participant, []time.Duration, int) {
	rooms := make([]*roomState, (o.calls+o.roomSize-1)/o.roomSize)
	for i := range rooms {
		rooms[i] = &roomState{}
	}
	var (
		mu     sync.Mutex
		legs   []participant
		setups []time.Duration
		failed int
		wg     sync.WaitGroup
	)
	secondProber := make([]bool, len(rooms))
	every := time.Duration(float64(time.Second) / max(o.rate, 1))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range o.calls {
		room, idx := i/o.roomSize, i%o.roomSize
		cfg := legConfig{host: o.host, room: rooms[room], measure: measure, role: silent,
			probeEvery: o.probeEvery, probeLen: 100 * time.Millisecond, kind: kindPhone,
			detect: idx < maxDetectors}
		if o.isWebRTC(idx) {
			cfg.kind = kindWebRTC
		}
		switch {
		case idx == 0 && o.speakers > 0:
			cfg.role, cfg.bgFreq = prober, 300
		case idx < o.speakers:
			cfg.role, cfg.bgFreq = speaker, 300+float64(90*idx)
			if o.isWebRTC(idx) != o.isWebRTC(0) && !secondProber[room] {
				// A mixed room probes from both kinds, half a second
				// apart: the delay splits into phone → WebRTC and
				// WebRTC → phone.
				cfg.role, cfg.probeSlot, secondProber[room] = prober, 1, true
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var l participant
			var setup time.Duration
			var err error
			if o.isWebRTC(idx) {
				cfg.listenOnly = o.whepListeners && cfg.role == silent
				signal := whip(o.httpURL, fmt.Sprintf("%s%03d", o.roomPrefix, room), cfg.listenOnly)
				if ws, ok := sig.(webrtcSignaller); ok {
					signal = ws.webrtcJoin(room)
				}
				l, setup, err = joinWebRTC(ctx, o.webrtc, o.opus, cfg, signal)
			} else {
				l, setup, err = joinPhone(ctx, sig, room, cfg)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if failed <= 5 {
					logf("participant %d: %v", i, err)
				}
				return
			}
			p.add(ctx, l)
			legs = append(legs, l)
			setups = append(setups, setup)
		}()
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	wg.Wait()
	return legs, setups, failed
}

// maxDetectors is how many participants of a room look for the probes
// in what they receive (decoding it); the others only count packets. 300
// Opus decoders would cost the load generator half a core.
const maxDetectors = 20

// joinPhone opens an RTP leg and joins it to room through sig.
func joinPhone(ctx context.Context, sig signaller, room int, cfg legConfig) (participant, time.Duration, error) {
	l, err := newLeg(cfg)
	if err != nil {
		return nil, 0, err
	}
	remote, setup, err := sig.join(ctx, room, l)
	if err != nil {
		l.close()
		return nil, 0, err
	}
	l.setRemote(remote)
	return l, setup, nil
}

// wait waits d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// percentile is the nearest-rank percentile q (0..100) of ds, 0 when
// empty.
func percentile(ds []time.Duration, q int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[max((len(s)*q+99)/100-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
