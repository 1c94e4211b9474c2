package api

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/stream"
)

// ProblemTypeBase prefixes the "type" of every problem this package
// writes. It is the same relative reference rtc uses (RFC 9457 §3.1.1:
// resolved against the request URI), so the join page switches on one set
// of slugs whichever handler answered, and a node can serve a page per
// problem under it later.
const ProblemTypeBase = "/problems/"

// ContentTypeProblem is the media type of error bodies (RFC 9457 §3).
const ContentTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem details object: the body of every error
// answer of the API.
type Problem struct {
	// Type names the kind of problem (ProblemTypeBase + a slug, or
	// "about:blank" when the status says it all); clients switch on it.
	Type string `json:"type"`
	// Title is the short, fixed summary of the type.
	Title string `json:"title"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
}

// roomSlugs names the problem types of room's errors, which know their
// status but not a problem type; the same slugs as rtc's.
var roomSlugs = []struct {
	err  error
	slug string
}{
	{room.ErrNotFound, "room-not-found"},
	{room.ErrRoomFull, "room-full"},
	{room.ErrRoomLocked, "room-locked"},
	{room.ErrRoomClosed, "room-closed"},
	{room.ErrParticipantExists, "participant-exists"},
	{room.ErrParticipantNotFound, "participant-not-found"},
	{room.ErrManagerClosed, "server-closed"},
	{room.ErrUnavailable, "room-unavailable"},
}

// recorderSlugs names the problem types of recorder's errors, which know
// their status but not a problem type.
var recorderSlugs = []struct {
	err  error
	slug string
}{
	{recorder.ErrInvalidID, "invalid-recording-id"},
	{recorder.ErrInvalidTenant, "invalid-tenant"},
	{recorder.ErrInvalidArgument, "bad-request"},
	{recorder.ErrUnknownPolicy, "unknown-policy"},
	{recorder.ErrNotFound, "recording-not-found"},
	{recorder.ErrExpired, "recording-expired"},
	{recorder.ErrDeleted, "recording-deleted"},
	{recorder.ErrActive, "recording-in-progress"},
	{recorder.ErrLegalHold, "legal-hold"},
	{recorder.ErrRetentionMin, "retention-minimum"},
	{recorder.ErrRetentionMax, "retention-maximum"},
	{recorder.ErrRetentionShorten, "retention-shorten"},
	{recorder.ErrClosed, "server-closed"},
}

// streamSlugs names the problem types of stream's errors, which know
// their status but not a problem type.
var streamSlugs = []struct {
	err  error
	slug string
}{
	{stream.ErrInvalidURL, "invalid-destination-url"},
	{stream.ErrUnsupportedScheme, "unsupported-destination-scheme"},
	{stream.ErrPrivateAddress, "private-destination"},
	{stream.ErrResolve, "destination-unresolvable"},
	{stream.ErrInvalidID, "invalid-destination-id"},
	{stream.ErrDuplicate, "duplicate-destination"},
	{stream.ErrNotFound, "destination-not-found"},
	{stream.ErrClosed, "egress-closed"},
}

// retryError is an error answered with a Retry-After header (RFC 9110
// §10.2.3).
type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// RetryAfter is how long the client should wait before trying again.
func (e *retryError) RetryAfter() time.Duration { return e.after }

// problemFor builds the problem for err: status and type from an api,
// room or recorder error anywhere in its chain (a *room.MovedError is 307
// "room-moved"; writeProblem adds its Location), 500 for anything else. Only those
// errors put their message in Detail; others are internal and stay in the
// log.
func problemFor(err error) Problem {
	p := Problem{Type: "about:blank", Status: http.StatusInternalServerError}
	var apiErr *Error
	var withStatus interface{ HTTPStatus() int }
	var moved *room.MovedError
	switch {
	case errors.As(err, &apiErr):
		p.Type, p.Status, p.Title = apiErr.ProblemType(), apiErr.status, apiErr.msg
		p.Detail = err.Error()
	case errors.As(err, &moved):
		p.Type, p.Status, p.Title = ProblemTypeBase+"room-moved", moved.HTTPStatus(), "room is hosted on another node"
		p.Detail = err.Error()
	case errors.As(err, &withStatus):
		p.Status = withStatus.HTTPStatus()
		p.Title = http.StatusText(p.Status)
		for _, rs := range slices.Concat(roomSlugs, recorderSlugs, streamSlugs) {
			if errors.Is(err, rs.err) {
				p.Type, p.Title = ProblemTypeBase+rs.slug, rs.err.Error()
				break
			}
		}
		p.Detail = err.Error()
	default:
		p.Title = http.StatusText(p.Status)
	}
	return p
}

// writeProblem answers with the problem for err, with the Bearer challenge
// of token errors and the Retry-After of rate limits, and logs the errors
// that are the server's fault.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	h := w.Header()
	h.Set("Content-Type", ContentTypeProblem)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	var challenge interface{ WWWAuthenticate() string }
	if errors.As(err, &challenge) && challenge.WWWAuthenticate() != "" {
		h.Set("WWW-Authenticate", challenge.WWWAuthenticate())
	}
	var retry interface{ RetryAfter() time.Duration }
	switch {
	case errors.As(err, &retry):
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.RetryAfter().Seconds()))))
	case errors.Is(err, room.ErrUnavailable):
		h.Set("Retry-After", strconv.Itoa(int(clusterRetryAfter.Seconds())))
	}
	var moved *room.MovedError
	if errors.As(err, &moved) && moved.URL != "" {
		// RFC 9110 §15.4.8: the same request, repeated at the owner.
		h.Set("Location", strings.TrimSuffix(moved.URL, "/")+r.URL.RequestURI())
	}
	if p.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "route", r.Pattern, "err", err)
	}
	body, _ := json.Marshal(p) // a struct of strings and an int cannot fail
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}
