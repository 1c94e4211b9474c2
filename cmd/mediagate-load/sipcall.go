package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
)

// sipUA places the load's calls: one sipgo user agent on one UDP socket for
// every call (a carrier's trunk looks like that), offering PCMU only.
// siptest's Phone does the same for tests but lives on testing.TB; this
// one reports errors instead.
type sipUA struct {
	ua   *sipgo.UserAgent
	dc   *sipgo.DialogClientCache
	conn net.PacketConn
	host string
	port int
	done chan struct{} // closed when the SIP server goroutine ends

	mu    sync.Mutex
	hungU int // calls the gateway ended with a BYE
}

// quietSIPGo turns sipgo's package-wide logger down to errors: it warns
// when the user agent's sockets close at the end of a run, which is no
// news here.
var quietSIPGo = sync.OnceFunc(func() {
	sip.SetDefaultLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
})

// newSIPUA starts the user agent on a free UDP port of host.
func newSIPUA(host string) (*sipUA, error) {
	quietSIPGo()
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("mediagate-load"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)))
	if err != nil {
		return nil, fmt.Errorf("sip user agent: %w", err)
	}
	conn, err := net.ListenPacket("udp4", net.JoinHostPort(host, "0"))
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("sip socket: %w", err)
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err == nil {
		var cli *sipgo.Client
		cli, err = sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname(host),
			sipgo.WithClientPort(port))
		if err == nil {
			contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "load", Host: host, Port: port}}
			u := &sipUA{ua: ua, dc: sipgo.NewDialogClientCache(cli, contact), conn: conn, host: host,
				port: port, done: make(chan struct{})}
			srv.OnBye(u.onBye)
			go func() { defer close(u.done); _ = srv.ServeUDP(conn) }()
			return u, nil
		}
	}
	_ = conn.Close()
	_ = ua.Close()
	return nil, fmt.Errorf("sip user agent: %w", err)
}

// close stops the user agent (hang up the calls first).
func (u *sipUA) close() {
	_ = u.ua.Close()
	_ = u.conn.Close()
	<-u.done
}

// onBye answers the gateway's BYE.
func (u *sipUA) onBye(req *sip.Request, tx sip.ServerTransaction) {
	d, err := u.dc.MatchRequestDialog(req)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	_ = d.ReadBye(req, tx)
	u.mu.Lock()
	u.hungU++
	u.mu.Unlock()
}

// hungUp is how many calls the gateway ended.
func (u *sipUA) hungUp() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hungU
}

// sipCall is one answered call.
type sipCall struct {
	dialog *sipgo.DialogClientSession
	remote netip.AddrPort // where the gateway wants RTP
	setup  time.Duration  // INVITE sent → 200 OK received
}

// dial calls number at gw offering PCMU on rtpPort, and ACKs the answer.
func (u *sipUA) dial(ctx context.Context, gw netip.AddrPort, number string, rtpPort int) (*sipCall, error) {
	to := sip.Uri{Scheme: "sip", User: number, Host: gw.Addr().String(), Port: int(gw.Port())}
	from := &sip.FromHeader{DisplayName: "load", Params: sip.NewParams(),
		Address: sip.Uri{Scheme: "sip", User: "+4930000000", Host: u.host, Port: u.port}}
	from.Params.Add("tag", sip.GenerateTagN(16))
	start := time.Now()
	d, err := u.dc.Invite(ctx, to, offerPCMU(u.host, rtpPort),
		sip.NewHeader("Content-Type", "application/sdp"), from)
	if err != nil {
		return nil, fmt.Errorf("invite %s: %w", number, err)
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		_ = d.Close()
		if refused, ok := errors.AsType[*sipgo.ErrDialogResponse](err); ok {
			return nil, fmt.Errorf("invite %s: refused: %d %s", number, refused.Res.StatusCode, refused.Res.Reason)
		}
		return nil, fmt.Errorf("invite %s: %w", number, err)
	}
	setup := time.Since(start)
	if err := d.Ack(ctx); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("ack %s: %w", number, err)
	}
	remote, err := answerAddr(d.InviteResponse.Body())
	if err != nil {
		hangup(d)
		return nil, fmt.Errorf("answer to %s: %w", number, err)
	}
	return &sipCall{dialog: d, remote: remote, setup: setup}, nil
}

// hangup sends BYE (when the call is still up) within 5 s and forgets the
// dialog.
func hangup(d *sipgo.DialogClientSession) {
	if d.LoadState() == sip.DialogStateConfirmed {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.Bye(ctx)
		cancel()
	}
	_ = d.Close()
}

// offerPCMU is an SDP offer of PCMU at host:port, 20 ms frames.
func offerPCMU(host string, port int) []byte {
	return []byte(strings.Join([]string{"v=0", "o=load 1 1 IN IP4 " + host, "s=-", "c=IN IP4 " + host,
		"t=0 0", fmt.Sprintf("m=audio %d RTP/AVP 0", port), "a=rtpmap:0 PCMU/8000", "a=ptime:20",
		"a=sendrecv"}, "\r\n") + "\r\n")
}

// answerAddr is the audio address of an SDP answer that accepted PCMU.
func answerAddr(body []byte) (netip.AddrPort, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return netip.AddrPort{}, err
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
			return netip.AddrPort{}, errors.New("no connection address")
		}
		ip, err := netip.ParseAddr(ci.Address.Address)
		if err != nil {
			return netip.AddrPort{}, err
		}
		for _, f := range md.MediaName.Formats {
			if f == "0" {
				return netip.AddrPortFrom(ip, uint16(md.MediaName.Port.Value)), nil
			}
		}
		return netip.AddrPort{}, errors.New("PCMU not accepted")
	}
	return netip.AddrPort{}, errors.New("no audio stream")
}
