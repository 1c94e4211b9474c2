package sip

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"
)

// TestTightenSWS: LWS around separators goes, quoted strings and <> stay.
func TestTightenSWS(t *testing.T) {
	for _, c := range []struct {
		in, want string
		via      bool
	}{
		{`"J Rosenberg \\\""  <sip:a@b ; x> ; tag = 98asjd8`, `"J Rosenberg \\\"" <sip:a@b ; x>;tag=98asjd8`, false},
		{`SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw`, `SIP/2.0/UDP 192.0.2.2;branch=390skdjuw`, true},
		{`A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe`, `A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe`, false},
		{`"a ; b = c" <sip:x@y> ,  <sip:z@w>`, `"a ; b = c" <sip:x@y>,<sip:z@w>`, false},
	} {
		require.Equal(t, c.want, tightenSWS(c.in, c.via), c.in)
	}
}

// TestScreenRaw: the raw checks give the codes RFC 3261 names.
func TestScreenRaw(t *testing.T) {
	const hdrs = "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\n" +
		"Call-ID: x\r\nCSeq: 1 OPTIONS\r\n"
	for _, c := range []struct {
		name, msg string
		code      int
	}{
		{"ok", "OPTIONS sip:u@h SIP/2.0\r\n" + hdrs + "Content-Length: 0\r\n\r\n", 0},
		{"version", "OPTIONS sip:u@h SIP/3.0\r\n" + hdrs + "\r\n", 505},
		{"scheme", "OPTIONS mailto:u@h SIP/2.0\r\n" + hdrs + "\r\n", 416},
		{"method token", "OPT IONS sip:u@h SIP/2.0\r\n" + hdrs + "\r\n", 400},
		{"cseq mismatch", "INFO sip:u@h SIP/2.0\r\n" + hdrs + "\r\n", 400},
		{"unknown method", "FOO sip:u@h SIP/2.0\r\n" + hdrs + "\r\n", 0},
		{"cseq overflow", "OPTIONS sip:u@h SIP/2.0\r\n" + hdrs + "CSeq: 99999999999 OPTIONS\r\n\r\n", 400},
		{"no colon", "OPTIONS sip:u@h SIP/2.0\r\n" + hdrs + "Foo bar\r\n\r\n", 400},
		{"bad length", "OPTIONS sip:u@h SIP/2.0\r\n" + hdrs + "Content-Length: x\r\n\r\n", 400},
		{"user part ?", "OPTIONS sip:a?b@h SIP/2.0\r\n" + hdrs + "\r\n", 0},
		{"uri headers", "OPTIONS sip:a@h?Route=x SIP/2.0\r\n" + hdrs + "\r\n", 400},
	} {
		start, h, body, ok := splitRaw([]byte(c.msg))
		require.True(t, ok, c.name)
		v, complete := screenRaw(start, h, body, false)
		require.True(t, complete, c.name)
		code := 0
		if v != nil {
			code = v.code
			require.NotEmpty(t, v.warn, c.name)
		}
		require.Equal(t, c.code, code, c.name)
	}
}

// FuzzScreen: the screen never panics, whatever arrives, and what it
// passes on still parses.
func FuzzScreen(f *testing.F) {
	f.Add([]byte("OPTIONS sip:u@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n" +
		"To: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("INVITE sip:UserB@example.com SIP/2.0\r\nVia: SIP/2.0/UDP iftgw.example.com\r\n" +
		"From: <sip:+13035551111@ift.client.example.net;user=phone>\r\nTo: sip:b@c\r\nCall-ID: i\r\nCSeq: 56 INVITE\r\n\r\n"))
	f.Add([]byte("INVITE sip:u@h SIP/2.0\r\nfrom   : \"J \\\\\\\"\" <sip:j@e>\r\n  ;\r\n  tag = 9\r\nContent-Length : -1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, stream := range []bool{false, true} {
			start, hdrs, body, ok := splitRaw(data)
			if !ok {
				continue
			}
			v, complete := screenRaw(start, hdrs, body, stream)
			if v != nil || !complete {
				continue
			}
			msg, err := sip.ParseMessage(normalize(start, hdrs, body))
			if req, isReq := msg.(*sip.Request); err == nil && isReq {
				_ = screenParsed(req)
				_ = compat2543(req, start, hdrs, body)
			}
		}
	})
}

// TestScreenTrunkOrder: with trunks, a well-formed request from an unknown
// source meets trunk admission (403) before our extension check (420), as
// RFC 3261 §8.2 orders them; with hide_unknown a malformed one gets no
// answer at all.
func TestScreenTrunkOrder(t *testing.T) {
	carrier := Trunk{Name: "carrier", CIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}
	bext := []byte("OPTIONS sip:user@example.com SIP/2.0\r\nTo: sip:j_user@example.com\r\n" +
		"From: sip:caller@example.net;tag=242etr\r\nMax-Forwards: 6\r\nCall-ID: order.1\r\n" +
		"Require: nothingSupportsThis\r\nCSeq: 8 OPTIONS\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKorder1;rport\r\nContent-Length: 0\r\n\r\n")
	u := startUA(t, newRecorder(t), WithTrunks(carrier))
	code, _ := sendTorture(t, u, "udp", bext, 3*time.Second)
	require.Equal(t, 403, code)

	h := startUA(t, newRecorder(t), WithTrunks(carrier), WithHideUnknown(true))
	bad := bytes.Replace(bext, []byte("SIP/2.0\r\n"), []byte("SIP/2.0 \r\n"), 1) // trws
	code, _ = sendTorture(t, h, "udp", bad, 700*time.Millisecond)
	require.Zero(t, code, "hide_unknown: a stranger's malformed request must get no answer")
}
