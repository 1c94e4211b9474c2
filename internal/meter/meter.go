// Package meter holds the small, lock-free measuring types the domain
// packages keep for metrics: a fixed-bucket duration histogram that the
// media path can feed without allocating. Package api reads snapshots of
// them at scrape time and turns them into Prometheus series, so the domain
// packages need not import the Prometheus client.
package meter

import (
	"sync/atomic"
	"time"
)

// Histogram counts durations in fixed buckets. Observe is safe for
// concurrent use, allocates nothing and takes no lock: a few atomic adds.
type Histogram struct {
	bounds []float64       // upper bounds in seconds, ascending
	limits []time.Duration // the same as durations
	counts []atomic.Uint64 // len(bounds)+1: the last is +Inf
	sumNs  atomic.Int64
}

// NewHistogram returns a histogram with the given upper bounds in seconds
// (ascending; a +Inf bucket is implied).
func NewHistogram(bounds ...float64) *Histogram {
	h := &Histogram{bounds: append([]float64(nil), bounds...),
		limits: make([]time.Duration, len(bounds)), counts: make([]atomic.Uint64, len(bounds)+1)}
	for i, b := range bounds {
		h.limits[i] = time.Duration(b * float64(time.Second))
	}
	return h
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(h.limits) && d > h.limits[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// HistogramSnapshot is a histogram's state at one moment.
type HistogramSnapshot struct {
	// Bounds are the buckets' upper bounds in seconds, without +Inf.
	Bounds []float64
	// Cumulative[i] counts the observations ≤ Bounds[i] (Prometheus'
	// cumulative buckets).
	Cumulative []uint64
	// Count is the number of observations and Sum their total in
	// seconds.
	Count uint64
	Sum   float64
}

// Snapshot returns the counts so far. Observations racing with it may be
// in Count but not yet in Sum, or the other way round; Prometheus
// tolerates that.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: h.bounds, Cumulative: make([]uint64, len(h.bounds))}
	var acc uint64
	for i := range h.counts {
		acc += h.counts[i].Load()
		if i < len(h.bounds) {
			s.Cumulative[i] = acc
		}
	}
	s.Count = acc
	s.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return s
}
