package sip

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tortureDir finds the RFC 4475 corpus: shared/testdata/rfc4475 next to
// the module root (the worktree), as /work/shared/TESTING.md describes.
func tortureDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(d), "shared", "testdata", "rfc4475")
			if _, err := os.Stat(filepath.Join(p, "INDEX.md")); err != nil {
				t.Fatalf("rfc 4475 torture corpus missing: %s/INDEX.md not found (see /work/shared/TESTING.md)", p)
			}
			return p
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s: cannot locate the rfc 4475 corpus", dir)
		}
	}
}

// tortureWant is the handling a torture message must get: the final
// response code over UDP and over TCP, 0 for none (dropped).
type tortureWant struct{ udp, tcp int }

// tortureExpect encodes INDEX.md's "RFC-expected behaviour" column for
// mediagate, a UAS that is neither proxy nor registrar and whose test
// handler rejects every call with 486 Busy Here. "(row)" names the INDEX.md
// line (by message name) each expectation comes from; where the RFC leaves
// a choice, the comment says which one we make.
var tortureExpect = map[string]tortureWant{
	"wsinv":      {481, 481}, // row wsinv: accepted; its To has a tag, so it is a mid-dialog INVITE of no dialog we know: 481 (RFC 3261 §12.2.2)
	"intmeth":    {501, 501}, // row intmeth: unknown method -> 501
	"esc01":      {486, 486}, // row esc01: accepted
	"escnull":    {405, 405}, // row escnull: parsed; REGISTER is not allowed here
	"esc02":      {501, 501}, // row esc02: RE%47IST%45R is unknown -> 501
	"lwsdisp":    {200, 200}, // row lwsdisp: accept
	"longreq":    {486, 486}, // row longreq: accepted; the UDP answer exceeds the MTU and must still arrive
	"dblreq":     {405, 405}, // row dblreq: the REGISTER is processed, trailing bytes ignored
	"semiuri":    {200, 200}, // row semiuri
	"transports": {200, 200}, // row transports
	"mpart01":    {405, 405}, // row mpart01: parsed; MESSAGE is not allowed here
	"unreason":   {0, 0},     // row unreason: a response with no transaction: discarded
	"noreason":   {0, 0},     // row noreason: likewise
	"badinv01":   {400, 400}, // row badinv01: 400
	"clerr":      {400, 0},   // row clerr: UDP 400; TCP waits for the rest (none comes)
	"ncl":        {400, 400}, // row ncl: error response (TCP: then the connection closes)
	"scalar02":   {400, 400}, // row scalar02: CSeq > 2^32-1 -> 400
	"scalarlg":   {0, 0},     // row scalarlg: response: discard
	"quotbal":    {400, 400}, // row quotbal: 400
	"ltgtruri":   {400, 400}, // row ltgtruri: 400
	"lwsruri":    {400, 400}, // row lwsruri: 400
	"lwsstart":   {400, 400}, // row lwsstart: reject as malformed
	"trws":       {400, 400}, // row trws: reject as malformed
	"escruri":    {400, 400}, // row escruri: 400 (headers are not allowed in a Request-URI)
	"baddate":    {486, 486}, // row baddate: Date does not matter to us: ignored, call handled
	"regbadct":   {405, 405}, // row regbadct: REGISTER is not allowed here whatever its Contact
	"badaspec":   {400, 400}, // row badaspec: 400
	"baddn":      {400, 0},   // row baddn: 400; it lacks the final empty line, so on TCP the message never ends (no answer)
	"badvers":    {505, 505}, // row badvers: 505
	"mismatch01": {400, 400}, // row mismatch01: 400
	"mismatch02": {501, 501}, // row mismatch02: 501
	"bigcode":    {0, 0},     // row bigcode: drop
	"badbranch":  {200, 200}, // row badbranch: RFC 2543 matching fallback
	"insuf":      {400, 400}, // row insuf: 400
	"unkscm":     {416, 416}, // row unkscm: 416
	"novelsc":    {416, 416}, // row novelsc: 416 (soap.beep means nothing to a media gateway)
	"unksm2":     {405, 405}, // row unksm2: not a registrar: REGISTER is not allowed
	"bext01":     {420, 420}, // row bext01: 420 with Unsupported
	"invut":      {415, 415}, // row invut: 415 with Accept
	"regaut01":   {405, 405}, // row regaut01: non-registrar endpoint -> 405
	"multi01":    {400, 400}, // row multi01: 400
	"mcl01":      {400, 400}, // row mcl01: error response (TCP: then the connection closes)
	"bcast":      {0, 0},     // row bcast: endpoints discard it
	"zeromf":     {200, 200}, // row zeromf: endpoint processes normally
	"cparam01":   {405, 405}, // row cparam01: not a registrar
	"cparam02":   {405, 405}, // row cparam02: not a registrar
	"regescrt":   {405, 405}, // row regescrt: not a registrar
	"sdp01":      {406, 406}, // row sdp01: 406 with Warning 399
	"inv2543":    {486, 400}, // row inv2543: accepted over UDP; over TCP it has no Content-Length (RFC 3261 §18.3) -> 400
	"test":       {0, 0},     // row test: no SIP-Version, no Via: drop
}

// tortureSeq makes Call-IDs and branches unique across sends.
var tortureSeq int

// rewriteTorture changes only what makes msg reach us as a fresh
// transaction whose answer comes back to the sender: the top Via's branch
// gets a unique suffix (a bare "z9hG4bK" or a missing branch stays as it
// is: that is the torture), the top Via gets rport (RFC 3581) so the answer
// goes to our socket rather than to the Via's 5060, and Call-ID values get a
// unique prefix. Responses are sent as they are.
func rewriteTorture(msg []byte) []byte {
	if bytes.HasPrefix(msg, []byte("SIP/")) {
		return msg
	}
	tortureSeq++
	tag := "t" + strconv.Itoa(tortureSeq)
	out := msg
	if start, end, ok := topVia(out); ok {
		via := string(out[start:end])
		if i := strings.Index(via, "branch="); i >= 0 {
			j := i + len("branch=")
			for j < len(via) && !strings.ContainsRune(";, \t\r\n", rune(via[j])) {
				j++
			}
			if via[i+len("branch="):j] != "z9hG4bK" {
				via = via[:j] + "-" + tag + via[j:]
			}
		}
		if !strings.Contains(via, "rport") {
			k := strings.IndexAny(via, ";,")
			if k < 0 {
				k = len(strings.TrimRight(via, "\r\n \t"))
			}
			via = via[:k] + ";rport" + via[k:]
		}
		out = append(append(append([]byte{}, out[:start]...), via...), out[end:]...)
	}
	callID := regexp.MustCompile(`(?im)^(call-id|i)([ \t]*:[ \t]*)`)
	head, body, _ := bytes.Cut(out, []byte("\r\n\r\n"))
	head = callID.ReplaceAll(head, []byte("${1}${2}"+tag+"-"))
	if bytes.Contains(out, []byte("\r\n\r\n")) {
		return append(append(head, "\r\n\r\n"...), body...)
	}
	return head
}

// topVia returns the byte range of the first Via header's value, folded
// lines included.
func topVia(msg []byte) (int, int, bool) {
	loc := regexp.MustCompile(`(?im)^(via|v)[ \t]*:`).FindIndex(msg)
	if loc == nil {
		return 0, 0, false
	}
	start, end := loc[1], loc[1]
	for end < len(msg) {
		nl := bytes.Index(msg[end:], []byte("\n"))
		if nl < 0 {
			end = len(msg)
			break
		}
		end += nl + 1
		if end >= len(msg) || (msg[end] != ' ' && msg[end] != '\t') {
			break
		}
	}
	return start, end, true
}

// readFinal reads responses from r until a final one (or an error) and
// returns its code, skipping 1xx; it returns the raw response too.
func readFinal(r *bufio.Reader) (int, string, error) {
	for {
		var head strings.Builder
		for {
			line, err := r.ReadString('\n')
			head.WriteString(line)
			if err != nil {
				return 0, head.String(), err
			}
			if line == "\r\n" || line == "\n" {
				break
			}
		}
		h := head.String()
		n := 0
		if m := regexp.MustCompile(`(?im)^(content-length|l)[ \t]*:[ \t]*(\d+)`).FindStringSubmatch(h); m != nil {
			n, _ = strconv.Atoi(m[2])
		}
		body := make([]byte, n)
		if _, err := ioReadFull(r, body); err != nil {
			return 0, h, err
		}
		f := strings.Fields(h)
		if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
			return 0, h, fmt.Errorf("not a response: %q", h)
		}
		code, err := strconv.Atoi(f[1])
		if err != nil {
			return 0, h, err
		}
		if code >= 200 {
			return code, h + string(body), nil
		}
	}
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// sendTorture sends msg to the UA over network from a plain socket and
// returns the final response code (0 when none came within wait).
func sendTorture(t *testing.T, u *UA, network string, msg []byte, wait time.Duration) (int, string) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(u.Port())
	var c net.Conn
	var err error
	if network == "udp" {
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	} else {
		c, err = net.DialTimeout("tcp", addr, time.Second)
	}
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(msg)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	if network == "udp" {
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return 0, ""
			}
			code, raw, err := readFinal(bufio.NewReader(bytes.NewReader(buf[:n])))
			if err == nil {
				ack(t, c, msg, code, raw)
				return code, raw
			}
		}
	}
	r := bufio.NewReader(c)
	code, raw, err := readFinal(r)
	for err == nil && !sameCSeq(msg, raw) {
		// Answer to a second message in the stream (dblreq's trailing
		// INVITE): not the one we wait for.
		code, raw, err = readFinal(r)
	}
	if err == nil {
		ack(t, c, msg, code, raw)
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "closed") {
			return 0, raw
		}
		t.Fatalf("reading answer over %s: %v (%q)", network, err, raw)
	}
	return code, raw
}

// sameCSeq reports whether res answers req: same CSeq method, when req
// has a parseable one.
func sameCSeq(req []byte, res string) bool {
	re := regexp.MustCompile(`(?im)^cseq[ \t]*:[ \t]*\d+[ \t\r\n]+(\S+)`)
	a, b := re.FindSubmatch(req), re.FindStringSubmatch(res)
	return a == nil || b == nil || string(a[1]) == b[1]
}

// ack acknowledges a non-2xx final response to an INVITE (RFC 3261
// §17.1.1.3) so that the UA's transaction ends at once.
func ack(t *testing.T, c net.Conn, req []byte, code int, res string) {
	t.Helper()
	if !bytes.HasPrefix(req, []byte("INVITE ")) || code < 300 {
		return
	}
	line, _, _ := bytes.Cut(req, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return
	}
	var b strings.Builder
	b.WriteString("ACK " + f[1] + " SIP/2.0\r\n")
	for _, l := range strings.Split(res, "\r\n") {
		name, v, _ := strings.Cut(l, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via":
			b.WriteString(l + "\r\n")
			continue
		case "from", "to", "call-id":
			b.WriteString(l + "\r\n")
		case "cseq":
			b.WriteString("CSeq: " + strings.Fields(v)[0] + " ACK\r\n")
		}
	}
	b.WriteString("Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
	_, _ = c.Write([]byte(b.String()))
}

// optionsPing is a well-formed OPTIONS: the UA must answer it 200 after
// each torture message, or the message crashed or wedged something.
func optionsPing() []byte {
	tortureSeq++
	s := strconv.Itoa(tortureSeq)
	return []byte("OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKping" + s + ";rport\r\n" +
		"Max-Forwards: 70\r\nTo: <sip:ping@127.0.0.1>\r\nFrom: <sip:t@127.0.0.1>;tag=p" + s + "\r\n" +
		"Call-ID: ping" + s + "@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
}

// TestRFC4475Torture replays every RFC 4475 torture message over UDP and
// TCP against a UA and checks the handling INDEX.md documents.
func TestRFC4475Torture(t *testing.T) {
	dir := tortureDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.sip"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	rec := newRecorder(t)
	rec.answer = func(ctx context.Context, in *IncomingCall) (*Call, error) {
		return nil, in.Reject(&StatusError{Code: 486})
	}
	u := startUA(t, rec)
	var table []string
	names := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".sip")
		names[name] = true
		if only := os.Getenv("RFC4475_ONLY"); only != "" && only != name {
			continue // RFC4475_ONLY=name replays one message
		}
		want, ok := tortureExpect[name]
		require.True(t, ok, "%s: no expectation in tortureExpect (INDEX.md has a row for it?)", name)
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		got := map[string]int{}
		for _, network := range []string{"udp", "tcp"} {
			exp := want.udp
			if network == "tcp" {
				exp = want.tcp
			}
			wait := 3 * time.Second
			if exp == 0 {
				wait = 700 * time.Millisecond
			}
			code, resp := sendTorture(t, u, network, rewriteTorture(raw), wait)
			got[network] = code
			if code == 400 {
				require.Regexp(t, `(?m)^(SIP/2.0 400 (?:[^B\r].*|B[^a].*)|Warning: 399 \S+ ".+")\r?$`, resp, "%s: a 400 must say what is wrong", name)
			}
			if code == 420 {
				require.Contains(t, resp, "Unsupported:", name)
			}
			if code == 415 {
				require.Contains(t, resp, "Accept:", name)
			}
			if code != exp {
				t.Errorf("%s over %s: got %d, want %d; response:\n%s", name, network, code, exp, resp)
			}
			ping, _ := sendTorture(t, u, network, optionsPing(), 3*time.Second)
			require.Equal(t, 200, ping, "%s over %s: OPTIONS afterwards not answered 200", name, network)
		}
		table = append(table, fmt.Sprintf("%-11s want %3d/%3d got udp %3d tcp %3d", name, want.udp, want.tcp, got["udp"], got["tcp"]))
	}
	for name := range tortureExpect {
		if os.Getenv("RFC4475_ONLY") != "" {
			break
		}
		require.True(t, names[name], "%s expected but not in %s", name, dir)
	}
	sort.Strings(table)
	t.Logf("RFC 4475 torture table (message, expected udp/tcp, got):\n%s", strings.Join(table, "\n"))
}

// TestLargeUDPResponse: an OPTIONS whose answer exceeds the 1300 bytes of
// RFC 3261 §18.1.1 (its long From, To and Call-ID are echoed) is still
// answered over UDP, not lost.
func TestLargeUDPResponse(t *testing.T) {
	u := startUA(t, newRecorder(t))
	long := strings.Repeat("x", 1500)
	msg := []byte("OPTIONS sip:big@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbig;rport\r\n" +
		"Max-Forwards: 70\r\nTo: \"" + long + "\" <sip:big@127.0.0.1>\r\n" +
		"From: <sip:t@127.0.0.1>;tag=" + long + "\r\n" +
		"Call-ID: big@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
	code, res := sendTorture(t, u, "udp", msg, 3*time.Second)
	require.Equal(t, 200, code, "large response lost")
	require.Greater(t, len(res), 3000)
}
