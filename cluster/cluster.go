// Package cluster holds the state that nodes share: which nodes are alive, which
// node owns which room (a lease with a fencing epoch), which addresses are
// banned, which PIN guessers are locked out, what every open room looks like,
// which node holds which recording, and the API keys made through the admin
// API, plus best-effort notices between nodes. Each piece is a small
// interface with an in-memory implementation for one node (decision 9) and a
// Redis implementation for many (decisions 4 and 5), standalone or behind
// Sentinel (OpenRedis).
package cluster

import (
	"context"
	"time"
)

// NodeID names a mediagate node; typed so it cannot be swapped with a room.
type NodeID string

// RoomID names a room in cluster state. It mirrors room.ID but lives here so
// package room can depend on cluster without an import cycle.
type RoomID string

// NodeInfo is what a node advertises in its heartbeat: how to reach it (for
// redirects and node-to-node links) and how loaded it is (for placement).
type NodeInfo struct {
	ID      NodeID  `json:"id"`
	SIPAddr string  `json:"sip_addr"`
	HTTPURL string  `json:"http_url"`
	Calls   int     `json:"calls"`
	Rooms   int     `json:"rooms"`
	CPU     float64 `json:"cpu"`
}

// Lease is one holding of a room. Token proves ownership to Renew and Release;
// Epoch grows on every acquisition and is carried by once-only side effects
// (recordings, manifests, egresses) so a superseded owner's writes are refused.
type Lease struct {
	Room  RoomID
	Owner NodeID
	Token string
	Epoch uint64
}

// Registry tracks live nodes. A node is live while its heartbeats arrive within
// the node TTL, so a crashed node disappears without anyone removing it.
type Registry interface {
	// Heartbeat records info and extends the node's life by the node TTL.
	Heartbeat(ctx context.Context, info NodeInfo) error
	// Nodes returns the live nodes, sorted by ID.
	Nodes(ctx context.Context) ([]NodeInfo, error)
}

// Leases decides which single node owns a room (decision 4).
type Leases interface {
	// Acquire takes the room for node with a fresh token and a higher epoch,
	// or fails with ErrLeaseHeld.
	Acquire(ctx context.Context, room RoomID, node NodeID) (Lease, error)
	// Renew extends a held lease by the lease TTL, or fails with ErrLeaseLost.
	Renew(ctx context.Context, l Lease) error
	// Release gives the room up; only the holder can, others get ErrLeaseLost.
	Release(ctx context.Context, l Lease) error
	// Owner returns the current lease without its token, or ErrNoOwner.
	Owner(ctx context.Context, room RoomID) (Lease, error)
	// Reassert puts a held lease back after the shared store lost it (a
	// Redis restart without persistence): with no lease for the room it
	// sets l again, same token, owner and epoch, for the lease TTL. A lease
	// still stored with l's value is renewed. In every case the room's
	// epoch counter is raised to at least l.Epoch, so the next Acquire
	// hands out a higher epoch than any handed out before the loss. It
	// fails with ErrLeaseLost (not ErrLeaseHeld: the caller is the one who
	// lost) when another holder has the room, or when the counter shows
	// that the room was acquired after l (l is superseded even if that
	// lease is gone too): either way the caller must stop acting as the
	// room's owner. A lease without token or epoch is ErrLeaseLost too.
	Reassert(ctx context.Context, l Lease) error
}

// Fence guards once-only side effects with the room epoch.
type Fence interface {
	// CheckEpoch returns nil only while room is held at exactly epoch, and
	// ErrStaleEpoch otherwise (taken over, expired or released).
	CheckEpoch(ctx context.Context, room RoomID, epoch uint64) error
}

// Bans shares abuse-guard bans between nodes, so a flooder cannot move on to
// the next node.
type Bans interface {
	// Ban refuses addr until the given time; a later Ban replaces the time.
	Ban(ctx context.Context, addr string, until time.Time) error
	// IsBanned reports whether addr is banned now.
	IsBanned(ctx context.Context, addr string) (bool, error)
}

// Clock is the time source of the memory implementation, injectable so tests
// expire leases and nodes without sleeping.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Defaults chosen so a dead owner's rooms move within seconds while a node
// renewing every second survives a missed beat or two.
const (
	DefaultNodeTTL      = 5 * time.Second
	DefaultLeaseTTL     = 5 * time.Second
	DefaultRedisTimeout = 2 * time.Second
)
