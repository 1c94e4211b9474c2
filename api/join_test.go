package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/internal/promtest"
	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
)

// joinRooms are the configured rooms of the join page tests.
var joinRooms = map[string]configs.Room{
	"board": {Name: `Board <b>&</b> "Co"`, PIN: "4711", MaxParticipants: 2, Tenant: "acme"},
	"annex": {PIN: "2468", Tenant: "globex"},
	"lobby": {Open: true},
	"vip":   {},
}

// joinEnv is a Server with the join page over a real room.Manager whose
// rooms tick only when the test says, and a clock the test moves.
type joinEnv struct {
	now  time.Time
	mgr  *room.Manager
	auth *Auth
	h    http.Handler
}

func newJoinEnv(t *testing.T) *joinEnv {
	t.Helper()
	e := &joinEnv{now: t0}
	e.mgr = room.NewManager(room.WithRoomDefaults(room.WithManualTick(), room.WithEmptyTimeout(-1)))
	t.Cleanup(func() { require.NoError(t, e.mgr.Close(context.Background())) })
	e.auth = newTestAuth(t, joinRooms, &e.now)
	e.h = New(slog.New(slog.DiscardHandler), WithJoinPage(e.mgr, e.auth)).Handler()
	return e
}

// do sends a request from 192.0.2.1 unless a "RemoteAddr" pair says
// otherwise; the other pairs are headers.
func (e *joinEnv) do(method, path, body string, kv ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.1:40000"
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "RemoteAddr" {
			r.RemoteAddr = kv[i+1]
			continue
		}
		r.Header.Set(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// postToken asks for a page token for name and pin.
func (e *joinEnv) postToken(id, name, pin string, kv ...string) *httptest.ResponseRecorder {
	body, _ := json.Marshal(joinRequest{Name: name, PIN: pin})
	return e.do(http.MethodPost, "/r/"+id+"/token", string(body), append([]string{"Content-Type", "application/json"}, kv...)...)
}

// requireProblem checks a problem+json answer's status and type slug.
func requireProblem(t *testing.T, w *httptest.ResponseRecorder, status int, slug string) Problem {
	t.Helper()
	require.Equal(t, status, w.Code, w.Body.String())
	require.Equal(t, ContentTypeProblem, w.Header().Get("Content-Type"))
	var p Problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	require.Equal(t, ProblemTypeBase+slug, p.Type)
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.Title)
	return p
}

// requireToken checks a token answer and returns the verified claims.
func requireToken(t *testing.T, e *joinEnv, w *httptest.ResponseRecorder, id room.ID) (string, Claims) {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	var resp tokenResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	c, err := e.auth.VerifyToken(resp.Token, id, e.now)
	require.NoError(t, err)
	require.Equal(t, c.ExpiresAt(), resp.ExpiresAt)
	return resp.Token, c
}

// TestJoinPageHTML: the page escapes the room name, says how to get in,
// and carries the strict security headers.
func TestJoinPageHTML(t *testing.T) {
	e := newJoinEnv(t)
	_, err := e.mgr.Create("adhoc")
	require.NoError(t, err)
	tests := []struct {
		path   string
		status int
		want   []string
	}{
		{"/r/board", 200, []string{`<h1 id="room-name">Board &lt;b&gt;&amp;&lt;/b&gt; &#34;Co&#34;</h1>`, `data-access="pin"`, `data-found="true"`}},
		{"/r/lobby", 200, []string{`<h1 id="room-name">lobby</h1>`, `data-access="open"`, `<div id="pin-row" hidden>`}},
		{"/r/vip", 200, []string{`data-access="invite"`}},
		{"/r/adhoc", 200, []string{`data-access="invite"`, `data-room="adhoc"`}},
		{"/r/nowhere", 404, []string{`data-found="false"`, `data-room=""`, "Room not found"}},
		{"/r/Board", 404, []string{`data-found="false"`}},
		{"/r/%3Cscript%3E", 404, []string{`data-room=""`}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := e.do(http.MethodGet, tt.path, "")
			require.Equal(t, tt.status, w.Code)
			body := w.Body.String()
			for _, s := range tt.want {
				require.Contains(t, body, s)
			}
			require.NotContains(t, body, "<b>")
			require.NotContains(t, body, "<script>")
			h := w.Header()
			require.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
			require.Equal(t, "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "+
				"media-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'", h.Get("Content-Security-Policy"))
			require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
			require.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
			require.Equal(t, "DENY", h.Get("X-Frame-Options"))
			require.Equal(t, "no-store", h.Get("Cache-Control"))
		})
	}
}

// TestStaticFiles: the page's files come with their types, security
// headers and validators; templates and unknown names are not served.
func TestStaticFiles(t *testing.T) {
	e := newJoinEnv(t)
	w := e.do(http.MethodGet, "/static/join.js", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "text/javascript; charset=utf-8", w.Header().Get("Content-Type"))
	require.Contains(t, w.Header().Get("Content-Security-Policy"), "default-src 'none'")
	require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
	require.Contains(t, w.Body.String(), "window.mediagate")
	etag := w.Header().Get("ETag")
	require.NotEmpty(t, etag)

	w = e.do(http.MethodGet, "/static/join.js", "", "If-None-Match", etag)
	require.Equal(t, http.StatusNotModified, w.Code)
	require.Empty(t, w.Body.String())

	w = e.do(http.MethodGet, "/static/join.css", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "text/css; charset=utf-8", w.Header().Get("Content-Type"))

	for _, p := range []string{"/static/join.html", "/static/nope.js", "/static/..%2fweb.go"} {
		requireProblem(t, e.do(http.MethodGet, p, ""), http.StatusNotFound, "not-found")
	}
}

// TestJoinToken: the token endpoint's answers for each kind of room and
// request.
func TestJoinToken(t *testing.T) {
	e := newJoinEnv(t)
	_, err := e.mgr.Create("adhoc")
	require.NoError(t, err)

	tok, c := requireToken(t, e, e.postToken("board", "  Ada Lovelace ", "4711"), "board")
	require.Equal(t, "Ada Lovelace", c.Name)
	require.Equal(t, Grants{Publish: true, Listen: true}, c.Grants)
	require.Regexp(t, `^web-[A-Z2-7]{26}$`, c.Subject)
	require.Equal(t, t0.Add(10*time.Minute), c.ExpiresAt(), "auth.page_token_lifetime")
	_, err = e.auth.Check(httptest.NewRequest(http.MethodPost, "/whip/board", nil), "board", false)
	require.ErrorIs(t, err, ErrTokenMissing)
	r := httptest.NewRequest(http.MethodPost, "/whip/board", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	_, err = e.auth.Check(r, "board", false)
	require.NoError(t, err, "the page's token opens WHIP")

	_, c = requireToken(t, e, e.postToken("lobby", "Bob", ""), "lobby")
	require.Equal(t, "Bob", c.Name)
	_, _ = requireToken(t, e, e.postToken("lobby", "Bob", "1234"), "lobby") // a PIN is ignored where none is needed

	tests := []struct {
		name   string
		w      *httptest.ResponseRecorder
		status int
		slug   string
	}{
		{"wrong pin", e.postToken("annex", "Ada", "2469"), 403, "wrong-pin"},
		{"no pin", e.postToken("annex", "Ada", ""), 403, "wrong-pin"},
		{"unknown room", e.postToken("nowhere", "Ada", "4711"), 404, "room-not-found"},
		{"invalid room id", e.postToken("No%20Room", "Ada", "4711"), 404, "room-not-found"},
		{"invitation only", e.postToken("vip", "Ada", ""), 403, "invitation-required"},
		{"open but not configured", e.postToken("adhoc", "Ada", ""), 403, "invitation-required"},
		{"empty name", e.postToken("lobby", "  ", ""), 400, "bad-request"},
		{"long name", e.postToken("lobby", strings.Repeat("é", 65), ""), 400, "bad-request"},
		{"control character in name", e.postToken("lobby", "a\u0007b", ""), 400, "bad-request"},
		{"not json", e.do(http.MethodPost, "/r/lobby/token", "name=Ada", "Content-Type", "application/json"), 400, "bad-request"},
		{"form content type", e.do(http.MethodPost, "/r/lobby/token", "name=Ada", "Content-Type", "application/x-www-form-urlencoded"), 415, "unsupported-content-type"},
		{"no content type", e.do(http.MethodPost, "/r/lobby/token", `{"name":"Ada"}`), 415, "unsupported-content-type"},
		{"unknown field", e.do(http.MethodPost, "/r/lobby/token", `{"name":"Ada","admin":true}`, "Content-Type", "application/json"), 400, "bad-request"},
		{"two objects", e.do(http.MethodPost, "/r/lobby/token", `{"name":"Ada"}{"name":"Bob"}`, "Content-Type", "application/json"), 400, "bad-request"},
		{"huge body", e.do(http.MethodPost, "/r/lobby/token", `{"name":"`+strings.Repeat("a", 5000)+`"}`, "Content-Type", "application/json"), 400, "bad-request"},
		{"cross-site", e.postToken("lobby", "Ada", "", "Sec-Fetch-Site", "cross-site"), 403, "cross-origin"},
		{"cross-origin", e.postToken("lobby", "Ada", "", "Origin", "https://evil.example"), 403, "cross-origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := requireProblem(t, tt.w, tt.status, tt.slug)
			require.NotContains(t, p.Detail, "2468", "the room's PIN never shows")
			require.NotContains(t, tt.w.Body.String(), "2469", "nor the one given")
		})
	}
}

// TestJoinTokenPINLimit: after five wrong PINs from one client network the
// room's token endpoint answers 429 for five minutes, even to the right
// PIN; other clients and rooms are not affected; a right PIN forgives.
func TestJoinTokenPINLimit(t *testing.T) {
	e := newJoinEnv(t)
	for range 5 {
		requireProblem(t, e.postToken("board", "Eve", "0000"), 403, "wrong-pin")
		e.now = e.now.Add(time.Second)
	}
	w := e.postToken("board", "Eve", "0001")
	requireProblem(t, w, 429, "too-many-attempts")
	require.Equal(t, "295", w.Header().Get("Retry-After"), "until the first failure is 5 min old")
	requireProblem(t, e.postToken("board", "Eve", "4711"), 429, "too-many-attempts")

	requireToken(t, e, e.postToken("board", "Ada", "4711", "RemoteAddr", "192.0.2.2:1"), "board")
	requireToken(t, e, e.postToken("annex", "Eve", "2468"), "annex")

	// IPv6 clients are counted by /64.
	for i := range 5 {
		requireProblem(t, e.postToken("annex", "Eve", "0000", "RemoteAddr", "[2001:db8:1:2::"+string(rune('a'+i))+"]:1"), 403, "wrong-pin")
	}
	requireProblem(t, e.postToken("annex", "Eve", "2468", "RemoteAddr", "[2001:db8:1:2:ffff::1]:1"), 429, "too-many-attempts")
	requireToken(t, e, e.postToken("annex", "Ada", "2468", "RemoteAddr", "[2001:db8:1:3::1]:1"), "annex")

	// The first failure leaves the window: one attempt is free again.
	e.now = t0.Add(5 * time.Minute)
	requireToken(t, e, e.postToken("board", "Eve", "4711"), "board")

	// The right PIN cleared the count: five more wrong ones before 429.
	for range 5 {
		requireProblem(t, e.postToken("board", "Eve", "0003"), 403, "wrong-pin")
	}
	requireProblem(t, e.postToken("board", "Eve", "0004"), 429, "too-many-attempts")

	// The metrics count the 15 wrong PINs and the 4 attempts refused.
	f := promtest.Parse(t, e.do("GET", "/metrics", "").Body)
	require.Equal(t, 15.0, f.Value(t, "mediagate_pin_failures_total", "channel", "web"))
	require.Equal(t, 4.0, f.Value(t, "mediagate_pin_lockouts_total", "channel", "web", "scope", "source"))
}

// TestJoinTokenRoomState: a full or locked room is reported before the
// browser asks for the microphone.
func TestJoinTokenRoomState(t *testing.T) {
	e := newJoinEnv(t)
	rm, err := e.mgr.Create("board")
	require.NoError(t, err)
	requireToken(t, e, e.postToken("board", "Ada", "4711"), "board")
	for _, id := range []string{"p1", "p2"} {
		require.NoError(t, rm.Join(&fakeParticipant{info: room.Info{ID: room.ParticipantID(id), Kind: room.KindWebRTC, Format: room.PCMU}}))
	}
	requireProblem(t, e.postToken("board", "Ada", "4711"), 409, "room-full")
	rm.SetLocked(true)
	requireProblem(t, e.postToken("board", "Ada", "4711"), 403, "room-locked")
}

// TestJoinTokenRenew: a valid token buys a fresh one with the same
// identity; an expired or foreign one does not.
func TestJoinTokenRenew(t *testing.T) {
	e := newJoinEnv(t)
	tok, c := requireToken(t, e, e.postToken("annex", "Ada", "2468"), "annex")

	e.now = t0.Add(8 * time.Minute)
	w := e.do(http.MethodPost, "/r/annex/token", "{}", "Content-Type", "application/json", "Authorization", "Bearer "+tok)
	_, c2 := requireToken(t, e, w, "annex")
	require.Equal(t, c.Subject, c2.Subject)
	require.Equal(t, c.Name, c2.Name)
	require.Equal(t, c.Grants, c2.Grants)
	require.NotEqual(t, c.ID, c2.ID)
	require.Equal(t, e.now.Add(10*time.Minute), c2.ExpiresAt())

	e.now = t0.Add(11 * time.Minute)
	w = e.do(http.MethodPost, "/r/annex/token", "{}", "Content-Type", "application/json", "Authorization", "Bearer "+tok)
	requireProblem(t, w, 401, "token-expired")
	require.Equal(t, `Bearer realm="mediagate", error="invalid_token", error_description="token expired"`, w.Header().Get("WWW-Authenticate"))

	e.now = t0.Add(time.Minute)
	w = e.do(http.MethodPost, "/r/board/token", "{}", "Content-Type", "application/json", "Authorization", "Bearer "+tok)
	requireProblem(t, w, 401, "token-wrong-room")
}

// fakeParticipant is a room participant that plays a tone (or nothing).
type fakeParticipant struct {
	info room.Info
	tone *mediatest.Tone
}

var _ room.Participant = (*fakeParticipant)(nil)

func (f *fakeParticipant) Info() room.Info { return f.info }
func (f *fakeParticipant) ReadFrame(dst *media.Frame) bool {
	if f.tone == nil {
		return false
	}
	f.tone.Fill(dst[:])
	return true
}
func (f *fakeParticipant) WriteMix(room.Packet) bool { return true }
func (f *fakeParticipant) Detached(error)            {}

// TestJoinParticipants: the list needs a token for the room (or an open
// room) and shows who is there, who speaks, who is muted and how loud,
// under IDs that do not reveal the participants' own.
func TestJoinParticipants(t *testing.T) {
	e := newJoinEnv(t)
	tok, _ := requireToken(t, e, e.postToken("annex", "Ada", "2468"), "annex")
	bearer := "Bearer " + tok

	w := e.do(http.MethodGet, "/r/annex/participants", "")
	requireProblem(t, w, 401, "token-missing")
	require.Equal(t, `Bearer realm="mediagate"`, w.Header().Get("WWW-Authenticate"))
	lobbyTok, _ := requireToken(t, e, e.postToken("lobby", "Ada", ""), "lobby")
	requireProblem(t, e.do(http.MethodGet, "/r/annex/participants", "", "Authorization", "Bearer "+lobbyTok), 401, "token-wrong-room")
	requireProblem(t, e.do(http.MethodGet, "/r/nowhere/participants", "", "Authorization", bearer), 404, "room-not-found")

	w = e.do(http.MethodGet, "/r/annex/participants", "", "Authorization", bearer)
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"participants": [], "recording": false}`, w.Body.String(), "configured, nobody there yet")

	rm, err := e.mgr.Create("annex")
	require.NoError(t, err)
	speaker := &fakeParticipant{
		info: room.Info{ID: "web-speaker", Name: "Ada", Kind: room.KindWebRTC, Format: room.PCMU},
		tone: &mediatest.Tone{Freq: 440, Amp: 0.5, Rate: media.Rate48k}, // RMS -9 dBov
	}
	caller := &fakeParticipant{info: room.Info{ID: "call-id-1@pbx", Name: "+49 *** 12", Kind: room.KindPhone, Format: room.PCMU}}
	require.NoError(t, rm.Join(speaker))
	require.NoError(t, rm.Join(caller))
	require.NoError(t, rm.Mute("call-id-1@pbx", true))
	now := t0
	for range 3 {
		now = now.Add(media.FrameDuration)
		rm.Tick(now)
	}

	type row struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Kind     string `json:"kind"`
		Speaking bool   `json:"speaking"`
		Muted    bool   `json:"muted"`
		Level    int    `json:"level"`
	}
	list := func() []row {
		t.Helper()
		w := e.do(http.MethodGet, "/r/annex/participants", "", "Authorization", bearer)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		var state struct {
			Participants []row `json:"participants"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &state))
		return state.Participants
	}
	rows := list()
	require.Len(t, rows, 2)
	require.Equal(t, row{ID: rows[0].ID, Name: "Ada", Kind: "webrtc", Speaking: true, Level: -9}, rows[0])
	require.Equal(t, row{ID: rows[1].ID, Name: "+49 *** 12", Kind: "phone", Muted: true, Level: -127}, rows[1])
	require.Regexp(t, `^[A-Za-z0-9_-]{16}$`, rows[0].ID)
	require.NotEqual(t, rows[0].ID, rows[1].ID)
	require.NotContains(t, rows[1].ID, "call-id")
	require.Equal(t, rows[0].ID, list()[0].ID, "ids are stable between polls")

	// Listening participants need no publish grant to see the list.
	listen, _, err := e.auth.IssueToken(TokenRequest{Room: "annex", Subject: "l", Grants: Grants{Listen: true}, Lifetime: time.Minute}, e.now)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/r/annex/participants", "", "Authorization", "Bearer "+listen).Code)

	// Open rooms show their list to anyone with the link.
	w = e.do(http.MethodGet, "/r/lobby/participants", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"participants": [], "recording": false}`, w.Body.String())
}

// TestJoinParticipantsRecording: the page's poll says whether the room is
// recorded, following room.Room.SetRecording both ways, next to an
// unchanged participant list.
func TestJoinParticipantsRecording(t *testing.T) {
	e := newJoinEnv(t)
	tok, _ := requireToken(t, e, e.postToken("annex", "Ada", "2468"), "annex")
	type state struct {
		Participants []struct {
			Name string `json:"name"`
		} `json:"participants"`
		Recording *bool `json:"recording"` // a pointer: a missing flag fails
	}
	get := func() state {
		t.Helper()
		w := e.do(http.MethodGet, "/r/annex/participants", "", "Authorization", "Bearer "+tok)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var s state
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &s))
		require.NotNil(t, s.Recording, "no recording flag in %s", w.Body.String())
		return s
	}

	require.False(t, *get().Recording, "a room that is not open is not recorded")
	rm, err := e.mgr.Create("annex")
	require.NoError(t, err)
	require.NoError(t, rm.Join(&fakeParticipant{info: room.Info{ID: "web-1", Name: "Ada", Kind: room.KindWebRTC, Format: room.PCMU}}))

	for i, on := range []bool{false, true, true, false, true} {
		rm.SetRecording(on)
		s := get()
		require.Equal(t, on, *s.Recording, "step %d: SetRecording(%v)", i, on)
		require.Len(t, s.Participants, 1, "step %d", i)
		require.Equal(t, "Ada", s.Participants[0].Name, "step %d", i)
	}

	// The flag belongs to the room asked about, not to every room.
	lobby, err := e.mgr.Create("lobby")
	require.NoError(t, err)
	require.False(t, lobby.Recording())
	w := e.do(http.MethodGet, "/r/lobby/participants", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"participants": [], "recording": false}`, w.Body.String())
	lobby.SetRecording(true)
	w = e.do(http.MethodGet, "/r/lobby/participants", "")
	require.JSONEq(t, `{"participants": [], "recording": true}`, w.Body.String())
}

// joinClock is the test's clock as the cluster's memory state reads it.
type joinClock struct{ now *time.Time }

func (c joinClock) Now() time.Time { return *c.now }

// TestJoinTokenPINLockoutShared: two nodes sharing their lockouts (the
// cluster's memory state here, Redis in a cluster): three wrong PINs on
// one and two on the other lock the client out on both, although
// neither node counted five; a right PIN on one after the lockout
// clears the count on both.
func TestJoinTokenPINLockoutShared(t *testing.T) {
	e := newJoinEnv(t)
	shared := cluster.NewMemory(cluster.WithClock(joinClock{&e.now}))
	e.h = New(slog.New(slog.DiscardHandler), WithJoinPage(e.mgr, e.auth), WithPINLockouts(shared)).Handler()
	other := New(slog.New(slog.DiscardHandler), WithJoinPage(e.mgr, e.auth), WithPINLockouts(shared)).Handler()
	onOther := func(pin string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/r/board/token", strings.NewReader(`{"name":"Eve","pin":"`+pin+`"}`))
		r.RemoteAddr = "192.0.2.1:40000"
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		other.ServeHTTP(w, r)
		return w
	}
	for range 3 {
		requireProblem(t, e.postToken("board", "Eve", "0000"), 403, "wrong-pin")
	}
	for range 2 {
		requireProblem(t, onOther("0000"), 403, "wrong-pin")
	}
	w := e.postToken("board", "Eve", "4711")
	requireProblem(t, w, 429, "too-many-attempts")
	require.Equal(t, "60", w.Header().Get("Retry-After"), "the shared lockout's first minute")
	requireProblem(t, onOther("4711"), 429, "too-many-attempts")
	requireToken(t, e, e.postToken("board", "Ada", "4711", "RemoteAddr", "192.0.2.2:1"), "board")
	until, err := shared.Locked(context.Background(), "pin:board:192.0.2.1/32")
	require.NoError(t, err)
	require.Equal(t, e.now.Add(time.Minute), until)

	e.now = e.now.Add(time.Minute)
	requireToken(t, e, e.postToken("board", "Eve", "4711"), "board")
	until, err = shared.Locked(context.Background(), "pin:board:192.0.2.1/32")
	require.NoError(t, err)
	require.True(t, until.IsZero())
}
