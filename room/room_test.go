package room

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
)

// statusErr is what protocol handlers look for with errors.As.
type statusErr interface {
	HTTPStatus() int
	SIPStatus() int
}

// TestJoinRefused: joins that cannot be served fail with typed errors that
// carry their HTTP and SIP status, and leave the room as it was.
func TestJoinRefused(t *testing.T) {
	listener := func(id string) *fake { return &fake{info: Info{ID: ParticipantID(id), Format: formatL16}} }
	for _, tc := range []struct {
		name       string
		opts       []Option
		prepare    func(*Room)
		join       Participant
		want       error
		http, sipc int
	}{
		{"full", []Option{WithMaxParticipants(2)}, nil, listener("c"), ErrRoomFull, http.StatusConflict, 486},
		{"locked", nil, func(r *Room) { r.SetLocked(true) }, listener("c"), ErrRoomLocked, http.StatusForbidden, 403},
		{"locked at creation", []Option{WithLocked(true)}, nil, listener("c"), ErrRoomLocked, http.StatusForbidden, 403},
		{"duplicate id", nil, nil, listener("a"), ErrParticipantExists, http.StatusConflict, 482},
		{"unknown codec", nil, nil, &fake{info: Info{ID: "c", Format: Format{Codec: "speex"}}}, ErrUnsupportedFormat, http.StatusUnsupportedMediaType, 488},
		{"empty id", nil, nil, listener(""), ErrInvalidParticipant, http.StatusBadRequest, 500},
		{"closed", nil, func(r *Room) { require.NoError(t, r.Close(context.Background())) }, listener("c"), ErrRoomClosed, http.StatusGone, 480},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, c, _ := newTestRoom(t, tc.opts...)
			locked := r.Locked()
			if !locked {
				require.NoError(t, r.Join(listener("a")))
				require.NoError(t, r.Join(listener("b")))
			}
			if tc.prepare != nil {
				tc.prepare(r)
			}
			before := r.Len()
			err := r.Join(tc.join)
			require.ErrorIs(t, err, tc.want)
			var se statusErr
			require.True(t, errors.As(err, &se))
			require.Equal(t, tc.http, se.HTTPStatus())
			require.Equal(t, tc.sipc, se.SIPStatus())
			require.Equal(t, before, r.Len())
			c.run(r, 1)
		})
	}
}

// TestLockAndLimitChanges: unlocking and raising the limit let joins in
// again; participants already in stay when the limit drops.
func TestLockAndLimitChanges(t *testing.T) {
	r, _, _ := newTestRoom(t, WithMaxParticipants(1))
	require.NoError(t, r.Join(&fake{info: Info{ID: "a", Format: formatL16}}))
	require.ErrorIs(t, r.Join(&fake{info: Info{ID: "b", Format: formatL16}}), ErrRoomFull)
	r.SetMaxParticipants(2)
	r.SetLocked(true)
	require.ErrorIs(t, r.Join(&fake{info: Info{ID: "b", Format: formatL16}}), ErrRoomLocked)
	r.SetLocked(false)
	require.NoError(t, r.Join(&fake{info: Info{ID: "b", Format: formatL16}}))
	r.SetMaxParticipants(1)
	require.Equal(t, 2, r.Len())
	require.NoError(t, r.Leave("a"))
	require.ErrorIs(t, r.Join(&fake{info: Info{ID: "c", Format: formatL16}}), ErrRoomFull)
	require.ErrorIs(t, r.Leave("a"), ErrParticipantNotFound)
	require.ErrorIs(t, r.Mute("zz", true), ErrParticipantNotFound)
}

// TestEventOrder: events arrive in the order things happened, end with
// room_closed and a closed channel; a subscriber with a small buffer loses
// the rest, counted, without holding anything up.
func TestEventOrder(t *testing.T) {
	r, c, _ := newTestRoom(t)
	sub := r.SubscribeEvents(32)
	small := r.SubscribeEvents(2)
	a := newPeer(t, "a", 440, 0.2, formatL16)
	b := newPeer(t, "b", 0, 0, formatL16)
	require.NoError(t, r.Join(a))
	require.NoError(t, r.Join(b))
	c.run(r, 2) // a starts speaking
	require.NoError(t, r.Mute("a", true))
	require.NoError(t, r.Mute("a", true)) // no change, no event
	// a stops speaking: muted.
	c.run(r, 1)
	r.SetLocked(true)
	r.SetLocked(false)
	require.NoError(t, r.Mute("a", false))
	c.run(r, 1) // speaking again
	require.NoError(t, r.Leave("a"))
	require.NoError(t, r.Kick("b"))
	c.run(r, 1) // detaches
	require.Equal(t, []error{nil}, a.detached)
	require.Equal(t, []error{ErrParticipantRemoved}, b.detached)
	require.NoError(t, r.Close(context.Background()))

	type ev struct {
		t EventType
		p ParticipantID
	}
	want := []ev{
		{EventJoined, "a"}, {EventJoined, "b"}, {EventSpeakingStarted, "a"},
		{EventMuted, "a"}, {EventSpeakingStopped, "a"}, {EventLocked, ""}, {EventUnlocked, ""},
		{EventUnmuted, "a"}, {EventSpeakingStarted, "a"},
		{EventSpeakingStopped, "a"}, {EventLeft, "a"}, {EventLeft, "b"}, {EventRoomClosed, ""},
	}
	var got []ev
	for e := range sub.C() {
		require.Equal(t, ID("test"), e.Room)
		require.False(t, e.Time.IsZero())
		got = append(got, ev{e.Type, e.Participant})
	}
	require.Equal(t, want, got)
	require.Zero(t, sub.Dropped())

	var first []EventType
	for e := range small.C() {
		first = append(first, e.Type)
	}
	require.Equal(t, []EventType{EventJoined, EventJoined}, first)
	require.Equal(t, uint64(len(want)-2), small.Dropped())
	sub.Close() // after the room closed: harmless
	require.Equal(t, "speaking_started", EventSpeakingStarted.String())
}

// TestParticipantList: names, kinds, speaking state and RFC 6464 levels.
func TestParticipantList(t *testing.T) {
	r, c, _ := newTestRoom(t)
	loud := newPeer(t, "loud", 440, 1.0, formatL16)
	quiet := newPeer(t, "quiet", 440, 0.001, PCMU)
	silent := newPeer(t, "silent", 0, 0, G722)
	for _, p := range []*peer{loud, quiet, silent} {
		require.NoError(t, r.Join(p))
	}
	c.run(r, 3)
	list := r.Participants()
	require.Len(t, list, 3)
	require.Equal(t, ParticipantID("loud"), list[0].ID)
	require.Equal(t, "name loud", list[0].Name)
	require.Equal(t, KindWebRTC, list[0].Kind)
	require.Equal(t, "phone", list[1].Kind.String())
	require.Equal(t, []bool{true, false, false}, []bool{list[0].Speaking, list[1].Speaking, list[2].Speaking})
	// A full-scale sine is -3 dBov; 0.001 of it -63 dBov; silence 127.
	require.Equal(t, []uint8{3, 63, 127}, []uint8{list[0].Level, list[1].Level, list[2].Level})
	require.Equal(t, c.now.Add(-3*media.FrameDuration), list[0].Joined)
}

// TestMixConsumers: a consumer that keeps up gets every tick's full mix; a
// slow one keeps the oldest frames that fit, drops and counts the rest, and
// neither delays the room. Both end with io.EOF when the room closes.
func TestMixConsumers(t *testing.T) {
	r, c, _ := newTestRoom(t)
	require.NoError(t, r.Join(newPeer(t, "a", 440, 0.2, formatL16)))
	fast, slow := r.SubscribeMix(2), r.SubscribeMix(4)
	ctx := context.Background()
	var f MixFrame
	for k := 1; k <= 10; k++ {
		c.run(r, 1)
		require.NoError(t, fast.Read(ctx, &f))
		require.Equal(t, uint64(k), f.Tick)
		require.Equal(t, c.now, f.Time)
		require.InDelta(t, 20*math.Log10(0.2), toneDB(f.PCM[:], 440, media.Rate48k), 0.5, "one frame: 8.8 periods")
	}
	require.Zero(t, fast.Dropped())
	require.Equal(t, uint64(6), slow.Dropped())
	for k := 1; k <= 4; k++ {
		require.True(t, slow.TryRead(&f))
		require.Equal(t, uint64(k), f.Tick)
	}
	require.False(t, slow.TryRead(&f))

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, fast.Read(cancelled, &f), context.Canceled)

	slow.Close()
	c.run(r, 1)
	require.ErrorIs(t, slow.Read(ctx, &f), io.EOF, "closed consumers get nothing more")
	require.NoError(t, r.Close(ctx))
	require.NoError(t, fast.Read(ctx, &f), "queued frames survive the close")
	require.ErrorIs(t, fast.Read(ctx, &f), io.EOF)
	late := r.SubscribeMix(1)
	require.ErrorIs(t, late.Read(ctx, &f), io.EOF)
}

// TestCloseDetachesEveryone: closing a room detaches participants with
// ErrRoomClosed, stops ticking, and makes the controls fail cleanly.
func TestCloseDetachesEveryone(t *testing.T) {
	r, c, _ := newTestRoom(t)
	ps := threeTones(t, r, 0.2, [3]Format{formatL16, PCMU, G722})
	c.run(r, 3)
	require.NoError(t, r.Close(context.Background()))
	<-r.Done()
	for _, p := range ps {
		require.Equal(t, []error{ErrRoomClosed}, p.detached)
	}
	c.run(r, 3)
	require.Len(t, ps[0].pkts, 3, "no ticks after close")
	require.ErrorIs(t, r.Leave("p0"), ErrRoomClosed)
	require.Empty(t, r.Participants())
	require.NoError(t, r.Close(context.Background()), "twice is fine")
}

// TestEncoderFailureRemovesParticipant: a participant whose own encoder
// cannot be built is removed (and told why); the others carry on.
func TestEncoderFailureRemovesParticipant(t *testing.T) {
	boom := errors.New("no more encoders")
	made := 0
	r, c, _ := newTestRoom(t, WithEncoderFactory(func(f Format) (media.Encoder, error) {
		if made++; made > 1 { // the shared stream only
			return nil, boom
		}
		return l16Encoder{}, nil
	}))
	a := newPeer(t, "a", 440, 0.2, formatL16)
	l := newPeer(t, "l", 0, 0, formatL16)
	require.NoError(t, r.Join(a))
	require.NoError(t, r.Join(l))
	c.run(r, 3)
	require.Len(t, a.detached, 1)
	require.ErrorIs(t, a.detached[0], boom)
	require.Len(t, l.pkts, 3)
	require.Equal(t, 1, r.Len())
}

func ExampleRoom_SubscribeMix() {
	r := NewRoom("demo", WithManualTick())
	defer r.Close(context.Background())
	cons := r.SubscribeMix(50) // one second of audio
	defer cons.Close()
	r.Tick(time.Now())
	var f MixFrame
	if cons.TryRead(&f) {
		fmt.Println("tick", f.Tick, "samples", len(f.PCM))
	}
	// Output: tick 1 samples 960
}
