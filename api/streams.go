package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/stream"
)

// RoomStreamer starts, changes and stops the live streams (egresses) of
// rooms for the admin API. The node's wiring implements it: one
// stream.Egress per room, fed the room's mix and presenter video.
// Destinations come in with their stream keys; everything that comes back
// names them by masked URL only.
type RoomStreamer interface {
	// StartStream starts an egress of the open room id publishing to ds
	// (ctx bounds the destinations' checks); it fails with
	// ErrAlreadyStreaming, room.ErrNotFound when the room is not open on
	// this node, or a stream error (bad URL, private address...), and
	// then starts nothing.
	StartStream(ctx context.Context, id room.ID, ds []stream.Destination) (stream.Status, error)
	// AddDestination adds d to the room's egress; ErrNotStreaming when
	// it has none.
	AddDestination(ctx context.Context, id room.ID, d stream.Destination) (stream.DestinationStatus, error)
	// RemoveDestination stops publishing to destination d;
	// ErrNotStreaming, or stream.ErrNotFound.
	RemoveDestination(id room.ID, d stream.DestinationID) error
	// StopStream closes the room's egress; ErrNotStreaming when it has
	// none.
	StopStream(id room.ID) error
	// StreamStatus is the room's egress; ErrNotStreaming when it has none.
	StreamStatus(id room.ID) (stream.Status, error)
	// Streams are the egresses of this node, in room order.
	Streams() []stream.Status
}

// WithStreams mounts the admin API's live stream routes (each an admin
// action, audited, behind an API key; changes need an admin key of the
// room's tenant):
//
//	POST   /api/v1/rooms/{room}/egresses                     start: {destinations:[{id,name,url,key}]}
//	GET    /api/v1/rooms/{room}/egresses                     the room's egress and its destinations
//	DELETE /api/v1/rooms/{room}/egresses                     stop it
//	POST   /api/v1/rooms/{room}/egresses/destinations        add one: {id,name,url,key}
//	DELETE /api/v1/rooms/{room}/egresses/destinations/{id}   remove one
//	GET    /api/v1/egresses                                  every egress the key's tenant may see (on every node of a cluster)
//
// Stream keys are write-only: answers show the masked URL (scheme, host,
// application). The routes are mounted only together with WithAdmin.
func WithStreams(rs RoomStreamer) Option {
	return func(s *Server) { s.streams = rs }
}

// mountStreams registers the live stream routes.
func (s *Server) mountStreams() {
	s.mux.Handle("POST /api/v1/rooms/{room}/egresses", s.adminOnly("streams.start", s.hosted(true, s.streamStart)))
	s.mux.Handle("GET /api/v1/rooms/{room}/egresses", s.adminOnly("streams.get", s.hosted(false, s.streamGet)))
	s.mux.Handle("DELETE /api/v1/rooms/{room}/egresses", s.adminOnly("streams.stop", s.hosted(true, s.streamStop)))
	s.mux.Handle("POST /api/v1/rooms/{room}/egresses/destinations", s.adminOnly("streams.add", s.hosted(true, s.streamAdd)))
	s.mux.Handle("DELETE /api/v1/rooms/{room}/egresses/destinations/{id}", s.adminOnly("streams.remove", s.hosted(true, s.streamRemove)))
	s.mux.Handle("GET /api/v1/egresses", s.adminOnly("streams.list", s.streamList))
}

// Limits of stream requests.
const (
	// maxDestinations bounds the destinations of one start request: each
	// is a connection and an encoder's worth of bandwidth.
	maxDestinations = 10
	// maxDestinationName bounds a destination's label.
	maxDestinationName = 100
)

// destinationRequest is one destination of a start request, or the body
// of an add request. Key is write-only.
type destinationRequest struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	URL  string `json:"url"`
	Key  string `json:"key,omitempty"`
}

// destination checks what stream does not (the name) and converts.
func (d destinationRequest) destination() (stream.Destination, error) {
	if utf8.RuneCountInString(d.Name) > maxDestinationName || !printableText(d.Name) {
		return stream.Destination{}, fmt.Errorf("%w: name must be at most %d printable characters", ErrBadRequest, maxDestinationName)
	}
	if d.URL == "" {
		return stream.Destination{}, fmt.Errorf("%w: url is required", ErrBadRequest)
	}
	return stream.Destination{ID: stream.DestinationID(d.ID), Name: d.Name, URL: d.URL, Key: d.Key}, nil
}

// startRequest is the body of POST /api/v1/rooms/{room}/egresses.
type startRequest struct {
	Destinations []destinationRequest `json:"destinations"`
}

// egressJSON is an egress as the admin API shows it.
type egressJSON struct {
	Room         string            `json:"room"`
	Tenant       string            `json:"tenant"`
	StartedAt    time.Time         `json:"started_at"`
	Video        string            `json:"video"`
	Ended        bool              `json:"ended"`
	Destinations []destinationJSON `json:"destinations"`
	// Node is the node the egress runs on, in a cluster (WithNodes).
	Node string `json:"node,omitempty"`
}

// destinationJSON is a destination as the admin API shows it: by masked
// URL, never with its key.
type destinationJSON struct {
	ID             string     `json:"id"`
	Name           string     `json:"name,omitempty"`
	URL            string     `json:"url"` // masked: scheme, host, application
	State          string     `json:"state"`
	StateSince     time.Time  `json:"state_since"`
	ConnectedSince *time.Time `json:"connected_since,omitempty"`
	Bytes          uint64     `json:"bytes"`
	Bitrate        int64      `json:"bitrate"`
	Reconnects     int        `json:"reconnects"`
	Dropped        uint64     `json:"dropped"`
	LastError      string     `json:"last_error,omitempty"`
	LastErrorAt    *time.Time `json:"last_error_at,omitempty"`
	NextAttempt    *time.Time `json:"next_attempt,omitempty"`
}

// timeOrNil leaves zero times out of the JSON.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func toDestinationJSON(d stream.DestinationStatus) destinationJSON {
	return destinationJSON{
		ID: string(d.ID), Name: d.Name, URL: d.URL, State: string(d.State), StateSince: d.StateSince.UTC(),
		ConnectedSince: timeOrNil(d.ConnectedSince), Bytes: d.Bytes, Bitrate: d.Bitrate,
		Reconnects: d.Reconnects, Dropped: d.Dropped, LastError: d.LastError,
		LastErrorAt: timeOrNil(d.LastErrorAt), NextAttempt: timeOrNil(d.NextAttempt),
	}
}

func (s *Server) toEgressJSON(st stream.Status) egressJSON {
	out := egressJSON{
		Room: string(st.Room), Tenant: s.admin.auth.RoomTenant(st.Room), StartedAt: st.StartedAt.UTC(),
		Video: string(st.Video), Ended: st.Ended, Destinations: make([]destinationJSON, 0, len(st.Destinations)),
		Node: string(s.cluster.self),
	}
	for _, d := range st.Destinations {
		out.Destinations = append(out.Destinations, toDestinationJSON(d))
	}
	return out
}

// streamRoom checks the request's room ID, names it in the audit entry
// and asks authorize about the room's tenant.
func (s *Server) streamRoom(r *http.Request, write bool) (room.ID, error) {
	id, err := roomOf(r)
	if err != nil {
		return "", err
	}
	auditTarget(r, string(id))
	return id, s.authorize(r, s.admin.auth.RoomTenant(id), write)
}

func (s *Server) streamStart(w http.ResponseWriter, r *http.Request) error {
	id, err := s.streamRoom(r, true)
	if err != nil {
		return err
	}
	var req startRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if n := len(req.Destinations); n == 0 || n > maxDestinations {
		return fmt.Errorf("%w: destinations must list 1 to %d destinations", ErrBadRequest, maxDestinations)
	}
	ds := make([]stream.Destination, 0, len(req.Destinations))
	for i, dr := range req.Destinations {
		d, err := dr.destination()
		if err != nil {
			return fmt.Errorf("destinations[%d]: %w", i, err)
		}
		ds = append(ds, d)
	}
	st, err := s.streams.StartStream(r.Context(), id, ds)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/rooms/"+string(id)+"/egresses")
	writeJSON(w, http.StatusCreated, s.toEgressJSON(st))
	return nil
}

func (s *Server) streamGet(w http.ResponseWriter, r *http.Request) error {
	id, err := s.streamRoom(r, false)
	if err != nil {
		return err
	}
	st, err := s.streams.StreamStatus(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.toEgressJSON(st))
	return nil
}

func (s *Server) streamStop(w http.ResponseWriter, r *http.Request) error {
	id, err := s.streamRoom(r, true)
	if err != nil {
		return err
	}
	if err := s.streams.StopStream(id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) streamAdd(w http.ResponseWriter, r *http.Request) error {
	id, err := s.streamRoom(r, true)
	if err != nil {
		return err
	}
	var req destinationRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	d, err := req.destination()
	if err != nil {
		return err
	}
	ds, err := s.streams.AddDestination(r.Context(), id, d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toDestinationJSON(ds))
	return nil
}

func (s *Server) streamRemove(w http.ResponseWriter, r *http.Request) error {
	id, err := s.streamRoom(r, true)
	if err != nil {
		return err
	}
	if err := s.streams.RemoveDestination(id, stream.DestinationID(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// streamList lists the egresses of the rooms the key's tenant may see.
func (s *Server) streamList(w http.ResponseWriter, r *http.Request) error {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return ErrAdminKeyMissing
	}
	all := s.streams.Streams()
	slices.SortFunc(all, func(a, b stream.Status) int { return strings.Compare(string(a.Room), string(b.Room)) })
	out := make([]egressJSON, 0, len(all))
	for _, st := range all {
		if p.Sees(s.admin.auth.RoomTenant(st.Room)) {
			out = append(out, s.toEgressJSON(st))
		}
	}
	if s.fanningOut(r) {
		answers, _, err := s.askOthers(r, "/api/v1/egresses", nil)
		if err != nil {
			return err
		}
		for _, a := range answers {
			var theirs []egressJSON
			if a.err == nil && json.Unmarshal(a.body, &theirs) != nil {
				a.err = errors.New("answered something else than egresses")
			}
			if a.err != nil {
				s.log.WarnContext(r.Context(), "egresses of a node missing from the list", "node", a.node, "err", a.err)
				continue
			}
			out = append(out, theirs...)
		}
		slices.SortStableFunc(out, func(a, b egressJSON) int { return strings.Compare(a.Room, b.Room) })
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
