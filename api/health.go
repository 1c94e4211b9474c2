package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// healthz answers 200 while the process can serve HTTP at all: it is the
// liveness probe, and says nothing about whether the node takes new work.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.version})
}

// readyz answers 200 when the node takes new calls and participants, 503
// with the failing checks while it is draining or a dependency is down,
// and 429 with the exhausted limits while it is full (capacity.go).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	type result struct {
		Status string            `json:"status"`
		Failed map[string]string `json:"failed,omitempty"`
	}
	res := result{Status: "ready"}
	if s.draining.Load() {
		res.Status = "draining"
		writeJSON(w, http.StatusServiceUnavailable, res)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	checks := append([]namedCheck(nil), s.checks...)
	s.mu.Unlock()
	for _, c := range checks {
		if err := c.check(ctx); err != nil {
			if res.Failed == nil {
				res.Failed = map[string]string{}
			}
			res.Failed[c.name] = err.Error()
		}
	}
	if len(res.Failed) > 0 {
		res.Status = "not ready"
		writeJSON(w, http.StatusServiceUnavailable, res)
		return
	}
	if full := s.exhausted(); full != nil {
		writeAtCapacity(w, full)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
