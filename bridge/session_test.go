package bridge

import (
	"context"
	"crypto/subtle"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
	"github.com/mediagate/mediagate/sip/siptest"
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

// dialDTMF calls the fixture's UA from a siptest phone offering PCMU and
// telephone-event/8000 (RFC 4733 §2.1), and requires the answer to accept
// it.
func (f *sessionFixture) dialDTMF(t *testing.T) *siptest.Call {
	t.Helper()
	c := dial(t, f.ua, siptest.Options{TelephoneEvent: true})
	require.True(t, c.TelephoneEvent(), "the answer accepts RFC 4733 events: %s", c.Answer())
	return c
}

// press keys keys on phone as RFC 4733 events.
func press(t *testing.T, phone *siptest.Call, keys string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, phone.Press(ctx, keys, siptest.RFC4733))
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
	phone := f.dialDTMF(t)

	require.Eventually(t, func() bool {
		return loudFrames(phone.Last(8000)) >= 10
	}, 5*time.Second, 20*time.Millisecond, "the caller hears the welcome prompt before joining")
	_, err := f.rooms.Get("demo")
	require.ErrorIs(t, err, room.ErrNotFound, "nobody joined before the PIN")

	press(t, phone, "1234#")
	press(t, phone, "4711#")
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
	require.NoError(t, phone.Hangup(ctx))
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
	phone := f.dialDTMF(t)

	press(t, phone, "1234#")
	for range 3 {
		press(t, phone, "9999#")
	}
	select {
	case <-phone.HungUp():
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
	phone := f.dialDTMF(t)
	press(t, phone, "1234#4711#")
	require.Eventually(t, func() bool {
		r, err := f.rooms.Get("demo")
		return err == nil && r.Len() == 1
	}, 5*time.Second, 20*time.Millisecond, "the caller joins room demo")

	f.stop()
	select {
	case <-phone.HungUp():
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
	c, _ := answeredCall(b)
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
