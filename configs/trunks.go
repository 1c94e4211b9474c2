package configs

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Trunk is a carrier connection phone calls come in on (sip.trunks, keyed
// by a name like a room ID). A trunk accepts requests from its CIDRs, or
// with digest credentials from anywhere (or only from its CIDRs when it has
// both), or, with Register, from the registrar it keeps a binding at. When
// the section is empty every caller is accepted. Every field's zero value
// is its default.
type Trunk struct {
	// CIDRs are the networks whose requests are this trunk's calls, e.g.
	// the carrier's signalling addresses as 203.0.113.0/24 (a single
	// address as /32 or /128).
	CIDRs []string `yaml:"cidrs"`
	// Username and Password are digest credentials (RFC 3261 §22): without
	// Register the caller must answer our challenge with them; with
	// Register we answer the registrar's.
	Username string `yaml:"username"`
	// Password is a secret: never logged, blanked by Redacted.
	Password string `yaml:"password"`
	// Realm is the digest realm: the one we challenge in (empty: the
	// node's ID), or with Register the only one whose challenges we
	// answer (empty: any).
	Realm string `yaml:"realm"`
	// Register keeps a binding of the node's contact at Registrar (RFC
	// 3261 §10), refreshed before it lapses and removed at shutdown.
	Register bool `yaml:"register"`
	// Registrar is sip:host[:port][;transport=tcp] or host:port; used only
	// with Register.
	Registrar string `yaml:"registrar"`
	// Expires is the binding lifetime asked of the registrar; 0 means 1h.
	Expires time.Duration `yaml:"expires"`
	// SRTP is whether the trunk's calls use SRTP with SDES keys (RFC
	// 4568): "optional" (empty means the same) answers an RTP/SAVP offer
	// with SRTP and an RTP/AVP offer with plain RTP, "required" refuses
	// plain offers with 488 (Warning 399 "SRTP required"), "off" refuses
	// offers of SRTP only with 488.
	SRTP string `yaml:"srtp"`
}

// Limits of sip.trunks, enforced by Validate.
const (
	// minTrunkExpires: RFC 3261 §10.2.8 lets a registrar refuse shorter
	// bindings (423), and refreshing more often only loads it.
	minTrunkExpires = time.Minute
	// maxTrunkExpires: a registrar shortens what it finds too long, and a
	// binding of a node that died without un-REGISTER outlives it that
	// long.
	maxTrunkExpires = 24 * time.Hour
	// maxCredentialLen bounds username, password and realm.
	maxCredentialLen = 128
)

// userChars are the characters of a SIP URI's user part besides letters
// and digits (RFC 3261 §25.1 unreserved and user-unreserved): a trunk's
// username goes into the REGISTER's To, From and Contact.
const userChars = "-_.!~*'()&=+$,;?/"

// trunks checks sip.trunks in the order the operator wrote them. Messages
// never show a password.
func (v *validator) trunks(trunks map[string]Trunk) {
	names := slices.SortedFunc(maps.Keys(trunks), func(a, b string) int {
		return cmp.Or(cmp.Compare(v.origins["sip.trunks."+a].line, v.origins["sip.trunks."+b].line), cmp.Compare(a, b))
	})
	for _, name := range names {
		t, key := trunks[name], "sip.trunks."+name
		if !ValidRoomID(name) {
			v.fail(key, "trunk name %q must be 1 to %d characters from a-z 0-9 _ -, starting with a letter or digit", name, MaxRoomIDLen)
		}
		for i, c := range t.CIDRs {
			v.cidr(fmt.Sprintf("%s.cidrs[%d]", key, i), c)
		}
		v.credentials(key, t)
		switch {
		case t.Register && (t.Registrar == "" || t.Username == ""):
			v.fail(key+".register", "needs %s.registrar, %s.username and %s.password", key, key, key)
		case !t.Register && t.Registrar != "":
			v.fail(key+".registrar", "is only used with %s.register: true", key)
		case !t.Register && t.Expires != 0:
			v.fail(key+".expires", "is only used with %s.register: true", key)
		case !t.Register && len(t.CIDRs) == 0 && t.Username == "" && t.Password == "":
			v.fail(key, "needs cidrs, or username and password, or register: true")
		}
		if t.Registrar != "" {
			if msg := checkRegistrar(t.Registrar); msg != "" {
				v.fail(key+".registrar", "%q %s", t.Registrar, msg)
			}
		}
		if d := t.Expires; d != 0 && (d < minTrunkExpires || d > maxTrunkExpires) {
			v.fail(key+".expires", "%s out of range 1m..24h (or 0s for 1h)", d)
		}
		switch t.SRTP {
		case "", "off", "optional", "required":
		default:
			v.fail(key+".srtp", "%q is not off, optional or required", t.SRTP)
		}
	}
}

// cidr checks one entry of a trunk's cidrs: a prefix without host bits,
// so that a typo such as 10.0.0.1/8 is not silently widened.
func (v *validator) cidr(key, s string) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		v.fail(key, "%q is not a CIDR such as 203.0.113.0/24 (one address: 203.0.113.5/32)", s)
	case p != p.Masked():
		v.fail(key, "%q has host bits set: did you mean %s or %s/%d?", s, p.Masked(), p.Addr(), p.Addr().BitLen())
	}
}

// credentials checks username, password and realm of a trunk.
func (v *validator) credentials(key string, t Trunk) {
	if t.Username != "" && !sipUser(t.Username) {
		v.fail(key+".username", "must be 1 to %d characters from A-Z a-z 0-9 %s", maxCredentialLen, userChars)
	}
	switch {
	case t.Username != "" && t.Password == "":
		v.fail(key+".username", "needs %s.password", key)
	case t.Username == "" && t.Password != "":
		v.fail(key+".password", "needs %s.username", key)
	case len(t.Password) > maxCredentialLen || !printable(t.Password):
		v.fail(key+".password", "must be at most %d printable characters", maxCredentialLen)
	}
	if len(t.Realm) > maxCredentialLen || !printable(t.Realm) || strings.ContainsAny(t.Realm, `"\`) {
		v.fail(key+".realm", "must be at most %d printable characters without \" or \\", maxCredentialLen)
	}
}

// sipUser reports whether s can be a SIP URI's user part as it is.
func sipUser(s string) bool {
	if s == "" || len(s) > maxCredentialLen {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(userChars, r):
		default:
			return false
		}
	}
	return true
}

// checkRegistrar returns what is wrong with a registrar, or "": a sip: URI
// without user part and with at most a transport of udp or tcp, or
// host:port. It mirrors package sip's parser, which configs cannot import.
func checkRegistrar(s string) string {
	rest := s
	if scheme, after, ok := strings.Cut(s, ":"); ok && (strings.EqualFold(scheme, "sip") || strings.EqualFold(scheme, "sips")) {
		if strings.EqualFold(scheme, "sips") {
			return "uses sips:, which is not supported (only sip:)"
		}
		rest = after
	}
	hostPort, params, _ := strings.Cut(rest, ";")
	if strings.Contains(hostPort, "@") {
		return "must not have a user part (RFC 3261 §10.2: the registrar's URI names the domain)"
	}
	if strings.ContainsAny(hostPort, " /?#") {
		return "is not a sip: URI or host:port"
	}
	for p := range strings.SplitSeq(params, ";") {
		name, val, _ := strings.Cut(p, "=")
		switch {
		case p == "":
		case !strings.EqualFold(name, "transport"):
			return fmt.Sprintf("has parameter %q; only transport=udp or transport=tcp is understood", name)
		case !strings.EqualFold(val, "udp") && !strings.EqualFold(val, "tcp"):
			return fmt.Sprintf("has transport %q; only udp and tcp are supported", val)
		}
	}
	host, port := hostPort, ""
	if h, p, err := net.SplitHostPort(hostPort); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1] // [v6] without port
	}
	if host == "" || strings.ContainsAny(host, "[]") {
		return "is not a sip: URI or host:port"
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("has port %q, not 1..65535", port)
		}
	}
	return ""
}

// redactTrunks returns a copy of trunks with set passwords replaced.
func redactTrunks(trunks map[string]Trunk) map[string]Trunk {
	if trunks == nil {
		return nil
	}
	out := make(map[string]Trunk, len(trunks))
	for name, t := range trunks {
		if t.Password != "" {
			t.Password = redactedValue
		}
		out[name] = t
	}
	return out
}

// String keeps a trunk's password out of fmt's %v and %+v.
func (t Trunk) String() string {
	pw := ""
	if t.Password != "" {
		pw = redactedValue
	}
	return fmt.Sprintf("{cidrs:%q username:%q password:%q realm:%q register:%t registrar:%q expires:%s}",
		t.CIDRs, t.Username, pw, t.Realm, t.Register, t.Registrar, t.Expires)
}
