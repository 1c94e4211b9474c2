package api

import (
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
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

// TestOpenAPISchemasMatchGoTypes compares each schema of the document
// with the Go type the handlers encode or decode: the same JSON names
// (requests are decoded with unknown fields refused), and for answers
// "required" exactly for the fields that are never omitted.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]oaSchema `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openAPIDoc, &doc))
	schemas := doc.Components.Schemas
	answers := map[string]reflect.Type{
		"Problem": reflect.TypeFor[Problem](), "Room": reflect.TypeFor[roomJSON](), "Participant": reflect.TypeFor[adminParticipant](),
		"Token": reflect.TypeFor[tokenResponse](), "Node": reflect.TypeFor[nodeJSON](), "NodePage": reflect.TypeFor[nodePage](),
		"Key": reflect.TypeFor[keyJSON](), "NewKey": reflect.TypeFor[newKeyJSON](), "AuditEntry": reflect.TypeFor[AuditEntry](),
		"AuditPage": reflect.TypeFor[AuditPage](), "Manifest": reflect.TypeFor[recorder.Manifest](),
		"RecordingParticipant": reflect.TypeFor[recorder.Participant](), "LegalHold": reflect.TypeFor[recorder.LegalHold](),
		"Deletion": reflect.TypeFor[recorder.Deletion](), "RecordingPage": reflect.TypeFor[recordingPage](),
		"Link": reflect.TypeFor[linkResponse](), "Receipt": reflect.TypeFor[recorder.Receipt](),
		"ReceiptPage": reflect.TypeFor[receiptPage](), "Erasure": reflect.TypeFor[eraseSummary](),
		"Egress": reflect.TypeFor[egressJSON](), "Destination": reflect.TypeFor[destinationJSON](),
	}
	requests := map[string]reflect.Type{
		"TokenRequest": reflect.TypeFor[tokenRequest](), "Grants": reflect.TypeFor[Grants](), "KeyRequest": reflect.TypeFor[keyRequest](),
		"DeleteRequest": reflect.TypeFor[deleteRequest](), "LinkRequest": reflect.TypeFor[linkRequest](),
		"ExtendRequest": reflect.TypeFor[extendRequest](), "HoldRequest": reflect.TypeFor[holdRequest](),
		"EgressRequest": reflect.TypeFor[startRequest](), "DestinationRequest": reflect.TypeFor[destinationRequest](),
	}
	for name := range schemas {
		_, a := answers[name]
		_, r := requests[name]
		require.True(t, a || r, "schema %s has no Go type in this test", name)
	}
	for name, typ := range answers {
		s := schemas[name].flatten(t, schemas)
		fields := jsonFields(typ)
		require.ElementsMatch(t, slices.Collect(maps.Keys(fields)), slices.Collect(maps.Keys(s.Properties)), "schema %s vs %s", name, typ)
		var always []string
		for f, omitted := range fields {
			if !omitted {
				always = append(always, f)
			}
		}
		require.ElementsMatch(t, always, s.Required, "schema %s: required must be the fields %s never omits", name, typ)
	}
	for name, typ := range requests {
		s := schemas[name].flatten(t, schemas)
		require.ElementsMatch(t, slices.Collect(maps.Keys(jsonFields(typ))), slices.Collect(maps.Keys(s.Properties)), "schema %s vs %s", name, typ)
		require.Subset(t, slices.Collect(maps.Keys(s.Properties)), s.Required, name)
	}
}

type oaSchema struct {
	Ref        string                     `json:"$ref"`
	AllOf      []oaSchema                 `json:"allOf"`
	Properties map[string]json.RawMessage `json:"properties"`
	Required   []string                   `json:"required"`
}

// flatten merges allOf parts (resolving references) into one schema.
func (s oaSchema) flatten(t *testing.T, all map[string]oaSchema) oaSchema {
	t.Helper()
	if s.Ref != "" {
		ref, ok := all[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		require.True(t, ok, s.Ref)
		return ref.flatten(t, all)
	}
	out := oaSchema{Properties: maps.Clone(s.Properties), Required: slices.Clone(s.Required)}
	if out.Properties == nil {
		out.Properties = map[string]json.RawMessage{}
	}
	for _, part := range s.AllOf {
		p := part.flatten(t, all)
		maps.Copy(out.Properties, p.Properties)
		out.Required = append(out.Required, p.Required...)
	}
	return out
}

// jsonFields returns the JSON names encoding/json uses for t's fields
// (embedded structs inlined), each with whether it may be omitted.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			maps.Copy(out, jsonFields(f.Type))
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
	}
	return out
}
