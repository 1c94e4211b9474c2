package sip

import (
	"cmp"
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Trunk is a carrier connection calls come in on. A carrier either sends
// INVITEs from known addresses (an IP-authenticated trunk: CIDRs), or
// answers a digest challenge (a PBX or softphone with credentials), or
// delivers calls to the contact we register with its registrar (a
// registration trunk: Register). With no trunk configured the UA accepts
// every caller, the one-node default; with trunks, requests outside a
// dialog from anyone else are refused.
type Trunk struct {
	// Name identifies the trunk in CallInfo.Trunk, logs and metrics.
	Name string
	// CIDRs are the networks whose requests the trunk accepts. Without
	// credentials a request from them is accepted as is; with
	// credentials (and Register off) it must also answer a digest
	// challenge.
	CIDRs []netip.Prefix
	// Username and Password are digest credentials. Register off: callers
	// must answer our challenge with them (from CIDRs, or from anywhere
	// when there are none). Register on: we answer the registrar's
	// challenge with them.
	Username string
	// Password is a secret: never logged.
	Password string
	// Realm is the digest realm (RFC 3261 §22.1). Register off: the realm
	// we challenge in; empty means the UA's name. Register on: when set,
	// we answer only challenges in this realm.
	Realm string
	// Register makes the UA keep a binding of its contact at Registrar
	// (RFC 3261 §10) and accept requests from the registrar's addresses
	// as this trunk's, without challenging them.
	Register bool
	// Registrar is a SIP URI (sip:host[:port][;transport=tcp]) or
	// host:port; the port defaults to 5060 and the host is looked up
	// (A/AAAA) before each REGISTER.
	Registrar string
	// Expires is the binding lifetime we ask for; 0 means 1h.
	Expires time.Duration
	// SRTP is whether the trunk's calls use SRTP with SDES keys (RFC
	// 4568): SRTPOptional (the zero value) follows the offer, SRTPOff
	// refuses SRTP-only offers, SRTPRequired refuses plain ones. SDES keys
	// are only as secret as the signalling: run such trunks over TLS.
	SRTP SRTPPolicy
}

// String keeps the password out of fmt's %v, should a trunk be printed.
func (t Trunk) String() string {
	pw := ""
	if t.Password != "" {
		pw = "<redacted>"
	}
	return fmt.Sprintf("{name:%s cidrs:%v username:%q password:%s realm:%q register:%t registrar:%q expires:%s srtp:%s}",
		t.Name, t.CIDRs, t.Username, pw, t.Realm, t.Register, t.Registrar, t.Expires, t.SRTP)
}

// challenges reports whether requests on t must answer a digest challenge.
func (t *Trunk) challenges() bool { return !t.Register && t.Username != "" }

// defaultExpires is the binding lifetime a registration trunk asks for
// when its Expires is 0: RFC 3261 §10.2.1.1 suggests an hour.
const defaultExpires = time.Hour

// maxChallengeRounds caps the 401s one request chain gets: a UAC that
// keeps answering with correct credentials but stale nonces gets 403 on
// its third round instead of a fourth challenge.
const maxChallengeRounds = 3

// WithTrunks sets the trunks calls come in on (sip.trunks). Default none:
// the UA accepts every caller.
func WithTrunks(trunks ...Trunk) Option {
	return func(o *options) { o.trunk.trunks = slices.Clone(trunks) }
}

// WithHideUnknown makes the UA send no response at all to requests that
// no trunk could accept (sip.hide_unknown), instead of 403 Forbidden, so
// that scanners find nothing. It has no effect without trunks, and a
// trunk with credentials and no CIDRs makes every source a candidate that
// gets a challenge.
func WithHideUnknown(hide bool) Option { return func(o *options) { o.trunk.hide = hide } }

// trunkOptions are the options of WithTrunks and WithHideUnknown.
type trunkOptions struct {
	trunks []Trunk
	hide   bool
}

// trunking is the UA's trunk state: the trunks in name order, the key of
// our nonces, the limit on refusal logs and the registrations.
type trunking struct {
	trunks   []*trunk
	hide     bool
	nonces   *nonceKey
	refusals *logLimiter
}

// trunk is a Trunk prepared for matching.
type trunk struct {
	Trunk
	reg *registration // for Register trunks
}

// newTrunking checks the trunks and prepares them; realm is the default
// digest realm. A replacement (SetTrunks) passes the trunking it replaces
// as prev: it keeps its nonce key, so challenges already sent stay
// answerable, and its refusal log limit. Errors wrap ErrConfig.
func newTrunking(o trunkOptions, realm string, prev *trunking) (*trunking, error) {
	tr := &trunking{hide: o.hide, nonces: newNonceKey(), refusals: newLogLimiter(refusalBurst, time.Minute)}
	if prev != nil {
		tr.nonces, tr.refusals = prev.nonces, prev.refusals
	}
	seen := map[string]bool{}
	var err error
	for _, t := range o.trunks {
		if err := checkTrunk(t, seen); err != nil {
			return nil, fmt.Errorf("%w: trunk %q: %w", ErrConfig, t.Name, err)
		}
		seen[t.Name] = true
		t.Expires = cmp.Or(t.Expires, defaultExpires)
		t.CIDRs = slices.Clone(t.CIDRs)
		for i, p := range t.CIDRs {
			t.CIDRs[i] = p.Masked()
		}
		tk := &trunk{Trunk: t}
		if !t.Register {
			tk.Realm = cmp.Or(t.Realm, realm)
		} else if tk.reg, err = newRegistration(&tk.Trunk); err != nil {
			return nil, fmt.Errorf("%w: trunk %q: %w", ErrConfig, t.Name, err)
		}
		tr.trunks = append(tr.trunks, tk)
	}
	slices.SortFunc(tr.trunks, func(a, b *trunk) int { return strings.Compare(a.Name, b.Name) })
	return tr, nil
}

// checkTrunk refuses a trunk that can accept nothing or cannot register.
func checkTrunk(t Trunk, seen map[string]bool) error {
	switch {
	case t.Name == "":
		return fmt.Errorf("no name")
	case seen[t.Name]:
		return fmt.Errorf("name used twice")
	case (t.Username == "") != (t.Password == ""):
		return fmt.Errorf("username and password go together")
	case len(t.CIDRs) == 0 && t.Username == "" && !t.Register:
		return fmt.Errorf("needs cidrs or credentials")
	case strings.ContainsAny(t.Realm, "\"\\\r\n"):
		return fmt.Errorf("realm holds a quote, backslash or line break")
	case t.Expires < 0:
		return fmt.Errorf("negative expires")
	case t.SRTP > SRTPRequired:
		return fmt.Errorf("unknown srtp policy")
	}
	for _, p := range t.CIDRs {
		if !p.IsValid() {
			return fmt.Errorf("invalid cidr")
		}
	}
	if t.Register && t.Username == "" {
		return fmt.Errorf("register needs username and password")
	}
	return nil
}

// contains reports whether requests from a come from this trunk: one of
// its CIDRs, or its registrar's addresses.
func (t *trunk) contains(a netip.Addr) bool {
	for _, p := range t.CIDRs {
		if p.Contains(a) {
			return true
		}
	}
	return t.reg != nil && t.reg.from(a)
}

// verdict is what admit does with a request.
type verdict int

const (
	admitted   verdict = iota // go on, as the trunk's
	challenged                // 401 with a challenge
	refused                   // an error response
	ignored                   // no response at all (hide_unknown)
)

// decision is admit's verdict with what it needs.
type decision struct {
	verdict verdict
	trunk   string
	code    int
	reason  string
	hdrs    []sip.Header
	why     string // for the log
}

// gated wraps the handler of requests other than INVITE (which admits by
// itself, to learn its trunk): only admitted requests reach it. ACKs are
// never answered (RFC 3261 §17.2.3), so they pass.
func (u *UA) gated(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if req.IsAck() {
			h(req, tx)
			return
		}
		if _, ok := u.admit(req, tx); ok {
			h(req, tx)
		}
	}
}

// admit decides whether a request may go on and returns the name of the
// trunk it came in on. In-dialog requests of calls we accepted pass as
// their call's trunk; so does everything when no trunk is configured.
// Otherwise the request is answered here (401, 403, 400) or, from an
// unknown source with hide_unknown, dropped, and admit returns false.
func (u *UA) admit(req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	tr := u.trunks()
	if len(tr.trunks) == 0 {
		return "", true
	}
	if in := u.lookup(req); in != nil {
		return in.info.Trunk, true
	}
	src, _ := netip.ParseAddrPort(req.Source())
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	d := tr.decide(req, src.Addr(), time.Now())
	switch d.verdict {
	case admitted:
		return d.trunk, true
	case challenged:
		u.log.Debug("sip request challenged", "method", req.Method.String(), addrAttr("source", src))
		u.respond(req, tx, 401, "", d.hdrs...)
		return "", false
	case refused:
		u.respond(req, tx, d.code, d.reason)
	}
	u.logRefusal(req, src, d)
	return "", false
}

// logRefusal logs a refused or dropped request at Info, or at Debug once
// more than refusalBurst came within a minute, so a scanner cannot flood
// the log; the next Info record says how many were held back.
func (u *UA) logRefusal(req *sip.Request, src netip.AddrPort, d decision) {
	ok, held := u.trunks().refusals.allow(time.Now())
	if held > 0 {
		u.log.Info("sip refusals logged at debug level only", "count", held, "within", time.Minute)
	}
	level := slog.LevelInfo
	if !ok {
		level = slog.LevelDebug
	}
	answer := "none"
	if d.verdict == refused {
		answer = fmt.Sprintf("%d %s", d.code, cmp.Or(d.reason, reasonPhrase(d.code)))
	}
	u.log.Log(context.Background(), level, "sip request refused", "method", req.Method.String(),
		addrAttr("source", src), "answer", answer, "why", d.why, "trunk", d.trunk)
}

// decide is admit's verdict for a request from src outside any dialog. A
// trunk without inbound credentials accepts its CIDRs (and registrar) at
// once; trunks with credentials that could accept src challenge it; no
// candidate at all means the source is unknown.
func (tr *trunking) decide(req *sip.Request, src netip.Addr, now time.Time) decision {
	var byAddr, cands []*trunk
	for _, t := range tr.trunks {
		hit := src.IsValid() && t.contains(src)
		switch {
		case t.challenges() && (hit || len(t.CIDRs) == 0):
			cands = append(cands, t)
		case !t.challenges() && hit:
			byAddr = append(byAddr, t)
		}
	}
	if len(byAddr) > 0 {
		return decision{verdict: admitted, trunk: pickByContact(byAddr, req.Recipient.User).Name}
	}
	// CANCEL cannot be challenged (RFC 3261 §22.1): it cannot be resent.
	if len(cands) == 0 || req.Method == sip.CANCEL {
		if tr.hide {
			return decision{verdict: ignored, why: "unknown source"}
		}
		return decision{verdict: refused, code: 403, why: "unknown source"}
	}
	return tr.authenticate(req, src, cands, now)
}

// pickByContact picks, among trunks accepting one address, the one whose
// registered contact the Request-URI names (two accounts at one carrier),
// else the first by name.
func pickByContact(ts []*trunk, user string) *trunk {
	for _, t := range ts {
		if t.Register && user != "" && t.Username == user {
			return t
		}
	}
	return ts[0]
}

// authenticate checks the request's digest credentials against the
// candidate trunks (RFC 3261 §22.2): none for our realms earns a
// challenge, credentials for a user no candidate has a 403.
func (tr *trunking) authenticate(req *sip.Request, src netip.Addr, cands []*trunk, now time.Time) decision {
	realmSeen := false
	for _, h := range req.GetHeaders("Authorization") {
		p, err := parseDigest(h.Value())
		if err != nil {
			return decision{verdict: refused, code: 400, reason: "Malformed Authorization Header", why: err.Error()}
		}
		for _, t := range cands {
			if p["realm"] != t.Realm {
				continue
			}
			realmSeen = true
			if p["username"] == t.Username {
				return tr.verify(req, src, t, p, cands, now)
			}
		}
	}
	if realmSeen {
		return decision{verdict: refused, code: 403, reason: "Bad Credentials", why: "unknown username"}
	}
	return tr.challenge(src, cands, 1, false, now)
}

// verify checks one trunk's credentials: a response computed with the
// trunk's password over a nonce we minted for this realm and source. A
// wrong response is refused with 403 at once rather than challenged again:
// the UAC has answered our own challenge, so a new one cannot help, and
// guessing passwords gets one try per request. A right response over a
// nonce too old is challenged again with stale=true (RFC 7616 §3.3), up
// to maxChallengeRounds.
func (tr *trunking) verify(req *sip.Request, src netip.Addr, t *trunk, p map[string]string, cands []*trunk, now time.Time) decision {
	alg, ok := lookupAlg(p["algorithm"])
	if !ok {
		return decision{verdict: refused, code: 403, reason: "Unsupported Digest Algorithm", trunk: t.Name, why: "digest algorithm"}
	}
	qop := p["qop"]
	if qop != "" && !strings.EqualFold(qop, "auth") {
		return decision{verdict: refused, code: 403, reason: "Unsupported Digest Qop", trunk: t.Name, why: "digest qop"}
	}
	if p["nonce"] == "" || p["uri"] == "" || p["response"] == "" || (qop != "" && (p["cnonce"] == "" || p["nc"] == "")) {
		return decision{verdict: refused, code: 400, reason: "Malformed Authorization Header", why: "digest parameters missing"}
	}
	round, mine, stale := tr.nonces.check(p["nonce"], t.Realm, src, now)
	if !mine { // another node's, or ours before a restart
		return tr.challenge(src, []*trunk{t}, 1, false, now)
	}
	// The uri parameter enters the hash but is not compared with the
	// Request-URI: proxies and NAT rewrite the one and not the other,
	// and sipp, for one, sends it without the user part.
	want := digestInput{alg: alg, username: t.Username, realm: t.Realm, password: t.Password,
		method: req.Method.String(), uri: p["uri"], nonce: p["nonce"], cnonce: p["cnonce"], nc: p["nc"],
		qop: strings.ToLower(qop)}.response()
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(p["response"]))) != 1 {
		return decision{verdict: refused, code: 403, reason: "Bad Credentials", trunk: t.Name, why: "wrong digest response"}
	}
	if stale {
		if round >= maxChallengeRounds {
			return decision{verdict: refused, code: 403, reason: "Too Many Challenges", trunk: t.Name, why: "stale nonces"}
		}
		return tr.challenge(src, []*trunk{t}, round+1, true, now)
	}
	return decision{verdict: admitted, trunk: t.Name}
}

// challenge builds a 401's WWW-Authenticate headers for the realms of ts,
// each with its own nonce.
func (tr *trunking) challenge(src netip.Addr, ts []*trunk, round int, stale bool, now time.Time) decision {
	d := decision{verdict: challenged}
	var realms []string
	for _, t := range ts {
		if slices.Contains(realms, t.Realm) {
			continue
		}
		realms = append(realms, t.Realm)
		d.hdrs = append(d.hdrs, challengeHeaders(t.Realm, tr.nonces.mint(now, t.Realm, src, round), stale)...)
	}
	return d
}
