package stream

import "net/http"

// Error is a stream error that knows the HTTP status the admin API answers
// it with, so handlers map errors in one place (errors.As with an interface
// holding HTTPStatus finds it through any %w wrapping).
type Error struct {
	msg    string
	status int
}

// Error returns the lower-case message.
func (e *Error) Error() string { return e.msg }

// HTTPStatus is the status code an HTTP handler answers with (RFC 9110 §15).
func (e *Error) HTTPStatus() int { return e.status }

// Errors of package stream. Compare with errors.Is; they are wrapped with %w
// and detail that names the destination by its masked URL (scheme, host and
// application, never the stream key).
var (
	// ErrInvalidURL means a destination URL cannot be parsed or lacks a
	// part RTMP needs: a host, an application, a stream key. It also
	// refuses credentials in the URL, which would end up in logs. 400.
	ErrInvalidURL = &Error{"invalid destination url", http.StatusBadRequest}

	// ErrUnsupportedScheme means the URL's scheme is not rtmp or rtmps
	// (rtmpt, rtmpe, srt, http... are not spoken here). 400.
	ErrUnsupportedScheme = &Error{"unsupported destination scheme", http.StatusBadRequest}

	// ErrPrivateAddress means the destination's host is, or resolves to, a
	// loopback, private, link-local, shared (CGNAT), multicast or
	// unspecified address: the egress would otherwise let an admin probe
	// the operator's own network. Options.AllowPrivate lifts it. 422.
	ErrPrivateAddress = &Error{"destination resolves to a non-public address", http.StatusUnprocessableEntity}

	// ErrResolve means the destination's host name did not resolve when it
	// was added. 422.
	ErrResolve = &Error{"destination host does not resolve", http.StatusUnprocessableEntity}

	// ErrInvalidID means a destination ID is longer than 64 bytes or has
	// characters other than letters, digits, '.', '_' and '-': IDs appear
	// in URLs of the admin API and in logs. 400.
	ErrInvalidID = &Error{"invalid destination id", http.StatusBadRequest}

	// ErrDuplicate means an egress already has a destination with the ID
	// or the same URL and key. 409.
	ErrDuplicate = &Error{"destination already added", http.StatusConflict}

	// ErrNotFound means the egress has no destination with the ID. 404.
	ErrNotFound = &Error{"destination not found", http.StatusNotFound}

	// ErrClosed means the egress is closed (Close, or its room ended) and
	// takes no destinations. 409.
	ErrClosed = &Error{"egress closed", http.StatusConflict}

	// ErrOptions means Options hold an unusable setting; the message names
	// the field. 500: it is the operator's configuration, not the request.
	ErrOptions = &Error{"invalid stream options", http.StatusInternalServerError}

	// ErrRejected means the server refused the stream: it answered connect
	// with _error, answered publish with an error status, or closed the
	// connection in reply to publish (nginx-rtmp's on_publish, Twitch and
	// YouTube do this for an unknown key). The destination stops in
	// StateRejected: retrying a wrong key only gets the address blocked.
	// 422.
	ErrRejected = &Error{"server rejected the stream", http.StatusUnprocessableEntity}

	// ErrCertificate means the server's TLS certificate did not verify
	// against the system roots plus Options.ExtraRootCAs (unknown
	// authority, expired, wrong name). The destination stops in StateError:
	// retrying cannot fix a certificate. 502.
	ErrCertificate = &Error{"server certificate not trusted", http.StatusBadGateway}

	// ErrTimeout means a step of the connection (dial, TLS, RTMP handshake,
	// connect, createStream, publish) or a write got no answer in time; the
	// destination backs off and retries. 504.
	ErrTimeout = &Error{"destination timed out", http.StatusGatewayTimeout}

	// ErrProtocol means the server sent something that is not RTMP as this
	// package speaks it (a bad chunk, an oversized message, a malformed
	// AMF0 value); the destination backs off and retries. 502.
	ErrProtocol = &Error{"rtmp protocol error", http.StatusBadGateway}

	// ErrStale means this node no longer owns the egress's room: the
	// fencing epoch it was started with (Options.Epoch) is stale, as
	// Options.Fence says (decision 4). New and Add refuse to start with
	// it; a destination that learns it, before a connection or while live,
	// stops in StateFenced without pushing another byte and is not
	// retried. 409: another node holds the room now.
	ErrStale = &Error{"room ownership lost: stale epoch", http.StatusConflict}

	// ErrFenceUnavailable means Options.Fence could not tell whether this
	// node owns the room (the shared state is unreachable). A destination
	// treats it as a network failure: it backs off and asks again, pushing
	// nothing until the fence confirms the epoch; one that is live carries
	// on. 503.
	ErrFenceUnavailable = &Error{"room ownership cannot be checked now", http.StatusServiceUnavailable}

	// ErrDisconnected means the server closed a live connection or sent an
	// error status while live; the destination backs off and retries. 502.
	ErrDisconnected = &Error{"server closed the stream", http.StatusBadGateway}
)
