package rtc

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is an rtc error that knows how the WHIP/WHEP handlers report it: the
// HTTP status (RFC 9110 §15) and the problem type of its RFC 9457 body, so
// every handler maps errors in one place (writeProblem). errors.As with an
// interface holding HTTPStatus finds it through any %w wrapping, as it does
// room's errors.
type Error struct {
	msg    string
	status int
	slug   string
}

// Error returns the lower-case message.
func (e *Error) Error() string { return e.msg }

// HTTPStatus is the status code the handlers answer with.
func (e *Error) HTTPStatus() int { return e.status }

// ProblemType is the RFC 9457 §3.1.1 "type" of the problem+json body: a
// relative URI under ProblemTypeBase naming the error, stable for clients
// to switch on.
func (e *Error) ProblemType() string { return ProblemTypeBase + e.slug }

// Errors of package rtc. Compare with errors.Is; the handlers wrap them with
// %w and the detail (what was wrong with the offer) that ends up in the
// problem's "detail" member.
var (
	// ErrUnsupportedContentType means a WHIP/WHEP POST did not carry
	// Content-Type: application/sdp (RFC 9725 §4.2). 415 (RFC 9110 §15.5.16).
	ErrUnsupportedContentType = &Error{"content type is not application/sdp", http.StatusUnsupportedMediaType, "unsupported-content-type"}

	// ErrBodyTooLarge means the offer exceeded MaxOfferSize; real offers are
	// a few KiB, so anything bigger is a mistake or an attack. 413.
	ErrBodyTooLarge = &Error{"sdp offer too large", http.StatusRequestEntityTooLarge, "body-too-large"}

	// ErrMalformedSDP means the offer is not a parseable SDP (RFC 8866) or
	// lacks what WebRTC requires of an offer (ICE credentials, DTLS
	// fingerprint: RFC 8829 §5.8). 400.
	ErrMalformedSDP = &Error{"malformed sdp offer", http.StatusBadRequest, "malformed-sdp"}

	// ErrNoAudio means the offer has no usable audio m-line: a room
	// participant is audio first (DESIGN.md decision 1). 422 (RFC 9110
	// §15.5.21): the SDP is well formed but cannot be served.
	ErrNoAudio = &Error{"sdp offer has no usable audio media section", http.StatusUnprocessableEntity, "no-audio"}

	// ErrNoOpus means the audio m-line offers no Opus (RFC 7587 §7), the
	// only codec WebRTC participants are mixed in. 415, like
	// room.ErrUnsupportedFormat.
	ErrNoOpus = &Error{"sdp offer has no opus/48000/2 audio codec", http.StatusUnsupportedMediaType, "unsupported-codec"}

	// ErrUnauthorized means the request carried no credentials or ones that
	// are invalid or expired (RFC 9725 §4.5, RFC 6750 §3). 401 with
	// WWW-Authenticate: Bearer.
	ErrUnauthorized = &Error{"missing or invalid credentials", http.StatusUnauthorized, "unauthorized"}

	// ErrForbidden means the credentials are valid but do not grant what
	// the request asks: publishing on WHIP, listening on WHEP, another room.
	// 403.
	ErrForbidden = &Error{"not allowed in this room", http.StatusForbidden, "forbidden"}

	// ErrInvalidRoomID means the {room} path segment is not a room ID
	// (1 to 64 characters from A-Z a-z 0-9 . _ -). 400.
	ErrInvalidRoomID = &Error{"invalid room id", http.StatusBadRequest, "invalid-room-id"}

	// ErrSessionNotFound means a DELETE named a WHIP/WHEP session that does
	// not exist (any more) in that room. 404.
	ErrSessionNotFound = &Error{"session not found", http.StatusNotFound, "session-not-found"}

	// ErrTrickleUnsupported answers PATCH on a session: this server does not
	// take trickled candidates or ICE restarts (RFC 9725 §4.3.1 allows
	// that; the answer already holds every candidate). 405 with Allow.
	ErrTrickleUnsupported = &Error{"trickle ice and ice restarts are not supported", http.StatusMethodNotAllowed, "trickle-unsupported"}

	// ErrGatherTimeout means ICE gathering did not finish in time for a
	// non-trickle answer. 503: the node is unwell, another may do better.
	ErrGatherTimeout = &Error{"ice gathering timed out", http.StatusServiceUnavailable, "gather-timeout"}

	// ErrServerClosed means the server is shutting down and takes no new
	// sessions. 503 (RFC 9110 §15.6.4), so clients try another node.
	ErrServerClosed = &Error{"webrtc server closed", http.StatusServiceUnavailable, "server-closed"}

	// ErrNegotiation means pion refused the offer or failed to answer it
	// for a reason not caught by the checks above. 400: the offer is the
	// only input.
	ErrNegotiation = &Error{"cannot negotiate sdp offer", http.StatusBadRequest, "negotiation-failed"}
)

// Why a Link ended (Link.Err). They are not HTTP answers: a link is the
// client side of WHIP.
var (
	// ErrLinkClosed means this node ended the link: Close, or the relay
	// room let go of it (Detached). The binary does not dial again.
	ErrLinkClosed = errors.New("rtc: link closed")

	// ErrLinkLost means the link ended without this node asking: the
	// PeerConnection failed (the owner node stopped answering ICE
	// consent checks for the disconnect timeout) or closed. The binary
	// dials again, possibly to the room's new owner (failover, DESIGN.md
	// decision 5).
	ErrLinkLost = errors.New("rtc: link lost")
)

// LinkError is a WHIP request of Dial that the remote node refused: its
// HTTP status and the problem+json body (RFC 9457) that says why. errors.Is
// matches it against this package's and package room's errors by the
// problem type, so errors.Is(err, room.ErrNotFound) holds for a 404 about a
// room and errors.Is(err, ErrUnauthorized) for a refused token.
type LinkError struct {
	// Op is the request: "POST http://node-b:8080/whip/board".
	Op string
	// Status is the HTTP status code.
	Status int
	// Problem is the decoded body; only Status is set when the body was
	// not problem+json.
	Problem Problem
}

// Error names the request, the status and the problem's title and detail.
func (e *LinkError) Error() string {
	p := e.Problem
	what := p.Title
	switch {
	case strings.Contains(p.Detail, p.Title):
		what = p.Detail // mediagate's details repeat the title
	case p.Detail != "":
		what += ": " + p.Detail
	case what == "":
		what = strings.ToLower(http.StatusText(e.Status))
	}
	return fmt.Sprintf("rtc: link: %s: %d %s", e.Op, e.Status, what)
}

// Is reports whether target is the rtc or room error whose problem type
// the remote node answered with.
func (e *LinkError) Is(target error) bool {
	if e.Problem.Type == "" || e.Problem.Type == "about:blank" {
		return false
	}
	if t, ok := target.(*Error); ok {
		return t.ProblemType() == e.Problem.Type
	}
	for _, rs := range roomSlugs {
		if rs.err == target {
			return ProblemTypeBase+rs.slug == e.Problem.Type
		}
	}
	return false
}
