package room

import (
	"fmt"
	"net/http"
)

// Error is a room error that knows how the protocol edges report it: the
// WHIP/admin handlers answer with HTTPStatus, the SIP bridge with SIPStatus,
// so each maps errors in one place (errors.As with an interface holding the
// method finds it through any %w wrapping).
type Error struct {
	msg  string
	http int
	sip  int
}

// Error returns the lower-case message.
func (e *Error) Error() string { return e.msg }

// HTTPStatus is the status code an HTTP handler answers with (RFC 9110 §15).
func (e *Error) HTTPStatus() int { return e.http }

// SIPStatus is the final response code a SIP handler answers an INVITE with
// (RFC 3261 §21).
func (e *Error) SIPStatus() int { return e.sip }

// Errors of package room. Compare with errors.Is; they are wrapped with %w
// and detail (room or participant) by the methods that return them.
var (
	// ErrNotFound means no room has the ID (and rooms are not created on
	// join). RFC 9110 §15.5.5 / RFC 3261 §21.4.5: 404 on both sides.
	ErrNotFound = &Error{"room not found", http.StatusNotFound, 404}

	// ErrRoomFull means the room already holds its maximum number of
	// participants. HTTP 409 Conflict (RFC 9110 §15.5.10: the room's current
	// state refuses the request, retrying later may work); SIP 486 Busy Here
	// (RFC 3261 §21.4.24), which phones show as busy.
	ErrRoomFull = &Error{"room is full", http.StatusConflict, 486}

	// ErrRoomLocked means an operator locked the room against new joins.
	// 403 Forbidden on both sides (RFC 9110 §15.5.4, RFC 3261 §21.4.4).
	ErrRoomLocked = &Error{"room is locked", http.StatusForbidden, 403}

	// ErrRoomClosed means the room shut down (closed by an operator, emptied
	// past its grace period, or its manager stopped) while the request was
	// under way; for a caller it is as gone as a room never created.
	// HTTP 410 Gone; SIP 480 Temporarily Unavailable (RFC 3261 §21.4.18),
	// since the same room ID may open again.
	ErrRoomClosed = &Error{"room closed", http.StatusGone, 480}

	// ErrRoomExists means Create was asked for an ID that is already open:
	// creating it again would silently drop the first room's options.
	ErrRoomExists = &Error{"room already exists", http.StatusConflict, 500}

	// ErrParticipantExists means a participant with the same ID is already
	// in the room; IDs name RTP sessions and WHIP resources, so a second one
	// would make Leave and Mute ambiguous.
	ErrParticipantExists = &Error{"participant already in room", http.StatusConflict, 482}

	// ErrParticipantNotFound means Mute, Kick or Leave named a participant
	// that is not (or no longer) in the room.
	ErrParticipantNotFound = &Error{"participant not found", http.StatusNotFound, 481}

	// ErrParticipantRemoved is handed to Participant.Detached when an
	// operator removed the participant (Kick), so it can tell the peer why
	// (BYE with a reason, WHIP session deleted).
	ErrParticipantRemoved = &Error{"participant removed from room", http.StatusGone, 480}

	// ErrUnsupportedFormat means the encoder factory refused a participant's
	// output format. HTTP 415 Unsupported Media Type; SIP 488 Not Acceptable
	// Here (RFC 3261 §21.4.26), the answer to an unusable codec.
	ErrUnsupportedFormat = &Error{"unsupported output format", http.StatusUnsupportedMediaType, 488}

	// ErrInvalidParticipant means Join got a participant without an ID or a
	// nil participant: a programming error on the caller's side.
	ErrInvalidParticipant = &Error{"invalid participant", http.StatusBadRequest, 500}

	// ErrManagerClosed means the Manager is shutting down and takes no new
	// rooms or joins. 503 Service Unavailable on both sides (RFC 9110
	// §15.6.4, RFC 3261 §21.5.4), so peers try another node.
	ErrManagerClosed = &Error{"room manager closed", http.StatusServiceUnavailable, 503}
)

// ErrUnavailable means the room cannot be opened on this node now: the
// shared cluster state that decides which node hosts it cannot be reached.
// 503 on both sides, so the peer retries (later, or on another node).
var ErrUnavailable = &Error{"room cannot be opened now", http.StatusServiceUnavailable, 503}

// MovedError means the room is open on another node of the cluster
// (decision 5 of DESIGN.md): the WHIP/WHEP handlers and the join page
// redirect to URL with 307; the SIP bridge links the call to that node.
type MovedError struct {
	Room ID
	// Node names the node that hosts the room.
	Node string
	// URL is that node's public HTTP base URL (scheme, host, port), with
	// no path: the request's own path is appended to it.
	URL string
}

// Error names the room and the node.
func (e *MovedError) Error() string {
	return fmt.Sprintf("room %s is hosted on node %s", e.Room, e.Node)
}

// HTTPStatus is 307 Temporary Redirect (RFC 9110 §15.4.8): the method and
// body are repeated at the owner, which WHIP's POST needs.
func (e *MovedError) HTTPStatus() int { return http.StatusTemporaryRedirect }

// SIPStatus is 302 Moved Temporarily, for a SIP edge that cannot link the
// call itself; the bridge links instead.
func (e *MovedError) SIPStatus() int { return 302 }
