package api

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mediagate/mediagate/configs"
)

// Page sizes of Query and GET /api/v1/audit.
const (
	// DefaultAuditPage is the page size when the query names none.
	DefaultAuditPage = 100
	// MaxAuditPage bounds a page, and with it the memory of one query.
	MaxAuditPage = 1000
)

// AuditQuery selects audit entries. Zero fields select everything.
type AuditQuery struct {
	// From and To bound the entries' time: From ≤ time < To; zero means
	// unbounded.
	From, To time.Time
	// Class keeps entries of one class; "" both.
	Class AuditClass
	// Action keeps entries of one action; "" any.
	Action string
	// Tenant keeps the entries about that tenant: its resource (Tenant) or
	// its key (KeyTenant). "" keeps every entry, for AllTenants admins.
	Tenant string
	// Limit is the page size, 1 to MaxAuditPage; 0 means DefaultAuditPage.
	Limit int
	// Cursor continues after the last page: its Next.
	Cursor string
}

// AuditPage is one page of a query, newest entry first.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	// Next is the Cursor of the following page; empty on the last page.
	Next string `json:"next_cursor,omitempty"`
	// Unreached are the live nodes of the cluster that did not answer
	// GET /api/v1/audit: their entries are missing from the page.
	Unreached []unreachedNode `json:"unreached_nodes,omitempty"`
}

// cursor is the position after an entry: pages go on with older entries.
type cursor struct {
	t  time.Time
	id string
}

func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.t.UnixNano(), 10) + "." + c.id))
}

func parseCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	ns, id, ok := strings.Cut(string(b), ".")
	n, nerr := strconv.ParseInt(ns, 10, 64)
	if err != nil || !ok || nerr != nil || id == "" {
		return cursor{}, fmt.Errorf("%w: cursor is not one of a previous page", ErrBadRequest)
	}
	return cursor{time.Unix(0, n).UTC(), id}, nil
}

// newer orders entries newest first: by time, then ID.
func newer(a, b AuditEntry) int {
	return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID))
}

// matches reports whether e is selected by q and not expired at now.
func (q AuditQuery) matches(e AuditEntry, now time.Time, ret AuditRetention, after *cursor) bool {
	switch {
	case !now.Before(ret.ExpiresAt(e.Class, e.Time)),
		!q.From.IsZero() && e.Time.Before(q.From),
		!q.To.IsZero() && !e.Time.Before(q.To),
		q.Class != "" && e.Class != q.Class,
		q.Action != "" && e.Action != q.Action,
		q.Tenant != "" && e.Tenant != q.Tenant && e.KeyTenant != q.Tenant:
		return false
	case after != nil:
		return newer(AuditEntry{Time: after.t, ID: after.id}, e) < 0
	}
	return true
}

// Query returns a page of the entries q selects that have not expired,
// newest first. It reads month by month from the newest and stops once a
// month completes the page, since older months hold only older entries.
func (l *AuditLog) Query(q AuditQuery) (AuditPage, error) {
	now := l.now()
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditPage
	}
	limit = min(limit, MaxAuditPage)
	var after *cursor
	if q.Cursor != "" {
		c, err := parseCursor(q.Cursor)
		if err != nil {
			return AuditPage{}, err
		}
		after = &c
	}
	months, err := l.months(q, after)
	if err != nil {
		return AuditPage{}, err
	}
	var got []AuditEntry
	for _, files := range months {
		for _, name := range files {
			if err := l.collect(name, q, now, after, &got, limit); err != nil {
				return AuditPage{}, err
			}
		}
		if len(got) > limit {
			break
		}
	}
	slices.SortFunc(got, newer)
	page := AuditPage{Entries: got[:min(limit, len(got))]}
	if len(got) > limit {
		last := page.Entries[limit-1]
		page.Next = cursor{last.Time, last.ID}.String()
	}
	return page, nil
}

// months lists the log's files that may hold entries for q, grouped by
// month, newest month first.
func (l *AuditLog) months(q AuditQuery, after *cursor) ([][]string, error) {
	des, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	byMonth := map[time.Time][]string{}
	for _, de := range des {
		c, month, ok := parseFileName(de.Name())
		next := month.AddDate(0, 1, 0)
		if !ok || (q.Class != "" && c != q.Class) ||
			(!q.From.IsZero() && !next.After(q.From)) ||
			(!q.To.IsZero() && !month.Before(q.To)) ||
			(after != nil && month.After(after.t)) {
			continue
		}
		byMonth[month] = append(byMonth[month], de.Name())
	}
	keys := slices.SortedFunc(maps.Keys(byMonth), func(a, b time.Time) int { return b.Compare(a) })
	out := make([][]string, 0, len(keys))
	for _, m := range keys {
		out = append(out, byMonth[m])
	}
	return out, nil
}

// collect adds the entries of file name that q selects to got, keeping
// got to the newest limit+1 (one more tells whether a next page exists).
func (l *AuditLog) collect(name string, q AuditQuery, now time.Time, after *cursor, got *[]AuditEntry, limit int) error {
	f, err := os.Open(filepath.Join(l.dir, name))
	if os.IsNotExist(err) {
		return nil // swept meanwhile
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	return scanLines(f, func(_ []byte, e *AuditEntry) {
		if e == nil || !q.matches(*e, now, l.ret, after) {
			return
		}
		*got = append(*got, *e)
		if len(*got) > 2*(limit+1) {
			slices.SortFunc(*got, newer)
			*got = (*got)[:limit+1]
		}
	})
}

// auditQueryParams are the query parameters GET /api/v1/audit takes.
var auditQueryParams = []string{"from", "to", "class", "action", "tenant", "limit", "cursor"}

// parseAuditQuery reads GET /api/v1/audit's parameters strictly: unknown
// or repeated parameters and malformed values are ErrBadRequest.
func parseAuditQuery(v url.Values) (AuditQuery, error) {
	var q AuditQuery
	for k, vs := range v {
		if !slices.Contains(auditQueryParams, k) || len(vs) != 1 {
			return q, fmt.Errorf("%w: parameters are %s, each at most once", ErrBadRequest, strings.Join(auditQueryParams, ", "))
		}
	}
	var err error
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(t.name); s != "" {
			if *t.dst, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return q, fmt.Errorf("%w: %s must be an RFC 3339 time such as 2026-11-01T00:00:00Z", ErrBadRequest, t.name)
			}
		}
	}
	q.Class = AuditClass(v.Get("class"))
	if q.Class != "" && q.Class != ClassInstruction && q.Class != ClassAccess {
		return q, fmt.Errorf("%w: class must be instruction or access", ErrBadRequest)
	}
	if q.Action = v.Get("action"); q.Action != "" {
		if _, ok := AuditClassOf(q.Action); !ok {
			return q, fmt.Errorf("%w: unknown action", ErrBadRequest)
		}
	}
	if q.Tenant = v.Get("tenant"); q.Tenant != "" && !configs.ValidTenant(q.Tenant) {
		return q, fmt.Errorf("%w: tenant is not a tenant name", ErrBadRequest)
	}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 || q.Limit > MaxAuditPage {
			return q, fmt.Errorf("%w: limit must be 1 to %d", ErrBadRequest, MaxAuditPage)
		}
	}
	q.Cursor = v.Get("cursor")
	return q, nil
}

// adminAudit answers GET /api/v1/audit: admin keys only, each tenant's
// admins the entries about their tenant, AllTenants admins everything (or
// one tenant's with ?tenant=).
func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request) error {
	p, err := requireAdmin(r)
	if err != nil {
		return err
	}
	q, err := parseAuditQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if p.Tenant != AllTenants {
		q.Tenant = cmp.Or(q.Tenant, p.Tenant)
	}
	if q.Tenant != "" {
		if err := s.authorize(r, q.Tenant, false); err != nil {
			return err
		}
	}
	page, err := s.audit.Query(q)
	if err != nil {
		return err
	}
	if s.fanningOut(r) {
		if page, err = s.auditElsewhere(r, q, page); err != nil {
			return err
		}
	}
	if page.Entries == nil {
		page.Entries = []AuditEntry{}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, page)
	return nil
}

// auditElsewhere merges the same page of every other live node's audit
// log into this node's, each entry with its Node. The cursor is a place
// in time (and ID), the same on every node, so the merged page is the
// newest limit entries of all nodes after the cursor, and its last entry
// is where the next page starts on every node.
func (s *Server) auditElsewhere(r *http.Request, q AuditQuery, page AuditPage) (AuditPage, error) {
	answers, _, err := s.askOthers(r, r.URL.RequestURI(), nil)
	if err != nil {
		return page, err
	}
	self := string(s.selfID())
	for i := range page.Entries {
		page.Entries[i].Node = self
	}
	more := page.Next != ""
	for _, a := range answers {
		var theirs AuditPage
		if a.err == nil && json.Unmarshal(a.body, &theirs) != nil {
			a.err = errors.New("answered something else than audit entries")
		}
		if a.err != nil {
			page.Unreached = append(page.Unreached, unreachedNode{Node: a.node, Error: a.err.Error()})
			continue
		}
		for _, e := range theirs.Entries {
			e.Node = string(a.node)
			page.Entries = append(page.Entries, e)
		}
		more = more || theirs.Next != ""
	}
	slices.SortFunc(page.Entries, newer)
	limit := cmp.Or(q.Limit, DefaultAuditPage)
	if len(page.Entries) > limit {
		page.Entries, more = page.Entries[:limit], true
	}
	page.Next = ""
	if more && len(page.Entries) > 0 {
		last := page.Entries[len(page.Entries)-1]
		page.Next = cursor{last.Time, last.ID}.String()
	}
	return page, nil
}
