package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
)

// testSecret is a token secret of the shortest accepted length.
const testSecret = "0123456789abcdef0123456789abcdef"

// t0 is the tests' "now".
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newTestAuth returns an Auth with testSecret, the rooms given and a clock
// the test moves.
func newTestAuth(t *testing.T, rooms map[string]configs.Room, clock *time.Time) *Auth {
	t.Helper()
	a, err := NewAuth(configs.Auth{TokenSecret: testSecret, PageTokenLifetime: 10 * time.Minute}, rooms,
		WithAuthClock(func() time.Time { return *clock }))
	require.NoError(t, err)
	return a
}

// issue makes a token for room with both grants and a 10-minute life.
func issue(t *testing.T, a *Auth, id room.ID, now time.Time) (string, Claims) {
	t.Helper()
	tok, c, err := a.IssueToken(TokenRequest{
		Room: id, Subject: "user-1", Name: "Ada", Grants: Grants{Publish: true, Listen: true}, Lifetime: 10 * time.Minute,
	}, now)
	require.NoError(t, err)
	return tok, c
}

// forge builds a token from any header and payload, signed with a's key
// unless sig is given: for tokens IssueToken would never make.
func forge(t *testing.T, a *Auth, header, payload any, sig ...string) string {
	t.Helper()
	enc := func(v any) string {
		if s, ok := v.(string); ok {
			return b64.EncodeToString([]byte(s))
		}
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return b64.EncodeToString(b)
	}
	signed := enc(header) + "." + enc(payload)
	if len(sig) > 0 {
		return signed + "." + sig[0]
	}
	return signed + "." + b64.EncodeToString(a.sign(signed))
}

// claimsMap is the payload of a valid token as a map, to change one claim.
func claimsMap(c Claims) map[string]any {
	b, _ := json.Marshal(c)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// TestIssueToken: the token has the documented header and claims.
func TestIssueToken(t *testing.T) {
	now := t0
	a := newTestAuth(t, nil, &now)
	tok, c := issue(t, a, "board", now)

	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	header, err := b64.DecodeString(parts[0])
	require.NoError(t, err)
	require.JSONEq(t, `{"alg":"HS256","typ":"JWT"}`, string(header))
	payload, err := b64.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload, &m))
	require.Equal(t, map[string]any{
		"iss": "mediagate", "sub": "user-1", "name": "Ada", "room": "board",
		"grants": map[string]any{"publish": true, "listen": true},
		"iat":    float64(t0.Unix()), "nbf": float64(t0.Unix()), "exp": float64(t0.Add(10 * time.Minute).Unix()),
		"jti": c.ID,
	}, m)
	require.Len(t, c.ID, 26, "128 random bits")
	require.Equal(t, t0.Add(10*time.Minute), c.ExpiresAt())

	tok2, c2 := issue(t, a, "board", now)
	require.NotEqual(t, c.ID, c2.ID, "jti is unique")
	require.NotEqual(t, tok, tok2)

	got, err := a.VerifyToken(tok, "board", now)
	require.NoError(t, err)
	require.Equal(t, c, got)
}

// TestIssueTokenRequest: incomplete requests and over-long lifetimes are
// refused.
func TestIssueTokenRequest(t *testing.T) {
	now := t0
	a := newTestAuth(t, nil, &now)
	ok := TokenRequest{Room: "board", Subject: "s", Lifetime: 24 * time.Hour}
	tests := []struct {
		name string
		edit func(*TokenRequest)
		want string // "" means issued
	}{
		{"24h", func(*TokenRequest) {}, ""},
		{"over 24h", func(r *TokenRequest) { r.Lifetime += time.Second }, "invalid token request: lifetime 24h0m1s out of range (0s, 24h]"},
		{"zero lifetime", func(r *TokenRequest) { r.Lifetime = 0 }, "invalid token request: lifetime 0s out of range (0s, 24h]"},
		{"no room", func(r *TokenRequest) { r.Room = "" }, `invalid token request: room id ""`},
		{"bad room", func(r *TokenRequest) { r.Room = "Board" }, `invalid token request: room id "Board"`},
		{"no subject", func(r *TokenRequest) { r.Subject = "" }, "invalid token request: subject must be 1 to 256 bytes"},
		{"long name", func(r *TokenRequest) { r.Name = strings.Repeat("x", 65) }, "invalid token request: name must be at most 64 printable characters"},
		{"control in name", func(r *TokenRequest) { r.Name = "a\nb" }, "invalid token request: name must be at most 64 printable characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ok
			tt.edit(&req)
			_, _, err := a.IssueToken(req, now)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrTokenRequest)
			require.EqualError(t, err, tt.want)
		})
	}
}

// TestVerifyToken: every way a token can be wrong gets its own error, and
// all of them are 401 invalid_token.
func TestVerifyToken(t *testing.T) {
	now := t0
	a := newTestAuth(t, nil, &now)
	tok, c := issue(t, a, "board", t0)
	parts := strings.Split(tok, ".")
	hs256 := map[string]any{"alg": "HS256", "typ": "JWT"}
	leeway := TokenLeeway

	other, err := NewAuth(configs.Auth{TokenSecret: strings.Repeat("x", 32), PageTokenLifetime: time.Minute}, nil)
	require.NoError(t, err)
	otherTok, _ := issue(t, other, "board", t0)

	with := func(edit func(map[string]any)) string {
		m := claimsMap(c)
		edit(m)
		return forge(t, a, hs256, m)
	}
	tamperedPayload := func(edit func(map[string]any)) string {
		m := claimsMap(c)
		edit(m)
		b, _ := json.Marshal(m)
		return parts[0] + "." + b64.EncodeToString(b) + "." + parts[2]
	}

	tests := []struct {
		name  string
		token string
		room  room.ID
		now   time.Time
		want  error // nil: valid
	}{
		{"valid", tok, "board", t0, nil},
		{"valid within the leeway before nbf", tok, "board", t0.Add(-leeway), nil},
		{"valid in the last second with leeway", tok, "board", c.ExpiresAt().Add(leeway - time.Second), nil},
		{"expired", tok, "board", c.ExpiresAt().Add(leeway), ErrTokenExpired},
		{"long expired", tok, "board", t0.Add(48 * time.Hour), ErrTokenExpired},
		{"not yet valid", tok, "board", t0.Add(-leeway - time.Second), ErrTokenNotYetValid},
		{"nbf in the future", with(func(m map[string]any) { m["nbf"] = t0.Add(time.Hour).Unix() }), "board", t0, ErrTokenNotYetValid},
		{"another room", tok, "lobby", t0, ErrTokenWrongRoom},
		{"another secret", otherTok, "board", t0, ErrTokenSignature},
		{"tampered payload: room", tamperedPayload(func(m map[string]any) { m["room"] = "lobby" }), "lobby", t0, ErrTokenSignature},
		{"tampered payload: grant", tamperedPayload(func(m map[string]any) { m["grants"] = map[string]any{"present": true} }), "board", t0, ErrTokenSignature},
		{"tampered payload: exp", tamperedPayload(func(m map[string]any) { m["exp"] = t0.Add(20 * time.Hour).Unix() }), "board", t0, ErrTokenSignature},
		{"tampered header", b64.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"1"}`)) + "." + parts[1] + "." + parts[2], "board", t0, ErrTokenSignature},
		{"truncated signature", parts[0] + "." + parts[1] + "." + b64.EncodeToString(a.sign(parts[0] + "." + parts[1])[:16]), "board", t0, ErrTokenSignature},
		{"no signature", parts[0] + "." + parts[1] + ".", "board", t0, ErrTokenSignature},
		{"alg none", forge(t, a, map[string]any{"alg": "none", "typ": "JWT"}, claimsMap(c), ""), "board", t0, ErrTokenAlgorithm},
		{"alg none, signed anyway", forge(t, a, map[string]any{"alg": "none"}, claimsMap(c)), "board", t0, ErrTokenAlgorithm},
		{"alg HS512", forge(t, a, map[string]any{"alg": "HS512"}, claimsMap(c)), "board", t0, ErrTokenAlgorithm},
		{"alg RS256", forge(t, a, map[string]any{"alg": "RS256"}, claimsMap(c)), "board", t0, ErrTokenAlgorithm},
		{"alg lower case", forge(t, a, map[string]any{"alg": "hs256"}, claimsMap(c)), "board", t0, ErrTokenAlgorithm},
		{"alg missing", forge(t, a, map[string]any{"typ": "JWT"}, claimsMap(c)), "board", t0, ErrTokenAlgorithm},
		{"typ not JWT", forge(t, a, map[string]any{"alg": "HS256", "typ": "JWE"}, claimsMap(c)), "board", t0, ErrTokenMalformed},
		{"crit header", forge(t, a, map[string]any{"alg": "HS256", "crit": []string{"exp"}}, claimsMap(c)), "board", t0, ErrTokenMalformed},
		{"header not an object", forge(t, a, "[1]", claimsMap(c)), "board", t0, ErrTokenMalformed},
		{"header not json", forge(t, a, "alg=HS256", claimsMap(c)), "board", t0, ErrTokenMalformed},
		{"payload not json", forge(t, a, hs256, "hello"), "board", t0, ErrTokenMalformed},
		{"exp a string", with(func(m map[string]any) { m["exp"] = "tomorrow" }), "board", t0, ErrTokenMalformed},
		{"exp fractional", with(func(m map[string]any) { m["exp"] = 1.5 }), "board", t0, ErrTokenMalformed},
		{"exp missing", with(func(m map[string]any) { delete(m, "exp") }), "board", t0, ErrTokenMalformed},
		{"sub missing", with(func(m map[string]any) { delete(m, "sub") }), "board", t0, ErrTokenMalformed},
		{"room missing", with(func(m map[string]any) { delete(m, "room") }), "", t0, ErrTokenMalformed},
		{"other issuer", with(func(m map[string]any) { m["iss"] = "livekit" }), "board", t0, ErrTokenMalformed},
		{"lifetime over 24h", with(func(m map[string]any) { m["exp"] = t0.Add(25 * time.Hour).Unix() }), "board", t0, ErrTokenMalformed},
		{"empty", "", "board", t0, ErrTokenMalformed},
		{"one part", "abc", "board", t0, ErrTokenMalformed},
		{"two parts", parts[0] + "." + parts[1], "board", t0, ErrTokenMalformed},
		{"four parts", tok + ".x", "board", t0, ErrTokenMalformed},
		{"JWE-like five parts", "a.b.c.d.e", "board", t0, ErrTokenMalformed},
		{"padding", parts[0] + "=." + parts[1] + "." + parts[2], "board", t0, ErrTokenMalformed},
		{"line break inside", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:], "board", t0, ErrTokenMalformed},
		{"standard base64 alphabet", parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+", "board", t0, ErrTokenMalformed},
		{"non-canonical signature bits", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + "B", "board", t0, ErrTokenMalformed},
		{"too long", tok + strings.Repeat("A", maxTokenLen), "board", t0, ErrTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.VerifyToken(tt.token, tt.room, tt.now)
			if tt.want == nil {
				require.NoError(t, err)
				require.Equal(t, c, got)
				return
			}
			require.ErrorIs(t, err, tt.want)
			require.Equal(t, Claims{}, got)
			for _, other := range []error{ErrTokenMalformed, ErrTokenAlgorithm, ErrTokenSignature, ErrTokenExpired, ErrTokenNotYetValid, ErrTokenWrongRoom} {
				if other != tt.want {
					require.NotErrorIs(t, err, other, "exactly one category")
				}
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, http.StatusUnauthorized, e.HTTPStatus())
			require.Contains(t, e.WWWAuthenticate(), `error="invalid_token"`)
			require.NotContains(t, err.Error(), testSecret)
		})
	}
}

// TestTokensAcrossNodes: nodes with the same secret accept each other's
// tokens; nodes with no secret configured each have their own random one.
func TestTokensAcrossNodes(t *testing.T) {
	cfg := configs.Auth{TokenSecret: testSecret, PageTokenLifetime: time.Minute}
	a1, err := NewAuth(cfg, nil)
	require.NoError(t, err)
	a2, err := NewAuth(cfg, nil)
	require.NoError(t, err)
	tok, _ := issue(t, a1, "board", t0)
	_, err = a2.VerifyToken(tok, "board", t0)
	require.NoError(t, err)

	cfg.TokenSecret = ""
	r1, err := NewAuth(cfg, nil)
	require.NoError(t, err)
	r2, err := NewAuth(cfg, nil)
	require.NoError(t, err)
	tok, _ = issue(t, r1, "board", t0)
	_, err = r1.VerifyToken(tok, "board", t0)
	require.NoError(t, err)
	_, err = r2.VerifyToken(tok, "board", t0)
	require.ErrorIs(t, err, ErrTokenSignature, "a random secret is this process's own")

	cfg.TokenSecret = "short"
	_, err = NewAuth(cfg, nil)
	require.EqualError(t, err, "auth.token_secret: must be at least 32 bytes (RFC 7518 §3.2), got 5")
	cfg = configs.Auth{PageTokenLifetime: 25 * time.Hour}
	_, err = NewAuth(cfg, nil)
	require.EqualError(t, err, "auth.page_token_lifetime: 25h0m0s out of range (0s, 24h]")
}

// FuzzVerifyToken: no input panics, and every refusal is one of the
// documented 401 errors; an accepted token verifies for its own room only.
func FuzzVerifyToken(f *testing.F) {
	now := t0
	a, err := NewAuth(configs.Auth{TokenSecret: testSecret, PageTokenLifetime: time.Minute}, nil,
		WithAuthClock(func() time.Time { return now }))
	if err != nil {
		f.Fatal(err)
	}
	tok, _, err := a.IssueToken(TokenRequest{Room: "board", Subject: "s", Lifetime: time.Minute}, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(tok[:len(tok)/2])
	f.Fuzz(func(t *testing.T, s string) {
		c, err := a.VerifyToken(s, "board", t0)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.HTTPStatus() != http.StatusUnauthorized {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if c.Room != "board" || c.Issuer != TokenIssuer {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}
