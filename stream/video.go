package stream

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// VideoSource is where an egress reads its room's presenter video: an
// *rtc.VideoSub (rtc.Server.SubscribeVideo with RecommendedVideoBuffer
// packets) or a test's stand-in. Read copies the next raw RTP packet of the
// presenter's H.264 track (RFC 6184) into dst and returns its length; it
// waits while nobody presents, returns ctx's error when ctx ends and
// io.EOF once closed. RequestKeyframe asks the presenter for an IDR (a PLI,
// RFC 4585 §6.3.1); it must not block.
type VideoSource interface {
	Read(ctx context.Context, dst []byte) (int, error)
	RequestKeyframe()
	Close()
}

const (
	// presenterTimeout is how long the presenter may send nothing before
	// the slate replaces it. Screen shares of a still screen send a frame
	// a second or more; two seconds of a frozen picture beat flapping.
	presenterTimeout = 2 * time.Second
	// keyframeRetry spaces keyframe requests while a keyframe is awaited
	// (a PLI is a UDP packet and may be lost).
	keyframeRetry = time.Second
	// maxAccessUnit bounds an access unit being assembled: 4 MiB is far
	// beyond a 4K keyframe at sane bitrates.
	maxAccessUnit = 4 << 20
	// maxEarly and maxLate bound how far a presenter frame's arrival may
	// stray from the time its RTP clock predicts before the clock is
	// re-anchored to the arrival. Arriving early means the anchor frame
	// itself was delayed, so the anchor moves at once; arriving late is
	// mostly network jitter (a keyframe's burst), so only a lasting gap
	// moves it: a new presenter, clock drift, a stall. Audio and video
	// stay within 100 ms of each other.
	maxEarly = 20 * time.Millisecond
	maxLate  = 100 * time.Millisecond
	// rtpBufSize holds any RTP packet (rtc forwards at most 1500 bytes).
	rtpBufSize = 1600
)

// VideoMode says what an egress sends as video.
type VideoMode string

const (
	// VideoSlate is the pre-encoded slate picture (nobody presents).
	VideoSlate VideoMode = "slate"
	// VideoPresenter is the presenter's H.264, passed through.
	VideoPresenter VideoMode = "presenter"
)

// videoPipe produces the video tags: the presenter's access units while
// somebody presents, the slate otherwise. The presenter reader and the
// slate ticker both call into it; mu orders them.
type videoPipe struct {
	e     *Egress
	src   VideoSource // nil: slate only
	slate *slateVideo
	kick  chan struct{} // capacity 1: send a slate IDR now

	mu            sync.Mutex
	mode          VideoMode
	lastPresenter time.Time // arrival of the presenter's last frame
	needKey       bool      // presenter frames wait for an IDR
	lastKeyReq    time.Time
	slateNext     int
	slateHdr      bool  // the slate's sequence header went out since the slate started
	lastTS        int64 // ms, the last video tag's timestamp
	sps, pps      []byte
	hdrSPS        []byte // the SPS and PPS of the last header sent
	hdrPPS        []byte
	anchored      bool
	anchorTS      int64 // ms
	anchorRTP     uint32
}

func newVideoPipe(e *Egress, src VideoSource, slate *slateVideo) *videoPipe {
	return &videoPipe{e: e, src: src, slate: slate, kick: make(chan struct{}, 1), mode: VideoSlate, needKey: true}
}

// Mode returns what is being sent.
func (v *videoPipe) Mode() VideoMode {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.mode
}

// requestKeyframe is called when the egress starts and when a destination
// starts or lost video: the presenter (if any, or one about to be) is
// asked for an IDR, and the slate sends its IDR at once.
func (v *videoPipe) requestKeyframe() {
	if v.src != nil {
		v.mu.Lock()
		v.lastKeyReq = v.e.now()
		v.mu.Unlock()
		v.src.RequestKeyframe()
	}
	if v.Mode() == VideoSlate {
		select {
		case v.kick <- struct{}{}:
		default:
		}
	}
}

// runSlate sends the slate while nobody presents, until ctx ends.
func (v *videoPipe) runSlate(ctx context.Context) {
	tick := time.NewTicker(slateFrameInterval)
	defer tick.Stop()
	v.slateFrame(true)
	for {
		restart := false
		select {
		case <-tick.C:
		case <-v.kick:
			restart = true
		case <-ctx.Done():
			return
		}
		v.slateFrame(restart)
	}
}

// slateFrame sends the next slate frame (the IDR if restart) unless the
// presenter is live; a presenter silent for presenterTimeout is replaced.
// Entering the slate sends its sequence header first.
func (v *videoPipe) slateFrame(restart bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.e.now()
	if v.mode == VideoPresenter {
		if now.Sub(v.lastPresenter) < presenterTimeout {
			return
		}
		v.mode, v.needKey = VideoSlate, true
		v.hdrSPS, v.hdrPPS = v.hdrSPS[:0], v.hdrPPS[:0]
		v.e.log.Info("presenter video stopped: sending the slate")
	}
	ts := max(now.Sub(v.e.zero).Milliseconds(), v.lastTS)
	if !v.slateHdr {
		h := v.e.fan.get(typeVideo, ts)
		h.hdr = true
		h.data = append(h.data, v.slate.header...)
		v.e.fan.publish(h)
		v.slateHdr, restart = true, true
	}
	if restart {
		v.slateNext = 0
	}
	t := v.e.fan.get(typeVideo, ts)
	t.key = v.slateNext == 0
	t.data = append(t.data, v.slate.frames[v.slateNext]...)
	v.e.fan.publish(t)
	v.slateNext = (v.slateNext + 1) % len(v.slate.frames)
	v.lastTS = ts
}

// runPresenter reads the presenter's RTP packets and hands them to an
// assembler, until the source ends or ctx does.
func (v *videoPipe) runPresenter(ctx context.Context) {
	buf := make([]byte, rtpBufSize)
	a := assembler{au: make([]byte, 0, 64<<10)}
	var pkt rtp.Packet
	for {
		n, err := v.src.Read(ctx, buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) == nil {
			a.add(v, &pkt)
		}
	}
}

// assembler collects the RTP packets of one access unit (one RTP
// timestamp, ended by the marker bit: RFC 6184 §5.1) and hands the unit
// to videoPipe.frame, or reports it lost when a packet of it is missing.
type assembler struct {
	dep     depacketizer
	au      []byte // Annex B
	ts      uint32
	lastSeq uint16
	started bool
	broken  bool // a packet of au is missing or bad
}

// add takes the next packet.
func (a *assembler) add(v *videoPipe, p *rtp.Packet) {
	gap := a.started && p.SequenceNumber != a.lastSeq+1
	if a.started && p.Timestamp != a.ts && (len(a.au) > 0 || a.broken) {
		// A new unit began without the last one's marker: the marker
		// packet, or more, was lost, unless the gap says nothing was.
		a.broken = a.broken || gap
		a.flush(v)
	}
	if gap {
		a.broken = true // RFC 6184 §5.8: a lost fragment spoils the unit
		a.dep.reset()
	}
	a.started, a.lastSeq, a.ts = true, p.SequenceNumber, p.Timestamp
	if !a.broken {
		var err error
		if len(a.au)+len(p.Payload) > maxAccessUnit {
			a.broken = true
		} else if a.au, err = a.dep.append(a.au, p.Payload); err != nil {
			a.broken = true
		}
	}
	if p.Marker {
		a.flush(v)
	}
}

// flush hands over the unit collected, or reports it lost.
func (a *assembler) flush(v *videoPipe) {
	switch {
	case a.broken:
		v.lost()
	case len(a.au) > 0:
		v.frame(a.au, a.ts)
	}
	a.au, a.broken = a.au[:0], false
	a.dep.reset()
}

// lost notes a damaged access unit: frames until the next IDR would
// decode to garbage, so they are dropped and an IDR is asked for.
func (v *videoPipe) lost() {
	v.mu.Lock()
	v.needKey = true
	v.mu.Unlock()
	v.askKeyframe()
}

// askKeyframe asks the presenter for an IDR, at most once per
// keyframeRetry.
func (v *videoPipe) askKeyframe() {
	v.mu.Lock()
	now := v.e.now()
	due := now.Sub(v.lastKeyReq) >= keyframeRetry
	if due {
		v.lastKeyReq = now
	}
	v.mu.Unlock()
	if due {
		v.src.RequestKeyframe()
	}
}

// frame takes one complete presenter access unit (Annex B) with its RTP
// timestamp.
func (v *videoPipe) frame(au []byte, rtpTS uint32) {
	info := scanAU(au)
	if info.size == 0 {
		return
	}
	v.mu.Lock()
	now := v.e.now()
	if paramSetsOK(info.sps, info.pps) {
		v.sps, v.pps = append(v.sps[:0], info.sps...), append(v.pps[:0], info.pps...)
	}
	if v.needKey && (!info.key || len(v.sps) == 0 || len(v.pps) == 0) {
		v.mu.Unlock()
		v.askKeyframe()
		return
	}
	v.lastPresenter = now
	if v.mode != VideoPresenter {
		v.e.log.Info("presenter video started")
		v.mode, v.anchored, v.slateHdr = VideoPresenter, false, false
	}
	v.needKey = false
	ts := v.timestamp(now, rtpTS)
	if info.key && (!bytes.Equal(v.sps, v.hdrSPS) || !bytes.Equal(v.pps, v.hdrPPS)) {
		h := v.e.fan.get(typeVideo, ts)
		h.hdr = true
		h.data, _ = appendVideoHeader(h.data, v.sps, v.pps) // checked when stored
		v.e.fan.publish(h)
		v.hdrSPS, v.hdrPPS = append(v.hdrSPS[:0], v.sps...), append(v.hdrPPS[:0], v.pps...)
	}
	t := v.e.fan.get(typeVideo, ts)
	t.key = info.key
	t.data = appendVideoFrameHeader(t.data, info.key)
	if info.key && info.sps == nil {
		// Keep the parameter sets in band at every IDR: decoders and
		// recorders that skip a mid-stream sequence header still decode.
		t.data = appendNAL(appendNAL(t.data, v.sps), v.pps)
	}
	t.data = appendAVCC(t.data, au)
	v.lastTS = ts
	v.e.fan.publish(t)
	v.mu.Unlock()
}

// timestamp maps a presenter frame to the egress timeline: by its RTP
// clock (90 kHz, RFC 6184 §5.1) from an anchor, so network jitter does not
// shake the frames, re-anchored to the arrival time when the two part (see
// maxEarly). Timestamps never go back. v.mu is held.
func (v *videoPipe) timestamp(now time.Time, rtpTS uint32) int64 {
	arrival := now.Sub(v.e.zero).Milliseconds()
	ts := v.anchorTS + int64(int32(rtpTS-v.anchorRTP))/90
	if !v.anchored || ts-arrival > maxEarly.Milliseconds() || arrival-ts > maxLate.Milliseconds() {
		v.anchored, v.anchorTS, v.anchorRTP, ts = true, arrival, rtpTS, arrival
	}
	return max(ts, v.lastTS)
}
