package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
)

// The admin REST API (/api/v1) for the operator's platform and staff:
// rooms, their participants, join tokens for the operator's own pages, API
// keys (keys.go) and the audit log (auditquery.go). Callers authenticate
// with an API key as a bearer token; the server knows only the keys'
// SHA-256 hashes: the bootstrap keys of auth.admin_keys (role admin, all
// tenants) and the keys made through the API (KeyStore), each with a role
// and a tenant (authorize.go). Every call is audited (audit.go) with the
// key's ID, never the key.

// AdminKeyPrefix starts every API key NewAdminKey makes, so a key found in
// a paste or a log is recognisable as one.
const AdminKeyPrefix = "mgk_"

// adminKeyLen is the length of the keys NewAdminKey makes: the prefix and
// two rand.Text (26 base32 characters each).
const adminKeyLen = len(AdminKeyPrefix) + 52

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 16 << 10

// NewAdminKey returns a new random API key (256 bits) and its hash, the
// form auth.admin_keys and the key store keep.
func NewAdminKey() (key, hash string) {
	key = AdminKeyPrefix + rand.Text() + rand.Text()
	return key, hashAdminKey(key)
}

func hashAdminKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return configs.AdminKeyPrefix + hex.EncodeToString(sum[:])
}

// admin holds what the admin API's handlers need.
type admin struct {
	self         cluster.NodeID // this node in a cluster (WithNodes), for the rooms it has open
	mgr          *room.Manager
	auth         *Auth
	hashes       [][]byte // bootstrap key hashes, "sha256:..." as bytes
	bootstrapIDs []string // their key IDs, in configuration order
	keys         *KeyStore
}

// WithAdmin mounts the admin REST API:
//
//	GET  /api/v1/rooms                                   rooms of the key's tenant open on this node (every node of a cluster) and configured ones
//	GET  /api/v1/rooms/{room}                            one room with its participants
//	POST /api/v1/rooms/{room}/tokens                     a join token: {identity, name, grants, ttl_seconds}
//	POST /api/v1/rooms/{room}/lock | /unlock             refuse or allow new participants
//	POST /api/v1/rooms/{room}/participants/{id}/mute | /unmute   server-side mute
//	GET  /api/v1/nodes                                   the live nodes of the cluster (cluster.go; this one alone without WithNodes)
//	... /api/v1/keys                                     API keys (keys.go)
//	GET  /api/v1/audit                                   the audit log (with WithAuditLog)
//	GET  /api/v1/openapi.json                            this API's OpenAPI 3.1 document (openapi.go), without a key
//	GET  /admin                                          the admin page (adminpage.go), which uses the routes above
//
// keys are the auth.admin_keys hashes, the bootstrap keys. The keys made
// through the API live in the KeyStore of WithKeyStore, or in memory
// without one.
func WithAdmin(mgr *room.Manager, auth *Auth, keys []string) Option {
	return func(s *Server) {
		a := &admin{mgr: mgr, auth: auth}
		for _, k := range keys {
			a.hashes = append(a.hashes, []byte(k))
			if id := keyIDOf(k); !slices.Contains(a.bootstrapIDs, id) {
				a.bootstrapIDs = append(a.bootstrapIDs, id)
			}
		}
		s.admin = a
	}
}

// WithKeyStore keeps the API keys made through the admin API in ks
// (normally OpenKeyStore(storage.dir/keys.json)).
func WithKeyStore(ks *KeyStore) Option { return func(s *Server) { s.keyStore = ks } }

// WithAuditLog writes every admin API request's audit entry to l as well
// as to the node's log, and mounts GET /api/v1/audit to read it.
func WithAuditLog(l *AuditLog) Option { return func(s *Server) { s.audit = l } }

// mountAdmin registers the admin API's routes.
func (s *Server) mountAdmin() {
	s.admin.keys = s.keyStore
	s.admin.self = s.cluster.self // "" on a node on its own: no "node" in room listings
	if s.admin.keys == nil {
		s.admin.keys, _ = OpenKeyStore("") // a memory store cannot fail
	}
	s.mux.Handle("GET /api/v1/rooms", s.adminOnly("rooms.list", s.adminRooms))
	s.mux.Handle("GET /api/v1/rooms/{room}", s.adminOnly("rooms.get", s.hosted(false, s.adminRoom)))
	s.mux.Handle("POST /api/v1/rooms/{room}/tokens", s.adminOnly("tokens.issue", s.adminToken))
	s.mux.Handle("POST /api/v1/rooms/{room}/lock", s.adminOnly("rooms.lock", s.hosted(true, s.adminLock(true))))
	s.mux.Handle("POST /api/v1/rooms/{room}/unlock", s.adminOnly("rooms.unlock", s.hosted(true, s.adminLock(false))))
	s.mux.Handle("POST /api/v1/rooms/{room}/participants/{participant}/mute", s.adminOnly("participants.mute", s.hosted(true, s.adminMute(true))))
	s.mux.Handle("POST /api/v1/rooms/{room}/participants/{participant}/unmute", s.adminOnly("participants.unmute", s.hosted(true, s.adminMute(false))))
	s.mux.Handle("GET /api/v1/nodes", s.adminOnly("nodes.list", s.adminNodes))
	s.mountKeys()
	if s.audit != nil {
		s.mux.Handle("GET /api/v1/audit", s.adminOnly("audit.list", s.adminAudit))
	}
	s.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		s.writeProblem(w, r, fmt.Errorf("%w: %s %s", ErrNoSuchResource, r.Method, r.URL.Path))
	})
}

// adminOnly authenticates the API key, puts its Principal in the request
// context, runs h and writes the audit entry: which key did what to which
// resource of which tenant, from where, with what result. action must be
// in the audit class table (auditClasses): adminOnly panics at mount
// otherwise, so that no endpoint is kept for a guessed time.
func (s *Server) adminOnly(action string, h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	if _, ok := AuditClassOf(action); !ok {
		panic("api: admin action " + action + " has no audit class; add it to auditClasses")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		note := &auditNote{}
		p, err := s.admin.authenticate(r)
		authenticated := err == nil
		if authenticated {
			ctx := context.WithValue(withPrincipal(r.Context(), p), auditNoteKey{}, note)
			r = r.WithContext(ctx)
			err = h(sw, r)
		}
		aborted := errors.Is(err, errAborted)
		if err != nil && !aborted {
			s.writeProblem(sw, r, err)
		}
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		s.writeAudit(r, action, p, authenticated, note, sw.code, err)
		if aborted {
			panic(http.ErrAbortHandler) // a forwarded answer broke off: so must ours
		}
	})
}

// authenticate finds the API key of the request: a bootstrap key (checked
// against every configured hash in constant time) or a valid key of the
// key store (looked up by its hash, which tells an attacker nothing he
// could use: he cannot choose hashes). The Principal of a refused key
// still carries its ID for the audit entry when the key has our form, but
// never for anything else (a password sent by mistake must not leave even
// part of its hash).
func (a *admin) authenticate(r *http.Request) (Principal, error) {
	key := bearerToken(r)
	if key == "" {
		return Principal{}, ErrAdminKeyMissing
	}
	h := hashAdminKey(key)
	ok := 0
	for _, want := range a.hashes {
		ok |= subtle.ConstantTimeCompare([]byte(h), want)
	}
	id := keyIDOf(h)
	if ok == 1 {
		return Principal{KeyID: id, Name: BootstrapKeyName, Role: RoleAdmin, Tenant: AllTenants}, nil
	}
	k, found := a.keys.byHashOf(h)
	switch {
	case found && k.RevokedAt == nil:
		return Principal{KeyID: k.ID, Name: k.Name, Role: k.Role, Tenant: k.Tenant}, nil
	case found:
		return Principal{KeyID: k.ID}, ErrAdminKeyRevoked
	case len(key) == adminKeyLen && strings.HasPrefix(key, AdminKeyPrefix):
		return Principal{KeyID: id}, ErrAdminKeyInvalid
	}
	return Principal{}, ErrAdminKeyInvalid
}

// isBootstrap reports whether id is the ID of a bootstrap key.
func (a *admin) isBootstrap(id string) bool { return slices.Contains(a.bootstrapIDs, id) }

// roomJSON is a room as the admin API shows it.
type roomJSON struct {
	ID           string             `json:"id"`
	Name         string             `json:"name,omitempty"`
	Tenant       string             `json:"tenant"`
	Configured   bool               `json:"configured"`
	Open         bool               `json:"open"`           // open now (on this node, or in a cluster on Node)
	Node         string             `json:"node,omitempty"` // the node it is open on
	Locked       bool               `json:"locked"`
	Count        int                `json:"participant_count"`
	Participants []adminParticipant `json:"participants,omitempty"`
}

// adminParticipant is a participant as the admin API shows it.
type adminParticipant struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Speaking bool      `json:"speaking"`
	Muted    bool      `json:"muted"`
	Level    int       `json:"level"` // dBov, -127 (silence) to 0
	Joined   time.Time `json:"joined_at"`
}

func (a *admin) describe(id room.ID, withParticipants bool) roomJSON {
	cfg, configured := a.auth.Room(id)
	out := roomJSON{ID: string(id), Name: cfg.Name, Tenant: a.auth.RoomTenant(id), Configured: configured}
	rm, err := a.mgr.Get(id)
	if err != nil {
		return out
	}
	out.Open, out.Locked, out.Node = true, rm.Locked(), string(a.self)
	ps := rm.Participants()
	out.Count = len(ps)
	if withParticipants {
		out.Participants = make([]adminParticipant, 0, len(ps))
		for _, p := range ps {
			out.Participants = append(out.Participants, adminParticipant{
				ID: string(p.ID), Name: p.Name, Kind: p.Kind.String(),
				Speaking: p.Speaking, Muted: p.Muted, Level: -int(p.Level), Joined: p.Joined,
			})
		}
	}
	return out
}

// adminRooms lists the rooms of the key's tenant (every room for
// AllTenants keys) that are configured or open on this node.
func (s *Server) adminRooms(w http.ResponseWriter, r *http.Request) error {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return ErrAdminKeyMissing
	}
	ids := map[room.ID]bool{}
	for _, rm := range s.admin.mgr.List() {
		ids[rm.ID()] = true
	}
	for _, id := range s.admin.auth.RoomIDs() {
		ids[id] = true
	}
	sorted := make([]room.ID, 0, len(ids))
	for id := range ids {
		if p.Sees(s.admin.auth.RoomTenant(id)) {
			sorted = append(sorted, id)
		}
	}
	slices.Sort(sorted)
	out := make([]roomJSON, 0, len(sorted))
	for _, id := range sorted {
		out = append(out, s.admin.describe(id, false))
	}
	if s.fanningOut(r) {
		var err error
		if out, err = s.roomsElsewhere(r, out); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// roomsElsewhere adds the rooms the other live nodes list to this node's
// (sorted) list: a room open on another node is shown as that node has
// it. A node that does not answer is logged; its rooms are missing from
// the list (the answer stays a plain array, as on one node).
func (s *Server) roomsElsewhere(r *http.Request, local []roomJSON) ([]roomJSON, error) {
	answers, _, err := s.askOthers(r, "/api/v1/rooms", nil)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]roomJSON, len(local))
	for _, rm := range local {
		byID[rm.ID] = rm
	}
	for _, a := range answers {
		var rooms []roomJSON
		if a.err == nil && json.Unmarshal(a.body, &rooms) != nil {
			a.err = errors.New("answered something else than rooms")
		}
		if a.err != nil {
			s.log.WarnContext(r.Context(), "rooms of a node missing from the list", "node", a.node, "err", a.err)
			continue
		}
		for _, rm := range rooms {
			if have, ok := byID[rm.ID]; !ok || rm.Open && !have.Open {
				byID[rm.ID] = rm
			}
		}
	}
	return slices.SortedFunc(maps.Values(byID), func(a, b roomJSON) int { return strings.Compare(a.ID, b.ID) }), nil
}

// knownRoom returns the room ID of the request if it is valid, the room
// is configured or open, and the key may read it (write false) or change
// it (write true).
func (s *Server) knownRoom(r *http.Request, write bool) (room.ID, error) {
	id, err := roomOf(r)
	if err != nil {
		return "", err
	}
	if _, ok := s.admin.auth.Room(id); !ok {
		if _, err := s.admin.mgr.Get(id); err != nil {
			return "", fmt.Errorf("room %s: %w", id, room.ErrNotFound)
		}
	}
	auditTarget(r, string(id))
	return id, s.authorize(r, s.admin.auth.RoomTenant(id), write)
}

// roomOf returns the request's room ID if it is a valid one.
func roomOf(r *http.Request) (room.ID, error) {
	id := room.ID(r.PathValue("room"))
	if !configs.ValidRoomID(string(id)) {
		return "", fmt.Errorf("%w: room id %q", ErrBadRequest, truncate(string(id), 70))
	}
	return id, nil
}

func (s *Server) adminRoom(w http.ResponseWriter, r *http.Request) error {
	id, err := s.knownRoom(r, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.admin.describe(id, true))
	return nil
}

// tokenRequest is the body of POST /api/v1/rooms/{room}/tokens.
type tokenRequest struct {
	Identity   string `json:"identity"`
	Name       string `json:"name"`
	Grants     Grants `json:"grants"`
	TTLSeconds int    `json:"ttl_seconds"`
}

// adminToken issues a join token for the operator's platform, which hands
// it to its user's browser (as /r/{room}#token=... or to its own WHIP
// client). Any valid room ID will do: a room that is not configured opens
// on its first join, as a room of configs.DefaultTenant.
func (s *Server) adminToken(w http.ResponseWriter, r *http.Request) error {
	id, err := roomOf(r)
	if err != nil {
		return err
	}
	auditTarget(r, string(id))
	if err := s.authorize(r, s.admin.auth.RoomTenant(id), true); err != nil {
		return err
	}
	var req tokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if !req.Grants.Publish && !req.Grants.Listen {
		return fmt.Errorf("%w: grants must allow publish or listen", ErrTokenRequest)
	}
	ttl := time.Duration(req.TTLSeconds) * time.Second
	if req.TTLSeconds == 0 {
		ttl = s.admin.auth.pageTTL
	}
	token, c, err := s.admin.auth.IssueToken(TokenRequest{
		Room: id, Subject: req.Identity, Name: req.Name, Grants: req.Grants, Lifetime: ttl,
	}, s.admin.auth.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tokenResponse{Token: token, ExpiresAt: c.ExpiresAt()})
	return nil
}

// onOpenRoom returns a handler that applies change to the request's room
// if it is open on this node, and answers 204.
func (s *Server) onOpenRoom(change func(rm *room.Room, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := s.knownRoom(r, true)
		if err != nil {
			return err
		}
		rm, err := s.admin.mgr.Get(id)
		if err != nil {
			return fmt.Errorf("room %s is not open: %w", id, err)
		}
		if err := change(rm, r); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Server) adminLock(locked bool) func(w http.ResponseWriter, r *http.Request) error {
	return s.onOpenRoom(func(rm *room.Room, _ *http.Request) error {
		rm.SetLocked(locked)
		return nil
	})
}

func (s *Server) adminMute(muted bool) func(w http.ResponseWriter, r *http.Request) error {
	return s.onOpenRoom(func(rm *room.Room, r *http.Request) error {
		return rm.Mute(room.ParticipantID(r.PathValue("participant")), muted)
	})
}

// decodeJSON reads a JSON request body into v strictly: the right media
// type, a bounded size, no unknown fields, one value.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fmt.Errorf("%w: want application/json", ErrUnsupportedMediaType)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("%w: body over %d bytes", ErrBadRequest, maxAdminBody)
		}
		return fmt.Errorf("%w: %s", ErrBadRequest, strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return fmt.Errorf("%w: more than one JSON value", ErrBadRequest)
	}
	return nil
}
