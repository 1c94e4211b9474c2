package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/internal/redistest"
)

// openTestKeyStore opens a key store in a temporary storage.dir.
func openTestKeyStore(t *testing.T) (*KeyStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", KeyStoreFileName)
	ks, err := OpenKeyStore(path)
	require.NoError(t, err)
	return ks, path
}

// testKey is a valid key of tenant acme made at t0 plus created.
func testKey(t *testing.T, name string, created time.Duration) Key {
	t.Helper()
	_, hash := NewAdminKey()
	return Key{ID: keyIDOf(hash), Hash: hash, Name: name, Role: RoleViewer, Tenant: "acme",
		CreatedAt: t0.Add(created), CreatedBy: "0123456789ab"}
}

// byID returns ks's keys sorted by ID, to compare nodes whose creation
// orders differ.
func byID(ks *KeyStore) []Key {
	keys := ks.List()
	slices.SortFunc(keys, func(a, b Key) int { return strings.Compare(a.ID, b.ID) })
	return keys
}

// sharedKeys returns the records of shared, parsed.
func sharedKeys(t *testing.T, shared KeyRecords) map[string]Key {
	t.Helper()
	recs, err := shared.KeyRecords(context.Background())
	require.NoError(t, err)
	out := map[string]Key{}
	for id, doc := range recs {
		k, err := parseKeyRecord(id, doc)
		require.NoError(t, err)
		out[id] = k
	}
	return out
}

// sharedKey returns the record of shared with id, parsed.
func sharedKey(t *testing.T, shared KeyRecords, id string) Key {
	t.Helper()
	recs, err := shared.KeyRecords(context.Background())
	require.NoError(t, err)
	require.Contains(t, recs, id)
	k, err := parseKeyRecord(id, recs[id])
	require.NoError(t, err)
	return k
}

// TestKeySyncAcrossNodes: through the admin API of two nodes sharing one
// store, a key made on A works on B after B syncs; revoked on B, it is
// refused on B at once and on A after A syncs, and stays revoked in A's
// file.
func TestKeySyncAcrossNodes(t *testing.T) {
	shared := cluster.NewMemory()
	a, b := newAdminEnv(t), newAdminEnv(t)
	a.keys.Share(shared)
	b.keys.Share(shared)
	ctx := context.Background()

	key, id := a.newKey(t, "acme wall", RoleViewer, "acme")
	require.Equal(t, http.StatusOK, a.as(key, http.MethodGet, "/api/v1/keys/self", "").Code)
	requireProblem(t, b.as(key, http.MethodGet, "/api/v1/keys/self", ""), 401, "api-key-invalid")
	require.Nil(t, sharedKey(t, shared, id).RevokedAt, "Add pushed the key")

	require.NoError(t, b.keys.Sync(ctx, shared))
	w := b.as(key, http.MethodGet, "/api/v1/keys/self", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"name":"acme wall"`)
	require.Equal(t, byID(a.keys), byID(b.keys))

	require.Equal(t, http.StatusNoContent, b.admin(http.MethodDelete, "/api/v1/keys/"+id, "").Code)
	requireProblem(t, b.as(key, http.MethodGet, "/api/v1/keys/self", ""), 401, "api-key-revoked")
	require.NotNil(t, sharedKey(t, shared, id).RevokedAt, "Revoke pushed the revocation")
	require.NoError(t, a.keys.Sync(ctx, shared))
	requireProblem(t, a.as(key, http.MethodGet, "/api/v1/keys/self", ""), 401, "api-key-revoked")
	require.Equal(t, byID(a.keys), byID(b.keys))

	// A key made on A is revoked on B before B's next Sync: B looks.
	key2, id2 := a.newKey(t, "acme dashboard", RoleViewer, "acme")
	require.Equal(t, http.StatusNoContent, b.admin(http.MethodDelete, "/api/v1/keys/"+id2, "").Code)
	requireProblem(t, b.as(key2, http.MethodGet, "/api/v1/keys/self", ""), 401, "api-key-revoked")
	requireProblem(t, b.admin(http.MethodDelete, "/api/v1/keys/ffffffffffff", ""), 404, "key-not-found")
	require.NoError(t, a.keys.Sync(ctx, shared))
	requireProblem(t, a.as(key2, http.MethodGet, "/api/v1/keys/self", ""), 401, "api-key-revoked")

	again, err := OpenKeyStore(filepath.Join(a.dir, KeyStoreFileName))
	require.NoError(t, err)
	k, ok := again.Get(id)
	require.True(t, ok)
	require.NotNil(t, k.RevokedAt, "the revocation from B is in A's file")

	// In sync: another round changes nothing, anywhere.
	before, err := os.ReadFile(filepath.Join(a.dir, KeyStoreFileName))
	require.NoError(t, err)
	recs, err := shared.KeyRecords(ctx)
	require.NoError(t, err)
	require.NoError(t, a.keys.Sync(ctx, shared))
	require.NoError(t, b.keys.Sync(ctx, shared))
	after, err := os.ReadFile(filepath.Join(a.dir, KeyStoreFileName))
	require.NoError(t, err)
	require.Equal(t, before, after)
	recsAfter, err := shared.KeyRecords(ctx)
	require.NoError(t, err)
	require.Equal(t, recs, recsAfter)
}

// TestKeySyncMerge: keys are never lost, a revocation wins (the earliest),
// and keys added on both sides at once converge.
func TestKeySyncMerge(t *testing.T) {
	ctx := context.Background()

	t.Run("the earliest revocation wins", func(t *testing.T) {
		shared := cluster.NewMemory()
		a, _ := openTestKeyStore(t)
		b, _ := openTestKeyStore(t)
		k := testKey(t, "ops", 0)
		require.NoError(t, a.Add(k))
		require.NoError(t, a.Sync(ctx, shared))
		require.NoError(t, b.Sync(ctx, shared))
		// Revoked on both, apart, B first: whichever syncs first, B's time
		// wins everywhere.
		_, err := a.Revoke(k.ID, t0.Add(2*time.Hour))
		require.NoError(t, err)
		_, err = b.Revoke(k.ID, t0.Add(time.Hour))
		require.NoError(t, err)
		for _, ks := range []*KeyStore{a, b, a} {
			require.NoError(t, ks.Sync(ctx, shared))
		}
		for _, ks := range []*KeyStore{a, b} {
			got, ok := ks.Get(k.ID)
			require.True(t, ok)
			require.Equal(t, t0.Add(time.Hour), *got.RevokedAt)
		}
		require.Equal(t, t0.Add(time.Hour), *sharedKey(t, shared, k.ID).RevokedAt)

		// A shared record that lost the revocation (a node that pushed
		// before it learned of it) does not revive the key.
		doc, err := json.Marshal(k)
		require.NoError(t, err)
		require.NoError(t, shared.PutKeyRecord(ctx, k.ID, doc))
		require.NoError(t, a.Sync(ctx, shared))
		got, _ := a.Get(k.ID)
		require.Equal(t, t0.Add(time.Hour), *got.RevokedAt)
		require.Equal(t, t0.Add(time.Hour), *sharedKey(t, shared, k.ID).RevokedAt, "put back")
	})

	t.Run("concurrent adds converge", func(t *testing.T) {
		shared := cluster.NewMemory()
		a, _ := openTestKeyStore(t)
		b, _ := openTestKeyStore(t)
		a.Share(shared)
		b.Share(shared)
		const n = 20
		var wg sync.WaitGroup
		for i, ks := range []*KeyStore{a, b} {
			wg.Go(func() {
				for j := range n {
					if err := ks.Add(testKey(t, fmt.Sprintf("node %d key %d", i, j), time.Duration(j)*time.Second)); err != nil {
						t.Error(err)
					}
				}
			})
			wg.Go(func() {
				for range n {
					if err := ks.Sync(ctx, shared); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		require.NoError(t, a.Sync(ctx, shared))
		require.NoError(t, b.Sync(ctx, shared))
		require.Len(t, a.List(), 2*n)
		require.Equal(t, byID(a), byID(b))
		require.Len(t, sharedKeys(t, shared), 2*n)
	})

	t.Run("keys only in the file are shared", func(t *testing.T) {
		// A keys.json of version 1 as nodes wrote it before keys were
		// shared: it loads unchanged, and its keys go to the cluster.
		_, hash := NewAdminKey()
		id := keyIDOf(hash)
		path := filepath.Join(t.TempDir(), KeyStoreFileName)
		old := `{
  "version": 1,
  "keys": [
    {
      "id": "` + id + `",
      "hash": "` + hash + `",
      "name": "billing export",
      "role": "admin",
      "tenant": "acme",
      "created_at": "2025-03-01T12:00:00Z",
      "created_by": "0123456789ab",
      "revoked_at": "2025-03-02T12:00:00Z"
    }
  ]
}
`
		require.NoError(t, os.WriteFile(path, []byte(old), 0o600))
		ks, err := OpenKeyStore(path)
		require.NoError(t, err)
		shared := cluster.NewMemory()
		require.NoError(t, ks.Sync(ctx, shared))
		got := sharedKey(t, shared, id)
		require.Equal(t, "billing export", got.Name)
		require.Equal(t, t0.Add(24*time.Hour), *got.RevokedAt)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, old, string(b), "nothing new for the file")

		// A key from the cluster is written in the same format.
		other := testKey(t, "wall", time.Minute)
		doc, err := json.Marshal(other)
		require.NoError(t, err)
		require.NoError(t, shared.PutKeyRecord(ctx, other.ID, doc))
		require.NoError(t, ks.Sync(ctx, shared))
		b, err = os.ReadFile(path)
		require.NoError(t, err)
		var f keyFile
		require.NoError(t, json.Unmarshal(b, &f))
		require.Equal(t, keyFileVersion, f.Version)
		require.Equal(t, []string{id, other.ID}, []string{f.Keys[0].ID, f.Keys[1].ID})
		again, err := OpenKeyStore(path)
		require.NoError(t, err)
		require.Equal(t, ks.List(), again.List())
	})
}

// TestKeySyncBadRecords: what comes from the shared store is checked like
// the file; a bad record is skipped and named, never replaces a good
// local key, and never stops the good records.
func TestKeySyncBadRecords(t *testing.T) {
	ctx := context.Background()
	shared := cluster.NewMemory()
	ks, path := openTestKeyStore(t)
	k := testKey(t, "ops", 0)
	require.NoError(t, ks.Add(k))
	require.NoError(t, ks.Sync(ctx, shared))
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	good, err := json.Marshal(k)
	require.NoError(t, err)
	admin := k
	admin.Role, admin.Tenant = RoleAdmin, AllTenants // a forged promotion
	forged, err := json.Marshal(admin)
	require.NoError(t, err)
	other := testKey(t, "other", 0)
	otherDoc, err := json.Marshal(other)
	require.NoError(t, err)
	bad := map[string][]byte{
		"aaaaaaaaaaaa":    []byte(`{"id":"aaaaaaaaaaaa",`),                                    // does not parse
		"bbbbbbbbbbbb":    []byte(strings.Replace(string(otherDoc), `"viewer"`, `"root"`, 1)), // bad role
		"cccccccccccc":    otherDoc,                                                           // filed under another id
		"not an id\x00\n": good,
		k.ID:              forged,
	}
	for id, doc := range bad {
		require.NoError(t, shared.PutKeyRecord(ctx, id, doc))
	}
	err = ks.Sync(ctx, shared)
	require.Error(t, err)
	for _, id := range []string{"aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", `"not an id\x00\n"`, k.ID} {
		require.Contains(t, err.Error(), id)
	}
	require.NotContains(t, err.Error(), k.Hash, "errors never show a record's content")
	require.NotContains(t, err.Error(), other.Hash)

	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, before, after, "the file is untouched")
	require.Equal(t, []Key{k}, ks.List())
	got, ok := ks.byHashOf(k.Hash)
	require.True(t, ok)
	require.Equal(t, RoleViewer, got.Role)
	require.Equal(t, k, sharedKey(t, shared, k.ID), "the local key is put over the forged one")

	// Good records still come through beside bad ones.
	fresh := testKey(t, "fresh", time.Minute)
	doc, err := json.Marshal(fresh)
	require.NoError(t, err)
	require.NoError(t, shared.PutKeyRecord(ctx, fresh.ID, doc))
	require.Error(t, ks.Sync(ctx, shared), "the bad records are still there")
	_, ok = ks.Get(fresh.ID)
	require.True(t, ok)
	reopened, err := OpenKeyStore(path)
	require.NoError(t, err)
	require.Equal(t, ks.List(), reopened.List())
}

// TestKeySyncWriteFailure: a revocation from the cluster holds even when
// the file cannot be written, and the next Sync saves it.
func TestKeySyncWriteFailure(t *testing.T) {
	ctx := context.Background()
	shared := cluster.NewMemory()
	a, _ := openTestKeyStore(t)
	b, path := openTestKeyStore(t)
	k := testKey(t, "ops", 0)
	require.NoError(t, a.Add(k))
	require.NoError(t, a.Sync(ctx, shared))
	require.NoError(t, b.Sync(ctx, shared))
	_, err := a.Revoke(k.ID, t0.Add(time.Hour))
	require.NoError(t, err)
	require.NoError(t, a.Sync(ctx, shared))

	dir := filepath.Dir(path)
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.WriteFile(dir, nil, 0o600)) // a file where the directory should be
	require.ErrorContains(t, b.Sync(ctx, shared), "not saved")
	got, _ := b.Get(k.ID)
	require.NotNil(t, got.RevokedAt, "refused all the same")

	require.NoError(t, os.Remove(dir))
	require.NoError(t, b.Sync(ctx, shared))
	reopened, err := OpenKeyStore(path)
	require.NoError(t, err)
	got, _ = reopened.Get(k.ID)
	require.NotNil(t, got.RevokedAt, "saved by the next Sync")
}

// TestKeyRunSync: with RunSync on both nodes, a key made on one works on
// the other and a revocation reaches it, without anyone calling Sync.
func TestKeyRunSync(t *testing.T) {
	shared := cluster.NewMemory()
	a, _ := openTestKeyStore(t)
	b, _ := openTestKeyStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, ks := range []*KeyStore{a, b} {
		wg.Go(func() {
			if err := ks.RunSync(ctx, shared, 5*time.Millisecond, slog.New(slog.DiscardHandler)); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(wg.Wait)
	t.Cleanup(cancel)

	k := testKey(t, "ops", 0)
	require.NoError(t, a.Add(k))
	require.Eventually(t, func() bool {
		got, ok := b.byHashOf(k.Hash)
		return ok && got.RevokedAt == nil
	}, 5*time.Second, time.Millisecond)
	_, err := b.Revoke(k.ID, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, _ := a.byHashOf(k.Hash)
		return got.RevokedAt != nil
	}, 5*time.Second, time.Millisecond)
}

// TestKeySyncRedis: two nodes, each with its own client of a real Redis,
// share keys and revocations.
func TestKeySyncRedis(t *testing.T) {
	addr := redistest.Start(t).Addr
	ctx := context.Background()
	var stores [2]*KeyStore
	var clients [2]*cluster.Redis
	for i := range stores {
		clients[i] = cluster.NewRedis(addr)
		t.Cleanup(func() { require.NoError(t, clients[i].Close()) })
		stores[i], _ = openTestKeyStore(t)
		stores[i].Share(clients[i])
	}
	a, b := stores[0], stores[1]

	k := testKey(t, "ops", 0)
	require.NoError(t, a.Add(k))
	require.NoError(t, b.Sync(ctx, clients[1]))
	got, ok := b.byHashOf(k.Hash)
	require.True(t, ok)
	require.Nil(t, got.RevokedAt)

	_, err := b.Revoke(k.ID, t0.Add(time.Hour))
	require.NoError(t, err)
	require.NoError(t, a.Sync(ctx, clients[0]))
	got, _ = a.byHashOf(k.Hash)
	require.Equal(t, t0.Add(time.Hour), *got.RevokedAt)
	require.Equal(t, byID(a), byID(b))
}
