package api

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"

	"github.com/mediagate/mediagate/web"
)

// adminPageHeaders are the join page's security headers (nothing but this
// origin, no inline script or style, no framing, no Referer), except that
// the admin page may not use the microphone either: it only reads and
// changes recordings.
var adminPageHeaders = func() map[string]string {
	h := maps.Clone(pageSecurityHeaders)
	h["Permissions-Policy"] = "microphone=(), camera=(), geolocation=()"
	return h
}()

// mountAdminPage registers GET /admin, the admin page (package web), on
// servers with the admin API. The page is the same for everyone and holds
// nothing of the node: its script signs in with an API key
// (GET /api/v1/keys/self) and asks the admin API for the rest, so serving
// it needs no key and is not audited.
func (s *Server) mountAdminPage() {
	s.mux.HandleFunc("GET /admin", s.adminPageHTML)
}

func (s *Server) adminPageHTML(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := web.RenderAdmin(&b); err != nil {
		s.writeProblem(w, r, fmt.Errorf("render admin page: %w", err))
		return
	}
	h := w.Header()
	for k, v := range adminPageHeaders {
		h.Set(k, v)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = b.WriteTo(w)
}
