package rtc

import (
	"net/http"

	"github.com/mediagate/mediagate/room"
)

// Grant is what an Authorizer allows one request: who the participant is
// and what it may do in the room.
type Grant struct {
	// ParticipantID names the participant in the room (from a join
	// token's identity); empty gets a random "webrtc-..." ID (never the
	// session ID, which is the session's DELETE capability). A second
	// session with the same ID is refused with room.ErrParticipantExists.
	ParticipantID room.ParticipantID
	// Name is the display name in the participant list.
	Name string
	// Publish allows a WHIP session: sending audio into the room.
	Publish bool
	// Listen allows a WHEP session: receiving the room's full mix.
	Listen bool
	// Present allows a WHIP publisher's H.264 video to become the room's
	// presenter video; without it the video is received and discarded.
	Present bool
}

// Authorizer decides whether a request may join a room. The server calls
// it first, before reading the body. listenOnly is true on WHEP. It
// returns an error carrying its HTTP status (ErrUnauthorized for missing or
// bad credentials, ErrForbidden for a valid token for another room or
// right, or any error with an HTTPStatus method); errors without a status
// are answered 401.
type Authorizer interface {
	Authorize(r *http.Request, roomID room.ID, listenOnly bool) (Grant, error)
}

// AuthorizerFunc adapts a function to Authorizer, for tests and for api's
// token checker.
type AuthorizerFunc func(r *http.Request, roomID room.ID, listenOnly bool) (Grant, error)

// Authorize calls f.
func (f AuthorizerFunc) Authorize(r *http.Request, roomID room.ID, listenOnly bool) (Grant, error) {
	return f(r, roomID, listenOnly)
}

// AllowAll lets everybody publish, listen and present in every room under
// a random identity and no name: for tests and fully open deployments.
func AllowAll() Authorizer {
	return AuthorizerFunc(func(*http.Request, room.ID, bool) (Grant, error) {
		return Grant{Publish: true, Listen: true, Present: true}, nil
	})
}

// denyAll is the default Authorizer: nobody joins until one is configured.
type denyAll struct{}

func (denyAll) Authorize(*http.Request, room.ID, bool) (Grant, error) {
	return Grant{}, ErrUnauthorized
}
