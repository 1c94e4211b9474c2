// Package room holds conference rooms: their members (the Participant
// interface that WebRTC and phone participants implement), the mixer that
// gives each of them its mix every 20 ms, the room's controls (mute, lock,
// size limit), its events, and the fan-out of its mix to the recorder and
// the stream egress. It imports only media (DESIGN.md: rooms know nothing
// of SIP, WebRTC or the cluster).
package room

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/media"
)

// Room is one conference: a set of participants mixed on one 20 ms clock.
//
// Mixing (decision 2 of DESIGN.md): participants whose voice is in the mix
// (speaking, not muted, among the loudest WithMaxSpeakers) each get their own
// mix-minus (everyone but themselves), encoded by their own encoder. Everyone
// else is a listener and hears the full mix, encoded once per Format and
// handed to all listeners of that Format as the same payload. A listener
// that announces (Announcer: a phone caller hearing a prompt) gets its own
// stream as well while it does, so the others' shared encode stays as it
// is.
//
// Encoder switching: a participant that starts speaking moves from the
// shared stream to its own encoder, and back when it has been out of the mix
// for WithEncoderHangover (1 s by default), so pauses between sentences do
// not flip it back and forth. Its decoder at the far end sees one RTP stream
// whose packets come from two encoders; Opus and G.722 decoders take that
// with at most a short, quiet transient (TestEncoderSwitch measures it),
// because (1) both encoders were fed the same audio up to the switch: an
// encoder that resumes after being idle (a participant's own one, or a
// shared one nobody listened to) is first primed with the full mix of the
// last four ticks, which is exactly what the participant heard then, and
// the output thrown away, so its look-ahead buffer, filter and resampler
// history hold the right audio instead of silence or whatever it encoded
// long ago; (2) the switch back happens only after the hangover, when the
// participant's own voice has been out of the mix for a second, so the two
// streams carry the same sound.
type Room struct {
	id  ID
	cfg config
	log *slog.Logger

	// tickMu is held by Tick for a whole tick and guards mx, the mixer's
	// private state. Participant callbacks run under it, so they may call
	// the methods below that take only mu, never Close.
	tickMu sync.Mutex
	mx     mixer

	// mu guards membership and room settings. Every event is published
	// under mu, so subscribers see them in the order they happened.
	mu              sync.Mutex
	members         map[ParticipantID]*member
	order           []*member // members in join order
	departed        []*member // left, not yet detached by the mixer
	streams         map[Format]*stream
	streamList      []*stream
	rates           []*rateMix
	gen             uint64 // bumped on any change the mixer must pick up
	locked          bool
	recording       bool
	maxParticipants int
	closed          bool
	emptySince      time.Time

	events hub
	fan    fanout

	ticks   atomic.Uint64
	encodes atomic.Uint64
	dropped atomic.Uint64
	skipped atomic.Uint64
	// sharedEncodes and ownEncodes split encodes (see countEncode).
	sharedEncodes atomic.Uint64
	ownEncodes    atomic.Uint64

	quit     chan struct{} // closed to stop the ticker goroutine
	quitOnce sync.Once
	loopDone chan struct{} // closed when the ticker goroutine has returned
	done     chan struct{} // closed when the room has closed
}

// NewRoom opens a room. Unless WithManualTick is given it starts the room's
// ticker goroutine, which Close stops and waits for. Most callers get rooms
// from a Manager instead.
func NewRoom(id ID, opts ...Option) *Room {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	r := &Room{
		id:              id,
		cfg:             cfg,
		log:             cfg.logger.With("component", "room", "room", string(id)),
		members:         make(map[ParticipantID]*member),
		streams:         make(map[Format]*stream),
		locked:          cfg.locked,
		maxParticipants: cfg.maxParticipants,
		quit:            make(chan struct{}),
		loopDone:        make(chan struct{}),
		done:            make(chan struct{}),
	}
	r.events.room = id
	if cfg.manual {
		close(r.loopDone)
		return r
	}
	go r.run()
	return r
}

// run is the room's clock goroutine: one Tick per 20 ms of wall-clock
// time until Close (or the empty-room grace period) stops it. A
// time.Ticker drops the ticks a starved process misses, and the room
// would fall behind the wall clock for good: recordings shorter than the
// time recorded, phones' jitter buffers drained by RTP timestamps that lag
// their arrival. So run keeps a schedule and catches up on missed frames
// in a burst of at most maxCatchUp ticks (which jitter buffers absorb);
// a longer stall is given up and counted (Stats.Skipped).
func (r *Room) run() {
	defer close(r.loopDone)
	next := firstTick(time.Now(), tickPhase())
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		ticks, skip := schedule(next, time.Now())
		for range ticks {
			r.clockTick(next)
			next = next.Add(media.FrameDuration)
		}
		if skip > 0 {
			r.skipped.Add(uint64(skip))
			if t := r.cfg.totals; t != nil {
				t.skipped.Add(uint64(skip))
			}
			next = next.Add(time.Duration(skip) * media.FrameDuration)
		}
		t.Reset(time.Until(next))
	}
}

// rooms counts the rooms started, for tickPhase.
var rooms atomic.Uint64

// tickPhase is where in the 20 ms frame the next room started ticks: the
// k-th room at the fractional part of k times the golden ratio, so any
// number of rooms spread evenly over the frame. Rooms created in step with
// the frame (callers of a conference dialled in by a script, or a meeting
// whose rooms all open on the hour) would otherwise all tick at the same
// instant, and the last of them start their ticks late.
func tickPhase() time.Duration {
	const golden = 0.6180339887498949
	k := rooms.Add(1)
	frac := float64(k)*golden - math.Floor(float64(k)*golden)
	return time.Duration(frac * float64(media.FrameDuration))
}

// firstTick is the first time after one frame from now at phase within
// the frame (of the wall clock's frames since the zero time).
func firstTick(now time.Time, phase time.Duration) time.Time {
	next := now.Truncate(media.FrameDuration).Add(phase)
	for next.Before(now.Add(media.FrameDuration)) {
		next = next.Add(media.FrameDuration)
	}
	return next
}

// clockTick runs the tick due at due for the room's clock, measuring it
// for the Totals when there are any.
func (r *Room) clockTick(due time.Time) {
	t := r.cfg.totals
	if t == nil {
		r.Tick(due)
		return
	}
	start := time.Now()
	r.Tick(due)
	t.countTick(due, start, time.Since(start))
}

// maxCatchUp bounds the ticks run back to back after a stall: 100 ms of
// audio at once, within what the participants' jitter buffers take.
const maxCatchUp = 5

// schedule says what to do at now for the frame due at next: how many
// ticks to run (those due, at most maxCatchUp) and how many frames to give
// up on when even that leaves the room behind.
func schedule(next, now time.Time) (ticks, skip int) {
	if now.Before(next) {
		return 0, 0
	}
	due := int(now.Sub(next)/media.FrameDuration) + 1
	if due <= maxCatchUp {
		return due, 0
	}
	return maxCatchUp, due - maxCatchUp
}

func (r *Room) stop() { r.quitOnce.Do(func() { close(r.quit) }) }

// ID returns the room's ID.
func (r *Room) ID() ID { return r.id }

// Done is closed when the room has closed, for goroutines that serve the
// room (a WHEP handler, an egress) to stop with it.
func (r *Room) Done() <-chan struct{} { return r.done }

// Join adds p to the room. It fails with ErrRoomClosed, ErrRoomLocked,
// ErrRoomFull, ErrParticipantExists, ErrInvalidParticipant or
// ErrUnsupportedFormat (wrapped). From the next tick on, the room reads p's
// audio and delivers its mix.
func (r *Room) Join(p Participant) error {
	if p == nil {
		return ErrInvalidParticipant
	}
	info := p.Info()
	if info.ID == "" {
		return fmt.Errorf("%w: empty participant id", ErrInvalidParticipant)
	}
	info.Format = info.Format.normalized()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.admitLocked(); err != nil {
		return err
	}
	if r.members[info.ID] != nil {
		return fmt.Errorf("join %s as %s: %w", r.id, info.ID, ErrParticipantExists)
	}
	st, err := r.streamLocked(info.Format)
	if err != nil {
		return fmt.Errorf("join %s: %w: %s: %w", r.id, ErrUnsupportedFormat, info.Format, err)
	}
	m := &member{p: p, info: info, joined: r.cfg.now(), shared: st}
	if a, ok := p.(Announcer); ok {
		m.ann, m.annFrame = a, new(media.Frame) // the mixer allocates nothing later
	}
	if nr, ok := p.(NativeReader); ok {
		m.native = nr
	}
	m.vad = vad{threshold: r.cfg.vadThreshold, hangover: r.cfg.vadHangover}
	m.level.Store(silentLevel) // nothing heard yet
	st.refs++
	r.members[info.ID] = m
	r.order = append(r.order, m)
	r.gen++
	r.events.publish(EventJoined, info.ID, m.joined)
	r.log.Debug("participant joined", "participant", string(info.ID), "kind", info.Kind.String(), "format", info.Format.String())
	return nil
}

// admitLocked returns Join's refusal that does not depend on who joins:
// ErrRoomClosed, ErrRoomLocked or ErrRoomFull (wrapped), or nil. Room.mu
// is held.
func (r *Room) admitLocked() error {
	switch {
	case r.closed:
		return fmt.Errorf("join %s: %w", r.id, ErrRoomClosed)
	case r.locked:
		return fmt.Errorf("join %s: %w", r.id, ErrRoomLocked)
	case r.maxParticipants > 0 && len(r.order) >= r.maxParticipants:
		return fmt.Errorf("join %s (%d participants): %w", r.id, len(r.order), ErrRoomFull)
	}
	return nil
}

// Admits reports whether the room would take one more participant now,
// with the error Join would fail with when not (ErrRoomClosed,
// ErrRoomLocked, ErrRoomFull, wrapped). The SIP bridge asks before it
// answers a call, so that a caller to a full room gets 486 Busy Here
// instead of an answered call that only says so. The answer can be stale
// by the time the participant joins; Join decides then.
func (r *Room) Admits() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.admitLocked()
}

// Leave removes the participant. The mixer detaches it at its next tick
// (Participant.Detached(nil)); until then it may still get one WriteMix.
func (r *Room) Leave(id ParticipantID) error { return r.remove(id, nil) }

// Kick removes the participant on an operator's behalf; it is detached with
// ErrParticipantRemoved.
func (r *Room) Kick(id ParticipantID) error { return r.remove(id, ErrParticipantRemoved) }

func (r *Room) remove(id ParticipantID, reason error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("leave %s: %w", r.id, ErrRoomClosed)
	}
	m := r.members[id]
	if m == nil {
		return fmt.Errorf("%s in %s: %w", id, r.id, ErrParticipantNotFound)
	}
	r.removeLocked(m, reason)
	return nil
}

// removeLocked takes m out of the room; the mixer detaches it with reason
// at its next tick. Room.mu is held.
func (r *Room) removeLocked(m *member, reason error) {
	id := m.info.ID
	delete(r.members, id)
	r.order = slices.DeleteFunc(r.order, func(o *member) bool { return o == m })
	m.gone, m.detachErr = true, reason
	m.shared.refs--
	r.departed = append(r.departed, m)
	r.gen++
	now := r.cfg.now()
	if m.speaking.Load() {
		r.events.publish(EventSpeakingStopped, id, now)
	}
	r.events.publish(EventLeft, id, now)
	r.log.Debug("participant left", "participant", string(id), "reason", reason)
}

// Mute mutes (true) or unmutes the participant on the server: while muted
// it contributes nothing to anyone's mix (its voice fades out within one
// tick) but still hears the room. Muted and Unmuted events fire on change.
func (r *Room) Mute(id ParticipantID, muted bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil {
		return fmt.Errorf("mute %s in %s: %w", id, r.id, ErrParticipantNotFound)
	}
	if m.muted.Swap(muted) == muted {
		return nil
	}
	t := EventUnmuted
	if muted {
		t = EventMuted
	}
	r.events.publish(t, id, r.cfg.now())
	return nil
}

// SetLocked locks (true) or unlocks the room: a locked room refuses joins
// with ErrRoomLocked and keeps everyone already in it.
func (r *Room) SetLocked(locked bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.locked == locked || r.closed {
		return
	}
	r.locked = locked
	t := EventUnlocked
	if locked {
		t = EventLocked
	}
	r.events.publish(t, "", r.cfg.now())
}

// SetRecording marks the room as being recorded (true) or not. The
// recorder (issue [4]) sets it when a recording of the room starts and
// stops; participants learn of it from Recording and the
// EventRecordingStarted and EventRecordingStopped events, so that a phone
// caller hears the recording notice whenever a recording starts, also in
// the middle of a call (consent to being recorded must be informed).
// Setting the state the room is already in publishes nothing.
func (r *Room) SetRecording(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recording == on || r.closed {
		return
	}
	r.recording = on
	t := EventRecordingStopped
	if on {
		t = EventRecordingStarted
	}
	r.events.publish(t, "", r.cfg.now())
}

// Recording reports whether the room is being recorded (SetRecording).
func (r *Room) Recording() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recording
}

// Locked reports whether the room refuses joins.
func (r *Room) Locked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.locked
}

// SetMaxParticipants changes the size limit (0: none). Participants already
// in the room stay even if there are more of them.
func (r *Room) SetMaxParticipants(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maxParticipants = max(n, 0)
}

// SetEmptyTimeout changes how long the room stays open once empty
// (WithEmptyTimeout; negative: until closed), counted from when it became
// empty: a configured room removed by a reload closes once its last
// participant has left.
func (r *Room) SetEmptyTimeout(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg.emptyTimeout = d
}

// ParticipantState is one row of the participant list.
type ParticipantState struct {
	ID     ParticipantID
	Name   string
	Kind   Kind
	Format Format
	// Muted is the server-side mute.
	Muted bool
	// Speaking is true while the participant's voice is active and it is
	// not muted (voice activity with hangover).
	Speaking bool
	// Level is the last frame's audio level as RFC 6464 §3 expresses it:
	// -dBov, 0 (loudest) to 127 (silence), measured before muting.
	Level uint8
	// Dropped counts mix packets the participant refused (queue full).
	Dropped uint64
	// Joined is when the participant joined.
	Joined time.Time
}

// Participants lists the participants in join order.
func (r *Room) Participants() []ParticipantState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ParticipantState, 0, len(r.order))
	for _, m := range r.order {
		out = append(out, ParticipantState{
			ID:       m.info.ID,
			Name:     m.info.Name,
			Kind:     m.info.Kind,
			Format:   m.info.Format,
			Muted:    m.muted.Load(),
			Speaking: m.speaking.Load(),
			Level:    uint8(m.level.Load()),
			Dropped:  m.dropped.Load(),
			Joined:   m.joined,
		})
	}
	return out
}

// Len returns the number of participants.
func (r *Room) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

// Stats are the room's counters since it opened, for metrics.
type Stats struct {
	// Ticks is the number of 20 ms mixing rounds.
	Ticks uint64
	// Encodes counts encoder calls, shared and own (priming included): the
	// cost decision 2 keeps down. SharedEncodes and OwnEncodes split it.
	Encodes, SharedEncodes, OwnEncodes uint64
	// Dropped counts mix packets participants refused.
	Dropped uint64
	// Skipped counts 20 ms frames the room's clock gave up on after a
	// stall longer than it catches up on (the process was starved of CPU).
	Skipped uint64
}

// Stats returns the room's counters.
func (r *Room) Stats() Stats {
	return Stats{Ticks: r.ticks.Load(), Encodes: r.encodes.Load(), SharedEncodes: r.sharedEncodes.Load(),
		OwnEncodes: r.ownEncodes.Load(), Dropped: r.dropped.Load(), Skipped: r.skipped.Load()}
}

// SubscribeEvents returns a subscription to the room's events with a buffer
// of size events (at least 1). A subscriber that falls behind loses events
// (counted by Dropped); the room never waits for it.
func (r *Room) SubscribeEvents(size int) *EventSub { return r.events.subscribe(size) }

// SubscribeMix returns a consumer of the room's full mix (48 kHz PCM, one
// MixFrame per tick) holding up to frames frames (at least 1). A consumer
// that falls behind loses frames (counted by Dropped); the mixer never
// waits for it.
func (r *Room) SubscribeMix(frames int) *MixConsumer { return r.fan.subscribe(frames) }

// Close closes the room: it stops the ticker goroutine and waits for it (or
// for ctx), detaches every participant with ErrRoomClosed, publishes
// EventRoomClosed, and ends event subscriptions and mix consumers. It is
// safe to call more than once and must not be called from a Participant's
// callbacks.
func (r *Room) Close(ctx context.Context) error {
	r.stop()
	select {
	case <-r.loopDone:
	case <-ctx.Done():
		return fmt.Errorf("close room %s: %w", r.id, ctx.Err())
	}
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	r.shutdown(ErrRoomClosed)
	return nil
}

// shutdown closes the room; the caller holds tickMu.
func (r *Room) shutdown(reason error) {
	if r.mx.closed {
		return
	}
	r.mx.closed = true
	r.mu.Lock()
	r.closed = true
	leaving := append(r.order, r.departed...)
	r.order, r.departed, r.members = nil, nil, nil
	streams, rates := r.streamList, r.rates
	r.streamList, r.rates, r.streams = nil, nil, nil
	r.events.publish(EventRoomClosed, "", r.cfg.now())
	r.mu.Unlock()
	r.stop()
	for _, m := range leaving {
		m.closeOwn()
		err := reason
		if m.gone {
			err = m.detachErr
		}
		m.p.Detached(err)
	}
	for _, st := range streams {
		_ = st.enc.Close()
	}
	for _, rm := range rates {
		_ = rm.res.Close()
	}
	if r.mx.up != nil {
		_ = r.mx.up.Close()
	}
	r.events.close()
	r.fan.close()
	close(r.done)
	r.log.Info("room closed", "ticks", r.ticks.Load(), "encodes", r.encodes.Load())
	if r.cfg.onClose != nil {
		r.cfg.onClose(r)
	}
}
