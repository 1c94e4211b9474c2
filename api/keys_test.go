package api

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// listKeys lists the keys with key and returns them by ID.
func listKeys(t *testing.T, e *adminEnv, key string) map[string]keyJSON {
	t.Helper()
	w := e.as(key, http.MethodGet, "/api/v1/keys", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var list []keyJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	out := map[string]keyJSON{}
	for _, k := range list {
		out[k.ID] = k
	}
	return out
}

// TestKeysAPI: a key is shown once, listed without secrets, works at once
// with its role and tenant, and is refused at once when revoked.
func TestKeysAPI(t *testing.T) {
	e := newAdminEnv(t)
	w := e.admin(http.MethodPost, "/api/v1/keys", `{"name":"acme dashboard","role":"viewer","tenant":"acme"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	var created map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &created))
	key := created["key"].(string)
	id := created["id"].(string)
	require.Regexp(t, `^mgk_[A-Z2-7]{52}$`, key)
	require.Equal(t, hashAdminKey(key)[7:19], id, "the ID is the start of the key's hash")
	bootstrapID := hashAdminKey(e.key)[7:19]
	require.Equal(t, map[string]any{
		"key": key, "id": id, "name": "acme dashboard", "role": "viewer", "tenant": "acme",
		"created_at": "2025-03-01T12:00:00Z", "created_by": bootstrapID,
	}, created)

	// The key works as a viewer of acme.
	p := e.as(key, http.MethodGet, "/api/v1/keys/self", "")
	require.Equal(t, http.StatusOK, p.Code)
	require.JSONEq(t, `{"id":"`+id+`","name":"acme dashboard","role":"viewer","tenant":"acme",
		"created_at":"2025-03-01T12:00:00Z","created_by":"`+bootstrapID+`"}`, p.Body.String())
	require.Equal(t, http.StatusOK, e.as(key, http.MethodGet, "/api/v1/rooms/board", "").Code)
	requireProblem(t, e.as(key, http.MethodGet, "/api/v1/keys", ""), 403, "forbidden")

	// Listings show neither the key nor its hash.
	w = e.admin(http.MethodGet, "/api/v1/keys", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.NotContains(t, w.Body.String(), key)
	require.NotContains(t, w.Body.String(), hashAdminKey(key)[7:])
	keys := listKeys(t, e, e.key)
	require.Len(t, keys, 3, "two bootstrap keys and the new one")
	require.Equal(t, keyJSON{ID: bootstrapID, Name: BootstrapKeyName, Role: RoleAdmin, Tenant: AllTenants, Bootstrap: true}, keys[bootstrapID])
	require.Nil(t, keys[id].RevokedAt)
	self := e.admin(http.MethodGet, "/api/v1/keys/self", "")
	require.JSONEq(t, `{"id":"`+bootstrapID+`","name":"auth.admin_keys","role":"admin","tenant":"*","bootstrap":true}`, self.Body.String())

	// Revoked: refused at once, listed with the time.
	e.now = e.now.Add(time.Hour)
	require.Equal(t, http.StatusNoContent, e.admin(http.MethodDelete, "/api/v1/keys/"+id, "").Code)
	requireProblem(t, e.as(key, http.MethodGet, "/api/v1/rooms", ""), 401, "api-key-revoked")
	requireProblem(t, e.as(key, http.MethodGet, "/api/v1/keys/self", ""), 401, "api-key-revoked")
	keys = listKeys(t, e, e.key)
	require.Equal(t, t0.Add(time.Hour), *keys[id].RevokedAt)
	e.now = e.now.Add(time.Hour)
	require.Equal(t, http.StatusNoContent, e.admin(http.MethodDelete, "/api/v1/keys/"+id, "").Code, "revoking twice is no error")
	require.Equal(t, t0.Add(time.Hour), *listKeys(t, e, e.key)[id].RevokedAt, "and keeps the first time")

	requireProblem(t, e.admin(http.MethodDelete, "/api/v1/keys/0123456789ab", ""), 404, "key-not-found")
	w = e.admin(http.MethodDelete, "/api/v1/keys/"+key, "")
	requireProblem(t, w, 404, "key-not-found")
	require.NotContains(t, w.Body.String(), key, "a key pasted for its ID is not echoed")
	requireProblem(t, e.admin(http.MethodDelete, "/api/v1/keys/"+bootstrapID, ""), 409, "bootstrap-key")
	require.Equal(t, http.StatusOK, e.admin(http.MethodGet, "/api/v1/rooms", "").Code, "the bootstrap key still works")
	require.NotContains(t, e.log.String(), key, "the node's log never holds a key")
}

// TestKeysBadRequests: every field of a key request is checked.
func TestKeysBadRequests(t *testing.T) {
	e := newAdminEnv(t)
	for _, tc := range []struct{ name, body, detail string }{
		{"no name", `{"role":"admin","tenant":"acme"}`, "name must be"},
		{"long name", `{"name":"` + strings.Repeat("x", 65) + `","role":"admin","tenant":"acme"}`, "name must be"},
		{"control in name", `{"name":"a\nb","role":"admin","tenant":"acme"}`, "name must be"},
		{"no role", `{"name":"n","tenant":"acme"}`, "role must be"},
		{"bad role", `{"name":"n","role":"root","tenant":"acme"}`, "role must be"},
		{"no tenant", `{"name":"n","role":"admin"}`, "tenant must be"},
		{"bad tenant", `{"name":"n","role":"admin","tenant":"a b"}`, "tenant must be"},
		{"viewer of every tenant", `{"name":"n","role":"viewer","tenant":"*"}`, `tenant "*" is only for admin keys`},
		{"unknown field", `{"name":"n","role":"admin","tenant":"acme","hash":"x"}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := requireProblem(t, e.admin(http.MethodPost, "/api/v1/keys", tc.body), 400, "bad-request")
			require.Contains(t, p.Detail, tc.detail)
		})
	}
	require.Empty(t, e.keys.List())
}

// TestKeysNoEscalation: a tenant's admin manages its tenant's keys and
// can never reach beyond it; viewers manage nothing.
func TestKeysNoEscalation(t *testing.T) {
	e := newAdminEnv(t)
	acme, acmeID := e.newKey(t, "acme ops", RoleAdmin, "acme")
	viewer, viewerID := e.newKey(t, "acme wall", RoleViewer, "acme")
	_, globexID := e.newKey(t, "globex ops", RoleAdmin, "globex")
	_, starID := e.newKey(t, "ops", RoleAdmin, AllTenants)

	for _, body := range []string{
		`{"name":"x","role":"admin","tenant":"*"}`,
		`{"name":"x","role":"admin","tenant":"globex"}`,
		`{"name":"x","role":"viewer","tenant":"globex"}`,
	} {
		requireProblem(t, e.as(acme, http.MethodPost, "/api/v1/keys", body), 403, "forbidden")
	}
	w := e.as(acme, http.MethodPost, "/api/v1/keys", `{"name":"acme 2","role":"admin","tenant":"acme"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var made newKeyJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &made))
	require.Equal(t, acmeID, made.CreatedBy)

	keys := listKeys(t, e, acme)
	require.Len(t, keys, 3, "acme's keys only: %v", keys)
	for _, id := range []string{acmeID, viewerID, made.ID} {
		require.Contains(t, keys, id)
	}

	requireProblem(t, e.as(acme, http.MethodDelete, "/api/v1/keys/"+globexID, ""), 403, "forbidden")
	requireProblem(t, e.as(acme, http.MethodDelete, "/api/v1/keys/"+starID, ""), 403, "forbidden")
	requireProblem(t, e.as(acme, http.MethodDelete, "/api/v1/keys/"+hashAdminKey(e.key)[7:19], ""), 403, "forbidden")
	requireProblem(t, e.as(viewer, http.MethodDelete, "/api/v1/keys/"+viewerID, ""), 403, "forbidden")
	requireProblem(t, e.as(viewer, http.MethodPost, "/api/v1/keys", `{"name":"x","role":"viewer","tenant":"acme"}`), 403, "forbidden")
	require.Equal(t, http.StatusNoContent, e.as(acme, http.MethodDelete, "/api/v1/keys/"+viewerID, "").Code)
	requireProblem(t, e.as(viewer, http.MethodGet, "/api/v1/rooms", ""), 401, "api-key-revoked")
	for _, id := range []string{globexID, starID} {
		k, ok := e.keys.Get(id)
		require.True(t, ok)
		require.Nil(t, k.RevokedAt, "%s untouched", id)
	}
}

// TestKeyStoreFile: the store survives a reopen, keeps hashes only, in a
// file only its owner reads, replaced without leftovers; a damaged file
// stops the node.
func TestKeyStoreFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, KeyStoreFileName)
	ks, err := OpenKeyStore(path)
	require.NoError(t, err)
	require.NoFileExists(t, path, "nothing written before the first key")

	key, hash := NewAdminKey()
	k := Key{ID: keyIDOf(hash), Hash: hash, Name: "ops", Role: RoleAdmin, Tenant: "acme", CreatedAt: t0, CreatedBy: "0123456789ab"}
	require.NoError(t, ks.Add(k))
	require.ErrorIs(t, ks.Add(k), errKeyIDTaken)
	_, hash2 := NewAdminKey()
	require.NoError(t, ks.Add(Key{ID: keyIDOf(hash2), Hash: hash2, Name: "wall", Role: RoleViewer, Tenant: "acme", CreatedAt: t0}))
	_, err = ks.Revoke(keyIDOf(hash2), t0.Add(time.Minute))
	require.NoError(t, err)

	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	st, err = os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(b), key)
	require.Contains(t, string(b), hash)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temp file left")

	again, err := OpenKeyStore(path)
	require.NoError(t, err)
	require.Equal(t, ks.List(), again.List())
	got, ok := again.byHashOf(hash2)
	require.True(t, ok)
	require.Equal(t, t0.Add(time.Minute), *got.RevokedAt, "revoked stays revoked after a restart")

	// A temp file of a crash is removed; damage is refused with the path.
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".tmp-keys.json-123"), []byte("{"), 0o600))
	_, err = OpenKeyStore(path)
	require.NoError(t, err)
	require.NoFileExists(t, filepath.Join(dir, ".tmp-keys.json-123"))
	for name, content := range map[string]string{
		"syntax":    `{"version":1,"keys":[`,
		"version":   `{"version":2,"keys":[]}`,
		"bad role":  strings.Replace(string(b), `"viewer"`, `"root"`, 1),
		"bad id":    strings.Replace(string(b), `"id": "`+keyIDOf(hash), `"id": "ffffffffffff`, 1),
		"duplicate": `{"version":1,"keys":[` + keyJSONLine(t, k) + `,` + keyJSONLine(t, k) + `]}`,
	} {
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		_, err := OpenKeyStore(path)
		require.Error(t, err, name)
		require.Contains(t, err.Error(), path, name)
	}
}

func keyJSONLine(t *testing.T, k Key) string {
	t.Helper()
	b, err := json.Marshal(k)
	require.NoError(t, err)
	return string(b)
}

// TestKeyStoreWriteFailure: a key that cannot be saved is not made; a
// revocation that cannot be saved holds until a restart and says so.
func TestKeyStoreWriteFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ks, err := OpenKeyStore(filepath.Join(dir, KeyStoreFileName))
	require.NoError(t, err)
	// A file where the directory should be fails even for root.
	require.NoError(t, os.WriteFile(dir, nil, 0o600))
	_, hash := NewAdminKey()
	require.Error(t, ks.Add(Key{ID: keyIDOf(hash), Hash: hash, Name: "x", Role: RoleAdmin, Tenant: "acme", CreatedAt: t0}))
	require.Empty(t, ks.List())
	_, ok := ks.byHashOf(hash)
	require.False(t, ok, "a key that was not saved does not authenticate")

	require.NoError(t, os.Remove(dir))
	require.NoError(t, ks.Add(Key{ID: keyIDOf(hash), Hash: hash, Name: "x", Role: RoleAdmin, Tenant: "acme", CreatedAt: t0}))
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.WriteFile(dir, nil, 0o600))
	_, err = ks.Revoke(keyIDOf(hash), t0)
	require.ErrorContains(t, err, "revoked until the node restarts, but not saved")
	k, ok := ks.byHashOf(hash)
	require.True(t, ok)
	require.NotNil(t, k.RevokedAt, "a leaked key is refused even when the disk fails")
}
