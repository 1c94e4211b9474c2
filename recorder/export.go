package recorder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"
)

// ReceiptFilter selects receipts; zero fields match everything.
type ReceiptFilter struct {
	Tenant Tenant
	// From and To bound DeletedAt: From <= deleted_at < To.
	From, To time.Time
}

func (f *ReceiptFilter) match(rc *Receipt) bool {
	return (f.Tenant == "" || rc.Tenant == f.Tenant) &&
		(f.From.IsZero() || !rc.DeletedAt.Before(f.From)) &&
		(f.To.IsZero() || rc.DeletedAt.Before(f.To))
}

// ReadReceipts parses a receipts log and returns the receipts f selects, in
// log order. It checks each line's form but not signatures or chain (that
// is Verify's job), so an export never hides a line it cannot vouch for:
// a malformed line is an error naming it.
func ReadReceipts(r io.Reader, f ReceiptFilter) ([]Receipt, error) {
	br := bufio.NewReader(r)
	var out []Receipt
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return out, fmt.Errorf("read receipts: %w", err)
		}
		rc, _, perr := parseLine(bytes.TrimSuffix(line, []byte("\n")))
		if perr != nil {
			return out, &VerifyError{Line: n, Err: perr}
		}
		if f.match(&rc) {
			out = append(out, rc)
		}
	}
}

// ExportFormat is the encoding of a receipts export.
type ExportFormat string

// Export formats.
const (
	// ExportJSON is a JSON array of receipts, fields as in the log.
	ExportJSON ExportFormat = "json"
	// ExportCSV is RFC 4180 CSV with a header row (csvHeader).
	ExportCSV ExportFormat = "csv"
)

// csvHeader names the CSV columns, the JSON field names in log order.
var csvHeader = []string{"receipt_id", "recording_id", "tenant", "room", "sha256", "bytes",
	"expires_at", "deleted_at", "reason", "actor", "node", "prev", "sig"}

// ExportReceipts writes rs to w as JSON or CSV.
func ExportReceipts(w io.Writer, rs []Receipt, format ExportFormat) error {
	switch format {
	case ExportJSON:
		if rs == nil {
			rs = []Receipt{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rs); err != nil {
			return fmt.Errorf("export receipts: %w", err)
		}
		return nil
	case ExportCSV:
		cw := csv.NewWriter(w)
		_ = cw.Write(csvHeader)
		for _, rc := range rs {
			_ = cw.Write([]string{
				string(rc.ID), string(rc.Recording), cell(string(rc.Tenant)), cell(string(rc.Room)),
				rc.SHA256, strconv.FormatInt(rc.Bytes, 10),
				rc.ExpiresAt.Format(time.RFC3339Nano), rc.DeletedAt.Format(time.RFC3339Nano),
				string(rc.Reason), cell(rc.Actor), cell(rc.Node), rc.Prev, rc.Sig,
			})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("export receipts: %w", err)
		}
		return nil
	}
	return fmt.Errorf("%w: export format %q", ErrInvalidArgument, truncate(string(format), 20))
}

// cell defuses text a spreadsheet would run as a formula (CSV injection):
// a leading =, +, -, @, tab or CR gets a quote in front.
func cell(s string) string {
	if s != "" && bytes.IndexByte([]byte("=+-@\t\r"), s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// Receipts returns this node's receipts that f selects, in log order.
func (r *Recorder) Receipts(f ReceiptFilter) ([]Receipt, error) {
	var out []Receipt
	err := r.readReceipts(func(rd io.Reader) error {
		var err error
		out, err = ReadReceipts(rd, f)
		return err
	})
	return out, err
}

// ExportReceipts writes this node's receipts that f selects to w.
func (r *Recorder) ExportReceipts(w io.Writer, f ReceiptFilter, format ExportFormat) error {
	if format != ExportJSON && format != ExportCSV {
		return fmt.Errorf("%w: export format %q", ErrInvalidArgument, truncate(string(format), 20))
	}
	rs, err := r.Receipts(f)
	if err != nil {
		return err
	}
	return ExportReceipts(w, rs, format)
}

// VerifyReceipts verifies this node's receipts log with its key (Verify).
func (r *Recorder) VerifyReceipts() (int, error) {
	var n int
	err := r.readReceipts(func(rd io.Reader) error {
		var err error
		n, err = Verify(rd, r.opts.ReceiptKey)
		return err
	})
	return n, err
}

// readReceipts runs read on the log file with appends held off, so it sees
// whole lines only.
func (r *Recorder) readReceipts(read func(io.Reader) error) error {
	l := r.receipts
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(r.opts.ReceiptsFile)
	if err != nil {
		return fmt.Errorf("read receipts: %w", err)
	}
	defer f.Close()
	return read(f)
}

// EraseSummary says what EraseTenant did.
type EraseSummary struct {
	Tenant Tenant
	// Stopped counts recordings that were running and were stopped first.
	Stopped int
	// Deleted are the recordings deleted now, each with its receipt.
	Deleted []Erased
	// AlreadyDeleted counts recordings deleted before.
	AlreadyDeleted int
	// Refused are recordings kept by a legal hold or a minimum retention.
	Refused []DeleteFailure
	// Failed are deletions that failed; the sweeper retries them.
	Failed []DeleteFailure
}

// Erased is one recording deleted by EraseTenant.
type Erased struct {
	ID      ID
	Receipt ReceiptID
}

// EraseTenant deletes every recording of tenant, oldest first, each with
// its receipt: running recordings are stopped first, recordings on legal
// hold or within a minimum retention are refused and listed. The error is
// non-nil when the arguments are bad, a recording could not be stopped
// within ctx, or a deletion failed (the summary says which).
func (r *Recorder) EraseTenant(ctx context.Context, tenant Tenant, reason DeletionReason, actor string) (EraseSummary, error) {
	sum := EraseSummary{Tenant: tenant}
	switch {
	case !tenant.Valid():
		return sum, fmt.Errorf("%w: %q", ErrInvalidTenant, truncate(string(tenant), 40))
	case reason != ReasonErasure && reason != ReasonAdmin:
		return sum, fmt.Errorf("%w: deletion reason %q", ErrInvalidArgument, truncate(string(reason), 20))
	case actor == "":
		return sum, fmt.Errorf("%w: erasure needs an actor", ErrInvalidArgument)
	}
	for _, rec := range r.activeOf(tenant) {
		if err := rec.Stop(ctx); err != nil && !errors.Is(err, ErrInterrupted) {
			return sum, err
		}
		sum.Stopped++
	}
	ms := r.List(Filter{Tenant: tenant})
	for _, m := range ms {
		if m.State == StateDeleted {
			sum.AlreadyDeleted++
			continue
		}
		e, err := r.lookup(m.ID)
		if err != nil {
			continue
		}
		got, err := r.deleteEntry(e, reason, actor, r.now())
		switch {
		case err == nil:
			sum.Deleted = append(sum.Deleted, Erased{ID: got.ID, Receipt: got.Deletion.Receipt})
		case isRefusal(err):
			sum.Refused = append(sum.Refused, DeleteFailure{ID: m.ID, Err: err})
		default:
			sum.Failed = append(sum.Failed, DeleteFailure{ID: m.ID, Err: err})
		}
	}
	r.log.Info("tenant erased", "tenant", string(tenant), "deleted", len(sum.Deleted),
		"refused", len(sum.Refused), "failed", len(sum.Failed))
	if len(sum.Failed) > 0 {
		return sum, fmt.Errorf("erase tenant %s: %d of %d deletions failed: %w",
			tenant, len(sum.Failed), len(ms)-sum.AlreadyDeleted, sum.Failed[0].Err)
	}
	return sum, nil
}

// activeOf returns tenant's running recordings.
func (r *Recorder) activeOf(tenant Tenant) []*Recording {
	var out []*Recording
	for _, e := range r.snapshot() {
		e.mu.Lock()
		if e.rec != nil && e.m.Tenant == tenant {
			out = append(out, e.rec)
		}
		e.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b *Recording) int { return compareStrings(string(a.id), string(b.id)) })
	return out
}
