package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/rtc/rtctest"
	"github.com/mediagate/mediagate/sip/siptest"
)

// TestDialInInBandDTMF: a G.711 phone whose offer has no telephone-event
// keys the conference number and PIN as in-band tones only (over a 1 kHz
// tone it sends between the keys) and gets into room demo: the gateway's
// answer has no telephone-event either, the IVR looks up 1001 and joins
// the room, the phone hears the pion participant's 660 Hz and the pion
// participant hears the phone's tone.
func TestDialInInBandDTMF(t *testing.T) {
	t.Parallel()
	g := startDialIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pion, token := joinToneBot(ctx, t, g)

	call, err := siptest.NewPhone(t).Dial(ctx, g.sip, siptest.Options{Codec: siptest.PCMU, User: dialedURI})
	require.NoError(t, err)
	require.False(t, call.TelephoneEvent(), "the answer offers telephone-event: %s", call.Answer())
	g.logs.await(t, 5*time.Second, "call answered", `codec="PCMU/8000`, "telephone_event=false")
	call.PlayTone(phoneToneHz, 0.3)
	require.NoError(t, call.Press(ctx, dialNumber+"#", siptest.InBand))
	g.logs.await(t, 5*time.Second, "lookup("+dialNumber+")")
	require.NoError(t, call.Press(ctx, demoPIN+"#", siptest.InBand))
	g.logs.await(t, 5*time.Second, "session: joined", "room="+demoRoom)
	require.Len(t, participants(t, g.base, token), 2, "the pion participant and the phone")

	level, margin, worst := hearsTone(ctx, t, pion, phoneToneHz)
	t.Logf("pion participant hears the phone's %d Hz at %.1f dB, %.1f dB above %.0f Hz", phoneToneHz, level, margin, worst)
	level, margin, worst = phoneHearsTone(ctx, t, call, toneHz)
	t.Logf("phone hears the room's %d Hz at %.1f dB, %.1f dB above %.0f Hz", toneHz, level, margin, worst)
	require.NoError(t, call.Err())
}

// TestDialInDuplicateDTMF: a phone that reports every key press twice, as
// RFC 4733 events and as a SIP INFO request, gets into room demo with
// number 1001 and PIN 4711: each press counts once. Counted twice, the
// number would read 11000011; the repeated keys (00, 11) show that a
// second press of the same key still counts. The # after the number goes
// only as events and the one after the PIN only as INFO, so each way
// is shown to arrive on its own.
func TestDialInDuplicateDTMF(t *testing.T) {
	t.Parallel()
	g := startDialIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	call, err := siptest.NewPhone(t).Dial(ctx, g.sip,
		siptest.Options{Codec: siptest.PCMU, TelephoneEvent: true, User: dialedURI})
	require.NoError(t, err)
	require.True(t, call.TelephoneEvent(), "the answer refuses telephone-event: %s", call.Answer())
	g.logs.await(t, 5*time.Second, "call answered", "telephone_event=true")
	require.NoError(t, call.Press(ctx, dialNumber, siptest.RFC4733|siptest.INFO))
	require.NoError(t, call.Press(ctx, "#", siptest.RFC4733))
	lookup := g.logs.await(t, 5*time.Second, "lookup(")
	require.Contains(t, lookup, "lookup("+dialNumber+")")
	require.NoError(t, call.Press(ctx, demoPIN, siptest.RFC4733|siptest.INFO))
	require.NoError(t, call.Press(ctx, "#", siptest.INFO))
	g.logs.await(t, 5*time.Second, "session: joined", "room="+demoRoom)
	require.Len(t, g.logs.grep("lookup("), 1)
	require.Len(t, g.logs.grep("check-pin("), 1)
	require.Empty(t, g.logs.grep("play(wrong_"))

	token, err := rtctest.PageToken(ctx, g.base, demoRoom, "Observer", demoPIN)
	require.NoError(t, err)
	require.Len(t, participants(t, g.base, token), 1, "the phone is in the room")
	require.NoError(t, call.Err())
}

// phoneHearsTone waits until the last half second call has received holds
// freq at least toneMarginDB above every other probed band, and returns
// the figures of that half second.
func phoneHearsTone(ctx context.Context, tb testing.TB, call *siptest.Call, freq float64) (level, margin, worst float64) {
	tb.Helper()
	window, step := call.Rate()/2, media.SamplesPerFrame(call.Rate())
	for n := call.Received() + window; ; n += step {
		require.NoError(tb, call.WaitSamples(ctx, n),
			"%.0f Hz not heard: last %.1f dB, %.1f dB above %.0f Hz", freq, level, margin, worst)
		level, margin, worst = toneMargin(call.PCM(n-window, n), freq, call.Rate())
		if margin >= toneMarginDB && level > -40 {
			return level, margin, worst
		}
	}
}
