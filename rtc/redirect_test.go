package rtc

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// movedGate is an open gate that sends the rooms in moved to the node at
// url and refuses "dark" with room.ErrUnavailable.
func movedGate(url string, moved ...room.ID) room.ManagerOption {
	return room.WithOpenGate(func(id room.ID) (func(), error) {
		if id == "dark" {
			return nil, room.ErrUnavailable
		}
		for _, m := range moved {
			if id == m {
				return nil, &room.MovedError{Room: id, Node: "node-b", URL: url}
			}
		}
		return func() {}, nil
	})
}

// noFollow is an HTTP client that returns redirects instead of following
// them.
var noFollow = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// TestRedirect: a WHIP or WHEP POST for a room another node hosts is
// answered 307 with that node's base URL plus the request's path and
// query, before any session or PeerConnection exists; an owner that cannot
// be known is a 503 with Retry-After.
func TestRedirect(t *testing.T) {
	b := newEnv(t, nil)
	a := newEnv(t, []room.ManagerOption{movedGate(b.http.URL+"/", "board")})
	pc, err := a.api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer func() { require.NoError(t, pc.Close()) }()
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	require.NoError(t, err)
	offer := offerOf(t, pc)

	for _, kind := range []string{"whip", "whep"} {
		path := "/" + kind + "/board?lang=de&x=%2F"
		req, err := http.NewRequest(http.MethodPost, a.http.URL+path, strings.NewReader(offer))
		require.NoError(t, err)
		req.Header.Set("Content-Type", ContentTypeSDP)
		resp, err := noFollow.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode, kind)
		require.Equal(t, b.http.URL+path, resp.Header.Get("Location"), kind)
		require.Equal(t, ContentTypeProblem, resp.Header.Get("Content-Type"))
	}
	require.Zero(t, a.srv.Sessions())
	_, err = a.mgr.Get("board")
	require.ErrorIs(t, err, room.ErrNotFound, "node A opened the room it does not host")

	resp, body := a.post("whip", "dark", offer, "")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	require.Equal(t, ProblemTypeBase+"room-unavailable", problem(t, resp, body).Type)
	require.Zero(t, a.srv.Sessions())

	// A room the gate admits is served on A as before.
	resp, body = a.post("whip", "local", offer, "")
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
}

// TestRedirectFollowed: a pion client that joins through node A, which
// does not host the room, follows the 307 to node B (its own manager, its
// own UDP port), joins there and hears B's participant.
func TestRedirectFollowed(t *testing.T) {
	b := newEnv(t, nil)
	a := newEnv(t, []room.ManagerOption{movedGate(b.http.URL, "board")})
	tone := b.join("board", clientOpts{tone: 440})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := rtctest.Join(ctx, t, a.http.URL, "board", "", rtctest.Options{Tone: 660, API: a.api, Logs: clientLogs()})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(c.Location(), b.http.URL+"/whip/board/"), c.Location())
	require.NoError(t, c.WaitFrames(ctx, warmup+measure))
	w := c.Frames(warmup, warmup+measure)
	hear, own := toneDB(w, 440), toneDB(w, 660)
	t.Logf("redirected client hears 440 Hz at %.1f dB, itself at %.1f dB", hear, own)
	require.Greater(t, hear, -25.0)
	require.GreaterOrEqual(t, hear-own, 20.0)
	tone.waitFrames(warmup + measure)
	rm, err := b.mgr.Get("board")
	require.NoError(t, err)
	require.Equal(t, 2, rm.Len())
	require.Zero(t, a.srv.Sessions())
	require.NoError(t, c.Close())
	require.Equal(t, 1, rm.Len(), "the DELETE went to node B")
}
