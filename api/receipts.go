package api

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/mediagate/mediagate/recorder"
)

// receiptPage is the answer of GET /api/v1/receipts: this node's deletion
// receipts, in log order, each as the log holds it (prev and sig
// included, so a client can check the chain itself).
type receiptPage struct {
	Receipts []recorder.Receipt `json:"receipts"`
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
// may read.
func (s *Server) receipts(r *http.Request) ([]recorder.Receipt, error) {
	f, err := receiptFilter(r.URL.Query())
	if err != nil {
		return nil, err
	}
	all, err := s.recs.rec.Receipts(f)
	if err != nil {
		return nil, err
	}
	allowed := s.tenantCheck(r)
	out := make([]recorder.Receipt, 0, len(all))
	for _, rc := range all {
		if allowed(rc.Tenant) {
			out = append(out, rc)
		}
	}
	return out, nil
}

func (s *Server) receiptList(w http.ResponseWriter, r *http.Request) error {
	rs, err := s.receipts(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, receiptPage{Receipts: rs})
	return nil
}

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
	rs, err := s.receipts(r)
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
	writeJSON(w, http.StatusOK, out)
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
