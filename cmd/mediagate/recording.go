package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// roomRecordings records rooms: it is the wiring between a room and the
// recorder, which never reaches into a room itself (DESIGN.md). For each
// recording it subscribes the recorder to the room's mix, feeds it the
// participants from the room's events, and marks the room as recorded
// (room.Room.SetRecording) from start to end, so that everyone in it, phone
// callers included, is told. It records the rooms whose entry sets auto_record
// whenever someone is in them. It implements api.RoomRecorder; one
// recording per room at a time.
//
// Goroutines: one follower per recording, ended by the recording's end;
// one watcher per open auto-recorded room, ended by the room's close or
// close. close stops the recordings and waits for both.
type roomRecordings struct {
	log      *slog.Logger
	rec      *recorder.Recorder
	rooms    *room.Manager
	tenantOf func(room.ID) recorder.Tenant
	policyOf func(room.ID) string
	// epochOf is the epoch under which this node hosts a room (0 when it
	// does not hold its lease); the recorder's fence checks it.
	epochOf func(room.ID) uint64
	auto    map[room.ID]bool
	// grace is how long an auto-recorded room stays recorded after its
	// last participant left (conference.empty_timeout).
	grace time.Duration

	ctx    context.Context // ends the watchers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	active map[room.ID]*roomRecording
	closed bool
}

var _ api.RoomRecorder = (*roomRecordings)(nil)

// roomRecording is one running recording of a room.
type roomRecording struct {
	rec  *recorder.Recording
	done chan struct{} // closed once the follower has unmarked the room
}

// followBuffer is the room events a follower or watcher may fall behind
// by before the room drops some (joins and leaves of a busy room).
const followBuffer = 256

// newRoomRecordings returns the recordings of the rooms a manager will
// hold; set rooms before the first room opens (the manager's WithOnOpen
// calls opened).
func newRoomRecordings(log *slog.Logger, rec *recorder.Recorder, tenantOf func(room.ID) recorder.Tenant,
	policyOf func(room.ID) string, auto []string, grace time.Duration) *roomRecordings {
	g := &roomRecordings{
		log: log.With("component", "recordings"), rec: rec, tenantOf: tenantOf, policyOf: policyOf,
		auto: map[room.ID]bool{}, grace: max(grace, 0), active: map[room.ID]*roomRecording{},
		epochOf: func(room.ID) uint64 { return 0 },
	}
	for _, id := range auto {
		g.auto[room.ID(id)] = true
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	return g
}

// StartRecording starts recording the open room id.
func (g *roomRecordings) StartRecording(id room.ID) (recorder.Manifest, error) {
	rm, err := g.rooms.Get(id)
	if err != nil {
		return recorder.Manifest{}, fmt.Errorf("room %s is not open on this node: %w", id, err)
	}
	rr, err := g.start(rm)
	if err != nil {
		return recorder.Manifest{}, err
	}
	return rr.rec.Manifest(), nil
}

// StopRecording stops the room's recording and returns its final manifest
// (interrupted when a write error had ended it before).
func (g *roomRecordings) StopRecording(ctx context.Context, id room.ID) (recorder.Manifest, error) {
	g.mu.Lock()
	rr := g.active[id]
	g.mu.Unlock()
	if rr == nil {
		return recorder.Manifest{}, fmt.Errorf("room %s: %w", id, api.ErrNotRecording)
	}
	if err := rr.rec.Stop(ctx); err != nil && !errors.Is(err, recorder.ErrInterrupted) {
		return recorder.Manifest{}, err
	}
	select {
	case <-rr.done:
	case <-ctx.Done():
		return recorder.Manifest{}, ctx.Err()
	}
	return rr.rec.Manifest(), nil
}

// start records rm from now on.
func (g *roomRecordings) start(rm *room.Room) (*roomRecording, error) {
	id := rm.ID()
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return nil, recorder.ErrClosed
	case g.active[id] != nil:
		return nil, fmt.Errorf("room %s: %w", id, api.ErrAlreadyRecording)
	}
	// Events first: whoever joins from now on is heard of, and whoever
	// was there is in Participants below (perhaps both; follow dedups).
	events := rm.SubscribeEvents(followBuffer)
	rec, err := g.rec.Start(id, g.tenantOf(id), g.policyOf(id), rm.SubscribeMix(recorder.RecommendedMixBuffer),
		recorder.WithEpoch(g.epochOf(id)))
	if err != nil {
		events.Close()
		return nil, err
	}
	started := rec.Manifest().StartedAt
	present := map[room.ParticipantID]bool{}
	for _, p := range rm.Participants() {
		present[p.ID] = true
		rec.Joined(recorder.ParticipantInfo{ID: p.ID, Name: p.Name, Kind: p.Kind}, later(p.Joined, started))
	}
	rr := &roomRecording{rec: rec, done: make(chan struct{})}
	g.active[id] = rr
	rm.SetRecording(true)
	g.wg.Add(1)
	go g.follow(rm, rr, events, present)
	return rr, nil
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// follow feeds the recording the room's joins and leaves until it ends,
// then unmarks the room.
func (g *roomRecordings) follow(rm *room.Room, rr *roomRecording, events *room.EventSub, present map[room.ParticipantID]bool) {
	defer g.wg.Done()
	defer events.Close()
	rec := rr.rec
	for ch := events.C(); ch != nil; {
		select {
		case <-rec.Done():
			ch = nil
		case ev, ok := <-ch:
			switch {
			case !ok: // the room closed: its mix ends, and the recording with it
				<-rec.Done()
				ch = nil
			case ev.Type == room.EventJoined && present[ev.Participant]:
				delete(present, ev.Participant) // listed at the start already
			case ev.Type == room.EventJoined:
				rec.Joined(g.participant(rm, ev.Participant), ev.Time)
			case ev.Type == room.EventLeft:
				delete(present, ev.Participant)
				rec.Left(ev.Participant, ev.Time)
			}
		}
	}
	rm.SetRecording(false)
	g.mu.Lock()
	if g.active[rm.ID()] == rr {
		delete(g.active, rm.ID())
	}
	g.mu.Unlock()
	close(rr.done)
	m := rec.Manifest()
	g.log.Info("room recording ended", "room", string(rm.ID()), "recording", string(m.ID), "state", string(m.State))
}

// participant describes a participant of rm for the manifest.
func (g *roomRecordings) participant(rm *room.Room, id room.ParticipantID) recorder.ParticipantInfo {
	for _, p := range rm.Participants() {
		if p.ID == id {
			return recorder.ParticipantInfo{ID: id, Name: p.Name, Kind: p.Kind}
		}
	}
	return recorder.ParticipantInfo{ID: id} // left again already
}

// opened is the room manager's WithOnOpen hook: rooms of
// auto_record (rooms.<id>.auto_record) get a watcher, subscribed before anyone joins.
func (g *roomRecordings) opened(rm *room.Room) {
	if !g.auto[rm.ID()] {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	sub := rm.SubscribeEvents(followBuffer)
	g.wg.Add(1)
	go g.watch(rm, sub)
}

// watch records an auto-recorded room whenever someone is in it: from a
// join into the empty room until it has been empty for the grace period,
// or until it closes.
func (g *roomRecordings) watch(rm *room.Room, sub *room.EventSub) {
	defer g.wg.Done()
	whileOccupied(g.ctx, rm, sub, g.grace, g.autoStart, g.autoStop)
}

// autoStop stops the auto-recording of rm, which has been empty for the
// grace period.
func (g *roomRecordings) autoStop(rm *room.Room) {
	ctx, cancel := context.WithTimeout(g.ctx, 10*time.Second)
	defer cancel()
	if _, err := g.StopRecording(ctx, rm.ID()); err != nil && !errors.Is(err, api.ErrNotRecording) {
		g.log.Error("auto-recording not stopped", "room", string(rm.ID()), "err", err)
	}
}

// autoStart starts an auto-recording of rm unless one runs.
func (g *roomRecordings) autoStart(rm *room.Room) {
	g.mu.Lock()
	running := g.active[rm.ID()] != nil
	g.mu.Unlock()
	if running {
		return
	}
	if _, err := g.start(rm); err != nil && !errors.Is(err, api.ErrAlreadyRecording) && !errors.Is(err, recorder.ErrClosed) {
		g.log.Error("auto-recording not started", "room", string(rm.ID()), "err", err)
	}
}

// close stops the watchers and every recording (each ends complete) and
// waits for them, or for ctx. The recorder's sweeper must have returned.
func (g *roomRecordings) close(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cancel()
	err := g.rec.Close(ctx)
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("recordings: %w", ctx.Err()))
	}
	return err
}
