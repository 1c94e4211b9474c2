package api

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

// openAPIDoc is the OpenAPI 3.1 document of the admin API (/api/v1),
// written by hand next to the handlers and tested against the routes the
// server mounts (openapi_test.go).
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPIETag changes with the document, that is with the build.
var openAPIETag = func() string {
	sum := sha256.Sum256(openAPIDoc)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// OpenAPIPath is where the OpenAPI document is served.
const OpenAPIPath = "/api/v1/openapi.json"

// mountOpenAPI serves the OpenAPI document without an API key: it
// describes the API and holds nothing of any tenant's, and client
// generators and API explorers fetch it before they have a key.
func (s *Server) mountOpenAPI() {
	s.mux.HandleFunc("GET "+OpenAPIPath, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("ETag", openAPIETag)
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(openAPIDoc))
	})
}
