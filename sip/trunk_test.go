package sip

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"
)

// testRequest is a request outside any dialog from src (ip:port) with the
// given Authorization values.
func testRequest(method sip.RequestMethod, src string, auth ...string) *sip.Request {
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: "1000", Host: "gw.example"})
	req.SetSource(src)
	for _, a := range auth {
		req.AppendHeader(sip.NewHeader("Authorization", a))
	}
	return req
}

// answer answers the challenge of d (a 401's headers) in realm as a UAC
// would, for a request like req.
func answer(t *testing.T, d decision, realm, user, password string, req *sip.Request) string {
	t.Helper()
	require.Equal(t, challenged, d.verdict, "want a challenge, got %+v", d)
	res := sip.NewResponse(401, "Unauthorized")
	for _, h := range d.hdrs {
		res.AppendHeader(h)
	}
	c, err := pickChallenge(res, realm)
	require.NoError(t, err)
	return c.authorize(user, password, req.Method.String(), req.Recipient.String()).Value()
}

func mustTrunking(t *testing.T, hide bool, ts ...Trunk) *trunking {
	t.Helper()
	tr, err := newTrunking(trunkOptions{trunks: ts, hide: hide}, "gw", nil)
	require.NoError(t, err)
	return tr
}

var (
	carrier = Trunk{Name: "carrier", CIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}
	pbx     = Trunk{Name: "pbx", Username: "pbx1", Password: "s3cret"}
	office  = Trunk{Name: "office", CIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Username: "off", Password: "pw", Realm: "office"}
)

// TestDecideByAddress: CIDR trunks accept their networks at once; anyone
// else is refused with 403, or ignored with hide_unknown, and CANCEL is
// never challenged.
func TestDecideByAddress(t *testing.T) {
	now := time.Now()
	tr := mustTrunking(t, false, carrier, office)
	d := tr.decide(testRequest(sip.INVITE, "203.0.113.9:5060"), netip.MustParseAddr("203.0.113.9"), now)
	require.Equal(t, decision{verdict: admitted, trunk: "carrier"}, d)

	d = tr.decide(testRequest(sip.OPTIONS, "192.0.2.1:5060"), netip.MustParseAddr("192.0.2.1"), now)
	require.Equal(t, refused, d.verdict)
	require.Equal(t, 403, d.code)

	d = tr.decide(testRequest(sip.CANCEL, "198.51.100.1:5060"), netip.MustParseAddr("198.51.100.1"), now)
	require.Equal(t, refused, d.verdict, "CANCEL cannot answer a challenge (RFC 3261 §22.1)")

	hidden := mustTrunking(t, true, carrier)
	d = hidden.decide(testRequest(sip.INVITE, "192.0.2.1:5060"), netip.MustParseAddr("192.0.2.1"), now)
	require.Equal(t, ignored, d.verdict)
	d = hidden.decide(testRequest(sip.INVITE, ""), netip.Addr{}, now)
	require.Equal(t, ignored, d.verdict, "no source address: unknown")
}

// TestDecideDigest walks the challenge, right and wrong answers, stale
// nonces and the cap on rounds.
func TestDecideDigest(t *testing.T) {
	now := time.Now()
	tr := mustTrunking(t, false, carrier, pbx, office)
	src := netip.MustParseAddr("192.0.2.7")
	inv := testRequest(sip.INVITE, "192.0.2.7:5060")
	ch := tr.decide(inv, src, now)
	require.Equal(t, challenged, ch.verdict, "a credentials-only trunk challenges every source")
	require.Len(t, ch.hdrs, 2, "MD5, then SHA-256, in the default realm")
	require.Contains(t, ch.hdrs[0].Value(), `realm="gw"`)
	require.Contains(t, ch.hdrs[0].Value(), "algorithm=MD5")
	require.Contains(t, ch.hdrs[1].Value(), "algorithm=SHA-256")

	good := testRequest(sip.INVITE, "192.0.2.7:5060", answer(t, ch, "gw", "pbx1", "s3cret", inv))
	require.Equal(t, decision{verdict: admitted, trunk: "pbx"}, tr.decide(good, src, now))
	require.Equal(t, decision{verdict: admitted, trunk: "pbx"}, tr.decide(good, src, now.Add(nonceLifetime-time.Second)))

	wrong := testRequest(sip.INVITE, "192.0.2.7:5060", answer(t, ch, "gw", "pbx1", "guess", inv))
	d := tr.decide(wrong, src, now)
	require.Equal(t, refused, d.verdict, "a wrong password is refused, not challenged again")
	require.Equal(t, 403, d.code)
	require.Equal(t, "Bad Credentials", d.reason)

	d = tr.decide(testRequest(sip.INVITE, "", answer(t, ch, "gw", "pbx2", "s3cret", inv)), src, now)
	require.Equal(t, 403, d.code, "unknown username in our realm")

	d = tr.decide(good, netip.MustParseAddr("192.0.2.8"), now)
	require.Equal(t, challenged, d.verdict, "a nonce given to another address is not ours: challenge")

	d = tr.decide(testRequest(sip.INVITE, "", `Digest realm="elsewhere", username="x", nonce="n", uri="sip:x", response="0"`), src, now)
	require.Equal(t, challenged, d.verdict, "credentials for a foreign realm are ignored (RFC 3261 §22.3)")

	d = tr.decide(testRequest(sip.INVITE, "", `Digest realm="gw", username="pbx1", nonce="n`), src, now)
	require.Equal(t, decision{verdict: refused, code: 400, reason: "Malformed Authorization Header",
		why: "sip: malformed digest header: unterminated quote"}, d)
	d = tr.decide(testRequest(sip.INVITE, "", `Digest realm="gw", username="pbx1", nonce="n", uri="sip:x"`), src, now)
	require.Equal(t, 400, d.code, "no response parameter")
	d = tr.decide(testRequest(sip.INVITE, "", `Digest realm="gw", username="pbx1", nonce="n", uri="sip:x", response="0", algorithm=SHA-1`), src, now)
	require.Equal(t, "Unsupported Digest Algorithm", d.reason)
	d = tr.decide(testRequest(sip.INVITE, "", `Digest realm="gw", username="pbx1", nonce="n", uri="sip:x", response="0", qop=auth-int, nc=1, cnonce=c`), src, now)
	require.Equal(t, "Unsupported Digest Qop", d.reason)

	// A right answer over an old nonce: stale=true, round by round.
	late := now.Add(nonceLifetime + time.Second)
	d = tr.decide(good, src, late)
	require.Equal(t, challenged, d.verdict)
	require.Contains(t, d.hdrs[0].Value(), "stale=true")
	for range maxChallengeRounds - 2 {
		again := testRequest(sip.INVITE, "", answer(t, d, "gw", "pbx1", "s3cret", inv))
		d = tr.decide(again, src, late.Add(nonceLifetime+time.Second))
	}
	last := testRequest(sip.INVITE, "", answer(t, d, "gw", "pbx1", "s3cret", inv))
	d = tr.decide(last, src, late.Add(2*nonceLifetime+time.Second))
	require.Equal(t, "Too Many Challenges", d.reason, "%+v", d)

	// office: CIDR and credentials, its own realm.
	osrc := netip.MustParseAddr("198.51.100.4")
	d = tr.decide(inv, osrc, now)
	require.Len(t, d.hdrs, 4, "office and default realm both apply")
	offReq := testRequest(sip.INVITE, "", answer(t, d, "office", "off", "pw", inv))
	require.Equal(t, decision{verdict: admitted, trunk: "office"}, tr.decide(offReq, osrc, now))
	require.Equal(t, challenged, tr.decide(offReq, src, now).verdict, "office's credentials from outside its CIDR")
}

// TestDecideSHA256: a UAC that picks the SHA-256 challenge gets in.
func TestDecideSHA256(t *testing.T) {
	now := time.Now()
	tr := mustTrunking(t, false, pbx)
	src := netip.MustParseAddr("192.0.2.7")
	inv := testRequest(sip.OPTIONS, "192.0.2.7:5060")
	ch := tr.decide(inv, src, now)
	res := sip.NewResponse(401, "Unauthorized")
	res.AppendHeader(ch.hdrs[1])
	c, err := pickChallenge(res, "")
	require.NoError(t, err)
	require.Equal(t, "SHA-256", c.alg.name)
	req := testRequest(sip.OPTIONS, "", c.authorize("pbx1", "s3cret", "OPTIONS", "sip:gw.example").Value())
	require.Equal(t, decision{verdict: admitted, trunk: "pbx"}, tr.decide(req, src, now))
}

// TestDecideRegistrar: a registration trunk takes its registrar's requests
// without a challenge; of two accounts at one registrar the Request-URI
// picks.
func TestDecideRegistrar(t *testing.T) {
	a := Trunk{Name: "a", Register: true, Registrar: "sip:192.0.2.50;transport=udp", Username: "4930111", Password: "x"}
	b := Trunk{Name: "b", Register: true, Registrar: "192.0.2.50:5080", Username: "4930222", Password: "y"}
	tr := mustTrunking(t, false, a, b, pbx)
	reg := netip.MustParseAddr("192.0.2.50")
	req := testRequest(sip.INVITE, "192.0.2.50:5060")
	require.Equal(t, decision{verdict: admitted, trunk: "a"}, tr.decide(req, reg, time.Now()))
	req.Recipient.User = "4930222"
	require.Equal(t, decision{verdict: admitted, trunk: "b"}, tr.decide(req, reg, time.Now()))
	require.Equal(t, challenged, tr.decide(req, netip.MustParseAddr("192.0.2.51"), time.Now()).verdict)
}

// TestTrunkConfigErrors: New refuses trunks that could accept nothing or
// not register, naming the trunk.
func TestTrunkConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		trunks []Trunk
		want   string
	}{
		{[]Trunk{{Name: "x"}}, `trunk "x": needs cidrs or credentials`},
		{[]Trunk{{CIDRs: carrier.CIDRs}}, `trunk "": no name`},
		{[]Trunk{carrier, carrier}, `trunk "carrier": name used twice`},
		{[]Trunk{{Name: "x", Username: "u"}}, `trunk "x": username and password go together`},
		{[]Trunk{{Name: "x", Register: true}}, `trunk "x": register needs username and password`},
		{[]Trunk{{Name: "x", Register: true, Username: "u", Password: "p"}}, `trunk "x": register needs a registrar`},
		{[]Trunk{{Name: "x", Register: true, Username: "u", Password: "p", Registrar: "sips:carrier.example"}},
			`trunk "x": registrar scheme "sips" is not supported (only sip)`},
		{[]Trunk{{Name: "x", Register: true, Username: "u", Password: "p", Registrar: "sip:u@carrier.example"}},
			`trunk "x": registrar has a user part (RFC 3261 §10.2: the Request-URI names the domain)`},
		{[]Trunk{{Name: "x", Register: true, Username: "u", Password: "p", Registrar: "carrier.example;transport=sctp"}},
			`trunk "x": registrar transport "sctp" is not udp or tcp`},
		{[]Trunk{{Name: "x", Username: "u", Password: "p", Realm: `a"b`}}, `trunk "x": realm holds a quote, backslash or line break`},
		{[]Trunk{{Name: "x", CIDRs: []netip.Prefix{{}}}}, `trunk "x": invalid cidr`},
	} {
		_, err := New("127.0.0.1:0", HandlerFunc(func(context.Context, *IncomingCall) {}), WithTrunks(tt.trunks...))
		require.ErrorIs(t, err, ErrConfig, tt.want)
		require.Equal(t, "sip: invalid configuration: "+tt.want, err.Error())
	}
}

// TestLogLimiter: burst records a window pass, the rest are held back and
// counted once the next window begins.
func TestLogLimiter(t *testing.T) {
	l := newLogLimiter(3, time.Minute)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		ok, held := l.allow(t0.Add(time.Duration(i) * time.Second))
		require.True(t, ok)
		require.Zero(t, held)
	}
	for range 5 {
		ok, _ := l.allow(t0.Add(30 * time.Second))
		require.False(t, ok)
	}
	ok, held := l.allow(t0.Add(time.Minute))
	require.True(t, ok)
	require.Equal(t, 5, held)
	_, held = l.allow(t0.Add(time.Minute + time.Second))
	require.Zero(t, held, "reported once")
}

// TestRefusalsLogged: a scanner's requests reach the log at Info only
// refusalBurst times, with the source anonymised.
func TestRefusalsLogged(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	u := startUA(t, HandlerFunc(func(context.Context, *IncomingCall) {}), WithLogger(log),
		WithTrunks(Trunk{Name: "carrier", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}),
		WithHideUnknown(true))
	for range 50 {
		_, ok := u.admit(testRequest(sip.OPTIONS, "192.0.2.77:5060"), nil)
		require.False(t, ok)
	}
	out := buf.String()
	require.Equal(t, refusalBurst, strings.Count(out, `level=INFO msg="sip request refused"`), out)
	require.Equal(t, 50-refusalBurst, strings.Count(out, `level=DEBUG msg="sip request refused"`))
	require.Contains(t, out, "source=192.0.2.0/24 answer=none")
	require.NotContains(t, out, "192.0.2.77")
}

// TestParseRegistrar: the registrar forms configs accepts parse here too,
// with the port and transport they name.
func TestParseRegistrar(t *testing.T) {
	for _, tt := range []struct {
		in, host  string
		port      int
		transport string
	}{
		{"sip:sip.carrier.example", "sip.carrier.example", 0, "UDP"},
		{"sip.carrier.example:5080", "sip.carrier.example", 5080, "UDP"},
		{"SIP:192.0.2.1;transport=TCP", "192.0.2.1", 0, "TCP"},
		{"sip:[2001:db8::1]:5062;transport=udp", "2001:db8::1", 5062, "UDP"},
		{"[2001:db8::1]", "2001:db8::1", 0, "UDP"},
	} {
		uri, transport, err := parseRegistrar(tt.in)
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.host, strings.Trim(uri.Host, "[]"), tt.in)
		require.Equal(t, tt.port, uri.Port, tt.in)
		require.Equal(t, tt.transport, transport, tt.in)
		require.Empty(t, uri.User)
	}
	for _, bad := range []string{"", "sips:carrier.example", "sip:gw@carrier.example", "carrier.example;transport=tls", "sip:"} {
		_, _, err := parseRegistrar(bad)
		require.Error(t, err, bad)
	}
}

// BenchmarkDecide is the admission check every request outside a dialog
// pays: a CIDR match over ten trunks, and a digest verification.
func BenchmarkDecide(b *testing.B) {
	var ts []Trunk
	for i := range 10 {
		ts = append(ts, Trunk{Name: fmt.Sprintf("t%d", i), CIDRs: []netip.Prefix{
			netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)}})
	}
	tr, err := newTrunking(trunkOptions{trunks: append(ts, pbx)}, "gw", nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.Run("cidr", func(b *testing.B) {
		req, src := testRequest(sip.INVITE, "10.9.1.1:5060"), netip.MustParseAddr("10.9.1.1")
		for b.Loop() {
			if tr.decide(req, src, now).verdict != admitted {
				b.Fatal("not admitted")
			}
		}
	})
	b.Run("digest", func(b *testing.B) {
		src := netip.MustParseAddr("192.0.2.7")
		inv := testRequest(sip.INVITE, "192.0.2.7:5060")
		d := tr.decide(inv, src, now)
		res := sip.NewResponse(401, "Unauthorized")
		res.AppendHeader(d.hdrs[0])
		c, _ := pickChallenge(res, "gw")
		req := testRequest(sip.INVITE, "", c.authorize("pbx1", "s3cret", "INVITE", "sip:gw.example").Value())
		for b.Loop() {
			if tr.decide(req, src, now).verdict != admitted {
				b.Fatal("not admitted")
			}
		}
	})
}
