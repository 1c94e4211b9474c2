package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/internal/atomicfile"
)

// KeyStoreFileName is the key store's file in storage.dir.
const KeyStoreFileName = "keys.json"

// maxActiveKeys bounds the keys that are not revoked, so a runaway script
// cannot grow the file (read whole at every change) without limit.
const maxActiveKeys = 1000

// keyIDLen is the length of a key ID: the first 12 hex digits of the key's
// SHA-256 hash (48 bits), as the audit log has always named keys.
const keyIDLen = 12

// Key is an API key as the key store keeps it: everything about the key
// but the key itself, which exists only at its creator's. Hash is what
// authenticates; the rest is for people and for authorization.
type Key struct {
	// ID is the first keyIDLen hex digits of Hash; unique in the store.
	ID string `json:"id"`
	// Hash is "sha256:" and the 64 hex digits of the key's SHA-256.
	Hash string `json:"hash"`
	// Name is what the creator called the key, e.g. "billing export".
	Name string `json:"name"`
	// Role is what the key may do.
	Role Role `json:"role"`
	// Tenant is the tenant the key reaches, or AllTenants (admins only).
	Tenant string `json:"tenant"`
	// CreatedAt is when the key was made (UTC).
	CreatedAt time.Time `json:"created_at"`
	// CreatedBy is the ID of the key that made it.
	CreatedBy string `json:"created_by"`
	// RevokedAt is when the key was revoked; nil while it is valid.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// keyFile is the JSON document of the key store's file.
type keyFile struct {
	Version int   `json:"version"`
	Keys    []Key `json:"keys"`
}

// keyFileVersion is the format of keyFile; a file of another version is
// refused rather than misread.
const keyFileVersion = 1

// errKeyIDTaken means Add got a key whose ID another key has; the caller
// makes a new key.
var errKeyIDTaken = errors.New("key id taken")

// KeyStore keeps the API keys made through the admin API, as hashes, in
// one JSON file that every change replaces atomically (temp file, fsync,
// rename, fsync of the directory), readable by the owner only. The
// bootstrap keys of auth.admin_keys are not in it. It is safe for
// concurrent use; the node is the file's only writer (the CLI goes through
// the admin API).
//
// In a cluster the keys are shared through Redis (cluster.KeyRecords): the
// node pushes the keys it makes and revokes at once (Share) and merges
// with the other nodes' keys every few seconds (Sync, RunSync), so a key
// works on every node and a revocation reaches every node within one
// interval. The file stays each node's own copy, read at start-up: a node
// with Redis down still knows every key it has seen.
type KeyStore struct {
	path string // "" keeps the keys in memory only

	mu     sync.RWMutex
	keys   []Key          // in creation order
	byHash map[string]int // Hash → index in keys
	byID   map[string]int // ID → index in keys
	// dirty is set when keys changed but the file could not be written;
	// the next Sync writes it.
	dirty bool
	// shared is the cluster's store that Add and Revoke push to (Share).
	shared KeyRecords

	// pushMu orders the pushes to the shared store, so an older version
	// of a key never lands after a newer one from this node (keysync.go).
	pushMu sync.Mutex
}

// OpenKeyStore reads the key store at path (normally storage.dir/keys.json),
// or starts an empty one if the file does not exist yet; the file and its
// directory are made on the first change. An empty path keeps the keys in
// memory only (tests, and WithAdmin without WithKeyStore). A file that
// does not parse or holds an invalid key is an error: a node must not run
// with a key store it cannot read, where revoked keys might count as valid.
func OpenKeyStore(path string) (*KeyStore, error) {
	ks := &KeyStore{path: path}
	if path == "" {
		ks.index()
		return ks, nil
	}
	// A crash between temp file and rename leaves a temp file behind.
	removeTemps(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		ks.index()
		return ks, nil
	}
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("key store %s: %w", path, err)
	}
	if f.Version != keyFileVersion {
		return nil, fmt.Errorf("key store %s: version %d, want %d", path, f.Version, keyFileVersion)
	}
	for i, k := range f.Keys {
		if err := k.check(); err != nil {
			return nil, fmt.Errorf("key store %s: key %d: %w", path, i, err)
		}
	}
	ks.keys = f.Keys
	if dup := ks.index(); dup != "" {
		return nil, fmt.Errorf("key store %s: key id %s twice", path, dup)
	}
	return ks, nil
}

// check reports what makes k unfit for the store, if anything.
func (k Key) check() error {
	switch {
	case !configs.ValidAdminKeyHash(k.Hash):
		return errors.New("hash is not sha256: and 64 hex digits")
	case k.ID != keyIDOf(k.Hash):
		return errors.New("id is not the start of the hash")
	case !validKeyName(k.Name):
		return fmt.Errorf("name must be 1 to %d printable characters", maxKeyNameLen)
	case !k.Role.valid():
		return fmt.Errorf("role %q is not admin or viewer", k.Role)
	case k.Tenant == AllTenants && k.Role != RoleAdmin:
		return errors.New(`tenant "*" is only for admin keys`)
	case k.Tenant != AllTenants && !configs.ValidTenant(k.Tenant):
		return fmt.Errorf("tenant %q is not a tenant name", truncate(k.Tenant, 70))
	case k.CreatedAt.IsZero():
		return errors.New("no created_at")
	}
	return nil
}

// index rebuilds the maps from keys and returns an ID found twice, if any.
func (ks *KeyStore) index() (dup string) {
	ks.byHash = make(map[string]int, len(ks.keys))
	ks.byID = make(map[string]int, len(ks.keys))
	for i, k := range ks.keys {
		if _, ok := ks.byID[k.ID]; ok {
			dup = k.ID
		}
		ks.byHash[k.Hash], ks.byID[k.ID] = i, i
	}
	return dup
}

// keyIDOf is the ID of the key with hash h ("sha256:..."): its first
// keyIDLen hex digits.
func keyIDOf(h string) string {
	hex := strings.TrimPrefix(h, configs.AdminKeyPrefix)
	return hex[:min(keyIDLen, len(hex))]
}

// validKeyID reports whether s has the form of a key ID.
func validKeyID(s string) bool {
	if len(s) != keyIDLen {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// byHashOf returns the key whose hash is h, revoked or not.
func (ks *KeyStore) byHashOf(h string) (Key, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	i, ok := ks.byHash[h]
	if !ok {
		return Key{}, false
	}
	return ks.keys[i], true
}

// Get returns the key with ID id, revoked or not.
func (ks *KeyStore) Get(id string) (Key, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	i, ok := ks.byID[id]
	if !ok {
		return Key{}, false
	}
	return ks.keys[i], true
}

// List returns every key, revoked ones included, in creation order.
func (ks *KeyStore) List() []Key {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return slices.Clone(ks.keys)
}

// Add stores k and writes the file before it returns; the key is valid
// from then on, on this node at once and, when a shared store is attached
// (Share), on the others after their next Sync. It answers errKeyIDTaken
// when another key has k's ID, and refuses more than maxActiveKeys valid
// keys.
func (ks *KeyStore) Add(k Key) error {
	if err := ks.add(k); err != nil {
		return err
	}
	ks.pushShared(k.ID)
	return nil
}

func (ks *KeyStore) add(k Key) error {
	if err := k.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if _, ok := ks.byID[k.ID]; ok {
		return errKeyIDTaken
	}
	active := 0
	for _, o := range ks.keys {
		if o.RevokedAt == nil {
			active++
		}
	}
	if active >= maxActiveKeys {
		return fmt.Errorf("%w: already %d valid keys; revoke some first", ErrBadRequest, active)
	}
	next := append(slices.Clone(ks.keys), k)
	if err := ks.write(next); err != nil {
		return err
	}
	ks.keys, ks.dirty = next, false
	ks.index()
	return nil
}

// Revoke marks the key with ID id revoked at at and writes the file before
// it returns, so the key is refused from then on, here and after a
// restart. Revoking a revoked key changes nothing. ErrKeyNotFound when no
// key has that ID. When the file cannot be written, the key is refused
// all the same until the node restarts (a leaked key must not keep
// working because a disk is full), and the error says it was not saved;
// the next change that is saved, or the next Sync, saves it too. With a
// shared store attached (Share), the revocation is pushed there before
// Revoke returns, saved or not (when the push fails, the next Sync puts
// it), and other nodes refuse the key after their next Sync.
func (ks *KeyStore) Revoke(id string, at time.Time) (Key, error) {
	k, err := ks.revoke(id, at)
	if errors.Is(err, ErrKeyNotFound) {
		return k, err
	}
	ks.pushShared(id)
	return k, err
}

func (ks *KeyStore) revoke(id string, at time.Time) (Key, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	i, ok := ks.byID[id]
	if !ok {
		return Key{}, fmt.Errorf("%w: %s", ErrKeyNotFound, id)
	}
	if ks.keys[i].RevokedAt != nil {
		return ks.keys[i], nil
	}
	next := slices.Clone(ks.keys)
	at = at.UTC()
	next[i].RevokedAt = &at
	ks.keys = next
	if err := ks.write(next); err != nil {
		ks.dirty = true
		return next[i], fmt.Errorf("key %s revoked until the node restarts, but not saved: %w", id, err)
	}
	ks.dirty = false
	return next[i], nil
}

// write replaces the file with keys: a temp file in the same directory
// (0600, as os.CreateTemp makes it), fsync, rename over the old file, fsync
// of the directory so the rename survives a power cut. Nothing for a
// memory store.
func (ks *KeyStore) write(keys []Key) error {
	if ks.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(keyFile{Version: keyFileVersion, Keys: keys}, "", "  ")
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	dir := filepath.Dir(ks.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	return replaceFile(ks.path, append(b, '\n'))
}

// replaceFile atomically replaces path with data, readable by the owner
// only (atomicfile.Replace); its temp files start with ".tmp-<name>-".
func replaceFile(path string, data []byte) error {
	return atomicfile.Replace(path, data, ".tmp-"+filepath.Base(path)+"-*")
}

// removeTemps removes the files of dir whose names start with prefix: the
// temp files of replaceFile that a crash left behind.
func removeTemps(dir, prefix string) {
	entries, _ := os.ReadDir(dir) // a missing directory has none
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && e.Type().IsRegular() {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// syncDir fsyncs directory dir (atomicfile.SyncDir).
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }
