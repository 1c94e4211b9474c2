package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/stream"
)

// TestClusterJoinPage: the join page of a room another node hosts
// redirects there (path and query kept), also for rooms only that node
// knows; its participant list too; the token endpoint answers on any node
// with a token the owner accepts. When the owner cannot be known the page
// is served here and the list answers 503 with Retry-After.
func TestClusterJoinPage(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	b := c.byID["node-b"]
	for _, id := range []room.ID{"board", "adhoc"} {
		_, err := b.mgr.Create(id)
		require.NoError(t, err)
		c.hosts.host(id, "node-b")
	}

	resp := c.do(t, "node-a", "", http.MethodGet, "/r/board?lang=de", "")
	requireHTTPProblem(t, resp, http.StatusTemporaryRedirect, "room-moved")
	require.Equal(t, b.url+"/r/board?lang=de", resp.Header.Get("Location"))
	resp = c.do(t, "node-a", "", http.MethodGet, "/r/adhoc", "")
	requireStatus(t, resp, http.StatusTemporaryRedirect)
	require.Equal(t, b.url+"/r/adhoc", resp.Header.Get("Location"), "a room only the owner knows")
	resp = c.do(t, "node-a", "", http.MethodGet, "/r/board/participants", "")
	requireStatus(t, resp, http.StatusTemporaryRedirect)
	require.Equal(t, b.url+"/r/board/participants", resp.Header.Get("Location"))

	requireStatus(t, c.do(t, "node-b", "", http.MethodGet, "/r/board", ""), 200)
	requireStatus(t, c.do(t, "node-a", "", http.MethodGet, "/r/lobby", ""), 200)

	var tok tokenResponse
	resp = c.do(t, "node-a", "", http.MethodPost, "/r/board/token", body(joinRequest{Name: "Ada", PIN: "4711"}))
	require.NoError(t, json.Unmarshal(requireStatus(t, resp, 200), &tok))
	_, err := b.auth.VerifyToken(tok.Token, "board", t0)
	require.NoError(t, err, "the owner accepts a token made on another node")

	c.hosts.fail(fmt.Errorf("owner of board: %w", room.ErrUnavailable))
	requireStatus(t, c.do(t, "node-a", "", http.MethodGet, "/r/board", ""), 200)
	resp = c.do(t, "node-a", "", http.MethodGet, "/r/board/participants", "")
	requireHTTPProblem(t, resp, http.StatusServiceUnavailable, "room-unavailable")
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
}

// TestClusterRoomActionsForwarded: the admin routes of a room another
// node hosts are forwarded to it: reading, locking, muting and recording
// the room through node a act on node b's room, audited on both; a key
// of another tenant is refused on a; an owner that cannot be known is
// 503.
func TestClusterRoomActionsForwarded(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	b := c.byID["node-b"]
	rm, err := b.mgr.Create("adhoc")
	require.NoError(t, err)
	require.NoError(t, rm.Join(&fakeParticipant{info: room.Info{ID: "p1", Name: "Ada", Kind: room.KindWebRTC, Format: room.PCMU}}))
	c.hosts.host("adhoc", "node-b")
	started := make(chan room.ID, 1)
	b.rooms.start = func(id room.ID) (recorder.Manifest, error) {
		started <- id
		return recorder.Manifest{ID: recorder.NewID(), Room: id, Node: "node-b"}, nil
	}

	var got roomJSON
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/rooms/adhoc", ""), 200), &got))
	require.True(t, got.Open)
	require.Len(t, got.Participants, 1)
	require.Equal(t, "Ada", got.Participants[0].Name)

	requireStatus(t, c.do(t, "node-a", c.key, http.MethodPost, "/api/v1/rooms/adhoc/lock", ""), http.StatusNoContent)
	require.True(t, rm.Locked())
	requireStatus(t, c.do(t, "node-a", c.key, http.MethodPost, "/api/v1/rooms/adhoc/participants/p1/mute", ""), http.StatusNoContent)
	require.True(t, rm.Participants()[0].Muted)
	requireStatus(t, c.do(t, "node-a", c.key, http.MethodPost, "/api/v1/rooms/adhoc/recording/start", ""), http.StatusCreated)
	require.Equal(t, room.ID("adhoc"), <-started)

	for _, action := range []string{"rooms.get", "rooms.lock", "participants.mute", "recordings.start"} {
		onA, onB := c.auditOf(t, "node-a", action), c.auditOf(t, "node-b", action)
		require.Len(t, onA, 1, action)
		require.Len(t, onB, 1, action)
		require.Equal(t, "node-b", onA[0].ForwardedTo, action)
		require.Equal(t, "node-a", onB[0].ForwardedFrom, action)
		require.Equal(t, "adhoc", onA[0].Target, action)
		require.Equal(t, onA[0].Status, onB[0].Status, action)
	}

	globex, _ := newClusterKey(t, c, "globex ops", RoleAdmin, "globex")
	requireHTTPProblem(t, c.do(t, "node-a", globex, http.MethodPost, "/api/v1/rooms/adhoc/unlock", ""), 403, "forbidden")
	require.Empty(t, c.auditOf(t, "node-b", "rooms.unlock"), "refused on a, not forwarded")
	require.True(t, rm.Locked())

	c.hosts.fail(fmt.Errorf("owner of adhoc: %w", room.ErrUnavailable))
	resp := c.do(t, "node-a", c.key, http.MethodPost, "/api/v1/rooms/adhoc/unlock", "")
	requireHTTPProblem(t, resp, http.StatusServiceUnavailable, "room-unavailable")
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	require.True(t, rm.Locked())
}

// TestClusterRoomList: the room list on any node holds the rooms open on
// every node, each as its host shows it, with the host's ID.
func TestClusterRoomList(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	_, err := c.byID["node-a"].mgr.Create("lobby")
	require.NoError(t, err)
	rm, err := c.byID["node-b"].mgr.Create("board")
	require.NoError(t, err)
	rm.SetLocked(true)
	_, err = c.byID["node-b"].mgr.Create("adhoc")
	require.NoError(t, err)

	var rooms []roomJSON
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/rooms", ""), 200), &rooms))
	got := map[string]roomJSON{}
	var ids []string
	for _, r := range rooms {
		got[r.ID] = r
		ids = append(ids, r.ID)
	}
	require.Equal(t, []string{"adhoc", "annex", "board", "lobby", "vip"}, ids)
	require.Equal(t, "node-b", got["adhoc"].Node)
	require.True(t, got["board"].Open)
	require.True(t, got["board"].Locked)
	require.Equal(t, "node-b", got["board"].Node)
	require.Equal(t, "node-a", got["lobby"].Node)
	require.False(t, got["vip"].Open)
	require.Equal(t, "node-b", c.auditOf(t, "node-a", "rooms.list")[0].ForwardedTo)

	acme, _ := newClusterKey(t, c, "acme ops", RoleViewer, "acme")
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", acme, http.MethodGet, "/api/v1/rooms", ""), 200), &rooms))
	require.Len(t, rooms, 1, "only acme's room, from either node")
	require.Equal(t, "board", rooms[0].ID)
}

// TestClusterOptionsAlone: a room locator and an index without the live
// nodes (a wiring mistake) leave the recordings routes local, not broken.
func TestClusterOptionsAlone(t *testing.T) {
	e := newRecEnv(t)
	idx := &fakeIndex{}
	idx.put("node-b", recorder.Manifest{ID: recorder.NewID(), Tenant: "acme", Room: "board", State: recorder.StateComplete})
	loc := &fakeLocator{url: func(cluster.NodeID) string { return "http://192.0.2.7" }}
	log := slog.New(slog.DiscardHandler)
	key, hash := NewAdminKey()
	h := New(log, WithAdmin(e.mgr, e.auth, []string{hash}), WithRoomLocator(loc), WithRecordingsIndex(idx),
		WithRecordings(Recordings{Recorder: e.rec, Rooms: e.rooms, LinkSecret: recTestKey, Now: e.clock.Now})).Handler()
	for id := range idx.m {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/recordings/"+string(id), nil)
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		requireProblem(t, w, http.StatusNotFound, "recording-not-found")
	}
}

// TestClusterEgressList: the egress list on any node holds every node's
// egresses, each with its node, filtered by the key's tenant on each.
func TestClusterEgressList(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	c.byID["node-a"].streams.list = []stream.Status{{Room: "lobby", StartedAt: t0, Video: stream.VideoSlate}}
	c.byID["node-b"].streams.list = []stream.Status{{Room: "board", StartedAt: t0, Video: stream.VideoSlate}}

	var list []egressJSON
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/egresses", ""), 200), &list))
	require.Len(t, list, 2)
	require.Equal(t, "board", list[0].Room)
	require.Equal(t, "node-b", list[0].Node)
	require.Equal(t, "lobby", list[1].Room)
	require.Equal(t, "node-a", list[1].Node)

	acme, _ := newClusterKey(t, c, "acme wall", RoleViewer, "acme")
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", acme, http.MethodGet, "/api/v1/egresses", ""), 200), &list))
	require.Len(t, list, 1)
	require.Equal(t, "board", list[0].Room)
}
