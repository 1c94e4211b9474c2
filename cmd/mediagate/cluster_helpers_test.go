package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
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
	redis    *redistest.Server
	adminKey string
	env      []string
	nodes    map[string]*dialInNode
	dirs     map[string]string
}

// clusterSecret is the join-token secret the test cluster's nodes share.
const clusterSecret = "test-cluster-secret-0123456789abcdef0123456789"

// startTestCluster starts redis-server and one node per name.
func startTestCluster(t *testing.T, names ...string) *testCluster {
	t.Helper()
	key, keyEnv := newAdminKey()
	c := &testCluster{redis: redistest.Start(t), adminKey: key,
		nodes: map[string]*dialInNode{}, dirs: map[string]string{}}
	c.env = []string{keyEnv, "MEDIAGATE_AUTH_TOKEN_SECRET=" + clusterSecret}
	for _, name := range names {
		c.start(t, name)
	}
	return c
}

// start runs node name (again, with its storage, after a kill).
func (c *testCluster) start(t *testing.T, name string, env ...string) *dialInNode {
	t.Helper()
	dir, ok := c.dirs[name]
	if !ok {
		dir = t.TempDir()
		c.dirs[name] = dir
	}
	yaml := fmt.Sprintf("node:\n  id: %s\nlog:\n  level: debug\nredis:\n  addr: %q\nrooms:\n  %s:\n    pin: %q\n    number: %q\n",
		name, c.redis.Addr, demoRoom, demoPIN, dialNumber)
	path := filepath.Join(dir, "mediagate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	g := startGatewayIn(t, dir, []string{"serve", "--config", path}, append(c.env, env...)...)
	m := regexp.MustCompile(`sip_port=(\d+)`).FindStringSubmatch(g.ready)
	require.NotNil(t, m, "ready line without sip_port: %s", g.ready)
	port, err := strconv.Atoi(m[1])
	require.NoError(t, err)
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
func (c *testCluster) joinBot(ctx context.Context, t *testing.T, name string) *rtctest.Client {
	t.Helper()
	base := c.nodes[name].base
	token, err := rtctest.PageToken(ctx, base, demoRoom, "Tone Bot "+name, demoPIN)
	require.NoError(t, err)
	bot, err := rtctest.Join(ctx, t, base, demoRoom, token, rtctest.Options{Tone: toneHz})
	require.NoError(t, err)
	return bot
}

// dialDemo calls node name with the test phone sending phoneToneHz and
// keys its way into room demo.
func (c *testCluster) dialDemo(ctx context.Context, t *testing.T, name string) *siptest.Call {
	t.Helper()
	n := c.nodes[name]
	call, err := siptest.NewPhone(t).Dial(ctx, n.sip,
		siptest.Options{Codec: siptest.PCMU, TelephoneEvent: true, User: dialedURI})
	require.NoError(t, err)
	call.PlayTone(phoneToneHz, 0.3)
	require.NoError(t, call.Press(ctx, dialNumber+"#", siptest.RFC4733))
	n.logs.await(t, 10*time.Second, "lookup("+dialNumber+")")
	require.NoError(t, call.Press(ctx, demoPIN+"#", siptest.RFC4733))
	n.logs.await(t, 10*time.Second, "session: joined", "room="+demoRoom)
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
