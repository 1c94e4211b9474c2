package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// sipPeer is a calling phone built from sipgo's client side: it sends
// INVITEs and re-INVITEs and answers the gateway's BYE.
type sipPeer struct {
	dc   *sipgo.DialogClientCache
	byes chan struct{}
	port int
}

func newSIPPeer(t *testing.T) *sipPeer {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("peer"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)))
	require.NoError(t, err)
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := conn.LocalAddr().(*net.UDPAddr).Port
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	require.NoError(t, err)
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientPort(port))
	require.NoError(t, err)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "peer", Host: "127.0.0.1", Port: port}}
	p := &sipPeer{dc: sipgo.NewDialogClientCache(cli, contact), byes: make(chan struct{}, 4), port: port}
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dc.ReadBye(req, tx); err == nil {
			p.byes <- struct{}{}
		}
	})
	serveUDP(t, srv, conn, ua)
	return p
}

// serveUDP serves conn with srv until cleanup, which closes conn and ua.
// It returns once sipgo's transport has conn in its pool (its first
// read): a request sent before that would leave from a connection sipgo
// makes up for it, on another port, which the peer's Contact does not
// name and whose reader sipgo can fail to end at Close.
func serveUDP(t *testing.T, srv *sipgo.Server, conn net.PacketConn, ua *sipgo.UserAgent) {
	t.Helper()
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
		t.Fatal("sipgo did not serve the peer's socket")
	}
}

// invite calls user at u with offer and returns the dialog and the answer.
func (p *sipPeer) invite(t *testing.T, u *UA, user string, offer []byte) (*sipgo.DialogClientSession, []byte) {
	t.Helper()
	d, err := p.dial(u, user, offer)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d, d.InviteResponse.Body()
}

// dial is invite without the test's assertions, for use off the test's
// goroutine.
func (p *sipPeer) dial(u *UA, user string, offer []byte) (*sipgo.DialogClientSession, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	to := sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: u.Port()}
	d, err := p.dc.Invite(ctx, to, offer, sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		return nil, err
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		_ = d.Close()
		return nil, err
	}
	if err := d.Ack(ctx); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

// reinvite sends a re-INVITE with offer, ACKs the 200 and returns its answer.
func (p *sipPeer) reinvite(t *testing.T, d *sipgo.DialogClientSession, offer []byte) []byte {
	t.Helper()
	res := reinviteStatus(t, d, offer)
	require.Equal(t, 200, res.StatusCode)
	return res.Body()
}

// reinviteStatus sends a re-INVITE and returns its final response, ACKing
// a 2xx.
func reinviteStatus(t *testing.T, d *sipgo.DialogClientSession, offer []byte) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target := d.InviteResponse.Contact().Address
	req := sip.NewRequest(sip.INVITE, target)
	req.SetBody(offer)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res, err := d.Do(ctx, req)
	require.NoError(t, err)
	if res.IsSuccess() {
		require.NoError(t, d.WriteRequest(sip.NewRequest(sip.ACK, target)))
	}
	return res
}

// peerOffer is the SDP the peer offers: one codec, telephone-event at 8 kHz
// for the 8 kHz-clock codecs, the RTP port and a direction.
func peerOffer(version int, port int, codec, dir string) []byte {
	return peerOfferAt("127.0.0.1", version, port, codec, dir)
}

// peerOfferAt is peerOffer naming ip in c= (a phone behind NAT names its
// private address).
func peerOfferAt(ip string, version int, port int, codec, dir string) []byte {
	fmtp := map[string]string{
		CodecPCMU: "0 101\r\na=rtpmap:0 PCMU/8000", CodecPCMA: "8 101\r\na=rtpmap:8 PCMA/8000",
		CodecG722: "9 101\r\na=rtpmap:9 G722/8000", CodecOpus: "96\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1",
	}[codec]
	te := "a=rtpmap:101 telephone-event/8000\r\n"
	if codec == CodecOpus {
		te = ""
	}
	return fmt.Appendf(nil, "v=0\r\no=peer 7 %d IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP %s\r\n%sa=ptime:20\r\na=%s\r\n", version, ip, ip, port, fmtp, te, dir)
}

// answerAddr reads the RTP address and direction of the gateway's answer.
func answerAddr(t *testing.T, body []byte) (netip.AddrPort, string) {
	t.Helper()
	var sd sdp.SessionDescription
	require.NoError(t, sd.Unmarshal(body))
	require.Len(t, sd.MediaDescriptions, 1)
	md := sd.MediaDescriptions[0]
	ip := netip.MustParseAddr(sd.ConnectionInformation.Address.Address)
	dir := ""
	for _, a := range md.Attributes {
		if _, err := sdp.NewDirection(a.Key); err == nil {
			dir = a.Key
		}
	}
	return netip.AddrPortFrom(ip, uint16(md.MediaName.Port.Value)), dir
}

// rtpPeer is the phone's media: it sends a tone as RTP from its socket and
// decodes what arrives.
type rtpPeer struct {
	conn  *net.UDPConn
	codec Codec
	pt    uint8
	enc   media.Encoder
	dec   media.Decoder

	mu   sync.Mutex
	got  []int16
	pkts int
	from netip.AddrPort
	sent atomic.Int64 // tone packets sent

	// With SRTP (srtp_test.go): tx protects what sendTone sends, rx
	// unprotects what arrives; unauthentic counts what rx refused. Each
	// context is used by one goroutine.
	srtpTx, srtpRx atomic.Pointer[srtp.Context]
	unauthentic    atomic.Int64

	sending chan struct{} // closed to stop sending
	wg      sync.WaitGroup
}

func newRTPPeer(t *testing.T, name string, pt uint8) *rtpPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	require.NoError(t, err)
	codec, _ := lookupCodec(name)
	enc, err := newTestEncoder(codec)
	require.NoError(t, err)
	dec, err := newDecoder(codec)
	require.NoError(t, err)
	p := &rtpPeer{conn: conn, codec: codec, pt: pt, enc: enc, dec: dec}
	p.wg.Add(1)
	go p.receive()
	t.Cleanup(func() {
		p.stopSending()
		_ = conn.Close()
		p.wg.Wait()
		_ = enc.Close()
		_ = dec.Close()
	})
	return p
}

func (p *rtpPeer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *rtpPeer) receive() {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	pcm := make([]int16, 6*960)
	var pkt rtp.Packet
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if rx := p.srtpRx.Load(); rx != nil && n >= 2 && (buf[1] < 192 || buf[1] > 223) {
			plain, err := rx.DecryptRTP(buf[:n], buf[:n], nil)
			if err != nil {
				p.unauthentic.Add(1)
				continue
			}
			n = len(plain)
		}
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != p.pt {
			continue
		}
		k, err := p.dec.Decode(pkt.Payload, pcm)
		if err != nil {
			continue
		}
		p.mu.Lock()
		p.got = append(p.got, pcm[:k]...)
		p.pkts++
		p.from = from
		p.mu.Unlock()
	}
}

// received returns how many packets arrived and the decoded audio.
func (p *rtpPeer) received() (int, []int16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pkts, append([]int16(nil), p.got...)
}

// sendTone sends freq Hz to to, one 20 ms packet per tick, until stopped.
func (p *rtpPeer) sendTone(to netip.AddrPort, freq float64) {
	p.stopSending()
	p.sending = make(chan struct{})
	stop := p.sending
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tone := mediatest.Tone{Freq: freq, Amp: 0.3, Rate: p.codec.SampleRate}
		pcm := make([]int16, media.SamplesPerFrame(tone.Rate))
		payload := make([]byte, 1500)
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: p.pt, SSRC: 0x1234, Marker: true}}
		tick := time.NewTicker(media.FrameDuration)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			tone.Fill(pcm)
			n, err := p.enc.Encode(pcm, payload)
			if err != nil {
				return
			}
			pkt.Payload = payload[:n]
			b, _ := pkt.Marshal()
			if tx := p.srtpTx.Load(); tx != nil {
				b, _ = tx.EncryptRTP(nil, b, nil)
			}
			if _, err := p.conn.WriteToUDPAddrPort(b, to); err == nil {
				p.sent.Add(1)
			}
			pkt.SequenceNumber++
			pkt.Timestamp += p.codec.FrameTS()
			pkt.Marker = false
		}
	}()
}

func (p *rtpPeer) stopSending() {
	if p.sending != nil {
		close(p.sending)
		p.sending = nil
	}
}

// toneAbove returns how far the tone at freq stands above the strongest of
// some other frequencies, in dB.
func toneAbove(pcm []int16, freq float64, rate int) float64 {
	other := -200.0
	for _, f := range []float64{300, 500, 1500, 2500, 3300} {
		if f != freq {
			other = max(other, mediatest.ToneDB(pcm, f, rate))
		}
	}
	return mediatest.ToneDB(pcm, freq, rate) - other
}

// answeringHandler answers, sends a 1 kHz tone and records what ReadFrame
// returns until the call ends.
type answeringHandler struct {
	calls chan *Call
	mu    sync.Mutex
	heard []int16
}

func newAnsweringHandler() *answeringHandler { return &answeringHandler{calls: make(chan *Call, 1)} }

func (h *answeringHandler) HandleCall(_ context.Context, in *IncomingCall) {
	c, err := in.Answer()
	if err != nil {
		return
	}
	h.calls <- c
	go sendTone(c, 1000)
	pcm := make([]int16, media.SamplesPerFrame(c.Codec().SampleRate))
	everyFrame(c.Done(), func() bool {
		n, _ := c.ReadFrame(pcm)
		h.mu.Lock()
		h.heard = append(h.heard, pcm[:n]...)
		h.mu.Unlock()
		return true
	})
}

// heardSince returns the audio the call heard after sample n.
func (h *answeringHandler) heardSince(n int) []int16 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n >= len(h.heard) {
		return nil
	}
	return append([]int16(nil), h.heard[n:]...)
}

func (h *answeringHandler) heardLen() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.heard)
}

func (h *answeringHandler) call(t *testing.T) *Call {
	t.Helper()
	select {
	case c := <-h.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no call answered")
		return nil
	}
}

// eventually polls cond every 20 ms for up to d.
func eventually(t *testing.T, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, d, 20*time.Millisecond, msg)
}

// TestAudioBothWays: for each codec a sipgo caller offers it alone; the
// gateway answers with it, a 1 kHz tone sent through WriteAudio reaches
// the caller and a 660 Hz tone from the caller comes out of ReadFrame, each
// at least 20 dB above the other bands.
func TestAudioBothWays(t *testing.T) {
	tests := []struct {
		codec string
		pt    uint8
	}{
		{CodecPCMA, 8}, {CodecPCMU, 0}, {CodecG722, 9}, {CodecOpus, 96},
	}
	for _, mode := range rtpModes {
		for _, tt := range tests {
			t.Run(mode.name+"/"+tt.codec, func(t *testing.T) { testAudioBothWays(t, mode.opts, tt.codec, tt.pt) })
		}
	}
}

// rtpModes are the UA's two ways of giving calls RTP ports: a pair each,
// or the shared pair (WithSharedRTP).
var rtpModes = []struct {
	name string
	opts []Option
}{{"own", nil}, {"shared", []Option{WithSharedRTP(true)}}}

// checkRTPPort checks that the answer's port is the shared one exactly
// when u shares one.
func checkRTPPort(t *testing.T, u *UA, to netip.AddrPort) {
	t.Helper()
	if u.mux != nil {
		require.Equal(t, u.mux.port, int(to.Port()), "the call is on the shared port")
	} else {
		require.Equal(t, 1, u.ports.inUse(), "the call has a pair of its own")
	}
}

func testAudioBothWays(t *testing.T, opts []Option, codec string, pt uint8) {
	h := newAnsweringHandler()
	u := startUA(t, h, opts...)
	sp := newSIPPeer(t)
	rp := newRTPPeer(t, codec, pt)
	d, answer := sp.invite(t, u, "2000", peerOffer(1, rp.port(), codec, "sendrecv"))
	to, dir := answerAddr(t, answer)
	require.Equal(t, "sendrecv", dir)
	checkRTPPort(t, u, to)
	c := h.call(t)
	require.Equal(t, codec, c.Codec().Name)
	require.Equal(t, pt, c.Codec().PayloadType, "the offer's payload type")
	rp.sendTone(to, 660)

	rate := c.Codec().SampleRate
	eventually(t, 5*time.Second, func() bool {
		n, got := rp.received()
		return n >= 50 && toneAbove(got[len(got)-rate/2:], 1000, rate) >= 20
	}, "the caller hears the gateway's 1 kHz tone")
	eventually(t, 5*time.Second, func() bool {
		heard := h.heardSince(max(h.heardLen()-rate/2, 0))
		return len(heard) == rate/2 && toneAbove(heard, 660, rate) >= 20
	}, "ReadFrame returns the caller's 660 Hz tone")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, d.Bye(ctx))
	waitDone(t, c)
	require.ErrorIs(t, c.Err(), ErrRemoteHangup)
}

// TestReinviteMedia: a re-INVITE with a new port moves the gateway's audio
// there; a=sendonly (hold) stops it and a=sendrecv brings it back; the
// answers say recvonly and sendrecv.
func TestReinviteMedia(t *testing.T) {
	for _, mode := range rtpModes {
		t.Run(mode.name, func(t *testing.T) { testReinviteMedia(t, mode.opts) })
	}
}

func testReinviteMedia(t *testing.T, opts []Option) {
	h := newAnsweringHandler()
	u := startUA(t, h, opts...)
	sp := newSIPPeer(t)
	first := newRTPPeer(t, CodecPCMU, 0)
	d, answer := sp.invite(t, u, "2000", peerOffer(1, first.port(), CodecPCMU, "sendrecv"))
	to, _ := answerAddr(t, answer)
	checkRTPPort(t, u, to)
	c := h.call(t)
	first.sendTone(to, 660)
	eventually(t, 3*time.Second, func() bool { n, _ := first.received(); return n >= 10 }, "audio on the first port")

	// Media address change.
	second := newRTPPeer(t, CodecPCMU, 0)
	first.stopSending()
	answer = sp.reinvite(t, d, peerOffer(2, second.port(), CodecPCMU, "sendrecv"))
	_, dir := answerAddr(t, answer)
	require.Equal(t, "sendrecv", dir)
	second.sendTone(to, 660)
	eventually(t, 3*time.Second, func() bool {
		n, got := second.received()
		return n >= 25 && toneAbove(got[len(got)-4000:], 1000, 8000) >= 20
	}, "the tone follows the new address")
	n1, _ := first.received()

	// Hold: the gateway must stop sending.
	answer = sp.reinvite(t, d, peerOffer(3, second.port(), CodecPCMU, "sendonly"))
	_, dir = answerAddr(t, answer)
	require.Equal(t, "recvonly", dir)
	require.True(t, c.Held())
	n2, _ := second.received()
	held := time.After(300 * time.Millisecond)
	<-held
	n3, _ := second.received()
	require.LessOrEqual(t, n3-n2, 2, "at most what was in flight arrives during hold")

	// Resume.
	answer = sp.reinvite(t, d, peerOffer(4, second.port(), CodecPCMU, "sendrecv"))
	_, dir = answerAddr(t, answer)
	require.Equal(t, "sendrecv", dir)
	require.False(t, c.Held())
	eventually(t, 3*time.Second, func() bool { n, _ := second.received(); return n >= n3+10 }, "audio resumes")
	n4, _ := first.received()
	require.LessOrEqual(t, n4-n1, 2, "nothing more goes to the old address")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, d.Bye(ctx))
	waitDone(t, c)
}

// TestSymmetricRTP: the caller's SDP names one port but it sends from
// another; the gateway latches to the source, sends there, and drops
// packets from a third socket and malformed packets, counting them. With
// the shared port (WithSharedRTP), a caller whose SDP names a private
// address, as behind NAT, gets a pair of its own for that.
func TestSymmetricRTP(t *testing.T) {
	for _, mode := range rtpModes {
		t.Run(mode.name, func(t *testing.T) { testSymmetricRTP(t, mode.opts) })
	}
}

func testSymmetricRTP(t *testing.T, opts []Option) {
	h := newAnsweringHandler()
	u := startUA(t, h, opts...)
	sp := newSIPPeer(t)
	advertised := newRTPPeer(t, CodecPCMA, 8)
	actual := newRTPPeer(t, CodecPCMA, 8)
	offer := peerOffer(1, advertised.port(), CodecPCMA, "sendrecv")
	if u.mux != nil {
		offer = peerOfferAt("192.168.1.20", 1, advertised.port(), CodecPCMA, "sendrecv")
	}
	_, answer := sp.invite(t, u, "2000", offer)
	to, _ := answerAddr(t, answer)
	if u.mux != nil {
		require.NotEqual(t, u.mux.port, int(to.Port()), "behind NAT: a pair of its own")
		require.Equal(t, 2, u.ports.inUse())
	}
	c := h.call(t)
	actual.sendTone(to, 660)
	eventually(t, 3*time.Second, func() bool {
		n, got := actual.received()
		return n >= 25 && toneAbove(got[len(got)-4000:], 1000, 8000) >= 20
	}, "the gateway sends to where the caller's packets come from")

	intruder := newRTPPeer(t, CodecPCMA, 8)
	intruder.sendTone(to, 1500)
	for _, junk := range [][]byte{{0x80}, {0x40, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, []byte(strings.Repeat("x", 40))} {
		_, err := intruder.conn.WriteToUDPAddrPort(junk, to)
		require.NoError(t, err)
	}
	eventually(t, 3*time.Second, func() bool {
		st := c.Stats()
		return st.Foreign >= 10 && st.Malformed >= 3
	}, "foreign and malformed packets are counted")
	rate := 8000
	heard := h.heardSince(h.heardLen() - rate/2)
	require.GreaterOrEqual(t, toneAbove(heard, 660, rate), 20.0, "the intruder's 1500 Hz is not played")
	require.NoError(t, c.Hangup(context.Background()))
}

// TestMediaTimeout: a caller that sends nothing is hung up with BYE after
// sip.media_timeout, unless it has put the call on hold. On the shared
// port the pair's loop runs the timeouts of all its calls.
func TestMediaTimeout(t *testing.T) {
	for _, mode := range rtpModes {
		t.Run(mode.name, func(t *testing.T) { testMediaTimeout(t, mode.opts) })
	}
}

func testMediaTimeout(t *testing.T, opts []Option) {
	h := newAnsweringHandler()
	u := startUA(t, h, append([]Option{WithMediaTimeout(400 * time.Millisecond)}, opts...)...)
	sp := newSIPPeer(t)
	rp := newRTPPeer(t, CodecPCMU, 0)
	d, _ := sp.invite(t, u, "2000", peerOffer(1, rp.port(), CodecPCMU, "inactive"))
	c := h.call(t)
	require.True(t, c.Held())
	select {
	case <-c.Done():
		t.Fatal("a call on hold (inactive) must not time out")
	case <-time.After(time.Second):
	}
	sp.reinvite(t, d, peerOffer(2, rp.port(), CodecPCMU, "sendrecv"))
	select {
	case <-sp.byes:
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE after the media timeout")
	}
	waitDone(t, c)
	require.True(t, errors.Is(c.Err(), ErrMediaTimeout), "ended by %v", c.Err())
}

// TestCloseHangsUp: Close sends BYE on every answered call and waits for
// their media to be released (startUA's cleanup checks the ports).
func TestCloseHangsUp(t *testing.T) {
	h := newAnsweringHandler()
	u := startUA(t, h)
	sp := newSIPPeer(t)
	rp := newRTPPeer(t, CodecPCMA, 8)
	sp.invite(t, u, "2000", peerOffer(1, rp.port(), CodecPCMA, "sendrecv"))
	c := h.call(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, u.Close(ctx))
	select {
	case <-sp.byes:
	case <-time.After(2 * time.Second):
		t.Fatal("the caller got no BYE")
	}
	require.ErrorIs(t, c.Err(), ErrLocalHangup)
	require.Zero(t, u.ports.inUse())
}

// TestDrain: a draining UA refuses new calls with 503 and Retry-After and
// keeps the calls it has.
func TestDrain(t *testing.T) {
	h := newAnsweringHandler()
	u := startUA(t, h)
	sp := newSIPPeer(t)
	rp := newRTPPeer(t, CodecPCMA, 8)
	sp.invite(t, u, "2000", peerOffer(1, rp.port(), CodecPCMA, "sendrecv"))
	c := h.call(t)
	require.Equal(t, 1, u.Calls())

	u.Drain()
	_, err := sp.dial(u, "2000", peerOffer(1, rp.port(), CodecPCMA, "sendrecv"))
	var refused *sipgo.ErrDialogResponse
	require.ErrorAs(t, err, &refused)
	require.Equal(t, 503, refused.Res.StatusCode)
	require.NotNil(t, refused.Res.GetHeader("Retry-After"))

	select {
	case <-c.Done():
		t.Fatalf("draining ended the call: %v", c.Err())
	default:
	}
	require.Equal(t, 1, u.Calls())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Hangup(ctx))
	require.Eventually(t, func() bool { return u.Calls() == 0 }, 5*time.Second, 10*time.Millisecond)
}

// TestTCP: OPTIONS and a whole call over TCP, with BYE from each side.
func TestTCP(t *testing.T) {
	h := newAnsweringHandler()
	u := startUA(t, h)
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)))
	require.NoError(t, err)
	defer ua.Close()
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname("127.0.0.1"))
	require.NoError(t, err)
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	require.NoError(t, err)
	dc := sipgo.NewDialogClientCache(cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "peer", Host: "127.0.0.1"}})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { _ = dc.ReadBye(req, tx) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	to := sip.Uri{Scheme: "sip", User: "2000", Host: "127.0.0.1", Port: u.Port(), UriParams: sip.NewParams()}
	to.UriParams.Add("transport", "tcp")
	opt := sip.NewRequest(sip.OPTIONS, to)
	opt.SetTransport("TCP")
	res, err := cli.Do(ctx, opt)
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, allowed, res.GetHeader("Allow").Value())

	rp := newRTPPeer(t, CodecPCMU, 0)
	for _, byeFromPeer := range []bool{true, false} {
		d, err := dc.Invite(ctx, to, peerOffer(1, rp.port(), CodecPCMU, "sendrecv"), sip.NewHeader("Content-Type", "application/sdp"))
		require.NoError(t, err)
		require.NoError(t, d.WaitAnswer(ctx, sipgo.AnswerOptions{}))
		require.NoError(t, d.Ack(ctx))
		c := h.call(t)
		require.Equal(t, "TCP", c.Info().Transport)
		if byeFromPeer {
			require.NoError(t, d.Bye(ctx))
			waitDone(t, c)
			require.ErrorIs(t, c.Err(), ErrRemoteHangup)
		} else {
			// Our BYE reuses the caller's connection.
			require.NoError(t, c.Hangup(ctx))
			require.ErrorIs(t, c.Err(), ErrLocalHangup)
		}
		_ = d.Close()
	}
}

// TestSharedRTPSameAddress: a second call whose SDP names the address of a
// call already on the shared port could not be told from it there, so it
// gets a pair of its own; both calls carry audio.
func TestSharedRTPSameAddress(t *testing.T) {
	h := newAnsweringHandler()
	u := startUA(t, h, WithSharedRTP(true))
	rp := newRTPPeer(t, CodecPCMU, 0)
	d1, a1 := newSIPPeer(t).invite(t, u, "2000", peerOffer(1, rp.port(), CodecPCMU, "sendrecv"))
	c1 := h.call(t)
	d2, a2 := newSIPPeer(t).invite(t, u, "2000", peerOffer(1, rp.port(), CodecPCMU, "sendrecv"))
	c2 := h.call(t)
	to1, _ := answerAddr(t, a1)
	to2, _ := answerAddr(t, a2)
	require.Equal(t, u.mux.port, int(to1.Port()), "the first call is on the shared port")
	require.NotEqual(t, u.mux.port, int(to2.Port()), "the second has a pair of its own")
	require.Equal(t, 2, u.ports.inUse())

	// The peer's packets reach the call whose port they are sent to.
	rp.sendTone(to1, 660)
	eventually(t, 3*time.Second, func() bool { return c1.Stats().Received >= 10 }, "the first call's audio")
	require.Zero(t, c2.Stats().Received)
	rp.sendTone(to2, 660)
	eventually(t, 3*time.Second, func() bool { return c2.Stats().Received >= 10 }, "the second call's audio")
	hangUp(t, []*sipgo.DialogClientSession{d1, d2}, c1, c2)
}

// TestSharedRTPReinviteTaken: on the shared pair, a re-INVITE naming the
// RTP address of another call is answered 488 and changes nothing: the
// call keeps sending to its own peer, the other call keeps its packets.
func TestSharedRTPReinviteTaken(t *testing.T) {
	h := newAnsweringHandler()
	u := startUA(t, h, WithSharedRTP(true))
	rp1, rp2 := newRTPPeer(t, CodecPCMU, 0), newRTPPeer(t, CodecPCMU, 0)
	d1, a1 := newSIPPeer(t).invite(t, u, "2000", peerOffer(1, rp1.port(), CodecPCMU, "sendrecv"))
	c1 := h.call(t)
	d2, a2 := newSIPPeer(t).invite(t, u, "2000", peerOffer(1, rp2.port(), CodecPCMU, "sendrecv"))
	c2 := h.call(t)
	to1, _ := answerAddr(t, a1)
	to2, _ := answerAddr(t, a2)
	require.Equal(t, to1, to2, "both calls are on the shared pair")

	res := reinviteStatus(t, d1, peerOffer(2, rp2.port(), CodecPCMU, "sendrecv"))
	require.Equal(t, 488, res.StatusCode)
	require.Equal(t, "Media Address In Use By Another Call", res.Reason)

	rp1.sendTone(to1, 660)
	eventually(t, 3*time.Second, func() bool { n, _ := rp1.received(); return n >= 10 }, "call 1 still sends to its own peer")
	rp2.sendTone(to2, 660)
	eventually(t, 3*time.Second, func() bool { return c2.Stats().Received >= 10 }, "call 2 keeps its packets")
	require.Zero(t, u.mux.unmatched.Load())
	hangUp(t, []*sipgo.DialogClientSession{d1, d2}, c1, c2)
}

// hangUp sends BYE on each dialog and waits until each call has ended.
func hangUp(t *testing.T, dialogs []*sipgo.DialogClientSession, calls ...*Call) {
	t.Helper()
	for _, d := range dialogs {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		require.NoError(t, d.Bye(ctx))
		cancel()
	}
	for _, c := range calls {
		waitDone(t, c)
	}
}
