package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// adminPage is the admin page in a headless Chromium tab, with the
// browser's downloads going to dir.
type adminPage struct {
	t          *testing.T
	tab        context.Context
	dir        string
	downloads  chan string // file names of completed downloads, in dir
	exceptions atomic.Int32
}

// openAdminPage starts Chromium and opens base's admin page.
func openAdminPage(t *testing.T, base string) *adminPage {
	t.Helper()
	p := &adminPage{t: t, tab: newBrowser(t, ""), dir: t.TempDir(), downloads: make(chan string, 8)}
	chromedp.ListenTarget(p.tab, func(ev any) {
		switch ev := ev.(type) {
		case *browser.EventDownloadProgress:
			if ev.State == browser.DownloadProgressStateCompleted {
				select {
				case p.downloads <- ev.GUID:
				default:
				}
			}
		case *runtime.EventExceptionThrown:
			p.exceptions.Add(1)
		}
	})
	p.run(15*time.Second,
		browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllowAndName).WithDownloadPath(p.dir).WithEventsEnabled(true),
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible("#api-key", chromedp.ByID))
	return p
}

// run runs actions in the tab within d and fails the test on an error.
func (p *adminPage) run(d time.Duration, actions ...chromedp.Action) {
	p.t.Helper()
	require.NoError(p.t, runIn(p.tab, d, actions...), "page error %q, status %q",
		pageString(p.tab, "window.mediagateAdmin && window.mediagateAdmin.error"), pageString(p.tab, "document.getElementById('status').textContent"))
}

// until waits until the JavaScript expression is true.
func (p *adminPage) until(expr string) {
	p.t.Helper()
	var ok bool
	p.run(10*time.Second, chromedp.Poll(expr, &ok, chromedp.WithPollingTimeout(8*time.Second)))
}

// eval evaluates expr into out.
func (p *adminPage) eval(expr string, out any) {
	p.t.Helper()
	p.run(5*time.Second, chromedp.Evaluate(expr, out))
}

// text returns the text of the element selector matches.
func (p *adminPage) text(selector string) string {
	p.t.Helper()
	var s string
	p.run(5*time.Second, chromedp.Text(selector, &s, chromedp.ByQuery))
	return s
}

// set sets the value of the form field with id, as choosing it would.
func (p *adminPage) set(id, value string) {
	p.t.Helper()
	var got string
	p.eval(`(() => { const e = document.getElementById(`+jsString(id)+`); e.value = `+jsString(value)+`; return e.value; })()`, &got)
	require.Equal(p.t, value, got, "field %s", id)
}

// click clicks what selector matches.
func (p *adminPage) click(selector string) {
	p.t.Helper()
	p.run(5*time.Second, chromedp.Click(selector, chromedp.ByQuery))
}

// signIn types key into the emptied form and submits it.
func (p *adminPage) signIn(key string) {
	p.t.Helper()
	p.set("api-key", "")
	p.run(5*time.Second, chromedp.SendKeys("#api-key", key, chromedp.ByID), chromedp.Click("#signin", chromedp.ByID))
}

// download waits for the browser's next completed download and returns
// its content.
func (p *adminPage) download() []byte {
	p.t.Helper()
	select {
	case guid := <-p.downloads:
		b, err := os.ReadFile(filepath.Join(p.dir, guid))
		require.NoError(p.t, err)
		return b
	case <-time.After(15 * time.Second):
		p.t.Fatal("no download completed within 15 s")
		return nil
	}
}

// row is the selector of recording id's row.
func row(id recorder.ID) string { return `#recordings-body tr[data-id="` + string(id) + `"]` }

// adminPageEnv is the environment of the admin page's gateway: rooms board
// (30-day default policy) and lobby (3 days: expiring soon).
func adminPageEnv(keyEnv, storage string) []string {
	return []string{keyEnv, "MEDIAGATE_STORAGE_DIR=" + storage,
		`MEDIAGATE_ROOMS={"board": {"open": true}, "lobby": {"open": true}}`,
		`MEDIAGATE_RECORDING_POLICIES={"default": {"duration": "720h", "max": "8760h"}, "short": {"duration": "72h", "max": "8760h"}}`,
		`MEDIAGATE_RECORDING_ROOM_POLICIES={"lobby": "short"}`}
}

// TestAdminPage: an admin signs in on /admin in headless Chromium (a wrong
// key first: the problem's detail is shown); the recordings made through
// the API are listed with live expiry countdowns, the one expiring within
// 7 days marked; the page's download is the stored file (SHA-256 of the
// manifest); extend, legal hold and delete through the page change the
// manifests; refusals are shown as text; receipts are listed and exported;
// filters and pages work; signing out forgets the key.
func TestAdminPage(t *testing.T) {
	key, keyEnv := newAdminKey()
	g := startGateway(t, nil, adminPageEnv(keyEnv, t.TempDir())...)
	admin := apiClient{t, g.base, key}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pion, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{Tone: 440, Amp: 0.3})
	require.NoError(t, err)
	board := makeRecording(ctx, t, admin, pion, "board", 100)
	lobby := makeRecording(ctx, t, admin, pion, "lobby", 25)
	require.NoError(t, pion.Close())

	p := openAdminPage(t, g.base)
	p.signIn("mgk_not-a-key")
	p.until(`!document.getElementById('message').hidden`)
	require.Equal(t, "Sign-in failed: api key not accepted (HTTP 401)", p.text("#message"))

	p.signIn(key)
	p.until(`window.mediagateAdmin.state === 'signed-in' && document.querySelectorAll('#recordings-body tr').length === 2`)
	require.Equal(t, "auth.admin_keys", p.text("#who-name"))
	require.Equal(t, "admin", p.text("#who-role"))
	require.Equal(t, "* (every tenant)", p.text("#who-tenant"))
	var stored, field string
	var others int
	p.eval(`sessionStorage.getItem('mediagate.admin.key')`, &stored)
	p.eval(`document.getElementById('api-key').value`, &field)
	p.eval(`localStorage.length + document.cookie.length`, &others)
	require.Equal(t, key, stored, "the key is in the tab's sessionStorage")
	require.Empty(t, field, "and no longer in the form")
	require.Zero(t, others, "nor anywhere else")

	adminPageCountdowns(t, p, board, lobby)
	screenshot(t, p.tab, "admin.png")

	// The page's download is the stored file.
	p.click(row(board.ID) + ` button[aria-label^="Download"]`)
	got := p.download()
	require.Len(t, got, int(board.Bytes))
	require.Equal(t, board.SHA256, sha256Hex(got), "the downloaded bytes are the recording")
	t.Logf("downloaded %d bytes through the page, SHA-256 as in the manifest", len(got))

	adminPageChanges(t, p, admin, board, lobby)
	adminPagePaging(t, p, board, lobby)

	p.click("#signout")
	p.until(`window.mediagateAdmin.state === 'signed-out' && !document.getElementById('signin-form').hidden`)
	var rows int
	p.eval(`sessionStorage.length + document.querySelectorAll('#recordings-body tr, #receipts-body tr').length`, &rows)
	require.Zero(t, rows, "signed out: the key and what it showed are gone")
	require.Zero(t, p.exceptions.Load(), "the page threw")
}

// adminPageCountdowns checks the expiry column: time, live countdown and
// the "Expires soon" marker with the highlight under 7 days only.
func adminPageCountdowns(t *testing.T, p *adminPage, board, lobby recorder.Manifest) {
	t.Helper()
	boardLeft := p.text(row(board.ID) + " .countdown")
	require.Regexp(t, `^in 29 d 23 h \d+ min \d+ s$`, boardLeft)
	require.Contains(t, p.text(row(board.ID)+" time"), board.ExpiresAt.UTC().Format("2006-01-02 15:04:05"))
	require.Regexp(t, `^in 2 d 23 h \d+ min \d+ s$`, p.text(row(lobby.ID)+" .countdown"))
	var boardSoon, lobbySoon []bool
	soon := `[document.querySelector('%s').classList.contains('expiring'), !document.querySelector('%s .soon-marker').hidden]`
	p.eval(fmt.Sprintf(soon, row(board.ID), row(board.ID)), &boardSoon)
	p.eval(fmt.Sprintf(soon, row(lobby.ID), row(lobby.ID)), &lobbySoon)
	require.Equal(t, []bool{false, false}, boardSoon)
	require.Equal(t, []bool{true, true}, lobbySoon, "highlighted, with the text marker")
	require.Equal(t, "Expires soon", p.text(row(lobby.ID)+" .soon-marker"))
	p.until(`document.querySelector('` + row(board.ID) + ` .countdown').textContent !== ` + jsString(boardLeft))
}

// adminPageChanges extends, holds and deletes through the page and checks
// the manifests through the API.
func adminPageChanges(t *testing.T, p *adminPage, admin apiClient, board, lobby recorder.Manifest) {
	t.Helper()
	get := func(id recorder.ID) recorder.Manifest {
		return admin.manifest(http.MethodGet, "/api/v1/recordings/"+string(id), "", http.StatusOK)
	}
	p.click(row(board.ID) + ` button[aria-label^="Manage"]`)
	p.until(`!document.getElementById('detail').hidden && document.getElementById('detail-id').textContent === ` + jsString(string(board.ID)))
	day := board.ExpiresAt.UTC().AddDate(0, 0, 10).Format(time.DateOnly)
	p.set("extend-date", day)
	p.click("#extend")
	p.until(`document.getElementById('status').textContent.includes('now expires')`)
	require.Equal(t, day+"T00:00:00Z", get(board.ID).ExpiresAt.UTC().Format(time.RFC3339), "extended through the page")
	// The list is drawn anew after the change: wait for the row to show it.
	p.until(fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? '').includes(%q)`, row(board.ID)+" time", day+" 00:00:00"))

	p.run(5*time.Second, chromedp.SendKeys("#hold-reason", "case 2031-17", chromedp.ByID), chromedp.Click("#hold-on", chromedp.ByID))
	p.until(`document.getElementById('status').textContent.includes('is on legal hold')`)
	held := get(board.ID).LegalHold
	require.NotNil(t, held, "held through the page")
	require.Equal(t, "case 2031-17", held.Reason)
	require.Equal(t, "On hold: case 2031-17", p.text(row(board.ID)+" .hold"))

	// A refusal is shown as the problem's text.
	p.click("#delete")
	p.click("#delete-yes")
	p.until(`!document.getElementById('message').hidden`)
	require.Regexp(t, `^Deleting failed: recording is on legal hold.* \(HTTP 409\)$`, p.text("#message"))
	p.click("#hold-off")
	p.until(`document.getElementById('status').textContent.includes('is lifted')`)
	require.Nil(t, get(board.ID).LegalHold, "hold lifted through the page")

	p.click(row(lobby.ID) + ` button[aria-label^="Manage"]`)
	p.until(`document.getElementById('detail-id').textContent === ` + jsString(string(lobby.ID)))
	p.set("delete-reason", "erasure-request")
	p.click("#delete")
	p.click("#delete-yes")
	p.until(`document.querySelector('#receipts-body tr[data-recording="` + string(lobby.ID) + `"]') !== null`)
	gone := get(lobby.ID)
	require.Equal(t, recorder.StateDeleted, gone.State, "deleted through the page")
	require.Equal(t, recorder.ReasonErasure, gone.Deletion.Reason)
	require.Equal(t, "deleted", p.text(row(lobby.ID)+" .state"))

	code, want := admin.do(http.MethodGet, "/api/v1/receipts/export?format=csv", "")
	require.Equal(t, http.StatusOK, code)
	p.click("#export-csv")
	require.Equal(t, string(want), string(p.download()), "the page's export is the API's")
}

// adminPagePaging shows one recording per page, then filters.
func adminPagePaging(t *testing.T, p *adminPage, board, lobby recorder.Manifest) {
	t.Helper()
	ids := `[...document.querySelectorAll('#recordings-body tr')].map(r => r.dataset.id).join(',')`
	p.set("page-size", "1")
	p.click("#apply-filter")
	p.until(ids + ` === ` + jsString(string(board.ID)) + ` && !document.getElementById('next-page').disabled`)
	p.click("#next-page")
	p.until(ids + ` === ` + jsString(string(lobby.ID)) + ` && document.getElementById('next-page').disabled`)
	require.Equal(t, "Page 2", p.text("#page-info"))
	p.click("#prev-page")
	p.until(ids + ` === ` + jsString(string(board.ID)))
	p.set("page-size", "25")
	p.set("filter-state", "deleted")
	p.click("#apply-filter")
	p.until(ids + ` === ` + jsString(string(lobby.ID)))
	p.set("filter-state", "")
	p.run(5*time.Second, chromedp.SendKeys("#filter-room", "board", chromedp.ByID))
	p.click("#apply-filter")
	p.until(ids + ` === ` + jsString(string(board.ID)))
}

// TestAdminPageViewer: a viewer key signs in, sees the recordings (and
// may download) but gets no write button anywhere; a reload keeps the
// sign-in (sessionStorage).
func TestAdminPageViewer(t *testing.T) {
	key, keyEnv := newAdminKey()
	g := startGateway(t, nil, adminPageEnv(keyEnv, t.TempDir())...)
	admin := apiClient{t, g.base, key}
	m := admin.manifest(http.MethodPost, "/api/v1/rooms/lobby/recording/start", "", http.StatusCreated)
	admin.manifest(http.MethodPost, "/api/v1/rooms/lobby/recording/stop", "", http.StatusOK)
	viewer := makeViewer(t, admin, "default")

	p := openAdminPage(t, g.base)
	p.signIn(viewer)
	p.until(`window.mediagateAdmin.state === 'signed-in' && document.querySelectorAll('#recordings-body tr').length === 1`)
	require.Equal(t, "viewer (reads only)", p.text("#who-role"))
	require.Equal(t, "default", p.text("#who-tenant"))
	p.click(row(m.ID) + ` button[aria-label^="Details"]`)
	p.until(`!document.getElementById('detail').hidden`)
	visible := `[...document.querySelectorAll('button')].filter(b => b.offsetParent !== null).map(b => b.textContent).join('|')`
	var buttons string
	p.eval(visible, &buttons)
	require.Equal(t, "Sign out|Show|Download|Details|Previous page|Next page|Download|Close|Show|Export JSON|Export CSV", buttons,
		"no write button for a viewer")
	for _, write := range []string{"Extend", "legal hold", "Delete", "Manage"} {
		require.NotContains(t, buttons, write)
	}

	p.run(15*time.Second, chromedp.Reload(), chromedp.WaitReady("body", chromedp.ByQuery))
	p.until(`window.mediagateAdmin.state === 'signed-in' && document.querySelectorAll('#recordings-body tr').length === 1`)
	require.Equal(t, "viewer (reads only)", p.text("#who-role"), "signed in again from sessionStorage")
	require.Zero(t, p.exceptions.Load(), "the page threw")
}

// jsString quotes s as a JavaScript string literal (IDs and dates here:
// no quotes or backslashes to escape, which it checks).
func jsString(s string) string {
	if strings.ContainsAny(s, `'\`) || !regexp.MustCompile(`^[\w:. -]*$`).MatchString(s) {
		panic("jsString: " + s)
	}
	return "'" + s + "'"
}
