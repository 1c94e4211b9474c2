package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mediagate/mediagate/cluster"
)

// Fan-out: requests about a whole tenant (its erasure, its deletion
// receipts) concern every node, since each node keeps its own recordings
// and its own receipt log. The node asked does its part and asks every
// other live node for theirs with a copy of the request (marked with
// HeaderForwarded, so they do not ask further), then merges the answers.

// fanOutTimeout bounds one node's answer to a fanned-out request: an
// erasure stops recordings and deletes files, which takes a while.
const fanOutTimeout = 2 * time.Minute

// maxFanOutAnswer bounds the body of one node's answer.
const maxFanOutAnswer = 32 << 20

// nodeAnswer is one other node's answer to a fanned-out request.
type nodeAnswer struct {
	node cluster.NodeID
	body []byte
	err  error // not reached, or not 200
}

// unreachedNode is a node a fanned-out request could not get an answer
// from, in the merged answer.
type unreachedNode struct {
	Node  cluster.NodeID `json:"node"`
	Error string         `json:"error"`
}

// fanningOut reports whether r is to be sent to the other nodes too: the
// server knows the live nodes and r was not itself forwarded.
func (s *Server) fanningOut(r *http.Request) bool {
	return s.cluster.nodes != nil && s.cluster.forward != nil && forwardedBy(r) == ""
}

// askOthers sends r's method to uri (path and query) with body (nil for
// none, JSON otherwise) and r's Authorization to every live node but this
// one, in parallel, and returns their answers in node order with the set
// of live nodes. It fails only when the live nodes cannot be listed.
func (s *Server) askOthers(r *http.Request, uri string, body []byte) ([]nodeAnswer, map[cluster.NodeID]bool, error) {
	nodes, err := s.cluster.nodes.Nodes(r.Context())
	if err != nil {
		return nil, nil, s.unavailable(r, "list nodes", err)
	}
	self := s.selfID()
	live := map[cluster.NodeID]bool{self: true}
	var answers []nodeAnswer
	for _, n := range nodes {
		live[n.ID] = true
		if n.ID != self {
			answers = append(answers, nodeAnswer{node: n.ID})
		}
	}
	var wg sync.WaitGroup
	for i := range answers {
		base := ""
		for _, n := range nodes {
			if n.ID == answers[i].node {
				base = strings.TrimSuffix(n.HTTPURL, "/")
			}
		}
		wg.Go(func() { answers[i].body, answers[i].err = s.ask(r, base+uri, body) })
	}
	wg.Wait()
	slices.SortFunc(answers, func(a, b nodeAnswer) int { return strings.Compare(string(a.node), string(b.node)) })
	if n := noteOf(r); n != nil {
		asked := make([]string, 0, len(answers))
		for _, a := range answers {
			asked = append(asked, string(a.node))
		}
		n.forwardedTo = strings.Join(asked, ",")
	}
	return answers, live, nil
}

// ask sends one copy of r to target (a node's base URL, path and query)
// and returns the body of its 200 answer.
func (s *Server) ask(r *http.Request, target string, body []byte) ([]byte, error) {
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		return nil, fmt.Errorf("no usable http url")
	}
	ctx, cancel := context.WithTimeout(r.Context(), fanOutTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("bad url")
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	req.Header.Set("X-Forwarded-Host", r.Host)
	req.Header.Set("X-Forwarded-Proto", requestScheme(r))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(HeaderForwarded, string(s.selfID()))
	req.Header.Set("Via", viaValue(r, s.selfID()))
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		req.Header.Set("X-Forwarded-For", host)
	}
	resp, err := s.cluster.forward.transport.RoundTrip(req)
	if err != nil {
		s.log.WarnContext(r.Context(), "fan-out request failed", "url", target, "err", err)
		return nil, fmt.Errorf("did not answer")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFanOutAnswer))
	if err != nil {
		return nil, fmt.Errorf("answer broke off")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %d", resp.StatusCode)
	}
	return b, nil
}
