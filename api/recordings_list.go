package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// Pagination of GET /api/v1/recordings.
const (
	// defaultListLimit is the page size when limit is not given.
	defaultListLimit = 50
	// maxListLimit bounds a page, so one request cannot make the node
	// encode every manifest it has.
	maxListLimit = 500
)

// recordingPage is the answer of GET /api/v1/recordings: manifests without
// their participants (GET /api/v1/recordings/{id} has them), oldest first,
// and the cursor of the next page ("" on the last).
type recordingPage struct {
	Recordings []recorder.Manifest `json:"recordings"`
	NextCursor string              `json:"next_cursor,omitempty"`
}

// recordingList answers GET /api/v1/recordings?room=&state=&tenant=&from=
// &to=&expiring_before=&limit=&cursor=. Recordings of tenants the key may
// not read are left out. The cursor is opaque to clients; pass it back
// with the same filters.
func (s *Server) recordingList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := recordingFilter(q)
	if err != nil {
		return err
	}
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxListLimit {
			return fmt.Errorf("%w: limit must be 1 to %d", ErrBadRequest, maxListLimit)
		}
	}
	var after *listCursor
	if v := q.Get("cursor"); v != "" {
		c, err := parseListCursor(v)
		if err != nil {
			return err
		}
		after = &c
	}
	all, err := s.listRecordings(r, f)
	if err != nil {
		return err
	}
	allowed := s.tenantCheck(r)
	page := recordingPage{Recordings: []recorder.Manifest{}}
	for _, m := range all {
		if after != nil && !after.before(m) || !allowed(m.Tenant) {
			continue
		}
		if len(page.Recordings) == limit {
			last := page.Recordings[limit-1]
			page.NextCursor = listCursor{last.StartedAt, last.ID}.String()
			break
		}
		m.Participants = nil
		page.Recordings = append(page.Recordings, m)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// listRecordings returns the manifests f selects, oldest first: this
// node's alone, or with a recordings index (WithRecordingsIndex) every
// node's. This node's recordings come from its recorder, complete (the
// index may lag behind it); the others are the index's summary of them
// (manifest fields the index does not hold, such as legal_hold and
// format, are empty: GET /api/v1/recordings/{id} has them all).
func (s *Server) listRecordings(r *http.Request, f recorder.Filter) ([]recorder.Manifest, error) {
	local := s.recs.rec.List(f)
	if !s.indexed() {
		return local, nil
	}
	entries, err := s.cluster.index.Recordings(r.Context(), f)
	if err != nil {
		return nil, s.unavailable(r, "recordings index", err)
	}
	here := make(map[recorder.ID]bool, len(local))
	for _, m := range local {
		here[m.ID] = true
	}
	all := local
	for _, e := range entries {
		if here[e.ID] || !e.ID.Valid() {
			continue
		}
		here[e.ID] = true
		all = append(all, recorder.Manifest{
			ID: e.ID, Tenant: e.Tenant, Room: e.Room, Node: string(e.Node), State: e.State,
			StartedAt: e.StartedAt, ExpiresAt: e.ExpiresAt, Bytes: e.Bytes, Duration: e.Duration,
		})
	}
	slices.SortFunc(all, func(a, b recorder.Manifest) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	return all, nil
}

// tenantCheck returns a function that tells whether r's key may read a
// tenant's recordings, asking authorize once per tenant.
func (s *Server) tenantCheck(r *http.Request) func(recorder.Tenant) bool {
	seen := map[recorder.Tenant]bool{}
	return func(t recorder.Tenant) bool {
		ok, known := seen[t]
		if !known {
			ok = s.authorize(r, string(t), false) == nil
			seen[t] = ok
		}
		return ok
	}
}

// recordingFilter reads the filters of the recordings list.
func recordingFilter(q url.Values) (recorder.Filter, error) {
	var f recorder.Filter
	if v := q.Get("room"); v != "" {
		if !configs.ValidRoomID(v) {
			return f, fmt.Errorf("%w: room %q", ErrBadRequest, truncate(v, 70))
		}
		f.Room = room.ID(v)
	}
	if v := q.Get("tenant"); v != "" {
		if f.Tenant = recorder.Tenant(v); !f.Tenant.Valid() {
			return f, fmt.Errorf("%w: tenant %q", ErrBadRequest, truncate(v, 70))
		}
	}
	switch st := recorder.State(q.Get("state")); st {
	case "", recorder.StateRecording, recorder.StateComplete, recorder.StateInterrupted, recorder.StateDeleted:
		f.State = st
	default:
		return f, fmt.Errorf("%w: state must be recording, complete, interrupted or deleted", ErrBadRequest)
	}
	var err error
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}, {"expiring_before", &f.ExpiresBefore}} {
		if *p.dst, err = queryTime(q, p.name); err != nil {
			return f, err
		}
	}
	return f, nil
}

// queryTime reads an RFC 3339 time from the query; zero when absent.
func queryTime(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s must be an RFC 3339 time such as 2031-03-14T09:00:00Z", ErrBadRequest, name)
	}
	return t, nil
}

// listCursor is where a page of the list ended: the list's sort key
// (started_at, then ID) of its last manifest.
type listCursor struct {
	started time.Time
	id      recorder.ID
}

// before reports whether m comes after the cursor in list order.
func (c listCursor) before(m recorder.Manifest) bool {
	if d := m.StartedAt.Compare(c.started); d != 0 {
		return d > 0
	}
	return m.ID > c.id
}

// String encodes the cursor: base64url of "<unix ms>.<id>".
func (c listCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.started.UnixMilli(), 10) + "." + string(c.id)))
}

// parseListCursor decodes a cursor, refusing anything String did not make.
func parseListCursor(s string) (listCursor, error) {
	bad := fmt.Errorf("%w: cursor is not one this server made", ErrBadRequest)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return listCursor{}, bad
	}
	ms, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || !recorder.ID(id).Valid() {
		return listCursor{}, bad
	}
	return listCursor{time.UnixMilli(n).UTC(), recorder.ID(id)}, nil
}
