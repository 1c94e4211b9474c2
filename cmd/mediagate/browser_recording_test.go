package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
)

// recordingNotice is the join page's notice while the room is recorded.
const recordingNotice = "This conference is being recorded"

// TestJoinPageRecording: headless Chromium is in room demo from the join
// page while an admin starts and stops recording the room through the API.
// The page shows no notice before, shows the recording notice as text in a
// live region (role=status) within about a poll of the start, and hides it
// again after the stop, still connected.
func TestJoinPageRecording(t *testing.T) {
	key, keyEnv := newAdminKey()
	g := startGateway(t, nil, demoRooms(t), keyEnv, "MEDIAGATE_STORAGE_DIR="+t.TempDir())
	admin := apiClient{t, g.base, key}
	tab := newBrowser(t, "")
	joinFromPage(t, tab, g.base, demoPIN, true)

	// The list shows the page's own participant: a poll has been rendered,
	// and it said the room is not recorded.
	var listed, hidden bool
	require.NoError(t, runIn(tab, 10*time.Second,
		chromedp.Poll(`document.querySelectorAll('#participants li').length === 1`, &listed,
			chromedp.WithPollingTimeout(5*time.Second)),
		chromedp.Evaluate(`document.getElementById('recording').hidden`, &hidden)))
	require.True(t, hidden, "recording notice shown before any recording")

	m := admin.manifest(http.MethodPost, "/api/v1/rooms/"+demoRoom+"/recording/start", "", http.StatusCreated)
	require.Equal(t, recorder.StateRecording, m.State)
	started := time.Now()
	// The page polls every 500 ms; 3 s leaves room for a busy machine.
	require.NoError(t, runIn(tab, 3*time.Second, chromedp.WaitVisible("#recording", chromedp.ByID)),
		"no recording notice within 3 s of the start")
	t.Logf("notice visible %v after the start answered", time.Since(started).Round(time.Millisecond))
	var text, region string
	require.NoError(t, runIn(tab, 5*time.Second,
		chromedp.Text("#recording", &text, chromedp.ByID),
		chromedp.Evaluate(`(() => { const r = document.getElementById('recording').closest('[role="status"]');
			return r && !r.hidden && !r.closest('[hidden]') ? r.id : ''; })()`, &region)))
	require.Equal(t, recordingNotice, text, "the notice says it in words")
	require.Equal(t, "recording-status", region, "the notice is in a shown live region")
	screenshot(t, tab, "join-recording.png")

	m = admin.manifest(http.MethodPost, "/api/v1/rooms/"+demoRoom+"/recording/stop", "", http.StatusOK)
	require.Equal(t, recorder.StateComplete, m.State)
	require.NoError(t, runIn(tab, 3*time.Second, chromedp.WaitNotVisible("#recording", chromedp.ByID)),
		"recording notice still shown 3 s after the stop")
	require.Equal(t, "connected", pageString(tab, "window.mediagate.state"))
}
