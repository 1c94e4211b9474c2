package rtc

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/require"
)

// TestMixSentDirect: a listener and a publisher whose offers leave the
// DTLS role to the gateway get the room's mix around pion (directSender)
// and hear both publishers at the level a listener that insists on being
// the DTLS server (a=setup:passive) hears them through pion's track.
func TestMixSentDirect(t *testing.T) {
	e := newEnv(t, nil)
	pub := e.join("direct", clientOpts{tone: 440})
	e.join("direct", clientOpts{tone: 660})
	direct := e.join("direct", clientOpts{listen: true})
	passive := e.join("direct", clientOpts{listen: true, offer: func(sdp string) string {
		return strings.ReplaceAll(sdp, "a=setup:actpass", "a=setup:passive")
	}})
	for _, c := range []*client{direct, passive} {
		c.waitFrames(warmup)
	}
	from := direct.received()
	direct.waitFrames(from + measure)
	pfrom := passive.received()
	passive.waitFrames(pfrom + measure)
	for _, tc := range []struct {
		name       string
		c          *client
		from       int
		sendDirect bool
	}{
		{"direct", direct, from, true},
		{"through pion", passive, pfrom, false},
	} {
		w := tc.c.window(tc.from, tc.from+measure)
		l440, l660, l1000 := toneDB(w, 440), toneDB(w, 660), toneDB(w, 1000)
		t.Logf("%s: 440 Hz at %.1f dB, 660 Hz at %.1f dB, 1000 Hz at %.1f dB", tc.name, l440, l660, l1000)
		require.Greater(t, l440, -25.0, tc.name)
		require.InDelta(t, l440, l660, 3.0, tc.name)
		require.GreaterOrEqual(t, min(l440, l660)-l1000, 20.0, tc.name)
		require.Equal(t, tc.sendDirect, e.sendsDirect(tc.c), tc.name)
	}
	require.True(t, e.sendsDirect(pub), "a publisher's mix-minus goes direct too")
}

// sendsDirect reports whether c's session sends its mix around pion. Call
// it once c has received mix packets: the sender is chosen before the
// first (beginSending), and sendMu orders this read after it.
func (e *env) sendsDirect(c *client) bool {
	e.t.Helper()
	p := e.sessionAt(c.location)
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	return p.direct != nil
}

// TestDirectSender: the packets a directSender queues are SRTP a context
// of the same keys opens, numbered and stamped as the track numbers them
// (sequence +1 a packet, timestamp 960 a tick), with the negotiated SSRC
// and payload type; they go to the ICE pair's current remote address; and
// a sender report with the counts so far goes out first and then once a
// second of the sender's clock.
func TestDirectSender(t *testing.T) {
	in := loopbackFilter(t)
	peers := [2]*net.UDPConn{}
	for i := range peers {
		var err error
		peers[i], err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = peers[i].Close() })
		require.NoError(t, peers[i].SetReadDeadline(time.Now().Add(10*time.Second)))
	}
	key, salt := make([]byte, 16), make([]byte, 12)
	for i := range key {
		key[i] = byte(i + 1)
	}
	profile := srtp.ProtectionProfileAeadAes128Gcm
	seal, err := srtp.CreateContext(key, salt, profile)
	require.NoError(t, err)
	open, err := srtp.CreateContext(key, salt, profile)
	require.NoError(t, err)
	clock := time.Unix(1_800_000_000, 0)
	var reports []*rtcp.SenderReport
	d := newDirect(in, 0x1234abcd, 109, func(pkts []rtcp.Packet) error {
		sr := *pkts[0].(*rtcp.SenderReport) // the sender reuses its report
		reports = append(reports, &sr)
		return nil
	})
	d.srtp, d.now = seal, func() time.Time { return clock }
	to := func(i int) netip.AddrPort { return peers[i].LocalAddr().(*net.UDPAddr).AddrPort() }
	first := to(0)
	d.to.Store(&first)

	snd := newSender()
	payload := []byte{0xfc, 1, 2, 3, 4, 5, 6, 7}
	buf := make([]byte, 1500)
	var seq0 uint16
	var ts0 uint32
	for tick := range uint64(120) {
		if tick == 60 {
			second := to(1)
			d.to.Store(&second) // the ICE pair changed
		}
		require.NoError(t, snd.write(d, 1000+tick, payload))
		clock = clock.Add(20 * time.Millisecond)
		n, _, err := peers[tick/60].ReadFromUDP(buf)
		require.NoError(t, err, "tick %d", tick)
		var h rtp.Header
		plain, err := open.DecryptRTP(nil, buf[:n], &h)
		require.NoError(t, err, "tick %d", tick)
		if tick == 0 {
			seq0, ts0 = h.SequenceNumber, h.Timestamp
			require.True(t, h.Marker, "the stream starts a talkspurt")
		}
		require.Equal(t, uint32(0x1234abcd), h.SSRC)
		require.Equal(t, uint8(109), h.PayloadType)
		require.Equal(t, seq0+uint16(tick), h.SequenceNumber)
		require.Equal(t, ts0+uint32(tick)*opusFrameTS, h.Timestamp)
		require.Equal(t, payload, plain[len(plain)-len(payload):])
	}
	require.Len(t, reports, 3, "at 0, 1 and 2 s")
	for i, sr := range reports {
		require.Equal(t, uint32(0x1234abcd), sr.SSRC)
		require.Equal(t, uint32(50*i+1), sr.PacketCount)
		require.Equal(t, uint32(len(payload)*(50*i+1)), sr.OctetCount)
		require.Equal(t, ts0+uint32(50*i)*opusFrameTS, sr.RTPTime)
		at := time.Unix(1_800_000_000+int64(i), 0)
		require.Equal(t, ntpTime(at), sr.NTPTime)
	}
	require.Equal(t, uint64(1_800_000_000+2208988800)<<32, reports[0].NTPTime)
}

// TestAudioOnlyInterceptors: an audio-only session's answer takes no
// transport-wide congestion control (pion's TWCC reporter and NACK
// generator are not built for it), a session with video keeps it for the
// presenter's browser.
func TestAudioOnlyInterceptors(t *testing.T) {
	e := newEnv(t, nil)
	audio := e.join("twcc", clientOpts{listen: true})
	video := e.join("twcc", clientOpts{listen: true, video: true})
	const twcc = "transport-wide-cc"
	require.NotContains(t, e.sessionAt(audio.location).answer, twcc)
	require.Contains(t, e.sessionAt(video.location).answer, twcc)
	audio.waitFrames(warmup)
}

// loopbackFilter is a server's UDP socket on loopback as its sessions
// write to it, closed with the test.
func loopbackFilter(tb testing.TB) *inputFilter {
	tb.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(tb, err)
	in, err := newInputFilter(conn, slog.New(slog.DiscardHandler))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = in.Close() })
	return in
}
