package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Events carries small cluster-wide notices (a room moved, a ban was added) so
// nodes react at once instead of polling. Delivery is best effort: a notice is
// a hint to re-read the state above, never the state itself.
type Events interface {
	// Publish sends data to every current subscriber of topic.
	Publish(ctx context.Context, topic string, data []byte) error
	// Subscribe starts receiving topic; it is active when it returns.
	Subscribe(ctx context.Context, topic string, buffer int) (*Subscription, error)
}

// Subscription is one receiver of a topic. Its owner must call Close, which
// stops delivery, waits for the delivering goroutine and closes C.
type Subscription struct {
	// C delivers the notices; it is closed by Close and never by anyone else.
	C <-chan []byte

	dropped atomic.Uint64
	close   func() error
	once    sync.Once
	err     error
}

// Dropped counts notices thrown away because C was full: the publisher never
// waits for a slow subscriber (STYLE 9).
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close stops the subscription; it is safe to call more than once.
func (s *Subscription) Close() error {
	s.once.Do(func() { s.err = s.close() })
	return s.err
}

var (
	_ Events = (*Memory)(nil)
	_ Events = (*Redis)(nil)
)

type memSub struct {
	sub *Subscription
	c   chan []byte
}

// Publish implements Events.
func (m *Memory) Publish(_ context.Context, topic string, data []byte) error {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	for _, s := range m.subs[topic] {
		select {
		case s.c <- data:
		default:
			s.sub.dropped.Add(1)
		}
	}
	return nil
}

// Subscribe implements Events.
func (m *Memory) Subscribe(_ context.Context, topic string, buffer int) (*Subscription, error) {
	c := make(chan []byte, buffer)
	ms := &memSub{c: c, sub: &Subscription{C: c}}
	ms.sub.close = func() error {
		m.subMu.Lock()
		defer m.subMu.Unlock()
		subs := m.subs[topic]
		for i, s := range subs {
			if s == ms {
				m.subs[topic] = append(subs[:i:i], subs[i+1:]...)
				break
			}
		}
		close(c) // under subMu, so Publish never sends on a closed channel
		return nil
	}
	m.subMu.Lock()
	defer m.subMu.Unlock()
	if m.subs == nil {
		m.subs = make(map[string][]*memSub)
	}
	m.subs[topic] = append(m.subs[topic], ms)
	return ms.sub, nil
}

func (r *Redis) topicKey(topic string) string { return r.cfg.prefix + ":events:" + topic }

// Publish implements Events.
func (r *Redis) Publish(ctx context.Context, topic string, data []byte) error {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	return backend("publish", r.c.Publish(ctx, r.topicKey(topic), data).Err())
}

// Subscribe implements Events. The forwarding goroutine is owned by the
// returned Subscription and ends in its Close.
func (r *Redis) Subscribe(ctx context.Context, topic string, buffer int) (*Subscription, error) {
	ps := r.c.Subscribe(ctx, r.topicKey(topic))
	rctx, cancel := r.deadline(ctx)
	defer cancel()
	if _, err := ps.Receive(rctx); err != nil { // the subscribe confirmation
		_ = ps.Close()
		return nil, backend("subscribe", err)
	}
	c := make(chan []byte, buffer)
	sub := &Subscription{C: c}
	var wg sync.WaitGroup
	in := ps.Channel()
	wg.Go(func() {
		defer close(c)
		for msg := range in {
			select {
			case c <- []byte(msg.Payload):
			default:
				sub.dropped.Add(1)
			}
		}
	})
	sub.close = func() error {
		err := ps.Close() // closes in, which ends the goroutine
		wg.Wait()
		if err != nil {
			return fmt.Errorf("redis unsubscribe: %w", err)
		}
		return nil
	}
	return sub, nil
}
