package stream

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
)

// errTestStale is the test fence's answer for a stale epoch, as
// cluster.ErrStaleEpoch is the real one's.
var errTestStale = errors.New("stale epoch")

// errTestBackend is the test fence's answer when it cannot tell.
var errTestBackend = errors.New("redis: connection refused")

// testFence is Options.Fence for tests: it answers what set says and
// remembers what it was asked.
type testFence struct {
	mu    sync.Mutex
	err   error
	calls int
	asked map[room.ID]uint64
}

func newTestFence() *testFence { return &testFence{asked: map[room.ID]uint64{}} }

func (f *testFence) fence() Fence {
	return Fence{
		Check: func(_ context.Context, r room.ID, epoch uint64) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls++
			f.asked[r] = epoch
			return f.err
		},
		Stale: func(err error) bool { return errors.Is(err, errTestStale) },
	}
}

func (f *testFence) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *testFence) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fencedOptions are testOptions with fence f at epoch 12, short backoff,
// and live destinations asking f every interval.
func fencedOptions(ev *events, f *testFence, interval time.Duration) Options {
	o := testOptions(ev)
	o.Epoch, o.Fence, o.FenceInterval = 12, f.fence(), interval
	o.BackoffMin, o.BackoffMax = 50*time.Millisecond, 100*time.Millisecond
	return o
}

// TestStartWithStaleEpochRefused: New and Add refuse a stale epoch
// (ErrStale, 409); New closes the sources it was given.
func TestStartWithStaleEpochRefused(t *testing.T) {
	t.Parallel()
	f := newTestFence()
	f.set(errTestStale)
	ev := newEvents()
	mix, video := newMixFeed(), newVideoFeed()
	_, err := New(mix, video, fencedOptions(ev, f, time.Hour))
	require.ErrorIs(t, err, ErrStale)
	require.ErrorIs(t, err, errTestStale)
	var he interface{ HTTPStatus() int }
	require.ErrorAs(t, err, &he)
	require.Equal(t, 409, he.HTTPStatus())
	for _, ch := range []chan struct{}{mix.closed, video.closed} {
		select {
		case <-ch:
		default:
			t.Fatal("source not closed")
		}
	}
	require.Equal(t, map[room.ID]uint64{"test": 12}, f.asked)

	f.set(nil)
	eg, err := New(newMixFeed(), nil, fencedOptions(ev, f, time.Hour))
	require.NoError(t, err)
	defer eg.Close()
	f.set(errTestStale)
	hole := newBlackHole(t)
	_, err = eg.Add(context.Background(), Destination{URL: "rtmp://" + hole.l.Addr().String() + "/live/secretkey"})
	require.ErrorIs(t, err, ErrStale)
	require.NotContains(t, err.Error(), "secretkey")
	require.Empty(t, eg.Status().Destinations)
	require.Zero(t, hole.accepted.Load())
}

// TestFenceOutageHoldsConnectionsBack: while the fence cannot tell, New
// and Add go ahead but a destination dials nobody, backing off with
// ErrFenceUnavailable; once the fence confirms the epoch it goes live; once
// the epoch is stale it is fenced.
func TestFenceOutageHoldsConnectionsBack(t *testing.T) {
	t.Parallel()
	ng := startNginx(t, nginxOpts{})
	f := newTestFence()
	f.set(errTestBackend)
	ev := newEvents()
	mix := newMixFeed()
	eg, err := New(mix, nil, fencedOptions(ev, f, time.Hour))
	require.NoError(t, err)
	defer eg.Close()
	feedInBackground(t, mix, 20)
	id, err := eg.Add(context.Background(), Destination{URL: ng.url("outage")})
	require.NoError(t, err)
	for range 3 {
		e := ev.await(t, id, StateBackoff, 5*time.Second)
		require.ErrorIs(t, e.Err, ErrFenceUnavailable)
		require.ErrorIs(t, e.Err, errTestBackend)
	}
	st, err := eg.Destination(id)
	require.NoError(t, err)
	require.Zero(t, st.Bytes)
	require.Zero(t, st.Reconnects, "no dial yet")
	require.Empty(t, ng.recordings("outage"), "nothing published while ownership is unknown")
	require.NotContains(t, ng.log(), "publish: name='outage'")

	f.set(nil)
	ev.await(t, id, StateLive, 5*time.Second)
	require.Equal(t, 1, strings.Count(ng.log(), "publish: name='outage'"), ng.log())
}

// TestStaleEpochStopsReconnects: nginx restarts while the node has lost
// the room; the destination backs off as for any drop, asks the fence
// before reconnecting, and ends fenced: nginx sees no second publish.
func TestStaleEpochStopsReconnects(t *testing.T) {
	t.Parallel()
	ng := startNginx(t, nginxOpts{})
	f := newTestFence()
	ev := newEvents()
	mix := newMixFeed()
	eg, err := New(mix, nil, fencedOptions(ev, f, time.Hour)) // only connections ask
	require.NoError(t, err)
	defer eg.Close()
	feedInBackground(t, mix, 20)
	id, err := eg.Add(context.Background(), Destination{URL: ng.url("fenced")})
	require.NoError(t, err)
	ev.await(t, id, StateLive, 5*time.Second)
	require.Eventually(t, func() bool { st, _ := eg.Destination(id); return st.Bytes > 10000 }, 5*time.Second, 10*time.Millisecond)

	f.set(errTestStale) // another node took the room over
	asked := f.count()
	ng.kill()
	ng.start()
	e := ev.await(t, id, StateBackoff, 3*time.Second)
	require.ErrorIs(t, e.Err, ErrDisconnected)
	e = ev.await(t, id, StateFenced, 3*time.Second)
	require.ErrorIs(t, e.Err, ErrStale)
	require.ErrorIs(t, e.Err, errTestStale)
	require.Greater(t, f.count(), asked)

	st, err := eg.Destination(id)
	require.NoError(t, err)
	require.Equal(t, StateFenced, st.State)
	require.Contains(t, st.LastError, "room ownership lost")
	require.Zero(t, st.Reconnects, "no dial after the drop")
	<-destDone(eg, id) // ended: nothing can dial any more
	require.Len(t, ng.recordings("fenced"), 1, "one publish, before the restart: %s", ng.log())
	require.Equal(t, 1, strings.Count(ng.log(), "publish: name='fenced'"), ng.log())
	require.NoError(t, eg.Close())
	require.Equal(t, []State{StateConnecting, StateLive, StateBackoff, StateConnecting, StateFenced}, ev.states(id),
		"fenced is final: closing the egress leaves it")
}

// TestStaleEpochEndsLiveStream: a live destination asks the fence every
// FenceInterval; when the epoch turns stale it drops the connection and
// ends fenced, pushing nothing more and never reconnecting.
func TestStaleEpochEndsLiveStream(t *testing.T) {
	t.Parallel()
	ng := startNginx(t, nginxOpts{})
	f := newTestFence()
	ev := newEvents()
	mix := newMixFeed()
	eg, err := New(mix, nil, fencedOptions(ev, f, 100*time.Millisecond))
	require.NoError(t, err)
	defer eg.Close()
	feedInBackground(t, mix, 20)
	id, err := eg.Add(context.Background(), Destination{URL: ng.url("live")})
	require.NoError(t, err)
	ev.await(t, id, StateLive, 5*time.Second)
	require.Eventually(t, func() bool { return f.count() > 3 }, 5*time.Second, 10*time.Millisecond,
		"a live destination keeps asking")

	f.set(errTestStale)
	e := ev.await(t, id, StateFenced, 3*time.Second)
	require.ErrorIs(t, e.Err, ErrStale)
	st, err := eg.Destination(id)
	require.NoError(t, err)
	bytes := st.Bytes
	require.Positive(t, bytes)
	require.Zero(t, st.Reconnects)

	// The egress goes on (its audio pipeline runs), the destination does
	// not: its goroutine has ended (fenced is final), and with it the
	// connection it pushed on.
	select {
	case <-destDone(eg, id):
	case <-time.After(5 * time.Second):
		t.Fatal("the fenced destination's goroutine did not end")
	}
	st, err = eg.Destination(id)
	require.NoError(t, err)
	require.Equal(t, bytes, st.Bytes, "no byte pushed after the fence said stale")
	require.Equal(t, StateFenced, st.State)
	require.Len(t, ng.recordings("live"), 1)
	require.Equal(t, 1, strings.Count(ng.log(), "publish: name='live'"), ng.log())
}

// destDone is closed when destination id's goroutine has ended.
func destDone(eg *Egress, id DestinationID) <-chan struct{} {
	eg.mu.Lock()
	defer eg.mu.Unlock()
	return eg.byID[id].done
}
