package room

import (
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/internal/meter"
	"github.com/mediagate/mediagate/media"
)

// Totals are mixer counters summed over every room that shares them
// (WithTotals), for the node's metrics: unlike Room.Stats they outlive the
// rooms. The mixer feeds them with atomic adds and one histogram
// observation per tick; nothing allocates. Safe for concurrent use.
type Totals struct {
	ticks   atomic.Uint64
	late    atomic.Uint64
	skipped atomic.Uint64
	shared  atomic.Uint64
	own     atomic.Uint64
	tick    *meter.Histogram
}

// LateTick is how far behind its due time a tick may start before it
// counts as late: half a frame. A late tick still mixes the right audio,
// but the participants receive it in a burst (see Room's clock).
const LateTick = media.FrameDuration / 2

// TickBuckets are the upper bounds (seconds) of the tick duration
// histogram: a tick takes tens of µs for a small room and must stay well
// under the 20 ms frame.
var TickBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05}

// NewTotals returns zeroed totals.
func NewTotals() *Totals { return &Totals{tick: meter.NewHistogram(TickBuckets...)} }

// TotalStats is a snapshot of Totals.
type TotalStats struct {
	// Ticks counts mixing rounds; LateTicks those that started more than
	// LateTick after they were due; Skipped the frames given up after a
	// stall (Stats.Skipped).
	Ticks, LateTicks, Skipped uint64
	// SharedEncodes counts encodes of a full mix shared by its listeners,
	// OwnEncodes the mix-minus encodes of participants whose voice is in
	// the mix (decision 2), priming included.
	SharedEncodes, OwnEncodes uint64
	// TickSeconds is how long ticks took to run.
	TickSeconds meter.HistogramSnapshot
}

// Stats returns the totals so far.
func (t *Totals) Stats() TotalStats {
	return TotalStats{Ticks: t.ticks.Load(), LateTicks: t.late.Load(), Skipped: t.skipped.Load(),
		SharedEncodes: t.shared.Load(), OwnEncodes: t.own.Load(), TickSeconds: t.tick.Snapshot()}
}

// WithTotals makes the room add its mixer counters to t as well (usually
// one Totals per node, given through Manager's room defaults).
func WithTotals(t *Totals) Option { return func(c *config) { c.totals = t } }

// countEncode counts one encoder call, shared or own.
func (r *Room) countEncode(shared bool) {
	r.encodes.Add(1)
	t := r.cfg.totals
	switch {
	case shared:
		r.sharedEncodes.Add(1)
		if t != nil {
			t.shared.Add(1)
		}
	default:
		r.ownEncodes.Add(1)
		if t != nil {
			t.own.Add(1)
		}
	}
}

// countTick counts a tick the room's clock ran: how late it started
// after due and how long it took.
func (t *Totals) countTick(due, start time.Time, took time.Duration) {
	if start.Sub(due) > LateTick {
		t.late.Add(1)
	}
	t.tick.Observe(took)
}
