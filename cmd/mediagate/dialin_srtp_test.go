package main

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/sip/siptest"
)

// TestDialInSRTP: on a trunk with srtp: required (set through the
// environment), a plain RTP/AVP offer gets 488 with Warning 399 "SRTP
// required" and reaches no IVR; baresip with mediaenc=srtp-mand (it
// offers RTP/SAVP with an SDES key and accepts nothing else) calls in,
// keys number and PIN and joins room demo: the pion participant hears the
// phone's 1 kHz, the phone hears the room's 660 Hz, each 20 dB above
// every other band probed, and the gateway logged the call as SRTP,
// dropping nothing but a few unprotected keep-alives. The node warned at start that the trunk requires
// SRTP without SIP over TLS, and no SDES key reached its log.
func TestDialInSRTP(t *testing.T) {
	t.Parallel()
	prompts, err := bridge.Load("")
	require.NoError(t, err)
	joining := prompts.Prompt(bridge.English, bridge.PromptJoining)
	joiningFrames := len(joining.PCM) * 50 / joining.Rate
	g := startDialIn(t, `MEDIAGATE_SIP_TRUNKS={"carrier": {"cidrs": ["127.0.0.0/8"], "srtp": "required"}}`)
	g.logs.await(t, 5*time.Second, "trunk requires srtp but sip runs without tls", "trunk=carrier")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Plain RTP is refused before the IVR.
	_, err = siptest.NewPhone(t).Dial(ctx, g.sip, siptest.Options{Codec: siptest.PCMU, User: dialedURI})
	var refused *siptest.RefusedError
	require.True(t, errors.As(err, &refused), "a plain offer was not refused: %v", err)
	require.Equal(t, 488, refused.Code)
	require.Equal(t, `399 mediagate "SRTP required"`, refused.Warning)
	g.logs.await(t, 5*time.Second, "invite refused", "code=488", "srtp required")
	require.Empty(t, g.logs.grep("session: action"), "the refused call reached the IVR")

	// baresip with mandatory SRTP.
	pion, _ := joinToneBot(ctx, t, g)
	tone := mediatest.Sine(phoneToneHz, 0.3, media.Rate8k, 40*media.Rate8k)
	phone := startBaresip(t, baresipOptions{codecs: "PCMU", mediaenc: "srtp-mand",
		source: writeTempWAV(t, "tone.wav", tone, media.Rate8k), rate: media.Rate8k})
	phone.dial(t, g.sip, dialedURI)
	g.logs.await(t, 5*time.Second, "call answered", `codec="PCMU/8000`, "srtp=true")
	phone.do(t, "sndcode", dialNumber+"#"+demoPIN+"#")
	g.logs.await(t, 15*time.Second, "session: joined", "room="+demoRoom)

	level, margin, worst := hearsTone(ctx, t, pion, phoneToneHz)
	t.Logf("pion participant hears the SRTP phone's %d Hz at %.1f dB, %.1f dB above %.0f Hz", phoneToneHz, level, margin, worst)
	require.GreaterOrEqual(t, margin, float64(toneMarginDB), "the phone's tone did not reach the room")
	waitFrames(ctx, t, pion, joiningFrames+100)

	level, margin, worst = hangUpHearingRoom(t, phone, media.Rate8k)
	t.Logf("SRTP phone hears the room's %d Hz at %.1f dB, %.1f dB above %.0f Hz", toneHz, level, margin, worst)
	require.GreaterOrEqual(t, margin, float64(toneMarginDB), "the room's tone is not what the phone hears")
	require.Greater(t, level, -40.0)

	// What the gateway dropped failed SRTP checks, no framing: baresip
	// sends its RTCP APP keep-alives ("PING") unprotected, which count as
	// unauthenticated, and may repeat the final RFC 4733 packet of a key
	// with one sequence number (RFC 2833 allowed it), which SRTP drops as
	// a replay (RFC 3711 §3.3.2). The audio packets all authenticated:
	// unauthenticated ones stay under 1 % of those received.
	ended := g.logs.await(t, 5*time.Second, "call ended", "srtp_auth=")
	t.Logf("gateway: %s", ended[strings.Index(ended, "rx="):])
	m := regexp.MustCompile(`rx=(\d+) .*srtp_auth=(\d+) srtp_replay=(\d+)`).FindStringSubmatch(ended)
	require.NotNil(t, m, ended)
	rx, _ := strconv.Atoi(m[1])
	unauth, _ := strconv.Atoi(m[2])
	require.Greater(t, rx, 250, "the gateway received the phone's audio")
	require.Less(t, unauth*100, rx, "packets of the SRTP call failed authentication")
	for _, line := range g.logs.grep("malformed media packets dropped") {
		require.Regexp(t, `reason=srtp_(auth|replay) `, line, "a malformed packet, not an SRTP refusal")
	}
	for _, line := range g.logs.grep("inline:") {
		require.NotRegexp(t, `inline:[A-Za-z0-9+/]{20}`, line, "an SDES key in the log")
	}
	require.False(t, strings.Contains(g.logs.text(), "a=crypto:1 AES"), "an a=crypto line in the log")
}
