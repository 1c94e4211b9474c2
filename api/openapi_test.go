package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// newFullServer returns a Server with every option that mounts routes:
// join page, admin API with key store and audit log, recordings, streams
// and the cluster's node list, index and room locator.
func newFullServer(t *testing.T) *Server {
	t.Helper()
	e := newRecEnv(t)
	_, hash := NewAdminKey()
	return New(slog.New(slog.DiscardHandler),
		WithJoinPage(e.mgr, e.auth),
		WithAdmin(e.mgr, e.auth, []string{hash}), WithKeyStore(e.keys), WithAuditLog(e.audit),
		WithRecordings(Recordings{Recorder: e.rec, Rooms: e.rooms, LinkSecret: recTestKey, Now: e.clock.Now}),
		WithStreams(&listStreamer{}),
		WithNodes("node-a", &fakeNodes{}), WithRecordingsIndex(&fakeIndex{}), WithRoomLocator(&fakeLocator{}))
}

// openAPI is the part of an OpenAPI document the tests read.
type openAPI struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
		Parameters map[string]oaParam    `json:"parameters"`
		Responses  map[string]oaResponse `json:"responses"`
	} `json:"components"`
}

type oaParam struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type oaResponse struct {
	Ref     string                     `json:"$ref"`
	Content map[string]json.RawMessage `json:"content"`
}

type oaOperation struct {
	OperationID string                 `json:"operationId"`
	AuditAction string                 `json:"x-audit-action"`
	Parameters  []oaParam              `json:"parameters"`
	Responses   map[string]oaResponse  `json:"responses"`
	Security    *[]map[string][]string `json:"security"`
}

func loadOpenAPI(t *testing.T, data []byte) openAPI {
	t.Helper()
	var doc openAPI
	require.NoError(t, json.Unmarshal(data, &doc))
	return doc
}

// operations returns "METHOD /path" → operation for every operation of
// the document (path-level keys that are no method are skipped).
func (d openAPI) operations(t *testing.T) map[string]oaOperation {
	t.Helper()
	out := map[string]oaOperation{}
	for path, item := range d.Paths {
		for method, raw := range item {
			m := strings.ToUpper(method)
			if !slices.Contains([]string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"}, m) {
				continue
			}
			var op oaOperation
			require.NoError(t, json.Unmarshal(raw, &op), "%s %s", m, path)
			out[m+" "+path] = op
		}
	}
	return out
}

// param resolves a "#/components/parameters/..." reference.
func (d openAPI) param(t *testing.T, p oaParam) oaParam {
	t.Helper()
	if p.Ref == "" {
		return p
	}
	name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
	require.True(t, ok, "reference %s", p.Ref)
	q, ok := d.Components.Parameters[name]
	require.True(t, ok, "unresolved reference %s", p.Ref)
	return q
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	s := newFullServer(t)
	var mounted []string
	for _, p := range s.Routes() {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/api/v1/") {
			continue // the /api/v1/ fallback (404 problem) and routes outside the API
		}
		mounted = append(mounted, method+" "+path)
	}
	require.Greater(t, len(mounted), 30, "the full server mounts the whole admin API")
	doc := loadOpenAPI(t, openAPIDoc)
	documented := make([]string, 0, len(mounted))
	for k := range doc.operations(t) {
		documented = append(documented, k)
	}
	for _, m := range mounted {
		require.Contains(t, documented, m, "route mounted but not in api/openapi.json")
	}
	for _, d := range documented {
		require.Contains(t, mounted, d, "api/openapi.json documents a route the server does not have")
	}
}

func TestOpenAPIDocumentWellFormed(t *testing.T) {
	doc := loadOpenAPI(t, openAPIDoc)
	require.Equal(t, "3.1.0", doc.OpenAPI)
	scheme, ok := doc.Components.SecuritySchemes["apiKey"]
	require.True(t, ok)
	require.Equal(t, "http", scheme.Type)
	require.Equal(t, "bearer", scheme.Scheme, "the key is sent as Authorization: Bearer (bearerToken)")
	require.Equal(t, []map[string][]string{{"apiKey": {}}}, doc.Security)

	refs := regexp.MustCompile(`"\$ref":\s*"#/([^"]+)"`).FindAllStringSubmatch(string(openAPIDoc), -1)
	require.NotEmpty(t, refs)
	var whole map[string]any
	require.NoError(t, json.Unmarshal(openAPIDoc, &whole))
	for _, r := range refs {
		var at any = whole
		for _, seg := range strings.Split(r[1], "/") {
			m, ok := at.(map[string]any)
			require.True(t, ok, "$ref #/%s", r[1])
			at, ok = m[seg]
			require.True(t, ok, "$ref #/%s does not resolve", r[1])
		}
	}

	vars := regexp.MustCompile(`\{([^}]+)\}`)
	ids := map[string]string{}
	for key, op := range doc.operations(t) {
		_, path, _ := strings.Cut(key, " ")
		require.NotEmpty(t, op.OperationID, key)
		require.NotContains(t, ids, op.OperationID, "%s: operationId used by %s too", key, ids[op.OperationID])
		ids[op.OperationID] = key

		var want, declared []string
		for _, m := range vars.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		for _, p := range op.Parameters {
			p = doc.param(t, p)
			if p.In == "path" {
				require.True(t, p.Required, "%s: path parameter %s must be required", key, p.Name)
				declared = append(declared, p.Name)
			}
		}
		require.ElementsMatch(t, want, declared, "%s: path parameters", key)

		require.NotEmpty(t, op.Responses, key)
		for code, resp := range op.Responses {
			if code[0] != '4' && code[0] != '5' || code == "416" {
				continue
			}
			if resp.Ref != "" {
				name := strings.TrimPrefix(resp.Ref, "#/components/responses/")
				resp = doc.Components.Responses[name]
			}
			require.Contains(t, resp.Content, ContentTypeProblem, "%s %s: errors are problem+json", key, code)
		}
		if op.AuditAction != "" {
			_, ok := AuditClassOf(op.AuditAction)
			require.True(t, ok, "%s: x-audit-action %s is no audited action", key, op.AuditAction)
		}
	}
}

// TestOpenAPISecurityMatchesServer sends every documented operation
// without a key: those the document says need one must answer 401, the
// others must not.
func TestOpenAPISecurityMatchesServer(t *testing.T) {
	h := newFullServer(t).Handler()
	doc := loadOpenAPI(t, openAPIDoc)
	fill := strings.NewReplacer("{room}", "demo", "{participant}", "p1", "{tenant}", "acme", "{id}", "AAAAAAAAAAAAAAAAAAAAAA")
	for key, op := range doc.operations(t) {
		method, path, _ := strings.Cut(key, " ")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, fill.Replace(path), nil))
		if op.Security != nil && len(*op.Security) == 0 {
			require.Equal(t, http.StatusOK, w.Code, "%s is documented without security", key)
			continue
		}
		// Operations whose key is optional (signed download links) still
		// refuse a request that has neither key nor signature.
		require.Equal(t, http.StatusUnauthorized, w.Code, "%s without a key: %s", key, w.Body)
		require.Equal(t, ContentTypeProblem, w.Header().Get("Content-Type"), key)
	}
}

func TestOpenAPIServed(t *testing.T) {
	h := newFullServer(t).Handler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, OpenAPIPath, nil))
	require.Equal(t, http.StatusOK, w.Code, "no key needed")
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.Equal(t, "public, max-age=3600", w.Header().Get("Cache-Control"))
	etag := w.Header().Get("ETag")
	require.Regexp(t, `^"[0-9a-f]{32}"$`, etag)
	require.Equal(t, openAPIDoc, w.Body.Bytes())

	req := httptest.NewRequest(http.MethodGet, OpenAPIPath, nil)
	req.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, http.StatusNotModified, w.Code)
	require.Empty(t, w.Body.Bytes())

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, OpenAPIPath, nil))
	require.Equal(t, http.StatusNotFound, w.Code, "GET only; the API's fallback answers")
	require.Equal(t, ContentTypeProblem, w.Header().Get("Content-Type"))
}

func TestRoutesRecordsMountedPatterns(t *testing.T) {
	s := New(slog.New(slog.DiscardHandler))
	require.Equal(t, []string{"GET /healthz", "GET /metrics", "GET /readyz"}, s.Routes())
	s.Handle("/whip/", http.NotFoundHandler())
	require.Contains(t, s.Routes(), "/whip/")
	full := newFullServer(t).Routes()
	require.Contains(t, full, "GET "+OpenAPIPath)
	require.Contains(t, full, "/api/v1/", "the API's 404 fallback")
	require.True(t, slices.IsSorted(full))
}
