package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
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
	provisional []int
	final       int
	dialog      *sipgo.DialogClientSession
	media       netip.AddrPort // the gateway's RTP address, when answered
}

// dial calls number at u offering PCMU and telephone-event with RTP at
// rtpPort, and acknowledges a 2xx.
func (c *testCaller) dial(t *testing.T, u *sip.UA, number string, rtpPort int) dialResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer := fmt.Appendf(nil, "v=0\r\no=caller 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"+
		"a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n", rtpPort)
	to := sipgosip.Uri{Scheme: "sip", User: number, Host: "127.0.0.1", Port: u.Port()}
	d, err := c.dc.Invite(ctx, to, offer, sipgosip.NewHeader("Content-Type", "application/sdp"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	var mu sync.Mutex
	res := dialResult{dialog: d}
	err = d.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sipgosip.Response) error {
		mu.Lock()
		defer mu.Unlock()
		res.provisional = append(res.provisional, int(r.StatusCode))
		return nil
	}})
	mu.Lock()
	defer mu.Unlock()
	var refused *sipgo.ErrDialogResponse
	if errors.As(err, &refused) {
		res.final = int(refused.Res.StatusCode)
		return res
	}
	require.NoError(t, err)
	res.final = int(d.InviteResponse.StatusCode)
	require.NoError(t, d.Ack(ctx))
	var sd sdp.SessionDescription
	require.NoError(t, sd.Unmarshal(d.InviteResponse.Body()))
	ip := netip.MustParseAddr(sd.ConnectionInformation.Address.Address)
	res.media = netip.AddrPortFrom(ip, uint16(sd.MediaDescriptions[0].MediaName.Port.Value))
	return res
}

// TestCallHandler: the call flow against a real UA. A number without a
// rule gets 404 and no ringing; a fixed-room number rings (180), is
// answered and joins its room at once, the caller hearing
// first_participant; a second call to the full room gets 486 Busy Here; a
// number whose rule says German hears the German welcome.
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
	u := startTestUA(t, NewCallHandler(d, SessionDeps{Prompts: prompts, Rooms: rooms, Directory: fakeDirectory{}}))

	unknown := newTestCaller(t).dial(t, u, "3000", newTestRTP(t).port())
	require.Equal(t, 404, unknown.final)
	require.NotContains(t, unknown.provisional, 180, "an unknown number does not ring")

	phone := newTestRTP(t)
	fixed := newTestCaller(t).dial(t, u, "2000", phone.port())
	require.Equal(t, 200, fixed.final)
	require.Contains(t, fixed.provisional, 180, "180 Ringing before the answer")
	require.Eventually(t, func() bool { return board.Len() == 1 }, 5*time.Second, 5*time.Millisecond,
		"the fixed-room number joins the room without the IVR's questions")
	corr := hearsPrompt(t, phone, prompts, PromptFirstParticipant, 0, samples8k(1000))
	t.Logf("first participant prompt: correlation %.3f", corr)
	require.GreaterOrEqual(t, corr, 0.8, "the caller hears that it is the first participant")

	busy := newTestCaller(t).dial(t, u, "2000", newTestRTP(t).port())
	require.Equal(t, 486, busy.final, "the room is full")

	german := newTestRTP(t)
	ivr := newTestCaller(t).dial(t, u, "2001", german.port())
	require.Equal(t, 200, ivr.final)
	welcome, _ := prompts.Get(German, PromptWelcome)
	require.Eventually(t, func() bool { return german.count() >= len(welcome)+samples8k(1000) },
		10*time.Second, 20*time.Millisecond)
	_, de := mediatest.BestLag(welcome, german.span(0, len(welcome)+samples8k(1000)), samples8k(1000))
	enWelcome, _ := prompts.Get(English, PromptWelcome)
	_, en := mediatest.BestLag(enWelcome, german.span(0, len(enWelcome)+samples8k(1000)), samples8k(1000))
	t.Logf("welcome: German %.3f, English %.3f", de, en)
	require.GreaterOrEqual(t, de, 0.8, "the rule's language")
	require.Less(t, en, 0.5)
	require.Equal(t, 1, board.Len(), "the IVR caller is not in the room yet")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, fixed.dialog.Bye(ctx))
	require.NoError(t, ivr.dialog.Bye(ctx))
	require.Eventually(t, func() bool { return board.Len() == 0 }, 5*time.Second, 20*time.Millisecond)
}
