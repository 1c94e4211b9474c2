package main

import (
	"context"
	"sync"
	"time"
)

// pacerShard is how many legs one pacer goroutine sends for: a few
// goroutines share the sending, rather than a timer per leg.
const pacerShard = 64

// sender is a participant whose frames the pacer times.
type sender interface {
	// send sends the participant's next 20 ms frame at now.
	send(now time.Time)
}

// pacer sends every leg's frame every 20 ms until ctx ends. Legs are added
// with add (before or while it runs); their send is called from the
// pacer's goroutines only.
type pacer struct {
	mu     sync.Mutex
	shards [][]sender
	wg     sync.WaitGroup
}

// add puts l into the pacer's rotation; the shard's goroutine picks it up
// at its next tick.
func (p *pacer) add(ctx context.Context, l sender) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.shards)
	if n == 0 || len(p.shards[n-1]) == pacerShard {
		p.shards = append(p.shards, make([]sender, 0, pacerShard))
		n++
		p.wg.Add(1)
		go p.run(ctx, n-1)
	}
	p.shards[n-1] = append(p.shards[n-1], l)
}

// run ticks shard i.
func (p *pacer) run(ctx context.Context, i int) {
	defer p.wg.Done()
	t := time.NewTicker(frameDur)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.mu.Lock()
			legs := p.shards[i]
			p.mu.Unlock()
			for _, l := range legs {
				l.send(time.Now())
			}
		}
	}
}

// wait waits for the pacer's goroutines after ctx ended.
func (p *pacer) wait() { p.wg.Wait() }
