package sip

import (
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"
)

// TestParseDigest: credentials and challenges as real peers write them, and
// the malformed values a request earns 400 for.
func TestParseDigest(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string // nil: malformed
	}{
		// sipp 3.6.1, byte for byte: no spaces after commas.
		{`Digest username="alice",realm="r1",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:15090",nonce="n1abc",response="16ed02d641383ecf3e6e056e562b79fe",algorithm=MD5`,
			map[string]string{"username": "alice", "realm": "r1", "cnonce": "6b8b4567", "nc": "00000001", "qop": "auth",
				"uri": "sip:127.0.0.1:15090", "nonce": "n1abc", "response": "16ed02d641383ecf3e6e056e562b79fe", "algorithm": "MD5"}},
		{`digest  Realm = "a b" ,  NONCE="x\"y\\z", stale=TRUE, qop="auth,auth-int"`,
			map[string]string{"realm": "a b", "nonce": `x"y\z`, "stale": "TRUE", "qop": "auth,auth-int"}},
		{`Digest realm=""`, map[string]string{"realm": ""}},
		{`Basic dXNlcjpwdw==`, nil},
		{`Digest`, nil},
		{`Digest realm="x", realm="y"`, nil},
		{`Digest realm="x" nonce="y"`, nil},
		{`Digest realm="x`, nil},
		{`Digest realm="x\`, nil},
		{`Digest =x`, nil},
		{`Digest realm=`, nil},
		{`Digest realm=a,`, map[string]string{"realm": "a"}},
		{`Digest re alm=x`, nil},
		{`Digest realm=x"y"`, nil},
		{"Digest realm=\"" + strings.Repeat("a", maxDigestLen) + "\"", nil},
	}
	for _, tt := range tests {
		got, err := parseDigest(tt.in)
		if tt.want == nil {
			require.ErrorIs(t, err, errMalformedDigest, "%q", tt.in)
			continue
		}
		require.NoError(t, err, "%q", tt.in)
		require.Equal(t, tt.want, got, "%q", tt.in)
	}
}

// TestDigestResponse checks the computation against published vectors:
// RFC 2617 §3.5, RFC 7616 §3.9.1 (MD5 and SHA-256), and what sipp sent in
// answer to a challenge (TestParseDigest's first line).
func TestDigestResponse(t *testing.T) {
	md5, _ := lookupAlg("")
	sha, _ := lookupAlg("sha-256")
	rfc7616 := digestInput{username: "Mufasa", realm: "http-auth@example.org", password: "Circle of Life",
		method: "GET", uri: "/dir/index.html", nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
		cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nc: "00000001", qop: "auth"}
	tests := []struct {
		in   digestInput
		want string
	}{
		{digestInput{alg: md5, username: "Mufasa", realm: "testrealm@host.com", password: "Circle Of Life",
			method: "GET", uri: "/dir/index.html", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
			cnonce: "0a4f113b", nc: "00000001", qop: "auth"}, "6629fae49393a05397450978507c4ef1"},
		{with(rfc7616, md5), "8ca523f5e9506fed4657c9700eebdbec"},
		{with(rfc7616, sha), "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
		{digestInput{alg: md5, username: "alice", realm: "r1", password: "secret", method: "INVITE",
			uri: "sip:127.0.0.1:15090", nonce: "n1abc", cnonce: "6b8b4567", nc: "00000001", qop: "auth"},
			"16ed02d641383ecf3e6e056e562b79fe"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.in.response())
	}
}

func with(d digestInput, alg digestAlg) digestInput {
	d.alg = alg
	return d
}

// TestNonce: a nonce is good for its realm and source only, goes stale
// after nonceLifetime, keeps its round, and any change to it breaks it.
func TestNonce(t *testing.T) {
	k := newNonceKey()
	now := time.Unix(1_800_000_000, 0)
	src := netip.MustParseAddr("192.0.2.7")
	n := k.mint(now, "gw", src, 2)

	round, ok, stale := k.check(n, "gw", src, now.Add(nonceLifetime))
	require.True(t, ok)
	require.False(t, stale)
	require.Equal(t, 2, round)

	_, ok, stale = k.check(n, "gw", src, now.Add(nonceLifetime+time.Second))
	require.True(t, ok)
	require.True(t, stale)

	_, ok, _ = k.check(n, "gw", netip.MustParseAddr("::ffff:192.0.2.7"), now)
	require.True(t, ok, "a v4-mapped source is the same source")
	for name, check := range map[string]func() bool{
		"other realm":   func() bool { _, ok, _ := k.check(n, "gw2", src, now); return ok },
		"other source":  func() bool { _, ok, _ := k.check(n, "gw", netip.MustParseAddr("192.0.2.8"), now); return ok },
		"other key":     func() bool { _, ok, _ := newNonceKey().check(n, "gw", src, now); return ok },
		"from future":   func() bool { _, ok, _ := k.check(n, "gw", src, now.Add(-2*time.Minute)); return ok },
		"truncated":     func() bool { _, ok, _ := k.check(n[:len(n)-1], "gw", src, now); return ok },
		"not base64":    func() bool { _, ok, _ := k.check("n1abc!", "gw", src, now); return ok },
		"round changed": func() bool { _, ok, _ := k.check(flipByte(t, n, 8), "gw", src, now); return ok },
		"time changed":  func() bool { _, ok, _ := k.check(flipByte(t, n, 7), "gw", src, now); return ok },
	} {
		require.False(t, check(), name)
	}
	require.NotEqual(t, n, k.mint(now, "gw", src, 2), "nonces are unique")
}

// flipByte changes byte i of a nonce's decoded form.
func flipByte(t *testing.T, nonce string, i int) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	require.NoError(t, err)
	b[i] ^= 1
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestPickChallenge: the topmost supported challenge of the right realm is
// answered, and the answer verifies with the same computation.
func TestPickChallenge(t *testing.T) {
	res := sip.NewResponse(401, "Unauthorized")
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="other", nonce="o", algorithm=MD5`))
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="carrier", nonce="a", algorithm=SHA-512, qop="auth"`))
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="carrier", nonce="b", algorithm=MD5, qop="auth-int"`))
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="carrier", nonce="c", algorithm=SHA-256, qop="auth-int,auth", opaque="op"`))
	c, err := pickChallenge(res, "carrier")
	require.NoError(t, err)
	require.Equal(t, "c", c.nonce)
	require.Equal(t, "SHA-256", c.alg.name)
	require.Equal(t, "Authorization", c.header)

	h := c.authorize("gw1", "pw", "REGISTER", "sip:carrier.example")
	require.Equal(t, "Authorization", h.Name())
	p, err := parseDigest(h.Value())
	require.NoError(t, err)
	require.Equal(t, "op", p["opaque"])
	require.Equal(t, "auth", p["qop"])
	want := digestInput{alg: c.alg, username: "gw1", realm: "carrier", password: "pw", method: "REGISTER",
		uri: "sip:carrier.example", nonce: "c", cnonce: p["cnonce"], nc: p["nc"], qop: "auth"}.response()
	require.Equal(t, want, p["response"])

	c, err = pickChallenge(res, "")
	require.NoError(t, err)
	require.Equal(t, "o", c.nonce, "no realm configured: the topmost usable")
	require.Empty(t, c.qop, "no qop offered: RFC 2069 answer")
	p, err = parseDigest(c.authorize("u", "p", "REGISTER", "sip:x").Value())
	require.NoError(t, err)
	require.NotContains(t, p, "cnonce")

	_, err = pickChallenge(res, "nobody")
	require.ErrorIs(t, err, ErrRegisterAuth)

	proxy := sip.NewResponse(407, "Proxy Authentication Required")
	proxy.AppendHeader(sip.NewHeader("Proxy-Authenticate", `Digest realm="p", nonce="n"`))
	c, err = pickChallenge(proxy, "")
	require.NoError(t, err)
	require.Equal(t, "Proxy-Authorization", c.header)
}

// FuzzParseDigest: no input panics, and whatever parses has names that are
// tokens and survives being written back.
func FuzzParseDigest(f *testing.F) {
	f.Add(`Digest username="alice",realm="r1",nonce="n",uri="sip:x",response="00",qop=auth,nc=00000001,cnonce="c"`)
	f.Add(`Digest realm="a\"b", stale=true`)
	f.Add(`Digest a=b,,c=d`)
	f.Add("Digest \t realm=\"\xff\"")
	f.Fuzz(func(t *testing.T, v string) {
		p, err := parseDigest(v)
		if err != nil {
			return
		}
		var b strings.Builder
		b.WriteString("Digest ")
		for name, val := range p {
			if !isToken(name) {
				t.Fatalf("name %q", name)
			}
			if b.Len() > 7 {
				b.WriteString(", ")
			}
			b.WriteString(name + "=" + quote(val))
		}
		if b.Len() > maxDigestLen {
			return // quoting made it longer than we read
		}
		again, err := parseDigest(b.String())
		if err != nil || len(again) != len(p) {
			t.Fatalf("%q parsed to %v, written back as %q: %v", v, p, b.String(), err)
		}
		for name, val := range p {
			if again[name] != val {
				t.Fatalf("%s: %q became %q", name, val, again[name])
			}
		}
	})
}
