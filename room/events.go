package room

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// EventType says what happened in a room.
type EventType uint8

// Room events, in the order the room publishes them for one participant:
// joined, (muted/unmuted, speaking started/stopped)*, left.
const (
	// EventJoined: a participant joined.
	EventJoined EventType = iota + 1
	// EventLeft: a participant left or was kicked (published after its
	// EventSpeakingStopped if it was speaking).
	EventLeft
	// EventMuted: a participant was muted on the server.
	EventMuted
	// EventUnmuted: a participant was unmuted.
	EventUnmuted
	// EventSpeakingStarted: a participant's voice became active.
	EventSpeakingStarted
	// EventSpeakingStopped: a participant stopped speaking (or was muted
	// while speaking).
	EventSpeakingStopped
	// EventLocked: the room was locked; Participant is empty.
	EventLocked
	// EventUnlocked: the room was unlocked; Participant is empty.
	EventUnlocked
	// EventRoomClosed: the room closed; it is the last event, after which
	// the subscription's channel is closed. Participants still in the room
	// get no EventLeft.
	EventRoomClosed
	// EventRecordingStarted: a recording of the room started
	// (Room.SetRecording); Participant is empty.
	EventRecordingStarted
	// EventRecordingStopped: the recording stopped; Participant is empty.
	EventRecordingStopped
)

// String returns the event name the admin API and webhooks use.
func (t EventType) String() string {
	switch t {
	case EventJoined:
		return "joined"
	case EventLeft:
		return "left"
	case EventMuted:
		return "muted"
	case EventUnmuted:
		return "unmuted"
	case EventSpeakingStarted:
		return "speaking_started"
	case EventSpeakingStopped:
		return "speaking_stopped"
	case EventLocked:
		return "locked"
	case EventUnlocked:
		return "unlocked"
	case EventRoomClosed:
		return "room_closed"
	case EventRecordingStarted:
		return "recording_started"
	case EventRecordingStopped:
		return "recording_stopped"
	}
	return "unknown"
}

// Event is something that happened in a room.
type Event struct {
	Type EventType
	Room ID
	// Participant is who it happened to; empty for room-wide events.
	Participant ParticipantID
	Time        time.Time
}

// EventSub is one subscriber's view of a room's events: a bounded channel the
// room never blocks on.
type EventSub struct {
	c       chan Event
	dropped atomic.Uint64
	hub     *hub
}

// C returns the events. The room closes the channel after EventRoomClosed,
// or when the subscriber calls Close.
func (s *EventSub) C() <-chan Event { return s.c }

// Dropped counts events lost because the channel was full.
func (s *EventSub) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C; it is safe to call twice and
// after the room closed.
func (s *EventSub) Close() { s.hub.unsubscribe(s) }

// hub fans events out to subscribers. Publishers hold Room.mu (or
// Room.tickMu and then Room.mu), so events are in order.
type hub struct {
	room   ID
	mu     sync.Mutex
	subs   []*EventSub
	closed bool
}

func (h *hub) subscribe(size int) *EventSub {
	s := &EventSub{c: make(chan Event, max(size, 1)), hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.c)
		return s
	}
	h.subs = append(h.subs, s)
	return s
}

func (h *hub) unsubscribe(s *EventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, o := range h.subs {
		if o == s {
			h.subs = slices.Delete(h.subs, i, i+1)
			close(s.c)
			return
		}
	}
}

// publish sends the event to every subscriber that has room for it and
// counts a drop for the others; it never blocks and allocates nothing.
func (h *hub) publish(t EventType, p ParticipantID, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := Event{Type: t, Room: h.room, Participant: p, Time: now}
	for _, s := range h.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

// close ends every subscription; later subscriptions start closed.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		close(s.c)
	}
	h.subs, h.closed = nil, true
}
