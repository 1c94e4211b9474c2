package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
)

// TestReceiptsCLI: receipts ls and export show the node's deletion
// receipts as the admin API has them, with its filters; the export is
// byte for byte the API's file; receipts verify still works offline.
func TestReceiptsCLI(t *testing.T) {
	key, keyEnv := newAdminKey()
	storage := t.TempDir()
	g := startGateway(t, nil, keyEnv, "MEDIAGATE_STORAGE_DIR="+storage,
		`MEDIAGATE_ROOMS={"board": {"open": true, "tenant": "acme"}, "lobby": {"open": true}}`)
	admin := apiClient{t, g.base, key}
	as := []string{"MEDIAGATE_SERVER=" + g.base, "MEDIAGATE_API_KEY=" + key}

	out, errOut, code := cli(t, as, "receipts", "ls", "--json")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "[]\n", out)

	var ids []recorder.ID
	for _, room := range []string{"board", "lobby"} {
		m := admin.manifest(http.MethodPost, "/api/v1/rooms/"+room+"/recording/start", "", http.StatusCreated)
		admin.manifest(http.MethodPost, "/api/v1/rooms/"+room+"/recording/stop", "", http.StatusOK)
		_, errOut, code := cli(t, as, "recordings", "rm", string(m.ID), "--reason", "admin")
		require.Equal(t, exitOK, code, errOut)
		g.awaitLog(t, 10*time.Second, "event=recording.deleted", "recording="+string(m.ID))
		ids = append(ids, m.ID)
	}

	out, errOut, code = cli(t, as, "receipts", "ls")
	require.Equal(t, exitOK, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, `^DELETED\s+RECORDING\s+ROOM\s+TENANT\s+REASON\s+ACTOR\s+RECEIPT$`, lines[0])
	require.Regexp(t, `^\S+Z\s+`+string(ids[0])+`\s+board\s+acme\s+admin\s+api-key:[0-9a-f]{12}\s+\S+$`, lines[1])
	require.Regexp(t, `^\S+Z\s+`+string(ids[1])+`\s+lobby\s+default\s+admin\s+`, lines[2])

	out, errOut, code = cli(t, as, "receipts", "ls", "--tenant", "acme", "--json")
	require.Equal(t, exitOK, code, errOut)
	var rs []recorder.Receipt
	require.NoError(t, json.Unmarshal([]byte(out), &rs))
	require.Len(t, rs, 1)
	require.Equal(t, ids[0], rs[0].Recording)
	require.NotEmpty(t, rs[0].Sig)
	tomorrow := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	out, _, code = cli(t, as, "receipts", "ls", "--from", tomorrow)
	require.Equal(t, exitOK, code)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 1, "the header alone")
	out, _, code = cli(t, as, "receipts", "ls", "--to", tomorrow, "--json")
	require.Equal(t, exitOK, code)
	require.NoError(t, json.Unmarshal([]byte(out), &rs))
	require.Len(t, rs, 2)

	cliExport(t, as, admin)

	// Mistakes, and the offline check next to them.
	requireCLIErrors(t, []cliCase{
		{as, []string{"receipts", "export", "--format", "xml"}, exitUsage, "--format must be json or csv"},
		{as, []string{"receipts", "ls", "--from", "yesterday"}, exitUsage, "--from must be an RFC 3339 time"},
		{as, []string{"receipts", "ls", "--tenant", "acme corp"}, exitFailed, "400 "},
		{as, []string{"receipts", "ls", "extra"}, exitUsage, `unexpected argument "extra"`},
		{as, []string{"receipts", "frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"MEDIAGATE_SERVER=" + g.base, "MEDIAGATE_API_KEY=mgk_wrong"}, []string{"receipts", "export"}, exitFailed, "401 "},
	})
	out, errOut, code = cli(t, []string{"MEDIAGATE_STORAGE_DIR=" + storage}, "receipts", "verify")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "OK: 2 receipts verified")
}

// cliExport checks receipts export against the API's export file, to a
// file and to stdout, with and without a filter.
func cliExport(t *testing.T, as []string, admin apiClient) {
	t.Helper()
	for _, format := range []string{"csv", "json"} {
		code, want := admin.do(http.MethodGet, "/api/v1/receipts/export?format="+format, "")
		require.Equal(t, http.StatusOK, code)
		path := filepath.Join(t.TempDir(), "receipts."+format)
		_, errOut, exit := cli(t, as, "receipts", "export", "--format", format, "-o", path)
		require.Equal(t, exitOK, exit, errOut)
		require.Contains(t, errOut, "wrote "+path)
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
		out, errOut, exit := cli(t, as, "receipts", "export", "--format", format)
		require.Equal(t, exitOK, exit, errOut)
		require.Equal(t, string(want), out)
	}
	code, want := admin.do(http.MethodGet, "/api/v1/receipts/export?format=csv&tenant=acme", "")
	require.Equal(t, http.StatusOK, code)
	out, _, code := cli(t, as, "receipts", "export", "--format", "csv", "--tenant", "acme")
	require.Equal(t, exitOK, code)
	require.Equal(t, string(want), out)
	require.Equal(t, 2, bytes.Count(want, []byte("\n")), "the header and acme's receipt")
}
