package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/web"
)

// pageSecurityHeaders are set on the join page and its files: nothing but
// this origin may be loaded or connected to (no inline script or style
// either), the page cannot be framed, and no Referer leaves it (the page
// URL may carry an invitation token in its fragment, and the room name in
// its path).
var pageSecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
		"connect-src 'self'; img-src 'self'; media-src 'self'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"X-Frame-Options":              "DENY",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Permissions-Policy":           "microphone=(self), camera=(), geolocation=()",
}

// maxJoinBody bounds the token request body ({name, pin}).
const maxJoinBody = 4 << 10

// joinPage holds what the join page's handlers need.
type joinPage struct {
	mgr  *room.Manager
	auth *Auth
	pins *pinLimiter
	// lockouts share wrong PINs between the nodes of a cluster (nil: this
	// node's count only).
	lockouts PINLockouts
	// roomLockouts count wrong PINs per room over all clients and callers
	// (nil: no room limit).
	roomLockouts PINLockouts
	log          *slog.Logger
	csrf         *http.CrossOriginProtection
	// counts are the wrong PINs and lockouts, for the metrics.
	counts *pinCounters
}

// PINLockouts counts wrong PINs across the nodes of a cluster, with
// lockouts that grow for a key that keeps failing (cluster.Lockouts
// implements it). The join page uses it besides its own per-node count:
// that one stops a burst at once, this one stops guessing spread over
// nodes behind a load balancer.
type PINLockouts interface {
	// Fail records a wrong PIN for key and returns until when key is
	// locked (zero when it is not).
	Fail(ctx context.Context, key string) (time.Time, error)
	// Locked returns until when key is locked now (zero when it is not).
	Locked(ctx context.Context, key string) (time.Time, error)
	// Reset forgets key's failures, after a right PIN.
	Reset(ctx context.Context, key string) error
}

// WithPINLockouts shares the join page's wrong-PIN counts through l
// (with WithJoinPage). When l cannot be reached, the node's own count
// still applies.
func WithPINLockouts(l PINLockouts) Option {
	return func(s *Server) { s.pinLockouts = l }
}

// WithRoomPINLockouts counts the join page's wrong PINs per room, keyed
// by the room ID, in l, which the dial-in IVR counts into too
// (bridge.SessionDeps.RoomPINLockouts), so guessing spread over many
// clients and callers locks the room's PIN entry. While a room is locked,
// every PIN for it, the right one too, gets 429 too-many-attempts with
// Retry-After, as a locked-out client does; the room's lockout is logged
// once at warn with the room ID. When l cannot be reached, there is no
// room limit.
func WithRoomPINLockouts(l PINLockouts) Option {
	return func(s *Server) { s.roomPINLockouts = l }
}

// WithJoinPage mounts the browser join page of every room and the
// endpoints its script uses:
//
//	GET  /r/{room}               the page (404 with a "not found" page for unknown rooms)
//	POST /r/{room}/token         {name, pin} → {token, expires_at}; with a bearer token, a renewal
//	GET  /r/{room}/participants  {participants, recording}, for bearers of a token for the room
//	GET  /static/{file}          the page's script and styles (package web; also with WithAdmin)
//
// mgr supplies the rooms that are open now, auth the configured rooms, the
// tokens and the access policy. A room is known when it is configured or
// open; only configured rooms hand out tokens.
func WithJoinPage(mgr *room.Manager, auth *Auth) Option {
	return func(s *Server) {
		s.join = &joinPage{mgr: mgr, auth: auth, pins: newPINLimiter(), csrf: http.NewCrossOriginProtection()}
	}
}

// mountJoin registers the join page's routes.
func (s *Server) mountJoin() {
	s.join.lockouts = s.pinLockouts
	s.join.roomLockouts = s.roomPINLockouts
	s.join.log = s.log.With("component", "join")
	s.join.counts = &s.pinWeb
	s.mux.HandleFunc("GET /r/{room}", s.joinPageHTML)
	s.mux.HandleFunc("POST /r/{room}/token", s.joinToken)
	s.mux.HandleFunc("GET /r/{room}/participants", s.joinParticipants)
}

// lookup finds room id: its configuration, whether it is configured, and
// whether it is open on this node now. Invalid IDs are neither.
func (j *joinPage) lookup(id room.ID) (cfg configs.Room, configured, live bool) {
	if !configs.ValidRoomID(string(id)) {
		return configs.Room{}, false, false
	}
	cfg, configured = j.auth.Room(id)
	_, err := j.mgr.Get(id)
	return cfg, configured, err == nil
}

// access is how the page lets visitors into a room it knows.
func access(cfg configs.Room) web.Access {
	switch {
	case cfg.Open:
		return web.AccessOpen
	case cfg.PIN != "":
		return web.AccessPIN
	}
	return web.AccessInvite
}

// joinPageHTML serves the join page; unknown rooms get the page in its
// "room not found" state with status 404.
//
// In a cluster (WithRoomLocator), a room another node hosts redirects the
// browser there (307, to the same path and query; the browser keeps the
// fragment with an invitation token, RFC 9110 §10.2.2), so that the
// page's requests, its WHIP join above all, go to the owner and stay on
// one origin, which the page's Content-Security-Policy and the browsers'
// dropping of Authorization on cross-origin redirects require. When the
// owner cannot be known the page is served here: it is the same on every
// node, and the join itself reports the outage.
func (s *Server) joinPageHTML(w http.ResponseWriter, r *http.Request) {
	id := room.ID(r.PathValue("room"))
	if err := s.elsewhere(r, s.join.mgr, id); err != nil {
		var moved *room.MovedError
		if errors.As(err, &moved) && moved.URL != "" {
			s.writeProblem(w, r, err)
			return
		}
		s.log.WarnContext(r.Context(), "room owner unknown; serving the join page here", "room", id, "err", err)
	}
	cfg, configured, live := s.join.lookup(id)
	d := web.JoinData{Found: configured || live}
	code := http.StatusOK
	if d.Found {
		d.RoomID, d.RoomName, d.Access = string(id), cfg.DisplayName(string(id)), access(cfg)
	} else {
		code = http.StatusNotFound
	}
	var b bytes.Buffer
	if err := web.RenderJoin(&b, d); err != nil {
		s.writeProblem(w, r, fmt.Errorf("render join page: %w", err))
		return
	}
	h := w.Header()
	for k, v := range pageSecurityHeaders {
		h.Set(k, v)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = b.WriteTo(w)
}

// staticFile serves the pages' files with validators, so browsers
// revalidate with If-None-Match and get 304 (RFC 9110 §13.1.2).
func (s *Server) staticFile(w http.ResponseWriter, r *http.Request) {
	a, ok := web.Lookup(r.PathValue("file"))
	if !ok {
		s.writeProblem(w, r, fmt.Errorf("%w: no such file", errNotFound))
		return
	}
	h := w.Header()
	for k, v := range pageSecurityHeaders {
		h.Set(k, v)
	}
	h.Set("Content-Type", a.ContentType)
	h.Set("ETag", a.ETag)
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, a.Name, time.Time{}, bytes.NewReader(a.Body))
}

// errNotFound is a plain 404 for paths that name nothing.
var errNotFound = &Error{"not found", http.StatusNotFound, "not-found", "", false}

// tokenResponse is the answer of POST /r/{room}/token.
type tokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// joinToken hands out a join token for the room: for the room's PIN (or
// for nothing in an open room), or in exchange for a valid token for the
// room (a renewal with the same identity and grants). Any node of a
// cluster answers it for any room, without asking where the room is: the
// nodes share auth.token_secret and the rooms' configuration, so a token
// made here is good at the owner. (The courtesy check of a locked or full
// room is then only made for rooms open here; the WHIP join decides.)
func (s *Server) joinToken(w http.ResponseWriter, r *http.Request) {
	if err := s.join.csrf.Check(r); err != nil {
		s.writeProblem(w, r, fmt.Errorf("%w: %v", ErrCrossOrigin, err))
		return
	}
	id := room.ID(r.PathValue("room"))
	var (
		token string
		c     Claims
		err   error
	)
	if bearerToken(r) != "" {
		token, c, err = s.join.renew(r, id)
	} else {
		token, c, err = s.join.issue(w, r, id)
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{Token: token, ExpiresAt: c.ExpiresAt()})
}

// joinRequest is the body of POST /r/{room}/token.
type joinRequest struct {
	Name string `json:"name"`
	PIN  string `json:"pin"`
}

// issue checks a visitor's name and PIN against the room and issues a
// page token. Wrong PINs are counted per room and client network, and
// per room (WithRoomPINLockouts); a right PIN clears the client's count,
// not the room's.
func (j *joinPage) issue(w http.ResponseWriter, r *http.Request, id room.ID) (string, Claims, error) {
	cfg, configured, live := j.lookup(id)
	switch {
	case !configured && live:
		return "", Claims{}, fmt.Errorf("room %s: %w", id, ErrInvitationRequired)
	case !configured:
		return "", Claims{}, fmt.Errorf("room %s: %w", id, room.ErrNotFound)
	}
	req, err := decodeJoinRequest(w, r)
	if err != nil {
		return "", Claims{}, err
	}
	name := strings.TrimSpace(req.Name)
	if !validName(name, 1) {
		return "", Claims{}, fmt.Errorf("%w: name must be 1 to %d printable characters", ErrBadRequest, maxNameLen)
	}
	switch {
	case cfg.Open:
	case cfg.PIN != "":
		key := pinKey{room: id, client: clientPrefix(r.RemoteAddr)}
		if wait, ok := j.pins.try(key, j.auth.now()); !ok {
			j.counts.lockouts.Add(1)
			return "", Claims{}, &retryError{fmt.Errorf("room %s: %w", id, ErrTooManyAttempts), wait}
		}
		if wait := j.lockedOut(r.Context(), key); wait > 0 {
			j.counts.lockouts.Add(1)
			return "", Claims{}, &retryError{fmt.Errorf("room %s: %w", id, ErrTooManyAttempts), wait}
		}
		if wait := j.roomLockedOut(r.Context(), id); wait > 0 {
			j.counts.roomLockouts.Add(1)
			return "", Claims{}, &retryError{fmt.Errorf("room %s: %w", id, ErrTooManyAttempts), wait}
		}
		if !samePIN(req.PIN, cfg.PIN) {
			j.counts.failures.Add(1)
			j.failed(r.Context(), key)
			j.roomFailed(r.Context(), id)
			return "", Claims{}, fmt.Errorf("room %s: %w", id, ErrWrongPIN)
		}
		j.pins.forgive(key)
		j.forgiven(r.Context(), key)
	default:
		return "", Claims{}, fmt.Errorf("room %s: %w", id, ErrInvitationRequired)
	}
	if err := j.admissible(id, cfg); err != nil {
		return "", Claims{}, err
	}
	return j.auth.IssueToken(TokenRequest{
		Room:     id,
		Subject:  "web-" + rand.Text(),
		Name:     name,
		Grants:   Grants{Publish: true, Listen: true},
		Lifetime: j.auth.pageTTL,
	}, j.auth.now())
}

// renew trades a valid token for the room for a fresh one with the same
// identity and grants and the page token lifetime, so a participant's
// page can stay longer than one token lives.
func (j *joinPage) renew(r *http.Request, id room.ID) (string, Claims, error) {
	now := j.auth.now()
	c, err := j.auth.VerifyToken(bearerToken(r), id, now)
	if err != nil {
		return "", Claims{}, err
	}
	return j.auth.IssueToken(TokenRequest{
		Room: id, Subject: c.Subject, Name: c.Name, Grants: c.Grants, Lifetime: j.auth.pageTTL,
	}, now)
}

// admissible tells the visitor early that the room is locked or full,
// before the browser asks for the microphone. The WHIP join decides; this
// is only a courtesy.
func (j *joinPage) admissible(id room.ID, cfg configs.Room) error {
	rm, err := j.mgr.Get(id)
	if err != nil {
		return nil // not open yet: the first join opens it
	}
	if rm.Locked() {
		return fmt.Errorf("join %s: %w", id, room.ErrRoomLocked)
	}
	if n := rm.Len(); cfg.MaxParticipants > 0 && n >= cfg.MaxParticipants {
		return fmt.Errorf("join %s (%d participants): %w", id, n, room.ErrRoomFull)
	}
	return nil
}

// decodeJoinRequest reads the JSON body strictly: application/json, at
// most maxJoinBody bytes, no unknown fields, nothing after the object.
func decodeJoinRequest(w http.ResponseWriter, r *http.Request) (joinRequest, error) {
	var req joinRequest
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return req, ErrUnsupportedMediaType
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJoinBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, fmt.Errorf("%w: body over %d bytes", ErrBadRequest, maxJoinBody)
		}
		return req, fmt.Errorf("%w: body must be a JSON object {name, pin}", ErrBadRequest)
	}
	if dec.More() {
		return req, fmt.Errorf("%w: body must be a single JSON object", ErrBadRequest)
	}
	return req, nil
}

// samePIN compares PINs in constant time: their SHA-256 hashes are
// compared, so neither the contents nor the length of the room's PIN show
// in the answer's timing.
func samePIN(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// participantJSON is one row of GET /r/{room}/participants.
type participantJSON struct {
	// ID is an opaque, stable name for the row (see Auth.opaqueID).
	ID   string `json:"id"`
	Name string `json:"name"`
	// Kind is "webrtc", "phone" or "other".
	Kind     string `json:"kind"`
	Speaking bool   `json:"speaking"`
	// Muted is the server-side mute.
	Muted bool `json:"muted"`
	// Level is the last frame's audio level in dBov, -127 (silence) to 0
	// (RFC 6464 §3 levels with their sign).
	Level int `json:"level"`
}

// roomStateJSON is the answer of GET /r/{room}/participants: what the page
// shows of the room while the visitor is in it.
//
// It is an object rather than the bare list it used to be so that the
// recording flag rides on the poll the page makes every 500 ms anyway: the
// notice follows a recording within one poll, and list and flag come from
// one request, so they cannot disagree, and the page's requests do not
// double, as a second endpoint would make them. (A response header would
// be neither JSON nor obvious to clients or proxies.) The endpoint belongs
// to the page's script, which is served by the same binary, so no outside
// client relies on the old shape.
type roomStateJSON struct {
	// Participants are in join order; never null.
	Participants []participantJSON `json:"participants"`
	// Recording is whether the room is being recorded now
	// (room.Room.Recording): the page then shows the recording notice,
	// as phone callers hear it.
	Recording bool `json:"recording"`
}

// joinParticipants tells the page who is in the room, who speaks, how
// loud, and whether the room is recorded. It needs a token for the room
// (any grant), or nothing in an open room. A known room that is not open
// now has nobody in it and is not recorded.
//
// In a cluster, a room another node hosts answers 307 to the owner's list
// (503 with Retry-After when the owner cannot be known).
func (s *Server) joinParticipants(w http.ResponseWriter, r *http.Request) {
	id := room.ID(r.PathValue("room"))
	if err := s.elsewhere(r, s.join.mgr, id); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	_, configured, live := s.join.lookup(id)
	if !configured && !live {
		s.writeProblem(w, r, fmt.Errorf("room %s: %w", id, room.ErrNotFound))
		return
	}
	if _, err := s.join.auth.authenticate(r, id); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	out := roomStateJSON{Participants: []participantJSON{}}
	if rm, err := s.join.mgr.Get(id); err == nil {
		out.Recording = rm.Recording()
		for _, p := range rm.Participants() {
			out.Participants = append(out.Participants, participantJSON{
				ID:       s.join.auth.opaqueID(id, p.ID),
				Name:     p.Name,
				Kind:     p.Kind.String(),
				Speaking: p.Speaking,
				Muted:    p.Muted,
				Level:    -int(p.Level),
			})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// lockoutKey names k in the shared lockouts.
func (k pinKey) lockoutKey() string { return "pin:" + string(k.room) + ":" + k.client.String() }

// lockedOut returns how long k is locked out cluster-wide (0 when it is
// not, or when the lockouts cannot be read).
func (j *joinPage) lockedOut(ctx context.Context, k pinKey) time.Duration {
	if j.lockouts == nil {
		return 0
	}
	until, err := j.lockouts.Locked(ctx, k.lockoutKey())
	if err != nil || until.IsZero() {
		return 0
	}
	return max(until.Sub(j.auth.now()), time.Second)
}

// failed records a wrong PIN of k cluster-wide.
func (j *joinPage) failed(ctx context.Context, k pinKey) {
	if j.lockouts != nil {
		_, _ = j.lockouts.Fail(ctx, k.lockoutKey())
	}
}

// forgiven clears k's cluster-wide failures after a right PIN.
func (j *joinPage) forgiven(ctx context.Context, k pinKey) {
	if j.lockouts != nil {
		_ = j.lockouts.Reset(ctx, k.lockoutKey())
	}
}
