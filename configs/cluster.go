package configs

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Redis is the Redis that joins nodes into a cluster (package cluster's
// RedisConfig): a standalone server at Addr, or the master Sentinels
// watch. With neither, the node is alone and keeps its state in memory
// (decision 9 of the design).
type Redis struct {
	// Addr is host:port of a standalone Redis; empty means no standalone
	// Redis (one node, or Sentinel).
	Addr string `yaml:"addr"`
	// Username is the Redis 6 ACL user; empty means "default".
	Username string `yaml:"username"`
	// Password logs in to Redis (the ACL user's, or requirepass). It is a
	// secret: never logged, blanked by Redacted; set it through the
	// environment.
	Password string `yaml:"password"`
	// DB is the logical database, 0..15.
	DB int `yaml:"db"`
	// Timeout bounds every Redis call, so a hung Redis cannot stall a SIP
	// or HTTP handler.
	Timeout time.Duration `yaml:"timeout"`
	// TLS is how the connection to Redis (and the Sentinels) is encrypted.
	TLS RedisTLS `yaml:"tls"`
	// Sentinel finds the master through Redis Sentinel, following
	// failovers.
	Sentinel RedisSentinel `yaml:"sentinel"`
}

// RedisTLS encrypts the connection to Redis.
type RedisTLS struct {
	// Enabled connects over TLS, checking Redis's certificate.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of certificate authorities Redis's certificate
	// may be signed by besides the system roots; empty means the system
	// roots only.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name Redis's certificate must carry; empty means
	// the host of redis.addr (or of the master the Sentinels name).
	ServerName string `yaml:"server_name"`
}

// RedisSentinel finds the Redis master through Sentinels.
type RedisSentinel struct {
	// Master is the master's name in the Sentinels' configuration; empty
	// means no Sentinel.
	Master string `yaml:"master"`
	// Addrs are host:port of the Sentinels.
	Addrs []string `yaml:"addrs"`
	// Password logs in to the Sentinels (their requirepass). A secret:
	// never logged, blanked by Redacted.
	Password string `yaml:"password"`
}

// Enabled reports whether the node joins a cluster through Redis, either
// standalone or behind Sentinels.
func (r Redis) Enabled() bool { return r.Addr != "" || r.Sentinel.Master != "" }

// String keeps the passwords out of fmt's %v and %+v.
func (r Redis) String() string {
	return fmt.Sprintf("{addr:%q username:%q password:%q db:%d timeout:%s tls:%+v sentinel:{master:%q addrs:%q password:%q}}",
		r.Addr, r.Username, redact(r.Password), r.DB, r.Timeout, r.TLS,
		r.Sentinel.Master, r.Sentinel.Addrs, redact(r.Sentinel.Password))
}

// redact returns redactedValue for a set secret and "" for an unset one.
func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return redactedValue
}

// Cluster is how this node behaves among several and how the others, and
// clients they redirect, reach it (design decisions 4 and 5).
type Cluster struct {
	// DegradedLocal lets the node open new rooms on its own while Redis
	// cannot be reached; off, such rooms are refused with 503, so no
	// room is ever open on two nodes at once.
	DegradedLocal bool `yaml:"degraded_local"`
	// LeaseTTL is how long a room lease lasts unrenewed: how soon a dead
	// owner's rooms can move.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// NodeTTL is how long a heartbeat keeps this node in the node list.
	NodeTTL time.Duration `yaml:"node_ttl"`
	// PublicURL is this node's public HTTP base URL ("https://gw1.example.org"),
	// used in 307 redirects and node-to-node links; empty means derived
	// from http.listen by the binary.
	PublicURL string `yaml:"public_url"`
	// SIPAddress is the public SIP host:port this node advertises in the
	// node list; empty means derived.
	SIPAddress string `yaml:"sip_address"`
}

// Limits of the redis and cluster sections, enforced by Validate.
const (
	// maxRedisDB is the highest logical database of a default Redis
	// (databases 16).
	maxRedisDB = 15
	// minRedisTimeout and maxRedisTimeout bound redis.timeout: below
	// 10ms a loaded Redis on another host times out all the time, above
	// 30s a hung Redis holds calls for too long.
	minRedisTimeout, maxRedisTimeout = 10 * time.Millisecond, 30 * time.Second
	// minClusterTTL and maxClusterTTL bound cluster.lease_ttl and
	// cluster.node_ttl: nodes renew every second, and a dead node's rooms
	// should move within a minute.
	minClusterTTL, maxClusterTTL = time.Second, time.Minute
)

// redis checks the redis section: one kind of server, its addresses, the
// database, the timeout, the TLS settings, and a shared join token secret
// when nodes form a cluster. Messages never show a password.
func (v *validator) redis(r Redis, auth Auth) {
	s := r.Sentinel
	if r.Addr != "" {
		v.hostPort("redis.addr", r.Addr, 1)
	}
	for i, a := range s.Addrs {
		v.hostPort(fmt.Sprintf("redis.sentinel.addrs[%d]", i), a, 1)
	}
	switch {
	case r.Addr != "" && (s.Master != "" || len(s.Addrs) > 0):
		v.fail("redis.addr", "set with redis.sentinel (one or the other)")
	case s.Master != "" && len(s.Addrs) == 0:
		v.fail("redis.sentinel.master", "needs redis.sentinel.addrs")
	case s.Master == "" && len(s.Addrs) > 0:
		v.fail("redis.sentinel.addrs", "needs redis.sentinel.master")
	}
	if s.Password != "" && s.Master == "" {
		v.fail("redis.sentinel.password", "is only used with redis.sentinel.master")
	}
	v.intRange("redis.db", r.DB, 0, maxRedisDB)
	if d := r.Timeout; d < minRedisTimeout || d > maxRedisTimeout {
		v.fail("redis.timeout", "%s out of range 10ms..30s", d)
	}
	if !r.TLS.Enabled {
		if r.TLS.CAFile != "" {
			v.fail("redis.tls.ca_file", "is only used with redis.tls.enabled: true")
		}
		if r.TLS.ServerName != "" {
			v.fail("redis.tls.server_name", "is only used with redis.tls.enabled: true")
		}
	}
	if f := r.TLS.CAFile; f != "" {
		if st, err := os.Stat(f); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			v.fail("redis.tls.ca_file", "%q: %v", f, err)
		} else if st.IsDir() {
			v.fail("redis.tls.ca_file", "%q is a directory", f)
		}
	}
	if r.Enabled() && auth.TokenSecret == "" {
		// Blame the key that was set: the secret has no line to point at.
		key := "redis.addr"
		if r.Addr == "" {
			key = "redis.sentinel.master"
		}
		v.fail(key, "needs auth.token_secret: the nodes of a cluster must check each other's join tokens")
	}
}

// cluster checks the cluster section.
func (v *validator) cluster(c Cluster) {
	if d := c.LeaseTTL; d < minClusterTTL || d > maxClusterTTL {
		v.fail("cluster.lease_ttl", "%s out of range 1s..60s", d)
	}
	if d := c.NodeTTL; d < minClusterTTL || d > maxClusterTTL {
		v.fail("cluster.node_ttl", "%s out of range 1s..60s", d)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
			v.fail("cluster.public_url", "%q must be an absolute http:// or https:// URL without path, query or fragment, e.g. https://gw1.example.org", c.PublicURL)
		}
	}
	if c.SIPAddress != "" {
		v.hostPort("cluster.sip_address", c.SIPAddress, 1)
	}
}
