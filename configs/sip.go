package configs

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// SIPCodecs are the codec names sip.codecs accepts (case-insensitive), as
// package sip and SDP spell them.
var SIPCodecs = []string{"PCMA", "PCMU", "G722", "opus"}

// Bounds of sip.media_timeout: below a second, jitter and packet loss on a
// live call would end it; above an hour a dead call holds a seat too long.
const (
	minMediaTimeout = time.Second
	maxMediaTimeout = time.Hour
)

// Bounds of the session timer and the call length: RFC 4028 §4 forbids a
// Min-SE below 90 s; a session interval above a day would not find a dead
// call before its caller's bill does; a call length limit below a minute
// would cut callers off during the IVR.
const (
	minSessionExpires  = 90 * time.Second
	maxSessionExpires  = 24 * time.Hour
	minMaxCallDuration = time.Minute
)

// sip checks the SIP section: the listeners, codec names known and not
// repeated, the media timeout's range (0 and an empty list keep package
// sip's built-in defaults), the session timer, the call length limit, the
// external address, a TLS certificate that comes with its key, the
// trunks (trunks.go) and the abuse guard (guard.go).
func (v *validator) sip(s SIP) {
	v.hostPort("sip.listen", s.Listen, 0)
	seen := map[string]int{}
	for i, c := range s.Codecs {
		key := fmt.Sprintf("sip.codecs[%d]", i)
		name := ""
		for _, k := range SIPCodecs {
			if strings.EqualFold(c, k) {
				name = k
			}
		}
		switch first, dup := seen[name]; {
		case name == "":
			v.fail(key, "%q is not one of %s", c, strings.Join(SIPCodecs, ", "))
		case dup:
			v.fail(key, "%q repeats sip.codecs[%d]", c, first)
		default:
			seen[name] = i
		}
	}
	if d := s.MediaTimeout; d != 0 && (d < minMediaTimeout || d > maxMediaTimeout) {
		v.fail("sip.media_timeout", "%s out of range 1s..1h (or 0s for the default)", d)
	}
	v.sessionTimer(s)
	v.trunks(s.Trunks)
	if d := s.MaxCallDuration; d != 0 && d < minMaxCallDuration {
		v.fail("sip.max_call_duration", "%s below 1m (or 0s for no limit)", d)
	}
	if s.ExternalAddress != "" {
		if a, err := netip.ParseAddr(s.ExternalAddress); err != nil || a.IsUnspecified() || a.IsMulticast() {
			v.fail("sip.external_address", "%q is not a unicast IP address", s.ExternalAddress)
		}
	}
	v.hostPort("sip.tls.listen", s.TLS.Listen, 0)
	// Blame the key the operator set: the other has no line to point at.
	switch {
	case s.TLS.Cert != "" && s.TLS.Key == "":
		v.fail("sip.tls.cert", "set without sip.tls.key (both or neither)")
	case s.TLS.Key != "" && s.TLS.Cert == "":
		v.fail("sip.tls.key", "set without sip.tls.cert (both or neither)")
	}
	v.sipGuard(s.Guard) // guard.go
}

// sessionTimer checks sip.session_expires and sip.min_se (RFC 4028): each
// in range, and the interval we ask for not below the minimum we demand.
func (v *validator) sessionTimer(s SIP) {
	okSE := s.SessionExpires >= minSessionExpires && s.SessionExpires <= maxSessionExpires
	if !okSE {
		v.fail("sip.session_expires", "%s out of range 90s..24h", s.SessionExpires)
	}
	switch {
	case s.MinSE < minSessionExpires:
		v.fail("sip.min_se", "%s below 90s (RFC 4028 §4)", s.MinSE)
	case okSE && s.MinSE > s.SessionExpires:
		v.fail("sip.min_se", "%s above sip.session_expires (%s)", s.MinSE, s.SessionExpires)
	}
}
