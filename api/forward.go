package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// Forwarding: a node that is asked about a recording another node holds
// (or, with a RoomLocator, a room another node hosts) passes the request
// on to that node, with the same method, path, query, body and
// Authorization, and copies the answer back. The holder authenticates,
// authorizes and audits the request as if it had come directly; the
// forwarding node has checked the key and the tenant against the index
// first, and audits that it forwarded (AuditEntry.ForwardedTo).
//
// A forwarded request carries HeaderForwarded. A node never forwards such
// a request again: one hop at most, so a stale index cannot make nodes
// bounce a request between them; the holder answers it itself (404 when
// it has no such recording).

// HeaderForwarded marks a request one node forwarded to another; its
// value is the forwarding node's ID.
const HeaderForwarded = "Mediagate-Forwarded"

// Timeouts of node-to-node requests. The answer's headers must come
// within forwardHeaderTimeout; its body (a download) may take as long as
// the client reads.
const (
	forwardDialTimeout   = 5 * time.Second
	forwardHeaderTimeout = 30 * time.Second
)

// forwarder sends requests on to other nodes.
type forwarder struct {
	transport *http.Transport
}

// newForwarder returns a forwarder with its own connection pool. It does
// not use the environment's proxy settings: nodes talk to each other
// directly, on the addresses they advertise.
func newForwarder() *forwarder {
	return &forwarder{transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: forwardDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   forwardDialTimeout,
		ResponseHeaderTimeout: forwardHeaderTimeout,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}}
}

// close drops the idle connections to other nodes.
func (f *forwarder) close() { f.transport.CloseIdleConnections() }

// errAborted says that a forwarded answer broke off after its headers had
// gone to the client; the handler must abort the response
// (http.ErrAbortHandler) once the request is audited.
var errAborted = errors.New("forwarded answer aborted")

// forwardedBy returns the ID of the node that forwarded r, "" for a
// request that came directly. An ID not of node.id's form is "invalid":
// the header is the client's word, used only for the loop guard and the
// audit entry.
func forwardedBy(r *http.Request) string {
	v, ok := r.Header[HeaderForwarded]
	switch {
	case !ok:
		return ""
	case len(v) == 1 && configs.ValidNodeID(v[0]):
		return v[0]
	}
	return "invalid"
}

// forwardToNode forwards r to node, found among the live nodes:
// ErrNodeUnavailable when it is not one of them.
func (s *Server) forwardToNode(w http.ResponseWriter, r *http.Request, node cluster.NodeID) error {
	nodes, err := s.cluster.nodes.Nodes(r.Context())
	if err != nil {
		return s.unavailable(r, "list nodes", err)
	}
	for _, n := range nodes {
		if n.ID == node && n.HTTPURL != "" {
			return s.forward(w, r, node, n.HTTPURL)
		}
	}
	return fmt.Errorf("%w: node %s", ErrNodeUnavailable, node)
}

// forward sends r to the node at base (its public base URL) and copies
// the answer to w. Hop-by-hop headers are dropped both ways
// (httputil.ReverseProxy, RFC 9110 §7.6.1); the request gets the node's
// host as Host (an ingress in front of it may route by it), and
// X-Forwarded-For/-Host/-Proto, Via and HeaderForwarded, so that links the
// holder makes point where the client came to (publicBase). Redirects of
// the holder go back to the client as they are.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, node cluster.NodeID, base string) error {
	target, err := url.Parse(base)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return fmt.Errorf("%w: node %s advertises no usable http url", ErrNodeUnavailable, node)
	}
	if n := noteOf(r); n != nil {
		n.forwardedTo = string(node)
	}
	via := viaValue(r, s.selfID())
	var failed error
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header.Set(HeaderForwarded, string(s.selfID()))
			pr.Out.Header.Add("Via", via)
		},
		Transport: s.cluster.forward.transport,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Add("Via", via)
			return nil
		},
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) { failed = err },
	}
	aborted := false
	func() {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					panic(v)
				}
				aborted = true
			}
		}()
		rp.ServeHTTP(w, r)
	}()
	switch {
	case aborted:
		return errAborted
	case failed == nil:
		return nil
	case errors.Is(failed, context.Canceled): // the client left: nobody reads the answer
		return fmt.Errorf("%w: node %s: the client left", ErrNodeUnreachable, node)
	}
	// The cause names the node's address: the log has it, the answer not.
	s.log.WarnContext(r.Context(), "forward failed", "node", node, "err", failed)
	var ne net.Error
	if errors.As(failed, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: node %s", errNodeTimeout, node)
	}
	return fmt.Errorf("%w: node %s", ErrNodeUnreachable, node)
}

// errNodeTimeout is ErrNodeUnreachable for a node that did not answer in
// time: 504 (RFC 9110 §15.6.5).
var errNodeTimeout = &Error{ErrNodeUnreachable.msg, http.StatusGatewayTimeout, ErrNodeUnreachable.slug, "", false}

// publicBase is the scheme and host the client reached the cluster at:
// the request's own, or for a request another node forwarded, the
// X-Forwarded-Proto and X-Forwarded-Host that node set. (A client could
// set them too, but only to get links to another host in its own
// answer.)
func publicBase(r *http.Request) string {
	scheme, host := requestScheme(r), r.Host
	if forwardedBy(r) != "" {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
		if h := r.Header.Get("X-Forwarded-Host"); h != "" && !strings.ContainsAny(h, "/?#@ ,") {
			host = h
		}
	}
	return scheme + "://" + host
}

// viaValue is this hop's Via entry (RFC 9110 §7.6.3): the protocol the
// request came in with and the node's ID as pseudonym.
func viaValue(r *http.Request, self cluster.NodeID) string {
	proto := "1.1"
	switch {
	case r.ProtoMajor >= 2:
		proto = "2"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		proto = "1.0"
	}
	return proto + " " + string(self)
}

// holderOf returns the index entry of recording id when another node
// holds it and this node should forward the request: the recording is
// not here, the index names another node, and the request was not
// forwarded already. false means the request is answered here (with 404
// when nobody has the recording).
func (s *Server) holderOf(r *http.Request, id recorder.ID) (RecordingEntry, bool, error) {
	if !s.indexed() || forwardedBy(r) != "" {
		return RecordingEntry{}, false, nil
	}
	if _, err := s.recs.rec.Get(id); !errors.Is(err, recorder.ErrNotFound) {
		return RecordingEntry{}, false, nil
	}
	e, found, err := s.cluster.index.Recording(r.Context(), id)
	if err != nil {
		return RecordingEntry{}, false, s.unavailable(r, "recordings index", err)
	}
	if !found || e.Node == s.selfID() || e.Node == "" {
		return RecordingEntry{}, false, nil
	}
	return e, true, nil
}

// indexed reports whether the recordings routes are cluster-wide: a
// recordings index and the live nodes to forward to.
func (s *Server) indexed() bool {
	return s.cluster.index != nil && s.cluster.nodes != nil && s.cluster.forward != nil
}

// held wraps a handler of one recording ({id}) so that a recording held
// by another node is answered by that node: the key's right to read
// (write false) or change (write true) the recording's tenant is checked
// against the index entry here, then the request is forwarded.
func (s *Server) held(write bool, h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := recorder.ParseID(r.PathValue("id"))
		if err != nil {
			return h(w, r) // which refuses the ID
		}
		e, remote, err := s.holderOf(r, id)
		if err != nil || !remote {
			if err == nil {
				err = h(w, r)
			}
			return err
		}
		auditTarget(r, string(id))
		if err := s.authorize(r, string(e.Tenant), write); err != nil {
			return err
		}
		return s.forwardToNode(w, r, e.Node)
	}
}

// elsewhere asks the room locator where room id is when it is not open
// on this node: nil when it is open here, on no node, or without a
// locator; a *room.MovedError when another node hosts it; an error
// wrapping room.ErrUnavailable when that cannot be known.
func (s *Server) elsewhere(r *http.Request, mgr *room.Manager, id room.ID) error {
	if s.cluster.rooms == nil || !configs.ValidRoomID(string(id)) {
		return nil
	}
	if _, err := mgr.Get(id); err == nil {
		return nil
	}
	return s.cluster.rooms.LocateRoom(r.Context(), id)
}

// hosted wraps an admin handler of one room ({room}) so that a room
// another node hosts is acted on there: the key's right to read (write
// false) or change (write true) the room's tenant is checked here, then
// the request is forwarded to the owner, which checks and audits it
// again. Forwarding rather than a 307 to the owner: clients drop the
// Authorization header on a redirect to another host (browsers on any
// other origin, Go's client on any host not a subdomain), so a redirected
// admin request would arrive without its key. A room whose owner cannot
// be known answers 503 with Retry-After; a forwarded request is answered
// here whatever the locator says (one hop).
func (s *Server) hosted(write bool, h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := room.ID(r.PathValue("room"))
		if s.cluster.forward == nil || forwardedBy(r) != "" {
			return h(w, r)
		}
		err := s.elsewhere(r, s.admin.mgr, id)
		var moved *room.MovedError
		switch {
		case err == nil:
			return h(w, r)
		case !errors.As(err, &moved):
			return err
		}
		auditTarget(r, string(id))
		if err := s.authorize(r, s.admin.auth.RoomTenant(id), write); err != nil {
			return err
		}
		return s.forward(w, r, cluster.NodeID(moved.Node), moved.URL)
	}
}
