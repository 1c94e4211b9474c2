package sip

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"
)

// TestNegotiateTimer: the session timer a request from the caller gets
// (RFC 4028 §9) with our defaults, Session-Expires 1800 s and Min-SE 90 s.
func TestNegotiateTimer(t *testing.T) {
	u := &UA{opts: options{session: defaultSessionOptions()}}
	tests := []struct {
		name    string
		headers [][2]string
		want    sessionTimer
		code    int    // refusal, 0 for none
		reply   string // our Session-Expires in the 2xx
	}{
		{"caller without timers", nil,
			sessionTimer{interval: 1800 * time.Second, weRefresh: true}, 0, "1800;refresher=uas"},
		{"supported, no interval: caller refreshes", [][2]string{{"Supported", "timer"}},
			sessionTimer{interval: 1800 * time.Second, peerSupports: true}, 0, "1800;refresher=uac"},
		{"its Min-SE above ours", [][2]string{{"Supported", "replaces, timer"}, {"Min-SE", "3600"}},
			sessionTimer{interval: 3600 * time.Second, peerSupports: true, peerMinSE: 3600 * time.Second}, 0, "3600;refresher=uac"},
		{"compact forms, refresher uas", [][2]string{{"k", "timer"}, {"x", "600;refresher=uas"}},
			sessionTimer{interval: 600 * time.Second, weRefresh: true, peerSupports: true}, 0, "600;refresher=uas"},
		{"too small from a supporting caller", [][2]string{{"Supported", "timer"}, {"Session-Expires", "60"}},
			sessionTimer{}, 422, ""},
		{"too small from a caller without timers is raised", [][2]string{{"Session-Expires", "60"}},
			sessionTimer{interval: 90 * time.Second, weRefresh: true}, 0, "90;refresher=uas"},
		{"too long is lowered", [][2]string{{"Supported", "timer"}, {"Session-Expires", "7200"}},
			sessionTimer{interval: 1800 * time.Second, peerSupports: true}, 0, "1800;refresher=uac"},
		{"lowered, not below its Min-SE", [][2]string{{"Supported", "100rel,timer"}, {"Session-Expires", "7200"}, {"Min-SE", "2000"}},
			sessionTimer{interval: 2000 * time.Second, peerSupports: true, peerMinSE: 2000 * time.Second}, 0, "2000;refresher=uac"},
		{"require timer, refresher uac", [][2]string{{"Require", "timer"}, {"Session-Expires", "300;refresher=uac"}},
			sessionTimer{interval: 300 * time.Second, peerSupports: true}, 0, "300;refresher=uac"},
		{"spaces and case", [][2]string{{"Supported", " TIMER "}, {"Session-Expires", " 300 ; Refresher = UAS "}},
			sessionTimer{interval: 300 * time.Second, weRefresh: true, peerSupports: true}, 0, "300;refresher=uas"},
		{"no number", [][2]string{{"Session-Expires", "soon"}}, sessionTimer{}, 400, ""},
		{"negative", [][2]string{{"Session-Expires", "-90"}}, sessionTimer{}, 400, ""},
		{"bad Min-SE", [][2]string{{"Min-SE", "1e3"}}, sessionTimer{}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1000", Host: "127.0.0.1"})
			for _, h := range tt.headers {
				req.AppendHeader(sip.NewHeader(h[0], h[1]))
			}
			st, err := u.negotiateTimer(req)
			if tt.code != 0 {
				require.Error(t, err)
				require.Equal(t, tt.code, statusOf(err))
				if tt.code == 422 {
					require.ErrorIs(t, err, ErrIntervalTooSmall)
					hs := refusalHeaders(err, 422)
					require.Len(t, hs, 1)
					require.Equal(t, "Min-SE: 90", hs[0].String())
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, st)
			hs := st.responseHeaders()
			require.Equal(t, tt.reply, hs[0].Value())
			require.Equal(t, st.peerSupports, len(hs) == 2, "Require: timer exactly when the caller supports it")
		})
	}
}

// TestSessionTimerArithmetic: when mediagate acts (RFC 4028 §10), what a
// 2xx to its refresh leaves, and which Require tags are refused.
func TestSessionTimerArithmetic(t *testing.T) {
	require.Equal(t, 900*time.Second, sessionTimer{interval: 1800 * time.Second, weRefresh: true}.due())
	require.Equal(t, 1768*time.Second, sessionTimer{interval: 1800 * time.Second}.due(), "32 s before expiry")
	require.Equal(t, 60*time.Second, sessionTimer{interval: 90 * time.Second}.due(), "a third before expiry")

	u := &UA{opts: options{session: defaultSessionOptions()}}
	ours := sessionTimer{interval: 600 * time.Second, weRefresh: true}
	res := func(se string) *sip.Response {
		r := sip.NewResponse(200, "OK")
		if se != "" {
			r.AppendHeader(sip.NewHeader("Session-Expires", se))
		}
		return r
	}
	require.Equal(t, sessionTimer{interval: 300 * time.Second, weRefresh: true, peerSupports: true},
		u.afterRefresh(ours, res("300;refresher=uac")))
	require.Equal(t, sessionTimer{interval: 300 * time.Second, peerSupports: true},
		u.afterRefresh(ours, res("300;refresher=uas")), "the caller takes over")
	require.Equal(t, ours, u.afterRefresh(ours, res("")), "a caller without timers: we go on")
	require.Equal(t, 90*time.Second, u.afterRefresh(ours, res("10;refresher=uac")).interval, "never below our Min-SE")

	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", Host: "127.0.0.1"})
	require.Empty(t, unsupportedTags(req))
	req.AppendHeader(sip.NewHeader("Require", "timer"))
	require.Empty(t, unsupportedTags(req))
	req.AppendHeader(sip.NewHeader("Require", "100rel, timer, precondition"))
	require.Equal(t, "100rel, precondition", unsupportedTags(req))
}

// TestSessionOptions: New refuses session settings that make no timer.
func TestSessionOptions(t *testing.T) {
	for _, opts := range [][]Option{
		{WithMinSE(500 * time.Millisecond)},
		{WithSessionExpires(60 * time.Second)}, // below the default Min-SE 90 s
		{WithMaxCallDuration(-time.Second)},
	} {
		_, err := New("127.0.0.1:0", newAnsweringHandler(), opts...)
		require.ErrorIs(t, err, ErrConfig)
	}
}

// glarePeer is a caller that lacks UPDATE and asks the gateway to refresh,
// and holds the gateway's re-INVITEs for the test to answer.
type glarePeer struct {
	cli      *sipgo.Client
	srv      *sipgo.Server
	invites  chan inbound
	acks     chan *sip.Request
	dialogs  *sipgo.DialogClientCache
	listener net.PacketConn
}

// inbound is a request the peer received and has not answered yet; the
// handler that received it waits for respond (sipgo ends a server
// transaction when its handler returns).
type inbound struct {
	req  *sip.Request
	tx   sip.ServerTransaction
	sent chan struct{}
}

// respond answers the request and lets its handler return.
func (in inbound) respond(res *sip.Response) error {
	defer close(in.sent)
	return in.tx.Respond(res)
}

func newGlarePeer(t *testing.T) *glarePeer {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)))
	require.NoError(t, err)
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := conn.LocalAddr().(*net.UDPAddr).Port
	p := &glarePeer{invites: make(chan inbound, 4), acks: make(chan *sip.Request, 4), listener: conn}
	p.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	require.NoError(t, err)
	p.cli, err = sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientPort(port))
	require.NoError(t, err)
	p.dialogs = sipgo.NewDialogClientCache(p.cli,
		sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "peer", Host: "127.0.0.1", Port: port}})
	p.srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		in := inbound{req, tx, make(chan struct{})}
		p.invites <- in
		select {
		case <-in.sent:
		case <-time.After(10 * time.Second):
		}
	})
	p.srv.OnAck(func(req *sip.Request, _ sip.ServerTransaction) { p.acks <- req })
	p.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.dialogs.ReadBye(req, tx) })
	serveUDP(t, p.srv, conn, ua)
	return p
}

// nextInvite waits for the gateway's next re-INVITE.
func (p *glarePeer) nextInvite(t *testing.T) inbound {
	t.Helper()
	select {
	case in := <-p.invites:
		return in
	case <-time.After(10 * time.Second):
		t.Fatal("no re-INVITE from the gateway")
		return inbound{}
	}
}

// nextAck waits for an ACK from the gateway.
func (p *glarePeer) nextAck(t *testing.T) *sip.Request {
	t.Helper()
	select {
	case ack := <-p.acks:
		return ack
	case <-time.After(5 * time.Second):
		t.Fatal("no ACK from the gateway")
		return nil
	}
}

// TestRefreshGlare: while the gateway's refresh re-INVITE waits for an
// answer, the caller's re-INVITE and its UPDATE with an offer get 491 (RFC
// 3261 §14.2, RFC 3311 §5.2); the caller answers the refresh with 491 and
// the gateway tries again within 2 s (§14.1); the 2xx of the second one is
// ACKed, and ACKed again when the caller retransmits it (§13.2.2.4).
func TestRefreshGlare(t *testing.T) {
	h := newAnsweringHandler()
	u := startUA(t, h, WithMinSE(time.Second))
	p := newGlarePeer(t)
	rp := newRTPPeer(t, CodecPCMU, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	to := sip.Uri{Scheme: "sip", User: "2000", Host: "127.0.0.1", Port: u.Port()}
	d, err := p.dialogs.Invite(ctx, to, peerOffer(1, rp.port(), CodecPCMU, "sendrecv"),
		sip.NewHeader("Content-Type", "application/sdp"), sip.NewHeader("Supported", "timer"),
		sip.NewHeader("Session-Expires", "8;refresher=uas"), sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL"))
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.WaitAnswer(ctx, sipgo.AnswerOptions{}))
	require.Equal(t, "8;refresher=uas", d.InviteResponse.GetHeader("Session-Expires").Value())
	require.NoError(t, d.Ack(ctx))
	c := h.call(t)

	first := p.nextInvite(t) // at 4 s, half the interval
	require.Equal(t, "8;refresher=uac", first.req.GetHeader("Session-Expires").Value())
	target := d.InviteResponse.Contact().Address
	for _, method := range []sip.RequestMethod{sip.INVITE, sip.UPDATE} {
		req := sip.NewRequest(method, target)
		req.SetBody(peerOffer(2, rp.port(), CodecPCMU, "sendonly"))
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res, err := d.Do(ctx, req)
		require.NoError(t, err)
		require.Equal(t, 491, res.StatusCode, "%s crossing our re-INVITE", method)
	}
	require.False(t, c.Held(), "the refused offers changed nothing")
	require.NoError(t, first.respond(sip.NewResponseFromRequest(first.req, 491, "Request Pending", nil)))

	second := p.nextInvite(t)
	require.Greater(t, second.req.CSeq().SeqNo, first.req.CSeq().SeqNo)
	require.Equal(t, string(first.req.Body()), string(second.req.Body()), "the same description again")
	ok := sip.NewSDPResponseFromRequest(second.req, peerOffer(3, rp.port(), CodecPCMU, "sendrecv"))
	ok.AppendHeader(sip.NewHeader("Session-Expires", "8;refresher=uac"))
	ok.AppendHeader(sip.HeaderClone(d.InviteRequest.Contact()))
	require.NoError(t, second.respond(ok))
	ack := p.nextAck(t)
	require.Equal(t, second.req.CSeq().SeqNo, ack.CSeq().SeqNo)
	// A retransmission, T1 after the first 200 as RFC 3261 §13.3.1.4 has
	// it, reaches the gateway after its transaction ended.
	<-time.After(sip.T1)
	require.NoError(t, p.srv.WriteResponse(ok))
	again := p.nextAck(t)
	require.Equal(t, ack.CSeq().SeqNo, again.CSeq().SeqNo)

	require.NoError(t, d.Bye(ctx))
	waitDone(t, c)
	require.ErrorIs(t, c.Err(), ErrRemoteHangup)
}

// FuzzNegotiateTimer: Session-Expires, Min-SE, Supported and Require come
// from the network; nothing may panic, a refusal is 400 or 422, and an
// accepted timer respects our Min-SE and never raises the interval of a
// caller that supports timers (RFC 4028 §9).
func FuzzNegotiateTimer(f *testing.F) {
	f.Add("1800;refresher=uac", "90", "timer", "")
	f.Add("60", "", "timer", "timer")
	f.Add(" 300 ; Refresher = UAS ;x", "4294967295", "100rel, timer", "")
	f.Add("soon", "-1", "", "timer, 100rel")
	f.Add("99999999999", "1e3", ",,", ";")
	u := &UA{opts: options{session: defaultSessionOptions()}}
	f.Fuzz(func(t *testing.T, se, minSE, supported, require string) {
		req := sip.NewRequest(sip.UPDATE, sip.Uri{Scheme: "sip", Host: "127.0.0.1"})
		for name, v := range map[string]string{"Session-Expires": se, "Min-SE": minSE, "Supported": supported, "Require": require} {
			if v != "" {
				req.AppendHeader(sip.NewHeader(name, v))
			}
		}
		st, err := u.negotiateTimer(req)
		if err != nil {
			if c := statusOf(err); c != 400 && c != 422 {
				t.Fatalf("refused with %d: %v", c, err)
			}
			return
		}
		if st.interval < u.opts.session.minSE || st.due() <= 0 {
			t.Fatalf("interval %v below Min-SE", st.interval)
		}
		if d, _, ok, _ := sessionExpires(req); ok && st.peerSupports && st.interval > max(d, st.peerMinSE) {
			t.Fatalf("raised %v to %v", d, st.interval)
		}
		_ = st.responseHeaders()
	})
}
