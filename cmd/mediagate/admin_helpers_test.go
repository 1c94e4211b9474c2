package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// The helpers of the admin page's and the recordings CLI's tests.

// makeRecording records room for frames 20 ms ticks of the room (counted
// at c, a participant of some open room) and returns the final manifest.
func makeRecording(ctx context.Context, t *testing.T, admin apiClient, c *rtctest.Client, room string, frames int) recorder.Manifest {
	t.Helper()
	started := admin.manifest(http.MethodPost, "/api/v1/rooms/"+room+"/recording/start", "", http.StatusCreated)
	require.NoError(t, c.WaitFrames(ctx, c.Received()+frames))
	m := admin.manifest(http.MethodPost, "/api/v1/rooms/"+room+"/recording/stop", "", http.StatusOK)
	require.Equal(t, started.ID, m.ID)
	require.Equal(t, recorder.StateComplete, m.State, "%s", m.Error)
	require.NotEmpty(t, m.SHA256)
	return m
}

// makeViewer makes a viewer key of tenant through the admin API.
func makeViewer(t *testing.T, admin apiClient, tenant string) string {
	t.Helper()
	code, body := admin.do(http.MethodPost, "/api/v1/keys", `{"name": "wall", "role": "viewer", "tenant": "`+tenant+`"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var k keyInfo
	require.NoError(t, json.Unmarshal(body, &k))
	require.Equal(t, "viewer", k.Role)
	return k.Key
}

// sha256File returns the hex SHA-256 of the file at path.
func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256Hex(b)
}

// sha256Hex returns the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// cliIn is cli run in directory dir ("": the test's own).
func cliIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running mediagate %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// cliCase is a command line that must fail with code, saying want.
type cliCase struct {
	env  []string
	args []string
	code int
	want string
}

// requireCLIErrors runs each case's command and checks its failure.
func requireCLIErrors(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		_, errOut, code := cli(t, tc.env, tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}
}

// cutProxy is a TCP proxy in front of a gateway that cuts downloads
// deterministically: on every connection it forwards the answer's first
// limit bytes, then forwards nothing more, closes cut, and holds the
// connection until the test calls drop. Requests pass unchanged.
type cutProxy struct {
	ln     net.Listener
	target string
	limit  int64
	cut    chan struct{} // closed when a connection reached the limit
	drops  chan struct{} // closed by drop
	once   sync.Once
	dropMu sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// newCutProxy starts a proxy to target (host:port) on a free loopback port
// and stops it when the test ends.
func newCutProxy(t *testing.T, target string, limit int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target, limit: limit, cut: make(chan struct{}), drops: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.drop()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// base is the proxy's URL.
func (p *cutProxy) base() string { return "http://" + p.ln.Addr().String() }

// drop closes the held connections.
func (p *cutProxy) drop() { p.dropMu.Do(func() { close(p.drops) }) }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(server, client)
			_ = server.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.answer(client, server)
			_ = client.Close()
			_ = server.Close()
		}()
	}
}

// answer forwards server's answer to client up to the limit.
func (p *cutProxy) answer(client, server net.Conn) {
	buf := make([]byte, 4096)
	var sent int64
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if sent+int64(n) >= p.limit {
				_, _ = client.Write(buf[:p.limit-sent])
				p.once.Do(func() { close(p.cut) })
				<-p.drops
				return
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
		}
		if err != nil {
			return
		}
	}
}
