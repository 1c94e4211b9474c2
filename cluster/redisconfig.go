package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig is how to reach the Redis that joins nodes into a cluster: a
// standalone server at Addr, or the master that Sentinels watch (failover
// without a config change). Exactly one of Addr and SentinelMaster is set.
type RedisConfig struct {
	// Addr is host:port of a standalone Redis.
	Addr string
	// Username and Password log in (Redis 6 ACLs); an empty Username with a
	// Password is the legacy requirepass login as "default". Password is a
	// secret: never logged.
	Username, Password string
	// DB is the logical database (0..15 on a default Redis).
	DB int
	// TLS, when not nil, connects over TLS with this configuration (to the
	// Sentinels too); nil means plain TCP.
	TLS *tls.Config
	// SentinelMaster, when not empty, is the master name the Sentinels
	// know; the client asks SentinelAddrs where the master is and follows
	// failovers.
	SentinelMaster string
	// SentinelAddrs are host:port of the Sentinels.
	SentinelAddrs []string
	// SentinelPassword logs in to the Sentinels (requirepass of
	// sentinel.conf); a secret, never logged.
	SentinelPassword string
	// Timeout bounds every call (dial, read, write and the whole
	// operation); zero means WithTimeout's value, else DefaultRedisTimeout.
	Timeout time.Duration
	// Prefix namespaces the keys; empty means WithKeyPrefix's value, else
	// "mediagate".
	Prefix string
}

// Errors of OpenRedis for a RedisConfig that names no server, or two.
var (
	errNoRedis         = errors.New("cluster: redis config: set Addr or SentinelMaster")
	errAddrAndSentinel = errors.New("cluster: redis config: Addr and SentinelMaster are mutually exclusive")
	errSentinelAddrs   = errors.New("cluster: redis config: SentinelMaster and SentinelAddrs need each other")
)

// OpenRedis returns cluster state kept in the Redis c names, standalone or
// behind Sentinels. Fields of c that are set win over the options
// (WithPassword, WithDB, WithTLS, WithTimeout, WithKeyPrefix); the other
// options (TTLs, lockout policy) apply as with NewRedis. Like NewRedis it
// does not dial: use Ping for readiness. It fails only for a c that names
// no server, two kinds of server, or a Sentinel setup without master or
// Sentinels.
func OpenRedis(c RedisConfig, opts ...Option) (*Redis, error) {
	switch {
	case c.Addr == "" && c.SentinelMaster == "" && len(c.SentinelAddrs) == 0:
		return nil, errNoRedis
	case c.Addr != "" && (c.SentinelMaster != "" || len(c.SentinelAddrs) > 0):
		return nil, errAddrAndSentinel
	case c.Addr == "" && (c.SentinelMaster == "" || len(c.SentinelAddrs) == 0):
		return nil, errSentinelAddrs
	case c.DB < 0:
		return nil, fmt.Errorf("cluster: redis config: DB %d is negative", c.DB)
	}
	return newRedis(c, newConfig(opts)), nil
}

// newRedis builds the client for c, filling c's unset fields from cfg and
// cfg's from c, so the rest of the package reads only cfg.
func newRedis(c RedisConfig, cfg config) *Redis {
	if c.Password == "" {
		c.Password = cfg.password
	}
	if c.DB == 0 {
		c.DB = cfg.db
	}
	if c.TLS == nil {
		c.TLS = cfg.tls
	}
	if c.Timeout > 0 {
		cfg.timeout = c.Timeout
	}
	if c.Prefix != "" {
		cfg.prefix = c.Prefix
	}
	r := &Redis{cfg: cfg, ops: newOpMeters()}
	if c.SentinelMaster != "" {
		r.c = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       c.SentinelMaster,
			SentinelAddrs:    c.SentinelAddrs,
			SentinelPassword: c.SentinelPassword,
			Username:         c.Username,
			Password:         c.Password,
			DB:               c.DB,
			TLSConfig:        c.TLS,
			DialTimeout:      cfg.timeout,
			ReadTimeout:      cfg.timeout,
			WriteTimeout:     cfg.timeout,
		})
	} else {
		r.c = redis.NewClient(&redis.Options{
			Addr:         c.Addr,
			Username:     c.Username,
			Password:     c.Password,
			DB:           c.DB,
			TLSConfig:    c.TLS,
			DialTimeout:  cfg.timeout,
			ReadTimeout:  cfg.timeout,
			WriteTimeout: cfg.timeout,
		})
	}
	r.c.AddHook(r.ops)
	return r
}
