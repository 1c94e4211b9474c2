package stream

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// State is where a destination is in its life.
type State string

// The states of a destination. Rejected, error, stopped and fenced are
// final.
const (
	// StateConnecting: dialing, handshaking, connect, createStream,
	// publish.
	StateConnecting State = "connecting"
	// StateLive: publishing; tags flow.
	StateLive State = "live"
	// StateBackoff: the last attempt or connection failed; the next one
	// starts at NextAttempt.
	StateBackoff State = "backoff"
	// StateRejected: the server refused the stream (ErrRejected), most
	// likely a wrong or expired stream key. No retry.
	StateRejected State = "rejected"
	// StateError: a failure retrying cannot fix: a certificate that does
	// not verify, an address that turned private. No retry.
	StateError State = "error"
	// StateStopped: removed, or the egress closed.
	StateStopped State = "stopped"
	// StateFenced: this node lost the room (ErrStale: its lease's epoch is
	// stale; another node owns and streams it now). Nothing more is
	// pushed, no retry.
	StateFenced State = "fenced"
)

// stableAfter is how long a connection must have been live for the next
// failure to start the backoff over at BackoffMin: a server that accepts
// and drops at once is retried ever more slowly.
const stableAfter = 30 * time.Second

// DestinationID names a destination within its egress.
type DestinationID string

// Destination is where an egress publishes.
type Destination struct {
	// ID names it in status, events and Remove; generated ("d1", "d2"...)
	// when empty.
	ID DestinationID
	// Name is a label for people ("YouTube"); optional.
	Name string
	// URL is rtmp://host[:port]/app/key or rtmps://...; the last path
	// segment (with any query) is the stream key unless Key is set, and
	// then the whole path is the application.
	URL string
	// Key is the stream key, for platforms that hand it out apart from
	// the URL. Never logged, never in status.
	Key string
}

// DestinationStatus is a snapshot of one destination.
type DestinationStatus struct {
	// ID and Name are the destination's, as added.
	ID   DestinationID
	Name string
	// URL is the masked URL: scheme, host, port and application.
	URL string
	// State is where the destination is now.
	State State
	// StateSince is when the destination entered State.
	StateSince time.Time
	// ConnectedSince is when the current connection went live; zero
	// unless State is live.
	ConnectedSince time.Time
	// Bytes counts what was written over every connection.
	Bytes uint64
	// Bitrate is the rate written over the last second or so, bit/s.
	Bitrate int64
	// Reconnects counts the connection attempts after the first (not
	// those the fence stopped before dialing).
	Reconnects int
	// Dropped counts tags lost because the destination's queue was full.
	Dropped uint64
	// LastError describes the last failure, key masked; empty if none.
	// LastErrorAt is when it happened.
	LastError   string
	LastErrorAt time.Time
	// NextAttempt is when a destination in backoff tries again.
	NextAttempt time.Time
}

// destination is one supervised publishing target.
type destination struct {
	e      *Egress
	id     DestinationID
	name   string
	t      *target
	q      *queue
	cancel context.CancelFunc
	done   chan struct{}

	bytes atomic.Uint64

	mu        sync.Mutex
	st        DestinationStatus // Bytes, Dropped, Bitrate filled in by status
	rateStart time.Time
	rateBytes uint64
	bitrate   int64

	// Owned by the destination's goroutine.
	audioHdr, videoHdr []byte
}

// status returns a snapshot.
func (d *destination) status() DestinationStatus {
	now := d.e.now()
	d.mu.Lock()
	s := d.st
	s.Bitrate = d.bitrate
	if s.State != StateLive || now.Sub(d.rateStart) > 3*time.Second {
		s.Bitrate = 0
	}
	d.mu.Unlock()
	s.Bytes, s.Dropped = d.bytes.Load(), d.q.dropped.Load()
	return s
}

// setState moves to state, records err (masked) and reports the change.
func (d *destination) setState(state State, err error, next time.Time) {
	now := d.e.now()
	err = d.mask(err)
	d.mu.Lock()
	d.st.State, d.st.StateSince, d.st.NextAttempt = state, now, next
	if state == StateLive {
		d.st.ConnectedSince, d.rateStart, d.rateBytes, d.bitrate = now, now, 0, 0
	} else {
		d.st.ConnectedSince = time.Time{}
	}
	if err != nil {
		d.st.LastError, d.st.LastErrorAt = err.Error(), now
	}
	d.mu.Unlock()
	log := d.e.log.With("destination", string(d.id), "url", d.t.masked, "state", string(state))
	if err != nil {
		log.Warn("destination state", "err", err.Error())
	} else {
		log.Info("destination state")
	}
	d.e.emit(Event{Type: EventState, Destination: d.id, URL: d.t.masked, State: state, Err: err, Time: now})
}

// maskedError hides the stream key in an error's text; Unwrap keeps
// errors.Is working.
type maskedError struct {
	err error
	msg string
}

// Error returns the masked text.
func (m *maskedError) Error() string { return m.msg }

// Unwrap returns the original error, for errors.Is and errors.As.
func (m *maskedError) Unwrap() error { return m.err }

// mask returns err with every occurrence of the key replaced.
func (d *destination) mask(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, k := range []string{d.t.key, strings.SplitN(d.t.key, "?", 2)[0]} {
		if len(k) >= 4 {
			msg = strings.ReplaceAll(msg, k, "****")
		}
	}
	return &maskedError{err: err, msg: msg}
}

// backoff returns the wait before attempt n (0-based): BackoffMin doubled
// n times, capped at BackoffMax, ±20 % jitter, within [BackoffMin,
// BackoffMax].
func (d *destination) backoff(n int) time.Duration {
	o := &d.e.opts
	b := o.BackoffMin
	for i := 0; i < n && b < o.BackoffMax; i++ {
		b *= 2
	}
	j := time.Duration(float64(b) * (0.8 + 0.4*rand.Float64()))
	return min(max(j, o.BackoffMin), o.BackoffMax)
}

// terminal reports the final state an error leads to, if any.
func terminal(err error) (State, bool) {
	switch {
	case errors.Is(err, ErrStale):
		return StateFenced, true
	case errors.Is(err, ErrRejected):
		return StateRejected, true
	case errors.Is(err, ErrCertificate), errors.Is(err, ErrPrivateAddress):
		return StateError, true
	}
	return "", false
}

// run supervises the destination until ctx ends or a final state.
func (d *destination) run(ctx context.Context) {
	defer close(d.done)
	failures, dials := 0, 0
	for {
		d.setState(StateConnecting, nil, time.Time{})
		var c *conn
		err := d.e.checkFence(ctx) // every connection is fenced: stale ends, unknown backs off
		if err == nil {
			if dials > 0 {
				d.mu.Lock()
				d.st.Reconnects++
				d.mu.Unlock()
			}
			dials++
			c, err = dialRTMP(ctx, d.t, d.e.connectOptions())
		}
		if err == nil {
			d.setState(StateLive, nil, time.Time{})
			since := d.e.now()
			err = d.pump(ctx, c)
			if d.e.now().Sub(since) >= stableAfter {
				failures = 0
			}
		}
		if ctx.Err() != nil {
			d.setState(StateStopped, nil, time.Time{})
			return
		}
		if state, ok := terminal(err); ok {
			d.setState(state, err, time.Time{})
			return
		}
		wait := d.backoff(failures)
		failures++
		d.setState(StateBackoff, err, d.e.now().Add(wait))
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			d.setState(StateStopped, nil, time.Time{})
			return
		}
	}
}

// pump streams the egress's tags to c until the connection fails (its
// error) or ctx ends (nil, after unpublishing).
func (d *destination) pump(ctx context.Context, c *conn) error {
	d.audioHdr, d.videoHdr = d.e.fan.attach(d.q, d.audioHdr, d.videoHdr)
	defer func() {
		d.e.fan.detach(d.q)
		d.q.drain()
	}()
	var readErr error
	readDone := make(chan struct{})
	go func() {
		readErr = c.readLoop()
		close(readDone)
	}()
	defer func() {
		c.close()
		<-readDone
	}()
	d.e.video.requestKeyframe()
	retry := time.NewTicker(keyframeRetry)
	defer retry.Stop()
	var fence <-chan time.Time
	if d.e.opts.Fence.Check != nil {
		tf := time.NewTicker(d.e.opts.FenceInterval)
		defer tf.Stop()
		fence = tf.C
	}
	w := writeState{}
	for {
		select {
		case <-d.q.ready:
		case <-readDone:
			return readErr
		case <-retry.C:
			if !w.started || w.skipVideo {
				d.e.video.requestKeyframe()
			}
			continue
		case <-fence:
			// A stale epoch drops the connection without another byte
			// (not even an unpublish); a fence that cannot tell lets the
			// stream go on, as rooms go on during an outage.
			if err := d.e.checkFence(ctx); errors.Is(err, ErrStale) {
				return err
			}
			continue
		case <-ctx.Done():
			c.unpublish()
			return nil
		}
		n, err := d.writeBatch(c, &w)
		d.count(n)
		if err != nil {
			return stepError("write", err)
		}
	}
}

// writeState is a connection's progress through the tags.
type writeState struct {
	started   bool  // the first keyframe went out
	base      int64 // its timestamp: the connection's time zero
	skipVideo bool  // video was dropped: wait for a keyframe
}

// writeBatch writes every queued tag and flushes, within the write
// timeout. It returns the bytes written.
func (d *destination) writeBatch(c *conn, w *writeState) (int, error) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(d.e.opts.Timeout))
	total := 0
	for {
		t, gap := d.q.pop()
		if gap && w.started {
			w.skipVideo = true
			d.e.video.requestKeyframe()
		}
		if t == nil {
			break
		}
		n, err := d.writeTag(c, w, t)
		t.release()
		total += n
		if err != nil {
			return total, err
		}
	}
	if err := c.writeControlDue(); err != nil {
		return total, err
	}
	return total, c.bw.Flush()
}

// writeTag writes t if the connection wants it: nothing before the first
// keyframe (which goes out behind the sequence headers, at time zero), no
// video between a gap and the next keyframe.
func (d *destination) writeTag(c *conn, w *writeState, t *tag) (int, error) {
	if t.hdr {
		if t.typ == typeAudio {
			d.audioHdr = append(d.audioHdr[:0], t.data...)
		} else {
			d.videoHdr = append(d.videoHdr[:0], t.data...)
		}
		if !w.started {
			return 0, nil
		}
	}
	if !w.started {
		if t.typ != typeVideo || !t.key {
			return 0, nil
		}
		w.started, w.base = true, t.ts
		n := 0
		for _, h := range []struct {
			typ  byte
			data []byte
		}{{typeAudio, d.audioHdr}, {typeVideo, d.videoHdr}} {
			if len(h.data) > 0 {
				if err := c.writeTag(h.typ, 0, h.data); err != nil {
					return n, err
				}
				n += wireSize(h.data)
			}
		}
		return n + wireSize(t.data), c.writeTag(t.typ, 0, t.data)
	}
	if t.typ == typeVideo && w.skipVideo && !t.hdr {
		if !t.key {
			return 0, nil
		}
		w.skipVideo = false
	}
	rel := t.ts - w.base
	if rel < 0 {
		if t.typ == typeAudio {
			return 0, nil // from before the first keyframe
		}
		rel = 0
	}
	return wireSize(t.data), c.writeTag(t.typ, uint32(rel), t.data)
}

// wireSize is a message's size on the wire with its chunk headers.
func wireSize(data []byte) int {
	return len(data) + 12 + max(len(data)-1, 0)/outChunkSize
}

// count adds written bytes to the totals and the bitrate window.
func (d *destination) count(n int) {
	if n == 0 {
		return
	}
	d.bytes.Add(uint64(n))
	now := d.e.now()
	d.mu.Lock()
	d.rateBytes += uint64(n)
	if el := now.Sub(d.rateStart); el >= time.Second {
		d.bitrate = int64(float64(d.rateBytes*8) / el.Seconds())
		d.rateStart, d.rateBytes = now, 0
	}
	d.mu.Unlock()
}
