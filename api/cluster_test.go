package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// TestClusterRecordingsThroughAnotherNode: a recording held by node b is
// listed, read, downloaded (whole and by Range), linked, extended, held
// and deleted through node a, over real HTTP between the two servers. b
// changes its manifest and writes the receipt; both nodes audit the
// requests, a that it forwarded them, b that they were forwarded.
func TestClusterRecordingsThroughAnotherNode(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	onA := c.record(t, "node-a", "board", "acme")
	onB := c.record(t, "node-b", "sales", "acme")
	path := "/api/v1/recordings/" + string(onB.ID)

	// The list on a holds both, each with its node.
	var page recordingPage
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/recordings", ""), 200), &page))
	require.Len(t, page.Recordings, 2)
	nodes := map[recorder.ID]string{}
	for _, m := range page.Recordings {
		nodes[m.ID] = m.Node
	}
	require.Equal(t, map[recorder.ID]string{onA.ID: "node-a", onB.ID: "node-b"}, nodes)

	// One manifest, complete, as b has it.
	var m recorder.Manifest
	resp := c.do(t, "node-a", c.key, http.MethodGet, path, "")
	require.NoError(t, json.Unmarshal(requireStatus(t, resp, 200), &m))
	require.Equal(t, onB.ID, m.ID)
	require.Equal(t, "node-b", m.Node)
	require.Len(t, m.Participants, 1)
	require.Equal(t, "1.1 node-a", resp.Header.Get("Via"))

	// The audio: the same bytes, type and ETag; a Range still works.
	resp = c.do(t, "node-a", c.key, http.MethodGet, path+"/download", "")
	audio := requireStatus(t, resp, 200)
	require.Equal(t, onB.Bytes, int64(len(audio)))
	require.Equal(t, recorder.Format, resp.Header.Get("Content-Type"))
	sum := sha256.Sum256(audio)
	require.Equal(t, `"`+hex.EncodeToString(sum[:])+`"`, resp.Header.Get("ETag"))
	resp = c.do(t, "node-a", c.key, http.MethodGet, path+"/download", "", "Range", "bytes=100-199", "If-Range", resp.Header.Get("ETag"))
	require.Equal(t, audio[100:200], requireStatus(t, resp, http.StatusPartialContent))
	require.Equal(t, "bytes 100-199/"+strconv.Itoa(len(audio)), resp.Header.Get("Content-Range"))

	// A signed link made through a points at a, and downloads through it.
	var link linkResponse
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", c.key, http.MethodPost, path+"/link", ""), 201), &link))
	u, err := url.Parse(link.URL)
	require.NoError(t, err)
	require.Equal(t, c.byID["node-a"].url, "http://"+u.Host, "the link names the node the client asked")
	require.Equal(t, audio, requireStatus(t, c.do(t, "node-a", "", http.MethodGet, link.Path, ""), 200))

	// Changes happen on b.
	resp = c.do(t, "node-a", c.key, http.MethodPost, path+"/extend", `{"until":"2025-03-01T12:30:00Z"}`)
	requireStatus(t, resp, 200)
	got, err := c.byID["node-b"].rec.Get(onB.ID)
	require.NoError(t, err)
	require.Equal(t, "2025-03-01T12:30:00Z", got.ExpiresAt.Format("2006-01-02T15:04:05Z"))
	requireStatus(t, c.do(t, "node-a", c.key, http.MethodPost, path+"/hold", `{"reason":"case 7"}`), 200)
	got, _ = c.byID["node-b"].rec.Get(onB.ID)
	require.Equal(t, "case 7", got.LegalHold.Reason)
	requireHTTPProblem(t, c.do(t, "node-a", c.key, http.MethodDelete, path, `{"reason":"admin"}`), 409, "legal-hold")
	requireStatus(t, c.do(t, "node-a", c.key, http.MethodDelete, path+"/hold", ""), 200)
	requireStatus(t, c.do(t, "node-a", c.key, http.MethodDelete, path, `{"reason":"admin"}`), 200)
	got, _ = c.byID["node-b"].rec.Get(onB.ID)
	require.Equal(t, recorder.StateDeleted, got.State)
	require.NotEmpty(t, got.Deletion.Receipt)
	rb, err := c.byID["node-b"].rec.Receipts(recorder.ReceiptFilter{})
	require.NoError(t, err)
	require.Len(t, rb, 1, "the holder writes the receipt")
	require.Equal(t, onB.ID, rb[0].Recording)
	ra, err := c.byID["node-a"].rec.Receipts(recorder.ReceiptFilter{})
	require.NoError(t, err)
	require.Empty(t, ra)
	_, err = c.byID["node-a"].rec.Get(onB.ID)
	require.ErrorIs(t, err, recorder.ErrNotFound, "nothing of it moved to a")

	// Both sides audited every request.
	for _, action := range []string{"recordings.get", "recordings.extend", "recordings.hold", "recordings.unhold", "recordings.delete"} {
		onA, onB := c.auditOf(t, "node-a", action), c.auditOf(t, "node-b", action)
		require.NotEmpty(t, onA, action)
		require.Len(t, onB, len(onA), action)
		var statusA, statusB []int
		for i := range onA {
			require.Equal(t, "node-b", onA[i].ForwardedTo, action)
			require.Equal(t, "node-a", onB[i].ForwardedFrom, action)
			require.Equal(t, string(got.ID), onA[i].Target, action)
			require.Equal(t, string(got.ID), onB[i].Target, action)
			require.Equal(t, "acme", onA[i].Tenant, action)
			require.Equal(t, "127.0.0.0", onB[i].Client, "b sees a's address")
			statusA, statusB = append(statusA, onA[i].Status), append(statusB, onB[i].Status)
		}
		require.ElementsMatch(t, statusA, statusB, action)
	}
	downloads := c.auditOf(t, "node-a", "recordings.download")
	require.Len(t, downloads, 3, "two with the key, one with the link")
	for _, d := range downloads {
		require.Equal(t, "node-b", d.ForwardedTo)
	}
}

// TestClusterRecordingsTenants: a key of one tenant on node a neither
// lists nor reaches another tenant's recording held by b (403, as on b
// itself: the answer does not depend on the node asked); a viewer of the
// recording's tenant reads it through a but cannot change it.
func TestClusterRecordingsTenants(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	globex := c.record(t, "node-b", "sales", "globex")
	acme := c.record(t, "node-b", "board", "acme")
	acmeAdmin, _ := newClusterKey(t, c, "acme ops", RoleAdmin, "acme")
	globexViewer, _ := newClusterKey(t, c, "globex wall", RoleViewer, "globex")

	var page recordingPage
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", acmeAdmin, http.MethodGet, "/api/v1/recordings", ""), 200), &page))
	require.Len(t, page.Recordings, 1)
	require.Equal(t, acme.ID, page.Recordings[0].ID)

	gpath := "/api/v1/recordings/" + string(globex.ID)
	for _, node := range []cluster.NodeID{"node-a", "node-b"} {
		requireHTTPProblem(t, c.do(t, node, acmeAdmin, http.MethodGet, gpath, ""), 403, "forbidden")
		requireHTTPProblem(t, c.do(t, node, acmeAdmin, http.MethodGet, gpath+"/download", ""), 403, "forbidden")
		requireHTTPProblem(t, c.do(t, node, acmeAdmin, http.MethodDelete, gpath, `{"reason":"admin"}`), 403, "forbidden")
	}
	require.Len(t, c.auditOf(t, "node-b", "recordings.delete"), 1, "a refused without forwarding")
	require.Empty(t, c.auditOf(t, "node-a", "recordings.delete")[0].ForwardedTo)
	require.Equal(t, http.StatusForbidden, c.auditOf(t, "node-a", "recordings.delete")[0].Status)

	requireStatus(t, c.do(t, "node-a", globexViewer, http.MethodGet, gpath, ""), 200)
	requireHTTPProblem(t, c.do(t, "node-a", globexViewer, http.MethodPost, gpath+"/hold", `{"reason":"x"}`), 403, "forbidden")
	got, err := c.byID["node-b"].rec.Get(globex.ID)
	require.NoError(t, err)
	require.Nil(t, got.LegalHold)
	require.Equal(t, recorder.StateComplete, got.State)
}

// newClusterKey makes a key through node-a's API; the cluster's nodes
// share the key store.
func newClusterKey(t *testing.T, c *testCluster, name string, role Role, tenant string) (key, id string) {
	t.Helper()
	b, err := json.Marshal(keyRequest{Name: name, Role: role, Tenant: tenant})
	require.NoError(t, err)
	var k newKeyJSON
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", c.key, http.MethodPost, "/api/v1/keys", string(b)), 201), &k))
	return k.Key, k.ID
}

// TestClusterRecordingsHolderGone: a recording whose holder is not among
// the live nodes answers 503 naming the node; a holder that is listed but
// does not answer 502; an ID nobody has 404 as on one node; an index that
// cannot be read 503 with Retry-After.
func TestClusterRecordingsHolderGone(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	onB := c.record(t, "node-b", "sales", "acme")
	path := "/api/v1/recordings/" + string(onB.ID)
	live, _ := c.nodes.Nodes(t.Context())

	c.nodes.set(live[:1], nil) // b died
	p := requireHTTPProblem(t, c.do(t, "node-a", c.key, http.MethodGet, path, ""), 503, "node-unavailable")
	require.Contains(t, p.Detail, "node-b")
	require.Equal(t, "the node holding this recording is not available", p.Title)
	require.Equal(t, http.StatusServiceUnavailable, c.auditOf(t, "node-a", "recordings.get")[0].Status)

	dead := live[1]
	dead.HTTPURL = "http://127.0.0.1:1" // listed, but nobody listens
	c.nodes.set([]cluster.NodeInfo{live[0], dead}, nil)
	requireHTTPProblem(t, c.do(t, "node-a", c.key, http.MethodGet, path, ""), 502, "node-unreachable")

	requireHTTPProblem(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/recordings/"+string(recorder.NewID()), ""), 404, "recording-not-found")

	c.nodes.set(live, nil)
	c.index.mu.Lock()
	c.index.err = errors.New("redis: i/o timeout")
	c.index.mu.Unlock()
	resp := c.do(t, "node-a", c.key, http.MethodGet, path, "")
	requireHTTPProblem(t, resp, 503, "cluster-unavailable")
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	requireHTTPProblem(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/recordings", ""), 503, "cluster-unavailable")
}

// TestClusterForwardLoopGuard: a forwarded request is never forwarded
// again. The nodes' views of the index disagree (a replica lags): a's
// says b holds a recording, b's says a does, and neither has it. Asked on
// a, a forwards to b, which, seeing the mark, answers 404 itself instead
// of sending it back.
func TestClusterForwardLoopGuard(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	ghost := recorder.Manifest{ID: recorder.NewID(), Tenant: "acme", Room: "board", State: recorder.StateComplete}
	c.index.put("node-b", ghost)
	c.byID["node-b"].index.lie(ghost.ID, "node-a")

	resp := c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/recordings/"+string(ghost.ID), "")
	requireHTTPProblem(t, resp, 404, "recording-not-found")
	require.Len(t, c.auditOf(t, "node-b", "recordings.get"), 1, "one hop")
	require.Len(t, c.auditOf(t, "node-a", "recordings.get"), 1, "and not back")

	// Asked on b, b forwards to a, which answers 404 itself as well.
	requireHTTPProblem(t, c.do(t, "node-b", c.key, http.MethodGet, "/api/v1/recordings/"+string(ghost.ID), ""), 404, "recording-not-found")
	from := []string{}
	for _, e := range c.auditOf(t, "node-a", "recordings.get") {
		from = append(from, e.ForwardedFrom)
	}
	require.ElementsMatch(t, []string{"", "node-b"}, from)

	// A client that marks its request itself only gets the local answer.
	onB := c.record(t, "node-b", "sales", "acme")
	requireHTTPProblem(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/recordings/"+string(onB.ID), "",
		HeaderForwarded, "node-x"), 404, "recording-not-found")
}

// TestNodesSingle: without WithNodes the node lists itself, from what it
// knows: its rooms, its phone calls, the address it was reached at.
func TestNodesSingle(t *testing.T) {
	e := newAdminEnv(t)
	rm, err := e.mgr.Create("adhoc")
	require.NoError(t, err)
	require.NoError(t, rm.Join(&fakeParticipant{info: room.Info{ID: "c1", Name: "Bob", Kind: room.KindPhone, Format: room.PCMU}}))
	require.NoError(t, rm.Join(&fakeParticipant{info: room.Info{ID: "w1", Name: "Ada", Kind: room.KindWebRTC, Format: room.PCMU}}))

	w := e.admin(http.MethodGet, "/api/v1/nodes", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var page nodePage
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	require.Len(t, page.Nodes, 1)
	n := page.Nodes[0]
	require.Equal(t, page.Self, n.ID)
	require.NotEmpty(t, n.ID)
	require.True(t, n.Self)
	require.Equal(t, 1, n.Rooms)
	require.Equal(t, 1, n.Calls)
	require.Equal(t, "http://example.com", n.HTTPURL)

	acme, _ := e.newKey(t, "acme ops", RoleAdmin, "acme")
	requireProblem(t, e.as(acme, http.MethodGet, "/api/v1/nodes", ""), http.StatusForbidden, "forbidden")
	requireProblem(t, e.do(http.MethodGet, "/api/v1/nodes", ""), http.StatusUnauthorized, "api-key-missing")
	p, err := e.audit.Query(AuditQuery{Action: "nodes.list"})
	require.NoError(t, err)
	require.Len(t, p.Entries, 2)
	require.Equal(t, ClassAccess, p.Entries[0].Class)
}

// TestNodesCluster: the live nodes of the cluster, this one marked; this
// node even before its heartbeat shows; 503 when the list cannot be read.
func TestNodesCluster(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	var page nodePage
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-b", c.key, http.MethodGet, "/api/v1/nodes", ""), 200), &page))
	require.Equal(t, cluster.NodeID("node-b"), page.Self)
	require.Equal(t, []nodeJSON{
		{ID: "node-a", HTTPURL: c.byID["node-a"].url, SIPAddr: "node-a.example:5060", Rooms: 1, CPU: 0.25},
		{ID: "node-b", HTTPURL: c.byID["node-b"].url, SIPAddr: "node-b.example:5060", Rooms: 1, CPU: 0.25, Self: true},
	}, page.Nodes)

	live, _ := c.nodes.Nodes(t.Context())
	c.nodes.set(live[1:], nil) // a's heartbeat is not in yet
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/nodes", ""), 200), &page))
	require.Len(t, page.Nodes, 2)
	require.Equal(t, cluster.NodeID("node-a"), page.Nodes[0].ID)
	require.True(t, page.Nodes[0].Self)
	require.Equal(t, c.byID["node-a"].url, page.Nodes[0].HTTPURL)

	c.nodes.set(nil, errors.New("redis: connection refused"))
	resp := c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/nodes", "")
	p := requireHTTPProblem(t, resp, 503, "cluster-unavailable")
	require.NotContains(t, p.Detail, "redis", "the cause stays in the log")
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
}

// TestClusterTenantErasureAndReceipts: erasing a tenant through node a
// erases its recordings on b too, and names the one held by a node that
// is down; the receipts of both nodes list and export through a; a node
// that does not answer is named, not silently left out.
func TestClusterTenantErasureAndReceipts(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	onA := c.record(t, "node-a", "board", "acme")
	onB := c.record(t, "node-b", "sales", "acme")
	other := c.record(t, "node-b", "sales", "globex")
	lost := recorder.Manifest{ID: recorder.NewID(), Tenant: "acme", Room: "board", State: recorder.StateComplete}
	c.index.put("node-c", lost) // node-c is down

	var sum eraseSummary
	resp := c.do(t, "node-a", c.key, http.MethodDelete, "/api/v1/tenants/acme/recordings", `{"reason":"erasure-request"}`)
	require.NoError(t, json.Unmarshal(requireStatus(t, resp, 200), &sum))
	var deleted []recorder.ID
	for _, d := range sum.Deleted {
		deleted = append(deleted, d.ID)
	}
	require.ElementsMatch(t, []recorder.ID{onA.ID, onB.ID}, deleted)
	require.Len(t, sum.Failed, 1)
	require.Equal(t, lost.ID, sum.Failed[0].ID)
	require.Contains(t, sum.Failed[0].Error, "node node-c")
	require.Empty(t, sum.Unreached)
	for node, id := range map[cluster.NodeID]recorder.ID{"node-a": onA.ID, "node-b": onB.ID} {
		m, err := c.byID[node].rec.Get(id)
		require.NoError(t, err)
		require.Equal(t, recorder.StateDeleted, m.State)
	}
	m, err := c.byID["node-b"].rec.Get(other.ID)
	require.NoError(t, err)
	require.Equal(t, recorder.StateComplete, m.State, "another tenant's recording stays")
	require.Equal(t, "node-b", c.auditOf(t, "node-a", "tenants.erase")[0].ForwardedTo)
	require.Equal(t, "node-a", c.auditOf(t, "node-b", "tenants.erase")[0].ForwardedFrom)

	var page receiptPage
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/receipts?tenant=acme", ""), 200), &page))
	require.Len(t, page.Receipts, 2)
	require.Equal(t, "node-a", page.Receipts[0].Node)
	require.Equal(t, "node-b", page.Receipts[1].Node)
	csv := string(requireStatus(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/receipts/export?format=csv", ""), 200))
	require.Contains(t, csv, string(onA.ID))
	require.Contains(t, csv, string(onB.ID))

	live, _ := c.nodes.Nodes(t.Context())
	dead := live[1]
	dead.HTTPURL = "http://127.0.0.1:1"
	c.nodes.set([]cluster.NodeInfo{live[0], dead}, nil)
	require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/receipts", ""), 200), &page))
	require.Len(t, page.Receipts, 1)
	require.Equal(t, []unreachedNode{{Node: "node-b", Error: "did not answer"}}, page.Unreached)
	resp = c.do(t, "node-a", c.key, http.MethodGet, "/api/v1/receipts/export", "")
	requireStatus(t, resp, 200)
	require.Equal(t, "node-b", resp.Header.Get(HeaderUnreachedNodes))
}

// TestClusterAuditQuery: the audit log read through one node pages
// through every node's entries, newest first, each with its node, with
// nothing twice and nothing left out.
func TestClusterAuditQuery(t *testing.T) {
	c := newTestCluster(t, "node-a", "node-b")
	for _, node := range []cluster.NodeID{"node-a", "node-b"} {
		m := c.record(t, node, "board", "acme")
		for range 3 {
			requireStatus(t, c.do(t, node, c.key, http.MethodGet, "/api/v1/recordings/"+string(m.ID), ""), 200)
		}
	}
	seen := map[string]string{}
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 4, "3 pages of 2")
		path := "/api/v1/audit?action=recordings.get&limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page AuditPage
		require.NoError(t, json.Unmarshal(requireStatus(t, c.do(t, "node-a", c.key, http.MethodGet, path, ""), 200), &page))
		require.Empty(t, page.Unreached)
		for _, e := range page.Entries {
			require.NotContains(t, seen, e.ID)
			seen[e.ID] = e.Node
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	byNode := map[string]int{}
	for _, node := range seen {
		byNode[node]++
	}
	require.Equal(t, map[string]int{"node-a": 3, "node-b": 3}, byNode)
}
