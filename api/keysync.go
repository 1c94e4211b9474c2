package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/mediagate/mediagate/cluster"
)

// KeyRecords is where the nodes of a cluster share their API keys: one
// JSON document per key ID, as this file writes them. *cluster.Redis and
// *cluster.Memory implement it; package api needs nothing else of them.
type KeyRecords interface {
	// PutKeyRecord inserts doc under id, or replaces the record with id.
	PutKeyRecord(ctx context.Context, id string, doc []byte) error
	// KeyRecords returns every record, by ID.
	KeyRecords(ctx context.Context) (map[string][]byte, error)
}

var (
	_ KeyRecords = (*cluster.Redis)(nil)
	_ KeyRecords = (*cluster.Memory)(nil)
)

// pushTimeout bounds the push of Add and Revoke, which have no context of
// their own; the Redis store has a shorter deadline of its own.
const pushTimeout = 5 * time.Second

// Share attaches shared, so that Add and Revoke push the key they change
// there before they return; nil detaches. RunSync attaches its store
// itself. A push that fails is not an error of Add or Revoke (the key is
// saved here): the next Sync puts what is missing or different.
func (ks *KeyStore) Share(shared KeyRecords) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.shared = shared
}

// pushShared puts this node's version of key id into the attached shared
// store, if any; failures are left to the next Sync.
func (ks *KeyStore) pushShared(id string) {
	ks.mu.RLock()
	shared := ks.shared
	ks.mu.RUnlock()
	if shared == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	ks.pushMu.Lock()
	defer ks.pushMu.Unlock()
	_ = ks.push(ctx, shared, id) // retried by the next Sync
}

// lookup is Get for an admin naming a key: a key this node does not know
// yet may have been made on another node since the last Sync, so with a
// shared store attached it syncs once before answering no. Only for
// authenticated requests: a stranger's guesses must not cost a read of
// the whole shared store each.
func (ks *KeyStore) lookup(ctx context.Context, id string) (Key, bool) {
	if k, ok := ks.Get(id); ok {
		return k, true
	}
	ks.mu.RLock()
	shared := ks.shared
	ks.mu.RUnlock()
	if shared == nil {
		return Key{}, false
	}
	_ = ks.Sync(ctx, shared) // a failure leaves the answer no
	return ks.Get(id)
}

// push puts this node's current version of key id into shared. The caller
// holds pushMu: the version is read under it, so pushes from this node
// land in the order of the changes.
func (ks *KeyStore) push(ctx context.Context, shared KeyRecords, id string) error {
	k, ok := ks.Get(id)
	if !ok {
		return nil
	}
	doc, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("key %s: %w", id, err)
	}
	if err := shared.PutKeyRecord(ctx, id, doc); err != nil {
		return fmt.Errorf("key %s: %w", id, err)
	}
	return nil
}

// Sync merges this node's keys with the shared store, both ways, so that
// every node ends up with the same keys:
//
//   - a valid record of shared that this node lacks is added here;
//   - a key of this node that shared lacks, or has otherwise, is put there;
//   - a key is never deleted, and nothing of it changes but RevokedAt,
//     where a revocation wins: the earliest RevokedAt of the two.
//
// The merge has no conflicts (every node arrives at the same result in any
// order), so a lost race between two nodes costs one more round, never a
// key: each node keeps its own revocations and puts them again.
//
// Records of shared are checked as strictly as the lines of the file. A
// record that does not parse, is invalid, is filed under another ID, or
// contradicts this node's key of that ID (other hash, name, role, tenant,
// creation) is skipped and named in the error; this node's key stays as
// it is and is put over the bad record. The changes are written to the
// file (atomically) before Sync returns; when that fails they hold in
// memory all the same (a revocation must not wait for a disk) and the next
// Sync tries again. The error joins everything that went wrong; the rest
// of the merge is done regardless.
func (ks *KeyStore) Sync(ctx context.Context, shared KeyRecords) error {
	recs, err := shared.KeyRecords(ctx)
	if err != nil {
		return fmt.Errorf("key store sync: %w", err)
	}
	ks.pushMu.Lock()
	defer ks.pushMu.Unlock()
	toPush, errs := ks.merge(recs)
	for _, id := range toPush {
		if err := ks.push(ctx, shared, id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("key store sync: %w", err)
	}
	return nil
}

// merge takes in the records of the shared store, writes the file when
// anything changed here, and returns the IDs of the keys to put there.
func (ks *KeyStore) merge(recs map[string][]byte) (toPush []string, errs []error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	next := slices.Clone(ks.keys)
	inShared := make(map[string]Key, len(recs))
	var added []Key
	changed := false
	for _, id := range slices.Sorted(maps.Keys(recs)) {
		k, err := parseKeyRecord(id, recs[id])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		i, ok := ks.byID[id]
		if !ok {
			added = append(added, k)
			inShared[id] = k
			continue
		}
		if !next[i].sameKey(k) {
			errs = append(errs, fmt.Errorf("key record %q in the shared store: not the key of this node with that id; skipped", id))
			continue
		}
		inShared[id] = k
		if r := earliest(next[i].RevokedAt, k.RevokedAt); !sameTime(r, next[i].RevokedAt) {
			next[i].RevokedAt = r
			changed = true
		}
	}
	slices.SortFunc(added, func(a, b Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	next = append(next, added...)
	changed = changed || len(added) > 0
	for _, k := range next {
		if s, ok := inShared[k.ID]; !ok || !sameTime(s.RevokedAt, k.RevokedAt) {
			toPush = append(toPush, k.ID)
		}
	}
	if changed || ks.dirty {
		if err := ks.write(next); err != nil {
			ks.dirty = true
			errs = append(errs, fmt.Errorf("keys merged but not saved: %w", err))
		} else {
			ks.dirty = false
		}
	}
	ks.keys = next
	ks.index()
	return toPush, errs
}

// RunSync attaches shared (Share) and syncs with it at once and then every
// interval until ctx ends, when it detaches and returns nil. A failed
// Sync is logged when its error differs from the last one (a bad record
// would otherwise be logged every interval), and the recovery once.
// Revocations made on other nodes take effect here within one interval.
func (ks *KeyStore) RunSync(ctx context.Context, shared KeyRecords, every time.Duration, log *slog.Logger) error {
	ks.Share(shared)
	defer ks.Share(nil)
	t := time.NewTicker(every)
	defer t.Stop()
	last := ""
	for {
		err := ks.Sync(ctx, shared)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && err.Error() != last:
			log.Warn("api keys not in sync with the cluster", "err", err)
			last = err.Error()
		case err == nil && last != "":
			log.Info("api keys in sync with the cluster again")
			last = ""
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// parseKeyRecord reads the record filed under id in the shared store.
// Errors name the record by a bounded, quoted id and never show its
// content.
func parseKeyRecord(id string, doc []byte) (Key, error) {
	name := truncate(id, 2*keyIDLen)
	var k Key
	if err := json.Unmarshal(doc, &k); err != nil {
		return Key{}, fmt.Errorf("key record %q in the shared store: %w; skipped", name, err)
	}
	if err := k.check(); err != nil {
		return Key{}, fmt.Errorf("key record %q in the shared store: %w; skipped", name, err)
	}
	if k.ID != id {
		return Key{}, fmt.Errorf("key record %q in the shared store: filed under another id; skipped", name)
	}
	return k, nil
}

// sameKey reports whether k and o are versions of one key: equal in
// everything but RevokedAt, which a revocation changes.
func (k Key) sameKey(o Key) bool {
	return k.ID == o.ID && k.Hash == o.Hash && k.Name == o.Name && k.Role == o.Role &&
		k.Tenant == o.Tenant && k.CreatedAt.Equal(o.CreatedAt) && k.CreatedBy == o.CreatedBy
}

// earliest is the revocation that wins: the earlier of two, or the one
// there is.
func earliest(a, b *time.Time) *time.Time {
	switch {
	case a == nil:
		return b
	case b == nil || !b.Before(*a):
		return a
	}
	return b
}

// sameTime reports whether a and b are both unset or the same instant.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
