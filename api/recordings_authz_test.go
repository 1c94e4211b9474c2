package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
)

// TestRecordingsTenantsAndRoles: the recordings routes under real API keys.
// Without a key every route answers 401; a key of another tenant gets 403
// for the recording and does not see it in listings; a viewer of the
// recording's tenant reads, lists and downloads it (also through a signed
// link, which is how the admin page downloads) but may not extend, hold
// nor delete it, nor erase the tenant; the tenant's admin may. Nothing a refused request asked for happened.
func TestRecordingsTenantsAndRoles(t *testing.T) {
	e := newRecEnv(t)
	acme := e.record(t, "board", "acme", "minute")
	globex := e.record(t, "sales", "globex", "minute")
	acmeAdmin, _ := e.newKey(t, "acme ops", RoleAdmin, "acme")
	acmeViewer, _ := e.newKey(t, "acme wall", RoleViewer, "acme")
	globexAdmin, _ := e.newKey(t, "globex ops", RoleAdmin, "globex")
	path := "/api/v1/recordings/" + string(acme.ID)

	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/recordings", ""},
		{http.MethodGet, path, ""},
		{http.MethodGet, path + "/download", ""},
		{http.MethodPost, path + "/link", ""},
		{http.MethodPost, path + "/extend", `{"until":"2026-11-22T12:30:00Z"}`},
		{http.MethodPost, path + "/hold", `{"reason":"audit"}`},
		{http.MethodDelete, path + "/hold", ""},
		{http.MethodDelete, path, `{"reason":"admin"}`},
		{http.MethodGet, "/api/v1/receipts", ""},
		{http.MethodDelete, "/api/v1/tenants/acme/recordings", `{"reason":"erasure-request"}`},
	}
	for _, rt := range routes {
		w := e.doURL(rt.method, rt.path)
		require.Equal(t, http.StatusUnauthorized, w.Code, "%s %s without a key: %s", rt.method, rt.path, w.Body.String())
	}

	// Another tenant's admin: 403 on acme's recording and its tenant, and
	// listings without it.
	for _, rt := range routes[1:8] {
		requireProblem(t, e.as(globexAdmin, rt.method, rt.path, rt.body), http.StatusForbidden, "forbidden")
	}
	requireProblem(t, e.as(globexAdmin, http.MethodDelete, "/api/v1/tenants/acme/recordings", `{"reason":"erasure-request"}`),
		http.StatusForbidden, "forbidden")
	require.Equal(t, []recorder.ID{globex.ID}, listIDs(t, e, globexAdmin))

	// acme's viewer reads, lists and downloads, and changes nothing.
	require.Equal(t, []recorder.ID{acme.ID}, listIDs(t, e, acmeViewer))
	w := e.as(acmeViewer, http.MethodGet, path, "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	w = e.as(acmeViewer, http.MethodGet, path+"/download", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.NotEmpty(t, w.Body.Bytes())
	w = e.as(acmeViewer, http.MethodPost, path+"/link", "")
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	for _, rt := range routes[4:8] {
		requireProblem(t, e.as(acmeViewer, rt.method, rt.path, rt.body), http.StatusForbidden, "forbidden")
	}
	requireProblem(t, e.as(acmeViewer, http.MethodDelete, "/api/v1/tenants/acme/recordings", `{"reason":"erasure-request"}`),
		http.StatusForbidden, "forbidden")
	m := e.manifest(t, acme.ID)
	require.Equal(t, recorder.StateComplete, m.State, "refused requests changed nothing")
	require.Equal(t, acme.ExpiresAt, m.ExpiresAt)
	require.Nil(t, m.LegalHold)

	// acme's admin may.
	w = e.as(acmeAdmin, http.MethodPost, path+"/hold", `{"reason":"audit"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	w = e.as(acmeAdmin, http.MethodDelete, path+"/hold", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	w = e.as(acmeAdmin, http.MethodDelete, path, `{"reason":"admin"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, recorder.StateDeleted, e.manifest(t, acme.ID).State)
	require.Equal(t, recorder.StateComplete, e.manifest(t, globex.ID).State, "the other tenant's recording is untouched")
}

// listIDs lists the recordings key may see.
func listIDs(t *testing.T, e *recEnv, key string) []recorder.ID {
	t.Helper()
	w := e.as(key, http.MethodGet, "/api/v1/recordings", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var page struct {
		Recordings []recorder.Manifest `json:"recordings"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	ids := []recorder.ID{}
	for _, m := range page.Recordings {
		ids = append(ids, m.ID)
	}
	return ids
}
