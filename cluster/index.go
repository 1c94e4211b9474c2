package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// Recording states in RecordingEntry.State, as package recorder names them.
const (
	RecordingActive      = "recording"
	RecordingComplete    = "complete"
	RecordingInterrupted = "interrupted"
	RecordingDeleted     = "deleted"
)

// RecordingEntry is what the cluster knows about one recording: enough for
// the admin API on any node to list it and to send a download to the node
// whose disk holds it (decision 5). The manifest on that disk stays the
// record; the entry is an index of it.
//
// In JSON, times are RFC 3339 in UTC and Duration is an integer number of
// nanoseconds (time.Duration's own encoding).
type RecordingEntry struct {
	ID        string        `json:"id"`
	Node      NodeID        `json:"node"`
	Tenant    string        `json:"tenant"`
	Room      RoomID        `json:"room"`
	State     string        `json:"state"` // RecordingActive, RecordingComplete, ...
	StartedAt time.Time     `json:"started_at"`
	ExpiresAt time.Time     `json:"expires_at"`
	Bytes     int64         `json:"bytes"`
	Duration  time.Duration `json:"duration"`
}

// RecordingFilter selects entries for Recordings; an empty field matches
// everything.
type RecordingFilter struct {
	Tenant string
	Room   RoomID
	Node   NodeID
	// Limit is the most entries returned; 0 means no limit.
	Limit int
}

func (f RecordingFilter) match(e RecordingEntry) bool {
	return (f.Tenant == "" || e.Tenant == f.Tenant) &&
		(f.Room == "" || e.Room == f.Room) &&
		(f.Node == "" || e.Node == f.Node)
}

// RecordingsIndex lists every recording of the cluster and the node that
// holds it. Entries have no expiry: recordings outlive the nodes that made
// them, and deleting one is the recorder's decision.
type RecordingsIndex interface {
	// PutRecording inserts e, or replaces the entry with e's ID.
	PutRecording(ctx context.Context, e RecordingEntry) error
	// Recording returns the entry with id, or ErrNotFound.
	Recording(ctx context.Context, id string) (RecordingEntry, error)
	// Recordings returns the entries f selects, newest StartedAt first
	// (compared to the millisecond; ties by ID, descending).
	Recordings(ctx context.Context, f RecordingFilter) ([]RecordingEntry, error)
	// DeleteRecording removes the entry with id; removing an absent entry
	// is not an error.
	DeleteRecording(ctx context.Context, id string) error
}

var (
	_ RecordingsIndex = (*Memory)(nil)
	_ RecordingsIndex = (*Redis)(nil)
)

// normalize gives both implementations the same idea of an entry: times in
// UTC without a monotonic reading, as they come back from JSON.
func (e RecordingEntry) normalize() RecordingEntry {
	e.StartedAt = e.StartedAt.UTC().Round(0)
	e.ExpiresAt = e.ExpiresAt.UTC().Round(0)
	return e
}

// PutRecording implements RecordingsIndex.
func (m *Memory) PutRecording(_ context.Context, e RecordingEntry) error {
	if e.ID == "" {
		return errors.New("put recording: empty id")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[e.ID] = e.normalize()
	return nil
}

// Recording implements RecordingsIndex.
func (m *Memory) Recording(_ context.Context, id string) (RecordingEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.recs[id]
	if !ok {
		return RecordingEntry{}, fmt.Errorf("recording %q: %w", id, ErrNotFound)
	}
	return e, nil
}

// Recordings implements RecordingsIndex.
func (m *Memory) Recordings(_ context.Context, f RecordingFilter) ([]RecordingEntry, error) {
	// Sort small keys, not whole entries: a listing of a thousand
	// recordings then costs tens of microseconds, not half a millisecond.
	type ranked struct {
		ms int64
		id string
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]ranked, 0, len(m.recs))
	for id, e := range m.recs {
		if f.match(e) {
			keys = append(keys, ranked{e.StartedAt.UnixMilli(), id})
		}
	}
	slices.SortFunc(keys, func(a, b ranked) int { return cmp.Or(cmp.Compare(b.ms, a.ms), cmp.Compare(b.id, a.id)) })
	if f.Limit > 0 && len(keys) > f.Limit {
		keys = keys[:f.Limit]
	}
	out := make([]RecordingEntry, len(keys))
	for i, k := range keys {
		out[i] = m.recs[k.id]
	}
	return out, nil
}

// DeleteRecording implements RecordingsIndex.
func (m *Memory) DeleteRecording(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, id)
	return nil
}

func (r *Redis) recKey(id string) string { return r.cfg.prefix + ":rec:" + id }
func (r *Redis) recsKey() string         { return r.cfg.prefix + ":recs" }

// PutRecording implements RecordingsIndex: the entry as JSON and its ID in
// the sorted set by start time, in one transaction.
func (r *Redis) PutRecording(ctx context.Context, e RecordingEntry) error {
	if e.ID == "" {
		return errors.New("put recording: empty id")
	}
	e = e.normalize()
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("put recording %q: %w", e.ID, err)
	}
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.recKey(e.ID), b, 0)
		p.ZAdd(ctx, r.recsKey(), redis.Z{Score: float64(e.StartedAt.UnixMilli()), Member: e.ID})
		return nil
	})
	return backend("put recording", err)
}

// Recording implements RecordingsIndex.
func (r *Redis) Recording(ctx context.Context, id string) (RecordingEntry, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	v, err := r.c.Get(ctx, r.recKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return RecordingEntry{}, fmt.Errorf("recording %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return RecordingEntry{}, backend("recording", err)
	}
	var e RecordingEntry
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return RecordingEntry{}, fmt.Errorf("redis recording %q: %w: %w", id, ErrBackend, err)
	}
	return e, nil
}

// recordingsPage is how many IDs Recordings reads from the sorted set at
// a time: a filtered list walks the index page by page and stops as soon
// as it has Limit entries.
const recordingsPage = 256

// Recordings implements RecordingsIndex. Filters are applied on this node:
// the index is small (one entry per recording) and the admin API lists it
// rarely, so there is no secondary index per tenant or room to keep right.
// Pages are read by rank, so an entry added or removed during a long
// filtered walk can shift one page's boundary: a listing is a snapshot
// only for the first page.
func (r *Redis) Recordings(ctx context.Context, f RecordingFilter) ([]RecordingEntry, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	page := recordingsPage
	if f.Limit > 0 && f.Limit < page && f.Tenant == "" && f.Room == "" && f.Node == "" {
		page = f.Limit // unfiltered: exactly what is needed
	}
	var out []RecordingEntry
	for start := int64(0); ; start += int64(page) {
		ids, err := r.c.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: r.recsKey(), Start: start, Stop: start + int64(page) - 1, Rev: true,
		}).Result()
		if err != nil {
			return nil, backend("recordings", err)
		}
		if len(ids) == 0 {
			break
		}
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = r.recKey(id)
		}
		vals, err := r.c.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, backend("recordings", err)
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // deleted between the two reads
			}
			var e RecordingEntry
			if err := json.Unmarshal([]byte(s), &e); err != nil {
				return nil, fmt.Errorf("redis recording %q: %w: %w", ids[i], ErrBackend, err)
			}
			if !f.match(e) {
				continue
			}
			out = append(out, e)
			if f.Limit > 0 && len(out) == f.Limit {
				return out, nil
			}
		}
		if len(ids) < page {
			break
		}
	}
	return out, nil
}

// DeleteRecording implements RecordingsIndex.
func (r *Redis) DeleteRecording(ctx context.Context, id string) error {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.recKey(id))
		p.ZRem(ctx, r.recsKey(), id)
		return nil
	})
	return backend("delete recording", err)
}
