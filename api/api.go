// Package api is mediagate's HTTP face: health and readiness for the load
// balancer, Prometheus metrics, the browser join page with its join tokens
// and access policy, the mount point for rtc's WHIP/WHEP handlers, and the
// admin REST API with its API keys (roles, tenants) and persistent audit
// log. It owns no media; it asks the domain packages. Every error answer
// is problem+json (RFC 9457, problem.go).
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyCheck reports whether one part of the node can take new work. It must
// return quickly; the context carries the /readyz request's deadline.
type ReadyCheck func(ctx context.Context) error

// Server serves mediagate's HTTP endpoints. Create it with New, mount it with
// Handler or run it with Serve; it is safe for concurrent use.
type Server struct {
	log      *slog.Logger
	version  string
	registry *prometheus.Registry
	mux      *routeMux
	http     *http.Server
	draining atomic.Bool

	mu     sync.Mutex
	checks []namedCheck
	// capacities are fixed at New (WithCapacity, capacity.go).
	capacities []namedCapacity

	// pinLockouts share the join page's wrong PINs across nodes;
	// roomPINLockouts count them per room (WithRoomPINLockouts).
	pinLockouts     PINLockouts
	roomPINLockouts PINLockouts

	requests *prometheus.CounterVec

	join     *joinPage    // nil unless WithJoinPage
	admin    *admin       // nil unless WithAdmin
	keyStore *KeyStore    // nil unless WithKeyStore
	audit    *AuditLog    // nil unless WithAuditLog
	recs     *recordings  // nil unless WithRecordings
	streams  RoomStreamer // nil unless WithStreams
	cluster  clusterState // zero: one node on its own

	auditFailures prometheus.Counter

	metrics *MetricsSources // nil unless WithMetrics (metrics.go)
	pinWeb  pinCounters     // the join page's wrong PINs and lockouts
}

type namedCheck struct {
	name  string
	check ReadyCheck
}

// Option configures a Server.
type Option func(*Server)

// WithVersion sets the version reported by /healthz and mediagate_build_info.
func WithVersion(v string) Option { return func(s *Server) { s.version = v } }

// WithRegistry makes the server expose reg on /metrics instead of a registry
// of its own, so the other components can register their collectors on it.
func WithRegistry(reg *prometheus.Registry) Option {
	return func(s *Server) { s.registry = reg }
}

// WithReadiness adds a check that /readyz runs from the start, under
// name (the key of the "failed" object of a 503 answer): the node's wiring
// passes a Redis ping here when the cluster state is required, so load
// balancers stop sending new work to a node that cannot reach it. It is
// AddReadyCheck at construction; draining still answers 503 before any
// check runs.
func WithReadiness(name string, check ReadyCheck) Option {
	return func(s *Server) { s.checks = append(s.checks, namedCheck{name, check}) }
}

// New returns a Server with /healthz, /readyz and /metrics mounted.
func New(log *slog.Logger, opts ...Option) *Server {
	s := &Server{log: log.With("component", "api"), version: "dev", mux: newRouteMux()}
	for _, o := range opts {
		o(s)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.cluster.nodes != nil || s.cluster.rooms != nil {
		s.cluster.forward = newForwarder()
	}
	s.registerMetrics()
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if s.join != nil {
		s.mountJoin()
	}
	if s.admin != nil {
		s.mountAdmin()
		s.mountAdminPage()
		s.mountOpenAPI()
	}
	if s.join != nil || s.admin != nil { // the pages' scripts and styles
		s.mux.HandleFunc("GET /static/{file}", s.staticFile)
	}
	if s.recs != nil && s.admin != nil { // the routes need the API keys
		s.mountRecordings()
	}
	if s.streams != nil && s.admin != nil {
		s.mountStreams()
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	}))
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s
}

func (s *Server) registerMetrics() {
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mediagate_build_info",
		Help:        "Always 1; the version label tells which build runs.",
		ConstLabels: prometheus.Labels{"version": s.version},
	})
	build.Set(1)
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mediagate_http_requests_total",
		Help: "HTTP requests answered, by route pattern and status code.",
	}, []string{"route", "code"})
	s.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mediagate_audit_write_failures_total",
		Help: "Audit entries that could not be written to the audit log (disk full, permissions); each is also logged.",
	})
	s.registry.MustRegister(build, s.requests, s.auditFailures)
	if s.metrics != nil || s.join != nil {
		c := &nodeCollector{}
		if s.metrics != nil {
			c.src = *s.metrics
		}
		if s.join != nil {
			c.web = &s.pinWeb
		}
		s.registry.MustRegister(c)
	}
}

// Registry is the Prometheus registry behind /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// AddReadyCheck adds a check that /readyz runs; the node is ready only when
// every check passes and it is not draining.
func (s *Server) AddReadyCheck(name string, c ReadyCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, namedCheck{name, c})
}

// Drain marks the node as going away: /readyz answers 503 from now on, so
// load balancers and the cluster stop sending it new calls and browsers.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// Handle mounts h at pattern (http.ServeMux syntax) beside the server's own
// endpoints, for handlers of other packages: rtc's WHIP and WHEP handler
// on "/whip/" and "/whep/", later the admin API. Like ServeMux.Handle it
// panics on a pattern that conflicts with one already mounted. It may be
// called while the server runs. While the node drains, POST requests to h
// (new sessions) are refused with 503 and Retry-After; everything else,
// leaving a session above all, still reaches h.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && s.draining.Load() {
			s.writeProblem(w, r, &retryError{ErrDraining, drainRetryAfter})
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// drainRetryAfter is the Retry-After of requests refused while draining:
// long enough for a load balancer to have noticed /readyz.
const drainRetryAfter = 5 * time.Second

// Handler returns the HTTP handler with every endpoint mounted, wrapped in
// request accounting and the access log.
func (s *Server) Handler() http.Handler { return s.observe(s.cleanAPIPaths(s.mux)) }

// cleanAPIPaths refuses /api/ requests whose path has dot segments ("..",
// "."), empty segments or a backslash with 400, where http.ServeMux would
// redirect them to the cleaned path: an admin client that sends such a
// path has a bug or an attacker behind it, and a redirect would send it
// somewhere it did not mean. (Encoded forms, %2e%2e%2f, reach the handlers
// as one segment, which the IDs' strict form refuses.)
func (s *Server) cleanAPIPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/api/") && (cleanPath(p) != p || strings.ContainsRune(p, '\\')) {
			s.writeProblem(w, r, fmt.Errorf("%w: path %q is not in canonical form", ErrBadRequest, truncate(p, 100)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath is path.Clean keeping a trailing slash, as http.ServeMux
// cleans paths.
func cleanPath(p string) string {
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// Serve answers HTTP on ln until Shutdown is called; it then returns nil.
// It may be called once.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for open requests until ctx
// ends; then it closes what is still open and reports that it had to.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if s.cluster.forward != nil {
		s.cluster.forward.close()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		s.log.Warn("http shutdown grace exceeded; closing open connections")
		if cerr := s.http.Close(); cerr != nil {
			return cerr
		}
	}
	return err
}
