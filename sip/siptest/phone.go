// Package siptest is a calling phone for the tests of every package that
// puts calls through mediagate's SIP side (sip, bridge, cmd): a sipgo user
// agent client on loopback that dials with a chosen codec, with or without
// telephone-event, sends RTP audio from PCM every 20 ms like a handset,
// keys digits as RFC 4733 events, SIP INFO requests or in-band tones,
// records what it hears, decoded, and hangs up. Tests then assert on the
// audio (media/mediatest), not on packets.
//
// A Phone and its Calls end with the test (t.Cleanup), all their
// goroutines with them, so a test package can run goleak.
package siptest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
)

// Codec names, as SDP spells them.
const (
	PCMU = "PCMU"
	PCMA = "PCMA"
	G722 = "G722"
	Opus = "opus"
)

// Payload types the phone offers: the static ones of RFC 3551 for G.711
// and G.722, dynamic ones for Opus and telephone-event.
const (
	opusPT = 111
	tePT   = 101
)

// hangupTimeout bounds the BYE a Call sends when the test ends.
const hangupTimeout = 3 * time.Second

// Options choose how a Phone dials.
type Options struct {
	// Codec is the one codec offered: PCMU (default), PCMA, G722 or opus.
	Codec string
	// TelephoneEvent offers telephone-event (RFC 4733) besides the codec.
	TelephoneEvent bool
	// TelephoneEventRate is the clock rate the telephone-event is offered
	// at; 0 means the codec's RTP clock rate (RFC 4733 §2.1), which is
	// 8000 for G.711 and G.722 and 48000 for Opus. Softphones that offer
	// Opus with telephone-event/8000 (baresip) set 8000.
	TelephoneEventRate int
	// AudioDuringEvents keeps sending audio packets while a key goes out
	// as telephone events, interleaved with them in the one RTP stream,
	// as baresip does; by default events replace the audio (RFC 4733
	// allows both).
	AudioDuringEvents bool
	// User is the user part of the request URI: the number dialed
	// (default "1000").
	User string
	// From is the caller's user part, the calling number (default
	// "+4930123456").
	From string
	// OnResponse, when set, is called with the status code and reason of
	// each response to the INVITE in the order they arrived, provisional
	// and final alike (100 Trying, 180 Ringing, ..., then 200 or the
	// refusal), on Dial's goroutine once the final one is in, before Dial
	// returns. The order is the wire's: sipgo hands each response to its
	// transaction on a goroutine of its own, so a 180 closely followed by
	// the 200 may never reach the transaction at all.
	OnResponse func(code int, reason string)
}

// RefusedError is Dial's error when the gateway answers the INVITE with a
// final status other than 2xx (404 for an unknown number, 486 Busy Here,
// ...); errors.As finds it.
type RefusedError struct {
	Code   int
	Reason string
	// Warning is the response's Warning header value (RFC 3261 §20.43),
	// empty when it has none.
	Warning string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("siptest: invite refused: %d %s", e.Code, e.Reason)
}

// Phone is a SIP user agent that places calls from loopback. Make it with
// NewPhone.
type Phone struct {
	t    testing.TB
	ua   *sipgo.UserAgent
	dc   *sipgo.DialogClientCache
	port int

	mu    sync.Mutex
	calls map[*sipgo.DialogClientSession]*Call
	// provisional are the 1xx answers to each INVITE (by Call-ID) in the
	// order the transport read them (onWire).
	provisional map[string][]*sip.Response
}

// NewPhone starts a phone's SIP side on a free UDP port of 127.0.0.1; it
// stops when the test ends.
func NewPhone(t testing.TB) *Phone {
	t.Helper()
	return NewPhoneAt(t, "127.0.0.1")
}

// NewPhoneAt is NewPhone on another local address, e.g. 127.0.0.2, for
// tests that need callers from distinct sources (its RTP uses it too).
func NewPhoneAt(t testing.TB, host string) *Phone {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("siptest"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)))
	if err != nil {
		t.Fatalf("siptest: %v", err)
	}
	conn, err := net.ListenPacket("udp4", net.JoinHostPort(host, "0"))
	if err != nil {
		_ = ua.Close()
		t.Fatalf("siptest: %v", err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		_ = conn.Close()
		_ = ua.Close()
		t.Fatalf("siptest: %v", err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname(host),
		sipgo.WithClientPort(port))
	if err != nil {
		_ = conn.Close()
		_ = ua.Close()
		t.Fatalf("siptest: %v", err)
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "phone", Host: host, Port: port}}
	p := &Phone{t: t, ua: ua, dc: sipgo.NewDialogClientCache(cli, contact), port: port,
		calls: map[*sipgo.DialogClientSession]*Call{}, provisional: map[string][]*sip.Response{}}
	ua.TransportLayer().OnMessage(p.onWire)
	srv.OnBye(p.onBye)
	// Serve, and return once sipgo's transport has conn in its pool (its
	// first read): a request sent before that would leave from a
	// connection sipgo makes up for it, on another port than the
	// Contact's.
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeUDP(&servingConn{PacketConn: conn, ready: ready}) }()
	t.Cleanup(func() {
		_ = conn.Close()
		_ = ua.Close()
		<-done
	})
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatalf("siptest: sipgo did not serve the phone's socket")
	}
	return p
}

// servingConn closes ready when sipgo first reads from it.
type servingConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

func (c *servingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	return c.PacketConn.ReadFrom(b)
}

// Port is the phone's SIP port.
func (p *Phone) Port() int { return p.port }

// onWire keeps the provisional answers to INVITEs as the transport reads
// them, one datagram after the other, before any transaction sees them.
func (p *Phone) onWire(msg sip.Message) {
	r, ok := msg.(*sip.Response)
	if !ok || !r.IsProvisional() || r.CSeq() == nil || r.CSeq().MethodName != sip.INVITE || r.CallID() == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	id := r.CallID().Value()
	p.provisional[id] = append(p.provisional[id], r)
}

// onBye answers the gateway's BYE and ends the call it names.
func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	d, err := p.dc.MatchRequestDialog(req)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	p.mu.Lock()
	c := p.calls[d]
	p.mu.Unlock()
	if err := d.ReadBye(req, tx); err != nil || c == nil {
		return
	}
	c.byeOnce.Do(func() { close(c.bye) })
}

// Dial calls the SIP user agent at gateway (UDP) with an offer made from
// o, waits for its answer and acknowledges it. The call then sends audio
// (silence until Play) and records what it receives, until Hangup, the
// gateway's BYE or the test's end (which hangs up a call still up). A
// final answer other than 2xx is a *RefusedError.
func (p *Phone) Dial(ctx context.Context, gateway netip.AddrPort, o Options) (*Call, error) {
	p.t.Helper()
	codec, err := lookupCodec(o.Codec)
	if err != nil {
		return nil, err
	}
	if o.User == "" {
		o.User = "1000"
	}
	if o.From == "" {
		o.From = "+4930123456"
	}
	teRate := 0
	if o.TelephoneEvent {
		teRate = o.TelephoneEventRate
		if teRate == 0 {
			teRate = codec.clockRate
		}
	}
	m, err := newMedia(codec, teRate, o.AudioDuringEvents)
	if err != nil {
		return nil, err
	}
	c := &Call{phone: p, media: m, bye: make(chan struct{})}
	p.t.Cleanup(c.close)

	to := sip.Uri{Scheme: "sip", User: o.User, Host: gateway.Addr().String(), Port: int(gateway.Port())}
	from := &sip.FromHeader{DisplayName: "siptest", Params: sip.NewParams(),
		Address: sip.Uri{Scheme: "sip", User: o.From, Host: "127.0.0.1", Port: p.port}}
	from.Params.Add("tag", sip.GenerateTagN(16))
	d, err := p.dc.Invite(ctx, to, offer(m.port(), codec, teRate),
		sip.NewHeader("Content-Type", "application/sdp"), from)
	if err != nil {
		return nil, fmt.Errorf("siptest: invite: %w", err)
	}
	c.dialog = d
	p.mu.Lock()
	p.calls[d] = c
	p.mu.Unlock()
	err = d.WaitAnswer(ctx, sipgo.AnswerOptions{})
	p.report(d, o.OnResponse, err)
	if err != nil {
		if refused, ok := errors.AsType[*sipgo.ErrDialogResponse](err); ok {
			re := &RefusedError{Code: refused.Res.StatusCode, Reason: refused.Res.Reason}
			if w := refused.Res.GetHeader("Warning"); w != nil {
				re.Warning = w.Value()
			}
			return nil, re
		}
		return nil, fmt.Errorf("siptest: invite: %w", err)
	}
	if err := d.Ack(ctx); err != nil {
		return nil, fmt.Errorf("siptest: ack: %w", err)
	}
	c.answer = d.InviteResponse.Body()
	remote, answeredTE, err := readAnswer(c.answer, codec)
	if err != nil {
		c.hangup()
		return nil, err
	}
	c.te = answeredTE
	m.start(remote, answeredTE)
	return c, nil
}

// report gives on the INVITE's responses in wire order: the provisional
// ones onWire kept, then the final one WaitAnswer ended with (none when it
// ended without one). The final one was read after every provisional one
// before it, so they are all in by now.
func (p *Phone) report(d *sipgo.DialogClientSession, on func(code int, reason string), err error) {
	id := d.InviteRequest.CallID().Value()
	p.mu.Lock()
	prov := p.provisional[id]
	delete(p.provisional, id)
	p.mu.Unlock()
	if on == nil {
		return
	}
	for _, r := range prov {
		on(r.StatusCode, r.Reason)
	}
	if refused, ok := errors.AsType[*sipgo.ErrDialogResponse](err); ok {
		on(refused.Res.StatusCode, refused.Res.Reason)
	} else if err == nil && d.InviteResponse != nil {
		on(d.InviteResponse.StatusCode, d.InviteResponse.Reason)
	}
}

// offer is the phone's SDP offer: one audio stream with the codec and,
// when teRate is not 0, telephone-event at that rate.
func offer(port int, c codec, teRate int) []byte {
	pts := fmt.Sprint(c.pt)
	lines := []string{"v=0", "o=siptest 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"}
	attrs := []string{fmt.Sprintf("a=rtpmap:%d %s", c.pt, c.rtpmap)}
	if c.name == Opus {
		attrs = append(attrs, fmt.Sprintf("a=fmtp:%d minptime=10;useinbandfec=1", c.pt))
	}
	if teRate != 0 {
		pts += fmt.Sprint(" ", tePT)
		attrs = append(attrs, fmt.Sprintf("a=rtpmap:%d telephone-event/%d", tePT, teRate),
			fmt.Sprintf("a=fmtp:%d 0-15", tePT))
	}
	lines = append(lines, fmt.Sprintf("m=audio %d RTP/AVP %s", port, pts))
	lines = append(lines, attrs...)
	lines = append(lines, "a=ptime:20", "a=sendrecv")
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// readAnswer checks that the answer accepted the codec offered and returns
// where to send RTP and whether it accepted telephone-event.
func readAnswer(body []byte, c codec) (netip.AddrPort, bool, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("siptest: answer: %w", err)
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		ci := md.ConnectionInformation
		if ci == nil {
			ci = sd.ConnectionInformation
		}
		if ci == nil || ci.Address == nil {
			return netip.AddrPort{}, false, errors.New("siptest: answer without connection address")
		}
		ip, err := netip.ParseAddr(ci.Address.Address)
		if err != nil {
			return netip.AddrPort{}, false, fmt.Errorf("siptest: answer: %w", err)
		}
		var codecOK, te bool
		for _, f := range md.MediaName.Formats {
			switch f {
			case fmt.Sprint(c.pt):
				codecOK = true
			case fmt.Sprint(tePT):
				te = true
			}
		}
		if !codecOK {
			return netip.AddrPort{}, false, fmt.Errorf("siptest: answer without %s: %s", c.name, body)
		}
		return netip.AddrPortFrom(ip, uint16(md.MediaName.Port.Value)), te, nil
	}
	return netip.AddrPort{}, false, fmt.Errorf("siptest: answer without audio: %s", body)
}

// Call is one answered call of a Phone. Its methods are safe for
// concurrent use.
type Call struct {
	phone  *Phone
	dialog *sipgo.DialogClientSession
	media  *rtpMedia
	answer []byte
	te     bool

	bye     chan struct{} // closed when the gateway's BYE arrived
	byeOnce sync.Once

	pressMu   sync.Mutex // one Press at a time
	closeOnce sync.Once
}

// Answer is the gateway's SDP answer.
func (c *Call) Answer() []byte { return c.answer }

// TelephoneEvent reports whether the answer accepted telephone-event.
func (c *Call) TelephoneEvent() bool { return c.te }

// Dialog is the call's sipgo dialog, for requests of the test's own.
func (c *Call) Dialog() *sipgo.DialogClientSession { return c.dialog }

// HungUp is closed when the gateway has ended the call with a BYE.
func (c *Call) HungUp() <-chan struct{} { return c.bye }

// Hangup sends BYE and waits for its answer (RFC 3261 §15.1.1); the media
// stops when the test ends.
func (c *Call) Hangup(ctx context.Context) error {
	if err := c.dialog.Bye(ctx); err != nil {
		return fmt.Errorf("siptest: bye: %w", err)
	}
	return nil
}

// SendInfo sends one key press as a SIP INFO request in the dialog
// (application/dtmf-relay, the format of most PBXes) and waits for its
// final response, which must be 200.
func (c *Call) SendInfo(ctx context.Context, key rune, duration time.Duration) error {
	req := sip.NewRequest(sip.INFO, c.dialog.InviteResponse.Contact().Address)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	req.SetBody(fmt.Appendf(nil, "Signal=%c\r\nDuration=%d\r\n", key, duration.Milliseconds()))
	res, err := c.dialog.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("siptest: info: %w", err)
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("siptest: info: %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// hangup sends BYE if the call is still up, bounded by hangupTimeout.
func (c *Call) hangup() {
	select {
	case <-c.bye:
		return
	default:
	}
	if c.dialog.LoadState() != sip.DialogStateConfirmed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangupTimeout)
	defer cancel()
	_ = c.dialog.Bye(ctx)
}

// close ends the call at the test's end: BYE when still up, then the
// media.
func (c *Call) close() {
	c.closeOnce.Do(func() {
		if c.dialog != nil {
			c.hangup()
			c.phone.mu.Lock()
			delete(c.phone.calls, c.dialog)
			c.phone.mu.Unlock()
			_ = c.dialog.Close()
		}
		c.media.close()
	})
}
