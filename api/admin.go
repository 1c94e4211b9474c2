package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
)

// The admin REST API (/api/v1) for the operator's platform and staff:
// rooms, their participants, and join tokens for the operator's own pages.
// Callers authenticate with an API key as a bearer token; the server knows
// only the keys' SHA-256 hashes (auth.admin_keys). Every call is audited in
// the log with the key's ID, never the key. Issue [4] extends this with
// keys of its own (roles, tenants), recordings and a persistent audit log.

// AdminKeyPrefix starts every API key NewAdminKey makes, so a key found in
// a paste or a log is recognisable as one.
const AdminKeyPrefix = "mgk_"

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 16 << 10

// NewAdminKey returns a new random API key (256 bits) and the hash line
// for auth.admin_keys.
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
	mgr    *room.Manager
	auth   *Auth
	hashes [][]byte // configured key hashes, "sha256:..." as bytes
}

// WithAdmin mounts the admin REST API:
//
//	GET  /api/v1/rooms                                   rooms open on this node and configured ones
//	GET  /api/v1/rooms/{room}                            one room with its participants
//	POST /api/v1/rooms/{room}/tokens                     a join token: {identity, name, grants, ttl_seconds}
//	POST /api/v1/rooms/{room}/lock | /unlock             refuse or allow new participants
//	POST /api/v1/rooms/{room}/participants/{id}/mute | /unmute   server-side mute
//
// keys are the auth.admin_keys hashes; with none, every call answers 401.
func WithAdmin(mgr *room.Manager, auth *Auth, keys []string) Option {
	return func(s *Server) {
		a := &admin{mgr: mgr, auth: auth}
		for _, k := range keys {
			a.hashes = append(a.hashes, []byte(k))
		}
		s.admin = a
	}
}

// mountAdmin registers the admin API's routes.
func (s *Server) mountAdmin() {
	s.mux.Handle("GET /api/v1/rooms", s.adminOnly("rooms.list", s.adminRooms))
	s.mux.Handle("GET /api/v1/rooms/{room}", s.adminOnly("rooms.get", s.adminRoom))
	s.mux.Handle("POST /api/v1/rooms/{room}/tokens", s.adminOnly("tokens.issue", s.adminToken))
	s.mux.Handle("POST /api/v1/rooms/{room}/lock", s.adminOnly("rooms.lock", s.adminLock(true)))
	s.mux.Handle("POST /api/v1/rooms/{room}/unlock", s.adminOnly("rooms.unlock", s.adminLock(false)))
	s.mux.Handle("POST /api/v1/rooms/{room}/participants/{participant}/mute", s.adminOnly("participants.mute", s.adminMute(true)))
	s.mux.Handle("POST /api/v1/rooms/{room}/participants/{participant}/unmute", s.adminOnly("participants.unmute", s.adminMute(false)))
	s.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		s.writeProblem(w, r, fmt.Errorf("%w: %s %s", ErrNoSuchResource, r.Method, r.URL.Path))
	})
}

// adminOnly authenticates the API key, then runs h and writes the audit
// entry: which key did what to which room, from where, with what result.
func (s *Server) adminOnly(action string, h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keyID, err := s.admin.authenticate(r)
		if err == nil {
			err = h(w, r)
		}
		attrs := []slog.Attr{
			slog.String("action", action),
			slog.String("key", keyID),
			slog.String("client", AnonymizeAddr(r.RemoteAddr)),
		}
		if v := r.PathValue("room"); v != "" {
			attrs = append(attrs, slog.String("room", v))
		}
		if v := r.PathValue("participant"); v != "" {
			attrs = append(attrs, slog.String("participant", v))
		}
		if v := r.PathValue("id"); v != "" {
			attrs = append(attrs, slog.String("recording", truncate(v, 40)))
		}
		if v := r.PathValue("tenant"); v != "" {
			attrs = append(attrs, slog.String("tenant", truncate(v, 70)))
		}
		if err != nil {
			attrs = append(attrs, slog.String("refused", err.Error()))
			s.writeProblem(w, r, err)
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "audit", attrs...)
	})
}

// authenticate checks the bearer API key against every configured hash in
// constant time and returns the key's ID for the audit log (the first 12
// hex digits of its hash).
func (a *admin) authenticate(r *http.Request) (string, error) {
	key := bearerToken(r)
	if key == "" {
		return "", ErrAdminKeyMissing
	}
	h := []byte(hashAdminKey(key))
	ok := 0
	for _, want := range a.hashes {
		ok |= subtle.ConstantTimeCompare(h, want)
	}
	id := string(h[len(configs.AdminKeyPrefix) : len(configs.AdminKeyPrefix)+12])
	if ok != 1 {
		return id, ErrAdminKeyInvalid
	}
	return id, nil
}

// roomJSON is a room as the admin API shows it.
type roomJSON struct {
	ID           string             `json:"id"`
	Name         string             `json:"name,omitempty"`
	Configured   bool               `json:"configured"`
	Open         bool               `json:"open"` // open on this node now
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
	out := roomJSON{ID: string(id), Name: cfg.Name, Configured: configured}
	rm, err := a.mgr.Get(id)
	if err != nil {
		return out
	}
	out.Open, out.Locked = true, rm.Locked()
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

func (s *Server) adminRooms(w http.ResponseWriter, _ *http.Request) error {
	ids := map[room.ID]bool{}
	for _, rm := range s.admin.mgr.List() {
		ids[rm.ID()] = true
	}
	for _, id := range s.admin.auth.RoomIDs() {
		ids[id] = true
	}
	sorted := make([]room.ID, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	out := make([]roomJSON, 0, len(sorted))
	for _, id := range sorted {
		out = append(out, s.admin.describe(id, false))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// knownRoom returns the room ID of the request if it is valid and the
// room is configured or open.
func (a *admin) knownRoom(r *http.Request) (room.ID, error) {
	id := room.ID(r.PathValue("room"))
	if !configs.ValidRoomID(string(id)) {
		return "", fmt.Errorf("%w: room id %q", ErrBadRequest, truncate(string(id), 70))
	}
	if _, ok := a.auth.Room(id); ok {
		return id, nil
	}
	if _, err := a.mgr.Get(id); err != nil {
		return "", fmt.Errorf("room %s: %w", id, room.ErrNotFound)
	}
	return id, nil
}

func (s *Server) adminRoom(w http.ResponseWriter, r *http.Request) error {
	id, err := s.admin.knownRoom(r)
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
// on its first join.
func (s *Server) adminToken(w http.ResponseWriter, r *http.Request) error {
	id := room.ID(r.PathValue("room"))
	if !configs.ValidRoomID(string(id)) {
		return fmt.Errorf("%w: room id %q", ErrBadRequest, truncate(string(id), 70))
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
		id, err := s.admin.knownRoom(r)
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
