package api

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/mediagate/mediagate/internal/anon"
)

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush,
// deadlines, hijack for later WebSocket-like endpoints).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe counts every request by route pattern (never by raw path, which
// would let clients blow up the metric's cardinality) and logs it at debug
// level with the client address anonymised.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", sw.code),
			slog.Duration("took", time.Since(start)),
			slog.String("client", AnonymizeAddr(r.RemoteAddr)))
	})
}

// AnonymizeAddr returns the IP of a "host:port" or bare address with its
// host part cleared, as logs and audit entries must not hold a full client
// address: IPv4 keeps its /24, IPv6 its /48 (whole when the operator turned
// anonymisation off, anon.SetEnabled). Anything unparsable becomes
// "invalid".
func AnonymizeAddr(addr string) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "invalid"
	}
	return anon.Addr(ip).String()
}
