package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagate/mediagate/internal/promtest"
	"github.com/stretchr/testify/require"
)

// The scan and flood tests' SIP peer: raw UDP sockets bound to a
// loopback address of the test's choice (a sipgo client always sends from
// 127.0.0.1), writing requests as a scanner writes them and recording
// every response with its arrival time.

// sipProbe is one source address's socket, with the requests it sent and
// the responses it got.
type sipProbe struct {
	tb    testing.TB
	conn  *net.UDPConn
	local netip.AddrPort
	gw    netip.AddrPort
	ua    string // User-Agent

	mu      sync.Mutex
	seq     int
	sent    map[string]*probeRequest // by Call-ID
	order   []*probeRequest
	changed chan struct{} // closed and replaced when a request is answered
	done    chan struct{} // closed when the reader ends
}

// probeRequest is a request a probe sent, with its final response.
type probeRequest struct {
	method, number, callID, branch, tag string
	sent                                time.Time
	// answered is when the first final (non-1xx) response came, zero
	// while none did; final is that response's text.
	answered time.Time
	final    string
	// responses counts every response, provisional ones included.
	responses int
}

// newSIPProbe opens a UDP socket on src (a 127.0.0.0/8 address) that
// talks to the gateway at gw with User-Agent ua; it is closed in cleanup.
func newSIPProbe(tb testing.TB, src string, gw netip.AddrPort, ua string) *sipProbe {
	tb.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(src+":0")))
	require.NoError(tb, err)
	require.NoError(tb, c.SetReadBuffer(1<<20))
	p := &sipProbe{tb: tb, conn: c, local: c.LocalAddr().(*net.UDPAddr).AddrPort(), gw: gw, ua: ua,
		sent: map[string]*probeRequest{}, changed: make(chan struct{}), done: make(chan struct{})}
	go p.read()
	tb.Cleanup(func() {
		_ = c.Close()
		<-p.done
	})
	return p
}

// send writes one request: OPTIONS, REGISTER or INVITE (with an SDP offer
// of PCMU on the probe's own port) for number, and returns it.
func (p *sipProbe) send(method, number string) *probeRequest {
	p.mu.Lock()
	p.seq++
	r := &probeRequest{method: method, number: number,
		callID: fmt.Sprintf("probe-%s-%d-%d", p.local.Addr(), p.local.Port(), p.seq),
		branch: fmt.Sprintf("z9hG4bK-probe-%d-%d", p.local.Port(), p.seq),
		tag:    fmt.Sprintf("ft%d", p.seq)}
	p.sent[r.callID] = r
	p.order = append(p.order, r)
	r.sent = time.Now()
	p.mu.Unlock()
	// Errorf, not require: floods send from goroutines of their own.
	if _, err := p.conn.WriteToUDP([]byte(p.message(r)), net.UDPAddrFromAddrPort(p.gw)); err != nil {
		p.tb.Errorf("probe %s: %v", p.local, err)
	}
	return r
}

// message is the text of request r.
func (p *sipProbe) message(r *probeRequest) string {
	ruri := fmt.Sprintf("sip:%s@%s", r.number, p.gw)
	if r.method == "REGISTER" {
		ruri = "sip:" + p.gw.String()
	}
	var body, extra string
	switch r.method {
	case "INVITE":
		body = fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
			"m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"+
			"a=fmtp:101 0-15\r\na=sendrecv\r\n", p.seq, p.local.Addr(), p.local.Addr(), p.local.Port())
		extra = "Content-Type: application/sdp\r\n"
	case "REGISTER":
		extra = "Expires: 3600\r\n"
	}
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 %s\r\n"+
		"Contact: <sip:%s@%s>\r\nUser-Agent: %s\r\n%sContent-Length: %d\r\n\r\n%s",
		r.method, ruri, p.local, r.branch, r.number, p.gw.Addr(), r.tag, r.number, p.gw.Addr(), r.callID,
		r.method, r.number, p.local, p.ua, extra, len(body), body)
}

var callIDLine = regexp.MustCompile(`(?mi)^(?:Call-ID|i)\s*:\s*(\S+)\r?$`)

// read records responses until the socket closes; other datagrams (RTP
// to the offered port) are skipped.
func (p *sipProbe) read() {
	defer close(p.done)
	buf := make([]byte, 1<<16)
	for {
		n, err := p.conn.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		now := time.Now()
		msg := string(buf[:n])
		if err != nil || !strings.HasPrefix(msg, "SIP/2.0 ") {
			continue
		}
		m := callIDLine.FindStringSubmatch(msg)
		p.mu.Lock()
		if r := p.sent[at(m, 1)]; r != nil {
			r.responses++
			// Retransmissions of a final response (an INVITE's, never
			// ACKed) are no news.
			if r.answered.IsZero() && !strings.HasPrefix(msg, "SIP/2.0 1") {
				r.answered, r.final = now, msg
				close(p.changed)
				p.changed = make(chan struct{})
			}
		}
		p.mu.Unlock()
	}
}

func at(m []string, i int) string {
	if i < len(m) {
		return m[i]
	}
	return ""
}

// settle waits until no request has been answered for quiet, at most
// until ctx ends: what was not answered by then is taken as unanswered.
func (p *sipProbe) settle(ctx context.Context, quiet time.Duration) {
	t := time.NewTimer(quiet)
	defer t.Stop()
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
			t.Reset(quiet)
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// requests returns copies of the requests sent so far, in order.
func (p *sipProbe) requests() []probeRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]probeRequest, len(p.order))
	for i, r := range p.order {
		out[i] = *r
	}
	return out
}

var (
	toTag    = regexp.MustCompile(`;tag=[^;>\s]+`)
	received = regexp.MustCompile(`;received=[^;\s]+`)
)

// normalized is r's final response with what differs per request by
// design (the dialed number, Call-ID, branch, tags) replaced by
// placeholders, so that two answers compare equal when they are the
// same answer: status line, reason, headers (names, values, order).
func (r probeRequest) normalized() string {
	s := strings.ReplaceAll(r.final, "sip:"+r.number+"@", "sip:N@")
	s = strings.ReplaceAll(s, r.callID, "CALL-ID")
	s = strings.ReplaceAll(s, r.branch, "BRANCH")
	s = toTag.ReplaceAllString(s, ";tag=TAG")
	return received.ReplaceAllString(s, ";received=ADDR")
}

// status is the status line of r's final response.
func (r probeRequest) status() string {
	line, _, _ := strings.Cut(r.final, "\r\n")
	return line
}

// header is the value of r's final response's header name, empty when
// it has none.
func (r probeRequest) header(name string) string {
	for _, line := range strings.Split(r.final, "\r\n")[1:] {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// metric is the value of one series on the gateway's /metrics, parsed
// (labels as name, value pairs).
func metric(tb testing.TB, g *gateway, name string, labels ...string) float64 {
	tb.Helper()
	return promtest.Scrape(tb, g.base+"/metrics").Value(tb, name, labels...)
}

// rssBytes is the gateway process's resident memory (VmRSS).
func rssBytes(tb testing.TB, g *gateway) int64 {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	require.NoError(tb, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(tb, err)
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// median of d (sorted in place); 0 for none.
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}
