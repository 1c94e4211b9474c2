package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mediagate/mediagate/internal/testcert"
	"github.com/stretchr/testify/require"
)

// TestOpenRedisRefusesIncompleteConfigs: a config must name one server.
func TestOpenRedisRefusesIncompleteConfigs(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    RedisConfig
		want error
	}{
		{"nothing", RedisConfig{}, errNoRedis},
		{"both", RedisConfig{Addr: "127.0.0.1:6379", SentinelMaster: "m", SentinelAddrs: []string{"127.0.0.1:26379"}}, errAddrAndSentinel},
		{"addr and sentinels", RedisConfig{Addr: "127.0.0.1:6379", SentinelAddrs: []string{"127.0.0.1:26379"}}, errAddrAndSentinel},
		{"master without sentinels", RedisConfig{SentinelMaster: "m"}, errSentinelAddrs},
		{"sentinels without master", RedisConfig{SentinelAddrs: []string{"127.0.0.1:26379"}}, errSentinelAddrs},
	} {
		_, err := OpenRedis(tt.c)
		require.ErrorIs(t, err, tt.want, tt.name)
	}
	_, err := OpenRedis(RedisConfig{Addr: "127.0.0.1:6379", DB: -1})
	require.EqualError(t, err, "cluster: redis config: DB -1 is negative")
}

// TestOpenRedisACLUserDBPrefixTimeout: a Redis 6 ACL user logs in, a wrong
// password is ErrBackend, and DB and Prefix keep deployments apart.
func TestOpenRedisACLUserDBPrefixTimeout(t *testing.T) {
	addr, _ := startRedisProcess(t, "--user", "gw", "on", ">gw-pass", "~*", "&*", "+@all")
	ctx := context.Background()
	open := func(c RedisConfig) *Redis {
		t.Helper()
		r, err := OpenRedis(c, WithLeaseTTL(time.Minute))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, r.Close()) })
		return r
	}
	wrong := open(RedisConfig{Addr: addr, Username: "gw", Password: "nope"})
	require.ErrorIs(t, wrong.Ping(ctx), ErrBackend)

	a := open(RedisConfig{Addr: addr, Username: "gw", Password: "gw-pass", DB: 2, Prefix: "east", Timeout: time.Second})
	require.Equal(t, time.Second, a.cfg.timeout)
	require.Equal(t, "east", a.cfg.prefix)
	l, err := a.Acquire(ctx, "room", "a")
	require.NoError(t, err)
	for _, other := range []*Redis{
		open(RedisConfig{Addr: addr, Username: "gw", Password: "gw-pass", DB: 2}),                 // prefix "mediagate"
		open(RedisConfig{Addr: addr, Username: "gw", Password: "gw-pass", Prefix: "east"}),        // DB 0
		open(RedisConfig{Addr: addr, Username: "gw", Password: "gw-pass", DB: 3, Prefix: "east"}), // DB 3
	} {
		_, err := other.Owner(ctx, "room")
		require.ErrorIs(t, err, ErrNoOwner)
	}
	same := open(RedisConfig{Addr: addr, Username: "gw", Password: "gw-pass", DB: 2, Prefix: "east"})
	own, err := same.Owner(ctx, "room")
	require.NoError(t, err)
	require.Equal(t, l.Epoch, own.Epoch)

	// Options fill what the config leaves unset.
	viaOpts, err := OpenRedis(RedisConfig{Addr: addr, Username: "gw"}, WithPassword("gw-pass"), WithDB(2), WithKeyPrefix("east"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, viaOpts.Close()) })
	own, err = viaOpts.Owner(ctx, "room")
	require.NoError(t, err)
	require.Equal(t, l.Epoch, own.Epoch)
}

// TestOpenRedisTLS talks to a real redis-server over TLS (Debian's is built
// with TLS: --tls-port), checking the server against a test CA; plain TCP
// and an unknown CA are refused with ErrBackend.
func TestOpenRedisTLS(t *testing.T) {
	certFile, keyFile := testcert.WriteSelfSigned(t)
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	pem, err := os.ReadFile(certFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pem))
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}

	r, err := OpenRedis(RedisConfig{Addr: addr, TLS: tlsConf, Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	runRedisServer(t, []string{"--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", certFile,
		"--tls-auth-clients", "no"}, r)

	ctx := context.Background()
	l, err := r.Acquire(ctx, "room", "a")
	require.NoError(t, err)
	own, err := r.Owner(ctx, "room")
	require.NoError(t, err)
	require.Equal(t, l.Epoch, own.Epoch)

	plain, err := OpenRedis(RedisConfig{Addr: addr, Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, plain.Close()) })
	require.ErrorIs(t, plain.Ping(ctx), ErrBackend, "plain TCP to the TLS port")

	stranger, err := OpenRedis(RedisConfig{Addr: addr, TLS: &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12},
		Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, stranger.Close()) })
	require.ErrorIs(t, stranger.Ping(ctx), ErrBackend, "a server certificate no root vouches for")
}

// TestOpenRedisSentinel finds the master through a real Sentinel (Debian's
// redis-server in --sentinel mode, the same binary redis-sentinel links
// to), logging in to the Sentinel with its own password.
func TestOpenRedisSentinel(t *testing.T) {
	master := startRedis(t)
	_, masterPort, err := net.SplitHostPort(master)
	require.NoError(t, err)
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf") // Sentinel rewrites it
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil,
		"sentinel monitor gwmaster 127.0.0.1 %s 1\nsentinel down-after-milliseconds gwmaster 60000\nrequirepass sentinel-pass\n",
		masterPort), 0o600))

	ctx := context.Background()
	sentinelAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r, err := OpenRedis(RedisConfig{SentinelMaster: "gwmaster", SentinelAddrs: []string{sentinelAddr},
		SentinelPassword: "sentinel-pass", Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	runRedisServer(t, []string{conf, "--sentinel", "--port", strconv.Itoa(port)}, r)

	l, err := r.Acquire(ctx, "room", "a")
	require.NoError(t, err)
	direct := NewRedis(master)
	t.Cleanup(func() { require.NoError(t, direct.Close()) })
	own, err := direct.Owner(ctx, "room")
	require.NoError(t, err, "the lease is on the master the Sentinel named")
	require.Equal(t, l.Epoch, own.Epoch)

	wrong, err := OpenRedis(RedisConfig{SentinelMaster: "gwmaster", SentinelAddrs: []string{sentinelAddr},
		SentinelPassword: "nope", Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, wrong.Close()) })
	require.ErrorIs(t, wrong.Ping(ctx), ErrBackend)
}
