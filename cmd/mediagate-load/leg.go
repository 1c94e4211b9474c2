package main

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/mediagate/mediagate/media"
)

// The media side of one participant: a UDP socket (rawsock.go) that
// sends a 20 ms PCMU frame every tick and, right before, reads what came
// back (both from the pacer's goroutine, see pacer.go), counts sequence
// gaps and looks for the room's probe tone. The signalling that finds the remote address (SIP,
// the Janus HTTP API) is elsewhere: a leg only needs a socket and a peer.

const (
	frameSamples = 160 // 20 ms at 8 kHz
	frameDur     = 20 * time.Millisecond
	ptPCMU       = 0

	probeAmp = 0.5
	// bgAmp is the level of a speaker's continuous tone: loud enough to be
	// a voice in the mix, low enough that a probe over five of them still
	// holds most of the energy.
	bgAmp = 0.15
	// probeFraction is the share of a frame's energy at a probe tone above
	// which the frame holds the probe.
	probeFraction = 0.4
	// probeMinDBFS is the quietest frame in which a probe counts.
	probeMinDBFS = -40.0
)

// role is what a leg sends.
type role int

const (
	// silent legs send G.711 digital silence every 20 ms, as a phone without
	// VAD/DTX does: the gateway receives, decodes and mixes them like any
	// caller, but they are not voices in the mix.
	silent role = iota
	// speaker legs send a continuous tone of their own frequency.
	speaker
	// prober is one of the room's first speakers: its tone is replaced by
	// a probe burst at its probeFreqs every probe interval.
	prober
)

// probeFreqs are the probe tones of a room's first and second prober
// (probeSlot 0 and 1), whole numbers of cycles per 20 ms frame at 8 kHz.
// A listener tells by the tone whose burst it heard: crediting a burst to
// the latest one sent, by time, took a burst heard more than half an
// interval late for the other prober's. Background tones stay well below
// them (at most 750 Hz).
var probeFreqs = [2]float64{1000, 1250}

// Participant kinds, for the delay's path.
const (
	kindPhone  = "phone"
	kindWebRTC = "webrtc"
)

// roomState is what the legs of one room share: when each probe burst
// started and from which kind of participant, and when the first one
// starts.
type roomState struct {
	mu    sync.Mutex
	sends []burst // in order
	first int     // frames from the first send to the first burst; 0 until drawn
}

// burst is the start of one probe burst.
type burst struct {
	at   time.Time
	kind string // the prober's kind
	slot int    // the prober's probeSlot
}

func (r *roomState) sent(b burst) {
	r.mu.Lock()
	r.sends = append(r.sends, b)
	r.mu.Unlock()
}

// origin is the latest start of a burst of slot's prober at or before t,
// within window.
func (r *roomState) origin(t time.Time, slot int, window time.Duration) (burst, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.sends) - 1; i >= 0; i-- {
		if b := r.sends[i]; b.slot == slot && !b.at.After(t) {
			return b, t.Sub(b.at) < window
		}
	}
	return burst{}, false
}

// firstBurst is when the room's first burst starts, in frames: after a
// second, at a moment drawn once per room, so rooms do not probe in step.
func (r *roomState) firstBurst(every int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first == 0 {
		r.first = 50 + rand.IntN(every)
	}
	return r.first
}

// schedule times a prober's bursts, in frames.
type schedule struct {
	room   *roomState
	kind   string
	slot   int
	every  int // frames from a burst's last frame to the next burst's first
	frames int // frames in a burst
	in     int // frames until the next burst starts
	left   int // frames of the current burst still to send
}

// newSchedule times cfg's bursts: a room's second prober (probeSlot 1)
// sends half an interval after the first, so their bursts never overlap.
func newSchedule(cfg legConfig) schedule {
	every := max(int(cfg.probeEvery/frameDur), 10)
	return schedule{room: cfg.room, kind: cfg.kind, slot: cfg.probeSlot, every: every, frames: max(int(cfg.probeLen/frameDur), 2),
		in: cfg.room.firstBurst(every) + cfg.probeSlot*every/2}
}

// probe tells whether the frame sent at now is a probe frame and whether
// a burst starts with it, and records the start of each burst in the room.
func (s *schedule) probe(now time.Time) (on, start bool) {
	if s.left == 0 {
		s.in--
		if s.in <= 0 {
			s.left, s.in, start = s.frames, s.every, true
			s.room.sent(burst{at: now, kind: s.kind, slot: s.slot})
		}
	}
	if s.left > 0 {
		s.left--
		return true, start
	}
	return false, start
}

// period is the frames from one burst's first frame to the next's: the
// countdown to the next burst runs only once a burst has ended, and its
// last step is the next burst's first frame.
func (s *schedule) period() int { return s.frames + s.every - 1 }

// leg is one participant's RTP stream in both directions.
type leg struct {
	sock   *rawSock
	role   role
	remote atomic.Pointer[netip.AddrPort] // nil until the signalling knows it (setRemote)

	// Sender state, used by the pacer goroutine only.
	pkt    rtp.Packet
	buf    []byte
	bg     []byte // one second of the background tone, µ-law, 50 frames
	frame  int    // frames sent so far
	bursts schedule

	receiver
	pcm   [frameSamples]int16 // the last received frame, decoded
	rxPkt rtp.Packet
	rx    func([]byte, time.Time) // receive, bound once
}

// legConfig chooses a new leg's part.
type legConfig struct {
	host       string // local address to bind, e.g. 127.0.0.1
	role       role
	bgFreq     float64       // speaker tone, Hz (speakers and probers)
	probeEvery time.Duration // prober only
	probeLen   time.Duration // prober only
	room       *roomState
	measure    *atomic.Bool
	// kind is the participant's (kindPhone, kindWebRTC); probeSlot orders
	// a room's probers (0, 1); detect says whether it looks for probes in
	// what it receives (else it only counts packets).
	kind      string
	probeSlot int
	detect    bool
	// listenOnly joins a WebRTC participant that sends nothing (WHEP).
	listenOnly bool
}

// newLeg opens the leg's socket on a free port of cfg.host; close ends
// it.
func newLeg(cfg legConfig) (*leg, error) {
	sock, err := listenRaw(netip.MustParseAddr(cfg.host))
	if err != nil {
		return nil, err
	}
	l := &leg{sock: sock, role: cfg.role, buf: make([]byte, 12+frameSamples)}
	l.init(cfg)
	l.rx = l.receive
	l.pkt.Header = rtp.Header{Version: 2, PayloadType: ptPCMU, SSRC: rand.Uint32(),
		SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}
	if cfg.role != silent {
		l.bg = toneULaw(cfg.bgFreq, bgAmp, 50*frameSamples)
	}
	if cfg.role == prober {
		l.bursts = newSchedule(cfg)
	}
	return l, nil
}

// port is the leg's local RTP port.
func (l *leg) port() int { return l.sock.port() }

// setRemote sets where the leg sends, once the signalling knows it.
func (l *leg) setRemote(to netip.AddrPort) {
	l.sock.setRemote(to)
	l.remote.Store(&to)
}

// close stops the leg.
func (l *leg) close() { _ = l.sock.close() }

var (
	silenceULaw = func() []byte {
		b := make([]byte, frameSamples)
		media.EncodeULaw(b, make([]int16, frameSamples))
		return b
	}()
	// probeULaw are the probers' tones, one frame each: whole cycles, so
	// every frame is alike.
	probeULaw = [2][]byte{toneULaw(probeFreqs[0], probeAmp, frameSamples), toneULaw(probeFreqs[1], probeAmp, frameSamples)}
)

// toneULaw is n samples of a sine at freq Hz (a whole number of cycles
// per second, so a second of it loops without a click), µ-law encoded.
func toneULaw(freq, amp float64, n int) []byte {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(math.Round(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/8000)))
	}
	b := make([]byte, n)
	media.EncodeULaw(b, pcm)
	return b
}

// send reads what arrived, then writes the leg's next frame at now; the
// pacer calls it every 20 ms.
func (l *leg) send(now time.Time) {
	if l.remote.Load() == nil {
		return
	}
	l.sock.drain(l.rx)
	payload := silenceULaw
	switch l.role {
	case speaker:
		payload = l.bg[(l.frame%50)*frameSamples:][:frameSamples]
	case prober:
		payload = l.bg[(l.frame%50)*frameSamples:][:frameSamples]
		if on, _ := l.bursts.probe(now); on {
			payload = probeULaw[l.bursts.slot]
		}
	}
	l.frame++
	l.pkt.Payload = payload
	n, err := l.pkt.MarshalTo(l.buf)
	l.pkt.SequenceNumber++
	l.pkt.Timestamp += frameSamples
	if err == nil {
		l.sock.send(l.buf[:n])
	}
}

// receive takes one packet that arrived at at.
func (l *leg) receive(b []byte, at time.Time) {
	p := &l.rxPkt
	if p.Unmarshal(b) != nil || p.PayloadType != ptPCMU {
		return
	}
	l.count(p.SequenceNumber)
	if l.detects && len(p.Payload) == frameSamples {
		media.DecodeULaw(l.pcm[:], p.Payload)
		l.detect(l.pcm[:], 8000, at)
	}
}
