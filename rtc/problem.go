package rtc

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/mediagate/mediagate/room"
)

// ProblemTypeBase prefixes the "type" of every problem this package writes.
// It is a relative reference (RFC 9457 §3.1.1, resolved against the request
// URI), so api can serve a page per problem under it later.
const ProblemTypeBase = "/problems/"

// ContentTypeProblem is the media type of error bodies (RFC 9457 §3).
const ContentTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem details object, the body of every error
// answer of the WHIP/WHEP handlers.
type Problem struct {
	// Type names the kind of problem (ProblemTypeBase + a slug); clients
	// switch on it.
	Type string `json:"type"`
	// Title is the short, fixed summary of the type.
	Title string `json:"title"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence: what in the request was wrong.
	Detail string `json:"detail,omitempty"`
}

// roomSlugs names the problem types of room's errors, which know their
// status but not a problem type.
var roomSlugs = []struct {
	err  error
	slug string
}{
	{room.ErrNotFound, "room-not-found"},
	{room.ErrRoomFull, "room-full"},
	{room.ErrRoomLocked, "room-locked"},
	{room.ErrRoomClosed, "room-closed"},
	{room.ErrParticipantExists, "participant-exists"},
	{room.ErrUnsupportedFormat, "unsupported-codec"},
	{room.ErrManagerClosed, "server-closed"},
	{room.ErrUnavailable, "room-unavailable"},
}

// problemFor builds the problem for err from the first error in its chain
// that knows its HTTP status (rtc's, room's, api's through an interface):
// its own message is the title, its ProblemType method (or room's slug)
// the type, and err's whole text the detail. Anything else is a 500 whose
// text stays in the log, since it may be internal.
func problemFor(err error) Problem {
	var st interface {
		error
		HTTPStatus() int
	}
	if !errors.As(err, &st) {
		status := http.StatusInternalServerError
		return Problem{Type: "about:blank", Title: http.StatusText(status), Status: status}
	}
	p := Problem{Type: "about:blank", Title: st.Error(), Status: st.HTTPStatus(), Detail: err.Error()}
	var typed interface{ ProblemType() string }
	if errors.As(err, &typed) {
		p.Type = typed.ProblemType()
		return p
	}
	for _, rs := range roomSlugs {
		if errors.Is(err, rs.err) {
			p.Type = ProblemTypeBase + rs.slug
			break
		}
	}
	return p
}

// writeProblem answers with the problem for err. A 401 carries a Bearer
// challenge (RFC 6750 §3), the error's own when it has a WWWAuthenticate
// method (api's token errors); a 503 carries Retry-After.
func writeProblem(w http.ResponseWriter, err error) Problem {
	p := problemFor(err)
	h := w.Header()
	h.Set("Content-Type", ContentTypeProblem)
	h.Set("Cache-Control", "no-store")
	var challenge interface{ WWWAuthenticate() string }
	switch {
	case errors.As(err, &challenge) && challenge.WWWAuthenticate() != "":
		h.Set("WWW-Authenticate", challenge.WWWAuthenticate())
	case p.Status == http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="mediagate"`)
	case p.Status == http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(5))
	}
	body, _ := json.Marshal(p) // a struct of strings and an int cannot fail
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
	return p
}
