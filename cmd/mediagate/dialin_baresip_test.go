package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// speechSeconds is the length of the speech file baresip sends: longer
// than any call of these tests, as baresip hangs up when its source file
// ends.
const speechSeconds = 33

// TestDialInBaresip: baresip (G.711 µ-law, its microphone an 8 kHz speech
// file) dials in to mediagate, listens to the IVR's questions and keys
// the conference number and the PIN as RFC 4733 events (ctrl_tcp sndcode);
// it joins room demo, where a pion participant sends 660 Hz. What baresip
// heard holds the welcome and the questions for the number and the PIN, in
// that order, each correlating with the prompt's audio, then the 660 Hz
// tone at least 20 dB above every other band probed, and no such tone
// before; the pion participant hears baresip's speech (cross-correlation
// ≥ 0.7 with the source, after G.711, the mixer, Opus and resampling).
func TestDialInBaresip(t *testing.T) {
	t.Parallel()
	speech := mediatest.Speech(t, media.Rate8k, speechSeconds)
	prompts, err := bridge.Load("")
	require.NoError(t, err)
	g := startDialIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pion, token := joinToneBot(ctx, t, g)

	phone := startBaresip(t, baresipOptions{codecs: "PCMU",
		source: writeTempWAV(t, "speech8k.wav", speech, media.Rate8k), rate: media.Rate8k})
	started := phone.dial(t, g.sip, dialedURI)
	g.logs.await(t, 5*time.Second, "call answered", `codec="PCMU/8000`, "telephone_event=true")

	// The caller hears each question to its end, then keys the answer.
	g.logs.await(t, 10*time.Second, "play(enter_number")
	listenTo(ctx, t, prompts, bridge.PromptEnterNumber)
	phone.do(t, "sndcode", dialNumber+"#")
	g.logs.await(t, 10*time.Second, "play(enter_pin")
	listenTo(ctx, t, prompts, bridge.PromptEnterPIN)
	phone.do(t, "sndcode", demoPIN+"#")
	g.logs.await(t, 10*time.Second, "session: joined", "room="+demoRoom)
	require.Len(t, participants(t, g.base, token), 2, "the pion participant and the phone")

	al, delay := hearsSource(ctx, t, pion, speech, started)
	t.Logf("pion participant hears baresip's speech: correlation %.3f at %.2f s of the source, %v from the phone (counted from the call's establishment)",
		al.corr, float64(al.offset)/media.Rate8k, delay.Round(time.Millisecond))
	require.GreaterOrEqual(t, al.corr, 0.7, "the speech the pion participant received does not match baresip's")
	require.Less(t, delay, 800*time.Millisecond, "the phone's voice reaches the room late")

	phone.do(t, "hangup", "")
	phone.await(t, "CALL_CLOSED", 5*time.Second)
	rec, rate := phone.stop(t)
	require.Equal(t, media.Rate8k, rate)
	t.Logf("baresip recorded %.2f s", float64(len(rec))/float64(rate))

	// The prompts, in order.
	end := 0
	for _, id := range []bridge.PromptID{bridge.PromptWelcome, bridge.PromptEnterNumber, bridge.PromptEnterPIN} {
		p := prompts.Prompt(bridge.English, id)
		require.Equal(t, rate, p.Rate)
		at, corr := findPrompt(rec, p.PCM)
		require.GreaterOrEqual(t, at, 0, "recording shorter than %s", id)
		level := mediatest.RMSDBFS(rec[at : at+len(p.PCM)])
		t.Logf("phone heard %s at %.2f s (%.2f s long): correlation %.3f, level %.1f dBFS",
			id, float64(at)/float64(rate), p.Duration().Seconds(), corr, level)
		require.GreaterOrEqual(t, corr, 0.8, "%s not in what the phone heard", id)
		require.Greater(t, level, -35.0, "%s too quiet", id)
		require.GreaterOrEqual(t, at, end, "%s heard before the prompt ahead of it ended", id)
		end = at + len(p.PCM)
	}

	// The room's tone after the join (the PIN's digits take 1.2 s after
	// the question's end; allow 3 s), and none before.
	after := rec[min(end+3*rate, len(rec)):max(len(rec)-rate/5, 0)]
	require.GreaterOrEqual(t, len(after), 2*rate, "under 2 s of the room before the hang-up")
	level, margin, worst := toneMargin(after, toneHz, rate)
	t.Logf("phone hears the room's %d Hz at %.1f dB, %.1f dB above %.0f Hz, over the last %.2f s",
		toneHz, level, margin, worst, float64(len(after))/float64(rate))
	require.GreaterOrEqual(t, margin, float64(toneMarginDB), "the room's tone is not what the phone hears")
	require.Greater(t, level, -20.0, "the room's tone comes and goes: %s", toneTimeline(rec, toneHz, rate))
	// One long window: a steady tone adds up in it, speech does not.
	before := mediatest.ToneDB(rec[:end], toneHz, rate)
	t.Logf("%d Hz during the IVR: %.1f dB", toneHz, before)
	require.Less(t, before, -40.0, "the phone heard the room before it joined")
}

// TestDialInBaresipWrongPIN: baresip keys the right conference number and
// then three wrong PINs (typing ahead of the prompts, which stop for
// digits); the gateway says wrong_pin and goodbye and hangs up: baresip
// reports the call closed by its peer, its recording ends with the
// wrong-PIN and goodbye prompts, and nobody joined.
func TestDialInBaresipWrongPIN(t *testing.T) {
	t.Parallel()
	speech := mediatest.Speech(t, media.Rate8k, speechSeconds)
	prompts, err := bridge.Load("")
	require.NoError(t, err)
	g := startDialIn(t)

	phone := startBaresip(t, baresipOptions{codecs: "PCMU",
		source: writeTempWAV(t, "speech8k.wav", speech, media.Rate8k), rate: media.Rate8k})
	phone.dial(t, g.sip, dialedURI)
	phone.do(t, "sndcode", dialNumber+"#1111#2222#3333#")
	closed := phone.await(t, "CALL_CLOSED", 30*time.Second)
	require.Equal(t, "Connection reset by peer", closed.Param, "baresip did not see the gateway hang up")
	g.logs.await(t, 5*time.Second, "session: hang up", "reason=pin-failed")
	require.Len(t, g.logs.grep("lookup("+dialNumber+")"), 1)
	require.Len(t, g.logs.grep("check-pin("), 3)
	require.Empty(t, g.logs.grep("session: joined"))

	rec, rate := phone.stop(t)
	require.Equal(t, media.Rate8k, rate)
	goodbye := prompts.Prompt(bridge.English, bridge.PromptGoodbye).PCM
	at, corr := findPrompt(rec, goodbye)
	require.GreaterOrEqual(t, at, 0, "recording shorter than the goodbye")
	tail := float64(len(rec)-at-len(goodbye)) / float64(rate)
	t.Logf("phone heard goodbye at %.2f s of %.2f s: correlation %.3f; the call ended %.2f s after it",
		float64(at)/float64(rate), float64(len(rec))/float64(rate), corr, tail)
	require.GreaterOrEqual(t, corr, 0.8, "goodbye not in what the phone heard")
	require.Less(t, tail, 1.5, "the call went on after the goodbye")

	wrong := prompts.Prompt(bridge.English, bridge.PromptWrongPIN).PCM
	wat, wcorr := findPrompt(rec[:at], wrong)
	require.GreaterOrEqual(t, wat, 0)
	gap := float64(at-wat-len(wrong)) / float64(rate)
	t.Logf("phone heard wrong_pin at %.2f s: correlation %.3f, %.2f s before goodbye", float64(wat)/float64(rate), wcorr, gap)
	require.GreaterOrEqual(t, wcorr, 0.8, "wrong_pin not in what the phone heard")
	require.Less(t, gap, 0.6, "goodbye does not follow the last wrong_pin")
}

// TestDialInWidebandCodecs: baresip calls with G.722 and with Opus (whose
// telephone-event baresip offers at 8 kHz), sending a 1 kHz tone from a
// file at the codec's rate, keys number and PIN, and joins room demo: the
// pion participant hears the phone's tone, and the phone (decoding at the
// codec's rate) hears the pion participant's 660 Hz, each at least 20 dB
// above every other band probed, once the joining prompt (spoken over the
// ducked room) has ended.
func TestDialInWidebandCodecs(t *testing.T) {
	t.Parallel()
	prompts, err := bridge.Load("")
	require.NoError(t, err)
	joining := prompts.Prompt(bridge.English, bridge.PromptJoining)
	joiningFrames := len(joining.PCM) * 50 / joining.Rate
	for _, tc := range []struct {
		name, codecs, answered string
		rate                   int
	}{
		{"G722", "G722", `codec="G722/8000 pt 9"`, media.Rate16k},
		{"opus", "opus/48000/2", `codec="opus/48000`, media.Rate48k},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := startDialIn(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			pion, _ := joinToneBot(ctx, t, g)
			tone := mediatest.Sine(phoneToneHz, 0.3, tc.rate, 40*tc.rate)
			phone := startBaresip(t, baresipOptions{codecs: tc.codecs,
				source: writeTempWAV(t, "tone.wav", tone, tc.rate), rate: tc.rate})
			phone.dial(t, g.sip, dialedURI)
			g.logs.await(t, 5*time.Second, "call answered", tc.answered, "telephone_event=true")
			phone.do(t, "sndcode", dialNumber+"#"+demoPIN+"#")
			g.logs.await(t, 15*time.Second, "session: joined", "room="+demoRoom)

			level, margin, worst := hearsTone(ctx, t, pion, phoneToneHz)
			t.Logf("pion participant hears the phone's %d Hz at %.1f dB, %.1f dB above %.0f Hz", phoneToneHz, level, margin, worst)
			// The phone hears the joining prompt over the ducked room, then
			// the room alone: 2 s of it after the prompt.
			waitFrames(ctx, t, pion, joiningFrames+100)

			level, margin, worst = hangUpHearingRoom(t, phone, tc.rate)
			t.Logf("phone hears the room's %d Hz at %.1f dB, %.1f dB above %.0f Hz", toneHz, level, margin, worst)
			require.GreaterOrEqual(t, margin, float64(toneMarginDB), "the room's tone is not what the phone hears")
			require.Greater(t, level, -40.0)
		})
	}
}

// hangUpHearingRoom hangs the phone up, stops it and measures the room's
// toneHz in the last 1.3 s of what it heard (its decoder's rate must be
// rate): the level, the margin above every other band probed and the
// strongest of those.
func hangUpHearingRoom(t *testing.T, phone *baresip, rate int) (level, margin, worst float64) {
	t.Helper()
	phone.do(t, "hangup", "")
	phone.await(t, "CALL_CLOSED", 5*time.Second)
	rec, got := phone.stop(t)
	require.Equal(t, rate, got, "baresip decodes at the codec's rate")
	require.Greater(t, len(rec), 2*rate)
	return toneMargin(rec[len(rec)-3*rate/2:len(rec)-rate/5], toneHz, rate)
}
