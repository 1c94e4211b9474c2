package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip/siptest"
)

// samples8k is n milliseconds in samples at 8 kHz.
func samples8k(n int) int { return n * media.Rate8k / 1000 }

// hearsPrompt waits until the caller has received prompt id in full,
// starting at most maxLag samples after sample from, and returns how well
// the prompt (as loaded, 8 kHz) correlates with what arrived there at the
// best lag.
func hearsPrompt(t *testing.T, phone *siptest.Call, prompts *Prompts, id PromptID, from, maxLag int) float64 {
	t.Helper()
	pcm, rate := prompts.Get(English, id)
	require.Equal(t, media.Rate8k, rate, "the shipped prompts are 8 kHz")
	require.GreaterOrEqual(t, from, 0)
	end := from + len(pcm) + maxLag
	waitSamples(t, phone, end, string(id))
	lag, corr := mediatest.BestLag(pcm, phone.PCM(from, end), maxLag)
	t.Logf("%s: at lag %d of at most %d", id, lag, maxLag)
	return corr
}

// waitSamples waits up to 10 s until phone has received n samples, the
// audio of what.
func waitSamples(t *testing.T, phone *siptest.Call, n int, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, phone.WaitSamples(ctx, n), "the caller receives audio while %s plays", what)
}

// TestSessionPromptsInRoom: after the join the caller hears the joining
// prompt over the room (correlation with the prompt's PCM), then the
// room's 660 Hz tone alone. An operator mutes the caller; *6 then unmutes
// it (the IVR learnt of the operator's mute) with the unmuted prompt. A
// recording that starts plays the recording notice. When the room closes
// the caller hears room_closed before the BYE. The room opens only
// while the caller is in the IVR, so its ticks are behind the IVR's
// frames: the caller hears it all the same.
func TestSessionPromptsInRoom(t *testing.T) {
	f := newSessionFixture(t)
	prompts, err := Load("")
	require.NoError(t, err)
	phone := f.dialDTMF(t)
	require.Eventually(t, func() bool {
		return loudFrames(phone.Last(8000)) >= 10
	}, 5*time.Second, 20*time.Millisecond, "the caller hears the welcome prompt")

	other := &toneParticipant{tone: mediatest.Tone{Freq: 660, Amp: 0.1, Rate: media.Rate48k}}
	r, err := f.rooms.Join("demo", other)
	require.NoError(t, err)
	press(t, phone, "1234#4711#")
	var caller room.ParticipantID
	require.Eventually(t, func() bool {
		for _, p := range r.Participants() {
			if p.Kind == room.KindPhone {
				caller = p.ID
			}
		}
		return caller != ""
	}, 5*time.Second, 5*time.Millisecond, "the caller joins room demo")
	// The join happened when '#' arrived, before press returned.
	joined := phone.Received() - samples8k(300)

	corr := hearsPrompt(t, phone, prompts, PromptJoining, joined, samples8k(400))
	t.Logf("joining prompt: correlation %.3f", corr)
	require.GreaterOrEqual(t, corr, 0.8, "the caller hears the joining prompt after the join")

	const window = 4000 // 0.5 s
	require.Eventually(t, func() bool {
		got := phone.Last(window)
		return len(got) == window && mediatest.ToneDB(got, 660, media.Rate8k) > -23 &&
			phoneToneGap(got, 660, 1000) >= 20 && phoneToneGap(got, 660, 440) >= 20
	}, 5*time.Second, 20*time.Millisecond, "then the caller hears the room's tone at its level")

	// An operator mutes the caller; *6 unmutes it.
	require.NoError(t, r.Mute(caller, true))
	pressed := phone.Received()
	press(t, phone, "*6")
	require.Eventually(t, func() bool {
		for _, p := range r.Participants() {
			if p.ID == caller {
				return !p.Muted
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "*6 after an operator's mute unmutes the caller")
	unmuted := hearsPrompt(t, phone, prompts, PromptUnmuted, pressed, samples8k(800))
	t.Logf("unmuted prompt: correlation %.3f", unmuted)
	require.GreaterOrEqual(t, unmuted, 0.8, "the caller hears the unmuted prompt")

	// A recording starts: the notice.
	require.Eventually(t, func() bool {
		return phoneToneGap(phone.Last(window), 660, 1000) >= 20
	}, 5*time.Second, 20*time.Millisecond, "the unmuted prompt ends")
	started := phone.Received()
	r.SetRecording(true)
	notice := hearsPrompt(t, phone, prompts, PromptRecordingNotice, started, samples8k(300))
	t.Logf("recording notice: correlation %.3f", notice)
	require.GreaterOrEqual(t, notice, 0.8, "the caller hears the recording notice when a recording starts")

	// The room closes: room_closed, goodbye, BYE.
	require.Eventually(t, func() bool {
		return phoneToneGap(phone.Last(window), 660, 1000) >= 20
	}, 5*time.Second, 20*time.Millisecond, "the recording notice ends")
	closed := phone.Received()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, f.rooms.CloseRoom(ctx, "demo"))
	bye := hearsPrompt(t, phone, prompts, PromptRoomClosed, closed, samples8k(300))
	t.Logf("room closed prompt: correlation %.3f", bye)
	require.GreaterOrEqual(t, bye, 0.8, "the caller hears why the call ends")
	select {
	case <-phone.HungUp():
	case <-time.After(10 * time.Second):
		t.Fatal("no BYE after the room closed")
	}
	require.NoError(t, f.wait(t))
}
