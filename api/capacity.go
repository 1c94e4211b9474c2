package api

import (
	"net/http"
	"strconv"
)

// Capacity reports one limit of the node for /readyz: how much of it is in
// use and the limit itself (0: none). It must return at once; it runs on
// every probe.
type Capacity func() (used, limit int)

// capacityRetryAfter is the Retry-After of a 429 from /readyz, in seconds:
// a call or a participant leaving frees the node within a few probes.
const capacityRetryAfter = 5

type namedCapacity struct {
	name string
	fn   Capacity
}

// WithCapacity adds a limit that /readyz reports under name: while used
// reaches limit (limit > 0), /readyz answers 429 Too Many Requests with
// Retry-After and the exhausted limits, so that load balancers send new
// work to another node while this one keeps what it has. Draining and
// failing readiness checks answer 503 first.
func WithCapacity(name string, c Capacity) Option {
	return func(s *Server) { s.capacities = append(s.capacities, namedCapacity{name, c}) }
}

// capacityUse is one exhausted limit in a 429 answer.
type capacityUse struct {
	Used  int `json:"used"`
	Limit int `json:"limit"`
}

// exhausted returns the limits that are reached, by name; nil when none is.
func (s *Server) exhausted() map[string]capacityUse {
	var out map[string]capacityUse
	for _, c := range s.capacities {
		used, limit := c.fn()
		if limit > 0 && used >= limit {
			if out == nil {
				out = map[string]capacityUse{}
			}
			out[c.name] = capacityUse{Used: used, Limit: limit}
		}
	}
	return out
}

// writeAtCapacity answers a readiness probe of a full node.
func writeAtCapacity(w http.ResponseWriter, full map[string]capacityUse) {
	w.Header().Set("Retry-After", strconv.Itoa(capacityRetryAfter))
	writeJSON(w, http.StatusTooManyRequests, struct {
		Status   string                 `json:"status"`
		Capacity map[string]capacityUse `json:"capacity"`
	}{"at capacity", full})
}
