package sip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The screen looks at every request's raw bytes before sipgo does (sipgo's
// TransportReadFilter): sipgo drops what it cannot parse without a word and
// lets through some requests RFC 3261 wants refused. The screen answers
// those itself, statelessly (RFC 3261 §8.2.7), with the precise code and a
// Warning naming the problem, and lets RFC 2543 requests through in a form
// sipgo's transaction layer accepts. The cases are those of RFC 4475.

// screening is what the screen decided for one request.
type screening struct {
	code   int    // 0: pass the message on
	reason string // reason phrase; empty: the RFC 3261 §21 phrase
	warn   string // Warning 399 text naming the problem (RFC 3261 §20.43)
	hdrs   []string
	close  bool // stream transports: framing is lost, close the connection
}

func refuse(code int, warn string, hdrs ...string) *screening {
	return &screening{code: code, warn: warn, hdrs: hdrs}
}

// errFraming is returned to sipgo for a stream whose framing is lost: it
// closes the connection (RFC 4475 §3.1.2.3, §3.3.9).
var errFraming = errors.New("sip: stream framing lost")

var (
	// RFC 3261 §25.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF
	requestLine = regexp.MustCompile(`^([!%'*+\-.0-9A-Z_` + "`" + `a-z~]+) (\S+) (SIP/\d+\.\d+)$`)
	uriScheme   = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+\-.]*):`)
	// compact forms, RFC 3261 §7.3.3
	compact = map[string]string{"i": "call-id", "f": "from", "t": "to", "v": "via", "l": "content-length",
		"c": "content-type", "e": "content-encoding", "m": "contact", "k": "supported", "s": "subject"}
)

// rawHeader is one header line of the raw message, unfolded.
type rawHeader struct{ name, value, line string }

// splitRaw splits a message into its start line, unfolded headers and
// body. ok is false when the header block has no end.
func splitRaw(data []byte) (start string, hdrs []rawHeader, body []byte, ok bool) {
	end, sep := bytes.Index(data, []byte("\r\n\r\n")), 4
	if end < 0 {
		return "", nil, nil, false
	}
	body = data[end+sep:]
	lines := strings.Split(string(data[:end]), "\r\n")
	start = lines[0]
	for _, l := range lines[1:] {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(hdrs) > 0 {
			h := &hdrs[len(hdrs)-1]
			h.value += " " + strings.TrimSpace(l)
			h.line += "\r\n" + l
			continue
		}
		name, value, found := strings.Cut(l, ":")
		if !found {
			hdrs = append(hdrs, rawHeader{line: l}) // no colon: name stays empty
			continue
		}
		n := strings.ToLower(strings.TrimSpace(name))
		if long, ok := compact[n]; ok {
			n = long
		}
		hdrs = append(hdrs, rawHeader{name: n, value: strings.TrimSpace(value), line: l})
	}
	return start, hdrs, body, true
}

// screenRaw checks what sipgo's parser does not, or fails on silently:
// the Request-Line (RFC 3261 §7.1, §25.1; 505, 416), single-valued headers
// given twice (§20, RFC 4475 §3.3.8), Content-Length (§18.3, §20.14),
// CSeq (§8.2.2.2 / §20.16), a missing mandatory header (§8.1.1). It
// returns nil for a request that may go on to sipgo's parser; complete is
// false on a stream when more bytes are needed.
func screenRaw(start string, hdrs []rawHeader, body []byte, stream bool) (v *screening, complete bool) {
	m := requestLine.FindStringSubmatch(start)
	if m == nil {
		return refuse(400, "malformed Request-Line: expected METHOD SP Request-URI SP SIP-Version"), true
	}
	method, ruri, version := m[1], m[2], m[3]
	if version != "SIP/2.0" {
		return refuse(505, "only SIP/2.0 is supported"), true // RFC 3261 §8.2.2 / §21.5.6
	}
	if strings.HasPrefix(ruri, "<") {
		return refuse(400, "Request-URI must not be enclosed in <>"), true
	}
	sm := uriScheme.FindStringSubmatch(ruri)
	if sm == nil {
		return refuse(400, "Request-URI has no scheme"), true
	}
	switch strings.ToLower(sm[1]) {
	case "sip", "sips", "tel":
	default: // RFC 3261 §8.2.2.1
		return &screening{code: 416, warn: "Request-URI scheme " + sm[1] + " is not supported"}, true
	}
	// The user part may hold '?' (RFC 3261 §25.1 user-unreserved); headers
	// come after the host.
	if strings.ContainsRune(ruri[strings.LastIndexByte(ruri, '@')+1:], '?') && !strings.EqualFold(sm[1], "tel") {
		return refuse(400, "Request-URI must not contain headers (RFC 3261 §19.1.5)"), true
	}
	count := map[string]int{}
	var cl, cseq string
	for _, h := range hdrs {
		if h.name == "" {
			return refuse(400, "header line without a colon"), true
		}
		count[h.name]++
		switch h.name {
		case "content-length":
			cl = h.value
		case "cseq":
			cseq = h.value
		}
	}
	for _, n := range []string{"call-id", "from", "to", "cseq", "max-forwards", "content-length"} {
		if count[n] > 1 {
			v := refuse(400, "more than one "+n+" header")
			v.close = n == "content-length" // RFC 4475 §3.3.9: framing is lost
			return v, true
		}
	}
	for _, n := range []string{"via", "from", "to", "call-id", "cseq"} {
		if count[n] == 0 {
			return refuse(400, "missing "+n+" header"), true // RFC 3261 §8.1.1
		}
	}
	switch {
	case cl == "" && stream && len(body) > 0:
		v := refuse(400, "content-length is required on stream transports (RFC 3261 §18.3)")
		v.close = true
		return v, true
	case cl != "":
		n, err := strconv.ParseUint(cl, 10, 31)
		if err != nil {
			v := refuse(400, "invalid content-length "+strconv.Quote(cl))
			v.close = true // RFC 4475 §3.1.2.3: never trust it for framing
			return v, true
		}
		if int(n) > len(body) {
			if stream {
				return nil, false // wait for the rest, as sipgo does
			}
			return refuse(400, "content-length larger than the message"), true // RFC 4475 §3.1.2.2
		}
	}
	f := strings.Fields(cseq)
	if len(f) != 2 {
		return refuse(400, "malformed cseq"), true
	}
	if _, err := strconv.ParseUint(f[0], 10, 32); err != nil { // RFC 3261 §8.1.1.5: below 2**31
		return refuse(400, "cseq number out of range"), true
	}
	// RFC 3261 §8.2.2: the CSeq method must match; an unknown method gets
	// 501 first (RFC 4475 §3.1.2.18), from the UA.
	if f[1] != method && method != "ACK" && method != "CANCEL" && knownMethod(method) {
		return refuse(400, "cseq method "+f[1]+" does not match "+method), true
	}
	return nil, true
}

// knownMethod reports whether the UA implements or knows m (ua.go).
func knownMethod(m string) bool {
	for _, a := range strings.Split(allowed, ", ") {
		if a == m {
			return true
		}
	}
	return knownMethods[sip.RequestMethod(m)]
}

// screenParsed checks a request sipgo could parse: extensions it requires
// (RFC 3261 §8.2.2.3: 420), an INVITE's Accept and Content-Encoding
// (§8.2.3: 406, 415).
func screenParsed(req *sip.Request) *screening {
	if req.IsAck() || req.IsCancel() {
		return nil
	}
	if tags := unsupportedTags(req); tags != "" {
		return refuse(420, "unsupported extension required", "Unsupported: "+tags)
	}
	if req.Method != sip.INVITE {
		return nil
	}
	if h := req.GetHeader("Content-Encoding"); h != nil && !strings.EqualFold(strings.TrimSpace(h.Value()), "identity") {
		return refuse(415, "content-encoding "+h.Value()+" is not supported", "Accept-Encoding: identity", "Accept: application/sdp")
	}
	if acc := req.GetHeaders("Accept"); len(acc) > 0 {
		ok := false
		for _, h := range acc {
			for _, t := range strings.Split(h.Value(), ",") {
				t = strings.ToLower(strings.TrimSpace(strings.Split(t, ";")[0]))
				ok = ok || t == "application/sdp" || t == "application/*" || t == "*/*"
			}
		}
		if !ok { // RFC 3261 §21.4.7; RFC 4475 §3.3.15
			return refuse(406, "accept must include application/sdp")
		}
	}
	return nil
}

// screenFilter is the second half of sipgo's TransportReadFilter (after
// the abuse guard's, see UA.readFilter): it screens requests and answers
// refused ones itself. On UDP it never returns an error (that would stop
// the listener); on a stream an error closes the connection.
func (u *UA) screenFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if !strings.EqualFold(p.Transport, "UDP") {
		return u.screenStream(p, data)
	}
	out, _, _ := u.screenOne(p, data, false)
	return out, nil
}

// screenStream screens each message of a stream read in turn (one read
// may hold several, RFC 4475 §3.1.1.8), so that a bad one does not take the
// good ones before it down with the connection.
func (u *UA) screenStream(p sip.TransportReadProps, data []byte) ([]byte, error) {
	var out []byte
	for len(data) > 0 {
		t := bytes.TrimLeft(data, "\r\n")
		if len(t) == 0 {
			return append(out, data...), nil // keep-alive CRLFs: sipgo's
		}
		data = t // CRLFs between messages (RFC 3261 §7.5)
		msg, n, closeConn := u.screenOne(p, data, true)
		out = append(out, msg...)
		if closeConn {
			if len(out) == 0 {
				return nil, errFraming
			}
			return out, nil // let the good ones through; the rest is lost
		}
		data = data[n:]
	}
	return out, nil
}

// screenOne screens the message at the start of data and returns what
// sipgo is to parse, how many bytes of data it stood for, and whether the
// stream's framing is lost. Refused requests are answered here.
func (u *UA) screenOne(p sip.TransportReadProps, data []byte, stream bool) ([]byte, int, bool) {
	if bytes.HasPrefix(data, []byte("SIP/")) {
		return data, len(data), false // responses: sipgo matches or drops them
	}
	start, hdrs, body, ok := splitRaw(data)
	if !ok {
		if stream {
			return data, len(data), false // sipgo buffers until the header block ends
		}
		// A datagram is the whole message (RFC 3261 §18.3): its header
		// block lacks the empty line (RFC 4475 §3.1.2.15).
		start, hdrs, _, _ = splitRaw(append(bytes.TrimRight(data, "\r\n"), "\r\n\r\n"...))
		body = nil
	}
	v, complete := screenRaw(start, hdrs, body, stream)
	if !ok && v == nil {
		v = refuse(400, "no empty line ends the header block")
	}
	if !complete {
		return data, len(data), false
	}
	// The message ends after Content-Length octets of body; without one,
	// a datagram ends with the datagram and a stream message has no body.
	end := len(data)
	if stream {
		end = len(data) - len(body)
	}
	framed := !stream
	if n, err := strconv.ParseUint(headerValue(hdrs, "content-length"), 10, 31); err == nil && int(n) <= len(body) {
		end, framed = len(data)-len(body)+int(n), true
	} else if headerValue(hdrs, "content-length") == "" {
		framed = true
	}
	if v == nil {
		norm := normalize(start, hdrs, data[len(data)-len(body):end])
		msg, err := sip.ParseMessage(norm)
		r, isReq := msg.(*sip.Request)
		switch {
		case err != nil:
			v = refuse(400, "malformed request: "+err.Error())
		case !isReq:
			v = refuse(400, "malformed request")
		default:
			v = screenParsed(r)
		}
		if v == nil {
			// A datagram's octets past Content-Length are noise (RFC
			// 3261 §18.3); a stream's are the next message.
			if out := compat2543(r, start, hdrs, data[len(data)-len(body):end]); out != nil {
				return out, end, false
			}
			return norm, end, false
		}
	}
	// RFC 3261 §8.2: authentication comes before method, header and
	// content checks. With trunks configured, a request sipgo can parse
	// goes on to trunk admission (trunk.go) rather than learn our 416, 420,
	// 406 or 415 unauthenticated; INVITEs get 420 and 415 after admission
	// (incoming.go).
	if v.code != 400 && v.code != 505 && len(u.trunks().trunks) > 0 && framed {
		norm := normalize(start, hdrs, data[len(data)-len(body):end])
		if msg, err := sip.ParseMessage(norm); err == nil {
			if _, isReq := msg.(*sip.Request); isReq {
				return norm, end, false
			}
		}
	}
	u.meters.screened.Add(1)
	closeConn := stream && (v.close || !framed)
	if _, ok := headerIndex(hdrs, "via"); !ok {
		u.screenLog(p, 0, v.warn) // RFC 3261 §18.2.2: nowhere to answer
		return nil, end, closeConn
	}
	if !u.trunks().mayAnswer(p.RemoteAddr) {
		return nil, end, closeConn // sip.hide_unknown: say nothing to strangers
	}
	u.screenLog(p, v.code, v.warn)
	u.answerRaw(p, hdrs, v)
	return nil, end, closeConn
}

// screenLog logs a screened request like other refusals: at Info up to
// refusalBurst a minute, then at Debug.
func (u *UA) screenLog(p sip.TransportReadProps, code int, why string) {
	src := addrPortOf(p.RemoteAddr)
	if ok, _ := u.trunks().refusals.allow(time.Now()); ok {
		u.log.Info("sip request screened", "code", code, "why", why, "transport", p.Transport, addrAttr("source", src))
		return
	}
	u.log.Debug("sip request screened", "code", code, "why", why, "transport", p.Transport, addrAttr("source", src))
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func headerIndex(hdrs []rawHeader, name string) (int, bool) {
	for i, h := range hdrs {
		if h.name == name {
			return i, true
		}
	}
	return 0, false
}

func headerValue(hdrs []rawHeader, name string) string {
	if i, ok := headerIndex(hdrs, name); ok {
		return hdrs[i].value
	}
	return ""
}

// answerRaw sends the stateless response of v, built from the request's
// raw Via, From, To, Call-ID and CSeq lines (RFC 3261 §8.2.6.2; the
// request may be unparseable), to where the request came from (RFC 3581
// symmetric response).
func (u *UA) answerRaw(p sip.TransportReadProps, hdrs []rawHeader, v *screening) {
	reason := v.reason
	if reason == "" {
		reason = reasonPhrase(v.code)
	}
	var b strings.Builder
	b.WriteString("SIP/2.0 " + strconv.Itoa(v.code) + " " + reason + "\r\n")
	for _, n := range []string{"via", "from", "to", "call-id", "cseq"} {
		for _, h := range hdrs {
			if h.name != n {
				continue
			}
			line := h.line
			if n == "to" && !strings.Contains(strings.ToLower(h.value), "tag") {
				line += ";tag=" + toTag(hdrs)
			}
			b.WriteString(line + "\r\n")
			if n != "via" {
				break
			}
		}
	}
	if v.code == 405 || v.code == 501 {
		b.WriteString("Allow: " + allowed + "\r\n")
	}
	for _, h := range v.hdrs {
		b.WriteString(h + "\r\n")
	}
	if v.warn != "" {
		b.WriteString("Warning: 399 " + u.opts.name + " " + strconv.Quote(v.warn) + "\r\n")
	}
	b.WriteString("Server: " + u.opts.name + "\r\nContent-Length: 0\r\n\r\n")
	out := []byte(b.String())
	var err error
	if strings.EqualFold(p.Transport, "UDP") {
		_, err = u.udp.WriteTo(out, p.RemoteAddr)
	} else {
		var c sip.Connection
		if c, err = u.srv.TransportLayer().GetConnection(p.Transport, p.RemoteAddr.String()); err == nil {
			if w, ok := c.(io.Writer); ok {
				_, err = w.Write(out)
			} else {
				err = errors.New("connection is not writable")
			}
		}
	}
	if err != nil {
		u.log.Debug("sip stateless response failed", "code", v.code, "err", redactText(err.Error()))
	}
}

// toTag is a To tag for a stateless response: the same for retransmissions
// of one request (RFC 3261 §8.2.6.2, §19.3).
func toTag(hdrs []rawHeader) string {
	s := sha256.Sum256([]byte(headerValue(hdrs, "call-id") + "|" + headerValue(hdrs, "cseq") + "|" + headerValue(hdrs, "from")))
	return hex.EncodeToString(s[:6])
}

// structured are the headers whose parameters sipgo parses and which RFC
// 3261 lets carry LWS around ";", "=", "/" and "," (SWS, §25.1), which
// sipgo does not take.
var structured = map[string]bool{"via": true, "from": true, "to": true, "contact": true,
	"route": true, "record-route": true}

// normalize rewrites the header block into the form sipgo parses, with the
// same meaning (RFC 3261 §7.3.1): folded lines unfolded, the header name
// trimmed, and LWS around ";", "=", "," (and "/" in Via) removed outside
// quoted strings and <> in structured headers (RFC 4475 §3.1.1.1). The
// body is kept byte for byte.
func normalize(start string, hdrs []rawHeader, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(start + "\r\n")
	for _, h := range hdrs {
		name, _, _ := strings.Cut(h.line, ":")
		v := h.value
		if structured[h.name] {
			v = tightenSWS(v, h.name == "via")
		}
		b.WriteString(strings.TrimSpace(name) + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// tightenSWS removes white space next to separators outside quoted
// strings and <>.
func tightenSWS(v string, slash bool) string {
	sep := func(c byte) bool { return c == ';' || c == '=' || c == ',' || (slash && c == '/') }
	var out []byte
	inQ, inA := false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inQ:
			out = append(out, c)
			if c == '\\' && i+1 < len(v) {
				i++
				out = append(out, v[i])
			} else if c == '"' {
				inQ = false
			}
			continue
		case inA:
			inA = c != '>'
			out = append(out, c)
			continue
		case c == '"':
			inQ = true
		case c == '<':
			inA = true
		case c == ' ' || c == '\t':
			j := i
			for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
				j++
			}
			if j == len(v) || sep(v[j]) || (len(out) > 0 && sep(out[len(out)-1])) {
				i = j - 1
				continue
			}
			out = append(out, ' ')
			i = j - 1
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

var viaBranch = regexp.MustCompile(`(?i);branch=[^;,]*`)

// compat2543 returns the normalized message rewritten for sipgo when its
// top Via has no RFC 3261 branch (RFC 2543 peers, RFC 4475 §3.4.1,
// §3.1.1.1), nil otherwise. sipgo then matches on the From tag, which RFC
// 2543 need not send, and its dialogs need one. We give the Via a branch
// derived from what RFC 3261 §17.2.3 matches RFC 2543 requests on
// (Request-URI, From, Call-ID, CSeq number, top Via), so retransmissions,
// the ACK and a CANCEL find the same transaction; a From without tag gets
// one derived the same way, and an INVITE without Contact the From URI as
// remote target (RFC 2543 had no mandatory Contact). The answer carries
// the branch and From tag; RFC 2543 peers match responses on Call-ID and
// CSeq and ignore the unknown parameters.
func compat2543(req *sip.Request, start string, hdrs []rawHeader, body []byte) []byte {
	via := req.Via()
	if via == nil {
		return nil
	}
	if b, ok := via.Params.Get("branch"); ok && strings.HasPrefix(b, sip.RFC3261BranchMagicCookie) && b != sip.RFC3261BranchMagicCookie {
		return nil
	}
	if b, _ := via.Params.Get("branch"); b == sip.RFC3261BranchMagicCookie {
		return nil // RFC 4475 §3.2.1: sipgo falls back to RFC 2543 matching itself
	}
	seq := ""
	if c := req.CSeq(); c != nil {
		seq = strconv.FormatUint(uint64(c.SeqNo), 10)
	}
	sum := sha256.Sum256([]byte(req.Recipient.String() + "|" + headerValue(hdrs, "from") + "|" +
		headerValue(hdrs, "call-id") + "|" + seq + "|" + headerValue(hdrs, "via")))
	id := hex.EncodeToString(sum[:8])
	out := make([]rawHeader, 0, len(hdrs)+1)
	viaDone, fromTag := false, false
	if f := req.From(); f != nil {
		fromTag = f.Params.Has("tag")
	}
	for _, h := range hdrs {
		switch {
		case h.name == "via" && !viaDone:
			viaDone = true
			first, rest, more := strings.Cut(h.value, ",")
			first = viaBranch.ReplaceAllString(first, "") + ";branch=" + sip.RFC3261BranchMagicCookie + "-2543-" + id
			if more {
				first += "," + rest
			}
			h.value = first
		case h.name == "from" && !fromTag:
			h.value += ";tag=2543-" + id
		}
		out = append(out, h)
	}
	if req.Method == sip.INVITE && req.Contact() == nil && req.From() != nil {
		out = append(out, rawHeader{name: "contact", value: "<" + req.From().Address.String() + ">", line: "Contact:"})
	}
	return normalize(start, out, body)
}

// mayAnswer reports whether a request from a may be answered before trunk
// admission: always, unless sip.hide_unknown hides the UA from sources no
// trunk accepts.
func (tr *trunking) mayAnswer(a net.Addr) bool {
	if !tr.hide || len(tr.trunks) == 0 {
		return true
	}
	src := addrPortOf(a).Addr()
	for _, t := range tr.trunks {
		if (src.IsValid() && t.contains(src)) || (t.challenges() && len(t.CIDRs) == 0) {
			return true
		}
	}
	return false
}
