package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
	"github.com/mediagate/mediagate/stream"
)

// nodeWebhooks turns what happens on the node into webhook events
// (docs/webhooks.md) for api.Webhooks, which queues and delivers them
// without ever blocking the caller: rooms opening and closing and their
// joins and leaves (a follower per open room, fed by the room's events),
// answered phone calls (bridge.SessionDeps.OnCall), recordings
// (recorder.Options.OnEvent) and live streams (roomStreams). Phone numbers
// leave masked; no PIN, key or stream key is in any event.
//
// The sources run whether or not endpoints are configured, so a reload
// (SetEndpoints) that adds the first endpoint hears of everything from
// then on.
//
// Goroutines: one follower per open room, ended by the room's close
// (its events channel closes). close waits for them, then closes the
// dispatcher, which delivers what is queued until ctx ends.
type nodeWebhooks struct {
	log   *slog.Logger
	hooks *api.Webhooks
	// rec looks up the manifests of recording events; set once the
	// recorder exists (events of its start-up repair come before).
	rec atomic.Pointer[recorder.Recorder]
	wg  sync.WaitGroup
}

// newNodeWebhooks starts the dispatcher for the webhooks section.
func newNodeWebhooks(cfg configs.Config, log *slog.Logger) *nodeWebhooks {
	hooks := api.NewWebhooks(log, webhookEndpoints(cfg.Webhooks),
		api.WithWebhookNode(cfg.NodeID()), api.WithWebhookUserAgent("mediagate/"+version))
	if n := len(cfg.Webhooks); n > 0 {
		log.Info("webhooks", "endpoints", hooks.Endpoints())
	}
	return &nodeWebhooks{log: log.With("component", "webhooks"), hooks: hooks}
}

// webhookEndpoints turns the webhooks section into the dispatcher's
// endpoints, in name order. SetEndpoints of the same dispatcher takes
// them on a reload: webhooks.SetEndpoints(webhookEndpoints(cfg.Webhooks)).
func webhookEndpoints(hooks map[string]configs.Webhook) []api.WebhookEndpoint {
	out := make([]api.WebhookEndpoint, 0, len(hooks))
	for _, name := range slices.Sorted(maps.Keys(hooks)) {
		h := hooks[name]
		ep := api.WebhookEndpoint{Name: name, URL: h.URL, Secret: h.Secret, Timeout: h.TimeoutOrDefault()}
		for _, e := range h.Events {
			ep.Events = append(ep.Events, api.WebhookEventType(e))
		}
		out = append(out, ep)
	}
	return out
}

// SetEndpoints replaces the endpoints after a configuration reload (see
// api.Webhooks.SetEndpoints: kept endpoints keep their queues).
func (w *nodeWebhooks) SetEndpoints(hooks map[string]configs.Webhook) {
	w.hooks.SetEndpoints(webhookEndpoints(hooks))
}

// roomOpened is part of the room manager's WithOnOpen hook: it publishes
// room.started and follows the room's joins and leaves until it closes
// (room.finished). It subscribes before anyone joins.
func (w *nodeWebhooks) roomOpened(rm *room.Room) {
	w.hooks.Publish(api.WebhookEvent{Type: api.WebhookRoomStarted, Room: rm.ID()})
	sub := rm.SubscribeEvents(followBuffer)
	w.wg.Add(1)
	go w.follow(rm, sub)
}

// follow publishes rm's joins and leaves, and room.finished when its
// events end.
func (w *nodeWebhooks) follow(rm *room.Room, sub *room.EventSub) {
	defer w.wg.Done()
	defer sub.Close()
	id := rm.ID()
	present := map[room.ParticipantID]api.WebhookParticipant{} // to describe who left
	for ev := range sub.C() {
		switch ev.Type {
		case room.EventJoined:
			p := participantOf(rm, ev.Participant)
			present[ev.Participant] = p
			w.hooks.Publish(api.WebhookEvent{Type: api.WebhookParticipantJoined, Room: id, CreatedAt: ev.Time, Participant: &p})
		case room.EventLeft:
			p, ok := present[ev.Participant]
			if !ok {
				p = api.WebhookParticipant{ID: ev.Participant}
			}
			delete(present, ev.Participant)
			w.hooks.Publish(api.WebhookEvent{Type: api.WebhookParticipantLeft, Room: id, CreatedAt: ev.Time, Participant: &p})
		}
	}
	if n := sub.Dropped(); n > 0 {
		w.log.Warn("room events missed by webhooks", "room", string(id), "dropped", n)
	}
	w.hooks.Publish(api.WebhookEvent{Type: api.WebhookRoomFinished, Room: id})
}

// participantOf describes participant pid of rm; its name is already
// masked for phone callers (bridge names them by masked number).
func participantOf(rm *room.Room, pid room.ParticipantID) api.WebhookParticipant {
	for _, p := range rm.Participants() {
		if p.ID == pid {
			return api.WebhookParticipant{ID: pid, Name: p.Name, Kind: p.Kind.String()}
		}
	}
	return api.WebhookParticipant{ID: pid} // left again already
}

// callEvent is bridge.SessionDeps.OnCall: call.started and call.ended.
func (w *nodeWebhooks) callEvent(ev bridge.CallEvent) {
	c := &api.WebhookCall{ID: string(ev.Info.ID), From: sip.MaskNumber(string(ev.Info.Caller)),
		To: sip.MaskNumber(string(ev.Info.Dialed)), Trunk: ev.Info.Trunk, Transport: ev.Info.Transport}
	typ := api.WebhookCallStarted
	if ev.Ended {
		typ, c.Duration = api.WebhookCallEnded, ev.Duration.Seconds()
	}
	w.hooks.Publish(api.WebhookEvent{Type: typ, Room: ev.Room, CreatedAt: ev.Time, Call: c})
}

// recordingEvent is part of recorder.Options.OnEvent: recording.started,
// .ended (complete or interrupted), .expiring and .deleted (with the
// receipt). Other recorder events (recovered at start-up, failures the
// sweeper retries) are for logs and metrics only.
func (w *nodeWebhooks) recordingEvent(ev recorder.Event) {
	var typ api.WebhookEventType
	switch ev.Type {
	case recorder.EventStarted:
		typ = api.WebhookRecordingStarted
	case recorder.EventCompleted, recorder.EventInterrupted:
		typ = api.WebhookRecordingEnded
	case recorder.EventExpiring:
		typ = api.WebhookRecordingExpiring
	case recorder.EventDeleted:
		typ = api.WebhookRecordingDeleted
	default:
		return
	}
	out := api.WebhookEvent{Type: typ, CreatedAt: ev.Time,
		Recording: &api.WebhookRecording{ID: ev.ID, Tenant: ev.Tenant, ExpiresAt: ev.ExpiresAt, Lead: ev.Lead.Seconds()}}
	if rec := w.rec.Load(); rec != nil {
		if m, err := rec.Get(ev.ID); err == nil {
			describeRecording(&out, m)
		}
	}
	w.hooks.Publish(out)
}

// describeRecording fills in what the manifest m tells of its recording,
// and the receipt of a deleted one.
func describeRecording(out *api.WebhookEvent, m recorder.Manifest) {
	r := out.Recording
	out.Room = m.Room
	r.State, r.StartedAt, r.EndedAt, r.Duration, r.ExpiresAt, r.Error = m.State, m.StartedAt, m.EndedAt, m.Duration, m.ExpiresAt, m.Error
	if d := m.Deletion; d != nil && out.Type == api.WebhookRecordingDeleted {
		out.Receipt = &api.WebhookReceipt{ID: d.Receipt, Recording: m.ID, Tenant: m.Tenant, Room: m.Room,
			SHA256: d.SHA256, Bytes: d.Bytes, ExpiresAt: m.ExpiresAt, DeletedAt: d.At, Reason: d.Reason, Node: m.Node}
	}
}

// egressStarted publishes egress.started for the new egress of room id;
// roomStreams calls it before adding the destinations, whose state
// changes follow as egress.updated.
func (w *nodeWebhooks) egressStarted(id room.ID) {
	if w == nil {
		return
	}
	w.hooks.Publish(api.WebhookEvent{Type: api.WebhookEgressStarted, Room: id, Egress: &api.WebhookEgress{}})
}

// egressEvent publishes a stream event: a destination's state change
// (egress.updated) or the egress's end (egress.ended). URLs and errors
// come masked from package stream.
func (w *nodeWebhooks) egressEvent(ev stream.Event) {
	if w == nil {
		return
	}
	out := api.WebhookEvent{Type: api.WebhookEgressEnded, Room: ev.Room, CreatedAt: ev.Time, Egress: &api.WebhookEgress{}}
	if ev.Type == stream.EventState {
		out.Type = api.WebhookEgressUpdated
		d := &api.WebhookDestination{ID: string(ev.Destination), URL: ev.URL, State: string(ev.State)}
		if ev.Err != nil {
			d.Error = ev.Err.Error()
		}
		out.Egress.Destination = d
	}
	w.hooks.Publish(out)
}

// webhookCloseGrace bounds how long shutdown waits for the endpoints to
// take what is queued: a receiver that hangs must not hold the node.
const webhookCloseGrace = 5 * time.Second

// close waits for the room followers (the rooms are closed by now), then
// closes the dispatcher: what is queued is delivered for at most
// webhookCloseGrace (or until ctx ends); what is left then is abandoned
// and logged, which is no error of the shutdown.
func (w *nodeWebhooks) close(ctx context.Context) error {
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("webhook room followers: %w", ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, webhookCloseGrace)
	defer cancel()
	if w.hooks.Close(ctx) != nil {
		for name, s := range w.hooks.Stats() {
			if s.Abandoned > 0 {
				w.log.Warn("webhook events abandoned at shutdown", "endpoint", name, "abandoned", s.Abandoned)
			}
		}
	}
	return err
}
