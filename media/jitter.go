package media

import (
	"fmt"
	"sync"
	"time"
)

// Packet is what the jitter buffer needs of one RTP packet (RFC 3550 §5.1).
// Payload is copied by Push, so the caller may reuse its read buffer.
type Packet struct {
	Seq       uint16 // orders packets and reveals loss
	Timestamp uint32 // sampling instant at the RTP clock rate
	SSRC      uint32 // the stream; a new one restarts the buffer
	Payload   []byte
	// Silent says the sender measured no audible sound in it (RFC 6464
	// audio level; the caller judges): Playout plays it as silence without
	// decoding it.
	Silent bool
}

// MaxJitterPayload is the largest payload a jitter-buffer slot holds: an
// Ethernet MTU, far above any 20 ms audio frame.
const MaxJitterPayload = 1500

const (
	// jitterSlots is the ring size: 1.28 s of 20 ms packets, well above the
	// 200 ms maximum delay, so reordering and bursts fit.
	jitterSlots = 64
	// jitterWindow is how many recent packets the delay percentile covers
	// (about 2.5 s): long enough to see a jitter pattern, short enough to
	// forget it once the network calms down.
	jitterWindow = 128
	// jitterPercentile of recent delay variation the target delay covers;
	// the rest arrive late and are concealed.
	jitterPercentile = 95
	// jitterMinSamples is how many delay samples the estimate needs before
	// it may go below the initial delay.
	jitterMinSamples = 16
	// maxMisorder is how far behind a packet may be and still count as late
	// rather than as a restart of the sender (RFC 3550 Appendix A.1).
	maxMisorder = 100
	// quietPops is how many pops without a disturbance (hold, loss, late
	// packet, underrun) must pass before the delay is lowered by one frame.
	quietPops = 50
	// staleSSRC is how long after an SSRC change packets of the old SSRC
	// are taken for stragglers and dropped instead of switching back.
	staleSSRC = time.Second
	// maxFrameSpan bounds the duration of one packet in frames (Opus goes up
	// to 120 ms); a larger timestamp step is a gap, not a long packet.
	maxFrameSpan = 6
)

// PopKind says what a Pop produced.
type PopKind uint8

const (
	// PopEmpty means there is nothing to play: no stream yet, buffering up
	// to the target delay, an underrun, or a silence (DTX) gap. The caller
	// plays silence.
	PopEmpty PopKind = iota
	// PopFrame carries the payload of the next packet.
	PopFrame
	// PopLost means the packet due now is missing while later ones are
	// here: the caller conceals it, with PopResult.Next for in-band FEC.
	PopLost
)

// String names the kind for logs and test failures.
func (k PopKind) String() string {
	switch k {
	case PopFrame:
		return "frame"
	case PopLost:
		return "lost"
	default:
		return "empty"
	}
}

// PopResult is one step of playout. Payload and Next point into buffers
// owned by the JitterBuffer and stay valid until the next Pop.
type PopResult struct {
	Kind PopKind
	// Seq and Timestamp identify the packet played (PopFrame) or missing
	// (PopLost).
	Seq       uint16
	Timestamp uint32
	// Duration is how many timestamp units the result covers: the step to
	// the next packet's timestamp, or the last seen step when that is not
	// known. It is the configured frame size for ptime 20.
	Duration uint32
	// Payload is the packet's payload (PopFrame).
	Payload []byte
	// Silent is the packet's Packet.Silent (PopFrame).
	Silent bool
	// Next is the payload of the packet after the lost one if it is already
	// here (PopLost), so that Opus can recover the loss from its FEC data.
	Next []byte
	// Epoch changes when sequence numbers start over (new SSRC, a sender
	// restart, or a jump far ahead); Seq values are comparable only within
	// one epoch.
	Epoch uint32
}

// JitterStats are the jitter buffer's counters, exported for metrics and
// RTCP receiver reports. Received = Duplicates + Late + Delivered +
// Discarded + Depth always holds.
type JitterStats struct {
	Received   uint64 // packets given to Push (payload not too big)
	Duplicates uint64 // dropped because that sequence number was here already
	Late       uint64 // dropped because their turn had passed
	Delivered  uint64 // released as PopFrame
	Discarded  uint64 // dropped to lower the delay, on overflow or stream reset
	Lost       uint64 // sequence numbers never received that playout passed
	Reordered  uint64 // arrived after a packet with a higher sequence number
	Resyncs    uint64 // re-anchored: SSRC change, restart, jump, long loss
	Underruns  uint64 // times the buffer ran dry while playing
	Concealed  uint64 // frames the playout concealed (counted by Playout)
	// Undecoded counts packets marked Silent that Playout played as
	// silence without decoding them.
	Undecoded uint64
	// DecodeErrors counts payloads the decoder refused (counted by Playout).
	DecodeErrors uint64
	// Jitter is the RFC 3550 §6.4.1 interarrival jitter estimate.
	Jitter time.Duration
	// TargetDelay is the playout delay the buffer steers towards.
	TargetDelay time.Duration
	// Delay is the current playout delay of the fastest packets.
	Delay time.Duration
	// Depth is the number of packets buffered now.
	Depth int
	// SSRC is the stream being played.
	SSRC uint32
}

// JitterOption configures a JitterBuffer.
type JitterOption func(*JitterBuffer)

// WithJitterDelay sets the smallest, initial and largest target delay
// (defaults 20 ms, 40 ms, 200 ms). The minimum must be at least one frame.
func WithJitterDelay(minDelay, initial, maxDelay time.Duration) JitterOption {
	return func(j *JitterBuffer) {
		j.minDelay, j.initDelay, j.maxDelay = minDelay, initial, maxDelay
	}
}

// WithMaxLostRun bounds how many PopLost results are given in a row
// (default 5, 100 ms of concealment) before the buffer skips to the next
// packet it has: concealing longer only smears.
func WithMaxLostRun(n int) JitterOption {
	return func(j *JitterBuffer) { j.maxLostRun = n }
}

type slotState uint8

const (
	slotEmpty slotState = iota
	slotFull
	slotReleased // played or discarded; remembered to spot duplicates
)

type jitterSlot struct {
	ext    int64 // extended sequence number
	ts     int64 // extended timestamp
	state  slotState
	silent bool // Packet.Silent
	n      int  // payload bytes, in JitterBuffer.payloads at the slot's index
}

// JitterBuffer turns RTP audio packets arriving with network jitter, loss,
// reordering and duplication into one payload per 20 ms tick, at a playout
// delay it adapts to the jitter it sees. It works on packets, not PCM; see
// Playout for decoding. The network side calls Push and the mixer calls
// Pop once per tick; both take the time explicitly, the buffer never reads
// the clock. All memory is allocated by NewJitterBuffer. It is safe for one
// goroutine pushing while another pops.
//
// The target delay covers the jitter: each packet's transit (arrival time
// minus its timestamp as time) joins a window of the last 128, and the
// target is the 95th percentile of transit above the window's minimum plus
// one frame, within [20 ms, 200 ms] by default. The delay goes up fast:
// when the packet due is missing and the delay is below target, Pop waits
// (PopEmpty) rather than conceal, and talkspurt starts (a gap in the
// timestamps after DTX) and resumption after an underrun re-anchor
// at the target. It comes down slowly: after a second without loss, late
// packets or underruns, a delay more than a frame above target drops one
// frame. Timestamp jumps re-anchor instead of producing thousands of lost
// frames, and at most WithMaxLostRun PopLost come in a row.
//
// Each Pop releases one packet in sequence order. Packets are expected to
// carry one frame (the frameTS given to NewJitterBuffer, ptime 20), but
// other durations work: PopResult.Duration says how much a result covers,
// and the consumer (Playout) pops again when a packet held less than a
// frame and skips a pop while a longer one still has audio left, so the
// buffer is drained at the sender's pace either way.
type JitterBuffer struct {
	mu sync.Mutex

	frameTS                       int64
	minDelay, initDelay, maxDelay time.Duration
	maxLostRun                    int

	// The slots' bookkeeping lies apart from their payloads, so that
	// looking through the slots (every Pop) reads 2 KB, not 100 KB: with a
	// thousand calls the payloads inline made each slot looked at a cache
	// miss.
	slots     [jitterSlots]jitterSlot
	payloads  [jitterSlots][MaxJitterPayload]byte
	out, next [MaxJitterPayload]byte

	haveStream bool
	ssrc       uint32
	prevSSRC   uint32    // the stream replaced last
	switchedAt time.Time // when it was replaced
	epoch      uint32
	maxSeq     int64 // highest extended sequence number seen
	lastExt    int64 // extended sequence number of the last stored packet
	lastTS     int64 // and its extended timestamp
	badSeq     int   // RFC 3550 A.1 probation: next seq of a suspected restart, or -1

	playing  bool
	floating bool  // nothing played yet in this stream: earlier packets may still join
	nextSeq  int64 // next sequence number to release; anything below is late
	playTS   int64 // timestamp expected for nextSeq
	playedTS int64 // timestamp of the last packet played or lost
	stepTS   int64 // last plausible timestamp step between packets
	count    int
	lostRun  int
	holdRun  int
	underrun bool
	quiet    int

	est   delayEstimator
	stats JitterStats
}

// NewJitterBuffer returns a buffer for a stream whose packets carry frameTS
// timestamp units per 20 ms (160 for PCMU at 8 kHz, 960 for Opus).
func NewJitterBuffer(frameTS uint32, opts ...JitterOption) (*JitterBuffer, error) {
	j := &JitterBuffer{
		frameTS:    int64(frameTS),
		minDelay:   FrameDuration,
		initDelay:  2 * FrameDuration,
		maxDelay:   10 * FrameDuration,
		maxLostRun: 5,
		badSeq:     -1,
	}
	for _, o := range opts {
		o(j)
	}
	switch {
	case frameTS == 0:
		return nil, fmt.Errorf("%w: frame size 0", ErrJitterConfig)
	case j.minDelay < FrameDuration || j.initDelay < j.minDelay || j.maxDelay < j.initDelay:
		return nil, fmt.Errorf("%w: delays %v ≤ %v ≤ %v must start at %v", ErrJitterConfig,
			j.minDelay, j.initDelay, j.maxDelay, FrameDuration)
	case j.maxDelay > jitterSlots/2*FrameDuration:
		return nil, fmt.Errorf("%w: max delay %v above %v", ErrJitterConfig, j.maxDelay, jitterSlots/2*FrameDuration)
	case j.maxLostRun < 1:
		return nil, fmt.Errorf("%w: max lost run %d", ErrJitterConfig, j.maxLostRun)
	}
	j.est = delayEstimator{frameTS: j.frameTS, minD: j.minDelay, initD: j.initDelay,
		maxD: j.maxDelay, target: j.initDelay}
	return j, nil
}

// Push stores one packet that arrived at arrival. Duplicates and packets
// whose turn has passed are dropped and counted; a new SSRC starts a new
// stream. It fails only for a payload that does not fit.
func (j *JitterBuffer) Push(p Packet, arrival time.Time) error {
	if len(p.Payload) > MaxJitterPayload {
		return fmt.Errorf("%w: %d bytes", ErrJitterPayloadTooBig, len(p.Payload))
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stats.Received++
	if j.haveStream && p.SSRC != j.ssrc {
		if p.SSRC == j.prevSSRC && arrival.Sub(j.switchedAt) < staleSSRC {
			j.stats.Late++ // a straggler of the stream just replaced
			return nil
		}
		j.stats.Resyncs++
		j.prevSSRC, j.switchedAt = j.ssrc, arrival
	}
	if !j.haveStream || p.SSRC != j.ssrc {
		// RFC 3550 §8.2: a new SSRC is a new stream, with its own sequence
		// numbers and timestamps.
		j.haveStream, j.ssrc, j.stats.SSRC = true, p.SSRC, p.SSRC
		j.restart(p, arrival)
	}
	ext := j.maxSeq + int64(int16(p.Seq-uint16(j.maxSeq)))
	ts := j.lastTS + int64(int32(p.Timestamp-uint32(j.lastTS)))
	if !j.admit(p, &ext, &ts, arrival) {
		return nil
	}
	j.badSeq = -1 // a packet in order ends any restart probation
	if ext < j.maxSeq {
		j.stats.Reordered++
	} else {
		j.maxSeq = ext
	}
	// Consecutive packets whose timestamps do not step by one packet: a
	// silence (DTX) if the transit stays, a timestamp jump if it moves.
	tsBreak := false
	if step := ts - j.lastTS; ext == j.lastExt+1 && step != j.stepTS {
		tsBreak = true
		if step > 0 && step <= maxFrameSpan*j.frameTS {
			j.stepTS = step // the sender's packet duration changed
		}
	}
	j.lastExt, j.lastTS = ext, ts
	s := &j.slots[ext&(jitterSlots-1)]
	s.ext, s.ts, s.state, s.silent = ext, ts, slotFull, p.Silent
	s.n = copy(j.payloads[ext&(jitterSlots-1)][:], p.Payload)
	j.count++
	j.est.add(arrival, ts, tsBreak)
	return nil
}

// admit decides whether a packet with extended sequence number *ext is
// stored, counting it if not. A restart re-extends ext and ts.
func (j *JitterBuffer) admit(p Packet, ext, ts *int64, arrival time.Time) bool {
	switch {
	case *ext < j.nextSeq && j.floating && j.maxSeq-*ext < jitterSlots:
		// Reordered ahead of the first packet of a stream not yet playing.
		j.nextSeq = *ext
	case *ext < j.nextSeq:
		if s := &j.slots[*ext&(jitterSlots-1)]; s.ext == *ext && s.state != slotEmpty {
			j.stats.Duplicates++
			return false
		}
		if j.nextSeq-*ext <= maxMisorder || int(p.Seq) != j.badSeq {
			// RFC 3550 A.1: a packet far behind may be a restarted sender;
			// believe it when the next one follows it.
			j.stats.Late++
			if j.nextSeq-*ext > maxMisorder {
				j.badSeq = int(p.Seq + 1)
				return false
			}
			j.quiet = 0 // a late packet tells the delay is too short
			j.est.add(arrival, *ts, false)
			return false
		}
		j.restart(p, arrival)
		j.stats.Resyncs++
		*ext, *ts = j.maxSeq, j.lastTS
	case *ext >= j.nextSeq+jitterSlots:
		// Far ahead: a long outage or a jump. What is buffered cannot be
		// played in order with it any more.
		// A new epoch: the jump may exceed what 16-bit sequence numbers
		// can compare with what was played before it.
		j.flush()
		j.stats.Resyncs++
		j.epoch++
		j.playing, j.floating, j.nextSeq = false, true, *ext
	case j.slots[*ext&(jitterSlots-1)].ext == *ext && j.slots[*ext&(jitterSlots-1)].state == slotFull:
		j.stats.Duplicates++
		return false
	}
	return true
}

// restart begins a new sequence-number epoch at p.
func (j *JitterBuffer) restart(p Packet, arrival time.Time) {
	j.flush()
	for i := range j.slots {
		j.slots[i].state = slotEmpty
	}
	j.epoch++
	j.maxSeq, j.lastTS = int64(p.Seq), int64(p.Timestamp)
	j.lastExt = j.maxSeq - 1
	j.nextSeq, j.playTS = j.maxSeq, j.lastTS
	j.stepTS = j.frameTS
	j.playing, j.floating, j.underrun = false, true, false
	j.lostRun, j.holdRun, j.quiet, j.badSeq = 0, 0, 0, -1
	j.est.rebase(arrival, j.lastTS)
	j.est.jitter = 0
}

// flush drops every buffered packet, counting them as discarded.
func (j *JitterBuffer) flush() {
	for i := range j.slots {
		if j.slots[i].state == slotFull {
			j.slots[i].state = slotReleased
			j.stats.Discarded++
		}
	}
	j.count = 0
}

// payload is what s holds.
func (j *JitterBuffer) payload(s *jitterSlot) []byte {
	return j.payloads[s.ext&(jitterSlots-1)][:s.n]
}

// slot returns the buffered packet with extended sequence number ext, or
// nil.
func (j *JitterBuffer) slot(ext int64) *jitterSlot {
	s := &j.slots[ext&(jitterSlots-1)]
	if s.state != slotFull || s.ext != ext {
		return nil
	}
	return s
}

// lowest returns the lowest buffered sequence number not yet released.
func (j *JitterBuffer) lowest() (int64, bool) {
	if j.count == 0 {
		return 0, false
	}
	for e := j.nextSeq; e <= j.maxSeq && e < j.nextSeq+jitterSlots; e++ {
		if j.slot(e) != nil {
			return e, true
		}
	}
	return 0, false
}

// Pop releases what is due at the mixer tick now. It is called once per
// 20 ms tick (or again within a tick when the last packet held less than a
// frame) and never blocks.
func (j *JitterBuffer) Pop(now time.Time) PopResult {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.haveStream {
		return j.empty()
	}
	j.quiet++
	if !j.playing {
		return j.start(now)
	}
	return j.release(now)
}

// start anchors playout on the lowest buffered packet once it has waited
// the target delay, or once the buffer holds the maximum delay anyway.
func (j *JitterBuffer) start(now time.Time) PopResult {
	low, ok := j.lowest()
	if !ok {
		return j.empty()
	}
	s := j.slot(low)
	cur := j.est.delay(now, s.ts)
	if cur < j.est.target && time.Duration(j.count)*FrameDuration < j.maxDelay {
		return j.empty()
	}
	if low > j.nextSeq {
		j.stats.Lost += uint64(low - j.nextSeq)
	}
	j.nextSeq, j.playTS = low, s.ts
	j.playing, j.floating = true, false
	return j.frame(now, s)
}

// release plays the packet due, or decides between waiting (a hold that
// raises the delay), concealing and skipping when it is missing.
func (j *JitterBuffer) release(now time.Time) PopResult {
	if s := j.slot(j.nextSeq); s != nil {
		jump := !j.continuous(s.ts)
		if j.underrun || jump {
			// A talkspurt starts (the timestamps skip a silence) or
			// playout resumes after running dry: re-anchor at the target
			// delay instead of playing a silence's worth of lost frames.
			// The marker bit is not looked at: a talkspurt after silence
			// suppression skips timestamps anyway (RFC 3551 §4.1), and
			// pion's packetizer marks every audio packet, which made each
			// Pop a re-anchor that never lowered the delay.
			if jump {
				j.stats.Resyncs++
			}
			j.playing, j.underrun = false, false
			return j.start(now)
		}
		if j.est.delay(now, s.ts) > j.est.target+FrameDuration && j.quiet > quietPops {
			if nx := j.slot(s.ext + 1); nx != nil && nx.ts-s.ts == j.stepTS {
				// Steady for a while and a frame above target: drop one.
				s.state = slotReleased
				j.count--
				j.stats.Discarded++
				j.quiet = 0
				s = nx
			}
		}
		return j.frame(now, s)
	}
	if _, ok := j.lowest(); !ok {
		if !j.underrun {
			j.stats.Underruns++
			j.underrun = true
		}
		j.quiet = 0
		return j.empty()
	}
	if j.underrun {
		// Packets are back after running dry; those missing were lost
		// during the silence already played.
		j.playing, j.underrun = false, false
		return j.start(now)
	}
	if j.est.delay(now, j.playTS) < j.est.target && j.holdRun < int(j.maxDelay/FrameDuration) {
		// Too little delay for the jitter seen: wait a tick for the packet
		// instead of concealing it.
		j.holdRun++
		j.quiet = 0
		return j.empty()
	}
	if j.lostRun >= j.maxLostRun {
		j.stats.Resyncs++
		j.playing = false
		return j.start(now)
	}
	return j.lost()
}

// continuous reports whether ts is where the next packet was expected,
// or one packet duration after the last, as learnt since it was played.
func (j *JitterBuffer) continuous(ts int64) bool {
	d := ts - j.playTS
	return d <= j.frameTS/2 && d >= -j.frameTS/2 || ts-j.playedTS == j.stepTS
}

// frame releases s.
func (j *JitterBuffer) frame(now time.Time, s *jitterSlot) PopResult {
	j.stats.Delay = j.est.delay(now, s.ts)
	dur := j.stepTS
	if nx := j.slot(s.ext + 1); nx != nil {
		if step := nx.ts - s.ts; step > 0 && step <= maxFrameSpan*j.frameTS {
			dur = step
		}
	}
	r := PopResult{
		Kind:      PopFrame,
		Seq:       uint16(s.ext),
		Timestamp: uint32(s.ts),
		Duration:  uint32(dur),
		Payload:   j.out[:copy(j.out[:], j.payload(s))],
		Silent:    s.silent,
		Epoch:     j.epoch,
	}
	s.state = slotReleased
	j.count--
	j.stats.Delivered++
	j.nextSeq, j.playedTS, j.playTS = s.ext+1, s.ts, s.ts+dur
	j.lostRun, j.holdRun, j.underrun = 0, 0, false
	return r
}

// lost reports the packet due as lost and moves past it.
func (j *JitterBuffer) lost() PopResult {
	r := PopResult{
		Kind:      PopLost,
		Seq:       uint16(j.nextSeq),
		Timestamp: uint32(j.playTS),
		Duration:  uint32(j.stepTS),
		Epoch:     j.epoch,
	}
	j.stats.Lost++
	j.lostRun++
	j.holdRun = 0
	j.quiet = 0
	j.nextSeq++
	j.playedTS = j.playTS
	j.playTS += j.stepTS
	if nx := j.slot(j.nextSeq); nx != nil {
		r.Next = j.next[:copy(j.next[:], j.payload(nx))]
	}
	return r
}

func (j *JitterBuffer) empty() PopResult {
	return PopResult{Kind: PopEmpty, Duration: uint32(j.frameTS), Epoch: j.epoch}
}

// Stats returns a snapshot of the counters and delay estimates.
func (j *JitterBuffer) Stats() JitterStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.est.update()
	s := j.stats
	s.Depth = j.count
	s.TargetDelay = j.est.target
	s.Jitter = time.Duration(j.est.jitter)
	return s
}

// countPlayout adds the playout's concealment, decoder-error and
// undecoded counts.
func (j *JitterBuffer) countPlayout(concealed, decodeErrors, undecoded uint64) {
	j.mu.Lock()
	j.stats.Concealed += concealed
	j.stats.DecodeErrors += decodeErrors
	j.stats.Undecoded += undecoded
	j.mu.Unlock()
}
