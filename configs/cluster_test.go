package configs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestClusterFromFile: a three-node Sentinel setup as an operator writes it,
// with the passwords from the environment.
func TestClusterFromFile(t *testing.T) {
	c, err := Parse("m.yaml", []byte(strings.Join([]string{
		"redis:",
		"  username: gw",
		"  db: 1",
		"  timeout: 250ms",
		"  tls: {enabled: true, server_name: redis.internal}",
		"  sentinel:",
		"    master: gwmaster",
		"    addrs: [10.0.0.5:26379, 10.0.0.6:26379, 10.0.0.7:26379]",
		"cluster:",
		"  lease_ttl: 3s",
		"  public_url: https://gw1.example.org",
		"  sip_address: 203.0.113.7:5060",
		"auth:",
		"  token_secret: " + testSecret,
	}, "\n")), []string{"MEDIAGATE_REDIS_PASSWORD=s3cret-pw", "MEDIAGATE_REDIS_SENTINEL_PASSWORD=sk-secret"})
	require.NoError(t, err)
	require.Equal(t, Redis{Username: "gw", Password: "s3cret-pw", DB: 1, Timeout: 250 * time.Millisecond,
		TLS: RedisTLS{Enabled: true, ServerName: "redis.internal"},
		Sentinel: RedisSentinel{Master: "gwmaster", Addrs: []string{"10.0.0.5:26379", "10.0.0.6:26379", "10.0.0.7:26379"},
			Password: "sk-secret"}}, c.Redis)
	require.True(t, c.Redis.Enabled())
	require.Equal(t, Cluster{LeaseTTL: 3 * time.Second, NodeTTL: 5 * time.Second,
		PublicURL: "https://gw1.example.org", SIPAddress: "203.0.113.7:5060"}, c.Cluster)
	require.False(t, Default().Redis.Enabled(), "one node needs no Redis (decision 9)")
}

// TestRedisSecretsRedacted: fmt and Redacted never show the Redis and
// Sentinel passwords.
func TestRedisSecretsRedacted(t *testing.T) {
	c := Default()
	c.Redis.Password, c.Redis.Sentinel.Password = "s3cret-pw", "sk-secret"
	r := c.Redacted()
	require.Equal(t, "<redacted>", r.Redis.Password)
	require.Equal(t, "<redacted>", r.Redis.Sentinel.Password)
	require.Equal(t, "s3cret-pw", c.Redis.Password, "the original is untouched")
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", c.Redis)} {
		require.NotContains(t, s, "s3cret-pw")
		require.NotContains(t, s, "sk-secret")
		require.Contains(t, s, "<redacted>")
	}
	require.Empty(t, Default().Redacted().Redis.Password, "an unset secret stays empty")
}

// TestClusterExample: configs/cluster.example.yaml loads with the per-node
// settings from the environment, as its header says, and is refused
// without the shared token secret.
func TestClusterExample(t *testing.T) {
	env := []string{
		"MEDIAGATE_NODE_ID=gw1",
		"MEDIAGATE_CLUSTER_PUBLIC_URL=https://gw1.example.org",
		"MEDIAGATE_AUTH_TOKEN_SECRET=" + strings.Repeat("s", 48),
		"MEDIAGATE_REDIS_PASSWORD=redis-secret",
	}
	c, err := Load("cluster.example.yaml", env)
	require.NoError(t, err)
	require.True(t, c.Redis.Enabled())
	require.True(t, c.Redis.TLS.Enabled)
	require.Equal(t, "redis-secret", c.Redis.Password)
	require.Equal(t, "gw1", c.Node.ID)
	require.Equal(t, "https://gw1.example.org", c.Cluster.PublicURL)
	require.False(t, c.Cluster.DegradedLocal)

	_, err = Load("cluster.example.yaml", env[:2])
	require.ErrorContains(t, err, "auth.token_secret")
}
