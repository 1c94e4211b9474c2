package cluster

import (
	"crypto/tls"
	"time"
)

// Option configures NewMemory and NewRedis; options that only make sense for
// one of them say so and are ignored by the other.
type Option func(*config)

type config struct {
	nodeTTL  time.Duration
	leaseTTL time.Duration
	clock    Clock
	lockout  LockoutPolicy

	password string
	db       int
	tls      *tls.Config
	timeout  time.Duration
	prefix   string
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	// Defaults after options (STYLE 12): zero means "not set".
	if c.nodeTTL <= 0 {
		c.nodeTTL = DefaultNodeTTL
	}
	if c.leaseTTL <= 0 {
		c.leaseTTL = DefaultLeaseTTL
	}
	c.lockout = c.lockout.withDefaults()
	if c.clock == nil {
		c.clock = systemClock{}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRedisTimeout
	}
	if c.prefix == "" {
		c.prefix = "mediagate"
	}
	return c
}

// WithNodeTTL sets how long a heartbeat keeps a node live.
func WithNodeTTL(d time.Duration) Option { return func(c *config) { c.nodeTTL = d } }

// WithLeaseTTL sets how long an unrenewed room lease lasts.
func WithLeaseTTL(d time.Duration) Option { return func(c *config) { c.leaseTTL = d } }

// WithClock replaces the wall clock of the memory implementation (tests).
func WithClock(clk Clock) Option { return func(c *config) { c.clock = clk } }

// WithPassword authenticates to Redis (Redis only).
func WithPassword(p string) Option { return func(c *config) { c.password = p } }

// WithDB selects the Redis logical database (Redis only).
func WithDB(db int) Option { return func(c *config) { c.db = db } }

// WithTLS connects to Redis over TLS (Redis only).
func WithTLS(t *tls.Config) Option { return func(c *config) { c.tls = t } }

// WithTimeout bounds every Redis call, so a hung Redis cannot stall a SIP or
// HTTP handler (Redis only).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithKeyPrefix namespaces Redis keys, so several deployments or test runs can
// share one Redis (Redis only).
func WithKeyPrefix(p string) Option { return func(c *config) { c.prefix = p } }
