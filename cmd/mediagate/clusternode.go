package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
)

// heartbeats advertises this node in the cluster's node registry every
// third of the node TTL: how to reach it (public HTTP URL for redirects
// and links, SIP address) and how loaded it is (calls, rooms, CPU).
type heartbeats struct {
	log   *slog.Logger
	reg   cluster.Registry
	every time.Duration
	info  func() cluster.NodeInfo

	cpu cpuMeter
}

// run beats until ctx ends; the first beat goes out at once, so the node
// is listed (and redirects to it work) as soon as it serves.
func (h *heartbeats) run(ctx context.Context) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	failing := false
	for {
		info := h.info()
		info.CPU = h.cpu.sample()
		bctx, cancel := context.WithTimeout(ctx, opTimeout)
		err := h.reg.Heartbeat(bctx, info)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			h.log.Warn("cluster heartbeat failed", "err", err)
			failing = true
		case err == nil && failing:
			h.log.Info("cluster heartbeat works again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cpuMeter measures the process's CPU use between samples, as a share of
// the machine (1 = every core busy).
type cpuMeter struct {
	mu       sync.Mutex
	lastCPU  time.Duration
	lastWall time.Time
}

func (m *cpuMeter) sample() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	used := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var share float64
	if !m.lastWall.IsZero() {
		if wall := now.Sub(m.lastWall); wall > 0 {
			share = float64(used-m.lastCPU) / float64(wall) / float64(runtime.NumCPU())
		}
	}
	m.lastCPU, m.lastWall = used, now
	return share
}

// publicURL is the base URL other nodes and redirected browsers use to
// reach this node: cluster.public_url when set, else http:// (https://
// when the listener serves HTTPS) with the address this node uses towards
// the cluster state (the interface its peers share) and the port it
// listens on.
func publicURL(configured string, listen net.Addr, peer string, https bool) string {
	if configured != "" {
		return configured
	}
	if https {
		return "https://" + publicHostPort(listen, peer)
	}
	return "http://" + publicHostPort(listen, peer)
}

// publicHostPort turns a listener address into host:port reachable from
// peer: an unspecified host becomes the local address of a route to peer
// (127.0.0.1 when peer is local or unknown).
func publicHostPort(listen net.Addr, peer string) string {
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return listen.String()
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		host = localAddrTowards(peer)
	}
	return net.JoinHostPort(host, port)
}

// localAddrTowards returns this host's source address for packets to
// peer (a UDP "connect" sends nothing), or 127.0.0.1.
func localAddrTowards(peer string) string {
	if peer == "" {
		return "127.0.0.1"
	}
	c, err := net.Dial("udp", peer)
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return a.IP.String()
	}
	return "127.0.0.1"
}

// sipHostPort is the SIP address advertised in the registry.
func sipHostPort(configured string, port int, peer string) string {
	if configured != "" {
		return configured
	}
	return net.JoinHostPort(localAddrTowards(peer), strconv.Itoa(port))
}

// clusterState is the shared state a node works with.
type clusterState interface {
	leaseState
	cluster.Fence
	cluster.RecordingsIndex
	cluster.KeyRecords
	cluster.Lockouts
	cluster.Bans // the SIP abuse guard's, shared (dialin.go)
}

// clustered reports whether the node shares its state through Redis with
// other nodes (false: one node with in-memory state, decision 9).
func (n *node) clustered() bool {
	_, ok := n.state.(*cluster.Redis)
	return ok
}

// lockoutPolicy is package cluster's form of auth.pin_lockout.
func lockoutPolicy(p configs.PINLockout) cluster.LockoutPolicy {
	return cluster.LockoutPolicy{Failures: p.Failures, Window: p.Window, Base: p.Lockout, Max: p.LockoutMax}
}

// roomLockoutPolicy is package cluster's form of auth.pin_lockout's room
// limit: room_failures in the same window, with the same lockouts.
func roomLockoutPolicy(p configs.PINLockout) cluster.LockoutPolicy {
	l := lockoutPolicy(p)
	l.Failures = p.RoomFailures
	return l
}

// joinCluster opens the cluster state (memory without redis.addr and
// sentinel, decision 9) and this node's ownership of rooms.
func (n *node) joinCluster(cfg configs.Config, log *slog.Logger, httpAddr net.Addr) error {
	log = log.With("component", "cluster")
	ttls := []cluster.Option{cluster.WithLeaseTTL(cfg.Cluster.LeaseTTL), cluster.WithNodeTTL(cfg.Cluster.NodeTTL),
		cluster.WithLockoutPolicy(lockoutPolicy(cfg.Auth.PINLockout))}
	peer := cfg.Redis.Addr
	var pins cluster.LockoutStore
	if !cfg.Redis.Enabled() {
		m := cluster.NewMemory(ttls...)
		n.state, n.closeState, pins = m, func() error { return nil }, m
	} else {
		rc, err := redisConfig(cfg.Redis)
		if err != nil {
			return err
		}
		r, err := cluster.OpenRedis(rc, ttls...)
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		n.state, n.closeState, pins = r, r.Close, r
		if peer == "" && len(cfg.Redis.Sentinel.Addrs) > 0 {
			peer = cfg.Redis.Sentinel.Addrs[0]
		}
	}
	if p := cfg.Auth.PINLockout; p.RoomFailures > 0 {
		n.roomPINs = cluster.NewLockouts(pins, "room", roomLockoutPolicy(p))
	}
	n.publicURL = publicURL(cfg.Cluster.PublicURL, httpAddr, peer, cfg.HTTP.TLS())
	n.sipAddr = func() string {
		if cfg.Cluster.SIPAddress == "" && cfg.SIP.ExternalAddress != "" {
			return net.JoinHostPort(cfg.SIP.ExternalAddress, strconv.Itoa(n.sip.Port()))
		}
		return sipHostPort(cfg.Cluster.SIPAddress, n.sip.Port(), peer)
	}
	n.own = newOwnership(log, cluster.NodeID(cfg.Node.ID), n.state, cfg.Cluster.LeaseTTL, cfg.Cluster.DegradedLocal)
	if n.clustered() {
		log.Info("cluster", "redis", cfg.Redis.Addr, "sentinel", cfg.Redis.Sentinel.Master,
			"public_url", n.publicURL, "degraded_local", cfg.Cluster.DegradedLocal)
	}
	return nil
}

// redisConfig turns the redis section into the cluster's connection
// settings, reading the CA file.
func redisConfig(c configs.Redis) (cluster.RedisConfig, error) {
	rc := cluster.RedisConfig{
		Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB, Timeout: c.Timeout,
		SentinelMaster: c.Sentinel.Master, SentinelAddrs: c.Sentinel.Addrs, SentinelPassword: c.Sentinel.Password,
	}
	if c.TLS.Enabled {
		t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLS.ServerName}
		if c.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.TLS.CAFile)
			if err != nil {
				return rc, fmt.Errorf("redis.tls.ca_file: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return rc, fmt.Errorf("redis.tls.ca_file %s: no PEM certificate in it", c.TLS.CAFile)
			}
			t.RootCAs = pool
		}
		rc.TLS = t
	}
	return rc, nil
}

// keySyncEvery is how often a node merges the cluster's API keys with its
// own: a key made elsewhere works here, and a revocation applies here,
// within it.
const keySyncEvery = 2 * time.Second

// startCluster starts the lease renewals, the heartbeats, the recordings
// index and, in a cluster, the API key sync.
func (n *node) startCluster(cfg configs.Config) {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopBeats = cancel
	hb := &heartbeats{
		log: n.log.With("component", "cluster"), reg: n.state, every: cluster.DefaultNodeTTL / 3,
		info: func() cluster.NodeInfo {
			return cluster.NodeInfo{
				ID:      cluster.NodeID(cfg.Node.ID),
				HTTPURL: n.publicURL,
				SIPAddr: n.sipAddr(),
				Calls:   n.sip.Calls(),
				Rooms:   n.own.Rooms(),
			}
		},
	}
	n.beatsDone.Add(3)
	go func() { defer n.beatsDone.Done(); hb.run(ctx) }()
	go func() { defer n.beatsDone.Done(); n.own.run(ctx) }()
	go func() { defer n.beatsDone.Done(); n.index.run(ctx) }()
	if n.clustered() {
		// API keys made on any node work on every node; a revocation
		// reaches them all within keySyncEvery.
		n.beatsDone.Add(1)
		go func() {
			defer n.beatsDone.Done()
			_ = n.keys.RunSync(ctx, n.state, keySyncEvery, n.log.With("component", "keys"))
		}()
	}
}

// leaveCluster stops the heartbeats and renewals, releases what leases
// are left and closes the cluster state.
func (n *node) leaveCluster(ctx context.Context) error {
	if n.stopBeats != nil {
		n.stopBeats()
		n.beatsDone.Wait()
	}
	if n.own != nil {
		n.own.releaseAll(ctx)
	}
	if n.closeState != nil {
		return n.closeState()
	}
	return nil
}

// fence checks that this node still hosts room id under epoch (the
// recorder's and the egress's fence, decision 4).
func (n *node) fence(ctx context.Context, id room.ID, epoch uint64) error {
	return n.state.CheckEpoch(ctx, cluster.RoomID(id), epoch)
}

// isStale tells the fences' "no longer yours" from "cannot tell now".
func isStale(err error) bool { return errors.Is(err, cluster.ErrStaleEpoch) }

// epochOf is the epoch under which this node hosts room id, 0 when it
// holds no lease for it.
func (n *node) epochOf(id room.ID) uint64 {
	e, _ := n.own.Epoch(id)
	return e
}

// LocateRoom implements api.RoomLocator for the join page and the admin
// API: nil when room id is hosted here or nowhere, a *room.MovedError
// when another live node hosts it, an error wrapping room.ErrUnavailable
// when that cannot be known (with degraded_local, an unreachable state
// counts as "nowhere": the room may open here).
func (o *ownership) LocateRoom(ctx context.Context, id room.ID) error {
	if _, ok := o.Epoch(id); ok {
		return nil
	}
	err := o.hostOf(ctx, id)
	if o.degraded && errors.Is(err, cluster.ErrBackend) {
		return nil
	}
	return err
}
