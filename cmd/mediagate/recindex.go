package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// recordingsIndex is the cluster's recordings index as the admin API
// reads it.
type recordingsIndex struct{ idx cluster.RecordingsIndex }

var _ api.RecordingsIndex = recordingsIndex{}

// Recording implements api.RecordingsIndex.
func (r recordingsIndex) Recording(ctx context.Context, id recorder.ID) (api.RecordingEntry, bool, error) {
	e, err := r.idx.Recording(ctx, string(id))
	if errors.Is(err, cluster.ErrNotFound) {
		return api.RecordingEntry{}, false, nil
	}
	if err != nil {
		return api.RecordingEntry{}, false, err
	}
	return apiEntry(e), true, nil
}

// Recordings implements api.RecordingsIndex: the index selects by tenant
// and room, the rest of f is applied here.
func (r recordingsIndex) Recordings(ctx context.Context, f recorder.Filter) ([]api.RecordingEntry, error) {
	es, err := r.idx.Recordings(ctx, cluster.RecordingFilter{Tenant: string(f.Tenant), Room: cluster.RoomID(f.Room)})
	if err != nil {
		return nil, err
	}
	out := make([]api.RecordingEntry, 0, len(es))
	for _, e := range es {
		a := apiEntry(e)
		if (f.State != "" && a.State != f.State) ||
			(!f.From.IsZero() && a.StartedAt.Before(f.From)) ||
			(!f.To.IsZero() && !a.StartedAt.Before(f.To)) ||
			(!f.ExpiresBefore.IsZero() && (a.State == recorder.StateDeleted || !a.ExpiresAt.Before(f.ExpiresBefore))) {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

func apiEntry(e cluster.RecordingEntry) api.RecordingEntry {
	return api.RecordingEntry{
		ID: recorder.ID(e.ID), Node: e.Node, Tenant: recorder.Tenant(e.Tenant), Room: room.ID(e.Room),
		State: recorder.State(e.State), StartedAt: e.StartedAt, ExpiresAt: e.ExpiresAt,
		Bytes: e.Bytes, Duration: e.Duration.Seconds(),
	}
}

// indexEntry is what the index keeps of manifest m.
func indexEntry(node cluster.NodeID, m recorder.Manifest) cluster.RecordingEntry {
	return cluster.RecordingEntry{
		ID: string(m.ID), Node: node, Tenant: string(m.Tenant), Room: cluster.RoomID(m.Room),
		State: string(m.State), StartedAt: m.StartedAt, ExpiresAt: m.ExpiresAt, Bytes: m.Bytes,
		Duration: time.Duration(m.Duration * float64(time.Second)),
	}
}

// indexSync keeps this node's recordings in the cluster's index: at once
// for each recorder event (start, end, deletion), and every resyncEvery
// for what changed without an event (extensions, holds, sizes) or was
// lost (Redis restarted empty). It puts only entries that differ from
// what it last put.
type indexSync struct {
	log     *slog.Logger
	node    cluster.NodeID
	rec     *recorder.Recorder
	idx     cluster.RecordingsIndex
	changed chan struct{}
	put     map[string]cluster.RecordingEntry
}

// resyncEvery is how often the whole local list is compared with what was
// put; an index that lost its keys is refilled within it.
const resyncEvery = 10 * time.Second

func newIndexSync(log *slog.Logger, node cluster.NodeID, rec *recorder.Recorder, idx cluster.RecordingsIndex) *indexSync {
	return &indexSync{log: log, node: node, rec: rec, idx: idx,
		changed: make(chan struct{}, 1), put: map[string]cluster.RecordingEntry{}}
}

// notify asks for a sync soon; it never blocks (the recorder calls it).
// Before the sync exists (the recorder's start-up recovery) it does
// nothing: the first sync takes everything.
func (s *indexSync) notify() {
	if s == nil {
		return
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// run syncs until ctx ends.
func (s *indexSync) run(ctx context.Context) {
	t := time.NewTicker(resyncEvery)
	defer t.Stop()
	for {
		s.sync(ctx, false)
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		case <-t.C:
			// Redis may have lost its keys (restart without persistence):
			// every while, check that ours are there.
			s.sync(ctx, true)
		}
	}
}

// sync puts the entries that changed since the last put. With verify it
// first counts this node's entries in the index and, when some are
// missing (Redis restarted empty), puts everything again.
func (s *indexSync) sync(ctx context.Context, verify bool) {
	local := s.rec.List(recorder.Filter{})
	if verify {
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		es, err := s.idx.Recordings(cctx, cluster.RecordingFilter{Node: s.node})
		cancel()
		if err == nil && len(es) < len(local) {
			clear(s.put)
		}
	}
	for _, m := range local {
		e := indexEntry(s.node, m)
		if last, ok := s.put[e.ID]; ok && last == e {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		err := s.idx.PutRecording(cctx, e)
		cancel()
		if err != nil { // Redis away: the next round tries again
			s.log.Debug("recordings index not updated; retrying", "err", err)
			return
		}
		s.put[e.ID] = e
	}
}
