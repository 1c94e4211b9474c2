package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/recorder"
)

// receiptPage is the answer of GET /api/v1/receipts: this node's deletion
// receipts (every live node's in a cluster: Server.receipts), in log
// order, each as the log holds it (prev and sig included, so a client can
// check the chain itself).
type receiptPage struct {
	Receipts []recorder.Receipt `json:"receipts"`
	// Unreached are the live nodes of the cluster that did not answer:
	// their receipts are missing.
	Unreached []unreachedNode `json:"unreached_nodes,omitempty"`
}

// receiptFilter reads tenant, from and to (deleted_at) from the query.
func receiptFilter(q url.Values) (recorder.ReceiptFilter, error) {
	var f recorder.ReceiptFilter
	if v := q.Get("tenant"); v != "" {
		if f.Tenant = recorder.Tenant(v); !f.Tenant.Valid() {
			return f, fmt.Errorf("%w: tenant %q", ErrBadRequest, truncate(v, 70))
		}
	}
	var err error
	if f.From, err = queryTime(q, "from"); err != nil {
		return f, err
	}
	f.To, err = queryTime(q, "to")
	return f, err
}

// receipts returns the receipts the request's filters select and its key
// may read. In a cluster they are every live node's, node by node in the
// order of their IDs, each node's in its log order (each receipt names
// its node, and chains to the one before it on that node); unreached
// lists the nodes that did not answer.
func (s *Server) receipts(r *http.Request) (rs []recorder.Receipt, unreached []unreachedNode, err error) {
	f, err := receiptFilter(r.URL.Query())
	if err != nil {
		return nil, nil, err
	}
	all, err := s.recs.rec.Receipts(f)
	if err != nil {
		return nil, nil, err
	}
	allowed := s.tenantCheck(r)
	out := make([]recorder.Receipt, 0, len(all))
	for _, rc := range all {
		if allowed(rc.Tenant) {
			out = append(out, rc)
		}
	}
	if !s.fanningOut(r) {
		return out, nil, nil
	}
	answers, _, err := s.askOthers(r, "/api/v1/receipts?"+r.URL.RawQuery, nil)
	if err != nil {
		return nil, nil, err
	}
	byNode := map[cluster.NodeID][]recorder.Receipt{s.selfID(): out}
	for _, a := range answers {
		var page receiptPage
		if a.err == nil && json.Unmarshal(a.body, &page) != nil {
			a.err = errors.New("answered something else than receipts")
		}
		if a.err != nil {
			unreached = append(unreached, unreachedNode{Node: a.node, Error: a.err.Error()})
			continue
		}
		byNode[a.node] = page.Receipts
	}
	merged := make([]recorder.Receipt, 0, len(out))
	for _, node := range slices.Sorted(maps.Keys(byNode)) {
		merged = append(merged, byNode[node]...)
	}
	return merged, unreached, nil
}

func (s *Server) receiptList(w http.ResponseWriter, r *http.Request) error {
	rs, unreached, err := s.receipts(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, receiptPage{Receipts: rs, Unreached: unreached})
	return nil
}

// HeaderUnreachedNodes lists, on a receipts export, the nodes of the
// cluster that did not answer: their receipts are missing from the file.
const HeaderUnreachedNodes = "Mediagate-Unreached-Nodes"

// receiptExport answers GET /api/v1/receipts/export?format=json|csv (json
// by default) with the same filters as the list, as a file to keep: a
// JSON array, or CSV with a header row whose text cells cannot run as
// spreadsheet formulas.
func (s *Server) receiptExport(w http.ResponseWriter, r *http.Request) error {
	format := recorder.ExportFormat(r.URL.Query().Get("format"))
	ctype := "application/json"
	switch format {
	case "", recorder.ExportJSON:
		format = recorder.ExportJSON
	case recorder.ExportCSV:
		ctype = "text/csv; charset=utf-8; header=present" // RFC 4180 §3
	default:
		return fmt.Errorf("%w: format must be json or csv", ErrBadRequest)
	}
	rs, unreached, err := s.receipts(r)
	if err != nil {
		return err
	}
	var buf bytes.Buffer // whole, so a failure is still a problem answer
	if err := recorder.ExportReceipts(&buf, rs, format); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", `attachment; filename="deletion-receipts.`+string(format)+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if len(unreached) > 0 {
		names := make([]string, 0, len(unreached))
		for _, u := range unreached {
			names = append(names, string(u.Node))
		}
		h.Set(HeaderUnreachedNodes, strings.Join(names, ", "))
	}
	_, _ = w.Write(buf.Bytes())
	return nil
}

// eraseSummary is the answer of DELETE /api/v1/tenants/{tenant}/recordings:
// what was deleted (each recording with its receipt), what was refused
// (legal hold, minimum retention) and what failed (the sweeper retries).
type eraseSummary struct {
	Tenant         recorder.Tenant `json:"tenant"`
	Stopped        int             `json:"stopped"`
	Deleted        []erased        `json:"deleted"`
	AlreadyDeleted int             `json:"already_deleted"`
	Refused        []eraseFailure  `json:"refused"`
	Failed         []eraseFailure  `json:"failed"`
	// Unreached are the live nodes of the cluster that did not answer:
	// their recordings of the tenant are not erased; erase again.
	Unreached []unreachedNode `json:"unreached_nodes,omitempty"`
}

// erased is one recording an erasure deleted.
type erased struct {
	ID      recorder.ID        `json:"id"`
	Receipt recorder.ReceiptID `json:"receipt"`
}

// eraseFailure is one recording an erasure did not delete, and why.
type eraseFailure struct {
	ID    recorder.ID `json:"id"`
	Error string      `json:"error"`
}

// tenantErase deletes every recording of the tenant (running ones are
// stopped first). It answers 200 with the summary even when some
// recordings were refused or failed: the summary lists them.
func (s *Server) tenantErase(w http.ResponseWriter, r *http.Request) error {
	tenant := recorder.Tenant(r.PathValue("tenant"))
	if !tenant.Valid() {
		return fmt.Errorf("%w: %q", recorder.ErrInvalidTenant, truncate(string(tenant), 70))
	}
	if err := s.authorize(r, string(tenant), true); err != nil {
		return err
	}
	reason, err := deletionReason(w, r)
	if err != nil {
		return err
	}
	sum, err := s.recs.rec.EraseTenant(r.Context(), tenant, reason, actorOf(r))
	if err != nil && len(sum.Failed) == 0 {
		return err
	}
	out := eraseSummary{Tenant: sum.Tenant, Stopped: sum.Stopped, AlreadyDeleted: sum.AlreadyDeleted,
		Deleted: []erased{}, Refused: failures(sum.Refused), Failed: failures(sum.Failed)}
	for _, d := range sum.Deleted {
		out.Deleted = append(out.Deleted, erased{ID: d.ID, Receipt: d.Receipt})
	}
	if s.fanningOut(r) {
		if err := s.eraseElsewhere(r, tenant, reason, &out); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// eraseElsewhere has every other live node erase the tenant's recordings
// too and adds their summaries to out. A node that does not answer is
// listed in out.Unreached; with a recordings index, the tenant's
// recordings held by nodes that are not alive are listed as failed:
// erase again when they are back.
func (s *Server) eraseElsewhere(r *http.Request, tenant recorder.Tenant, reason recorder.DeletionReason, out *eraseSummary) error {
	body, _ := json.Marshal(deleteRequest{Reason: reason}) // cannot fail
	answers, live, err := s.askOthers(r, r.URL.RequestURI(), body)
	if err != nil {
		return err
	}
	for _, a := range answers {
		var sum eraseSummary
		if a.err == nil {
			if err := json.Unmarshal(a.body, &sum); err != nil {
				a.err = errors.New("answered something else than a summary")
			}
		}
		if a.err != nil {
			out.Unreached = append(out.Unreached, unreachedNode{Node: a.node, Error: a.err.Error()})
			continue
		}
		out.Stopped += sum.Stopped
		out.AlreadyDeleted += sum.AlreadyDeleted
		out.Deleted = append(out.Deleted, sum.Deleted...)
		out.Refused = append(out.Refused, sum.Refused...)
		out.Failed = append(out.Failed, sum.Failed...)
	}
	if !s.indexed() {
		return nil
	}
	entries, err := s.cluster.index.Recordings(r.Context(), recorder.Filter{Tenant: tenant})
	if err != nil {
		return s.unavailable(r, "recordings index", err)
	}
	for _, e := range entries {
		if !live[e.Node] && e.State != recorder.StateDeleted {
			out.Failed = append(out.Failed, eraseFailure{ID: e.ID,
				Error: fmt.Sprintf("held by node %s, which is not available; erase again when it is back", e.Node)})
		}
	}
	return nil
}

// failures lists deletions that did not happen. Refusals (legal hold,
// minimum retention) say why; internal failures, whose causes may name
// files, say only that the sweeper retries them (the log has the cause).
func failures(fs []recorder.DeleteFailure) []eraseFailure {
	out := make([]eraseFailure, 0, len(fs))
	for _, f := range fs {
		msg := "deletion failed; the retention sweeper retries it"
		var st interface{ HTTPStatus() int }
		if errors.As(f.Err, &st) && st.HTTPStatus() < http.StatusInternalServerError {
			msg = f.Err.Error()
		}
		out = append(out, eraseFailure{ID: f.ID, Error: msg})
	}
	return out
}
