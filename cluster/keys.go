package cluster

import (
	"context"
	"errors"
	"maps"
	"slices"
)

// KeyRecords shares API key records (opaque JSON documents by key ID)
// between nodes, so a key made or revoked on one node holds on all. The
// cluster does not read the documents: what a key is and how two versions
// of one merge is package api's business. Records have no expiry: a
// revoked key must stay revoked.
type KeyRecords interface {
	// PutKeyRecord inserts doc under id, or replaces the record with id.
	PutKeyRecord(ctx context.Context, id string, doc []byte) error
	// KeyRecords returns every record, by ID.
	KeyRecords(ctx context.Context) (map[string][]byte, error)
}

var (
	_ KeyRecords = (*Memory)(nil)
	_ KeyRecords = (*Redis)(nil)
)

// errEmptyKeyID refuses a record without an ID, which no reader could
// name.
var errEmptyKeyID = errors.New("put key record: empty id")

// PutKeyRecord implements KeyRecords. It keeps a copy of doc.
func (m *Memory) PutKeyRecord(_ context.Context, id string, doc []byte) error {
	if id == "" {
		return errEmptyKeyID
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keyRecs[id] = slices.Clone(doc)
	return nil
}

// KeyRecords implements KeyRecords. The documents are copies.
func (m *Memory) KeyRecords(_ context.Context) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := maps.Clone(m.keyRecs)
	for id, doc := range out {
		out[id] = slices.Clone(doc)
	}
	return out, nil
}

func (r *Redis) keyRecordsKey() string { return r.cfg.prefix + ":keys" }

// PutKeyRecord implements KeyRecords: one field of the hash PREFIX:keys.
func (r *Redis) PutKeyRecord(ctx context.Context, id string, doc []byte) error {
	if id == "" {
		return errEmptyKeyID
	}
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	return backend("put key record", r.c.HSet(ctx, r.keyRecordsKey(), id, doc).Err())
}

// KeyRecords implements KeyRecords with one HGETALL: the key store is
// small (a thousand valid keys at most per node, see package api).
func (r *Redis) KeyRecords(ctx context.Context) (map[string][]byte, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	all, err := r.c.HGetAll(ctx, r.keyRecordsKey()).Result()
	if err != nil {
		return nil, backend("key records", err)
	}
	out := make(map[string][]byte, len(all))
	for id, doc := range all {
		out[id] = []byte(doc)
	}
	return out, nil
}
