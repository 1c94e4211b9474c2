package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
)

// Join tokens let a WebRTC client into one room, in the way LiveKit access
// tokens work: a JSON Web Token (RFC 7519) in the JWS compact serialization
// (RFC 7515 §7.1), signed with HMAC-SHA256 (HS256, RFC 7518 §3.2) under the
// node's secret (auth.token_secret). The join page hands them out in
// exchange for a room's PIN; the operator's platform gets them from the
// admin API. They are written with the standard library only, and
// verification accepts exactly what IssueToken writes: HS256, our issuer,
// our claims (RFC 8725 §3.1, §3.8).

const (
	// TokenIssuer is the iss claim of every join token (RFC 7519 §4.1.1).
	TokenIssuer = "mediagate"
	// MaxTokenLifetime bounds every join token's lifetime (exp - nbf).
	MaxTokenLifetime = configs.MaxTokenLifetime
	// TokenLeeway is the clock skew allowed between the node that issued a
	// token and the node that checks it (RFC 7519 §4.1.4, §4.1.5): without
	// it a token made on one node could be "not yet valid" on the next.
	TokenLeeway = 30 * time.Second
	// maxTokenLen refuses absurd tokens before any decoding; ours are
	// about 400 bytes.
	maxTokenLen = 4096
	// maxNameLen bounds display names (runes), to keep the participant
	// list on one line.
	maxNameLen = 64
)

// tokenHeader is the encoded JOSE header of every token we issue.
var tokenHeader = b64.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// b64 is base64url without padding (RFC 7515 §2), strict so that every
// token has one spelling.
var b64 = base64.RawURLEncoding.Strict()

// Grants are what a token allows in its room.
type Grants struct {
	// Publish allows joining with audio (WHIP): sending into the room and
	// receiving one's mix-minus.
	Publish bool `json:"publish"`
	// Listen allows listening only (WHEP) to the room's full mix.
	Listen bool `json:"listen"`
	// Present allows a WHIP publisher's video to become the room's
	// presenter video.
	Present bool `json:"present,omitempty"`
}

// Claims are the contents of a join token (RFC 7519 §4).
type Claims struct {
	// Issuer is TokenIssuer (iss).
	Issuer string `json:"iss"`
	// Subject is the participant's identity (sub): the participant ID in
	// the room, unique per token the join page issues.
	Subject string `json:"sub"`
	// Name is the display name in the participant list.
	Name string `json:"name,omitempty"`
	// Room is the one room the token opens.
	Room room.ID `json:"room"`
	// Grants are what the token allows there.
	Grants Grants `json:"grants"`
	// IssuedAt, NotBefore and Expires are NumericDates (RFC 7519 §2),
	// whole seconds since the Unix epoch (iat, nbf, exp).
	IssuedAt  int64 `json:"iat"`
	NotBefore int64 `json:"nbf"`
	Expires   int64 `json:"exp"`
	// ID is the token's unique ID (jti), for audit logs and revocation.
	ID string `json:"jti"`
}

// ExpiresAt is exp as a time.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expires, 0).UTC() }

// TokenRequest says what token IssueToken makes.
type TokenRequest struct {
	// Room is the room the token opens; a valid room ID.
	Room room.ID
	// Subject is the participant identity; required.
	Subject string
	// Name is the display name: at most 64 printable characters.
	Name string
	// Grants are what the token allows.
	Grants Grants
	// Lifetime is how long the token is valid from now: (0, 24h].
	Lifetime time.Duration
}

// IssueToken signs a join token for req, valid from now for req.Lifetime.
// It returns the token and its claims, or ErrTokenRequest (wrapped) when
// req is incomplete or asks for more than MaxTokenLifetime.
func (a *Auth) IssueToken(req TokenRequest, now time.Time) (string, Claims, error) {
	switch {
	case !configs.ValidRoomID(string(req.Room)):
		return "", Claims{}, fmt.Errorf("%w: room id %q", ErrTokenRequest, req.Room)
	case req.Subject == "" || len(req.Subject) > 256:
		return "", Claims{}, fmt.Errorf("%w: subject must be 1 to 256 bytes", ErrTokenRequest)
	case !validName(req.Name, 0):
		return "", Claims{}, fmt.Errorf("%w: name must be at most %d printable characters", ErrTokenRequest, maxNameLen)
	case req.Lifetime <= 0 || req.Lifetime > MaxTokenLifetime:
		return "", Claims{}, fmt.Errorf("%w: lifetime %s out of range (0s, 24h]", ErrTokenRequest, req.Lifetime)
	}
	c := Claims{
		Issuer:    TokenIssuer,
		Subject:   req.Subject,
		Name:      req.Name,
		Room:      req.Room,
		Grants:    req.Grants,
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		Expires:   now.Add(req.Lifetime).Unix(),
		ID:        rand.Text(),
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", Claims{}, fmt.Errorf("encode claims: %w", err)
	}
	signed := tokenHeader + "." + b64.EncodeToString(payload)
	return signed + "." + b64.EncodeToString(a.sign(signed)), c, nil
}

// VerifyToken checks token for roomID at time now and returns its claims.
// It refuses, with these errors (wrapped, in this order of checking):
// ErrTokenMalformed for anything but three base64url parts with a JSON
// header and our claims; ErrTokenAlgorithm for any alg but HS256 (so "none"
// too); ErrTokenSignature when the HMAC does not match (compared in
// constant time); ErrTokenExpired, ErrTokenNotYetValid (both with
// TokenLeeway) and ErrTokenWrongRoom.
func (a *Auth) VerifyToken(token string, roomID room.ID, now time.Time) (Claims, error) {
	parts, err := splitToken(token)
	if err != nil {
		return Claims{}, err
	}
	if err := checkHeader(parts[0]); err != nil {
		return Claims{}, err
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: signature is not base64url", ErrTokenMalformed)
	}
	// RFC 7515 §5.2: the signature is over the encoded header and payload
	// exactly as received. hmac.Equal takes the same time wherever the
	// first difference is, so the signature cannot be guessed bytewise.
	if !hmac.Equal(sig, a.sign(parts[0]+"."+parts[1])) {
		return Claims{}, ErrTokenSignature
	}
	c, err := decodeClaims(parts[1])
	if err != nil {
		return Claims{}, err
	}
	leeway, t := int64(TokenLeeway/time.Second), now.Unix()
	switch {
	case t >= c.Expires+leeway: // RFC 7519 §4.1.4: valid only before exp
		return Claims{}, fmt.Errorf("%w at %s", ErrTokenExpired, c.ExpiresAt().Format(time.RFC3339))
	case t+leeway < c.NotBefore: // RFC 7519 §4.1.5: valid from nbf on
		return Claims{}, fmt.Errorf("%w before %s", ErrTokenNotYetValid, time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339))
	case c.Room != roomID:
		return Claims{}, fmt.Errorf("%w: token for %s used for %s", ErrTokenWrongRoom, c.Room, roomID)
	}
	return c, nil
}

// splitToken checks the token's size and alphabet and splits it into its
// three parts (RFC 7515 §7.1). Only base64url characters and the two dots
// are allowed, so that each token has a single spelling: Go's decoder
// would otherwise skip line breaks inside the parts.
func splitToken(token string) ([3]string, error) {
	var parts [3]string
	if len(token) > maxTokenLen {
		return parts, fmt.Errorf("%w: longer than %d bytes", ErrTokenMalformed, maxTokenLen)
	}
	for i := range len(token) {
		switch ch := token[i]; {
		case ch >= 'A' && ch <= 'Z', ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '-', ch == '_', ch == '.':
		default:
			return parts, fmt.Errorf("%w: character %q outside base64url", ErrTokenMalformed, ch)
		}
	}
	p := strings.Split(token, ".")
	if len(p) != 3 {
		return parts, fmt.Errorf("%w: want 3 dot-separated parts, got %d", ErrTokenMalformed, len(p))
	}
	copy(parts[:], p)
	return parts, nil
}

// checkHeader accepts only the JOSE header of an HS256 JWT.
func checkHeader(enc string) error {
	raw, err := b64.DecodeString(enc)
	if err != nil {
		return fmt.Errorf("%w: header is not base64url", ErrTokenMalformed)
	}
	var h struct {
		Alg  string          `json:"alg"`
		Typ  string          `json:"typ"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("%w: header is not a JSON object with string alg and typ", ErrTokenMalformed)
	}
	// RFC 8725 §3.1: use only the algorithm we expect; RFC 7518 §3.6:
	// "none" is an unsecured JWS and never accepted here.
	if h.Alg != "HS256" {
		return fmt.Errorf("%w: %q", ErrTokenAlgorithm, truncate(h.Alg, 16))
	}
	// RFC 7519 §5.1: typ, when present, is "JWT" (case-insensitive).
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return fmt.Errorf("%w: typ %q", ErrTokenMalformed, truncate(h.Typ, 16))
	}
	// RFC 7515 §4.1.11: a critical extension we do not know must fail.
	if h.Crit != nil {
		return fmt.Errorf("%w: crit header not supported", ErrTokenMalformed)
	}
	return nil
}

// decodeClaims decodes the payload and checks the claims every token must
// have: our issuer, sub, room, iat and exp, and a lifetime of at most
// MaxTokenLifetime.
func decodeClaims(enc string) (Claims, error) {
	raw, err := b64.DecodeString(enc)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload is not base64url", ErrTokenMalformed)
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrTokenMalformed)
	}
	switch {
	case c.Issuer != TokenIssuer:
		return Claims{}, fmt.Errorf("%w: issuer %q", ErrTokenMalformed, truncate(c.Issuer, 32))
	case c.Subject == "" || c.Room == "" || c.IssuedAt == 0 || c.Expires == 0:
		return Claims{}, fmt.Errorf("%w: sub, room, iat and exp are required", ErrTokenMalformed)
	case c.Expires-max(c.NotBefore, c.IssuedAt) > int64(MaxTokenLifetime/time.Second):
		return Claims{}, fmt.Errorf("%w: lifetime over %s", ErrTokenMalformed, MaxTokenLifetime)
	}
	return c, nil
}

// sign is the HS256 MAC of the signing input (RFC 7518 §3.2).
func (a *Auth) sign(input string) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(input))
	return m.Sum(nil)
}

// truncate shortens attacker-chosen text for error details.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// validName reports whether name is at most maxNameLen printable
// characters and at least minLen.
func validName(name string, minLen int) bool {
	n := utf8.RuneCountInString(name)
	if n < minLen || n > maxNameLen || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
