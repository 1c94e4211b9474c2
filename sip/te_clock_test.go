package sip

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/sip/siptest"
)

// TestNegotiateTelephoneEventClock: telephone-event at the codec's clock
// rate is preferred; an offer that has it only at another rate (Opus with
// telephone-event/8000, as baresip sends) gets that one, answered at the
// rate offered (RFC 3264 §6.1: the answer keeps the offer's rtpmap).
func TestNegotiateTelephoneEventClock(t *testing.T) {
	for _, tc := range []struct {
		name, m string
		attrs   []string
		tePT    int
		teRate  int
	}{
		{"opus, 8 kHz events only", "m=audio 4000 RTP/AVP 96 101",
			[]string{"a=rtpmap:96 opus/48000/2", "a=rtpmap:101 telephone-event/8000"}, 101, 8000},
		{"opus, 8 kHz events before 48 kHz ones", "m=audio 4000 RTP/AVP 96 101 110",
			[]string{"a=rtpmap:96 opus/48000/2", "a=rtpmap:101 telephone-event/8000", "a=rtpmap:110 telephone-event/48000"}, 110, 48000},
		{"PCMU, 48 kHz events before 8 kHz ones", "m=audio 4000 RTP/AVP 0 110 101",
			[]string{"a=rtpmap:110 telephone-event/48000", "a=rtpmap:101 telephone-event/8000"}, 101, 8000},
		{"PCMU, no events", "m=audio 4000 RTP/AVP 0", nil, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sd, err := parseSDP(offer(append([]string{tc.m}, tc.attrs...)...))
			require.NoError(t, err)
			rm, err := negotiate(sd, DefaultCodecs, SRTPOptional)
			require.NoError(t, err)
			require.Equal(t, tc.tePT, rm.tePT)
			require.Equal(t, tc.teRate, rm.teRate)
			answer, err := buildAnswer(localMedia{addr: netip.MustParseAddr("127.0.0.1"), port: 30000}, sd, rm)
			require.NoError(t, err)
			if tc.tePT < 0 {
				require.NotContains(t, string(answer), "telephone-event")
				return
			}
			require.Contains(t, string(answer), "telephone-event/"+map[int]string{8000: "8000", 48000: "48000"}[tc.teRate])
			require.Equal(t, 1, strings.Count(string(answer), "telephone-event"), "one event format in %s", answer)
		})
	}
}

// TestOpusCallKeysWith8kEvents: a phone that offers Opus with
// telephone-event/8000 alone keys its digits as RFC 4733 events, and the
// call delivers each press once.
func TestOpusCallKeysWith8kEvents(t *testing.T) {
	calls := make(chan *Call, 1)
	u := startUA(t, HandlerFunc(func(_ context.Context, in *IncomingCall) {
		if c, err := in.Answer(); err == nil {
			calls <- c
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	gw := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(u.Port()))
	phone, err := siptest.NewPhone(t).Dial(ctx, gw,
		siptest.Options{Codec: siptest.Opus, TelephoneEvent: true, TelephoneEventRate: 8000})
	require.NoError(t, err)
	require.True(t, phone.TelephoneEvent(), "the answer takes telephone-event/8000: %s", phone.Answer())
	var c *Call
	select {
	case c = <-calls:
	case <-ctx.Done():
		t.Fatal("no call answered")
	}
	require.Equal(t, CodecOpus, c.Codec().Name)

	require.NoError(t, phone.Press(ctx, "1001#", siptest.RFC4733))
	var got []rune
	for len(got) < 5 {
		select {
		case d := <-c.DTMF():
			require.Equal(t, DTMFRFC4733, d.Source)
			got = append(got, d.Digit.Rune())
		case <-ctx.Done():
			t.Fatalf("digits received: %q", string(got))
		}
	}
	require.Equal(t, "1001#", string(got))
	select {
	case d := <-c.DTMF():
		t.Fatalf("a sixth press: %v", d.Digit)
	default:
	}
	require.Zero(t, c.Stats().UnknownPT, "every packet had a negotiated payload type")
}
