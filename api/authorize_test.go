package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
)

// TestAuthorizeRooms: the room endpoints for every kind of key. The rooms
// of joinRooms: board is acme's, annex globex's, lobby and vip the default
// tenant's, like the ad hoc rooms that tokens open.
func TestAuthorizeRooms(t *testing.T) {
	e := newAdminEnv(t)
	for _, id := range []room.ID{"board", "adhoc"} {
		rm, err := e.mgr.Create(id)
		require.NoError(t, err)
		require.NoError(t, rm.Join(&fakeParticipant{info: room.Info{ID: "p1", Name: "Ada", Kind: room.KindWebRTC, Format: room.PCMU}}))
	}
	star, _ := e.newKey(t, "ops", RoleAdmin, AllTenants)
	acmeAdmin, _ := e.newKey(t, "acme ops", RoleAdmin, "acme")
	acmeViewer, _ := e.newKey(t, "acme dashboard", RoleViewer, "acme")
	globexAdmin, _ := e.newKey(t, "globex ops", RoleAdmin, "globex")
	defaultViewer, _ := e.newKey(t, "default wall", RoleViewer, "default")

	// Listings hold the key's tenant's rooms only.
	for key, want := range map[string][]string{
		e.key:         {"adhoc", "annex", "board", "lobby", "vip"},
		star:          {"adhoc", "annex", "board", "lobby", "vip"},
		acmeAdmin:     {"board"},
		acmeViewer:    {"board"},
		globexAdmin:   {"annex"},
		defaultViewer: {"adhoc", "lobby", "vip"},
	} {
		w := e.as(key, http.MethodGet, "/api/v1/rooms", "")
		require.Equal(t, http.StatusOK, w.Code)
		var list []roomJSON
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ID)
		}
		require.Equal(t, want, ids)
	}

	const ok, forbidden = 0, http.StatusForbidden
	tests := []struct {
		name, method, path, body string
		want                     map[string]int // key → status; ok: the endpoint's success
		success                  int
	}{
		{"get", http.MethodGet, "/api/v1/rooms/board", "", map[string]int{
			star: ok, acmeAdmin: ok, acmeViewer: ok, globexAdmin: forbidden, defaultViewer: forbidden}, http.StatusOK},
		{"get ad hoc", http.MethodGet, "/api/v1/rooms/adhoc", "", map[string]int{
			star: ok, acmeAdmin: forbidden, defaultViewer: ok}, http.StatusOK},
		{"lock", http.MethodPost, "/api/v1/rooms/board/lock", "", map[string]int{
			acmeViewer: forbidden, globexAdmin: forbidden, defaultViewer: forbidden, acmeAdmin: ok, star: ok}, http.StatusNoContent},
		{"unlock", http.MethodPost, "/api/v1/rooms/board/unlock", "", map[string]int{
			acmeViewer: forbidden, globexAdmin: forbidden, acmeAdmin: ok}, http.StatusNoContent},
		{"mute", http.MethodPost, "/api/v1/rooms/board/participants/p1/mute", "", map[string]int{
			acmeViewer: forbidden, globexAdmin: forbidden, acmeAdmin: ok}, http.StatusNoContent},
		{"unmute", http.MethodPost, "/api/v1/rooms/board/participants/p1/unmute", "", map[string]int{
			acmeViewer: forbidden, globexAdmin: forbidden, acmeAdmin: ok}, http.StatusNoContent},
		{"token", http.MethodPost, "/api/v1/rooms/board/tokens", `{"identity":"u1","grants":{"listen":true}}`, map[string]int{
			acmeViewer: forbidden, globexAdmin: forbidden, defaultViewer: forbidden, acmeAdmin: ok, star: ok}, http.StatusCreated},
		{"token for a new room", http.MethodPost, "/api/v1/rooms/webinar-7/tokens", `{"identity":"u1","grants":{"listen":true}}`, map[string]int{
			acmeAdmin: forbidden, defaultViewer: forbidden, star: ok}, http.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for key, want := range tt.want {
				if want == ok {
					want = tt.success
				}
				w := e.as(key, tt.method, tt.path, tt.body)
				if want == forbidden {
					p := requireProblem(t, w, forbidden, "forbidden")
					require.Contains(t, w.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`)
					require.NotEmpty(t, p.Detail)
					continue
				}
				require.Equal(t, want, w.Code, w.Body.String())
			}
		})
	}
	rm, err := e.mgr.Get("board")
	require.NoError(t, err)
	require.False(t, rm.Locked(), "unlocked by acme's admin after the refusals")
}

// TestAuthorizeDirect: authorize and Sees without the HTTP plumbing.
func TestAuthorizeDirect(t *testing.T) {
	s := New(slog.New(slog.DiscardHandler))
	r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
	require.ErrorIs(t, s.authorize(r, "acme", false), ErrAdminKeyMissing, "no principal outside adminOnly")

	with := func(p Principal) *http.Request { return r.WithContext(withPrincipal(r.Context(), p)) }
	for _, tt := range []struct {
		p      Principal
		tenant string
		write  bool
		want   error
	}{
		{Principal{Role: RoleAdmin, Tenant: AllTenants}, "acme", true, nil},
		{Principal{Role: RoleAdmin, Tenant: AllTenants}, "", true, nil},
		{Principal{Role: RoleViewer, Tenant: "acme"}, "acme", false, nil},
		{Principal{Role: RoleViewer, Tenant: "acme"}, "acme", true, ErrForbidden},
		{Principal{Role: RoleAdmin, Tenant: "acme"}, "globex", false, ErrForbidden},
		{Principal{Role: RoleAdmin, Tenant: "acme"}, "", false, ErrForbidden},
		{Principal{Role: RoleAdmin, Tenant: "acme"}, AllTenants, true, ErrForbidden},
	} {
		err := s.authorize(with(tt.p), tt.tenant, tt.write)
		if tt.want == nil {
			require.NoError(t, err, "%+v %q %t", tt.p, tt.tenant, tt.write)
		} else {
			require.ErrorIs(t, err, tt.want, "%+v %q %t", tt.p, tt.tenant, tt.write)
		}
	}
	p, ok := PrincipalFrom(with(Principal{KeyID: "abc", Role: RoleViewer, Tenant: "t"}).Context())
	require.True(t, ok)
	require.Equal(t, Principal{KeyID: "abc", Role: RoleViewer, Tenant: "t"}, p)
}
