package rtc

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

// dial dials a link to url with the test settings (loopback, a short
// disconnect timeout) and closes it when the test ends.
func dial(t *testing.T, url string, o LinkOptions) (*Link, error) {
	t.Helper()
	if o.ParticipantID == "" {
		o.ParticipantID = "link-1"
	}
	o.LoopbackOnly = true
	o.Logger = testLogger().With("side", "link")
	if o.DisconnectTimeout == 0 {
		o.DisconnectTimeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	l, err := Dial(ctx, url, o)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, l.Close(ctx))
	})
	return l, nil
}

// linked is the two-node set-up of the link tests: node B hosts "board",
// where a client plays 440 Hz; node A's manager sends "board" to B (307)
// and holds the relay room "relay", where a client plays 660 Hz and the
// link, dialed through A's own /whip/board, stands for B's room.
type linked struct {
	a, b         *env
	far, near    *client // on B, on A
	link         *Link
	relay, board *room.Room
}

func newLinked(t *testing.T) *linked {
	t.Helper()
	s := &linked{b: newEnv(t, nil)}
	s.a = newEnv(t, []room.ManagerOption{movedGate(s.b.http.URL, "board")})
	s.far = s.b.join("board", clientOpts{tone: 440})
	s.near = s.a.join("relay", clientOpts{tone: 660})
	var err error
	s.link, err = dial(t, s.a.http.URL+"/whip/board", LinkOptions{ParticipantID: "link-to-b", Name: "node b"})
	require.NoError(t, err)
	s.relay, err = s.a.mgr.Join("relay", s.link)
	require.NoError(t, err)
	s.board, err = s.b.mgr.Get("board")
	require.NoError(t, err)
	return s
}

// TestLink: a caller in node A's relay room and a participant in node B's
// room hear each other through a link, dialed to node A and redirected to
// node B; each hears the other's tone and not its own.
func TestLink(t *testing.T) {
	load := startCanary(t)
	s := newLinked(t)
	require.Contains(t, s.link.Location(), s.b.http.URL+"/whip/board/", "the link followed the redirect")
	require.Equal(t, 1, s.a.srv.Sessions(), "node A holds its client's session, none of the link")
	require.Equal(t, 2, s.board.Len())
	require.Equal(t, 2, s.relay.Len())
	info := s.link.Info()
	require.Equal(t, room.ParticipantID("link-to-b"), info.ID)
	require.Equal(t, room.KindOther, info.Kind)
	require.Equal(t, room.CodecOpus, info.Format.Codec)
	require.True(t, info.Format.Opus.FEC, "node B takes FEC")

	for _, c := range []struct {
		cl         *client
		hear, self float64
	}{{s.far, 660, 440}, {s.near, 440, 660}} {
		// Both clients were receiving before the link was up: measure
		// from a warm-up after it.
		from := c.cl.received() + warmup
		c.cl.waitFrames(from + measure)
		w := c.cl.window(from, from+measure)
		hear, self := toneDB(w, c.hear), toneDB(w, c.self)
		t.Logf("client %.0f Hz hears %.0f Hz across the link at %.1f dB, itself at %.1f dB", c.self, c.hear, hear, self)
		require.Greater(t, hear, -25.0, load)
		require.GreaterOrEqual(t, hear-self, 20.0, load)
	}
	select {
	case <-s.link.Done():
		t.Fatalf("link ended: %v", s.link.Err())
	default:
		require.NoError(t, s.link.Err())
	}
}

// TestLinkLost: node B removing the link's session ends the link: Done is
// closed with ErrLinkLost, so the binary can dial again.
func TestLinkLost(t *testing.T) {
	s := newLinked(t)
	s.near.waitFrames(warmup)
	onB := s.b.participantOf(s.link.Location())
	kicked := time.Now()
	require.NoError(t, s.board.Kick(onB))
	select {
	case <-s.link.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the link did not notice that node B ended its session")
	}
	t.Logf("link lost %v after the kick on node B: %v", time.Since(kicked).Round(time.Millisecond), s.link.Err())
	require.ErrorIs(t, s.link.Err(), ErrLinkLost)
	// What the binary does next: the lost link leaves the relay room.
	require.NoError(t, s.relay.Leave(s.link.Info().ID))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.link.Close(ctx))
	require.ErrorIs(t, s.link.Err(), ErrLinkLost, "Close keeps the first reason")
}

// TestLinkServerGone: closing node B's server ends the link.
func TestLinkServerGone(t *testing.T) {
	s := newLinked(t)
	s.near.waitFrames(warmup)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closed := time.Now()
	require.NoError(t, s.b.srv.Close(ctx))
	select {
	case <-s.link.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the link did not notice that node B closed")
	}
	t.Logf("link lost %v after node B closed: %v", time.Since(closed).Round(time.Millisecond), s.link.Err())
	require.ErrorIs(t, s.link.Err(), ErrLinkLost)
}

// TestLinkDetached: the relay room letting go (here: closing) ends the
// link with ErrLinkClosed and deletes its session on node B.
func TestLinkDetached(t *testing.T) {
	s := newLinked(t)
	s.near.waitFrames(warmup)
	require.Equal(t, 2, s.b.srv.Sessions())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.relay.Close(ctx))
	select {
	case <-s.link.Done():
	case <-ctx.Done():
		t.Fatal("the link outlived its relay room")
	}
	require.ErrorIs(t, s.link.Err(), ErrLinkClosed)
	require.ErrorIs(t, s.link.Err(), room.ErrRoomClosed)
	require.NoError(t, s.link.Close(ctx)) // waits for the DELETE
	require.Equal(t, 1, s.b.srv.Sessions())
	require.Equal(t, 1, s.board.Len())
}

// TestLinkRefused: a POST the remote node refuses is a *LinkError with the
// status and the problem's title, matching rtc's and room's errors; a
// redirect loop ends after MaxLinkRedirects. Nothing is left running
// (goleak).
func TestLinkRefused(t *testing.T) {
	locked := newEnv(t, []room.ManagerOption{room.WithAutoCreate(false)}, WithAuthorizer(testAuth))
	_, err := locked.mgr.Create("shut", room.WithLocked(true))
	require.NoError(t, err)
	var loop *env
	loop = newEnv(t, []room.ManagerOption{room.WithOpenGate(func(id room.ID) (func(), error) {
		if id == "dark" {
			return nil, room.ErrUnavailable
		}
		return nil, &room.MovedError{Room: id, Node: "self", URL: loop.http.URL}
	})})
	for _, c := range []struct {
		name   string
		url    string
		token  string
		status int
		is     error
	}{
		{"bad token", locked.http.URL + "/whip/any", "nobody", http.StatusUnauthorized, ErrUnauthorized},
		{"listen only", locked.http.URL + "/whip/shut", "listener", http.StatusForbidden, ErrForbidden},
		{"no room", locked.http.URL + "/whip/none", "", http.StatusNotFound, room.ErrNotFound},
		{"locked", locked.http.URL + "/whip/shut", "", http.StatusForbidden, room.ErrRoomLocked},
		{"unavailable", loop.http.URL + "/whip/dark", "", http.StatusServiceUnavailable, room.ErrUnavailable},
		{"bad room", locked.http.URL + "/whip/a%20b", "", http.StatusBadRequest, ErrInvalidRoomID},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := dial(t, c.url, LinkOptions{Token: c.token})
			var le *LinkError
			require.ErrorAs(t, err, &le)
			t.Logf("%v", err)
			require.Equal(t, c.status, le.Status)
			require.NotEmpty(t, le.Problem.Title)
			require.ErrorIs(t, err, c.is)
			require.Contains(t, err.Error(), le.Problem.Title)
		})
	}
	_, err = dial(t, loop.http.URL+"/whip/loop", LinkOptions{})
	require.ErrorContains(t, err, "redirects")
	_, err = dial(t, "ftp://example.com/whip/x", LinkOptions{})
	require.ErrorContains(t, err, "bad whip url")
	_, err = Dial(context.Background(), loop.http.URL+"/whip/x", LinkOptions{})
	require.ErrorIs(t, err, room.ErrInvalidParticipant)
	require.Zero(t, locked.srv.Sessions()+loop.srv.Sessions())
	require.False(t, errors.Is(&LinkError{Status: 500}, ErrServerClosed))
}

// BenchmarkLinkFrame is one 20 ms frame through a link without its
// PeerConnection: the relay room's payload into WriteMix and on to the
// track by the sender (unbound here, so without SRTP and the socket), and
// the remote room's packet into the jitter buffer and out of ReadFrame,
// decoded. It must not allocate.
func BenchmarkLinkFrame(b *testing.B) {
	l := &Link{}
	require.NoError(b, l.voice.init(true))
	clock := time.Unix(0, 0)
	l.now = func() time.Time { return clock }
	pkts := opusPackets(b, 50)
	l.startSending()
	var frame media.Frame
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		clock = clock.Add(media.FrameDuration)
		if !l.WriteMix(room.Packet{Payload: pkts[i%len(pkts)], Tick: uint64(i)}) {
			b.Fatal("write refused")
		}
		err := l.jb.Push(media.Packet{Seq: uint16(i), Timestamp: uint32(i) * opusFrameTS, SSRC: 1,
			Payload: pkts[i%len(pkts)]}, clock)
		if err != nil {
			b.Fatal(err)
		}
		l.started.Store(true)
		if !l.ReadFrame(&frame) {
			b.Fatal("no frame")
		}
	}
}

// TestLinkNodeDead: node B's media going silent without a goodbye (its UDP
// socket closed under its sessions, as when the node dies or the network
// between the nodes breaks) ends the link after its disconnect timeout.
func TestLinkNodeDead(t *testing.T) {
	s := newLinked(t)
	s.near.waitFrames(warmup)
	dead := time.Now()
	require.NoError(t, s.b.srv.conn.Close())
	select {
	case <-s.link.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the link did not notice that node B went silent")
	}
	took := time.Since(dead)
	t.Logf("link lost %v after node B went silent: %v", took.Round(time.Millisecond), s.link.Err())
	require.ErrorIs(t, s.link.Err(), ErrLinkLost)
	require.GreaterOrEqual(t, took, time.Second, "lost before ICE consent could have failed")
}
