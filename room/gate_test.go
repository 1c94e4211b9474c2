package room

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gateLog is an open gate that admits the rooms in allow, answers the
// others with a MovedError, and counts admissions and releases.
type gateLog struct {
	mu       sync.Mutex
	allow    map[ID]bool
	admitted map[ID]int
	released map[ID]int
	wait     chan struct{} // when set, admissions block until it closes
}

func newGateLog(allow ...ID) *gateLog {
	g := &gateLog{allow: map[ID]bool{}, admitted: map[ID]int{}, released: map[ID]int{}}
	for _, id := range allow {
		g.allow[id] = true
	}
	return g
}

func (g *gateLog) gate(id ID) (func(), error) {
	if g.wait != nil {
		<-g.wait
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.allow[id] {
		return nil, &MovedError{Room: id, Node: "n-b", URL: "http://b.example:8080"}
	}
	g.admitted[id]++
	var once atomic.Bool
	return func() {
		if !once.CompareAndSwap(false, true) {
			panic("release called twice")
		}
		g.mu.Lock()
		g.released[id]++
		g.mu.Unlock()
	}, nil
}

func (g *gateLog) counts(id ID) (admitted, released int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.admitted[id], g.released[id]
}

// TestOpenGate: the gate is asked before a room opens (Join or Create),
// its refusal comes back from both as the error it gave, and its release
// runs once the room has closed, not before.
func TestOpenGate(t *testing.T) {
	c := newClock()
	g := newGateLog("lobby", "board")
	m := newTestManager(t, c, WithOpenGate(g.gate), WithRoomDefaults(WithEmptyTimeout(time.Second)))

	_, err := m.Join("elsewhere", newPeer(t, "a", 0, 0, formatL16))
	var moved *MovedError
	require.ErrorAs(t, err, &moved)
	require.Equal(t, "http://b.example:8080", moved.URL)
	require.Equal(t, 307, moved.HTTPStatus())
	_, err = m.Get("elsewhere")
	require.ErrorIs(t, err, ErrNotFound, "a refused room must not open")
	_, err = m.Create("elsewhere")
	require.ErrorAs(t, err, &moved)

	r, err := m.Join("lobby", newPeer(t, "a", 0, 0, formatL16))
	require.NoError(t, err)
	_, err = m.Join("lobby", newPeer(t, "b", 0, 0, formatL16))
	require.NoError(t, err)
	adm, rel := g.counts("lobby")
	require.Equal(t, 1, adm, "a second join into an open room asks nobody")
	require.Zero(t, rel)

	b, err := m.Create("board")
	require.NoError(t, err)
	_, err = m.Create("board")
	require.ErrorIs(t, err, ErrRoomExists)
	adm, _ = g.counts("board")
	require.Equal(t, 1, adm, "Create of an open room does not ask the gate")

	require.NoError(t, r.Close(context.Background()))
	_, rel = g.counts("lobby")
	require.Equal(t, 1, rel)
	require.NoError(t, b.Close(context.Background()))
	_, rel = g.counts("board")
	require.Equal(t, 1, rel)
}

// TestOpenGateConcurrentFirstJoins: two first joins at once may both be
// admitted; one room opens, and every admission is released, the loser's
// at once and the winner's when the room closes.
func TestOpenGateConcurrentFirstJoins(t *testing.T) {
	c := newClock()
	g := newGateLog("lobby")
	g.wait = make(chan struct{})
	m := newTestManager(t, c, WithOpenGate(g.gate))

	var wg sync.WaitGroup
	rooms := make([]*Room, 2)
	for i, id := range []ParticipantID{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := m.Join("lobby", newPeer(t, string(id), 0, 0, formatL16))
			if err != nil {
				panic(err)
			}
			rooms[i] = r
		}()
	}
	close(g.wait) // both joins may or may not have reached the gate yet

	wg.Wait()
	require.Same(t, rooms[0], rooms[1])
	require.Equal(t, 2, rooms[0].Len())
	adm, rel := g.counts("lobby")
	require.Equal(t, adm-1, rel, "every admission but the open room's is released")
	require.NoError(t, rooms[0].Close(context.Background()))
	adm, rel = g.counts("lobby")
	require.Equal(t, adm, rel)
}

// TestOpenGateUnavailable: ErrUnavailable from the gate reaches the
// caller as 503 on both edges.
func TestOpenGateUnavailable(t *testing.T) {
	m := newTestManager(t, newClock(), WithOpenGate(func(ID) (func(), error) { return nil, ErrUnavailable }))
	_, err := m.Join("lobby", newPeer(t, "a", 0, 0, formatL16))
	require.ErrorIs(t, err, ErrUnavailable)
	var st interface{ SIPStatus() int }
	require.True(t, errors.As(err, &st))
	require.Equal(t, 503, st.SIPStatus())
}

// TestOptionsFor: a room opened by Join gets its own options after the
// defaults; Create's options are its own.
func TestOptionsFor(t *testing.T) {
	m := newTestManager(t, newClock(), WithOptionsFor(func(id ID) []Option {
		if id == "board" {
			return []Option{WithMaxParticipants(1)}
		}
		return nil
	}))
	_, err := m.Join("board", newPeer(t, "a", 0, 0, formatL16))
	require.NoError(t, err)
	_, err = m.Join("board", newPeer(t, "b", 0, 0, formatL16))
	require.ErrorIs(t, err, ErrRoomFull)
	_, err = m.Join("lobby", newPeer(t, "a", 0, 0, formatL16))
	require.NoError(t, err)
	_, err = m.Join("lobby", newPeer(t, "b", 0, 0, formatL16))
	require.NoError(t, err)
}

// TestOptionsForCreate: Create applies the room's own options too, with
// its arguments after them.
func TestOptionsForCreate(t *testing.T) {
	m := newTestManager(t, newClock(), WithOptionsFor(func(ID) []Option {
		return []Option{WithMaxParticipants(1)}
	}))
	_, err := m.Create("board")
	require.NoError(t, err)
	_, err = m.Join("board", newPeer(t, "a", 0, 0, formatL16))
	require.NoError(t, err)
	_, err = m.Join("board", newPeer(t, "b", 0, 0, formatL16))
	require.ErrorIs(t, err, ErrRoomFull)
	_, err = m.Create("lobby", WithMaxParticipants(2))
	require.NoError(t, err)
	_, err = m.Join("lobby", newPeer(t, "a", 0, 0, formatL16))
	require.NoError(t, err)
	_, err = m.Join("lobby", newPeer(t, "b", 0, 0, formatL16))
	require.NoError(t, err)
}
