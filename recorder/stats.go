package recorder

import (
	"io"
	"sync/atomic"
)

// Stats are the recorder's counters since New, for metrics.
type Stats struct {
	// Active is the number of recordings running now.
	Active int
	// BytesWritten counts the audio octets written to recording files
	// (container and, when encrypted, sealing included).
	BytesWritten uint64
	// Events counts the recording events raised, by type (index
	// EventType; the zero index is unused). EventDeleted counts deletions,
	// EventExpiring expiry warnings.
	Events [numEventTypes]uint64
	// ReceiptsWritten counts deletion receipts appended to the log.
	ReceiptsWritten uint64
}

// numEventTypes bounds EventType values (the last one plus one).
const numEventTypes = int(EventExpiring) + 1

// counters are the Recorder's Stats counters.
type counters struct {
	active   atomic.Int64
	bytes    atomic.Uint64
	events   [numEventTypes]atomic.Uint64
	receipts atomic.Uint64
}

// Stats returns the counters and the number of running recordings.
func (r *Recorder) Stats() Stats {
	st := Stats{BytesWritten: r.count.bytes.Load(), ReceiptsWritten: r.count.receipts.Load()}
	for i := range st.Events {
		st.Events[i] = r.count.events[i].Load()
	}
	st.Active = int(r.count.active.Load())
	return st
}

// countEvent counts an event by type.
func (c *counters) countEvent(t EventType) {
	if int(t) < numEventTypes {
		c.events[t].Add(1)
	}
}

// countingWriter counts what goes through it into n.
type countingWriter struct {
	w io.Writer
	n *atomic.Uint64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(uint64(n))
	return n, err
}
