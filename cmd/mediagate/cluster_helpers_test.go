package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/internal/redistest"
	"github.com/mediagate/mediagate/rtc/rtctest"
	"github.com/mediagate/mediagate/sip/siptest"
)

// testCluster is mediagate nodes sharing one redis-server (TESTING.md,
// "Redis"), each its own process with its own ports and storage, and all
// with room demo (PIN demoPIN, conference number dialNumber).
type testCluster struct {
	bin      string // the mediagate binary the nodes run
	redis    *redistest.Server
	adminKey string
	env      []string
	nodes    map[string]*dialInNode
	dirs     map[string]string
}

// clusterSecret is the join-token secret the test cluster's nodes share.
const clusterSecret = "test-cluster-secret-0123456789abcdef0123456789"

// startTestCluster starts redis-server and one node per name, each
// running bin: the tests' binary (built with -race), or the benchmarks'
// (benchBinary).
func startTestCluster(tb testing.TB, bin string, names ...string) *testCluster {
	tb.Helper()
	key, keyEnv := newAdminKey()
	c := &testCluster{bin: bin, redis: redistest.Start(tb), adminKey: key,
		nodes: map[string]*dialInNode{}, dirs: map[string]string{}}
	c.env = []string{keyEnv, "MEDIAGATE_AUTH_TOKEN_SECRET=" + clusterSecret}
	for _, name := range names {
		c.start(tb, name)
	}
	return c
}

// start runs node name (again, with its storage, after a kill).
func (c *testCluster) start(tb testing.TB, name string, env ...string) *dialInNode {
	tb.Helper()
	dir, ok := c.dirs[name]
	if !ok {
		dir = tb.TempDir()
		c.dirs[name] = dir
	}
	yaml := fmt.Sprintf("node:\n  id: %s\nlog:\n  level: debug\nredis:\n  addr: %q\nrooms:\n  %s:\n    pin: %q\n    number: %q\n",
		name, c.redis.Addr, demoRoom, demoPIN, dialNumber)
	path := filepath.Join(dir, "mediagate.yaml")
	require.NoError(tb, os.WriteFile(path, []byte(yaml), 0o644))
	cmd := exec.Command(c.bin, "serve", "--config", path)
	cmd.Dir = dir
	g := startCommand(tb, cmd, append(c.env, env...)...)
	port, err := strconv.Atoi(sipPort(tb, g))
	require.NoError(tb, err)
	n := &dialInNode{gateway: g, logs: watchLogs(g),
		sip: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))}
	c.nodes[name] = n
	return n
}

// admin is an admin API client of node name.
func (c *testCluster) admin(t *testing.T, name string) apiClient {
	return apiClient{t: t, base: c.nodes[name].base, key: c.adminKey}
}

// joinBot joins room demo through node name as a pion participant that
// sends toneHz, following redirects to the room's node.
func (c *testCluster) joinBot(ctx context.Context, tb testing.TB, name string) *rtctest.Client {
	tb.Helper()
	base := c.nodes[name].base
	token, err := rtctest.PageToken(ctx, base, demoRoom, "Tone Bot "+name, demoPIN)
	require.NoError(tb, err)
	bot, err := rtctest.Join(ctx, tb, base, demoRoom, token, rtctest.Options{Tone: toneHz})
	require.NoError(tb, err)
	return bot
}

// dialDemo calls node name with the test phone sending phoneToneHz and
// keys its way into room demo. It waits for the node's log lines of this
// call only, so a node can be dialled again.
func (c *testCluster) dialDemo(ctx context.Context, tb testing.TB, name string) *siptest.Call {
	tb.Helper()
	n := c.nodes[name]
	from := n.logs.mark()
	call, err := siptest.NewPhone(tb).Dial(ctx, n.sip,
		siptest.Options{Codec: siptest.PCMU, TelephoneEvent: true, User: dialedURI})
	require.NoError(tb, err)
	call.PlayTone(phoneToneHz, 0.3)
	require.NoError(tb, call.Press(ctx, dialNumber+"#", siptest.RFC4733))
	n.logs.awaitAfter(tb, from, 10*time.Second, "lookup("+dialNumber+")")
	require.NoError(tb, call.Press(ctx, demoPIN+"#", siptest.RFC4733))
	n.logs.awaitAfter(tb, from, 10*time.Second, "session: joined", "room="+demoRoom)
	return call
}

// noRedirect is an HTTP client that shows redirects instead of following
// them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// token issues a join token for room id (publish and listen) through the
// admin API.
func (c apiClient) token(id string) string {
	c.t.Helper()
	code, body := c.do(http.MethodPost, "/api/v1/rooms/"+id+"/tokens",
		`{"identity": "tester", "name": "Tester", "grants": {"publish": true, "listen": true}}`)
	require.Equal(c.t, http.StatusCreated, code, "%s", body)
	var tok struct {
		Token string `json:"token"`
	}
	require.NoError(c.t, json.Unmarshal(body, &tok))
	return tok.Token
}
