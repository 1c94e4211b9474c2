package stream

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Default ports of the two schemes: 1935 is RTMP's registered port; RTMPS
// platforms (Facebook, YouTube, Twitch) listen on 443.
const (
	defaultRTMPPort  = 1935
	defaultRTMPSPort = 443
	// maxURLLen bounds a destination URL; real ones are under 200 bytes.
	maxURLLen = 2048
)

// target is a parsed destination: where to connect and what to publish.
// Its key is a secret: only masked ever leaves the package.
type target struct {
	tls    bool
	host   string // without brackets
	port   int
	app    string // RTMP application, e.g. "live2"
	key    string // publishing name: the stream key and any query
	tcURL  string // scheme://host[:port]/app, sent in connect
	masked string // what status, events, errors and logs show
}

// addr is host:port for the dialer.
func (t *target) addr() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

// parseTarget checks a destination URL. The stream key is key when given,
// else the URL's last path segment (with its query, which some platforms
// use for tokens). Errors name the destination by its masked form.
func parseTarget(raw, key string) (*target, error) {
	if len(raw) > maxURLLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidURL, maxURLLen)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Error quotes the whole URL, key included: say less.
		return nil, fmt.Errorf("%w: not a url", ErrInvalidURL)
	}
	scheme := strings.ToLower(u.Scheme)
	app, last := splitPath(strings.Trim(u.EscapedPath(), "/"), key)
	t := &target{host: u.Hostname(), tcURL: scheme + "://" + u.Host + "/" + app}
	t.masked = truncate(t.tcURL, 200)
	t.app, _ = url.PathUnescape(app)
	if err := t.setScheme(scheme, u); err != nil {
		return nil, err
	}
	switch {
	case u.User != nil:
		return nil, fmt.Errorf("%w: %s: credentials in the url are not supported", ErrInvalidURL, t.masked)
	case u.Fragment != "":
		return nil, fmt.Errorf("%w: %s: fragment in the url", ErrInvalidURL, t.masked)
	case key != "" && u.RawQuery != "":
		return nil, fmt.Errorf("%w: %s: query in the url with a separate key", ErrInvalidURL, t.masked)
	case key != "":
		t.key = key
	default:
		t.key, _ = url.PathUnescape(last)
		if u.RawQuery != "" {
			t.key += "?" + u.RawQuery
		}
	}
	switch {
	case t.app == "":
		return nil, fmt.Errorf("%w: %s: no application in the path", ErrInvalidURL, t.masked)
	case t.key == "":
		return nil, fmt.Errorf("%w: %s: no stream key", ErrInvalidURL, t.masked)
	case strings.ContainsAny(t.key, "\x00\r\n") || strings.ContainsAny(t.app, "\x00\r\n"):
		return nil, fmt.Errorf("%w: %s: control characters", ErrInvalidURL, t.masked)
	}
	return t, nil
}

// splitPath splits a URL path into the application and the key: the key
// is the last segment, unless the key is given apart (Facebook's
// "rtmps://host/rtmp/" + key), when the whole path is the application.
func splitPath(path, key string) (app, last string) {
	if key != "" {
		return path, ""
	}
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", path
	}
	return path[:i], path[i+1:]
}

// setScheme checks the scheme, host and port and sets TLS and the port.
func (t *target) setScheme(scheme string, u *url.URL) error {
	switch scheme {
	case "rtmp":
		t.port = defaultRTMPPort
	case "rtmps":
		t.tls, t.port = true, defaultRTMPSPort
	case "":
		return fmt.Errorf("%w: no scheme (want rtmp:// or rtmps://)", ErrUnsupportedScheme)
	default:
		return fmt.Errorf("%w: %s (want rtmp or rtmps)", ErrUnsupportedScheme, t.masked)
	}
	if t.host == "" || u.Opaque != "" {
		return fmt.Errorf("%w: %s: no host", ErrInvalidURL, t.masked)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: %s: bad port", ErrInvalidURL, t.masked)
		}
		t.port = n
	}
	return nil
}

// cgnat is the shared address space of RFC 6598 §7, reachable only inside
// a carrier's network.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr reports whether a is an address the egress may connect to
// without Options.AllowPrivate: not loopback, RFC 1918/4193 private,
// link-local, CGNAT, multicast or unspecified.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() &&
		!a.IsLinkLocalMulticast() && !a.IsInterfaceLocalMulticast() && !a.IsMulticast() &&
		!a.IsUnspecified() && !cgnat.Contains(a)
}

// Resolver looks up a destination's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// checkAddress refuses a target whose host is, or resolves to, a
// non-public address. Every address must be public: a name with one
// private address among public ones is still a way in.
func checkAddress(ctx context.Context, r Resolver, t *target) error {
	if a, err := netip.ParseAddr(t.host); err == nil {
		if !publicAddr(a) {
			return fmt.Errorf("destination %s: %w (%s)", t.masked, ErrPrivateAddress, a.Unmap())
		}
		return nil
	}
	addrs, err := r.LookupNetIP(ctx, "ip", t.host)
	if err != nil {
		return fmt.Errorf("destination %s: %w: %w", t.masked, ErrResolve, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("destination %s: %w: no addresses", t.masked, ErrResolve)
	}
	for _, a := range addrs {
		if !publicAddr(a) {
			return fmt.Errorf("destination %s: %w (%s resolves to %s)", t.masked, ErrPrivateAddress, t.host, a.Unmap())
		}
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
