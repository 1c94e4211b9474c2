package configs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Limits enforced by Validate.
const (
	// rtpPortFloor keeps call media off the well-known ports, which need
	// privileges and belong to other services.
	rtpPortFloor = 1024
	// maxDrainTimeout bounds SIGTERM handling: an orchestrator that waits
	// longer than this for a node to stop is misconfigured.
	maxDrainTimeout = time.Hour
	// maxSpeakers is the most voices the mixer adds up at once
	// (media.MaxMixVoices).
	maxSpeakers = 16
	// maxNodeIDLen keeps node IDs short enough for metric labels and Redis keys.
	maxNodeIDLen = 64
	// maxNodeParticipants bounds node.max_participants: far above what one
	// node mixes, so only typos are refused.
	maxNodeParticipants = 1000000
)

// Validate checks every value for range and form, so the node refuses a bad
// configuration at start instead of failing on the first call. It reports
// all problems (joined with errors.Join), each an *Error wrapping ErrInvalid
// whose message names the dotted key, e.g.
// "rtp.port_min: 70000 out of range 1024..65535". When called by Load, each
// error also names the file and line, or the environment variable, the
// value came from.
func (c Config) Validate() error { return c.validate("", nil) }

// validate is Validate with the origins Load recorded for each key.
func (c Config) validate(file string, origins map[string]origin) error {
	v := validator{file: file, origins: origins}

	if !validNodeID(c.Node.ID) {
		v.fail("node.id", "%q must be at most %d characters from A-Z a-z 0-9 . _ -", c.Node.ID, maxNodeIDLen)
	}
	if d := c.Node.DrainTimeout; d < 0 || d > maxDrainTimeout {
		v.fail("node.drain_timeout", "%s out of range 0s..1h", d)
	}
	v.intRange("node.max_participants", c.Node.MaxParticipants, 0, maxNodeParticipants)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	v.hostPort("http.listen", c.HTTP.Listen, 0)
	v.httpTLS(c.HTTP)
	v.pprofListen(c.HTTP.PprofListen)
	v.auth(c.Auth)
	v.sip(c.SIP)
	v.rtpPorts(c.RTP)
	v.dialin(c.Dialin, c.Rooms)
	v.webrtc(c.WebRTC)
	if c.Storage.Dir == "" {
		v.fail("storage.dir", "must not be empty")
	}
	v.intRange("storage.audit_instruction_years", c.Storage.AuditInstructionYears, 1, 30)
	if d := c.Storage.AuditAccessRetention; d < 24*time.Hour || d > 10*8760*time.Hour {
		v.fail("storage.audit_access_retention", "%s out of range 24h..87600h", d)
	}
	v.recording(c.Recording)
	v.stream(c.Stream)
	v.redis(c.Redis, c.Auth)
	v.cluster(c.Cluster)
	if d := c.Conference.EmptyTimeout; d < 0 || d > 24*time.Hour {
		v.fail("conference.empty_timeout", "%s out of range 0s..24h", d)
	}
	v.intRange("conference.max_speakers", c.Conference.MaxSpeakers, 1, maxSpeakers)
	v.rooms(c.Rooms)
	v.webhooks(c.Webhooks)
	return join(v.errs)
}

// validator collects Validate's errors, locating each at the origin of the
// key's value.
type validator struct {
	file    string
	origins map[string]origin
	errs    []error
}

// fail records that the value of key is invalid.
func (v *validator) fail(key, format string, args ...any) {
	e := &Error{Key: key, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid}
	o, ok := v.origins[key]
	if base, _, isItem := strings.Cut(key, "["); !ok && isItem {
		// A list item: point at the list.
		o, ok = v.origins[base]
	}
	if ok {
		e.Env = o.env
		if o.line > 0 {
			e.File, e.Line = v.file, o.line
		}
	}
	v.errs = append(v.errs, e)
}

// set reports whether key was given in the file or environment.
func (v *validator) set(key string) bool {
	_, ok := v.origins[key]
	return ok
}

// oneOf checks that s is one of the allowed words.
func (v *validator) oneOf(key, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	v.fail(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
}

// intRange checks lo <= n <= hi and reports whether it holds.
func (v *validator) intRange(key string, n, lo, hi int) bool {
	if n < lo || n > hi {
		v.fail(key, "%d out of range %d..%d", n, lo, hi)
		return false
	}
	return true
}

// hostPort checks that s is host:port (the host may be empty, meaning all
// interfaces) with a numeric port in minPort..65535; port 0 asks the kernel
// for a free port, which tests rely on.
func (v *validator) hostPort(key, s string, minPort int) {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		v.fail(key, "%q is not host:port: %v", s, err)
		return
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		v.fail(key, "%q: port %q is not a number", s, port)
		return
	}
	if p < minPort || p > 65535 {
		v.fail(key, "%q: port %d out of range %d..65535", s, p, minPort)
	}
}

// pprofListen checks http.pprof_listen: empty, or host:port on a loopback
// address (the profiler has no authentication).
func (v *validator) pprofListen(s string) {
	if s == "" {
		return
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		v.hostPort("http.pprof_listen", s, 0)
		return
	}
	if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
		v.fail("http.pprof_listen", "%q: host must be a loopback address such as 127.0.0.1 or [::1] (the profiler has no authentication)", s)
		return
	}
	v.hostPort("http.pprof_listen", s, 0)
}

// rtpPorts checks the RTP port range: both ends above the privileged ports,
// port_min even and below port_max, so at least one RTP/RTCP pair fits.
func (v *validator) rtpPorts(r RTP) {
	okMin := v.intRange("rtp.port_min", r.PortMin, rtpPortFloor, 65535)
	okMax := v.intRange("rtp.port_max", r.PortMax, rtpPortFloor, 65535)
	if !okMin || !okMax {
		return
	}
	// RFC 3550 §11: RTP uses an even port and RTCP the next higher (odd) one,
	// so allocation walks the range in even steps from port_min.
	if r.PortMin%2 != 0 {
		v.fail("rtp.port_min", "%d must be even (RFC 3550 §11)", r.PortMin)
	}
	if r.PortMin >= r.PortMax {
		// Blame the key the operator set; port_max when both were set.
		if v.set("rtp.port_max") || !v.set("rtp.port_min") {
			v.fail("rtp.port_max", "%d must be above rtp.port_min (%d)", r.PortMax, r.PortMin)
		} else {
			v.fail("rtp.port_min", "%d must be below rtp.port_max (%d)", r.PortMin, r.PortMax)
		}
	}
}

// webrtc checks the WebRTC section: the port, the Opus settings, and that every public IP is
// an IP address (ICE candidates carry addresses, not names: RFC 8839 §5.1).
func (v *validator) webrtc(w WebRTC) {
	v.intRange("webrtc.udp_port", w.UDPPort, 0, 65535) // 0: ephemeral
	v.oneOf("webrtc.opus_application", w.OpusApplication, "voip", "audio", "lowdelay")
	v.intRange("webrtc.opus_complexity", w.OpusComplexity, 0, 10)
	for i, ip := range w.PublicIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			v.fail("webrtc.public_ips", "item %d: %q is not an IP address", i, ip)
		}
	}
}

// validNodeID reports whether id matches [A-Za-z0-9._-]{0,64}.
// ValidNodeID reports whether id can name a node: 1 to 64 characters
// from A-Z a-z 0-9 . _ - (what node.id accepts, less the empty default).
func ValidNodeID(id string) bool { return id != "" && validNodeID(id) }

func validNodeID(id string) bool {
	if len(id) > maxNodeIDLen {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}
