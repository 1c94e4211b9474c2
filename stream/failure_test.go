package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// blackHole accepts TCP connections and never answers: a firewall that
// drops, a server that hangs. It counts the connections and reports when
// the client closed each.
type blackHole struct {
	l        net.Listener
	accepted atomic.Int32
	closed   chan struct{} // one value per connection the client closed
	wg       sync.WaitGroup
}

func newBlackHole(t *testing.T) *blackHole {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &blackHole{l: l, closed: make(chan struct{}, 100)}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				_, _ = io.Copy(io.Discard, c) // until the client closes
				b.closed <- struct{}{}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		b.wg.Wait()
	})
	return b
}

// stallProxy forwards to an RTMP server until the client has sent limit
// bytes, then stops reading from the client (without closing): a
// destination whose network stalls mid-stream.
type stallProxy struct {
	l  net.Listener
	wg sync.WaitGroup
}

func newStallProxy(t *testing.T, upstream string, limit int64) *stallProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stallProxy{l: l}
	var conns []net.Conn
	var mu sync.Mutex
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, io.LimitReader(c, limit)) }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up) }()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// smallBufferDial dials with a 4 KiB socket send buffer, so a stalled peer
// blocks the writer within a few frames instead of megabytes.
func smallBufferDial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		_ = c.(*net.TCPConn).SetWriteBuffer(4096)
	}
	return c, err
}

// TestFailingDestinationsIsolated: of four destinations, one healthy, one
// refusing connections, one black-holed and one that stalls mid-stream,
// the healthy one streams throughout, live from start to end; the refused
// and black-holed ones fail (the latter by timeout) and back off, the
// stalled one drops what it cannot send and reconnects after its write
// times out. No status or error shows the stream key.
func TestFailingDestinationsIsolated(t *testing.T) {
	t.Parallel()
	ng := startNginx(t, nginxOpts{})
	hole := newBlackHole(t)
	stall := newStallProxy(t, fmt.Sprintf("127.0.0.1:%d", ng.port), 32<<10)
	refused := freePort(t)
	const key = "secret-key-4711"
	clip := makeClip(t, "testsrc", "", "320x240", 25, 8)

	ev := newEvents()
	opts := testOptions(ev)
	opts.Timeout, opts.Queue, opts.Dial = time.Second, 16, smallBufferDial
	mix, video := newMixFeed(), newVideoFeed()
	eg, err := New(mix, video, opts)
	require.NoError(t, err)
	defer eg.Close()
	add := func(name, url string) DestinationID {
		id, err := eg.Add(context.Background(), Destination{ID: DestinationID(name), URL: url})
		require.NoError(t, err)
		return id
	}
	healthy := add("healthy", ng.url("healthy"))
	add("refused", fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", refused, key))
	add("hole", fmt.Sprintf("rtmp://%s/live/%s", hole.l.Addr(), key))
	stalled := add("stall", fmt.Sprintf("rtmp://%s/live/%s", stall.l.Addr(), key))
	// The test presenter ignores keyframe requests: start the feed, and
	// its first IDR, once the healthy and the stalling destination are
	// live, so that the latter passes its byte limit early in the feed
	// even when a busy machine was slow to connect it.
	ev.await(t, healthy, StateLive, 5*time.Second)
	ev.await(t, stalled, StateLive, 5*time.Second)

	f := feeder{mix: mix, video: video, pcm: mediatest.Sine(440, 0.3, media.Rate48k, 6*media.Rate48k), clip: clip}
	f.run(t.Context())
	st := eg.Status()
	require.NoError(t, eg.Close())

	checkIsolation(t, st, ev, key, hole)
	recs := ng.recordings("healthy")
	require.Len(t, recs, 1)
	p := probe(t, recs[0])
	require.InDelta(t, 6.0, p.duration(t).Seconds(), 0.6)
	decodeVideo(t, recs[0])
}

// checkIsolation checks TestFailingDestinationsIsolated's destinations:
// healthy live throughout, refused and hole failing and backing off
// (hole by timeout, its connections all closed), stall dropping and timing
// out; no key anywhere.
func checkIsolation(t *testing.T, st Status, ev *events, key string, hole *blackHole) {
	t.Helper()
	byID := map[DestinationID]DestinationStatus{}
	states := map[DestinationID][]State{}
	errs := map[DestinationID][]error{}
	for _, d := range st.Destinations {
		byID[d.ID] = d
		require.NotContains(t, d.LastError, key)
		require.NotContains(t, d.URL, key)
		for _, e := range ev.of(d.ID) {
			states[d.ID] = append(states[d.ID], e.State)
			if e.Err != nil {
				require.NotContains(t, e.Err.Error(), key)
				errs[d.ID] = append(errs[d.ID], e.Err)
			}
		}
	}
	timedOut := func(id DestinationID) bool {
		return slices.ContainsFunc(errs[id], func(err error) bool { return errors.Is(err, ErrTimeout) })
	}
	h := byID["healthy"]
	require.Equal(t, StateLive, h.State)
	require.Zero(t, h.Reconnects)
	require.Zero(t, h.Dropped)
	require.Positive(t, h.Bitrate)
	require.Equal(t, []State{StateConnecting, StateLive, StateStopped}, states["healthy"])
	for _, id := range []DestinationID{"refused", "hole"} {
		require.NotContains(t, states[id], StateLive, id)
		require.GreaterOrEqual(t, byID[id].Reconnects, 1, id)
		require.Contains(t, []State{StateBackoff, StateConnecting}, byID[id].State, id)
	}
	require.GreaterOrEqual(t, byID["refused"].Reconnects, 2)
	require.Contains(t, byID["refused"].LastError, "refused")
	require.True(t, timedOut("hole"), "black hole errors: %v", errs["hole"])
	require.GreaterOrEqual(t, int(hole.accepted.Load()), 2)
	for range hole.accepted.Load() {
		select {
		case <-hole.closed:
		case <-time.After(2 * time.Second):
			t.Fatal("a black-holed connection was left open")
		}
	}
	require.Positive(t, byID["stall"].Dropped, "the stalled destination dropped nothing")
	require.Contains(t, states["stall"], StateLive)
	require.True(t, timedOut("stall"), "stalled destination errors: %v", errs["stall"])
}

// TestReconnectAfterServerRestart: nginx killed mid-stream and started
// again: the destination backs off, reconnects within the first backoff
// (asking the presenter for a keyframe) and the new recording plays.
func TestReconnectAfterServerRestart(t *testing.T) {
	t.Parallel()
	ng := startNginx(t, nginxOpts{})
	clip := makeClip(t, "testsrc", "", "320x240", 25, 10)
	ev := newEvents()
	mix, video := newMixFeed(), newVideoFeed()
	eg, err := New(mix, video, testOptions(ev))
	require.NoError(t, err)
	defer eg.Close()
	id, err := eg.Add(context.Background(), Destination{URL: ng.url("restart")})
	require.NoError(t, err)
	ev.await(t, id, StateLive, 5*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fed := make(chan struct{})
	f := feeder{mix: mix, video: video, pcm: mediatest.Sine(440, 0.3, media.Rate48k, 9*media.Rate48k), clip: clip}
	go func() {
		defer close(fed)
		f.run(ctx)
	}()
	select {
	case <-time.After(3 * time.Second): // stream for 3 s
	case <-fed:
		t.Fatal("feed ended early")
	}
	ng.kill()
	killed := time.Now()
	ng.start()
	for len(video.plis) > 0 {
		<-video.plis
	}
	e := ev.await(t, id, StateBackoff, 3*time.Second)
	require.ErrorIs(t, e.Err, ErrDisconnected)
	ev.await(t, id, StateLive, 5*time.Second)
	back := time.Since(killed)
	t.Logf("live again %v after the kill", back)
	require.Less(t, back, time.Duration(1.2*float64(DefaultBackoffMin))+time.Second)
	select {
	case <-video.plis:
	case <-time.After(2 * time.Second):
		t.Fatal("no keyframe request after the reconnect")
	}
	<-fed
	st := eg.Status().Destinations[0]
	require.Equal(t, 1, st.Reconnects)
	require.Contains(t, st.LastError, "closed")
	require.NoError(t, eg.Close())

	recs := ng.recordings("restart")
	require.Len(t, recs, 2, ng.log())
	p := probe(t, recs[1])
	require.Equal(t, map[string]string{"audio": "aac", "video": "h264"}, p.codecs())
	// From the presenter's first IDR after the reconnect (this one sends
	// one every 2 s, whatever PLIs say) to the end of the 9 s feed.
	require.Greater(t, p.duration(t).Seconds(), 2.5)
	frames := decodeVideo(t, recs[1])
	require.NotEmpty(t, frames)
	checkTimestamps(t, recs[1])
}

// TestRejectedKey: nginx asks an on_publish hook, which refuses the key
// with 403; the destination ends in state rejected and does not retry.
func TestRejectedKey(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "bad key", http.StatusForbidden)
	}))
	defer hook.Close()
	ng := startNginx(t, nginxOpts{onPublish: hook.URL + "/publish"})
	ev := newEvents()
	opts := testOptions(ev)
	opts.BackoffMin = 50 * time.Millisecond
	mix := newMixFeed()
	eg, err := New(mix, nil, opts)
	require.NoError(t, err)
	defer eg.Close()
	feedInBackground(t, mix, 5)
	const key = "wrong-key-0815"
	id, err := eg.Add(context.Background(), Destination{URL: ng.url(key)})
	require.NoError(t, err)
	e := ev.await(t, id, StateRejected, 5*time.Second)
	require.ErrorIs(t, e.Err, ErrRejected)
	require.NotContains(t, e.Err.Error(), key)
	n := len(ev.of(id))
	time.Sleep(time.Second) // 20 backoffs' worth: no retry may come
	require.Len(t, ev.of(id), n, "events after rejection: %v", ev.states(id))
	require.Equal(t, int32(1), hits.Load(), "on_publish asked more than once")
	st, err := eg.Destination(id)
	require.NoError(t, err)
	require.Equal(t, StateRejected, st.State)
	require.Zero(t, st.Reconnects)
	require.True(t, strings.Contains(st.LastError, "rejected"), st.LastError)
	require.NotContains(t, st.LastError, key)
	require.NoError(t, eg.Remove(id))
	require.ErrorIs(t, eg.Remove(id), ErrNotFound)
}
