package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media/mediatest"
)

// srtpOffer is peerOffer for PCMU over RTP/SAVP with the given a=crypto
// lines.
func srtpOffer(version, port int, dir string, crypto ...string) []byte {
	o := string(peerOffer(version, port, CodecPCMU, dir))
	o = strings.Replace(o, "RTP/AVP", "RTP/SAVP", 1)
	for _, c := range crypto {
		o += "a=crypto:" + c + "\r\n"
	}
	return []byte(o)
}

// answerCrypto reads the a=crypto attribute of the gateway's answer and
// checks that the stream is RTP/SAVP.
func answerCrypto(t *testing.T, body []byte) cryptoAttr {
	t.Helper()
	var sd sdp.SessionDescription
	require.NoError(t, sd.Unmarshal(body))
	md := sd.MediaDescriptions[0]
	require.Equal(t, "RTP/SAVP", strings.Join(md.MediaName.Protos, "/"))
	v, ok := md.Attribute("crypto")
	require.True(t, ok, "a=crypto in the answer")
	c, err := parseCrypto(v)
	require.NoError(t, err)
	return c
}

func mustContext(t testing.TB, c cryptoAttr) *srtp.Context {
	t.Helper()
	ctx, err := srtp.CreateContext(c.key[:16], c.key[16:], c.suite.profile())
	require.NoError(t, err)
	return ctx
}

// TestSRTPAudioBothWays: a caller offering RTP/SAVP with an unsupported
// suite first and AES_CM_128_HMAC_SHA1_80 second gets RTP/SAVP with that
// line's tag and a key of the gateway's own; with pion/srtp contexts on
// the caller's side a 660 Hz tone goes in and the 1 kHz tone comes out,
// each 20 dB above the other bands. Plain RTP, packets under a wrong key
// and replays are dropped and counted while the tone plays on. A
// re-INVITE with a new caller key re-keys the inbound side and keeps the
// gateway's key; hold and resume keep working.
func TestSRTPAudioBothWays(t *testing.T) {
	h := newAnsweringHandler()
	u := startUA(t, h)
	sp := newSIPPeer(t)
	rp := newRTPPeer(t, CodecPCMU, 0)
	peerKey, err := newLocalCrypto(2, suiteAES80)
	require.NoError(t, err)
	d, answer := sp.invite(t, u, "2000", srtpOffer(1, rp.port(), "sendrecv",
		"1 AES_256_CM_HMAC_SHA1_80 inline:"+strings.Repeat("QUJD", 15)+"QUI=", peerKey.value()))
	to, _ := answerAddr(t, answer)
	ours := answerCrypto(t, answer)
	require.Equal(t, uint32(2), ours.tag)
	require.Equal(t, suiteAES80, ours.suite)
	require.NotEqual(t, peerKey.key, ours.key)
	c := h.call(t)
	rp.srtpTx.Store(mustContext(t, peerKey))
	rp.srtpRx.Store(mustContext(t, ours))
	rp.sendTone(to, 660)
	require.True(t, c.Stats().SRTP)
	hearBoth := func(what string) {
		t.Helper()
		var outDB, inDB float64
		eventually(t, 5*time.Second, func() bool {
			n, got := rp.received()
			if n < 25 || len(got) < 4000 {
				return false
			}
			outDB = toneAbove(got[len(got)-4000:], 1000, 8000)
			return outDB >= 20
		}, what+": the caller decrypts the gateway's 1 kHz tone")
		eventually(t, 5*time.Second, func() bool {
			heard := h.heardSince(max(h.heardLen()-4000, 0))
			if len(heard) < 4000 {
				return false
			}
			inDB = toneAbove(heard, 660, 8000)
			return inDB >= 20
		}, what+": the gateway decrypts the caller's 660 Hz tone")
		t.Logf("%s: 1 kHz out %.1f dB above the other bands, 660 Hz in %.1f dB above (%.1f dBFS)",
			what, outDB, inDB, mediatest.RMSDBFS(h.heardSince(max(h.heardLen()-4000, 0))))
	}
	hearBoth("first key")
	require.Zero(t, rp.unauthentic.Load(), "everything the gateway sent authenticates under its key")

	// Forgeries: plain RTP, SRTP under a wrong key, and one replayed packet
	// (a payload type not negotiated, so its first copy stays out of the
	// audio).
	st0 := c.Stats()
	plain := rtpBytes(0, 100, 16000, false, make([]byte, 160))
	wrongKey, err := newLocalCrypto(2, suiteAES80)
	require.NoError(t, err)
	forged, err := mustContext(t, wrongKey).EncryptRTP(nil, plain, nil)
	require.NoError(t, err)
	other := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 13, SequenceNumber: 7, SSRC: 0x5eed}, Payload: []byte{0x40}}
	ob, err := other.Marshal()
	require.NoError(t, err)
	replayed, err := mustContext(t, peerKey).EncryptRTP(nil, ob, nil)
	require.NoError(t, err)
	for _, b := range [][]byte{plain, forged, replayed, replayed, plain} {
		_, err := rp.conn.WriteToUDPAddrPort(b, to)
		require.NoError(t, err)
	}
	eventually(t, 3*time.Second, func() bool {
		st := c.Stats()
		return st.MalformedBy[DropSRTPAuth]-st0.MalformedBy[DropSRTPAuth] == 3 &&
			st.MalformedBy[DropSRTPReplay]-st0.MalformedBy[DropSRTPReplay] == 1
	}, "forgeries and the replay are dropped and counted")
	require.Equal(t, "srtp_auth", DropSRTPAuth.String())
	require.Equal(t, "srtp_replay", DropSRTPReplay.String())
	hearBoth("after forgeries")

	// Re-key: the caller offers a new key under another tag; the answer
	// keeps the gateway's key under the new tag.
	newKey, err := newLocalCrypto(9, suiteAES80)
	require.NoError(t, err)
	answer = sp.reinvite(t, d, srtpOffer(2, rp.port(), "sendrecv", newKey.value()))
	again := answerCrypto(t, answer)
	require.Equal(t, uint32(9), again.tag)
	require.Equal(t, ours.key, again.key, "the gateway keeps its key")
	rp.srtpTx.Store(mustContext(t, newKey))
	exchangeOver(t, c)
	mark := h.heardLen()
	eventually(t, 5*time.Second, func() bool {
		heard := h.heardSince(mark)
		return len(heard) >= 8000 && toneAbove(heard[len(heard)-4000:], 660, 8000) >= 20
	}, "the caller's tone under its new key")

	// Hold and resume.
	answer = sp.reinvite(t, d, srtpOffer(3, rp.port(), "sendonly", newKey.value()))
	_, dir := answerAddr(t, answer)
	require.Equal(t, "recvonly", dir)
	require.True(t, c.Held())
	exchangeOver(t, c)
	answer = sp.reinvite(t, d, srtpOffer(4, rp.port(), "sendrecv", newKey.value()))
	require.Equal(t, ours.key, answerCrypto(t, answer).key)
	require.False(t, c.Held())
	n0, _ := rp.received()
	eventually(t, 3*time.Second, func() bool { n, _ := rp.received(); return n >= n0+25 }, "audio resumes, still under the gateway's key")
	hearBoth("after resume")

	exchangeOver(t, c)
	// A plain offer in the SRTP call is refused; the call goes on.
	res := reinviteStatus(t, d, peerOffer(5, rp.port(), CodecPCMU, "sendrecv"))
	require.Equal(t, 488, res.StatusCode)
	require.Equal(t, `399 mediagate "SRTP required"`, res.GetHeader("Warning").Value())
	require.True(t, c.Stats().SRTP)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, d.Bye(ctx))
	waitDone(t, c)
	require.Zero(t, rp.unauthentic.Load())
}

// exchangeOver waits until the gateway has the ACK of the last
// re-INVITE, which may cross the next one on UDP (that one would get 500).
func exchangeOver(t *testing.T, c *Call) {
	t.Helper()
	eventually(t, 3*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.reinviting
	}, "the re-invite's ack arrived")
}

// TestSRTPPolicyRefusals: a trunk's SRTP policy refuses what it cannot
// answer with 488 and a Warning saying why, before any handler sees the
// call: plain RTP on a trunk that requires SRTP, SRTP only on a trunk
// with SRTP off, an SRTP offer whose only key has an MKI.
func TestSRTPPolicyRefusals(t *testing.T) {
	key, err := newLocalCrypto(1, suiteAES80)
	require.NoError(t, err)
	tests := []struct {
		name    string
		policy  SRTPPolicy
		offer   []byte
		warning string
	}{
		{"plain to required", SRTPRequired, peerOffer(1, 40000, CodecPCMU, "sendrecv"), `399 mediagate "SRTP required"`},
		{"srtp to off", SRTPOff, srtpOffer(1, 40000, "sendrecv", key.value()), `302 mediagate "Incompatible transport protocol"`},
		{"mki to optional", SRTPOptional, srtpOffer(1, 40000, "sendrecv", key.value()+"|2^31|1:4"),
			`399 mediagate "Unusable SRTP crypto attribute: keys with an mki are not supported"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var handled atomic.Int32
			u := startUA(t, HandlerFunc(func(ctx context.Context, in *IncomingCall) {
				handled.Add(1)
				_, _ = in.Answer()
			}), WithTrunks(Trunk{Name: "carrier", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, SRTP: tt.policy}))
			sp := newSIPPeer(t)
			_, err := sp.dial(u, "2000", tt.offer)
			var de *sipgo.ErrDialogResponse
			require.True(t, errors.As(err, &de), "refused: %v", err)
			require.Equal(t, 488, de.Res.StatusCode)
			require.Equal(t, tt.warning, de.Res.GetHeader("Warning").Value())
			require.Zero(t, handled.Load(), "no handler saw the call")
			require.Zero(t, u.Calls())
		})
	}
}

// TestSRTPOfferlessRequired: an INVITE without an offer on a trunk that
// requires SRTP gets an RTP/SAVP offer with a key; the ACK's answer keys
// the call.
func TestSRTPOfferlessRequired(t *testing.T) {
	r := newRecorder(t)
	r.answer = func(_ context.Context, in *IncomingCall) (*Call, error) { return in.Answer() }
	u := startUA(t, r, WithTrunks(Trunk{Name: "carrier", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, SRTP: SRTPRequired}))
	sp := newSIPPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := sp.dc.Invite(ctx, sip.Uri{Scheme: "sip", User: "2000", Host: "127.0.0.1", Port: u.Port()}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.NoError(t, d.WaitAnswer(ctx, sipgo.AnswerOptions{}))
	ours := answerCrypto(t, d.InviteResponse.Body())
	require.Equal(t, uint32(1), ours.tag)
	peerKey, err := newLocalCrypto(1, suiteAES80)
	require.NoError(t, err)
	ack := sip.NewRequest(sip.ACK, d.InviteResponse.Contact().Address)
	ack.SetBody(srtpOffer(1, 40000, "sendrecv", peerKey.value()))
	ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	require.NoError(t, d.WriteAck(ctx, ack))
	r.wait(t)
	c, err := r.first()
	require.NoError(t, err)
	require.True(t, c.Stats().SRTP)
	require.NoError(t, c.Hangup(ctx))
}

// BenchmarkSRTP: protect one 20 ms G.711 packet as the send path does and
// unprotect it as the receive path does.
func BenchmarkSRTP(b *testing.B) {
	local, err := newLocalCrypto(1, suiteAES80)
	require.NoError(b, err)
	var tx, rx srtpState
	require.NoError(b, tx.set(&local, &local))
	require.NoError(b, rx.set(&local, &local))
	plain := rtpBytes(0, 0, 0, false, make([]byte, 160))
	out := make([]byte, maxRTP+srtpTrailer)
	var hdr rtp.Header
	b.ReportAllocs()
	b.SetBytes(int64(len(plain)))
	for i := range b.N {
		seq := uint16(i)
		plain[2], plain[3] = byte(seq>>8), byte(seq)
		p, err := tx.protectRTP(out, plain)
		if err != nil {
			b.Fatal(err)
		}
		if _, r, ok := rx.unprotectRTP(p, &hdr); !ok {
			b.Fatal(fmt.Sprint("unprotect: ", r))
		}
	}
}

// TestSRTCP: an RTCP compound packet protected under one key unprotects
// to the same bytes under it; a flipped bit, the same packet again, plain
// RTCP and a packet under another key are each refused with the reason
// they are counted by, and a plain call passes RTCP through.
func TestSRTCP(t *testing.T) {
	key, err := newLocalCrypto(1, suiteAES32)
	require.NoError(t, err)
	other, err := newLocalCrypto(1, suiteAES32)
	require.NoError(t, err)
	var tx, rx, stranger srtpState
	require.NoError(t, tx.set(&key, &other))
	require.NoError(t, rx.set(&other, &key))
	require.NoError(t, stranger.set(&other, &other))
	rr := []byte{0x80, 201, 0, 1, 0, 0, 0x12, 0x34}
	p, err := tx.protectRTCP(rr)
	require.NoError(t, err)
	require.Len(t, p, len(rr)+srtpTrailer, "index and an 80-bit tag, also with the 32-bit RTP suite")

	flipped := append([]byte(nil), p...)
	flipped[9] ^= 1
	_, r, ok := rx.unprotectRTCP(flipped)
	require.False(t, ok)
	require.Equal(t, DropSRTPAuth, r)

	got, _, ok := rx.unprotectRTCP(append([]byte(nil), p...))
	require.True(t, ok)
	require.Equal(t, rr, got)
	_, r, ok = rx.unprotectRTCP(append([]byte(nil), p...))
	require.False(t, ok)
	require.Equal(t, DropSRTPReplay, r)

	_, r, ok = rx.unprotectRTCP(append([]byte(nil), rr...))
	require.False(t, ok)
	require.Equal(t, DropSRTPAuth, r, "plain RTCP")
	foreign, err := stranger.protectRTCP([]byte{0x80, 201, 0, 1, 0, 0, 0x56, 0x78}) // a fresh SSRC: no replay
	require.NoError(t, err)
	_, r, ok = rx.unprotectRTCP(foreign)
	require.False(t, ok)
	require.Equal(t, DropSRTPAuth, r, "another key")

	var plain srtpState
	got, _, ok = plain.unprotectRTCP(rr)
	require.True(t, ok)
	require.Equal(t, rr, got)
	require.False(t, plain.secure())
}
