package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/api"
)

func TestKeysNew(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run([]string{"keys", "new"}, nil, &out, &errOut))
	m := regexp.MustCompile(`(?s)^API key .*\n  (mgk_\S+)\n.*\n  - "sha256:([0-9a-f]{64})"\n$`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	sum := sha256.Sum256([]byte(m[1]))
	require.Equal(t, hex.EncodeToString(sum[:]), m[2], "the line is the key's hash")

	out.Reset()
	require.Equal(t, exitOK, run([]string{"keys", "new"}, nil, &out, &errOut))
	require.NotContains(t, out.String(), m[1], "every key is new")

	require.Equal(t, exitUsage, run([]string{"keys"}, nil, &out, &errOut))
	require.Contains(t, errOut.String(), "mediagate keys new")
}

// cli runs the mediagate binary with args and env (added to a clean
// environment) and returns its stdout, stderr and exit code.
func cli(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cliIn(t, "", env, args...)
}

// adminGet sends GET path to g's admin API with key and returns the status
// and body.
func adminGet(t *testing.T, g *gateway, key, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.base+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// waitLog waits for a log line of g containing s.
func (n *gateway) waitLog(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-n.logs:
			require.True(t, ok, "mediagate exited before logging %q", s)
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			t.Fatalf("no log line with %q within 30 s", s)
		}
	}
}

// createdKey matches the output of keys create: the key and its ID.
var createdKey = regexp.MustCompile(`(?s)^API key \(shown once.*\n  (mgk_[A-Z2-7]{52})\nID:     ([0-9a-f]{12})\nName:   (.*)\nRole:   (\w+)\nTenant: (\S+)\n$`)

// TestKeysCLI: keys create, ls and revoke against a running node, as an
// operator and a tenant's admin would use them.
func TestKeysCLI(t *testing.T) {
	boot, hash := api.NewAdminKey()
	g := startGateway(t, nil, "MEDIAGATE_AUTH_ADMIN_KEYS="+hash,
		`MEDIAGATE_ROOMS={"board": {"tenant": "acme"}, "annex": {"tenant": "globex"}}`)
	as := func(key string) []string { return []string{"MEDIAGATE_SERVER=" + g.base, "MEDIAGATE_API_KEY=" + key} }

	out, errOut, code := cli(t, as(boot), "keys", "create", "--name", "acme ops", "--role", "admin", "--tenant", "acme")
	require.Equal(t, exitOK, code, errOut)
	m := createdKey.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	acme, acmeID := m[1], m[2]
	require.Equal(t, []string{"acme ops", "admin", "acme"}, m[3:])

	// A tenant's admin makes its tenant's keys, and no others.
	out, errOut, code = cli(t, as(acme), "keys", "create", "--json", "--name", "wall", "--role", "viewer", "--tenant", "acme")
	require.Equal(t, exitOK, code, errOut)
	var viewer keyInfo
	require.NoError(t, json.Unmarshal([]byte(out), &viewer))
	require.Equal(t, keyInfo{Key: viewer.Key, ID: viewer.ID, Name: "wall", Role: "viewer", Tenant: "acme",
		CreatedAt: viewer.CreatedAt, CreatedBy: acmeID}, viewer)
	_, errOut, code = cli(t, as(acme), "keys", "create", "--name", "x", "--role", "admin", "--tenant", "*")
	require.Equal(t, exitFailed, code)
	require.Equal(t, "mediagate keys create: 403 forbidden: only admins of every tenant make keys for every tenant (the key's role or tenant does not allow this)\n", errOut)
	_, errOut, code = cli(t, as(acme), "keys", "create", "--name", "x", "--role", "viewer", "--tenant", "globex")
	require.Equal(t, exitFailed, code)
	require.Contains(t, errOut, "403 forbidden")

	out, errOut, code = cli(t, as(acme), "keys", "ls")
	require.Equal(t, exitOK, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, `^ID\s+NAME\s+ROLE\s+TENANT\s+CREATED\s+BY\s+REVOKED$`, lines[0])
	require.Regexp(t, `^`+acmeID+`\s+"acme ops"\s+admin\s+acme\s+20\d\d-\S+Z\s+[0-9a-f]{12}\s+-$`, lines[1])
	require.Regexp(t, `^`+viewer.ID+`\s+"wall"\s+viewer\s+acme\s+\S+\s+`+acmeID+`\s+-$`, lines[2])
	require.NotContains(t, out, acme)

	// The viewer reads acme's rooms only and changes nothing.
	status, body := adminGet(t, g, viewer.Key, "/api/v1/rooms")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `"id":"board"`)
	require.NotContains(t, body, `"annex"`)

	// Revoked: refused at once. Flags may follow the ID.
	out, errOut, code = cli(t, []string{"MEDIAGATE_API_KEY=" + acme}, "keys", "revoke", viewer.ID, "--server", g.base)
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "revoked key "+viewer.ID+"\n", out)
	status, _ = adminGet(t, g, viewer.Key, "/api/v1/rooms")
	require.Equal(t, http.StatusUnauthorized, status)
	_, errOut, code = cli(t, as(viewer.Key), "keys", "ls")
	require.Equal(t, exitFailed, code)
	require.Equal(t, "mediagate keys ls: 401 api key revoked (check MEDIAGATE_API_KEY)\n", errOut)
	out, _, code = cli(t, as(boot), "keys", "ls")
	require.Equal(t, exitOK, code)
	require.Regexp(t, `(?m)^[0-9a-f]{12}\s+"auth.admin_keys"\s+admin\s+\*\s+-\s+config\s+-$`, out)
	require.Regexp(t, `(?m)^`+viewer.ID+`\s+"wall".*\s20\d\d-\S+Z$`, out, "listed with the time of revocation")

	// Clear errors for what the operator got wrong.
	for _, tc := range []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{[]string{"MEDIAGATE_SERVER=" + g.base}, []string{"keys", "ls"}, exitUsage,
			"mediagate keys ls: MEDIAGATE_API_KEY is not set: export an API key of the node"},
		{as(boot)[1:], []string{"keys", "ls", "--server", "http://127.0.0.1:1"}, exitFailed,
			"mediagate keys ls: cannot reach the admin API at http://127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused"},
		{as(boot), []string{"keys", "ls", "--server", "ftp://x"}, exitUsage, `server "ftp://x" is not an http:// or https:// URL`},
		{as(boot), []string{"keys", "create", "--name", "x"}, exitUsage, "--name, --role and --tenant are required"},
		{as(boot), []string{"keys", "create", "--name", "x", "--role", "root", "--tenant", "a"}, exitFailed,
			"mediagate keys create: 400 bad request: role must be admin or viewer"},
		{as(boot), []string{"keys", "revoke"}, exitUsage, "keys revoke takes one key ID"},
		{as(boot), []string{"keys", "revoke", acme}, exitUsage, "that is a key, not its ID"},
		{as(boot), []string{"keys", "revoke", "0123456789ab"}, exitFailed, "404 no such api key"},
		{as(boot), []string{"keys", "frob"}, exitUsage, `unknown command "frob"`},
		{as(boot), []string{"keys", "ls", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
	} {
		out, errOut, code := cli(t, tc.env, tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, tc.args)
		require.Empty(t, out)
		require.NotContains(t, errOut, acme, "a key is never echoed")
		require.NotContains(t, errOut, boot, "a key is never echoed")
	}
}

// TestAdminKeysAndAuditSurviveRestart: keys made through the API and the
// audit log are on disk (storage.dir) and outlive the node; the audit
// sweep at start removes what expired while the node was down.
func TestAdminKeysAndAuditSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	auditDir := filepath.Join(dir, "data", "audit")
	require.NoError(t, os.MkdirAll(auditDir, 0o700))
	old := `{"id":"1","time":"2020-01-15T00:00:00Z","class":"access","action":"rooms.list","status":200,"client":"192.0.2.0"}` + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(auditDir, "access-2020-01.jsonl"), []byte(old), 0o600))
	boot, hash := api.NewAdminKey()
	env := []string{"MEDIAGATE_AUTH_ADMIN_KEYS=" + hash}

	g := startGatewayIn(t, dir, nil, env...)
	require.Contains(t, g.waitLog(t, "audit sweep"), "files_removed=1")
	require.NoFileExists(t, filepath.Join(auditDir, "access-2020-01.jsonl"))
	out, errOut, code := cli(t, []string{"MEDIAGATE_SERVER=" + g.base, "MEDIAGATE_API_KEY=" + boot},
		"keys", "create", "--name", "ops", "--role", "viewer", "--tenant", "default")
	require.Equal(t, exitOK, code, errOut)
	m := createdKey.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	key, id := m[1], m[2]
	status, _ := adminGet(t, g, key, "/api/v1/rooms")
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, g.wait(t))

	g = startGatewayIn(t, dir, nil, env...)
	status, _ = adminGet(t, g, key, "/api/v1/rooms")
	require.Equal(t, http.StatusOK, status, "the key outlives the node")
	_, errOut, code = cli(t, []string{"MEDIAGATE_SERVER=" + g.base, "MEDIAGATE_API_KEY=" + boot}, "keys", "revoke", id)
	require.Equal(t, exitOK, code, errOut)
	status, _ = adminGet(t, g, key, "/api/v1/rooms")
	require.Equal(t, http.StatusUnauthorized, status)

	// On disk: owner-only files, no key, the entries of both runs.
	info, err := os.Stat(filepath.Join(dir, "data", api.KeyStoreFileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	month := time.Now().UTC().Format("2006-01")
	var actions []string
	for _, name := range []string{"instruction-" + month + ".jsonl", "access-" + month + ".jsonl"} {
		path := filepath.Join(auditDir, name)
		info, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NotContains(t, string(b), key)
		require.NotContains(t, string(b), boot)
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var e api.AuditEntry
			require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
			actions = append(actions, e.Action+"/"+string(e.Class))
		}
	}
	require.ElementsMatch(t, []string{"keys.create/instruction", "keys.revoke/instruction",
		"rooms.list/access", "rooms.list/access", "auth.failed/access"}, actions)

	// The log reads back through the API, newest first.
	status, body := adminGet(t, g, boot, "/api/v1/audit?class=instruction")
	require.Equal(t, http.StatusOK, status, body)
	var page api.AuditPage
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	require.Len(t, page.Entries, 2)
	require.Equal(t, "keys.revoke", page.Entries[0].Action)
	require.Equal(t, id, page.Entries[0].Target)
}
