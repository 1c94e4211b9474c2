package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is the one-node cluster state (decision 9): everything in a map
// behind one mutex, with expiry judged against an injectable clock.
type Memory struct {
	cfg config

	mu     sync.Mutex
	nodes  map[NodeID]memNode
	leases map[RoomID]memLease
	epochs map[RoomID]uint64
	bans   map[string]time.Time
	recs   map[string]RecordingEntry
	// lockouts holds Lockouts' state by key; lockoutSweepAt is the size at
	// which Fail next drops keys with nothing left to remember.
	lockouts       map[memLockoutKey]memLockout
	lockoutSweepAt int
	keyRecs        map[string][]byte // KeyRecords, by key ID
	// banSweepAt is the ban count at which Ban next drops expired bans, so
	// a flood of one-off addresses cannot grow the map without bound.
	banSweepAt int

	subMu sync.Mutex
	subs  map[string][]*memSub
}

type memNode struct {
	info    NodeInfo
	expires time.Time
}

type memLease struct {
	lease   Lease
	expires time.Time
}

var (
	_ Registry = (*Memory)(nil)
	_ Leases   = (*Memory)(nil)
	_ Fence    = (*Memory)(nil)
	_ Bans     = (*Memory)(nil)
)

// NewMemory returns empty in-memory cluster state.
func NewMemory(opts ...Option) *Memory {
	return &Memory{
		cfg:    newConfig(opts),
		nodes:  make(map[NodeID]memNode),
		leases: make(map[RoomID]memLease),
		epochs: make(map[RoomID]uint64),
		bans:   make(map[string]time.Time),
		recs:   make(map[string]RecordingEntry),

		lockouts: make(map[memLockoutKey]memLockout),
		keyRecs:  make(map[string][]byte),
	}
}

// Heartbeat implements Registry.
func (m *Memory) Heartbeat(_ context.Context, info NodeInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[info.ID] = memNode{info: info, expires: m.cfg.clock.Now().Add(m.cfg.nodeTTL)}
	return nil
}

// Nodes implements Registry; expired nodes are dropped on the way.
func (m *Memory) Nodes(_ context.Context) ([]NodeInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.clock.Now()
	out := make([]NodeInfo, 0, len(m.nodes))
	for id, n := range m.nodes {
		if !now.Before(n.expires) {
			delete(m.nodes, id)
			continue
		}
		out = append(out, n.info)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out, nil
}

// live returns the room's unexpired lease; the caller holds m.mu.
func (m *Memory) live(room RoomID) (memLease, bool) {
	l, ok := m.leases[room]
	if ok && !m.cfg.clock.Now().Before(l.expires) {
		delete(m.leases, room)
		return memLease{}, false
	}
	return l, ok
}

// Acquire implements Leases.
func (m *Memory) Acquire(_ context.Context, room RoomID, node NodeID) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.live(room); ok {
		return Lease{}, fmt.Errorf("acquire %q: owned by %q: %w", room, cur.lease.Owner, ErrLeaseHeld)
	}
	m.epochs[room]++
	l := Lease{Room: room, Owner: node, Token: newToken(), Epoch: m.epochs[room]}
	m.leases[room] = memLease{lease: l, expires: m.cfg.clock.Now().Add(m.cfg.leaseTTL)}
	return l, nil
}

// Renew implements Leases.
func (m *Memory) Renew(_ context.Context, l Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.live(l.Room)
	if !ok || cur.lease != l {
		return fmt.Errorf("renew %q epoch %d: %w", l.Room, l.Epoch, ErrLeaseLost)
	}
	cur.expires = m.cfg.clock.Now().Add(m.cfg.leaseTTL)
	m.leases[l.Room] = cur
	return nil
}

// Release implements Leases.
func (m *Memory) Release(_ context.Context, l Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.live(l.Room)
	if !ok || cur.lease != l {
		return fmt.Errorf("release %q epoch %d: %w", l.Room, l.Epoch, ErrLeaseLost)
	}
	delete(m.leases, l.Room)
	return nil
}

// Reassert implements Leases.
func (m *Memory) Reassert(_ context.Context, l Lease) error {
	if l.Token == "" || l.Epoch == 0 {
		return fmt.Errorf("reassert %q: not a held lease: %w", l.Room, ErrLeaseLost)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.live(l.Room)
	counter := m.epochs[l.Room]
	m.epochs[l.Room] = max(counter, l.Epoch)
	switch {
	case ok && cur.lease == l:
	case ok:
		return fmt.Errorf("reassert %q epoch %d: owned by %q: %w", l.Room, l.Epoch, cur.lease.Owner, ErrLeaseLost)
	case counter > l.Epoch:
		return fmt.Errorf("reassert %q epoch %d: superseded by epoch %d: %w", l.Room, l.Epoch, counter, ErrLeaseLost)
	}
	m.leases[l.Room] = memLease{lease: l, expires: m.cfg.clock.Now().Add(m.cfg.leaseTTL)}
	return nil
}

// Owner implements Leases.
func (m *Memory) Owner(_ context.Context, room RoomID) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.live(room)
	if !ok {
		return Lease{}, fmt.Errorf("owner %q: %w", room, ErrNoOwner)
	}
	l := cur.lease
	l.Token = ""
	return l, nil
}

// CheckEpoch implements Fence.
func (m *Memory) CheckEpoch(_ context.Context, room RoomID, epoch uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.live(room)
	if !ok || cur.lease.Epoch != epoch {
		return fmt.Errorf("room %q epoch %d: %w", room, epoch, ErrStaleEpoch)
	}
	return nil
}

// Ban implements Bans.
func (m *Memory) Ban(_ context.Context, addr string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bans[addr] = until
	if len(m.bans) >= m.banSweepAt {
		now := m.cfg.clock.Now()
		for a, u := range m.bans {
			if !now.Before(u) {
				delete(m.bans, a)
			}
		}
		m.banSweepAt = 2*len(m.bans) + 64 // amortised O(1) per Ban
	}
	return nil
}

// IsBanned implements Bans; expired bans are dropped on the way.
func (m *Memory) IsBanned(_ context.Context, addr string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	until, ok := m.bans[addr]
	if !ok {
		return false, nil
	}
	if !m.cfg.clock.Now().Before(until) {
		delete(m.bans, addr)
		return false, nil
	}
	return true, nil
}
