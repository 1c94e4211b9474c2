package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// TestRecordingRetentionThroughTheAPI: a recording under a one-minute
// policy downloads until it expires; from then on it is 410 Gone even
// before the sweeper runs; the sweep deletes the audio, keeps the manifest
// without participants and writes a receipt that verifies. A legal hold
// keeps another recording readable and undeletable past its expiry until
// it is lifted.
func TestRecordingRetentionThroughTheAPI(t *testing.T) {
	e := newRecEnv(t)
	m := e.record(t, "board", "acme", "minute")
	got := e.manifest(t, m.ID)
	require.Equal(t, recorder.StateComplete, got.State)
	require.Equal(t, t0.Add(time.Minute), got.ExpiresAt)
	require.Len(t, got.Participants, 1)
	require.Equal(t, "Ada Lovelace", got.Participants[0].Name)
	require.Equal(t, "*********56", got.Participants[0].Number, "numbers are masked")
	audio := e.download(t, m.ID)
	require.Equal(t, m.Bytes, int64(len(audio)))

	held := e.record(t, "board", "acme", "minute")
	w := e.admin(http.MethodPost, "/api/v1/recordings/"+string(held.ID)+"/hold", body(map[string]string{"reason": "case 2031-17"}))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "case 2031-17", e.manifest(t, held.ID).LegalHold.Reason)
	require.Regexp(t, `^api-key:[0-9a-f]{12}$`, e.manifest(t, held.ID).LegalHold.By)

	e.clock.Add(time.Minute - time.Millisecond)
	e.download(t, m.ID)
	e.clock.Add(time.Millisecond)
	requireProblem(t, e.admin(http.MethodGet, "/api/v1/recordings/"+string(m.ID)+"/download", ""), 410, "recording-expired")
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/recordings/"+string(m.ID)+"/link", ""), 410, "recording-expired")
	require.FileExists(t, filepath.Join(e.dir, string(m.ID)+".opus"), "not swept yet")
	e.download(t, held.ID) // the hold keeps it readable

	rep := e.rec.Sweep(e.clock.Now())
	require.Equal(t, []recorder.ID{m.ID}, rep.Deleted)
	require.Equal(t, 1, rep.Held)
	_, err := os.Stat(filepath.Join(e.dir, string(m.ID)+".opus"))
	require.ErrorIs(t, err, fs.ErrNotExist, "the audio is gone")
	requireProblem(t, e.admin(http.MethodGet, "/api/v1/recordings/"+string(m.ID)+"/download", ""), 410, "recording-deleted")
	gone := e.manifest(t, m.ID)
	require.Equal(t, recorder.StateDeleted, gone.State)
	require.Empty(t, gone.Participants)
	require.Equal(t, 1, gone.ParticipantCount)
	require.Equal(t, recorder.ReasonExpired, gone.Deletion.Reason)
	require.NotEmpty(t, gone.Deletion.Receipt)

	var receipts receiptPage
	w = e.admin(http.MethodGet, "/api/v1/receipts", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &receipts))
	require.Len(t, receipts.Receipts, 1)
	rc := receipts.Receipts[0]
	require.Equal(t, gone.Deletion.Receipt, rc.ID)
	require.Equal(t, m.ID, rc.Recording)
	require.Equal(t, m.SHA256, rc.SHA256, "the receipt names what was deleted")
	require.Equal(t, 1, e.verifyReceipts(t))
	require.NotContains(t, readFile(t, filepath.Join(e.dir, recorder.ReceiptsFileName)), "Ada")

	// The hold stops deletion until it is lifted.
	requireProblem(t, e.admin(http.MethodDelete, "/api/v1/recordings/"+string(held.ID), body(map[string]string{"reason": "admin"})), 409, "legal-hold")
	require.Empty(t, e.rec.Sweep(e.clock.Now()).Deleted)
	require.FileExists(t, filepath.Join(e.dir, string(held.ID)+".opus"))
	w = e.admin(http.MethodDelete, "/api/v1/recordings/"+string(held.ID)+"/hold", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Nil(t, e.manifest(t, held.ID).LegalHold)
	requireProblem(t, e.admin(http.MethodGet, "/api/v1/recordings/"+string(held.ID)+"/download", ""), 410, "recording-expired")
	require.Equal(t, []recorder.ID{held.ID}, e.rec.Sweep(e.clock.Now()).Deleted)
	require.Equal(t, 2, e.verifyReceipts(t))

	logs := e.log.String()
	for _, action := range []string{"recordings.get", "recordings.download", "recordings.hold", "recordings.unhold", "recordings.delete", "receipts.list", "recordings.link"} {
		require.Contains(t, logs, "action="+action)
	}
	require.Contains(t, logs, "target="+string(m.ID))
	require.NotContains(t, logs, e.key)
}

// TestRecordingDownloadRanges: ranges, If-Range and conditional requests
// work against the ETag, the file's SHA-256; a recording still running is
// 409 and an unknown one 404.
func TestRecordingDownloadRanges(t *testing.T) {
	e := newRecEnv(t)
	m := e.record(t, "board", "acme", "")
	full := e.download(t, m.ID)
	etag := `"` + m.SHA256 + `"`
	path := "/api/v1/recordings/" + string(m.ID) + "/download"
	auth := "Bearer " + e.key

	w := e.doURL(http.MethodGet, path, "Authorization", auth, "Range", "bytes=100-199")
	require.Equal(t, http.StatusPartialContent, w.Code)
	require.Equal(t, full[100:200], w.Body.Bytes())
	require.Equal(t, fmt.Sprintf("bytes 100-199/%d", len(full)), w.Header().Get("Content-Range"))

	w = e.doURL(http.MethodGet, path, "Authorization", auth, "Range", "bytes=100-", "If-Range", etag)
	require.Equal(t, http.StatusPartialContent, w.Code, "same file: resume")
	require.Equal(t, full[100:], w.Body.Bytes())

	w = e.doURL(http.MethodGet, path, "Authorization", auth, "Range", "bytes=100-", "If-Range", `"0000"`)
	require.Equal(t, http.StatusOK, w.Code, "another file: start over")
	require.Equal(t, full, w.Body.Bytes())

	w = e.doURL(http.MethodGet, path, "Authorization", auth, "If-None-Match", etag)
	require.Equal(t, http.StatusNotModified, w.Code)

	require.Equal(t, `attachment; filename="`+string(m.ID)+`.opus"`, e.doURL(http.MethodGet, path, "Authorization", auth).Header().Get("Content-Disposition"))
	requireProblem(t, e.doURL(http.MethodGet, path), 401, "api-key-missing")

	src := &blockingSource{}
	live, err := e.rec.Start("lobby", "acme", "", src)
	require.NoError(t, err)
	requireProblem(t, e.admin(http.MethodGet, "/api/v1/recordings/"+string(live.ID())+"/download", ""), 409, "recording-in-progress")
	require.Equal(t, recorder.StateRecording, e.manifest(t, live.ID()).State)
	require.NoError(t, live.Stop(context.Background()))

	requireProblem(t, e.admin(http.MethodGet, "/api/v1/recordings/"+string(recorder.NewID())+"/download", ""), 404, "recording-not-found")
	requireProblem(t, e.admin(http.MethodGet, "/api/v1/recordings/"+string(recorder.NewID()), ""), 404, "recording-not-found")
}

// blockingSource is a mix that delivers no frame: the recording runs until
// it is stopped.
type blockingSource struct{}

func (s *blockingSource) Read(ctx context.Context, _ *room.MixFrame) error {
	<-ctx.Done()
	return ctx.Err()
}

func (s *blockingSource) Close() {}

// TestRecordingLinks: a signed link downloads one recording without an API
// key until it expires (15 minutes, never past the recording's expiry);
// it opens no other recording, and any change to it breaks it.
func TestRecordingLinks(t *testing.T) {
	e := newRecEnv(t)
	a := e.record(t, "board", "acme", "")
	b := e.record(t, "board", "acme", "")
	full := e.download(t, a.ID)

	w := e.admin(http.MethodPost, "/api/v1/recordings/"+string(a.ID)+"/link", "")
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var link linkResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &link))
	require.Equal(t, t0.Add(15*time.Minute), link.ExpiresAt)
	require.True(t, strings.HasPrefix(link.Path, "/api/v1/recordings/"+string(a.ID)+"/download?"), link.Path)
	require.Equal(t, "http://example.com"+link.Path, link.URL)

	w = e.doURL(http.MethodGet, link.Path) // no API key
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, full, w.Body.Bytes())
	w = e.doURL(http.MethodGet, link.Path, "Range", "bytes=0-9")
	require.Equal(t, http.StatusPartialContent, w.Code)
	require.Contains(t, e.log.String(), `action=recordings.download key="" role="" tenant=acme target=`+string(a.ID))

	// Another recording, the same signature.
	query := link.Path[strings.Index(link.Path, "?"):]
	requireProblem(t, e.doURL(http.MethodGet, "/api/v1/recordings/"+string(b.ID)+"/download"+query), 403, "link-invalid")
	requireProblem(t, e.doURL(http.MethodGet, "/api/v1/recordings/"+string(recorder.NewID())+"/download"+query), 403, "link-invalid")
	// Tampering: a later expiry, another signature, parts missing or twice.
	exp := link.ExpiresAt.Unix()
	for _, q := range []string{
		strings.Replace(query, fmt.Sprint(exp), fmt.Sprint(exp+3600), 1),
		strings.Replace(query, "sig=", "sig=A", 1),
		"?expires=" + fmt.Sprint(exp),
		query + "&sig=x",
		"?sig=" + query[strings.Index(query, "sig=")+4:],
	} {
		requireProblem(t, e.doURL(http.MethodGet, "/api/v1/recordings/"+string(a.ID)+"/download"+q), 403, "link-invalid")
	}
	// A link is for downloading only.
	requireProblem(t, e.doURL(http.MethodGet, "/api/v1/recordings/"+string(a.ID)+query), 401, "api-key-missing")

	e.clock.Add(15*time.Minute - time.Second)
	require.Equal(t, http.StatusOK, e.doURL(http.MethodGet, link.Path).Code)
	e.clock.Add(time.Second)
	requireProblem(t, e.doURL(http.MethodGet, link.Path), 403, "link-expired")

	// Shorter on request, never longer than the configured lifetime.
	w = e.admin(http.MethodPost, "/api/v1/recordings/"+string(b.ID)+"/link", body(map[string]int{"ttl_seconds": 60}))
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &link))
	require.Equal(t, e.clock.Now().Add(time.Minute), link.ExpiresAt)
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/recordings/"+string(b.ID)+"/link", body(map[string]int{"ttl_seconds": 901})), 400, "bad-request")

	// Never past the recording's expiry.
	short := e.record(t, "board", "acme", "minute")
	w = e.admin(http.MethodPost, "/api/v1/recordings/"+string(short.ID)+"/link", "")
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &link))
	require.Equal(t, short.ExpiresAt, link.ExpiresAt)

	// A deleted recording's link opens nothing.
	w = e.admin(http.MethodPost, "/api/v1/recordings/"+string(b.ID)+"/link", "")
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &link))
	w = e.admin(http.MethodDelete, "/api/v1/recordings/"+string(b.ID), body(map[string]string{"reason": "erasure-request"}))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	requireProblem(t, e.doURL(http.MethodGet, link.Path), 410, "recording-deleted")
}

// TestRecordingPathTraversal: IDs that try to leave the store (dot
// segments plain and encoded, backslashes, absolute paths, NUL, over-long)
// are refused with 400 on every route, and no file outside the store is
// read, changed or removed.
func TestRecordingPathTraversal(t *testing.T) {
	e := newRecEnv(t)
	m := e.record(t, "board", "acme", "")
	// Files a traversal would aim at: next to the store and in it under
	// names that are no IDs.
	secret := "not for you " + strings.Repeat("x", 100)
	outside := map[string]string{
		filepath.Join(e.root, "secret.opus"):       secret,
		filepath.Join(e.root, "secret.json"):       `{"id":"secret"}`,
		filepath.Join(e.root, "store", "x.opus"):   secret,
		filepath.Join(e.root, "store", "..x.json"): secret,
		filepath.Join(e.root, "deletion-receipts"): secret,
	}
	stamp := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for p, content := range outside {
		require.NoError(t, os.WriteFile(p, []byte(content), 0o640))
		require.NoError(t, os.Chtimes(p, stamp, stamp))
	}
	before := e.storeFiles(t)

	ids := []string{
		"..%2F..%2Fsecret", "%2e%2e%2f%2e%2e%2fsecret", "%2E%2E%2Fsecret", "..%5C..%5Csecret", "..%5csecret",
		"%2Fetc%2Fpasswd", "%2F" + strings.TrimPrefix(filepath.Join(e.root, "secret"), "/"),
		"x", "secret", "..", "%2e%2e", "abc%00def", string(m.ID) + "%00", string(m.ID) + "%2F..",
		"%00" + string(m.ID)[1:], strings.Repeat("A", 4096), string(m.ID) + "A", string(m.ID)[:21],
		string(m.ID)[:21] + "%2E", "C:%5Csecret", "~", "%252e%252e%252fsecret",
	}
	routes := []struct{ method, suffix, body string }{
		{http.MethodGet, "", ""},
		{http.MethodGet, "/download", ""},
		{http.MethodPost, "/link", ""},
		{http.MethodPost, "/extend", `{"until":"2031-12-01T00:00:00Z"}`},
		{http.MethodPost, "/hold", `{"reason":"x"}`},
		{http.MethodDelete, "/hold", ""},
		{http.MethodDelete, "", `{"reason":"admin"}`},
	}
	for _, id := range ids {
		for _, rt := range routes {
			target := "/api/v1/recordings/" + id + rt.suffix
			w := e.admin(rt.method, target, rt.body)
			require.Equal(t, http.StatusBadRequest, w.Code, "%s %s: %s", rt.method, target, w.Body.String())
			require.NotContains(t, w.Body.String(), "not for you")
		}
		// A signed link does not get further.
		w := e.doURL(http.MethodGet, "/api/v1/recordings/"+id+"/download?expires=9999999999&sig=AAAA")
		require.Equal(t, http.StatusBadRequest, w.Code, "link %s: %s", id, w.Body.String())
	}
	// Literal dot segments are refused too, not redirected.
	for _, p := range []string{"/api/v1/recordings/../../secret/download", "/api/v1/recordings/./" + string(m.ID), "/api/v1/recordings//download"} {
		requireProblem(t, e.admin(http.MethodGet, p, ""), 400, "bad-request")
	}

	for p, content := range outside {
		b, err := os.ReadFile(p)
		require.NoError(t, err, "%s is still there", p)
		require.Equal(t, content, string(b))
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.True(t, st.ModTime().Equal(stamp), "%s was not written", p)
	}
	require.Equal(t, before, e.storeFiles(t), "nothing in the store changed")
	e.download(t, m.ID)
	require.Equal(t, recorder.StateComplete, e.manifest(t, m.ID).State)
}

// TestRecordingStartStop: the room routes ask the RoomRecorder, map its
// errors, and refuse bad room IDs.
func TestRecordingStartStop(t *testing.T) {
	e := newRecEnv(t)
	var running *recorder.Recording
	src := &blockingSource{}
	e.rooms.start = func(id room.ID) (recorder.Manifest, error) {
		switch {
		case id == "closed":
			return recorder.Manifest{}, fmt.Errorf("room %s: %w", id, room.ErrNotFound)
		case running != nil:
			return recorder.Manifest{}, ErrAlreadyRecording
		}
		var err error
		running, err = e.rec.Start(id, DefaultTenant, "", src)
		if err != nil {
			return recorder.Manifest{}, err
		}
		return running.Manifest(), nil
	}
	e.rooms.stop = func(ctx context.Context, id room.ID) (recorder.Manifest, error) {
		if running == nil {
			return recorder.Manifest{}, ErrNotRecording
		}
		if err := running.Stop(ctx); err != nil {
			return recorder.Manifest{}, err
		}
		return running.Manifest(), nil
	}

	w := e.admin(http.MethodPost, "/api/v1/rooms/board/recording/start", "")
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var m recorder.Manifest
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m))
	require.Equal(t, "/api/v1/recordings/"+string(m.ID), w.Header().Get("Location"))
	require.Equal(t, recorder.StateRecording, m.State)
	require.Equal(t, DefaultTenant, m.Tenant)
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/rooms/board/recording/start", ""), 409, "already-recording")
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/rooms/closed/recording/start", ""), 404, "room-not-found")
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/rooms/Bad.Room/recording/start", ""), 400, "bad-request")

	w = e.admin(http.MethodPost, "/api/v1/rooms/board/recording/stop", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m))
	require.Equal(t, recorder.StateComplete, m.State)
	running = nil
	requireProblem(t, e.admin(http.MethodPost, "/api/v1/rooms/board/recording/stop", ""), 409, "not-recording")
	logs := e.log.String()
	require.Contains(t, logs, "action=recordings.start")
	require.Contains(t, logs, "action=recordings.stop")
}

// TestRecordingExtendAndDelete: extension within the policy, the refusals
// with their problem types, and deletion with a receipt.
func TestRecordingExtendAndDelete(t *testing.T) {
	e := newRecEnv(t)
	m := e.record(t, "board", "acme", "minute")
	path := "/api/v1/recordings/" + string(m.ID)

	w := e.admin(http.MethodPost, path+"/extend", body(map[string]time.Time{"until": t0.Add(time.Hour)}))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, t0.Add(time.Hour), e.manifest(t, m.ID).ExpiresAt)
	requireProblem(t, e.admin(http.MethodPost, path+"/extend", body(map[string]time.Time{"until": t0.Add(time.Hour + time.Second)})), 422, "retention-maximum")
	requireProblem(t, e.admin(http.MethodPost, path+"/extend", body(map[string]time.Time{"until": t0.Add(time.Minute)})), 422, "retention-shorten")
	requireProblem(t, e.admin(http.MethodPost, path+"/extend", `{}`), 400, "bad-request")
	requireProblem(t, e.admin(http.MethodPost, path+"/extend", `{"until":"tomorrow"}`), 400, "bad-request")

	requireProblem(t, e.admin(http.MethodPost, path+"/hold", `{}`), 400, "bad-request")
	requireProblem(t, e.admin(http.MethodPost, path+"/hold", body(map[string]string{"reason": "a\x00b"})), 400, "bad-request")
	requireProblem(t, e.admin(http.MethodPost, path+"/hold", body(map[string]string{"reason": strings.Repeat("é", 501)})), 400, "bad-request")

	requireProblem(t, e.do(http.MethodDelete, path, `{"reason":"admin"}`, "Authorization", "Bearer "+e.key), 415, "unsupported-content-type")
	requireProblem(t, e.admin(http.MethodDelete, path, ""), 400, "bad-request")
	requireProblem(t, e.admin(http.MethodDelete, path, `{"reason":"expired"}`), 400, "bad-request")
	w = e.admin(http.MethodDelete, path, body(map[string]string{"reason": "admin"}))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var gone recorder.Manifest
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &gone))
	require.Equal(t, recorder.StateDeleted, gone.State)
	require.Equal(t, recorder.ReasonAdmin, gone.Deletion.Reason)
	require.Regexp(t, `^api-key:[0-9a-f]{12}$`, gone.Deletion.Actor)
	requireProblem(t, e.admin(http.MethodPost, path+"/extend", body(map[string]time.Time{"until": t0.Add(time.Hour)})), 410, "recording-deleted")
	require.Equal(t, 1, e.verifyReceipts(t))
}

// readFile returns a file's content.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	require.NoError(t, err)
	return string(b)
}
