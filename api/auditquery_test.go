package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// auditPage reads GET /api/v1/audit?query with key.
func auditPage(t *testing.T, e *adminEnv, key string, query url.Values) AuditPage {
	t.Helper()
	w := e.as(key, http.MethodGet, "/api/v1/audit?"+query.Encode(), "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	var p AuditPage
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	return p
}

// TestAuditAPI: the audit log over HTTP, for admins only, each tenant's
// admins their tenant's entries, filtered and paged.
func TestAuditAPI(t *testing.T) {
	e := newAdminEnv(t)
	acme, _ := e.newKey(t, "acme ops", RoleAdmin, "acme")
	viewer, _ := e.newKey(t, "acme wall", RoleViewer, "acme")
	globex, _ := e.newKey(t, "globex ops", RoleAdmin, "globex")

	// 30 entries over two months, three tenants, both classes.
	base := time.Date(2025, 1, 20, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		tenant := []string{"acme", "globex", "default"}[i%3]
		action := []string{"recordings.download", "recordings.delete"}[i%2]
		_, err := e.audit.Record(AuditEntry{Action: action, Time: base.Add(time.Duration(i) * 24 * time.Hour),
			Tenant: tenant, KeyTenant: AllTenants, Target: fmt.Sprintf("t%02d", i), Status: 200})
		require.NoError(t, err)
	}

	requireProblem(t, e.as(viewer, http.MethodGet, "/api/v1/audit", ""), 403, "forbidden")
	requireProblem(t, e.as(acme, http.MethodGet, "/api/v1/audit?tenant=globex", ""), 403, "forbidden")

	// Tenant admins: their tenant's entries and their keys' own.
	p := auditPage(t, e, acme, url.Values{"action": {"recordings.download"}})
	require.Len(t, p.Entries, 5, "acme's downloads: t00 t06 t12 t18 t24")
	for _, ent := range p.Entries {
		require.Equal(t, "acme", ent.Tenant)
	}
	p = auditPage(t, e, globex, url.Values{"class": {"access"}})
	require.Len(t, p.Entries, 6, "globex's downloads t04 t10 t16 t22 t28, and acme's attempt to read globex's entries")
	require.Equal(t, AuditEntry{ID: p.Entries[0].ID, Time: t0, Class: ClassAccess, Action: "audit.list", KeyID: hashAdminKey(acme)[7:19],
		Role: RoleAdmin, KeyTenant: "acme", Tenant: "globex", Status: 403, Client: "192.0.2.0"}, p.Entries[0])
	for _, ent := range p.Entries {
		require.True(t, ent.Tenant == "globex" || ent.KeyTenant == "globex", "%+v", ent)
	}

	// Time range [from, to), class.
	p = auditPage(t, e, e.key, url.Values{
		"from": {"2025-02-01T00:00:00Z"}, "to": {"2025-02-05T00:00:00Z"}, "class": {"instruction"},
	})
	require.Equal(t, []string{"t15", "t13"}, targetsOf(p.Entries), "Feb 1 (t12) is a download, Feb 5 (t16) is the end")
	require.Empty(t, p.Next)

	// Paging walks every entry once, newest first, the cursor stable while
	// new entries arrive.
	var walked []AuditEntry
	q := url.Values{"limit": {"7"}, "action": {"recordings.delete"}}
	for range 10 {
		p := auditPage(t, e, e.key, q)
		require.LessOrEqual(t, len(p.Entries), 7)
		walked = append(walked, p.Entries...)
		_, err := e.audit.Record(AuditEntry{Action: "recordings.delete", Time: e.now, Tenant: "acme"})
		require.NoError(t, err)
		if p.Next == "" {
			break
		}
		q.Set("cursor", p.Next)
	}
	require.Len(t, walked, 15)
	for i := range walked {
		require.Equal(t, fmt.Sprintf("t%02d", 29-2*i), walked[i].Target)
	}

	for _, bad := range []string{
		"class=deletions", "from=yesterday", "limit=0", "limit=1001", "limit=x", "cursor=abc",
		"action=recordings.frobnicate", "tenant=a%20b", "page=2", "class=access&class=instruction",
	} {
		requireProblem(t, e.admin(http.MethodGet, "/api/v1/audit?"+bad, ""), 400, "bad-request")
	}

	// Reading the log is itself audited.
	p = auditPage(t, e, e.key, url.Values{"action": {"audit.list"}, "limit": {"1"}})
	require.Len(t, p.Entries, 1)
	require.Equal(t, ClassAccess, p.Entries[0].Class)
}

// TestAuditQueryEmpty: no entries is an empty list, not null; the route
// exists only with an audit log.
func TestAuditQueryEmpty(t *testing.T) {
	e := newAdminEnv(t)
	w := e.admin(http.MethodGet, "/api/v1/audit?from=2030-01-01T00:00:00Z", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"entries":[]}`, w.Body.String())

	without := New(slog.New(slog.DiscardHandler), WithAdmin(e.mgr, e.auth, []string{hashAdminKey(e.key)})).Handler()
	r := httptest.NewRequest(http.MethodGet, "/api/v1/audit", nil)
	r.Header.Set("Authorization", "Bearer "+e.key)
	rec := httptest.NewRecorder()
	without.ServeHTTP(rec, r)
	requireProblem(t, rec, 404, "no-such-resource")
}
