package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"
)

// The guard against real UDP requests from several loopback source
// addresses (127.0.0.2 and up: Linux routes all of 127/8 to lo), sent as
// raw datagrams, as scanners and flooders send them.

// silence is how long a request goes unanswered before the test counts it
// as dropped: the UA answers OPTIONS on loopback within milliseconds.
const silence = 300 * time.Millisecond

// rawPeer sends hand-written SIP requests from one source address.
type rawPeer struct {
	conn *net.UDPConn
	to   *net.UDPAddr
	n    int
}

func newRawPeer(t *testing.T, src string, u *UA) *rawPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(src+":0")))
	if err != nil {
		t.Skipf("cannot bind %s (extra loopback addresses need Linux): %v", src, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawPeer{conn: conn, to: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: u.Port()}}
}

// send sends a new request (own Call-ID and branch) and returns its
// Call-ID.
func (p *rawPeer) send(t *testing.T, method, userAgent string) string {
	t.Helper()
	p.n++
	local := p.conn.LocalAddr().String()
	callID := fmt.Sprintf("guard-%d-%s", p.n, local)
	msg := fmt.Sprintf("%s sip:4930123450@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-guard-%d-%d;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:100@%s>;tag=t%d\r\n"+
		"To: <sip:4930123450@%s>\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: 1 %s\r\n"+
		"Contact: <sip:100@%s>\r\n",
		method, p.to, local, p.n, p.conn.LocalAddr().(*net.UDPAddr).Port, local, p.n, p.to, callID, method, local)
	if userAgent != "" {
		msg += "User-Agent: " + userAgent + "\r\n"
	}
	msg += "Content-Length: 0\r\n\r\n"
	_, err := p.conn.WriteToUDP([]byte(msg), p.to)
	require.NoError(t, err)
	return callID
}

// response returns the next response within d, or nil after d of
// silence.
func (p *rawPeer) response(t *testing.T, d time.Duration) *sip.Response {
	t.Helper()
	buf := make([]byte, 65536)
	require.NoError(t, p.conn.SetReadDeadline(time.Now().Add(d)))
	n, err := p.conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	require.NoError(t, err)
	m, err := sip.ParseMessage(buf[:n])
	require.NoError(t, err)
	res, ok := m.(*sip.Response)
	require.True(t, ok, "a response, got %T", m)
	return res
}

// final returns the next final response within d (skipping 1xx), or nil.
func (p *rawPeer) final(t *testing.T, d time.Duration) *sip.Response {
	t.Helper()
	for {
		res := p.response(t, d)
		if res == nil || res.StatusCode >= 200 {
			return res
		}
	}
}

// ack acknowledges a non-2xx final response to an INVITE (RFC 3261
// §17.1.1.3): same branch, the response's To tag.
func (p *rawPeer) ack(t *testing.T, res *sip.Response) {
	t.Helper()
	local := p.conn.LocalAddr().String()
	msg := fmt.Sprintf("ACK sip:4930123450@%s SIP/2.0\r\n"+
		"Via: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\n"+
		"Contact: <sip:100@%s>\r\nContent-Length: 0\r\n\r\n",
		p.to, res.Via().Value(), res.From().Value(), res.To().Value(), res.CallID().Value(), local)
	_, err := p.conn.WriteToUDP([]byte(msg), p.to)
	require.NoError(t, err)
}

// TestGuardUDP: with the default guard and a trunk for 127.0.0.3, a
// flooding source is banned within 2 s and then answered no more, the
// trunk's source floods unharmed, and a scanner gets no answer.
func TestGuardUDP(t *testing.T) {
	carrier := Trunk{Name: "carrier", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}}
	u := startUA(t, newRecorder(t), WithTrunks(carrier), WithGuard(DefaultGuardConfig()))
	flooder := newRawPeer(t, "127.0.0.2", u)
	trunk := newRawPeer(t, "127.0.0.3", u)
	scanner := newRawPeer(t, "127.0.0.4", u)
	other := newRawPeer(t, "127.0.0.5", u)
	burster := newRawPeer(t, "127.0.0.11", u)

	t.Run("flooder banned", func(t *testing.T) {
		// As fast as the answers come: each request waits for the last
		// one's answer, until one gets none.
		start := time.Now()
		answered := 0
		for ; answered < 1000; answered++ {
			flooder.send(t, "OPTIONS", "")
			res := flooder.response(t, silence)
			if res == nil {
				break
			}
			require.Equal(t, 403, res.StatusCode, "unknown source")
		}
		took := time.Since(start) - silence
		t.Logf("flooder: %d requests answered, banned after %v", answered, took.Round(time.Millisecond))
		require.Less(t, took, 2*time.Second, "banned within 2 s")
		require.GreaterOrEqual(t, answered, 16, "the bucket's burst passes")
		s := u.GuardStats()
		require.Equal(t, uint64(1), s.Bans)
		require.Equal(t, uint64(1), s.DroppedRate)
		require.Equal(t, 1, s.ActiveBans)

		// Then a burst: not one answer, every request counted.
		const burst = 50
		for range burst {
			flooder.send(t, "OPTIONS", "")
		}
		require.Nil(t, flooder.response(t, silence), "banned: no answer")
		require.Eventually(t, func() bool { return u.GuardStats().DroppedBanned == burst }, 5*time.Second, time.Millisecond)
		other.send(t, "OPTIONS", "")
		res := other.response(t, 5*time.Second)
		require.NotNil(t, res, "another source is answered")
		require.Equal(t, 403, res.StatusCode)
	})

	t.Run("burst", func(t *testing.T) {
		// 100 datagrams at once: the 17th bans the source before it is
		// parsed; of the 16 before it, those whose handlers run after the
		// ban are dropped too.
		const sent = 100
		start := time.Now()
		for range sent {
			burster.send(t, "OPTIONS", "")
		}
		require.Eventually(t, func() bool { return u.GuardStats().Bans == 2 }, 2*time.Second, time.Millisecond)
		took := time.Since(start)
		answered := 0
		for burster.response(t, silence) != nil {
			answered++
		}
		t.Logf("burst: %d requests, %d answered, banned within %v", sent, answered, took.Round(time.Millisecond))
		require.LessOrEqual(t, answered, 16, "at most the bucket's burst")
	})

	t.Run("trunk never banned", func(t *testing.T) {
		// One at a time (the kernel's socket buffers would drop some of a
		// burst of hundreds), still far above 16 per 2 s.
		const sent = 200
		start := time.Now()
		for i := range sent {
			trunk.send(t, "OPTIONS", "")
			res := trunk.response(t, 5*time.Second)
			require.NotNil(t, res, "answer %d", i)
			require.Equal(t, 200, res.StatusCode)
		}
		t.Logf("trunk source: %d requests in %v, all answered", sent, time.Since(start).Round(time.Millisecond))
		require.Equal(t, uint64(2), u.GuardStats().Bans, "only the flooder and the burster")
	})

	t.Run("scanner dropped", func(t *testing.T) {
		scanner.send(t, "OPTIONS", "friendly-scanner")
		require.Nil(t, scanner.response(t, silence))
		scanner.send(t, "OPTIONS", "")
		require.Nil(t, scanner.response(t, silence), "banned for scanning")
		s := u.GuardStats()
		require.Equal(t, uint64(1), s.DroppedScanner)
		require.Equal(t, uint64(3), s.Bans)
	})
}

// TestGuardUDPScannerNames: the User-Agent substrings match in any case.
func TestGuardUDPScannerNames(t *testing.T) {
	c := DefaultGuardConfig()
	c.BanScanners = false
	u := startUA(t, newRecorder(t), WithGuard(c))
	p := newRawPeer(t, "127.0.0.6", u)
	for i, ua := range []string{"friendly-scanner", "sipcli/v1.8", "SIPVicious 0.3", "sip call", "Mozilla/5.0 SIP CALL"} {
		p.send(t, "OPTIONS", ua)
		require.Nil(t, p.response(t, silence), ua)
		require.Equal(t, uint64(i+1), u.GuardStats().DroppedScanner)
	}
	p.send(t, "OPTIONS", "Linphone/5.2")
	res := p.response(t, 5*time.Second)
	require.NotNil(t, res, "not banned (ban_scanners off), a softphone is answered")
	require.Equal(t, 200, res.StatusCode)
}

// TestGuardUDPCallCap: with one call per source, a second INVITE from the
// same source gets 503 with Retry-After while another source's rings.
func TestGuardUDPCallCap(t *testing.T) {
	rang := make(chan CallInfo, 4)
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, in *IncomingCall) {
		rang <- in.Info()
		select {
		case <-release:
		case <-ctx.Done():
		}
		_ = in.Reject(&StatusError{Code: 486})
	})
	c := DefaultGuardConfig()
	c.MaxCallsPerSource = 1
	u := startUA(t, h, WithGuard(c))
	a := newRawPeer(t, "127.0.0.7", u)
	b := newRawPeer(t, "127.0.0.8", u)

	a.send(t, "INVITE", "")
	first := <-rang
	require.Equal(t, "127.0.0.7", first.Source.Addr().String())
	a.send(t, "INVITE", "")
	res := a.final(t, 5*time.Second)
	require.NotNil(t, res)
	require.Equal(t, 503, res.StatusCode)
	ra := res.GetHeader("Retry-After")
	require.NotNil(t, ra, "503 says when to retry")
	secs, err := strconv.Atoi(ra.Value())
	require.NoError(t, err)
	require.Positive(t, secs)
	a.ack(t, res)
	require.Equal(t, uint64(1), u.GuardStats().RefusedCalls)

	b.send(t, "INVITE", "")
	require.Equal(t, "127.0.0.8", (<-rang).Source.Addr().String(), "another source's call rings")

	close(release)
	for _, p := range []*rawPeer{a, b} {
		res := p.final(t, 5*time.Second)
		require.NotNil(t, res)
		require.Equal(t, 486, res.StatusCode)
		p.ack(t, res)
	}
	require.Eventually(t, func() bool { return u.Calls() == 0 }, 5*time.Second, time.Millisecond)
	a.send(t, "INVITE", "")
	require.Equal(t, "127.0.0.7", (<-rang).Source.Addr().String(), "the cap counts calls, not attempts")
	res = a.final(t, 5*time.Second)
	require.NotNil(t, res)
	require.Equal(t, 486, res.StatusCode)
	a.ack(t, res)
}

// TestGuardUDPSharedBans: two UAs (two nodes) share one BanList; a source
// the first bans gets no answer from the second.
func TestGuardUDPSharedBans(t *testing.T) {
	bans := newMapBans(time.Now)
	bans.pushed = make(chan string, 1)
	u1 := startUA(t, newRecorder(t), WithGuard(DefaultGuardConfig()), WithBanList(bans))
	u2 := startUA(t, newRecorder(t), WithGuard(DefaultGuardConfig()), WithBanList(bans))
	at1 := newRawPeer(t, "127.0.0.9", u1)
	at2 := newRawPeer(t, "127.0.0.9", u2)
	ctrl := newRawPeer(t, "127.0.0.10", u2)

	for range 20 {
		at1.send(t, "OPTIONS", "")
	}
	require.Equal(t, "127.0.0.9", <-bans.pushed, "u1 shares its ban")
	at2.send(t, "OPTIONS", "")
	require.Nil(t, at2.response(t, silence), "u2 drops the source u1 banned")
	s := u2.GuardStats()
	require.Equal(t, uint64(1), s.DroppedBanned)
	require.Zero(t, s.Bans)
	ctrl.send(t, "OPTIONS", "")
	res := ctrl.response(t, 5*time.Second)
	require.NotNil(t, res)
	require.Equal(t, 200, res.StatusCode)
}

// TestGuardTCP: a source banned over UDP has its TCP connections closed
// unread; another source's requests over TCP are answered.
func TestGuardTCP(t *testing.T) {
	u := startUA(t, newRecorder(t), WithGuard(DefaultGuardConfig()))
	flooder := newRawPeer(t, "127.0.0.14", u)
	for range 20 {
		flooder.send(t, "OPTIONS", "")
	}
	require.Eventually(t, func() bool { return u.GuardStats().Bans == 1 }, 2*time.Second, time.Millisecond)

	dial := func(src string) *net.TCPConn {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src + ":0"))}
		c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(u.Port())))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c.(*net.TCPConn)
	}
	options := func(c *net.TCPConn) (string, error) {
		local := c.LocalAddr().String()
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-tcp-%s\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:100@%s>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: tcp-%s\r\n"+
			"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", c.RemoteAddr(), local, local, local, c.RemoteAddr(), local)
		_, _ = c.Write([]byte(msg))
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		return line, err
	}
	_, err := options(dial("127.0.0.14"))
	require.Error(t, err, "the banned source's connection is closed")
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "closed, not left hanging: %v", err)
	line, err := options(dial("127.0.0.15"))
	require.NoError(t, err)
	require.Equal(t, "SIP/2.0 200 OK", line)
}
