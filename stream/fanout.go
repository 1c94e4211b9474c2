package stream

import (
	"sync"
	"sync/atomic"
)

// tag is one FLV tag body on its way to the destinations: made once by the
// audio or video pipeline, shared read-only by every destination queue,
// and back in the pool when the last one released it.
type tag struct {
	typ  byte  // typeAudio or typeVideo
	key  bool  // a video keyframe
	hdr  bool  // a sequence header (AAC or AVC)
	ts   int64 // ms on the egress's timeline
	data []byte
	refs atomic.Int32
	pool *sync.Pool
}

// release drops one reference; the last returns the tag to its pool.
func (t *tag) release() {
	if t.refs.Add(-1) == 0 {
		t.data = t.data[:0]
		t.pool.Put(t)
	}
}

// fanout hands the pipelines' tags to the queues of the destinations that
// are publishing. It keeps the current sequence headers for queues that
// start later.
type fanout struct {
	pool sync.Pool

	mu       sync.Mutex
	queues   []*queue
	audioHdr []byte
	videoHdr []byte
}

func newFanout() *fanout {
	f := &fanout{}
	f.pool.New = func() any { return &tag{data: make([]byte, 0, 1024), pool: &f.pool} }
	return f
}

// get returns an empty tag holding one reference, the caller's.
func (f *fanout) get(typ byte, ts int64) *tag {
	t := f.pool.Get().(*tag)
	t.typ, t.ts, t.key, t.hdr = typ, ts, false, false
	t.refs.Store(1)
	return t
}

// publish hands t to every queue and drops the caller's reference. It
// never waits: a full queue drops the tag and counts it.
func (f *fanout) publish(t *tag) {
	f.mu.Lock()
	if t.hdr {
		if t.typ == typeAudio {
			f.audioHdr = append(f.audioHdr[:0], t.data...)
		} else {
			f.videoHdr = append(f.videoHdr[:0], t.data...)
		}
	}
	t.refs.Add(int32(len(f.queues)))
	for _, q := range f.queues {
		if !q.push(t) {
			t.release()
		}
	}
	f.mu.Unlock()
	t.release()
}

// attach starts feeding q and copies the current sequence headers into
// audio and video (which it returns, grown as needed).
func (f *fanout) attach(q *queue, audio, video []byte) ([]byte, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queues = append(f.queues, q)
	return append(audio[:0], f.audioHdr...), append(video[:0], f.videoHdr...)
}

// detach stops feeding q.
func (f *fanout) detach(q *queue) {
	f.mu.Lock()
	for i, x := range f.queues {
		if x == q {
			f.queues = append(f.queues[:i], f.queues[i+1:]...)
			break
		}
	}
	f.mu.Unlock()
}

// queue is one destination's bounded queue of tags. publish copies a
// pointer in without waiting; the destination's goroutine pops.
type queue struct {
	mu       sync.Mutex
	ring     []*tag
	head, n  int
	videoGap bool          // a video tag was dropped since the last pop
	ready    chan struct{} // capacity 1: a tag arrived
	dropped  atomic.Uint64
}

func newQueue(n int) *queue {
	return &queue{ring: make([]*tag, n), ready: make(chan struct{}, 1)}
}

// push adds t, or reports false (counted) when the queue is full.
func (q *queue) push(t *tag) bool {
	q.mu.Lock()
	if q.n == len(q.ring) {
		if t.typ == typeVideo {
			q.videoGap = true
		}
		q.mu.Unlock()
		q.dropped.Add(1)
		return false
	}
	q.ring[(q.head+q.n)%len(q.ring)] = t
	q.n++
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop returns the oldest tag (nil when empty) and whether video was
// dropped before it: the decoder then needs a keyframe.
func (q *queue) pop() (*tag, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	gap := q.videoGap
	q.videoGap = false
	if q.n == 0 {
		return nil, gap
	}
	t := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return t, gap
}

// drain releases everything queued.
func (q *queue) drain() {
	for t, _ := q.pop(); t != nil; t, _ = q.pop() {
		t.release()
	}
}
