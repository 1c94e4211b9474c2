package media

import (
	"slices"
	"time"
)

// delayEstimator tracks each packet's relative delay d = arrival - media
// time of its timestamp (the transit time plus an unknown constant). The
// smallest d of the window is the fastest path through the network; a
// packet's delay variation is d minus that, and the target delay covers
// its 95th percentile plus one frame. A new large d raises the target at
// once; it falls only when the window has forgotten the jitter.
type delayEstimator struct {
	frameTS           int64
	minD, initD, maxD time.Duration
	base              time.Time
	baseTS            int64
	// win is the window in arrival order (a ring at pos), sorted the same
	// delays in ascending order: kept sorted on every add (an insertion,
	// and a removal once the window is full), so the percentile is a
	// lookup instead of a sort per packet.
	win, sorted     [jitterWindow]time.Duration
	n, pos          int
	prev            time.Duration
	havePrev, dirty bool
	jitter          float64 // RFC 3550 §6.4.1, in nanoseconds
	dmin, target    time.Duration
}

// rebase forgets the window and measures from (arrival, ts) on: the
// timestamps jumped, so old delays say nothing about new ones.
func (e *delayEstimator) rebase(arrival time.Time, ts int64) {
	e.base, e.baseTS = arrival, ts
	e.n, e.pos, e.havePrev, e.dirty = 0, 0, false, true
}

// media converts a timestamp difference to time.
func (e *delayEstimator) media(dts int64) time.Duration {
	const limit = 1 << 36 // keeps the product far from overflow
	dts = min(max(dts, -limit), limit)
	return time.Duration(dts * int64(FrameDuration) / e.frameTS)
}

// add records a packet with extended timestamp ts arriving at arrival.
// tsBreak says its timestamp does not follow on from the packet before.
func (e *delayEstimator) add(arrival time.Time, ts int64, tsBreak bool) {
	d := arrival.Sub(e.base) - e.media(ts-e.baseTS)
	if e.havePrev {
		delta := d - e.prev
		if delta < 0 {
			delta = -delta
		}
		// Transit changing by twice the largest delay is no jitter the
		// buffer could absorb, and across a timestamp break more than the
		// jitter explains means the sender's clock jumped.
		jump := 2 * e.maxD
		if tsBreak {
			jump = min(jump, max(5*FrameDuration, time.Duration(4*e.jitter)))
		}
		if delta > jump {
			e.rebase(arrival, ts)
			d = 0
		} else {
			// RFC 3550 §6.4.1: J += (|D(i-1,i)| - J) / 16.
			e.jitter += (float64(delta) - e.jitter) / 16
		}
	}
	e.prev, e.havePrev = d, true
	if e.n == jitterWindow {
		// The oldest delay leaves the window.
		i, _ := slices.BinarySearch(e.sorted[:e.n], e.win[e.pos])
		copy(e.sorted[i:e.n-1], e.sorted[i+1:e.n])
		e.n--
	}
	i, _ := slices.BinarySearch(e.sorted[:e.n], d)
	copy(e.sorted[i+1:e.n+1], e.sorted[i:e.n])
	e.sorted[i] = d
	e.n++
	e.win[e.pos] = d
	e.pos = (e.pos + 1) % jitterWindow
	e.dirty = true
}

// update recomputes the smallest delay and the target from the window.
func (e *delayEstimator) update() {
	if !e.dirty {
		return
	}
	e.dirty = false
	if e.n == 0 {
		e.dmin, e.target = 0, e.initD
		return
	}
	v := e.sorted[:e.n]
	e.dmin = v[0]
	t := v[(e.n*jitterPercentile+99)/100-1] - v[0] + FrameDuration
	if e.n < jitterMinSamples {
		t = max(t, e.initD)
	}
	e.target = min(max(t, e.minD), e.maxD)
}

// delay is how long after its timestamp's fastest possible arrival a
// packet with timestamp ts is played when released at now.
func (e *delayEstimator) delay(now time.Time, ts int64) time.Duration {
	e.update()
	return now.Sub(e.base) - e.media(ts-e.baseTS) - e.dmin
}
