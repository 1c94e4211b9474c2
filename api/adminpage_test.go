package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAdminPageServed: /admin is the admin page, for anyone (it holds no
// data; its script signs in), under the strict page headers without the
// microphone; its files are served even on a node without the join page;
// a node without the admin API has no admin page.
func TestAdminPageServed(t *testing.T) {
	e := newJoinEnv(t)
	withAdmin := New(slog.New(slog.DiscardHandler), WithAdmin(e.mgr, e.auth, nil)).Handler()
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}

	w := get(withAdmin, "/admin")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	csp := w.Header().Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		require.Contains(t, csp, d)
	}
	require.NotContains(t, csp, "unsafe-inline")
	require.Equal(t, "microphone=(), camera=(), geolocation=()", w.Header().Get("Permissions-Policy"))
	require.Equal(t, "no-referrer", w.Header().Get("Referrer-Policy"))
	require.Equal(t, "DENY", w.Header().Get("X-Frame-Options"))
	require.Contains(t, w.Body.String(), `<script src="/static/admin.js?v=`)
	require.Equal(t, "microphone=(self), camera=(), geolocation=()", pageSecurityHeaders["Permissions-Policy"],
		"the join page keeps its microphone")

	for file, ctype := range map[string]string{"admin.js": "text/javascript; charset=utf-8", "admin.css": "text/css; charset=utf-8"} {
		w = get(withAdmin, "/static/"+file)
		require.Equal(t, http.StatusOK, w.Code, file)
		require.Equal(t, ctype, w.Header().Get("Content-Type"))
		require.NotEmpty(t, w.Header().Get("ETag"))
	}
	requireProblem(t, get(withAdmin, "/static/admin.html"), http.StatusNotFound, "not-found")

	joinOnly := New(slog.New(slog.DiscardHandler), WithJoinPage(e.mgr, e.auth)).Handler()
	require.Equal(t, http.StatusNotFound, get(joinOnly, "/admin").Code)
	require.Equal(t, http.StatusOK, get(joinOnly, "/static/join.js").Code)
	bare := New(slog.New(slog.DiscardHandler)).Handler()
	require.Equal(t, http.StatusNotFound, get(bare, "/static/join.js").Code)
}
