package api

import "net/http"

// Error is an api error that knows how it is answered, so handlers map
// errors in one place (writeProblem): its HTTP status, its problem type
// (RFC 9457 §3.1.1) and, for errors about bearer tokens, its RFC 6750 §3.1
// error code for the WWW-Authenticate challenge. errors.As with an
// interface holding one of the methods finds it through any %w wrapping,
// which is how packages that cannot import api (rtc) read it.
type Error struct {
	msg    string
	status int
	slug   string // problem type: ProblemTypeBase + slug
	// bearer is the RFC 6750 §3.1 error code; "" for none. challenge says
	// whether the answer carries a Bearer challenge at all.
	bearer    string
	challenge bool
}

// Error returns the lower-case message.
func (e *Error) Error() string { return e.msg }

// HTTPStatus is the status code an HTTP handler answers with (RFC 9110 §15).
func (e *Error) HTTPStatus() int { return e.status }

// ProblemType is the "type" of the problem details answer (RFC 9457
// §3.1.1), which the join page switches on.
func (e *Error) ProblemType() string { return ProblemTypeBase + e.slug }

// WWWAuthenticate is the value of the WWW-Authenticate header a 401 or 403
// answer must carry (RFC 9110 §11.6.1, RFC 6750 §3), or "" when the error
// is not about the bearer token. A request without a token gets the bare
// challenge; a bad token gets error="invalid_token", a token without the
// needed grant error="insufficient_scope".
func (e *Error) WWWAuthenticate() string {
	if !e.challenge {
		return ""
	}
	v := `Bearer realm="` + realm + `"`
	if e.bearer != "" {
		v += `, error="` + e.bearer + `", error_description="` + e.msg + `"`
	}
	return v
}

// realm names the protection space in Bearer challenges (RFC 6750 §3).
const realm = "mediagate"

// Errors of package api. Compare with errors.Is; they are wrapped with %w
// and detail by the functions that return them. No message or detail ever
// holds a token, PIN or secret.
var (
	// ErrTokenMissing means the request carried no bearer token where one
	// is needed. 401 with a bare challenge (RFC 6750 §3.1: no error code
	// when the request lacks any authentication).
	ErrTokenMissing = &Error{"no bearer token", http.StatusUnauthorized, "token-missing", "", true}

	// ErrTokenMalformed means the token is not a well-formed JWS compact
	// serialization of our claims (RFC 7515 §7.1, RFC 7519 §7.2), or lacks
	// a required claim.
	ErrTokenMalformed = &Error{"malformed token", http.StatusUnauthorized, "token-malformed", "invalid_token", true}

	// ErrTokenAlgorithm means the token's header names an algorithm other
	// than HS256. "none" and every other algorithm are refused before the
	// signature is looked at (RFC 8725 §3.1).
	ErrTokenAlgorithm = &Error{"token algorithm not accepted", http.StatusUnauthorized, "token-algorithm", "invalid_token", true}

	// ErrTokenSignature means the signature does not match: the token was
	// changed, or signed with another secret (another cluster, or before a
	// restart when no token_secret is configured).
	ErrTokenSignature = &Error{"bad token signature", http.StatusUnauthorized, "token-signature", "invalid_token", true}

	// ErrTokenExpired means the token's exp has passed (RFC 7519 §4.1.4).
	ErrTokenExpired = &Error{"token expired", http.StatusUnauthorized, "token-expired", "invalid_token", true}

	// ErrTokenNotYetValid means the token's nbf is still ahead (RFC 7519
	// §4.1.5).
	ErrTokenNotYetValid = &Error{"token not yet valid", http.StatusUnauthorized, "token-not-yet-valid", "invalid_token", true}

	// ErrTokenWrongRoom means the token is for another room: it is invalid
	// for this resource, so 401 invalid_token rather than 403.
	ErrTokenWrongRoom = &Error{"token is for another room", http.StatusUnauthorized, "token-wrong-room", "invalid_token", true}

	// ErrTokenGrant means the token is valid for the room but does not
	// allow what was asked (publishing, listening). 403 with
	// error="insufficient_scope" (RFC 6750 §3.1).
	ErrTokenGrant = &Error{"token does not grant this", http.StatusForbidden, "insufficient-grant", "insufficient_scope", true}

	// ErrTokenRequest means IssueToken was asked for a token it must not
	// make: no room or subject, or a lifetime outside (0, 24h].
	ErrTokenRequest = &Error{"invalid token request", http.StatusBadRequest, "invalid-token-request", "", false}

	// ErrWrongPIN means the PIN given to the join page is not the room's.
	ErrWrongPIN = &Error{"wrong pin", http.StatusForbidden, "wrong-pin", "", false}

	// ErrTooManyAttempts means this client gave too many wrong PINs for the
	// room recently; the answer says when to retry (429, RFC 6585 §4).
	ErrTooManyAttempts = &Error{"too many wrong pins", http.StatusTooManyRequests, "too-many-attempts", "", false}

	// ErrInvitationRequired means the room has neither a PIN nor open
	// access: only tokens from the operator's platform let anyone in.
	ErrInvitationRequired = &Error{"room is by invitation only", http.StatusForbidden, "invitation-required", "", false}

	// ErrBadRequest means the request body or a parameter is not what the
	// endpoint takes; the detail says what.
	ErrBadRequest = &Error{"bad request", http.StatusBadRequest, "bad-request", "", false}

	// ErrUnsupportedMediaType means a JSON endpoint got another content
	// type. Requiring application/json also makes browsers preflight
	// cross-origin requests, which CSRF cannot pass.
	ErrUnsupportedMediaType = &Error{"content type is not application/json", http.StatusUnsupportedMediaType, "unsupported-content-type", "", false}

	// ErrCrossOrigin means a browser sent a state-changing request from
	// another origin (CSRF).
	ErrCrossOrigin = &Error{"cross-origin request refused", http.StatusForbidden, "cross-origin", "", false}

	// ErrAdminKeyMissing means an admin API request carried no API key.
	// 401 with a bare challenge.
	ErrAdminKeyMissing = &Error{"no api key", http.StatusUnauthorized, "api-key-missing", "", true}

	// ErrAdminKeyInvalid means the API key is not one of auth.admin_keys.
	// 401 with error="invalid_token" (RFC 6750 §3.1).
	ErrAdminKeyInvalid = &Error{"api key not accepted", http.StatusUnauthorized, "api-key-invalid", "invalid_token", true}

	// ErrAdminKeyRevoked means the API key was made through the admin API
	// and has since been revoked. 401 with error="invalid_token"; the key
	// stays revoked.
	ErrAdminKeyRevoked = &Error{"api key revoked", http.StatusUnauthorized, "api-key-revoked", "invalid_token", true}

	// ErrForbidden means the API key is valid but may not do this: a
	// viewer key asked for a change, or the resource belongs to another
	// tenant than the key's. 403 with error="insufficient_scope" (RFC 6750
	// §3.1).
	ErrForbidden = &Error{"forbidden", http.StatusForbidden, "forbidden", "insufficient_scope", true}

	// ErrKeyNotFound means no API key has the ID of the request. 404.
	ErrKeyNotFound = &Error{"no such api key", http.StatusNotFound, "key-not-found", "", false}

	// ErrBootstrapKey means the request would revoke a bootstrap key of
	// auth.admin_keys, which only the configuration can: remove its hash
	// there. 409.
	ErrBootstrapKey = &Error{"bootstrap keys are revoked in auth.admin_keys", http.StatusConflict, "bootstrap-key", "", false}

	// ErrNoSuchResource means an /api/v1 path or method that does not
	// exist. 404.
	ErrNoSuchResource = &Error{"no such resource", http.StatusNotFound, "no-such-resource", "", false}

	// ErrAlreadyRecording means a recording of the room was asked for while
	// one is running; stop it first. 409.
	ErrAlreadyRecording = &Error{"room is already being recorded", http.StatusConflict, "already-recording", "", false}

	// ErrNotRecording means a recording of the room was to be stopped, but
	// none is running. 409.
	ErrNotRecording = &Error{"room is not being recorded", http.StatusConflict, "not-recording", "", false}

	// ErrAlreadyStreaming means an egress was started for a room that
	// already streams; add destinations to it, or stop it first. 409.
	ErrAlreadyStreaming = &Error{"room is already streaming", http.StatusConflict, "already-streaming", "", false}

	// ErrNotStreaming means the room has no egress on this node. 404.
	ErrNotStreaming = &Error{"room is not streaming", http.StatusNotFound, "not-streaming", "", false}

	// ErrLinkInvalid means a signed download link's signature does not
	// match: it was changed, made for another recording, or signed with
	// another key. 403: the link is the only credential it carries.
	ErrLinkInvalid = &Error{"download link is not valid", http.StatusForbidden, "link-invalid", "", false}

	// ErrLinkExpired means a signed download link is past its expiry; ask
	// for a new one (POST /api/v1/recordings/{id}/link). 403.
	ErrLinkExpired = &Error{"download link expired", http.StatusForbidden, "link-expired", "", false}

	// ErrDraining means the node is shutting down and takes no new
	// sessions; the client should try again (another node, or this one
	// after a restart). 503 with Retry-After.
	ErrDraining = &Error{"node is draining; try again", http.StatusServiceUnavailable, "draining", "", false}

	// ErrClusterUnavailable means the shared cluster state (live nodes,
	// the recordings index, room owners) could not be read, so the node
	// cannot tell where to look. 503 with Retry-After.
	ErrClusterUnavailable = &Error{"cluster state unavailable; try again", http.StatusServiceUnavailable, "cluster-unavailable", "", false}

	// ErrNodeUnavailable means the recording is held by a node that is
	// not alive now (not among the live nodes); the detail names the
	// node. 503: it may come back.
	ErrNodeUnavailable = &Error{"the node holding this recording is not available", http.StatusServiceUnavailable, "node-unavailable", "", false}

	// ErrNodeUnreachable means the request was forwarded to the node
	// holding the recording (or hosting the room), which is alive by the
	// cluster state but did not answer. 502 Bad Gateway (RFC 9110
	// §15.6.3), or 504 Gateway Timeout when it did not answer in time.
	ErrNodeUnreachable = &Error{"the node holding the recording or room did not answer", http.StatusBadGateway, "node-unreachable", "", false}

	// ErrWebhookSignatureMalformed means a Mediagate-Signature header is
	// not "t=<unix seconds>,v1=<hex>" (VerifyWebhook). A receiver answers
	// 400.
	ErrWebhookSignatureMalformed = &Error{"malformed webhook signature header", http.StatusBadRequest, "webhook-signature-malformed", "", false}

	// ErrWebhookTimestamp means a webhook's signature was made too long
	// ago (or too far ahead) for VerifyWebhook's tolerance: a replay, or
	// clocks far apart. A receiver answers 401 and ignores the request.
	ErrWebhookTimestamp = &Error{"webhook timestamp outside the tolerance", http.StatusUnauthorized, "webhook-timestamp", "", false}

	// ErrWebhookSignature means no signature of the header is the HMAC of
	// the body under the receiver's secret: a wrong secret, or a body
	// changed on the way. A receiver answers 401 and ignores the request.
	ErrWebhookSignature = &Error{"webhook signature does not match", http.StatusUnauthorized, "webhook-signature", "", false}
)
