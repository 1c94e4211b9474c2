package bridge

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
	"github.com/mediagate/mediagate/sip/siptest"
)

// TestDispatcherRoute: a dialed number finds its own rule, else the
// catch-all, else (only when there are no rules) the IVR; rules without a
// language get the default.
func TestDispatcherRoute(t *testing.T) {
	rules := map[sip.Number]Rule{
		"2000":         {Room: "board", Lang: German},
		"2001":         {Room: "lobby", NeedsPIN: true},
		"+493012345":   {},
		"+49301234567": {Lang: English},
	}
	withCatchAll := map[sip.Number]Rule{"2000": {Room: "board"}, CatchAll: {Lang: German}}
	for _, tc := range []struct {
		name   string
		rules  map[sip.Number]Rule
		dialed sip.Number
		want   Rule
		err    error
	}{
		{"no rules: IVR in the default language", nil, "12345", Rule{Lang: English}, nil},
		{"no rules, no number", nil, "", Rule{Lang: English}, nil},
		{"fixed room in German", rules, "2000", Rule{Room: "board", Lang: German}, nil},
		{"fixed room with PIN, default language", rules, "2001", Rule{Room: "lobby", NeedsPIN: true, Lang: English}, nil},
		{"IVR rule", rules, "+493012345", Rule{Lang: English}, nil},
		{"exact match only", rules, "493012345", Rule{}, ErrUnknownNumber},
		{"prefix is no match", rules, "+4930123456", Rule{}, ErrUnknownNumber},
		{"unknown", rules, "3000", Rule{}, ErrUnknownNumber},
		{"empty", rules, "", Rule{}, ErrUnknownNumber},
		{"a caller dialing * gets no special rule", rules, "*", Rule{}, ErrUnknownNumber},
		{"catch-all", withCatchAll, "3000", Rule{Lang: German}, nil},
		{"own rule before catch-all", withCatchAll, "2000", Rule{Room: "board", Lang: English}, nil},
		{"catch-all takes *", withCatchAll, "*", Rule{Lang: German}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewDispatcher(English, tc.rules).Route(tc.dialed)
			require.ErrorIs(t, err, tc.err)
			require.Equal(t, tc.want, got)
			if err != nil {
				require.NotContains(t, err.Error(), "3000", "the number is masked")
			}
		})
	}
}

// sipStatus is a foreign error carrying a status, as package sip's trunk
// rejection does.
type sipStatus int

func (s sipStatus) Error() string  { return fmt.Sprintf("status %d", int(s)) }
func (s sipStatus) SIPStatus() int { return int(s) }

// TestRefusal: the bridge's SIP error mapping, wrapped errors included.
func TestRefusal(t *testing.T) {
	for _, tc := range []struct {
		err        error
		code       int
		retryAfter int
	}{
		{fmt.Errorf("%w: 3***", ErrUnknownNumber), 404, 0},
		{fmt.Errorf("join board (5 participants): %w", room.ErrRoomFull), 486, 0},
		{fmt.Errorf("join board: %w", room.ErrRoomLocked), 403, 0},
		{fmt.Errorf("room board: %w", room.ErrNotFound), 404, 0},
		{fmt.Errorf("join board: %w", room.ErrRoomClosed), 480, 0},
		{room.ErrManagerClosed, 503, RetryAfter},
		{sip.ErrClosed, 503, RetryAfter},
		{fmt.Errorf("answer: %w", sip.ErrNoPorts), 503, RetryAfter},
		{sip.ErrCanceled, 487, 0},
		{sip.ErrNoCommonCodec, 488, 0},
		{fmt.Errorf("trunk: %w", sipStatus(403)), 403, 0},
		{sipStatus(503), 503, RetryAfter},
		{sipStatus(200), 500, 0},
		{sipStatus(700), 500, 0},
		{errors.New("disk on fire"), 500, 0},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			got := Refusal(tc.err)
			require.Equal(t, tc.code, got.Code)
			require.Equal(t, tc.retryAfter, got.RetryAfter)
		})
	}
}

// dialResult is what a caller saw of its INVITE.
type dialResult struct {
	codes []int         // the status codes of the responses, in order, the final one last
	final int           // the final status code
	call  *siptest.Call // the call, when answered
}

// dialNumber calls number at u from a new siptest phone offering PCMU and
// telephone-event, recording the responses to its INVITE.
func dialNumber(t *testing.T, u *sip.UA, number string) dialResult {
	t.Helper()
	var res dialResult
	call, err := tryDial(t, u, siptest.Options{User: number, TelephoneEvent: true,
		OnResponse: func(code int, _ string) { res.codes = append(res.codes, code) }})
	if refused, ok := errors.AsType[*siptest.RefusedError](err); ok {
		require.NotEmpty(t, res.codes)
		require.Equal(t, refused.Code, res.codes[len(res.codes)-1], "the refusal is the last response")
		res.final = refused.Code
		return res
	}
	require.NoError(t, err)
	require.NotEmpty(t, res.codes)
	res.final, res.call = res.codes[len(res.codes)-1], call
	return res
}

// TestCallHandler: the call flow against a real UA. A number without a
// rule gets 404 and no ringing; a fixed-room number rings (180), is
// answered and joins its room at once, the caller hearing
// first_participant; a second call to the full room gets 486 Busy Here; a
// number whose rule says German hears the German welcome. OnCall hears of
// each answered call's start (with the rule's room, none for the IVR) and
// end (with the room the caller was in).
func TestCallHandler(t *testing.T) {
	prompts, err := Load("")
	require.NoError(t, err)
	rooms := room.NewManager()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, rooms.Close(ctx))
	})
	board, err := rooms.Create("board", room.WithMaxParticipants(1), room.WithEmptyTimeout(-1))
	require.NoError(t, err)
	d := NewDispatcher(English, map[sip.Number]Rule{
		"2000": {Room: "board"},
		"2001": {Lang: German},
	})
	calls := make(chan CallEvent, 16)
	u := startTestUA(t, NewCallHandler(d, SessionDeps{Prompts: prompts, Rooms: rooms, Directory: fakeDirectory{},
		OnCall: func(ev CallEvent) { calls <- ev }}))

	unknown := dialNumber(t, u, "3000")
	require.Equal(t, 404, unknown.final)
	require.NotContains(t, unknown.codes, 180, "an unknown number does not ring")

	fixed := dialNumber(t, u, "2000")
	require.Equal(t, 200, fixed.final)
	require.Contains(t, fixed.codes, 180, "180 Ringing before the answer")
	phone := fixed.call
	require.Eventually(t, func() bool { return board.Len() == 1 }, 5*time.Second, 5*time.Millisecond,
		"the fixed-room number joins the room without the IVR's questions")
	corr := hearsPrompt(t, phone, prompts, PromptFirstParticipant, 0, samples8k(1000))
	t.Logf("first participant prompt: correlation %.3f", corr)
	require.GreaterOrEqual(t, corr, 0.8, "the caller hears that it is the first participant")

	busy := dialNumber(t, u, "2000")
	require.Equal(t, 486, busy.final, "the room is full")

	ivr := dialNumber(t, u, "2001")
	require.Equal(t, 200, ivr.final)
	german := ivr.call
	welcome, _ := prompts.Get(German, PromptWelcome)
	enWelcome, _ := prompts.Get(English, PromptWelcome)
	waitSamples(t, german, max(len(welcome), len(enWelcome))+samples8k(1000), "the German welcome")
	_, de := mediatest.BestLag(welcome, german.PCM(0, len(welcome)+samples8k(1000)), samples8k(1000))
	_, en := mediatest.BestLag(enWelcome, german.PCM(0, len(enWelcome)+samples8k(1000)), samples8k(1000))
	t.Logf("welcome: German %.3f, English %.3f", de, en)
	require.GreaterOrEqual(t, de, 0.8, "the rule's language")
	require.Less(t, en, 0.5)
	require.Equal(t, 1, board.Len(), "the IVR caller is not in the room yet")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, fixed.call.Hangup(ctx))
	require.NoError(t, ivr.call.Hangup(ctx))
	require.Eventually(t, func() bool { return board.Len() == 0 }, 5*time.Second, 20*time.Millisecond)

	byCall := map[sip.CallID][]CallEvent{}
	for range 4 { // two answered calls, each started and ended
		select {
		case ev := <-calls:
			byCall[ev.Info.ID] = append(byCall[ev.Info.ID], ev)
		case <-time.After(5 * time.Second):
			require.FailNow(t, "OnCall not called four times", "got %v", byCall)
		}
	}
	require.Len(t, byCall, 2)
	for _, evs := range byCall {
		require.Len(t, evs, 2)
		start, end := evs[0], evs[1]
		require.False(t, start.Ended)
		require.True(t, end.Ended)
		require.Positive(t, end.Duration)
		require.Equal(t, start.Room, end.Room, "the fixed room both times; none for the IVR caller, who never joined")
		if start.Info.Dialed == "2000" {
			require.Equal(t, room.ID("board"), start.Room)
		} else {
			require.Empty(t, start.Room)
		}
	}
	require.Empty(t, calls, "unanswered calls are not reported")
}

// TestCallHandlerSetDispatcher: replaced rules route the next call, while
// a call admitted before stays in the room its rule gave it.
func TestCallHandlerSetDispatcher(t *testing.T) {
	prompts, err := Load("")
	require.NoError(t, err)
	rooms := room.NewManager()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, rooms.Close(ctx))
	})
	alpha, err := rooms.Create("alpha", room.WithEmptyTimeout(-1))
	require.NoError(t, err)
	beta, err := rooms.Create("beta", room.WithEmptyTimeout(-1))
	require.NoError(t, err)
	h := NewCallHandler(NewDispatcher(English, map[sip.Number]Rule{"2000": {Room: "alpha"}}),
		SessionDeps{Prompts: prompts, Rooms: rooms, Directory: fakeDirectory{}})
	u := startTestUA(t, h)

	first := dialNumber(t, u, "2000")
	require.Equal(t, 200, first.final)
	require.Eventually(t, func() bool { return alpha.Len() == 1 }, 5*time.Second, 5*time.Millisecond)

	h.SetDispatcher(NewDispatcher(English, map[sip.Number]Rule{"2000": {Room: "beta"}}))
	second := dialNumber(t, u, "2000")
	require.Equal(t, 200, second.final)
	require.Eventually(t, func() bool { return beta.Len() == 1 }, 5*time.Second, 5*time.Millisecond,
		"the next call follows the new rule")
	require.Equal(t, 1, alpha.Len(), "the call in progress keeps its room")
	require.Equal(t, 404, dialNumber(t, u, "2001").final)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, first.call.Hangup(ctx))
	require.NoError(t, second.call.Hangup(ctx))
}
