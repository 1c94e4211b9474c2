package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
)

// TestCheck: the access policy of WHIP and WHEP for every kind of request.
func TestCheck(t *testing.T) {
	now := t0
	a := newTestAuth(t, map[string]configs.Room{
		"board": {PIN: "4711"},
		"lobby": {Open: true},
	}, &now)
	token := func(id room.ID, g Grants) string {
		tok, _, err := a.IssueToken(TokenRequest{Room: id, Subject: "u1", Name: "Ada", Grants: g, Lifetime: time.Minute}, t0)
		require.NoError(t, err)
		return tok
	}
	both := token("board", Grants{Publish: true, Listen: true})
	listen := token("board", Grants{Listen: true})
	publish := token("board", Grants{Publish: true})
	lobby := token("lobby", Grants{Publish: true, Listen: true})

	const bare = `Bearer realm="mediagate"`
	tests := []struct {
		name       string
		auth       string // Authorization header
		room       room.ID
		listenOnly bool
		at         time.Time
		want       error
		challenge  string // WWW-Authenticate
		anonymous  bool
	}{
		{"publish with both grants", "Bearer " + both, "board", false, t0, nil, "", false},
		{"listen with both grants", "Bearer " + both, "board", true, t0, nil, "", false},
		{"listen with listen grant", "Bearer " + listen, "board", true, t0, nil, "", false},
		{"scheme is case-insensitive", "bearer " + both, "board", false, t0, nil, "", false},
		{"publish with listen grant", "Bearer " + listen, "board", false, t0, ErrTokenGrant,
			bare + `, error="insufficient_scope", error_description="token does not grant this"`, false},
		{"listen with publish grant", "Bearer " + publish, "board", true, t0, ErrTokenGrant,
			bare + `, error="insufficient_scope", error_description="token does not grant this"`, false},
		{"no token", "", "board", false, t0, ErrTokenMissing, bare, false},
		{"other scheme", "Basic dXNlcjpwYXNz", "board", false, t0, ErrTokenMissing, bare, false},
		{"empty bearer", "Bearer ", "board", false, t0, ErrTokenMissing, bare, false},
		{"expired", "Bearer " + both, "board", false, t0.Add(2 * time.Minute), ErrTokenExpired,
			bare + `, error="invalid_token", error_description="token expired"`, false},
		{"garbage", "Bearer xyz", "board", false, t0, ErrTokenMalformed,
			bare + `, error="invalid_token", error_description="malformed token"`, false},
		{"token for another room", "Bearer " + lobby, "board", false, t0, ErrTokenWrongRoom,
			bare + `, error="invalid_token", error_description="token is for another room"`, false},
		{"open room without token", "", "lobby", false, t0, nil, "", true},
		{"open room, listen only", "", "lobby", true, t0, nil, "", true},
		{"open room with its token", "Bearer " + lobby, "lobby", false, t0, nil, "", false},
		{"open room with a bad token", "Bearer " + both, "lobby", false, t0, ErrTokenWrongRoom,
			bare + `, error="invalid_token", error_description="token is for another room"`, false},
		{"unconfigured room without token", "", "adhoc", false, t0, ErrTokenMissing, bare, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = tt.at
			r := httptest.NewRequest(http.MethodPost, "/whip/"+string(tt.room), nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			id, err := a.Check(r, tt.room, tt.listenOnly)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
				require.Equal(t, Identity{}, id)
				var withStatus interface{ HTTPStatus() int }
				require.True(t, errors.As(err, &withStatus), "rtc reads the status through an interface")
				var ch interface{ WWWAuthenticate() string }
				require.True(t, errors.As(err, &ch))
				require.Equal(t, tt.challenge, ch.WWWAuthenticate())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.anonymous, id.Anonymous)
			if tt.anonymous {
				require.Regexp(t, `^anon-[A-Z2-7]{26}$`, id.Subject)
				require.Equal(t, Grants{Publish: true, Listen: true}, id.Grants, "anonymous may not present video")
				require.Empty(t, id.Name)
				require.True(t, id.Expires.IsZero())
				return
			}
			require.Equal(t, "u1", id.Subject)
			require.Equal(t, "Ada", id.Name)
			require.Equal(t, t0.Add(time.Minute), id.Expires)
		})
	}

	// Two anonymous participants never share an identity.
	now = t0
	r := httptest.NewRequest(http.MethodPost, "/whip/lobby", nil)
	id1, err := a.Check(r, "lobby", false)
	require.NoError(t, err)
	id2, err := a.Check(r, "lobby", false)
	require.NoError(t, err)
	require.NotEqual(t, id1.Subject, id2.Subject)
}

// TestStatusOfErrors: each error answers with its documented status.
func TestStatusOfErrors(t *testing.T) {
	for err, want := range map[*Error]int{
		ErrTokenMissing: 401, ErrTokenMalformed: 401, ErrTokenAlgorithm: 401, ErrTokenSignature: 401,
		ErrTokenExpired: 401, ErrTokenNotYetValid: 401, ErrTokenWrongRoom: 401, ErrTokenGrant: 403,
		ErrTokenRequest: 400, ErrWrongPIN: 403, ErrTooManyAttempts: 429, ErrInvitationRequired: 403,
		ErrBadRequest: 400, ErrUnsupportedMediaType: 415, ErrCrossOrigin: 403,
	} {
		require.Equal(t, want, err.HTTPStatus(), err.Error())
		require.Regexp(t, `^/problems/[a-z-]+$`, err.ProblemType())
		require.Equal(t, want == 401 || err == ErrTokenGrant, err.WWWAuthenticate() != "", err.Error())
	}
}
