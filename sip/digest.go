package sip

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// HTTP Digest authentication as SIP uses it (RFC 3261 §22.4 on RFC 2617,
// with RFC 8760's SHA-256 and SHA-512/256): the parser of credentials and
// challenges, the response computation shared by both sides, the UA's
// stateless nonces, and the answer to a registrar's challenge.

// maxDigestLen bounds an Authorization or WWW-Authenticate value we parse:
// a real one is a few hundred bytes; anything longer is refused unread.
const maxDigestLen = 4096

// nonceLifetime is how long a nonce the UA minted is accepted. A UAC
// answers a challenge within a round trip; an older nonce is stale and
// earns a fresh challenge with stale=true (RFC 7616 §3.3).
const nonceLifetime = 5 * time.Minute

// errMalformedDigest means a Digest header value does not parse (RFC 7616
// §3.4 grammar, RFC 3261 §25.1); a request carrying one gets 400.
var errMalformedDigest = errors.New("sip: malformed digest header")

// digestAlg is one digest algorithm (RFC 7616 §3.3, RFC 8760 §2.1).
type digestAlg struct {
	name string
	sess bool // "-sess": HA1 mixes in the nonce and cnonce
	hash func() hash.Hash
}

// digestAlgs are the algorithms we compute, by their upper-case token.
// The UA challenges with MD5 and SHA-256 (see challengeAlgs); the others
// are accepted when a peer picks them.
var digestAlgs = map[string]digestAlg{
	"MD5":              {name: "MD5", hash: md5.New},
	"MD5-SESS":         {name: "MD5-sess", sess: true, hash: md5.New},
	"SHA-256":          {name: "SHA-256", hash: sha256.New},
	"SHA-256-SESS":     {name: "SHA-256-sess", sess: true, hash: sha256.New},
	"SHA-512-256":      {name: "SHA-512-256", hash: sha512.New512_256},
	"SHA-512-256-SESS": {name: "SHA-512-256-sess", sess: true, hash: sha512.New512_256},
}

// challengeAlgs are the algorithms of our challenges, one WWW-Authenticate
// header each, in this order. RFC 8760 §2.4 lists the preferred one first
// and §2.3 makes the UAC take the topmost it supports; MD5 comes first
// anyway because many UACs that predate RFC 8760 (sipp, older phones and
// carrier equipment) read only the first header and give up on SHA-256.
// A UAC that knows only SHA-256 still finds its challenge.
var challengeAlgs = []string{"MD5", "SHA-256"}

// lookupAlg finds an algorithm by its token; none means MD5 (RFC 7616
// §3.3).
func lookupAlg(token string) (digestAlg, bool) {
	if token == "" {
		token = "MD5"
	}
	a, ok := digestAlgs[strings.ToUpper(token)]
	return a, ok
}

// hex returns the lower-case hex digest of s.
func (a digestAlg) hex(s string) string {
	h := a.hash()
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// digestInput is what a digest response is computed from.
type digestInput struct {
	alg                       digestAlg
	username, realm, password string
	method, uri               string
	nonce, cnonce, nc, qop    string
}

// response computes request-digest (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1;
// without qop the RFC 2069 form RFC 3261 §22.4 keeps for old peers).
func (d digestInput) response() string {
	ha1 := d.alg.hex(d.username + ":" + d.realm + ":" + d.password)
	if d.alg.sess {
		ha1 = d.alg.hex(ha1 + ":" + d.nonce + ":" + d.cnonce)
	}
	ha2 := d.alg.hex(d.method + ":" + d.uri)
	if d.qop == "" {
		return d.alg.hex(ha1 + ":" + d.nonce + ":" + ha2)
	}
	return d.alg.hex(ha1 + ":" + d.nonce + ":" + d.nc + ":" + d.cnonce + ":" + d.qop + ":" + ha2)
}

// parseDigest parses a Digest credentials or challenge value
// (`Digest realm="x", nonce="y", ...`) into its parameters, names
// lower-cased, quoted-strings unquoted. Another scheme, a repeated or
// empty parameter name, an unterminated quote or trailing garbage is
// errMalformedDigest.
func parseDigest(v string) (map[string]string, error) {
	if len(v) > maxDigestLen {
		return nil, fmt.Errorf("%w: %d bytes", errMalformedDigest, len(v))
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return nil, fmt.Errorf("%w: scheme is not digest", errMalformedDigest)
	}
	params := map[string]string{}
	for s := strings.TrimLeft(rest, " \t"); s != ""; {
		name, val, tail, err := digestParam(s)
		if err != nil {
			return nil, err
		}
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("%w: %s repeated", errMalformedDigest, name)
		}
		params[name] = val
		s = strings.TrimLeft(tail, " \t")
		if s == "" {
			break
		}
		if s[0] != ',' {
			return nil, fmt.Errorf("%w: comma expected after %s", errMalformedDigest, name)
		}
		s = strings.TrimLeft(s[1:], " \t")
	}
	if len(params) == 0 {
		return nil, fmt.Errorf("%w: no parameters", errMalformedDigest)
	}
	return params, nil
}

// digestParam reads one `name=token` or `name="quoted"` from the start of
// s and returns the rest.
func digestParam(s string) (name, val, rest string, err error) {
	i := strings.IndexByte(s, '=')
	if i <= 0 {
		return "", "", "", fmt.Errorf("%w: parameter without value", errMalformedDigest)
	}
	name = strings.ToLower(strings.TrimRight(s[:i], " \t"))
	if !isToken(name) {
		return "", "", "", fmt.Errorf("%w: bad parameter name", errMalformedDigest)
	}
	s = strings.TrimLeft(s[i+1:], " \t")
	if !strings.HasPrefix(s, `"`) {
		end := strings.IndexAny(s, ", \t")
		if end < 0 {
			end = len(s)
		}
		if end == 0 || !isToken(s[:end]) {
			return "", "", "", fmt.Errorf("%w: bad value of %s", errMalformedDigest, name)
		}
		return name, s[:end], s[end:], nil
	}
	var b strings.Builder
	for j := 1; j < len(s); j++ {
		switch c := s[j]; c {
		case '\\': // quoted-pair (RFC 3261 §25.1)
			if j+1 == len(s) {
				return "", "", "", fmt.Errorf("%w: unterminated quote", errMalformedDigest)
			}
			j++
			b.WriteByte(s[j])
		case '"':
			return name, b.String(), s[j+1:], nil
		default:
			b.WriteByte(c)
		}
	}
	return "", "", "", fmt.Errorf("%w: unterminated quote", errMalformedDigest)
}

// isToken reports whether s is a non-empty RFC 3261 §25.1 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// quote makes s a quoted-string (RFC 3261 §25.1).
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// nonceKey signs the UA's nonces. They are stateless: a nonce carries its
// minting time and challenge round, and an HMAC over them, the realm and
// the address it was given to (RFC 7616 §3.3 suggests time stamp and
// private key). A nonce is not bound to one use: within nonceLifetime a
// captured request can be replayed from the same address, the price of
// keeping no state per challenge.
type nonceKey [32]byte

// newNonceKey makes a random key; each UA has its own, so a nonce is only
// good on the node that minted it.
func newNonceKey() *nonceKey {
	var k nonceKey
	_, _ = rand.Read(k[:])
	return &k
}

// nonce layout: 8 bytes unix seconds, 1 byte round, 8 random bytes, then
// the first 16 bytes of the HMAC-SHA256 over those, the realm and src.
const (
	nonceBody = 8 + 1 + 8
	nonceMAC  = 16
)

// mint makes a nonce for a challenge in realm to src, round counting the
// challenges of one request chain (1 for the first).
func (k *nonceKey) mint(now time.Time, realm string, src netip.Addr, round int) string {
	b := make([]byte, nonceBody, nonceBody+nonceMAC)
	binary.BigEndian.PutUint64(b, uint64(now.Unix()))
	b[8] = byte(min(round, 255))
	_, _ = rand.Read(b[9:nonceBody])
	return base64.RawURLEncoding.EncodeToString(k.sign(b, realm, src))
}

// sign appends the MAC of body to body.
func (k *nonceKey) sign(body []byte, realm string, src netip.Addr) []byte {
	m := hmac.New(sha256.New, k[:])
	m.Write(body)
	m.Write([]byte(realm))
	a := src.Unmap().As16()
	m.Write(a[:])
	return m.Sum(body)[:nonceBody+nonceMAC]
}

// check reports whether nonce is one k minted for realm and src (ok), its
// round, and whether it is older than nonceLifetime (stale).
func (k *nonceKey) check(nonce, realm string, src netip.Addr, now time.Time) (round int, ok, stale bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != nonceBody+nonceMAC {
		return 0, false, false
	}
	want := k.sign(append([]byte(nil), b[:nonceBody]...), realm, src)
	if !hmac.Equal(want, b) {
		return 0, false, false
	}
	age := now.Sub(time.Unix(int64(binary.BigEndian.Uint64(b)), 0))
	if age < -time.Minute { // minted in the future: our clock jumped back
		return 0, false, false
	}
	return int(b[8]), true, age > nonceLifetime
}

// challengeHeaders builds the WWW-Authenticate headers of a 401 (RFC 3261
// §22.2, §20.44): one per algorithm of challengeAlgs, all with one nonce,
// qop="auth" (RFC 3261 §22.4 wants qop in every challenge), and
// stale=true when the last nonce was only too old (RFC 7616 §3.3).
func challengeHeaders(realm, nonce string, stale bool) []sip.Header {
	hs := make([]sip.Header, 0, len(challengeAlgs))
	for _, alg := range challengeAlgs {
		v := "Digest realm=" + quote(realm) + ", nonce=" + quote(nonce) + ", algorithm=" + alg + `, qop="auth"`
		if stale {
			v += ", stale=true"
		}
		hs = append(hs, sip.NewHeader("WWW-Authenticate", v))
	}
	return hs
}

// digestChallenge is a challenge from a registrar that we can answer.
type digestChallenge struct {
	header string // Authorization or Proxy-Authorization
	alg    digestAlg
	realm  string
	nonce  string
	opaque string
	qop    string // "auth" or "" (RFC 2069)
	stale  bool
}

// pickChallenge picks the challenge of a 401 or 407 to answer: the topmost
// with an algorithm we support (RFC 8760 §2.3) and, when realm is set,
// that realm (RFC 3261 §22.2: credentials belong to one realm). qop=auth
// is used when offered; a challenge offering only auth-int is skipped.
func pickChallenge(res *sip.Response, realm string) (digestChallenge, error) {
	name, answer := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 { // RFC 3261 §22.3
		name, answer = "Proxy-Authenticate", "Proxy-Authorization"
	}
	for _, h := range res.GetHeaders(name) {
		p, err := parseDigest(h.Value())
		if err != nil {
			continue
		}
		alg, ok := lookupAlg(p["algorithm"])
		if !ok || p["nonce"] == "" || (realm != "" && p["realm"] != realm) {
			continue
		}
		c := digestChallenge{header: answer, alg: alg, realm: p["realm"], nonce: p["nonce"],
			opaque: p["opaque"], stale: strings.EqualFold(p["stale"], "true")}
		if qops, has := p["qop"]; has {
			if !hasToken(qops, "auth") {
				continue
			}
			c.qop = "auth"
		}
		return c, nil
	}
	return digestChallenge{}, fmt.Errorf("%w: no usable %s in %d", ErrRegisterAuth, name, res.StatusCode)
}

// hasToken reports whether the comma-separated list holds tok.
func hasToken(list, tok string) bool {
	for item := range strings.SplitSeq(list, ",") {
		if strings.EqualFold(strings.TrimSpace(item), tok) {
			return true
		}
	}
	return false
}

// authorize answers the challenge for one request (RFC 7616 §3.4): the
// header value of c.header. Each answer has its own cnonce and nc=1, as
// every request answers a fresh challenge.
func (c digestChallenge) authorize(username, password, method, uri string) sip.Header {
	in := digestInput{alg: c.alg, username: username, realm: c.realm, password: password,
		method: method, uri: uri, nonce: c.nonce, qop: c.qop}
	v := "Digest username=" + quote(username) + ", realm=" + quote(c.realm) + ", nonce=" + quote(c.nonce) +
		", uri=" + quote(uri)
	if c.qop != "" || c.alg.sess {
		var cn [8]byte
		_, _ = rand.Read(cn[:])
		in.cnonce, in.nc = hex.EncodeToString(cn[:]), "00000001"
		v += ", cnonce=" + quote(in.cnonce)
	}
	if c.qop != "" {
		v += ", qop=" + c.qop + ", nc=" + in.nc
	}
	v += ", response=" + quote(in.response()) + ", algorithm=" + c.alg.name
	if c.opaque != "" {
		v += ", opaque=" + quote(c.opaque)
	}
	return sip.NewHeader(c.header, v)
}
