package recorder

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deleteN records and deletes n recordings of tenant, one per hour from
// the clock's time, and returns the receipts log's lines.
func (h *harness) deleteN(t *testing.T, tenant Tenant, n int) {
	t.Helper()
	for range n {
		m := h.record(t, tenant, "", shortTone())
		_, err := h.r.Delete(m.ID, ReasonAdmin, "admin@example.org")
		require.NoError(t, err)
		h.clock.Set(h.clock.Now().Add(time.Hour))
	}
}

func (h *harness) receiptsFile(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.opts.Dir, ReceiptsFileName))
	require.NoError(t, err)
	return b
}

func TestVerifyNamesTheFirstBadLine(t *testing.T) {
	h := newHarness(t, nil)
	h.deleteN(t, "acme", 5)
	good := h.receiptsFile(t)
	n, err := Verify(bytes.NewReader(good), testKey)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	lines := strings.SplitAfter(string(good), "\n")[:5]

	join := func(ls ...string) []byte { return []byte(strings.Join(ls, "")) }
	edited := strings.Replace(lines[2], `"tenant":"acme"`, `"tenant":"acmf"`, 1)
	require.NotEqual(t, lines[2], edited)
	var rc Receipt
	require.NoError(t, json.Unmarshal([]byte(lines[3]), &rc))
	resigned, err := signLine(&Receipt{ID: rc.ID, Recording: rc.Recording, Tenant: "other", Room: rc.Room, SHA256: rc.SHA256,
		Bytes: rc.Bytes, ExpiresAt: rc.ExpiresAt, DeletedAt: rc.DeletedAt, Reason: rc.Reason, Actor: rc.Actor,
		Node: rc.Node, Prev: rc.Prev}, testKey)
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		log  []byte
		key  []byte
		line int
		want error
	}{
		{"field changed", join(lines[0], lines[1], edited, lines[3], lines[4]), testKey, 3, ErrReceiptSignature},
		{"line removed", join(lines[0], lines[2], lines[3], lines[4]), testKey, 2, ErrReceiptChain},
		{"first line removed", join(lines[1], lines[2]), testKey, 1, ErrReceiptChain},
		{"lines swapped", join(lines[0], lines[2], lines[1], lines[3], lines[4]), testKey, 2, ErrReceiptChain},
		{"line duplicated", join(lines[0], lines[1], lines[1], lines[2]), testKey, 3, ErrReceiptChain},
		{"re-signed with the key after a change", join(lines[0], lines[1], lines[2], string(resigned)+"\n", lines[4]), testKey, 5, ErrReceiptChain},
		{"wrong key", good, bytes.Repeat([]byte("x"), 32), 1, ErrReceiptSignature},
		{"torn line", join(lines[0], lines[1], lines[2][:100]), testKey, 3, ErrReceiptMalformed},
		{"sig removed", join(lines[0], lines[1][:strings.Index(lines[1], sigPrefix)]+"}\n"), testKey, 2, ErrReceiptMalformed},
		{"unknown field", join(lines[0], strings.Replace(lines[1], "{", `{"extra":1,`, 1)), testKey, 2, ErrReceiptMalformed},
		{"empty line", join(lines[0], "\n", lines[1]), testKey, 2, ErrReceiptMalformed},
		{"not json", join(lines[0], strings.Repeat("x", 200)+"\n"), testKey, 2, ErrReceiptMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(bytes.NewReader(tc.log), tc.key)
			var ve *VerifyError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.line, ve.Line, "%v", err)
			require.ErrorIs(t, err, tc.want)
			require.Contains(t, err.Error(), "line "+strconv.Itoa(tc.line))
		})
	}
	n, err = h.r.VerifyReceipts()
	require.NoError(t, err)
	require.Equal(t, 5, n)
}

func TestReceiptLogSurvivesTornTail(t *testing.T) {
	h := newHarness(t, nil)
	h.deleteN(t, "acme", 2)
	path := filepath.Join(h.opts.Dir, ReceiptsFileName)
	require.NoError(t, h.r.Close(context.Background()))
	appendBytes(t, path, []byte(`{"receipt_id":"half a line, the crash`))
	h.reopen(t)
	h.deleteN(t, "acme", 1)
	n, err := Verify(bytes.NewReader(h.receiptsFile(t)), testKey)
	require.NoError(t, err, "the torn line was dropped and the chain goes on")
	require.Equal(t, 3, n)
}

func TestReceiptsAreFsyncedLines(t *testing.T) {
	h := newHarness(t, nil)
	h.deleteN(t, "acme", 1)
	b := h.receiptsFile(t)
	require.True(t, bytes.HasSuffix(b, []byte("\"}\n")))
	var fields map[string]any
	require.NoError(t, json.Unmarshal(b, &fields))
	for _, k := range []string{"receipt_id", "recording_id", "tenant", "room", "sha256", "bytes", "expires_at",
		"deleted_at", "reason", "actor", "node", "prev", "sig"} {
		require.Contains(t, fields, k)
	}
	require.Equal(t, "2031-03-14T09:00:00Z", fields["deleted_at"], "UTC RFC 3339")
	require.Len(t, fields, 13)
}

func TestExportPerTenantAndRange(t *testing.T) {
	h := newHarness(t, nil)
	h.deleteN(t, "acme", 3)   // deleted at t0, +1h, +2h
	h.deleteN(t, "globex", 2) // +3h, +4h
	rs, err := h.r.Receipts(ReceiptFilter{Tenant: "acme", From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)})
	require.NoError(t, err)
	require.Len(t, rs, 2)
	require.Equal(t, []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour)}, []time.Time{rs[0].DeletedAt, rs[1].DeletedAt})

	var js bytes.Buffer
	require.NoError(t, h.r.ExportReceipts(&js, ReceiptFilter{Tenant: "globex"}, ExportJSON))
	var got []Receipt
	require.NoError(t, json.Unmarshal(js.Bytes(), &got))
	require.Len(t, got, 2)
	for _, rc := range got {
		require.Equal(t, Tenant("globex"), rc.Tenant)
		require.Len(t, rc.Sig, 64)
	}
	js.Reset()
	require.NoError(t, h.r.ExportReceipts(&js, ReceiptFilter{Tenant: "nobody"}, ExportJSON))
	require.JSONEq(t, "[]", js.String())

	var cs bytes.Buffer
	require.NoError(t, h.r.ExportReceipts(&cs, ReceiptFilter{Tenant: "acme"}, ExportCSV))
	rows, err := csv.NewReader(&cs).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 4)
	require.Equal(t, csvHeader, rows[0])
	all, err := h.r.Receipts(ReceiptFilter{})
	require.NoError(t, err)
	for i, row := range rows[1:] {
		rc := all[i]
		require.Equal(t, []string{string(rc.ID), string(rc.Recording), "acme", "room-1", rc.SHA256,
			strconv.FormatInt(rc.Bytes, 10), rc.ExpiresAt.Format(time.RFC3339Nano), rc.DeletedAt.Format(time.RFC3339Nano),
			"admin", "admin@example.org", "node-a", rc.Prev, rc.Sig}, row)
	}
	require.ErrorIs(t, h.r.ExportReceipts(&cs, ReceiptFilter{}, "xml"), ErrInvalidArgument)
}

func TestCSVDefusesFormulas(t *testing.T) {
	var cs bytes.Buffer
	require.NoError(t, ExportReceipts(&cs, []Receipt{{Tenant: "t", Room: "=HYPERLINK(\"x\")", Actor: "+1", Node: "@n"}}, ExportCSV))
	rows, err := csv.NewReader(&cs).ReadAll()
	require.NoError(t, err)
	require.Equal(t, "'=HYPERLINK(\"x\")", rows[1][3])
	require.Equal(t, "'+1", rows[1][9])
	require.Equal(t, "'@n", rows[1][10])
}

func TestEraseTenant(t *testing.T) {
	h := newHarness(t, nil)
	old := h.record(t, "acme", "", shortTone())
	gone := h.record(t, "acme", "", shortTone())
	_, err := h.r.Delete(gone.ID, ReasonAdmin, "bob")
	require.NoError(t, err)
	held := h.record(t, "acme", "", shortTone())
	_, err = h.r.SetLegalHold(held.ID, "case 17", "legal")
	require.NoError(t, err)
	other := h.record(t, "globex", "", shortTone())
	h.clock.Set(t0.Add(time.Hour)) // erased oldest first
	src := newChanSource()
	live, err := h.r.Start("room-9", "acme", "", src)
	require.NoError(t, err)
	src.feed(t, shortTone())

	_, err = h.r.EraseTenant(context.Background(), "acme", ReasonExpired, "dpo")
	require.ErrorIs(t, err, ErrInvalidArgument)
	sum, err := h.r.EraseTenant(context.Background(), "acme", ReasonErasure, "dpo")
	require.NoError(t, err)
	require.Equal(t, Tenant("acme"), sum.Tenant)
	require.Equal(t, 1, sum.Stopped)
	require.Equal(t, 1, sum.AlreadyDeleted)
	require.Equal(t, []ID{old.ID, live.ID()}, []ID{sum.Deleted[0].ID, sum.Deleted[1].ID})
	require.Len(t, sum.Refused, 1)
	require.Equal(t, held.ID, sum.Refused[0].ID)
	require.ErrorIs(t, sum.Refused[0].Err, ErrLegalHold)
	require.Empty(t, sum.Failed)

	rs := h.receiptLines(t)
	require.Len(t, rs, 3)
	for i, e := range sum.Deleted {
		rc := rs[i+1]
		require.Equal(t, e.Receipt, rc.ID)
		require.Equal(t, e.ID, rc.Recording)
		require.Equal(t, ReasonErasure, rc.Reason)
		require.Equal(t, "dpo", rc.Actor)
	}
	o, err := h.r.Get(other.ID)
	require.NoError(t, err)
	require.Equal(t, StateComplete, o.State, "other tenants untouched")
	l, err := h.r.Get(live.ID())
	require.NoError(t, err)
	require.Equal(t, StateDeleted, l.State)
}
