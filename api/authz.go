package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
)

// Auth decides who may enter which room: it issues and verifies join
// tokens (token.go) and applies the rooms' access settings (open, PIN,
// invitation only) from the configuration. It is safe for concurrent use;
// the rooms it knows are set at NewAuth and replaced by SetRooms.
type Auth struct {
	key     []byte
	rooms   atomic.Pointer[map[room.ID]configs.Room]
	pageTTL time.Duration
	now     func() time.Time
}

// AuthOption changes one setting of an Auth.
type AuthOption func(*Auth)

// WithAuthClock sets where Check, the join page and the PIN limiter take
// the time from (time.Now by default), so tests can move it.
func WithAuthClock(now func() time.Time) AuthOption { return func(a *Auth) { a.now = now } }

// NewAuth returns an Auth for the auth section and the rooms section of the
// configuration. An empty cfg.TokenSecret means a random key for this
// process: tokens then die with a restart and other nodes cannot check
// them (see configs.Auth). A secret shorter than configs.MinTokenSecretLen
// or a page token lifetime outside (0, 24h] is refused.
func NewAuth(cfg configs.Auth, rooms map[string]configs.Room, opts ...AuthOption) (*Auth, error) {
	a := &Auth{
		key:     []byte(cfg.TokenSecret),
		pageTTL: cfg.PageTokenLifetime,
		now:     time.Now,
	}
	switch n := len(a.key); {
	case n == 0:
		a.key = make([]byte, 32)
		rand.Read(a.key) // never fails (crypto/rand documents it)
	case n < configs.MinTokenSecretLen:
		return nil, fmt.Errorf("auth.token_secret: must be at least %d bytes (RFC 7518 §3.2), got %d", configs.MinTokenSecretLen, n)
	}
	if a.pageTTL <= 0 || a.pageTTL > MaxTokenLifetime {
		return nil, fmt.Errorf("auth.page_token_lifetime: %s out of range (0s, 24h]", a.pageTTL)
	}
	a.SetRooms(rooms)
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// SetRooms replaces the configured rooms (the rooms section), for a
// configuration reload: PINs, open and invitation-only settings, names
// and tenants apply to the next request. Tokens already issued stay valid
// until they expire.
func (a *Auth) SetRooms(rooms map[string]configs.Room) {
	m := make(map[room.ID]configs.Room, len(rooms))
	for id, r := range rooms {
		m[room.ID(id)] = r
	}
	a.rooms.Store(&m)
}

// configured returns the configured rooms in force.
func (a *Auth) configured() map[room.ID]configs.Room { return *a.rooms.Load() }

// Room returns the configured settings of room id, and whether the
// operator configured it at all.
func (a *Auth) Room(id room.ID) (configs.Room, bool) {
	r, ok := a.configured()[id]
	return r, ok
}

// RoomTenant returns the tenant room id belongs to: its rooms.<id>.tenant
// (configs.DefaultTenant when unset), and configs.DefaultTenant for rooms
// the configuration does not list, which tokens open on first join. The
// recordings of a room are its tenant's.
func (a *Auth) RoomTenant(id room.ID) string {
	return a.configured()[id].TenantName()
}

// RoomIDs returns the IDs of the configured rooms, sorted.
func (a *Auth) RoomIDs() []room.ID {
	rooms := a.configured()
	ids := make([]room.ID, 0, len(rooms))
	for id := range rooms {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Identity is who a request is, once Check let it in.
type Identity struct {
	// Subject is the participant identity: the token's sub, or a random
	// "anon-..." for anonymous participants of open rooms. Use it as the
	// participant ID in the room.
	Subject string
	// Name is the display name from the token; empty for anonymous ones.
	Name string
	// Grants are what the request may do in the room.
	Grants Grants
	// Anonymous is true when the room is open and the request had no
	// token.
	Anonymous bool
	// Expires is when the token runs out (zero when anonymous); a
	// session outlives its token, the token only opens the door.
	Expires time.Time
}

// Check is the access policy for the WHIP (listenOnly false) and WHEP
// (listenOnly true) endpoints of room roomID:
//
//   - a bearer token (RFC 6750 §2.1) must be valid for the room and grant
//     publishing (WHIP) or listening (WHEP); an invalid token is refused
//     even in an open room, since its bearer meant to use it;
//   - without a token, an open room lets anyone in under a random
//     anonymous identity that may publish and listen but not present
//     video;
//   - otherwise 401 (ErrTokenMissing or a token error) or 403
//     (ErrTokenGrant).
//
// The errors carry HTTPStatus, ProblemType and WWWAuthenticate methods for
// the handler's answer.
func (a *Auth) Check(r *http.Request, roomID room.ID, listenOnly bool) (Identity, error) {
	id, err := a.authenticate(r, roomID)
	if err != nil {
		return Identity{}, err
	}
	need, ok := "publish", id.Grants.Publish
	if listenOnly {
		need, ok = "listen", id.Grants.Listen
	}
	if !ok {
		return Identity{}, fmt.Errorf("%w: no %s grant for room %s", ErrTokenGrant, need, roomID)
	}
	return id, nil
}

// authenticate finds who the request is in room roomID: the bearer of a
// valid token for it, or anybody in an open room. It checks no grant.
func (a *Auth) authenticate(r *http.Request, roomID room.ID) (Identity, error) {
	token := bearerToken(r)
	if token == "" {
		if cfg, ok := a.configured()[roomID]; ok && cfg.Open {
			return Identity{
				Subject:   "anon-" + rand.Text(),
				Grants:    Grants{Publish: true, Listen: true},
				Anonymous: true,
			}, nil
		}
		return Identity{}, fmt.Errorf("%w for room %s", ErrTokenMissing, roomID)
	}
	c, err := a.VerifyToken(token, roomID, a.now())
	if err != nil {
		return Identity{}, err
	}
	return Identity{Subject: c.Subject, Name: c.Name, Grants: c.Grants, Expires: c.ExpiresAt()}, nil
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110 §11.1),
// or "" when there is none or another scheme is used.
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// opaqueID names a participant in the public participant list without
// revealing its ID, which may be a SIP Call-ID or a WHIP session ID (the
// session URL is what a DELETE needs): a keyed hash, stable for the
// participant's stay, so the page can keep its rows.
func (a *Auth) opaqueID(roomID room.ID, id room.ParticipantID) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte("participant\x00" + string(roomID) + "\x00" + string(id)))
	return b64.EncodeToString(m.Sum(nil)[:12])
}
