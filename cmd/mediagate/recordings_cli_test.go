package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// TestRecordingsCLI: recordings ls, get, extend, hold, rm and download
// against a running node, with the admin API's answers, its refusals
// (problem details shown, exit code 1) and command line mistakes (exit
// code 2).
func TestRecordingsCLI(t *testing.T) {
	key, keyEnv := newAdminKey()
	g := startGateway(t, nil, recordedRoomEnv(t.TempDir(), keyEnv)...)
	admin := apiClient{t, g.base, key}
	as := func(key string) []string { return []string{"MEDIAGATE_SERVER=" + g.base, "MEDIAGATE_API_KEY=" + key} }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pion, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{Tone: 440, Amp: 0.3})
	require.NoError(t, err)
	board := makeRecording(ctx, t, admin, pion, "board", 100)
	lobby := makeRecording(ctx, t, admin, pion, "lobby", 25)

	out, errOut, code := cli(t, as(key), "recordings", "ls")
	require.Equal(t, exitOK, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, `^ID\s+ROOM\s+TENANT\s+STARTED\s+DURATION\s+STATE\s+SIZE\s+EXPIRES\s+LEFT\s+HOLD$`, lines[0])
	require.Regexp(t, `^`+string(board.ID)+`\s+board\s+default\s+\S+Z\s+\d+s\s+complete\s+[\d.]+ k?B\s+`+
		regexp.QuoteMeta(board.ExpiresAt.UTC().Format(time.RFC3339))+`\s+29d23h\s+-$`, lines[1])
	require.True(t, strings.HasPrefix(lines[2], string(lobby.ID)+" "), lines[2])

	out, errOut, code = cli(t, as(key), "recordings", "ls", "--room", "lobby", "--json")
	require.Equal(t, exitOK, code, errOut)
	var listed []recorder.Manifest
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 1)
	require.Equal(t, lobby.ID, listed[0].ID)
	require.Equal(t, lobby.SHA256, listed[0].SHA256)
	out, _, code = cli(t, as(key), "recordings", "ls", "--state", "deleted")
	require.Equal(t, exitOK, code)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 1, "the header alone")

	out, errOut, code = cli(t, as(key), "recordings", "get", string(board.ID))
	require.Equal(t, exitOK, code, errOut)
	var got recorder.Manifest
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Equal(t, board.ID, got.ID)
	require.Equal(t, board.SHA256, got.SHA256)
	require.Len(t, got.Participants, 1, "get shows the participants")

	cliRetention(t, as(key), admin, board)

	// A viewer reads, and is refused the rest.
	viewer := makeViewer(t, admin, "default")
	_, errOut, code = cli(t, as(viewer), "recordings", "ls")
	require.Equal(t, exitOK, code, errOut)
	_, errOut, code = cli(t, as(viewer), "recordings", "hold", string(board.ID), "--reason", "x")
	require.Equal(t, exitFailed, code)
	require.Regexp(t, `^mediagate recordings hold: 403 .*\(the key's role or tenant does not allow this\)\n$`, errOut)
	require.NotContains(t, errOut, viewer, "the key is never echoed")

	// Deletion.
	out, errOut, code = cli(t, as(key), "recordings", "rm", string(lobby.ID), "--reason", "erasure-request")
	require.Equal(t, exitOK, code, errOut)
	require.Regexp(t, `^deleted the audio of recording `+string(lobby.ID)+` \(receipt \S+\)\n$`, out)
	require.Equal(t, recorder.StateDeleted, admin.manifest(http.MethodGet, "/api/v1/recordings/"+string(lobby.ID), "", http.StatusOK).State)
	_, errOut, code = cli(t, as(key), "recordings", "download", string(lobby.ID), "-o", filepath.Join(t.TempDir(), "x.opus"))
	require.Equal(t, exitFailed, code)
	require.Contains(t, errOut, "410 recording deleted")

	cliDownload(t, as(key), board)

	// Mistakes.
	requireCLIErrors(t, []cliCase{
		{as(key), []string{"recordings", "get", "../../etc/passwd"}, exitUsage, `"../../etc/passwd" is not a recording ID`},
		{as(key), []string{"recordings", "get", "AAAAAAAAAAAAAAAAAAAAAA"}, exitFailed, "404 recording not found"},
		{as(key), []string{"recordings", "hold", string(board.ID)}, exitUsage, "either --reason R or --off"},
		{as(key), []string{"recordings", "rm", string(board.ID)}, exitUsage, "needs --reason admin or --reason erasure-request"},
		{as(key), []string{"recordings", "extend", string(board.ID), "--until", "tomorrow"}, exitUsage, "--until must be an RFC 3339 time"},
		{as(key), []string{"recordings", "ls", "--state", "lost"}, exitUsage, "--state must be recording, complete, interrupted or deleted"},
		{as(key), []string{"recordings", "ls", "--room", "no such room"}, exitFailed, "400 "},
		{as(key), []string{"recordings", "frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"MEDIAGATE_SERVER=" + g.base}, []string{"recordings", "ls"}, exitUsage, "MEDIAGATE_API_KEY is not set"},
		{as("mgk_wrong"), []string{"recordings", "ls"}, exitFailed, "401 "},
	})
}

// cliDownload downloads a recording into the working directory (the
// default file name) with progress lines, then again: nothing to do.
func cliDownload(t *testing.T, as []string, board recorder.Manifest) {
	t.Helper()
	dir := t.TempDir()
	out, errOut, code := cliIn(t, dir, as, "recordings", "download", string(board.ID))
	require.Equal(t, exitOK, code, errOut)
	file := string(board.ID) + ".opus"
	require.Equal(t, board.SHA256, sha256File(t, filepath.Join(dir, file)))
	require.Contains(t, out, "SHA-256 "+board.SHA256+" as in the manifest")
	require.Contains(t, errOut, file+": 0% (0 of ")
	require.Contains(t, errOut, file+": 100% (")
	require.NotContains(t, errOut, "\r", "no bar without a terminal")
	_, errOut, code = cliIn(t, dir, as, "recordings", "download", string(board.ID))
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, file+": complete already\n", errOut)
}

// cliRetention extends a recording, puts it on legal hold (which refuses
// its deletion) and lifts the hold through the CLI, checking the manifest
// through the API after each.
func cliRetention(t *testing.T, as []string, admin apiClient, board recorder.Manifest) {
	t.Helper()
	until := board.ExpiresAt.Add(48 * time.Hour).UTC().Truncate(time.Second)
	out, errOut, code := cli(t, as, "recordings", "extend", string(board.ID), "--until", until.Format(time.RFC3339))
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "recording "+string(board.ID)+" now expires at "+until.Format(time.RFC3339)+"\n", out)
	require.True(t, until.Equal(admin.manifest(http.MethodGet, "/api/v1/recordings/"+string(board.ID), "", http.StatusOK).ExpiresAt))
	_, errOut, code = cli(t, as, "recordings", "extend", string(board.ID), "--until", board.ExpiresAt.UTC().Format(time.RFC3339))
	require.Equal(t, exitFailed, code)
	require.Contains(t, errOut, "mediagate recordings extend: 422 expiry can only be extended")

	out, errOut, code = cli(t, as, "recordings", "hold", string(board.ID), "--reason", "case 2031-17")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "recording "+string(board.ID)+" is on legal hold: case 2031-17\n", out)
	held := admin.manifest(http.MethodGet, "/api/v1/recordings/"+string(board.ID), "", http.StatusOK)
	require.NotNil(t, held.LegalHold)
	require.Equal(t, "case 2031-17", held.LegalHold.Reason)
	_, errOut, code = cli(t, as, "recordings", "rm", string(board.ID), "--reason", "admin")
	require.Equal(t, exitFailed, code)
	require.Contains(t, errOut, "409 recording is on legal hold")
	out, errOut, code = cli(t, as, "recordings", "hold", "--off", string(board.ID))
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "legal hold lifted")
	require.Nil(t, admin.manifest(http.MethodGet, "/api/v1/recordings/"+string(board.ID), "", http.StatusOK).LegalHold)
}

// TestRecordingsCLIDownloadResume: a download through a proxy that stops
// forwarding after a third of the file is cut by killing the node; the
// command fails (exit code 1) leaving the partial file. After the node
// restarts on the same storage, the same command resumes with a range
// request from where the file ends, and the file's SHA-256 is the
// manifest's. A partial file that is not from this recording is fetched
// again from the start.
func TestRecordingsCLIDownloadResume(t *testing.T) {
	key, keyEnv := newAdminKey()
	dir := t.TempDir() // the node's working directory: storage in ./data
	env := []string{keyEnv, `MEDIAGATE_ROOMS={"board": {"open": true}}`}
	g := startGatewayIn(t, dir, nil, env...)
	admin := apiClient{t, g.base, key}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pion, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{Tone: 440, Amp: 0.3})
	require.NoError(t, err)
	m := makeRecording(ctx, t, admin, pion, "board", 250)
	require.NoError(t, pion.Close())
	t.Logf("recording: %.2f s, %d bytes", m.Duration, m.Bytes)
	require.Greater(t, m.Bytes, int64(12000), "long enough to cut in the middle")

	u, err := url.Parse(g.base)
	require.NoError(t, err)
	proxy := newCutProxy(t, u.Host, m.Bytes/3)
	file := filepath.Join(t.TempDir(), "board.opus")
	cmd := exec.Command(binary, "recordings", "download", string(m.ID), "-o", file)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MEDIAGATE_SERVER=" + proxy.base(), "MEDIAGATE_API_KEY=" + key}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // a no-op once it exited
	select {
	case <-proxy.cut:
	case <-time.After(30 * time.Second):
		t.Fatalf("the download never reached the cut: %s", stderr.String())
	}
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGKILL), "the node stops in the middle of the download")
	g.wait(t)
	proxy.drop()
	var ee *exec.ExitError
	require.ErrorAs(t, cmd.Wait(), &ee, "%s", stderr.String())
	require.Equal(t, exitFailed, ee.ExitCode())
	require.Contains(t, stderr.String(), "download interrupted after")
	require.Contains(t, stderr.String(), "the same command resumes it")
	st, err := os.Stat(file)
	require.NoError(t, err)
	partial := st.Size()
	t.Logf("cut after %d of %d bytes: %q", partial, m.Bytes, lastLines(stderr.String(), 1))
	require.Greater(t, partial, int64(0))
	require.Less(t, partial, m.Bytes/3, "the answer's first third, headers included")

	g2 := startGatewayIn(t, dir, nil, env...)
	as := []string{"MEDIAGATE_SERVER=" + g2.base, "MEDIAGATE_API_KEY=" + key}
	out, errOut, code := cli(t, as, "recordings", "download", string(m.ID), "-o", file)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, errOut, "board.opus: resuming at byte "+strconv.FormatInt(partial, 10)+" of "+strconv.FormatInt(m.Bytes, 10)+"\n")
	require.Contains(t, errOut, "board.opus: 100% (")
	require.NotContains(t, errOut, "starting over")
	require.Contains(t, out, "SHA-256 "+m.SHA256+" as in the manifest")
	require.Equal(t, m.SHA256, sha256File(t, file), "the resumed file is the recording")

	// Half a file of something else: resumed, found wrong, fetched again.
	require.NoError(t, os.WriteFile(file, bytes.Repeat([]byte{'x'}, int(m.Bytes/2)), 0o600))
	_, errOut, code = cli(t, as, "recordings", "download", string(m.ID), "-o", file)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, errOut, "does not match the manifest's SHA-256; downloading it again from the start")
	require.Equal(t, m.SHA256, sha256File(t, file))
}
