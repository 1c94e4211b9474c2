package main

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/media"
)

// receiver is the receiving half of a participant, whatever its codec:
// sequence counting for loss, and probe detection on the decoded frames.
// count and detect run on the participant's receive goroutine only; the
// counters and delays are read by the report from another.
type receiver struct {
	room     *roomState
	kind     string
	detects  bool         // looks for probes (else only counts)
	measure  *atomic.Bool // collect delays while true
	received atomic.Int64 // packets
	extHigh  atomic.Int64 // highest extended sequence number, -1 before any
	extBase  int64        // first extended sequence number
	cycles   int64        // sequence wrap-arounds times 65536
	inProbe  int          // 1 + the probeSlot of the burst the last frame held, 0 for none
	prev     []int16      // the frame before the current one
	delaysMu sync.Mutex
	delays   []pathDelay
}

// pathDelay is one probe's delay from a participant of kind from to one of
// kind to.
type pathDelay struct {
	from, to string
	d        time.Duration
}

// init readies r (in place: it holds atomics) for cfg's room.
func (r *receiver) init(cfg legConfig) {
	r.room, r.kind, r.detects, r.measure = cfg.room, cfg.kind, cfg.detect && cfg.role != prober, cfg.measure
	r.extHigh.Store(-1)
}

// count updates the received and highest-sequence counters (RFC 3550
// A.1, without the probation).
func (r *receiver) count(seq uint16) {
	high := r.extHigh.Load()
	if high < 0 {
		r.extBase = int64(seq)
		r.extHigh.Store(int64(seq))
		r.received.Add(1)
		return
	}
	ext := r.cycles + int64(seq)
	switch d := ext - high; {
	case d < -32768: // wrapped
		r.cycles += 65536
		ext += 65536
	case d > 32768: // a late packet from before a wrap
		ext -= 65536
	}
	if ext > high {
		r.extHigh.Store(ext)
	}
	r.received.Add(1)
}

// lossCounters is what loss is computed from: packets expected (from the
// sequence numbers) and received so far.
func (r *receiver) lossCounters() (expected, received int64) {
	high := r.extHigh.Load()
	if high < 0 {
		return 0, 0
	}
	return high - r.extBase + 1, r.received.Load()
}

// detect looks at one received 20 ms frame (pcm at rate) and, on the first
// frame of a probe burst, records the delay from the burst's send time to
// the first probe sample's arrival.
func (r *receiver) detect(pcm []int16, rate int, now time.Time) {
	defer func() { r.prev = append(r.prev[:0], pcm...) }()
	held := 0
	if slot, ok := heldProbe(pcm, rate); ok {
		held = slot + 1
	}
	start := held != 0 && held != r.inProbe // a burst begins in this frame
	r.inProbe = held
	if !start || r.measure == nil || !r.measure.Load() || len(r.prev) != len(pcm) {
		return
	}
	// The burst may have begun in the previous frame (the gateway's
	// resampling shifts it by a few samples): find its first 2.5 ms.
	onset := onsetIndex(r.prev, pcm, rate/400)
	at := now.Add(time.Duration(onset-len(pcm)) * time.Second / time.Duration(rate))
	origin, ok := r.room.origin(at, held-1, time.Second)
	if !ok {
		return
	}
	r.delaysMu.Lock()
	r.delays = append(r.delays, pathDelay{from: origin.kind, to: r.kind, d: at.Sub(origin.at)})
	r.delaysMu.Unlock()
}

// takeDelays returns and forgets the delays recorded so far.
func (r *receiver) takeDelays() []pathDelay {
	r.delaysMu.Lock()
	defer r.delaysMu.Unlock()
	d := r.delays
	r.delays = nil
	return d
}

// heldProbe tells whether most of a frame's energy (pcm at rate) is a
// probe tone, and whose (the probeSlot).
func heldProbe(pcm []int16, rate int) (slot int, ok bool) {
	var sum float64
	for _, s := range pcm {
		v := float64(s) / 32768
		sum += v * v
	}
	ms := sum / float64(len(pcm))
	if ms == 0 || 10*math.Log10(ms) < probeMinDBFS {
		return 0, false
	}
	// GoertzelPower gives amp²/4 for a sine of amplitude amp, whose mean
	// square is amp²/2.
	for slot, f := range probeFreqs {
		if 2*media.GoertzelPower(pcm, f, rate)/ms > probeFraction {
			return slot, true
		}
	}
	return 0, false
}

// onsetIndex is the index, in prev followed by cur, of the first block of
// block samples whose energy exceeds half of cur's mean block energy.
func onsetIndex(prev, cur []int16, block int) int {
	energy := func(s []int16) float64 {
		var e float64
		for _, x := range s {
			e += float64(x) * float64(x)
		}
		return e
	}
	limit := energy(cur) / float64(len(cur)/block) / 2
	all := append(append(make([]int16, 0, len(prev)+len(cur)), prev...), cur...)
	for i := 0; i+block <= len(all); i += block {
		if energy(all[i:i+block]) > limit {
			return i
		}
	}
	return len(prev)
}
