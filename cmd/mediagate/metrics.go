package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/room"
)

// nodeMetrics is what the node keeps for its Prometheus metrics beyond the
// domain packages' own counters: the mixer totals every room adds to, and
// the dial-in IVR's PIN counts. The series are listed in docs/metrics.md.
type nodeMetrics struct {
	totals *room.Totals
	pins   *countedLockouts
}

func newNodeMetrics() nodeMetrics { return nodeMetrics{totals: room.NewTotals()} }

// countLockouts wraps the IVR's PIN lockouts so wrong PINs and refused
// attempts are counted; it returns what dialIn takes.
func (m *nodeMetrics) countLockouts(l bridge.PINLockouts) bridge.PINLockouts {
	if m.pins == nil {
		m.pins = &countedLockouts{}
	}
	m.pins.PINLockouts = l
	return m.pins
}

// countRoomLockouts wraps the room PIN lockouts so the attempts refused
// because the room is locked are counted (the wrong PINs are counted once,
// by countLockouts's); nil stays nil (no room limit).
func (m *nodeMetrics) countRoomLockouts(l bridge.PINLockouts) bridge.PINLockouts {
	if l == nil {
		return nil
	}
	if m.pins == nil {
		m.pins = &countedLockouts{}
	}
	return &refusalCounter{PINLockouts: l, n: &m.pins.roomLockouts}
}

// metricsSources are the node's metrics sources (api.MetricsSources),
// read at scrape time.
func (n *node) metricsSources() api.MetricsSources {
	src := api.MetricsSources{
		Calls:       n.sip.CallStats,
		Guard:       n.sip.GuardStats,
		Rooms:       n.roomCounts,
		Mixer:       n.metrics.totals.Stats,
		WebRTCDrops: n.rtc.InputDrops,
		Recordings:  n.recordings.Stats,
		Egresses:    n.streams.Streams,
	}
	if p := n.metrics.pins; p != nil {
		src.PhonePINs = p.counts
	}
	if r, ok := n.state.(*cluster.Redis); ok {
		src.Redis = r.OpStats
	}
	return src
}

// roomCounts counts this node's rooms and their participants: phone and
// other (links, players) from the rooms, WebRTC publishers and WHEP
// listeners from the WebRTC server's sessions (a listener is a WebRTC
// participant to the room).
func (n *node) roomCounts() api.RoomCounts {
	rooms := n.rooms.List()
	c := api.RoomCounts{Rooms: len(rooms)}
	for _, rm := range rooms {
		for _, p := range rm.Participants() {
			switch p.Kind {
			case room.KindPhone:
				c.Phone++
			case room.KindOther:
				c.Other++
			}
		}
	}
	c.WebRTC, c.Listeners = n.rtc.SessionCounts()
	return c
}

// countedLockouts counts the IVR's wrong PINs (Fail) and the attempts
// refused because the caller is locked out (Locked answering a time to
// come).
type countedLockouts struct {
	bridge.PINLockouts
	failures, lockouts atomic.Uint64
	roomLockouts       atomic.Uint64 // counted by a refusalCounter
}

// Fail implements bridge.PINLockouts.
func (c *countedLockouts) Fail(ctx context.Context, key string) (time.Time, error) {
	c.failures.Add(1)
	return c.PINLockouts.Fail(ctx, key)
}

// Locked implements bridge.PINLockouts.
func (c *countedLockouts) Locked(ctx context.Context, key string) (time.Time, error) {
	until, err := c.PINLockouts.Locked(ctx, key)
	if err == nil && until.After(time.Now()) {
		c.lockouts.Add(1)
	}
	return until, err
}

func (c *countedLockouts) counts() api.PINCounts {
	return api.PINCounts{Failures: c.failures.Load(), Lockouts: c.lockouts.Load(), RoomLockouts: c.roomLockouts.Load()}
}

// refusalCounter counts in n the attempts refused because a key is locked
// (Locked answering a time to come), and nothing else.
type refusalCounter struct {
	bridge.PINLockouts
	n *atomic.Uint64
}

// Locked implements bridge.PINLockouts.
func (c *refusalCounter) Locked(ctx context.Context, key string) (time.Time, error) {
	until, err := c.PINLockouts.Locked(ctx, key)
	if err == nil && until.After(time.Now()) {
		c.n.Add(1)
	}
	return until, err
}
