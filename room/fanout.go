package room

import (
	"context"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/media"
)

// MixFrame is one tick of a room's full mix, as the recorder and the stream
// egress receive it.
type MixFrame struct {
	// Tick is the room's tick number, one per 20 ms; a gap between two
	// frames a consumer reads means it dropped the frames in between.
	Tick uint64
	// Time is when the room mixed the frame.
	Time time.Time
	// PCM is the full mix: everyone in the mix, 48 kHz mono, soft-clipped.
	PCM media.Frame
}

// MixConsumer receives a room's full mix through a bounded ring. The mixer
// copies each frame in without waiting; when the ring is full the new frame
// is dropped and counted, so a slow consumer loses audio but never delays
// the room. One goroutine reads it.
type MixConsumer struct {
	fan     *fanout
	mu      sync.Mutex
	ring    []MixFrame
	head, n int
	closed  bool
	ready   chan struct{} // capacity 1: a frame arrived or the consumer closed
	dropped atomic.Uint64
}

// Read waits for the next frame and copies it into dst. It returns ctx's
// error when ctx ends first, and io.EOF once the consumer is closed (by Close
// or because the room closed) and the frames already queued are read.
func (c *MixConsumer) Read(ctx context.Context, dst *MixFrame) error {
	for {
		ok, closed := c.take(dst)
		if ok {
			return nil
		}
		if closed {
			return io.EOF
		}
		select {
		case <-c.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TryRead copies the next frame into dst if there is one, without waiting.
func (c *MixConsumer) TryRead(dst *MixFrame) bool {
	ok, _ := c.take(dst)
	return ok
}

// Ready is signalled (capacity 1) when a frame arrives or the consumer
// closes, for consumers that select on several sources; drain with TryRead.
func (c *MixConsumer) Ready() <-chan struct{} { return c.ready }

// Dropped counts frames lost because the ring was full.
func (c *MixConsumer) Dropped() uint64 { return c.dropped.Load() }

// Close unsubscribes; frames already queued can still be read. It is safe
// to call twice and after the room closed.
func (c *MixConsumer) Close() {
	c.fan.unsubscribe(c)
	c.markClosed()
}

func (c *MixConsumer) take(dst *MixFrame) (ok, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		return false, c.closed
	}
	*dst = c.ring[c.head]
	c.head = (c.head + 1) % len(c.ring)
	c.n--
	return true, false
}

// put copies one frame in, or counts it dropped when the ring is full.
func (c *MixConsumer) put(tick uint64, now time.Time, pcm *media.Frame) {
	c.mu.Lock()
	if c.n == len(c.ring) {
		c.mu.Unlock()
		c.dropped.Add(1)
		return
	}
	f := &c.ring[(c.head+c.n)%len(c.ring)]
	f.Tick, f.Time, f.PCM = tick, now, *pcm
	c.n++
	c.mu.Unlock()
	c.signal()
}

func (c *MixConsumer) markClosed() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.signal()
}

func (c *MixConsumer) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// fanout hands each tick's full mix to the room's consumers.
type fanout struct {
	mu     sync.Mutex
	cons   []*MixConsumer
	closed bool
}

func (f *fanout) subscribe(frames int) *MixConsumer {
	c := &MixConsumer{fan: f, ring: make([]MixFrame, max(frames, 1)), ready: make(chan struct{}, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		c.closed = true
		return c
	}
	f.cons = append(f.cons, c)
	return c
}

func (f *fanout) unsubscribe(c *MixConsumer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.Index(f.cons, c); i >= 0 {
		f.cons = slices.Delete(f.cons, i, i+1)
	}
}

// empty reports whether the mix has no consumer.
func (f *fanout) empty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cons) == 0
}

// push copies the frame to every consumer; it never blocks.
func (f *fanout) push(tick uint64, now time.Time, pcm *media.Frame) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.cons {
		c.put(tick, now, pcm)
	}
}

// close ends every consumer (Read returns io.EOF once drained); later
// subscriptions start closed.
func (f *fanout) close() {
	f.mu.Lock()
	cons := f.cons
	f.cons, f.closed = nil, true
	f.mu.Unlock()
	for _, c := range cons {
		c.markClosed()
	}
}
