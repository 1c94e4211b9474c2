package room

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
)

// newTestManager returns a manager whose rooms tick manually on c's times.
func newTestManager(t *testing.T, c *clock, opts ...ManagerOption) *Manager {
	t.Helper()
	enc := &encoders{}
	all := append([]ManagerOption{WithRoomDefaults(WithManualTick(), WithClock(c.Now), WithEncoderFactory(enc.factory))}, opts...)
	m := NewManager(all...)
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })
	return m
}

// TestGracePeriod: a room with nobody left closes once it has been empty
// for its grace period, not a tick earlier; a join in between keeps it;
// the next join to the same ID opens a fresh room.
func TestGracePeriod(t *testing.T) {
	c := newClock()
	m := newTestManager(t, c, WithRoomDefaults(WithEmptyTimeout(2*time.Second)))
	a := newPeer(t, "a", 0, 0, formatL16)
	r, err := m.Join("lobby", a)
	require.NoError(t, err)
	sub := r.SubscribeEvents(8)
	c.run(r, 5)
	require.NoError(t, r.Leave("a"))
	c.run(r, 1) // detaches a; the room is empty from this tick
	require.Equal(t, []error{nil}, a.detached)
	c.run(r, 99) // 1.98 s empty
	_, err = m.Get("lobby")
	require.NoError(t, err)

	// Someone joins and leaves again: the grace period starts over.
	require.NoError(t, r.Join(newPeer(t, "b", 0, 0, formatL16)))
	c.run(r, 1)
	require.NoError(t, r.Leave("b"))
	c.run(r, 100) // detach tick + 1.98 s
	_, err = m.Get("lobby")
	require.NoError(t, err)
	c.run(r, 1) // 2 s
	select {
	case <-r.Done():
	default:
		t.Fatal("room still open 2 s after it emptied")
	}
	_, err = m.Get("lobby")
	require.ErrorIs(t, err, ErrNotFound)
	var last Event
	for e := range sub.C() {
		last = e
	}
	require.Equal(t, EventRoomClosed, last.Type)
	require.Empty(t, m.List())

	again, err := m.Join("lobby", newPeer(t, "a", 0, 0, formatL16))
	require.NoError(t, err)
	require.NotSame(t, r, again)
}

// TestManagerCreate: explicit rooms carry their own options, cannot be
// created twice, and without auto-create joining an unknown room fails.
func TestManagerCreate(t *testing.T) {
	c := newClock()
	m := newTestManager(t, c, WithAutoCreate(false))
	_, err := m.Join("nope", newPeer(t, "a", 0, 0, formatL16))
	require.ErrorIs(t, err, ErrNotFound)

	r, err := m.Create("board", WithMaxParticipants(1), WithEmptyTimeout(-1))
	require.NoError(t, err)
	_, err = m.Create("board")
	require.ErrorIs(t, err, ErrRoomExists)
	_, err = m.Join("board", newPeer(t, "a", 0, 0, formatL16))
	require.NoError(t, err)
	_, err = m.Join("board", newPeer(t, "b", 0, 0, formatL16))
	require.ErrorIs(t, err, ErrRoomFull)
	require.NoError(t, r.Leave("a"))
	c.run(r, 5000) // 100 s empty: a negative grace period keeps it open
	got, err := m.Get("board")
	require.NoError(t, err)
	require.Same(t, r, got)

	_, err = m.Create("annex")
	require.NoError(t, err)
	require.Equal(t, []ID{"annex", "board"}, []ID{m.List()[0].ID(), m.List()[1].ID()})
	require.NoError(t, m.CloseRoom(context.Background(), "annex"))
	require.ErrorIs(t, m.CloseRoom(context.Background(), "annex"), ErrNotFound)
}

// TestManagerCloseStopsRooms: with real ticker goroutines, rooms mix on
// their own; Manager.Close detaches everyone and waits for every goroutine
// (goleak in TestMain checks none is left), including a room that closed
// itself just before.
func TestManagerCloseStopsRooms(t *testing.T) {
	enc := &encoders{}
	m := NewManager(WithRoomDefaults(WithEncoderFactory(enc.factory), WithEmptyTimeout(0)))
	got := make(chan Packet, 1)
	detached := make(chan error, 1)
	src := tone(440, 0.2)
	p := &fake{
		info: Info{ID: "a", Format: formatL16},
		read: func(dst *media.Frame) bool { src.Fill(dst[:]); return true },
		write: func(pkt Packet) bool {
			select {
			case got <- Packet{Tick: pkt.Tick}:
			default:
			}
			return true
		},
		detached: func(err error) { detached <- err },
	}
	r, err := m.Join("live", p)
	require.NoError(t, err)
	select {
	case pkt := <-got:
		require.NotZero(t, pkt.Tick)
	case <-time.After(10 * time.Second):
		t.Fatal("no mix from the room's own ticker")
	}

	// A second room that empties at once closes itself on its next tick.
	q := &fake{info: Info{ID: "q", Format: formatL16}}
	self, err := m.Join("brief", q)
	require.NoError(t, err)
	require.NoError(t, self.Leave("q"))
	select {
	case <-self.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("empty room with no grace period did not close")
	}

	require.NoError(t, m.Close(context.Background()))
	require.ErrorIs(t, <-detached, ErrRoomClosed)
	<-r.Done()
	_, err = m.Join("live", p)
	require.ErrorIs(t, err, ErrManagerClosed)
	_, err = m.Create("new")
	require.ErrorIs(t, err, ErrManagerClosed)
}

// TestConcurrentControls: joins, leaves, mutes, lists and subscriptions from
// several goroutines while the room ticks on its own; run with -race.
func TestConcurrentControls(t *testing.T) {
	enc := &encoders{}
	m := NewManager(WithRoomDefaults(WithEncoderFactory(enc.factory)))
	defer func() { require.NoError(t, m.Close(context.Background())) }()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			src := tone(300+100*float64(g), 0.1)
			var mu sync.Mutex // the fake's source is used by the mixer goroutine
			for i := range 30 {
				id := ParticipantID(fmt.Sprintf("g%d-%d", g, i))
				p := &fake{info: Info{ID: id, Format: formatL16}, read: func(dst *media.Frame) bool {
					mu.Lock()
					defer mu.Unlock()
					src.Fill(dst[:])
					return true
				}}
				r, err := m.Join("busy", p)
				require.NoError(t, err)
				require.NoError(t, r.Mute(id, i%2 == 0))
				_ = r.Participants()
				sub := r.SubscribeEvents(1)
				cons := r.SubscribeMix(1)
				require.NoError(t, r.Leave(id))
				sub.Close()
				cons.Close()
			}
		})
	}
	wg.Wait()
}

// TestOnOpen: the manager tells of every room it opens, by Create or by a
// Join, before anyone is in it, so an event subscriber made then sees the
// first join; rooms already open are not reported again.
func TestOnOpen(t *testing.T) {
	c := newClock()
	type opened struct {
		id  ID
		len int
		sub *EventSub
	}
	var got []opened
	m := newTestManager(t, c, WithOnOpen(func(r *Room) {
		got = append(got, opened{r.ID(), r.Len(), r.SubscribeEvents(4)})
	}))
	_, err := m.Create("board")
	require.NoError(t, err)
	r, err := m.Join("lobby", newPeer(t, "a", 0, 0, formatL16))
	require.NoError(t, err)
	_, err = m.Join("lobby", newPeer(t, "b", 0, 0, formatL16))
	require.NoError(t, err)
	_, err = m.Create("board")
	require.ErrorIs(t, err, ErrRoomExists)

	require.Len(t, got, 2)
	require.Equal(t, ID("board"), got[0].id)
	require.Equal(t, ID("lobby"), got[1].id)
	require.Zero(t, got[1].len, "reported before the first participant is in")
	require.Equal(t, 2, r.Len())
	ev := <-got[1].sub.C()
	require.Equal(t, EventJoined, ev.Type)
	require.Equal(t, ParticipantID("a"), ev.Participant)
}

// TestSetEmptyTimeout: a room kept open while empty (negative grace) gets
// a grace period later, counted from when it emptied, and closes then; a
// participant in it keeps it open meanwhile.
func TestSetEmptyTimeout(t *testing.T) {
	c := newClock()
	m := newTestManager(t, c)
	r, err := m.Create("board", WithEmptyTimeout(-1))
	require.NoError(t, err)
	require.NoError(t, r.Join(newPeer(t, "a", 0, 0, formatL16)))
	r.SetEmptyTimeout(time.Second)
	c.run(r, 100) // 2 s, not empty
	_, err = m.Get("board")
	require.NoError(t, err, "open while someone is in it")
	require.NoError(t, r.Leave("a"))
	c.run(r, 50) // detach tick + 0.98 s
	_, err = m.Get("board")
	require.NoError(t, err)
	c.run(r, 1)
	select {
	case <-r.Done():
	default:
		t.Fatal("room still open 1 s after it emptied")
	}
}
