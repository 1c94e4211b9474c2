package api

import (
	"net/http"
	"slices"
	"sync"
)

// routeMux is the server's ServeMux, remembering every pattern mounted
// on it so that Routes can list them: the OpenAPI document is tested
// against that list.
type routeMux struct {
	*http.ServeMux

	mu       sync.Mutex
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle mounts h at pattern, as http.ServeMux.Handle, and records it.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.record(pattern)
}

// HandleFunc mounts f at pattern, as http.ServeMux.HandleFunc, and records it.
func (m *routeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.ServeMux.HandleFunc(pattern, f)
	m.record(pattern)
}

func (m *routeMux) record(pattern string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.patterns = append(m.patterns, pattern)
}

// Routes returns the patterns mounted on the server so far, sorted, as
// given to http.ServeMux: "METHOD /path/{var}" for routes of one method,
// "/path/" for subtrees. Handlers mounted with Handle count too.
func (s *Server) Routes() []string {
	s.mux.mu.Lock()
	defer s.mux.mu.Unlock()
	out := slices.Clone(s.mux.patterns)
	slices.Sort(out)
	return out
}
