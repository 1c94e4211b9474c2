package api

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
)

// listPage fetches one page of the recordings list.
func (e *recEnv) listPage(t *testing.T, query url.Values) recordingPage {
	t.Helper()
	w := e.admin(http.MethodGet, "/api/v1/recordings?"+query.Encode(), "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var p recordingPage
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	return p
}

func pageIDs(p recordingPage) []recorder.ID {
	out := []recorder.ID{}
	for _, m := range p.Recordings {
		out = append(out, m.ID)
	}
	return out
}

// TestRecordingList: filters by room, tenant, state, start time and
// expiry; pages of limit with an opaque cursor that walks the whole list
// once; bad parameters are 400.
func TestRecordingList(t *testing.T) {
	e := newRecEnv(t)
	// Every hour a board recording; on odd hours a one-minute one in lobby.
	var board, lobby []recorder.ID
	for i := range 5 {
		tenant := recorder.Tenant("acme")
		if i == 4 {
			tenant = "globex"
		}
		board = append(board, e.record(t, "board", tenant, "").ID)
		e.clock.Add(time.Minute)
		if i%2 == 1 {
			lobby = append(lobby, e.record(t, "lobby", "acme", "minute").ID)
		}
		e.clock.Add(time.Hour - time.Minute)
	}
	every := pageIDs(e.listPage(t, url.Values{"limit": {"500"}}))
	require.Equal(t, []recorder.ID{board[0], board[1], lobby[0], board[2], board[3], lobby[1], board[4]}, every, "oldest first")
	for _, m := range e.listPage(t, nil).Recordings {
		require.Empty(t, m.Participants, "the list leaves participants out")
		require.Equal(t, 1, m.ParticipantCount)
	}

	require.Equal(t, lobby, pageIDs(e.listPage(t, url.Values{"room": {"lobby"}})))
	require.Equal(t, board[4:], pageIDs(e.listPage(t, url.Values{"tenant": {"globex"}})))
	require.Equal(t, board[4:], pageIDs(e.listPage(t, url.Values{"from": {t0.Add(4 * time.Hour).Format(time.RFC3339)}})))
	require.Equal(t, board[:1], pageIDs(e.listPage(t, url.Values{"to": {t0.Add(time.Hour).Format(time.RFC3339)}})))
	require.Equal(t, lobby, pageIDs(e.listPage(t, url.Values{"expiring_before": {t0.Add(24 * time.Hour).Format(time.RFC3339)}})),
		"the one-minute ones")
	require.Empty(t, pageIDs(e.listPage(t, url.Values{"state": {"deleted"}})))
	require.Len(t, pageIDs(e.listPage(t, url.Values{"state": {"complete"}})), 7)

	// Pages of 3: the cursor walks the list once, in order.
	var walked []recorder.ID
	q := url.Values{"limit": {"3"}}
	for range 10 {
		p := e.listPage(t, q)
		require.LessOrEqual(t, len(p.Recordings), 3)
		walked = append(walked, pageIDs(p)...)
		if p.NextCursor == "" {
			break
		}
		q.Set("cursor", p.NextCursor)
	}
	require.Equal(t, every, walked)
	p := e.listPage(t, url.Values{"limit": {"7"}})
	require.Empty(t, p.NextCursor, "no cursor when nothing follows")

	for _, bad := range []string{
		"limit=0", "limit=501", "limit=x", "state=gone", "room=Bad.Room", "tenant=a/b",
		"from=yesterday", "to=2031-13-01T00:00:00Z", "expiring_before=1", "cursor=xyz", "cursor=" + url.QueryEscape("MTIz"),
	} {
		requireProblem(t, e.admin(http.MethodGet, "/api/v1/recordings?"+bad, ""), 400, "bad-request")
	}
}

// TestReceiptsExportAndErasure: a tenant's erasure stops its running
// recordings, deletes the rest with receipts, lists what a hold kept, and
// leaves other tenants alone; the receipts list and export filter by
// tenant and time, as JSON and as formula-safe CSV.
func TestReceiptsExportAndErasure(t *testing.T) {
	e := newRecEnv(t)
	a1 := e.record(t, "board", "acme", "")
	a2 := e.record(t, "board", "acme", "")
	g := e.record(t, "lobby", "globex", "")
	_, err := e.rec.SetLegalHold(a2.ID, "case 7", "admin-1")
	require.NoError(t, err)
	src := &blockingSource{}
	live, err := e.rec.Start("board", "acme", "", src)
	require.NoError(t, err)

	e.clock.Add(time.Hour)
	w := e.admin(http.MethodDelete, "/api/v1/tenants/acme/recordings", body(map[string]string{"reason": "erasure-request"}))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var sum eraseSummary
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &sum))
	require.Equal(t, recorder.Tenant("acme"), sum.Tenant)
	require.Equal(t, 1, sum.Stopped)
	require.Len(t, sum.Deleted, 2, "a1 and the stopped one")
	require.ElementsMatch(t, []recorder.ID{a1.ID, live.ID()}, []recorder.ID{sum.Deleted[0].ID, sum.Deleted[1].ID})
	require.Len(t, sum.Refused, 1)
	require.Equal(t, a2.ID, sum.Refused[0].ID)
	require.Contains(t, sum.Refused[0].Error, "legal hold")
	require.Empty(t, sum.Failed)
	require.Equal(t, recorder.StateComplete, e.manifest(t, g.ID).State, "other tenants untouched")
	require.Contains(t, e.log.String(), "action=tenants.erase")
	require.Contains(t, e.log.String(), "tenant=acme")

	requireProblem(t, e.admin(http.MethodDelete, "/api/v1/tenants/a%2Fb/recordings", body(map[string]string{"reason": "admin"})), 400, "invalid-tenant")
	requireProblem(t, e.admin(http.MethodDelete, "/api/v1/tenants/acme/recordings", `{}`), 400, "bad-request")

	e.clock.Add(time.Hour)
	_, err = e.rec.Delete(g.ID, recorder.ReasonAdmin, "admin-2")
	require.NoError(t, err)
	require.Equal(t, 3, e.verifyReceipts(t))

	var page receiptPage
	w = e.admin(http.MethodGet, "/api/v1/receipts?tenant=globex", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	require.Len(t, page.Receipts, 1)
	require.Equal(t, g.ID, page.Receipts[0].Recording)
	w = e.admin(http.MethodGet, "/api/v1/receipts?to="+url.QueryEscape(t0.Add(90*time.Minute).Format(time.RFC3339)), "")
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	require.Len(t, page.Receipts, 2, "the erasure's")

	w = e.admin(http.MethodGet, "/api/v1/receipts/export?format=json&tenant=acme", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.Equal(t, `attachment; filename="deletion-receipts.json"`, w.Header().Get("Content-Disposition"))
	var exported []recorder.Receipt
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &exported))
	require.Len(t, exported, 2)
	require.Equal(t, recorder.ReasonErasure, exported[0].Reason)

	w = e.admin(http.MethodGet, "/api/v1/receipts/export?format=csv", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.True(t, strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv"))
	rows, err := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 4, "header and three receipts")
	require.Equal(t, "receipt_id", rows[0][0])
	require.Equal(t, string(g.ID), rows[3][1])

	requireProblem(t, e.admin(http.MethodGet, "/api/v1/receipts/export?format=xml", ""), 400, "bad-request")
	requireProblem(t, e.admin(http.MethodGet, "/api/v1/receipts?from=never", ""), 400, "bad-request")
	require.Contains(t, e.log.String(), "action=receipts.export")
}
