package bridge

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
)

// fakeDirectory knows one conference: number 1234 is room demo, PIN 4711.
type fakeDirectory struct{}

func (fakeDirectory) Lookup(number string) (room.ID, bool, bool) {
	if number == "1234" {
		return "demo", true, true
	}
	return "", false, false
}

func (fakeDirectory) CheckPIN(id room.ID, pin string) bool {
	return id == "demo" && subtle.ConstantTimeCompare([]byte(pin), []byte("4711")) == 1
}

// sessionFixture is a UA whose handler answers and runs RunCall, the room
// manager it joins, and the session's result.
type sessionFixture struct {
	ua     *sip.UA
	rooms  *room.Manager
	result chan error
	// stop ends the session's ctx, like a gateway shutting down.
	stop context.CancelFunc
}

func newSessionFixture(t *testing.T) *sessionFixture {
	t.Helper()
	prompts, err := Load("")
	require.NoError(t, err)
	base, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	f := &sessionFixture{rooms: room.NewManager(), result: make(chan error, 1), stop: stop}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, f.rooms.Close(ctx))
	})
	deps := SessionDeps{Prompts: prompts, Lang: English, Rooms: f.rooms, Directory: fakeDirectory{}}
	f.ua = startTestUA(t, sip.HandlerFunc(func(ctx context.Context, in *sip.IncomingCall) {
		c, err := in.Answer()
		if err != nil {
			f.result <- err
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(base, cancel)()
		f.result <- RunCall(ctx, c, deps)
	}))
	return f
}

// wait returns the session's result.
func (f *sessionFixture) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.result:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
		return nil
	}
}

// callDTMF dials u like testCaller.call but offers telephone-event/8000 as
// payload type 101 besides PCMU (RFC 4733 §2.1), and requires the answer
// to accept it.
func (c *testCaller) callDTMF(t *testing.T, u *sip.UA, rtpPort int) (*sipgo.DialogClientSession, netip.AddrPort) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer := fmt.Appendf(nil, "v=0\r\no=caller 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"+
		"a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n", rtpPort)
	to := sipgosip.Uri{Scheme: "sip", User: "2000", Host: "127.0.0.1", Port: u.Port()}
	d, err := c.dc.Invite(ctx, to, offer, sipgosip.NewHeader("Content-Type", "application/sdp"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.NoError(t, d.WaitAnswer(ctx, sipgo.AnswerOptions{}))
	require.NoError(t, d.Ack(ctx))
	body := d.InviteResponse.Body()
	require.Contains(t, strings.ToLower(string(body)), "telephone-event/8000", "the answer accepts RFC 4733 events")
	var sd sdp.SessionDescription
	require.NoError(t, sd.Unmarshal(body))
	require.Len(t, sd.MediaDescriptions, 1)
	ip := netip.MustParseAddr(sd.ConnectionInformation.Address.Address)
	return d, netip.AddrPortFrom(ip, uint16(sd.MediaDescriptions[0].MediaName.Port.Value))
}

// dtmfSender is the caller's keypad: it sends keys as RFC 4733 telephone
// events on the caller's RTP socket, keeping the RTP timestamp and sequence
// running across calls of send, so each key is a new event (§2.5.1.1).
type dtmfSender struct {
	r   *testRTP
	to  netip.AddrPort
	pkt rtp.Packet
}

func newDTMFSender(r *testRTP, to netip.AddrPort) *dtmfSender {
	return &dtmfSender{r: r, to: to, pkt: rtp.Packet{Header: rtp.Header{
		Version: 2, PayloadType: 101, SSRC: 0x4733, Timestamp: 1000}}}
}

// send sends keys (payload type 101, 100 ms each, 60 ms apart), one
// packet per 20 ms tick as planned by media.TelephoneEventPackets.
func (s *dtmfSender) send(t *testing.T, keys string) {
	t.Helper()
	const interval = 160 // 20 ms at 8 kHz
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	plan := make([]media.TelephoneEventPacket, 0, 16)
	for _, k := range keys {
		d, err := media.ParseDigit(k)
		require.NoError(t, err)
		start := s.pkt.Timestamp
		plan = media.TelephoneEventPackets(plan[:0], d, start, 800, interval, 10)
		at := uint32(0)
		for _, p := range plan {
			for ; at < p.SendAt; at += interval {
				<-tick.C
			}
			s.pkt.Timestamp, s.pkt.Marker, s.pkt.Payload = p.Timestamp, p.Marker, p.Payload[:]
			b, err := s.pkt.Marshal()
			require.NoError(t, err)
			_, err = s.r.conn.WriteToUDPAddrPort(b, s.to)
			require.NoError(t, err)
			s.pkt.SequenceNumber++
		}
		for range 3 { // a pause between keys
			<-tick.C
		}
		s.pkt.Timestamp = start + at + 4*interval
	}
}

// loudFrames counts the 20 ms frames (160 samples at 8 kHz) of pcm whose
// level is above -40 dBFS.
func loudFrames(pcm []int16) int {
	n := 0
	for i := 0; i+160 <= len(pcm); i += 160 {
		if mediatest.RMSDBFS(pcm[i:i+160]) > -40 {
			n++
		}
	}
	return n
}

// TestSessionJoinsRoom: a caller that hears the welcome prompt, keys
// 1234# and PIN 4711# as RFC 4733 events ends up as a phone participant of
// room demo; hanging up ends the session and empties the room.
func TestSessionJoinsRoom(t *testing.T) {
	f := newSessionFixture(t)
	phone := newTestRTP(t)
	d, to := newTestCaller(t).callDTMF(t, f.ua, phone.port())

	require.Eventually(t, func() bool {
		return loudFrames(phone.last(8000)) >= 10
	}, 5*time.Second, 20*time.Millisecond, "the caller hears the welcome prompt before joining")
	_, err := f.rooms.Get("demo")
	require.ErrorIs(t, err, room.ErrNotFound, "nobody joined before the PIN")

	keys := newDTMFSender(phone, to)
	keys.send(t, "1234#")
	keys.send(t, "4711#")
	require.Eventually(t, func() bool {
		r, err := f.rooms.Get("demo")
		if err != nil {
			return false
		}
		ps := r.Participants()
		return len(ps) == 1 && ps[0].Kind == room.KindPhone && ps[0].Format == room.PCMU
	}, 5*time.Second, 20*time.Millisecond, "the caller joins room demo")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, d.Bye(ctx))
	require.NoError(t, f.wait(t))
	require.Eventually(t, func() bool {
		r, err := f.rooms.Get("demo")
		return err != nil || r.Len() == 0
	}, 5*time.Second, 20*time.Millisecond, "the caller left the room")
}

// TestSessionWrongPIN: three wrong PINs end the call with a BYE from the
// gateway, and nobody is in the room.
func TestSessionWrongPIN(t *testing.T) {
	f := newSessionFixture(t)
	phone := newTestRTP(t)
	caller := newTestCaller(t)
	_, to := caller.callDTMF(t, f.ua, phone.port())

	keys := newDTMFSender(phone, to)
	keys.send(t, "1234#")
	for range 3 {
		keys.send(t, "9999#")
	}
	select {
	case <-caller.byes:
	case <-time.After(30 * time.Second):
		t.Fatal("three wrong PINs sent no BYE")
	}
	require.NoError(t, f.wait(t))
	_, err := f.rooms.Get("demo")
	require.ErrorIs(t, err, room.ErrNotFound, "nobody joined")
}

// TestSessionContextEnds: when the session's ctx ends (shutdown) while the
// caller is in the room, the gateway hangs up with a BYE, the caller leaves
// the room and RunCall returns.
func TestSessionContextEnds(t *testing.T) {
	f := newSessionFixture(t)
	phone := newTestRTP(t)
	caller := newTestCaller(t)
	_, to := caller.callDTMF(t, f.ua, phone.port())
	keys := newDTMFSender(phone, to)
	keys.send(t, "1234#4711#")
	require.Eventually(t, func() bool {
		r, err := f.rooms.Get("demo")
		return err == nil && r.Len() == 1
	}, 5*time.Second, 20*time.Millisecond, "the caller joins room demo")

	f.stop()
	select {
	case <-caller.byes:
	case <-time.After(10 * time.Second):
		t.Fatal("ending the ctx sent no BYE")
	}
	require.NoError(t, f.wait(t))
	r, err := f.rooms.Get("demo")
	if err == nil {
		require.Zero(t, r.Len(), "the caller left the room")
	}
}

// BenchmarkSessionTick measures the per-tick cost of a caller still in the
// IVR: a prompt frame, 48→8 kHz resampling, PCMU encoding and the send.
func BenchmarkSessionTick(b *testing.B) {
	prompts, err := Load("")
	require.NoError(b, err)
	phone := newTestRTP(b)
	c, _, _ := answeredCall(b, phone)
	s, err := newSession(c, SessionDeps{Prompts: prompts, Lang: English, Rooms: room.NewManager(),
		Directory: fakeDirectory{}})
	require.NoError(b, err)
	b.Cleanup(s.close)
	welcome := prompts.Get48k(English, PromptWelcome)
	b.ReportAllocs()
	for b.Loop() {
		if !s.player.Playing() {
			s.player.Start(welcome, 1)
		}
		s.onTick()
	}
}
