package rtc

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
)

// awaitLeft waits for id's EventLeft on sub.
func awaitLeft(t *testing.T, sub *room.EventSub, id room.ParticipantID, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-sub.C():
			require.True(t, ok, "event subscription closed")
			if ev.Type == room.EventLeft && ev.Participant == id {
				return time.Since(start)
			}
		case <-deadline:
			t.Fatalf("%s did not leave within %v", id, within)
		}
	}
}

// TestVanishedClient: a peer whose network goes silent (its socket closed
// without a goodbye) leaves the room after the disconnect timeout; the
// other participant stays.
func TestVanishedClient(t *testing.T) {
	e := newEnv(t, nil, WithSettings(Settings{LoopbackOnly: true, DisconnectTimeout: 2 * time.Second}))
	a := e.join("gone", clientOpts{tone: 440, stallable: true})
	b := e.join("gone", clientOpts{tone: 660})
	b.waitFrames(warmup)
	rm, err := e.mgr.Get("gone")
	require.NoError(t, err)
	events := rm.SubscribeEvents(256)
	defer events.Close()
	a.sock.release() // the socket closes; pion on a's side is left talking to nobody
	took := awaitLeft(t, events, a.pid, 10*time.Second)
	t.Logf("silent peer left after %v", took)
	require.GreaterOrEqual(t, took, time.Second)
	require.Equal(t, 1, rm.Len())
	require.Equal(t, 1, e.srv.Sessions())
}

// TestNeverConnected: a session whose client never completes ICE is dropped
// after the connect timeout.
func TestNeverConnected(t *testing.T) {
	e := newEnv(t, nil, WithSettings(Settings{LoopbackOnly: true, ConnectTimeout: time.Second}))
	b := e.join("lazy", clientOpts{tone: 660})
	b.waitFrames(1)
	rm, err := e.mgr.Get("lazy")
	require.NoError(t, err)
	events := rm.SubscribeEvents(256)
	defer events.Close()

	pc, err := e.api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer func() { require.NoError(t, pc.Close()) }()
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	require.NoError(t, err)
	resp, _ := e.post("whip", "lazy", offerOf(t, pc), "")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	loc := resp.Header.Get("Location")
	id := e.participantOf(loc)
	require.Equal(t, 2, rm.Len())
	took := awaitLeft(t, events, id, 10*time.Second)
	t.Logf("unconnected session dropped after %v", took)
	require.Equal(t, 1, rm.Len())
	require.Equal(t, 1, e.srv.Sessions())
}

// TestServerClose: Close takes every session out of its room, closes the
// peers' connections and then refuses new sessions with 503.
func TestServerClose(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join("close", clientOpts{tone: 440})
	l := e.join("close", clientOpts{listen: true})
	rm, err := e.mgr.Get("close")
	require.NoError(t, err)
	require.Equal(t, 2, rm.Len())
	a.waitFrames(5) // the server's side of DTLS is up too
	l.waitFrames(5)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.srv.Close(ctx))
	require.Equal(t, 0, rm.Len())
	require.Equal(t, 0, e.srv.Sessions())
	for _, c := range []*client{a, l} {
		select {
		case <-c.closed:
		case <-ctx.Done():
			t.Fatalf("client %s connection stayed up after Close: %s", c.pid, c.pc.ConnectionState())
		}
	}
	resp, body := e.post("whip", "close", "v=0\r\n", "")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, ProblemTypeBase+"server-closed", problem(t, resp, body).Type)
}
