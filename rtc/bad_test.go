package rtc

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
)

// testAuth lets everybody in but "Bearer nobody" (401) and "Bearer
// listener" (listen only).
var testAuth = AuthorizerFunc(func(r *http.Request, _ room.ID, _ bool) (Grant, error) {
	switch r.Header.Get("Authorization") {
	case "Bearer nobody":
		return Grant{}, ErrUnauthorized
	case "Bearer listener":
		return Grant{Listen: true}, nil
	}
	return Grant{Publish: true, Listen: true}, nil
})

// offerWith returns a real pion offer from a client with codecs
// registered by register and transceivers added by add.
func offerWith(t *testing.T, register func(*webrtc.MediaEngine) error, add func(*webrtc.PeerConnection) error) string {
	t.Helper()
	me := &webrtc.MediaEngine{}
	require.NoError(t, register(me))
	pc, err := clientAPIWith(t, me).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer func() { require.NoError(t, pc.Close()) }()
	require.NoError(t, add(pc))
	return offerOf(t, pc)
}

func addKind(kind webrtc.RTPCodecType, dir webrtc.RTPTransceiverDirection) func(*webrtc.PeerConnection) error {
	return func(pc *webrtc.PeerConnection) error {
		_, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: dir})
		return err
	}
}

// TestBadRequests: every kind of bad request gets its precise problem+json
// answer, and two healthy participants in the same room notice nothing: no
// join or leave, the same levels, packets every 20 ms.
func TestBadRequests(t *testing.T) {
	load := startCanary(t)
	e := newEnv(t, []room.ManagerOption{room.WithAutoCreate(false)}, WithAuthorizer(testAuth))
	rm, err := e.mgr.Create("r")
	require.NoError(t, err)
	a := e.join("r", clientOpts{tone: 440})
	b := e.join("r", clientOpts{tone: 660})
	a.waitFrames(2 * warmup)
	b.waitFrames(2 * warmup)
	events := rm.SubscribeEvents(64)
	defer events.Close()
	a0, b0 := a.received(), b.received()

	defaults := func(me *webrtc.MediaEngine) error { return me.RegisterDefaultCodecs() }
	good := offerWith(t, defaults, addKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverDirectionSendrecv))
	onlyPCMU := offerWith(t, func(me *webrtc.MediaEngine) error {
		return me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1},
			PayloadType:        0,
		}, webrtc.RTPCodecTypeAudio)
	}, addKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverDirectionSendrecv))
	videoOnly := offerWith(t, defaults, addKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverDirectionSendrecv))
	sendOnly := offerWith(t, defaults, addKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverDirectionSendonly))
	noICE := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n"

	tests := []struct {
		name, method, path, body, contentType, auth string
		setup                                       func()
		status                                      int
		slug, detail                                string
	}{
		{"malformed sdp", "POST", "/whip/r", "hello, I am not SDP", "", "", nil, 400, "malformed-sdp", "sdp"},
		{"empty body", "POST", "/whip/r", "", "", "", nil, 400, "malformed-sdp", "empty body"},
		{"no ice credentials", "POST", "/whip/r", noICE, "", "", nil, 400, "negotiation-failed", ""},
		{"no audio m-line", "POST", "/whip/r", videoOnly, "", "", nil, 422, "no-audio", "none is audio"},
		{"only pcmu", "POST", "/whip/r", onlyPCMU, "", "", nil, 415, "unsupported-codec", "PCMU/8000"},
		{"whep client that only sends", "POST", "/whep/r", sendOnly, "", "", nil, 422, "no-audio", "must receive audio"},
		{"wrong content type", "POST", "/whip/r", good, "application/json", "", nil, 415, "unsupported-content-type", `"application/json"`},
		{"oversize body", "POST", "/whip/r", good + strings.Repeat("a=x-padding\r\n", 6000), "", "", nil, 413, "body-too-large", "65536"},
		{"unknown room", "POST", "/whip/nope", good, "", "", nil, 404, "room-not-found", "nope"},
		{"invalid room id", "POST", "/whip/bad%20room", good, "", "", nil, 400, "invalid-room-id", "bad room"},
		{"bad token", "POST", "/whip/r", good, "", "Bearer nobody", nil, 401, "unauthorized", ""},
		{"listener publishing", "POST", "/whip/r", good, "", "Bearer listener", nil, 403, "forbidden", "publish"},
		{"room full", "POST", "/whip/r", good, "", "", func() { rm.SetMaxParticipants(2) }, 409, "room-full", "2 participants"},
		{"room locked", "POST", "/whip/r", good, "", "", func() { rm.SetMaxParticipants(0); rm.SetLocked(true) }, 403, "room-locked", ""},
		{"unknown session", "DELETE", "/whip/r/NOSUCHSESSION", "", "", "", nil, 404, "session-not-found", "NOSUCHSESSION"},
		{"session of another room", "DELETE", strings.Replace(a.location, "/r/", "/other/", 1), "", "", "", nil, 404, "session-not-found", ""},
		{"whip session on whep", "DELETE", strings.Replace(a.location, "/whip/", "/whep/", 1), "", "", "", nil, 404, "session-not-found", ""},
		{"trickle", "PATCH", a.location, "a=candidate:1 1 udp 1 127.0.0.1 9 typ host", "application/trickle-ice-sdpfrag", "", nil, 405, "trickle-unsupported", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			h := http.Header{}
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			ct := tt.contentType
			if ct == "" && tt.method == "POST" {
				ct = ContentTypeSDP
			}
			resp, body := e.do(tt.method, tt.path, tt.body, ct, h)
			require.Equal(t, tt.status, resp.StatusCode, body)
			p := problem(t, resp, body)
			require.Equal(t, ProblemTypeBase+tt.slug, p.Type, body)
			require.Equal(t, tt.status, p.Status)
			require.NotEmpty(t, p.Title)
			require.NotEmpty(t, p.Detail)
			require.Contains(t, p.Detail, tt.detail)
			switch tt.status {
			case 401:
				require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
			case 405:
				require.Equal(t, "DELETE, OPTIONS", resp.Header.Get("Allow"))
			}
			t.Logf("%d %s: %s", p.Status, p.Type, p.Detail)
		})
	}
	rm.SetLocked(false)

	// The healthy participants noticed nothing.
	require.Equal(t, 2, rm.Len())
	require.Equal(t, 2, e.srv.Sessions())
	for len(events.C()) > 0 {
		ev := <-events.C()
		require.NotContains(t, []room.EventType{room.EventJoined, room.EventLeft}, ev.Type, "event %v", ev)
	}
	for _, c := range []struct {
		cl         *client
		from, hear int
	}{{a, a0, 660}, {b, b0, 440}} {
		n := c.cl.received()
		c.cl.waitFrames(n + 50)
		before := toneDB(c.cl.window(c.from-25, c.from), float64(c.hear))
		w := c.cl.window(c.from, n+50)
		after := toneDB(w, float64(c.hear))
		sp := spacing(w)
		t.Logf("client %.0f Hz: %d Hz at %.2f dB before, %.2f dB during and after; %d frames, mean %v, max gap %v",
			c.cl.tone, c.hear, before, after, sp.count, sp.mean, sp.max)
		require.InDelta(t, before, after, 1.0, load)
		require.InDelta(t, float64(20*time.Millisecond), float64(sp.mean), float64(time.Millisecond), load)
		require.Less(t, sp.max, 100*time.Millisecond, load)
	}
}

// TestOptions: the preflight answers 204 with Accept-Post and the CORS
// headers a WHIP client in a browser needs (RFC 9725 §4.2).
func TestOptions(t *testing.T) {
	e := newEnv(t, nil)
	resp, body := e.do(http.MethodOptions, "/whip/r", "", "", http.Header{"Origin": {"https://example.org"}})
	require.Equal(t, http.StatusNoContent, resp.StatusCode, body)
	require.Equal(t, ContentTypeSDP, resp.Header.Get("Accept-Post"))
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
	require.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "Location")
	resp, _ = e.do(http.MethodOptions, "/whep/r/SESSION", "", "", nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "DELETE")
}

// TestDefaultDeniesAll: a server built without an Authorizer refuses
// everybody (private by default).
func TestDefaultDeniesAll(t *testing.T) {
	e := newEnv(t, nil, WithAuthorizer(nil))
	resp, body := e.post("whip", "r", "v=0\r\n", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, ProblemTypeBase+"unauthorized", problem(t, resp, body).Type)
	require.Empty(t, e.mgr.List(), "a refused request opened a room")
}
