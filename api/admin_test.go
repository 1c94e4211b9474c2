package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
)

// adminEnv is a Server with the admin API over a real room.Manager, one
// bootstrap admin key, a key store and an audit log in a temporary
// directory on the env's clock, and the node's log captured.
type adminEnv struct {
	*joinEnv
	key   string // a bootstrap key: admin of every tenant
	log   *bytes.Buffer
	dir   string // storage.dir
	keys  *KeyStore
	audit *AuditLog
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	e := &adminEnv{joinEnv: newJoinEnv(t), log: &bytes.Buffer{}, dir: t.TempDir()}
	key, hash := NewAdminKey()
	other, otherHash := NewAdminKey()
	require.NotEqual(t, key, other)
	e.key = key
	log := slog.New(slog.NewTextHandler(e.log, nil))
	var err error
	e.keys, err = OpenKeyStore(filepath.Join(e.dir, KeyStoreFileName))
	require.NoError(t, err)
	e.audit, err = OpenAuditLog(filepath.Join(e.dir, "audit"), log, WithAuditClock(func() time.Time { return e.now }))
	require.NoError(t, err)
	e.h = New(log, WithJoinPage(e.mgr, e.auth), WithAdmin(e.mgr, e.auth, []string{otherHash, hash}),
		WithKeyStore(e.keys), WithAuditLog(e.audit)).Handler()
	return e
}

// admin sends an admin request with the env's bootstrap key.
func (e *adminEnv) admin(method, path, body string) *httptest.ResponseRecorder {
	return e.as(e.key, method, path, body)
}

// as sends an admin request with key.
func (e *adminEnv) as(key, method, path, body string) *httptest.ResponseRecorder {
	return e.do(method, path, body, "Authorization", "Bearer "+key, "Content-Type", "application/json")
}

// newKey makes a key through the API with the bootstrap key and returns
// the key and its ID.
func (e *adminEnv) newKey(t *testing.T, name string, role Role, tenant string) (key, id string) {
	t.Helper()
	body, err := json.Marshal(keyRequest{Name: name, Role: role, Tenant: tenant})
	require.NoError(t, err)
	w := e.admin(http.MethodPost, "/api/v1/keys", string(body))
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var k newKeyJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &k))
	return k.Key, k.ID
}

func TestAdminKeys(t *testing.T) {
	key, hash := NewAdminKey()
	require.True(t, strings.HasPrefix(key, AdminKeyPrefix))
	require.GreaterOrEqual(t, len(key), len(AdminKeyPrefix)+50, "about 256 bits")
	require.Equal(t, hashAdminKey(key), hash)
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, hash)
}

func TestAdminAuthentication(t *testing.T) {
	e := newAdminEnv(t)
	w := e.do(http.MethodGet, "/api/v1/rooms", "")
	requireProblem(t, w, 401, "api-key-missing")
	require.Equal(t, `Bearer realm="mediagate"`, w.Header().Get("WWW-Authenticate"))

	w = e.do(http.MethodGet, "/api/v1/rooms", "", "Authorization", "Bearer mgk_not-a-configured-key")
	requireProblem(t, w, 401, "api-key-invalid")
	require.Contains(t, w.Header().Get("WWW-Authenticate"), `error="invalid_token"`)

	// A join token is not an API key.
	tok, _ := requireToken(t, e.joinEnv, e.postToken("annex", "Ada", "2468"), "annex")
	requireProblem(t, e.do(http.MethodGet, "/api/v1/rooms", "", "Authorization", "Bearer "+tok), 401, "api-key-invalid")

	require.Equal(t, http.StatusOK, e.admin(http.MethodGet, "/api/v1/rooms", "").Code)

	// No configured keys: nobody gets in.
	closed := New(slog.New(slog.DiscardHandler), WithAdmin(e.mgr, e.auth, nil)).Handler()
	r := httptest.NewRequest(http.MethodGet, "/api/v1/rooms", nil)
	r.Header.Set("Authorization", "Bearer "+e.key)
	rec := httptest.NewRecorder()
	closed.ServeHTTP(rec, r)
	requireProblem(t, rec, 401, "api-key-invalid")

	// The audit log names the key by its hash prefix and never holds the key.
	logs := e.log.String()
	require.Contains(t, logs, "msg=audit component=api action=rooms.list key="+hashAdminKey(e.key)[7:19])
	require.Contains(t, logs, "client=192.0.2.0")
	require.NotContains(t, logs, e.key)
	require.NotContains(t, logs, "mgk_not-a-configured-key")
	require.NotContains(t, logs, tok)
}

func TestAdminRooms(t *testing.T) {
	e := newAdminEnv(t)
	rm, err := e.mgr.Create("adhoc")
	require.NoError(t, err)
	require.NoError(t, rm.Join(&fakeParticipant{info: room.Info{ID: "p1", Name: "Ada", Kind: room.KindWebRTC, Format: room.PCMU}}))

	w := e.admin(http.MethodGet, "/api/v1/rooms", "")
	require.Equal(t, http.StatusOK, w.Code)
	var list []roomJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	var ids []string
	for _, r := range list {
		ids = append(ids, r.ID)
	}
	require.Equal(t, []string{"adhoc", "annex", "board", "lobby", "vip"}, ids, "configured and open rooms, sorted")
	require.Equal(t, roomJSON{ID: "adhoc", Tenant: "default", Open: true, Count: 1}, list[0])
	require.Equal(t, roomJSON{ID: "board", Name: `Board <b>&</b> "Co"`, Tenant: "acme", Configured: true}, list[2])

	w = e.admin(http.MethodGet, "/api/v1/rooms/adhoc", "")
	require.Equal(t, http.StatusOK, w.Code)
	var one roomJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &one))
	require.Len(t, one.Participants, 1)
	require.Equal(t, "p1", one.Participants[0].ID)
	require.Equal(t, "webrtc", one.Participants[0].Kind)

	requireProblem(t, e.admin(http.MethodGet, "/api/v1/rooms/nowhere", ""), 404, "room-not-found")
	requireProblem(t, e.admin(http.MethodGet, "/api/v1/rooms/..%2Fetc", ""), 400, "bad-request")
	requireProblem(t, e.admin(http.MethodGet, "/api/v1/nothing", ""), 404, "no-such-resource")
}

func TestAdminMuteAndLock(t *testing.T) {
	e := newAdminEnv(t)
	rm, err := e.mgr.Create("adhoc")
	require.NoError(t, err)
	require.NoError(t, rm.Join(&fakeParticipant{info: room.Info{ID: "p1", Name: "Ada", Kind: room.KindWebRTC, Format: room.PCMU}}))

	require.Equal(t, http.StatusNoContent, e.admin(http.MethodPost, "/api/v1/rooms/adhoc/participants/p1/mute", "").Code)
	require.True(t, rm.Participants()[0].Muted)
	require.Equal(t, http.StatusNoContent, e.admin(http.MethodPost, "/api/v1/rooms/adhoc/participants/p1/unmute", "").Code)
	require.False(t, rm.Participants()[0].Muted)
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/rooms/adhoc/participants/nobody/mute", ""), 404, "participant-not-found")

	require.Equal(t, http.StatusNoContent, e.admin(http.MethodPost, "/api/v1/rooms/adhoc/lock", "").Code)
	require.True(t, rm.Locked())
	err = rm.Join(&fakeParticipant{info: room.Info{ID: "p2", Format: room.PCMU}})
	require.ErrorIs(t, err, room.ErrRoomLocked)
	require.Equal(t, http.StatusNoContent, e.admin(http.MethodPost, "/api/v1/rooms/adhoc/unlock", "").Code)
	require.False(t, rm.Locked())

	requireProblem(t, e.admin(http.MethodPost, "/api/v1/rooms/vip/lock", ""), 404, "room-not-found")
	require.Contains(t, e.log.String(), "action=participants.mute")
}

func TestAdminToken(t *testing.T) {
	e := newAdminEnv(t)
	w := e.admin(http.MethodPost, "/api/v1/rooms/webinar-7/tokens",
		`{"identity":"user-42","name":"Grace","grants":{"listen":true},"ttl_seconds":3600}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var resp tokenResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	c, err := e.auth.VerifyToken(resp.Token, "webinar-7", e.now)
	require.NoError(t, err, "a token for a room the configuration does not name")
	require.Equal(t, "user-42", c.Subject)
	require.Equal(t, "Grace", c.Name)
	require.Equal(t, Grants{Listen: true}, c.Grants)
	require.Equal(t, e.now.Add(3600e9).Unix(), resp.ExpiresAt.Unix())

	r := httptest.NewRequest(http.MethodPost, "/whep/webinar-7", nil)
	r.Header.Set("Authorization", "Bearer "+resp.Token)
	_, err = e.auth.Check(r, "webinar-7", false)
	require.ErrorIs(t, err, ErrTokenGrant, "listen-only token cannot publish")
	who, err := e.auth.Check(r, "webinar-7", true)
	require.NoError(t, err)
	require.Equal(t, "user-42", who.Subject)

	for _, tc := range []struct {
		name, path, body, ctype string
		status                  int
		slug                    string
	}{
		{"no grants", "/api/v1/rooms/r1/tokens", `{"identity":"u","grants":{}}`, "application/json", 400, "invalid-token-request"},
		{"no identity", "/api/v1/rooms/r1/tokens", `{"grants":{"publish":true}}`, "application/json", 400, "invalid-token-request"},
		{"too long", "/api/v1/rooms/r1/tokens", `{"identity":"u","grants":{"publish":true},"ttl_seconds":90000}`, "application/json", 400, "invalid-token-request"},
		{"unknown field", "/api/v1/rooms/r1/tokens", `{"identity":"u","grants":{"publish":true},"admin":true}`, "application/json", 400, "bad-request"},
		{"two values", "/api/v1/rooms/r1/tokens", `{"identity":"u","grants":{"publish":true}} {}`, "application/json", 400, "bad-request"},
		{"not json", "/api/v1/rooms/r1/tokens", `identity=u`, "application/x-www-form-urlencoded", 415, "unsupported-content-type"},
		{"bad room id", "/api/v1/rooms/Bad.Room/tokens", `{"identity":"u","grants":{"publish":true}}`, "application/json", 400, "bad-request"},
		{"huge body", "/api/v1/rooms/r1/tokens", `{"identity":"` + strings.Repeat("x", 20000) + `"}`, "application/json", 400, "bad-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(http.MethodPost, tc.path, tc.body, "Authorization", "Bearer "+e.key, "Content-Type", tc.ctype)
			requireProblem(t, w, tc.status, tc.slug)
		})
	}
}
