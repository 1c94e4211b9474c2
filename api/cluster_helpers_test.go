package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/stream"
)

// fakeNodes is the NodeLister seam: the live nodes the test says, or an
// error.
type fakeNodes struct {
	mu    sync.Mutex
	nodes []cluster.NodeInfo
	err   error
}

func (f *fakeNodes) Nodes(context.Context) ([]cluster.NodeInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.nodes), f.err
}

func (f *fakeNodes) set(nodes []cluster.NodeInfo, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes, f.err = nodes, err
}

// fakeIndex is the RecordingsIndex seam: a map the test fills as the
// binary would from the holders' recorders.
type fakeIndex struct {
	mu  sync.Mutex
	m   map[recorder.ID]RecordingEntry
	err error
}

func (f *fakeIndex) Recording(_ context.Context, id recorder.ID) (RecordingEntry, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[id]
	return e, ok, f.err
}

func (f *fakeIndex) Recordings(_ context.Context, flt recorder.Filter) ([]RecordingEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []RecordingEntry
	for _, e := range f.m {
		if (flt.Tenant == "" || e.Tenant == flt.Tenant) && (flt.Room == "" || e.Room == flt.Room) &&
			(flt.State == "" || e.State == flt.State) {
			out = append(out, e)
		}
	}
	return out, f.err
}

// put indexes m as held by node.
func (f *fakeIndex) put(node cluster.NodeID, m recorder.Manifest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[recorder.ID]RecordingEntry{}
	}
	f.m[m.ID] = RecordingEntry{ID: m.ID, Node: node, Tenant: m.Tenant, Room: m.Room, State: m.State,
		StartedAt: m.StartedAt, ExpiresAt: m.ExpiresAt, Bytes: m.Bytes, Duration: m.Duration}
}

// fakeLocator is the RoomLocator seam: which node hosts which room, or an
// error for every room.
type fakeLocator struct {
	url   func(cluster.NodeID) string
	mu    sync.Mutex
	hosts map[room.ID]cluster.NodeID
	err   error
}

func (f *fakeLocator) LocateRoom(_ context.Context, id room.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	node, ok := f.hosts[id]
	if !ok {
		return nil
	}
	return &room.MovedError{Room: id, Node: string(node), URL: f.url(node)}
}

// host says node hosts room id.
func (f *fakeLocator) host(id room.ID, node cluster.NodeID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hosts == nil {
		f.hosts = map[room.ID]cluster.NodeID{}
	}
	f.hosts[id] = node
}

// fail makes every lookup fail with err.
func (f *fakeLocator) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// nodeIndex is one node's view of the shared index, which can lie about
// holders as a lagging replica would.
type nodeIndex struct {
	*fakeIndex
	mu   sync.Mutex
	lies map[recorder.ID]cluster.NodeID
}

// lie makes this view name node as the holder of id.
func (n *nodeIndex) lie(id recorder.ID, node cluster.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lies == nil {
		n.lies = map[recorder.ID]cluster.NodeID{}
	}
	n.lies[id] = node
}

func (n *nodeIndex) Recording(ctx context.Context, id recorder.ID) (RecordingEntry, bool, error) {
	e, ok, err := n.fakeIndex.Recording(ctx, id)
	n.mu.Lock()
	defer n.mu.Unlock()
	if node, lying := n.lies[id]; lying {
		e.Node = node
	}
	return e, ok, err
}

// clusterNode is one node of a test cluster: a Server on a loopback port
// with its own recorder, room manager and audit log, and the cluster's
// shared node list, index and API keys.
type clusterNode struct {
	id      cluster.NodeID
	url     string
	rec     *recorder.Recorder
	audit   *AuditLog
	dir     string
	rooms   *fakeRoomRecorder
	index   *nodeIndex
	mgr     *room.Manager
	auth    *Auth
	streams *listStreamer
}

// listStreamer is a RoomStreamer seam that only lists egresses.
type listStreamer struct {
	RoomStreamer // nil: the tests call only Streams
	mu           sync.Mutex
	list         []stream.Status
}

func (l *listStreamer) Streams() []stream.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list)
}

// testCluster is two or more nodes sharing the bootstrap key, a key store
// (as a cluster must share its keys), the node list and the index.
type testCluster struct {
	clock *recClock
	key   string // bootstrap admin key, every tenant
	hash  string
	keys  *KeyStore
	nodes *fakeNodes
	index *fakeIndex
	hosts *fakeLocator
	byID  map[cluster.NodeID]*clusterNode
}

func newTestCluster(t *testing.T, ids ...cluster.NodeID) *testCluster {
	t.Helper()
	c := &testCluster{clock: &recClock{now: t0}, nodes: &fakeNodes{}, index: &fakeIndex{}, byID: map[cluster.NodeID]*clusterNode{}}
	c.hosts = &fakeLocator{url: func(n cluster.NodeID) string { return c.byID[n].url }}
	c.key, c.hash = NewAdminKey()
	var err error
	c.keys, err = OpenKeyStore(filepath.Join(t.TempDir(), KeyStoreFileName))
	require.NoError(t, err)
	var infos []cluster.NodeInfo
	for _, id := range ids {
		n := c.start(t, id)
		c.byID[id] = n
		infos = append(infos, cluster.NodeInfo{ID: id, HTTPURL: n.url, SIPAddr: string(id) + ".example:5060", Rooms: 1, CPU: 0.25})
	}
	c.nodes.set(infos, nil)
	return c
}

// start runs node id.
func (c *testCluster) start(t *testing.T, id cluster.NodeID) *clusterNode {
	t.Helper()
	n := &clusterNode{id: id, dir: t.TempDir(), rooms: &fakeRoomRecorder{}, index: &nodeIndex{fakeIndex: c.index}, streams: &listStreamer{}}
	log := slog.New(slog.DiscardHandler)
	rec, err := recorder.New(recorder.Options{
		Dir: filepath.Join(n.dir, "store"), Node: string(id), ReceiptKey: recTestKey, Now: c.clock.Now, Sync: recorder.SyncNever,
		Policies: []recorder.Policy{{Name: "minute", Duration: time.Minute, Max: time.Hour}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rec.Close(context.Background())) })
	n.rec = rec
	n.audit, err = OpenAuditLog(filepath.Join(n.dir, "audit"), log, WithAuditClock(c.clock.Now))
	require.NoError(t, err)
	n.mgr = room.NewManager(room.WithRoomDefaults(room.WithManualTick(), room.WithEmptyTimeout(-1)))
	t.Cleanup(func() { require.NoError(t, n.mgr.Close(context.Background())) })
	now := t0
	n.auth = newTestAuth(t, joinRooms, &now)
	_, n.url = startServer(t, WithAdmin(n.mgr, n.auth, []string{c.hash}), WithKeyStore(c.keys), WithAuditLog(n.audit),
		WithRecordings(Recordings{Recorder: rec, Rooms: n.rooms, LinkSecret: recTestKey, Now: c.clock.Now}),
		WithNodes(id, c.nodes), WithRecordingsIndex(n.index), WithRoomLocator(c.hosts), WithJoinPage(n.mgr, n.auth), WithStreams(n.streams))
	return n
}

// record makes a two-second recording on node and indexes it.
func (c *testCluster) record(t *testing.T, node cluster.NodeID, roomID room.ID, tenant recorder.Tenant) recorder.Manifest {
	t.Helper()
	e := &recEnv{rec: c.byID[node].rec}
	m := e.record(t, roomID, tenant, "minute")
	c.index.put(node, m)
	return m
}

// do sends a request to node with key (none when ""), a JSON body when
// body is not "", and the extra header pairs; redirects are not
// followed.
func (c *testCluster) do(t *testing.T, node cluster.NodeID, key, method, path, body string, kv ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.byID[node].url+path, rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// read returns the body of resp.
func read(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

// requireStatus checks resp's status, showing the body when it differs.
func requireStatus(t *testing.T, resp *http.Response, status int) []byte {
	t.Helper()
	b := read(t, resp)
	require.Equal(t, status, resp.StatusCode, string(b))
	return b
}

// requireHTTPProblem checks a problem+json answer from a real server.
func requireHTTPProblem(t *testing.T, resp *http.Response, status int, slug string) Problem {
	t.Helper()
	b := requireStatus(t, resp, status)
	require.Equal(t, ContentTypeProblem, resp.Header.Get("Content-Type"))
	var p Problem
	require.NoError(t, json.Unmarshal(b, &p))
	require.Equal(t, ProblemTypeBase+slug, p.Type)
	return p
}

// auditOf returns node's audit entries of action, in no particular order
// (the test clock stands still, so they all have the same time).
func (c *testCluster) auditOf(t *testing.T, node cluster.NodeID, action string) []AuditEntry {
	t.Helper()
	p, err := c.byID[node].audit.Query(AuditQuery{Action: action, Limit: MaxAuditPage})
	require.NoError(t, err)
	return p.Entries
}
