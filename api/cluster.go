package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// The admin API in a cluster (DESIGN.md decisions 4 and 5): any node
// answers. GET /api/v1/nodes lists the live nodes; the recordings routes
// list every node's recordings from the cluster's recordings index and
// forward requests about a recording held by another node to that node,
// as the admin routes of a room hosted elsewhere (forward.go); the lists
// of rooms, egresses, receipts and audit entries and tenant erasures ask
// every live node (fanout.go); the join page sends browsers to the node
// that hosts their room (join.go). The interfaces below are what the api
// package reads of the cluster state; the binary adapts package cluster's
// implementations to them. Without them the server is one node on its
// own.

// NodeLister lists the live nodes of the cluster; cluster.Registry
// satisfies it.
type NodeLister interface {
	// Nodes returns the live nodes, sorted by ID. An error means the
	// cluster state could not be read (ErrClusterUnavailable, 503), not
	// that there are no nodes.
	Nodes(ctx context.Context) ([]cluster.NodeInfo, error)
}

var _ NodeLister = cluster.Registry(nil)

// RecordingEntry is what the cluster's recordings index knows of one
// recording: enough to list it and to find the node holding its files.
// The fields mean what the manifest's of the same names mean.
type RecordingEntry struct {
	ID recorder.ID
	// Node holds the recording's files and manifest.
	Node      cluster.NodeID
	Tenant    recorder.Tenant
	Room      room.ID
	State     recorder.State
	StartedAt time.Time
	ExpiresAt time.Time
	Bytes     int64
	Duration  float64 // seconds
}

// RecordingsIndex is the cluster-wide index of recordings, which the api
// package only reads. The node holding a recording keeps its entry up to
// date from the recorder's side (the binary subscribes to the recorder's
// events and writes the index); the admin API never writes it, so the
// index and the manifests have one writer each.
type RecordingsIndex interface {
	// Recording returns the entry of id, and false when the index has
	// none. An error means the index could not be read.
	Recording(ctx context.Context, id recorder.ID) (RecordingEntry, bool, error)
	// Recordings returns the entries f selects, with the meaning
	// recorder.Filter has for manifests, in any order.
	Recordings(ctx context.Context, f recorder.Filter) ([]RecordingEntry, error)
}

// RoomLocator tells where a room is hosted, for the join page and the
// admin API's room actions.
type RoomLocator interface {
	// LocateRoom returns nil when room id is open on this node or on no
	// node (the first join opens it where it arrives), a *room.MovedError
	// when another live node hosts it, and an error wrapping
	// room.ErrUnavailable when the cluster state cannot be read.
	LocateRoom(ctx context.Context, id room.ID) error
}

// clusterState is what the server knows of its cluster.
type clusterState struct {
	self    cluster.NodeID
	nodes   NodeLister      // nil: one node
	index   RecordingsIndex // nil: the local recordings only
	rooms   RoomLocator     // nil: every room is local
	forward *forwarder      // set in New with nodes or rooms; closed by Shutdown
}

// WithNodes names this node (node.id) and gives the live nodes of its
// cluster, which GET /api/v1/nodes lists, the recordings routes forward
// requests to, and the cluster-wide lists and erasures ask (fanout.go).
// nodes may be nil on a node on its own: the endpoint then lists this
// node alone.
func WithNodes(self cluster.NodeID, nodes NodeLister) Option {
	return func(s *Server) { s.cluster.self, s.cluster.nodes = self, nodes }
}

// WithRecordingsIndex makes the recordings routes cluster-wide: the list
// comes from idx (every node's recordings, each with its node), and a
// request about a recording another node holds is forwarded to that node.
// It needs WithNodes with a NodeLister to find the holders; without one
// the index is not used.
func WithRecordingsIndex(idx RecordingsIndex) Option {
	return func(s *Server) { s.cluster.index = idx }
}

// WithRoomLocator lets the join page and the admin API's room routes find
// rooms hosted by other nodes: the join page and its participant list
// redirect (307) to the owner (join.go); the admin routes of one room
// (rooms/{room}, its lock, mutes, recording and egresses) are forwarded
// to it (forward.go), as a redirect would lose the API key on the way.
// POST /r/{room}/token and POST /api/v1/rooms/{room}/tokens answer on
// any node: every node of a cluster shares auth.token_secret.
func WithRoomLocator(l RoomLocator) Option {
	return func(s *Server) { s.cluster.rooms = l }
}

// clusterRetryAfter is the Retry-After of answers refused because the
// cluster state could not be read.
const clusterRetryAfter = 5 * time.Second

// unavailable logs why the cluster state could not be read and returns
// ErrClusterUnavailable with a Retry-After; the cause (which may name
// internal addresses) goes to the log only.
func (s *Server) unavailable(r *http.Request, what string, err error) error {
	s.log.WarnContext(r.Context(), "cluster state unavailable", "what", what, "err", err)
	return &retryError{fmt.Errorf("%w: %s", ErrClusterUnavailable, what), clusterRetryAfter}
}

// nodeJSON is a node as GET /api/v1/nodes shows it.
type nodeJSON struct {
	ID      cluster.NodeID `json:"id"`
	HTTPURL string         `json:"http_url"`
	SIPAddr string         `json:"sip_addr"`
	Calls   int            `json:"calls"`
	Rooms   int            `json:"rooms"`
	CPU     float64        `json:"cpu"`
	// Self is true for the node that answered.
	Self bool `json:"self"`
}

// nodePage is the answer of GET /api/v1/nodes.
type nodePage struct {
	// Self is the ID of the node that answered.
	Self  cluster.NodeID `json:"self"`
	Nodes []nodeJSON     `json:"nodes"`
}

// selfID returns this node's ID: WithNodes's, else the recorder's node,
// else the host name (configs.Config.NodeID).
func (s *Server) selfID() cluster.NodeID {
	switch {
	case s.cluster.self != "":
		return s.cluster.self
	case s.recs != nil && s.recs.rec.Node() != "":
		return cluster.NodeID(s.recs.rec.Node())
	}
	return cluster.NodeID(configs.Config{}.NodeID())
}

// localNode describes this node from what it knows itself: its rooms and
// phone calls, and the address the request reached it at.
func (s *Server) localNode(r *http.Request) nodeJSON {
	n := nodeJSON{ID: s.selfID(), HTTPURL: requestScheme(r) + "://" + r.Host, Self: true}
	for _, rm := range s.admin.mgr.List() {
		n.Rooms++
		for _, p := range rm.Participants() {
			if p.Kind == room.KindPhone {
				n.Calls++
			}
		}
	}
	return n
}

// requestScheme is "https" for requests that came over TLS, else "http".
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// adminNodes answers GET /api/v1/nodes: the live nodes (this one among
// them even when its heartbeat has not been seen yet). Nodes belong to no
// tenant: only keys of every tenant (AllTenants) may read them, since a
// node's load tells of every tenant's rooms.
func (s *Server) adminNodes(w http.ResponseWriter, r *http.Request) error {
	if err := s.authorize(r, "", false); err != nil {
		return err
	}
	self := s.selfID()
	page := nodePage{Self: self, Nodes: []nodeJSON{}}
	if s.cluster.nodes != nil {
		infos, err := s.cluster.nodes.Nodes(r.Context())
		if err != nil {
			return s.unavailable(r, "list nodes", err)
		}
		for _, n := range infos {
			page.Nodes = append(page.Nodes, nodeJSON{ID: n.ID, HTTPURL: n.HTTPURL, SIPAddr: n.SIPAddr,
				Calls: n.Calls, Rooms: n.Rooms, CPU: n.CPU, Self: n.ID == self})
		}
	}
	if !slices.ContainsFunc(page.Nodes, func(n nodeJSON) bool { return n.Self }) {
		page.Nodes = append(page.Nodes, s.localNode(r))
		slices.SortFunc(page.Nodes, func(a, b nodeJSON) int { return cmp.Compare(a.ID, b.ID) })
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
