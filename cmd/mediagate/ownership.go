package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/room"
)

// leaseState is what ownership needs of the cluster state: who holds a
// room, and who is alive to be redirected to.
type leaseState interface {
	cluster.Leases
	cluster.Registry
}

// ownership decides which rooms this node may host (decision 4 of
// DESIGN.md). It is the room manager's open gate: a room opens here only
// under a lease this node acquired, and the lease is renewed while the
// room is open and released when it closes. A room another live node
// holds is answered with room.MovedError (307 for browsers, a link for
// calls).
//
// Holding is counted per room: the manager may ask twice for one room
// (two first joins at once), and each admission is released on its own.
type ownership struct {
	log      *slog.Logger
	self     cluster.NodeID
	state    leaseState
	leaseTTL time.Duration
	// degraded lets rooms open without a lease while the cluster state is
	// unreachable (cluster.degraded_local); they get one when it is back.
	degraded bool
	// lost is called when the node no longer holds a room it hosts (the
	// lease was taken over while this node was paused or cut off): the
	// room must close here at once.
	lost func(room.ID)

	mu   sync.Mutex
	held map[room.ID]*holding
}

// holding is one room this node hosts.
type holding struct {
	lease cluster.Lease // Epoch 0 while degraded (no lease yet)
	refs  int
	// ready is closed once the acquisition ended; err is its outcome.
	ready chan struct{}
	err   error
}

// opTimeout bounds one call to the cluster state from the ownership code
// on top of the backend's own deadline.
const opTimeout = 3 * time.Second

func newOwnership(log *slog.Logger, self cluster.NodeID, state leaseState, leaseTTL time.Duration, degraded bool) *ownership {
	return &ownership{
		log: log, self: self, state: state, leaseTTL: leaseTTL, degraded: degraded,
		lost: func(room.ID) {}, held: make(map[room.ID]*holding),
	}
}

// gate is the room manager's open gate (room.WithOpenGate).
func (o *ownership) gate(id room.ID) (func(), error) {
	o.mu.Lock()
	if h := o.held[id]; h != nil {
		h.refs++
		o.mu.Unlock()
		<-h.ready
		if h.err != nil {
			return nil, h.err
		}
		return o.releaser(id, h), nil
	}
	h := &holding{refs: 1, ready: make(chan struct{})}
	o.held[id] = h
	o.mu.Unlock()

	h.lease, h.err = o.acquire(id)
	if h.err != nil {
		o.mu.Lock()
		delete(o.held, id)
		o.mu.Unlock()
	}
	close(h.ready)
	if h.err != nil {
		return nil, h.err
	}
	return o.releaser(id, h), nil
}

// acquire takes room id's lease, or says where the room is.
func (o *ownership) acquire(id room.ID) (cluster.Lease, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	l, err := o.state.Acquire(ctx, cluster.RoomID(id), o.self)
	switch {
	case err == nil:
		o.log.Info("room lease acquired", "room", string(id), "epoch", l.Epoch)
		return l, nil
	case errors.Is(err, cluster.ErrLeaseHeld):
		return cluster.Lease{}, o.elsewhere(ctx, id)
	case o.degraded:
		o.log.Warn("cluster state unreachable; hosting the room without a lease (cluster.degraded_local)",
			"room", string(id), "err", err)
		return cluster.Lease{Room: cluster.RoomID(id), Owner: o.self}, nil
	default:
		o.log.Warn("cluster state unreachable; refusing a new room", "room", string(id), "err", err)
		return cluster.Lease{}, room.ErrUnavailable
	}
}

// elsewhere answers for a room whose lease another holder has: where to
// go, or ErrUnavailable while that is unclear (a dead node's lease that
// has not yet expired, this node's own lease from before a restart, a
// lease released a moment ago).
func (o *ownership) elsewhere(ctx context.Context, id room.ID) error {
	if err := o.hostOf(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("room %s: %w", id, room.ErrUnavailable)
}

// hostOf returns a *room.MovedError when another live node hosts room id,
// nil when no node or this node holds its lease, and an error wrapping
// room.ErrUnavailable (and cluster.ErrBackend when the state did not
// answer) when the holder is not live or the state cannot be read.
func (o *ownership) hostOf(ctx context.Context, id room.ID) error {
	owner, err := o.state.Owner(ctx, cluster.RoomID(id))
	switch {
	case errors.Is(err, cluster.ErrNoOwner):
		return nil
	case err != nil:
		return fmt.Errorf("room %s: %w: %w", id, room.ErrUnavailable, err)
	case owner.Owner == o.self:
		return nil
	}
	info, err := o.node(ctx, owner.Owner)
	if err != nil {
		return fmt.Errorf("room %s: node %s: %w: %w", id, owner.Owner, room.ErrUnavailable, err)
	}
	return &room.MovedError{Room: id, Node: string(info.ID), URL: info.HTTPURL}
}

// node returns the live node id, or an error when it is not live.
func (o *ownership) node(ctx context.Context, id cluster.NodeID) (cluster.NodeInfo, error) {
	nodes, err := o.state.Nodes(ctx)
	if err != nil {
		return cluster.NodeInfo{}, err
	}
	for _, n := range nodes {
		if n.ID == id && n.HTTPURL != "" {
			return n, nil
		}
	}
	return cluster.NodeInfo{}, fmt.Errorf("node %s is not live", id)
}

// releaser returns the release function of one admission of room id.
func (o *ownership) releaser(id room.ID, h *holding) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			h.refs--
			last := h.refs == 0 && o.held[id] == h
			if last {
				delete(o.held, id)
			}
			l := h.lease
			o.mu.Unlock()
			if last && l.Token != "" {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				defer cancel()
				if err := o.state.Release(ctx, l); err != nil {
					o.log.Warn("room lease release failed", "room", string(id), "err", err)
				} else {
					o.log.Info("room lease released", "room", string(id), "epoch", l.Epoch)
				}
			}
		})
	}
}

// Epoch returns the epoch under which this node hosts room id, and false
// when it does not host it (or hosts it degraded, without a lease).
func (o *ownership) Epoch(id room.ID) (uint64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	h := o.held[id]
	if h == nil {
		return 0, false
	}
	select {
	case <-h.ready:
	default:
		return 0, false
	}
	return h.lease.Epoch, h.err == nil && h.lease.Epoch != 0
}

// Rooms returns how many rooms this node hosts.
func (o *ownership) Rooms() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.held)
}

// run renews the held leases every third of the lease TTL until ctx ends.
// A lease found lost is re-asserted when nobody else took it (the cluster
// state lost its keys, e.g. Redis restarted without persistence); one
// another node holds ends the room here (o.lost). A room hosted without a
// lease (degraded) acquires one once the state answers again, or closes
// when another node took the room meanwhile.
func (o *ownership) run(ctx context.Context) {
	t := time.NewTicker(o.leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		o.renewAll(ctx)
	}
}

func (o *ownership) renewAll(ctx context.Context) {
	type item struct {
		id room.ID
		h  *holding
	}
	var items []item
	o.mu.Lock()
	for id, h := range o.held {
		select {
		case <-h.ready:
			if h.err == nil {
				items = append(items, item{id, h})
			}
		default:
		}
	}
	o.mu.Unlock()
	for _, it := range items {
		if ctx.Err() != nil {
			return
		}
		o.renew(ctx, it.id, it.h)
	}
}

// renew keeps one held room's lease.
func (o *ownership) renew(ctx context.Context, id room.ID, h *holding) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	o.mu.Lock()
	l := h.lease
	o.mu.Unlock()
	if l.Token == "" { // degraded: try to get a real lease now
		nl, err := o.state.Acquire(ctx, cluster.RoomID(id), o.self)
		switch {
		case err == nil:
			o.mu.Lock()
			h.lease = nl
			o.mu.Unlock()
			o.log.Info("room lease acquired after the cluster state returned", "room", string(id), "epoch", nl.Epoch)
		case errors.Is(err, cluster.ErrLeaseHeld):
			o.give(id, h, "another node hosts the room since the cluster state returned")
		}
		return
	}
	err := o.state.Renew(ctx, l)
	if err == nil || !errors.Is(err, cluster.ErrLeaseLost) {
		if err != nil {
			o.log.Debug("room lease renewal failed; keeping the room", "room", string(id), "err", err)
		}
		return
	}
	switch err := o.state.Reassert(ctx, l); {
	case err == nil:
		o.log.Info("room lease re-asserted", "room", string(id), "epoch", l.Epoch)
	case errors.Is(err, cluster.ErrBackend):
	default:
		o.give(id, h, "the room's lease was taken over")
	}
}

// give drops a room this node no longer holds and closes it here.
func (o *ownership) give(id room.ID, h *holding, why string) {
	o.mu.Lock()
	if o.held[id] == h {
		delete(o.held, id)
	}
	h.lease.Token = "" // nothing to release
	o.mu.Unlock()
	o.log.Warn("giving up the room", "room", string(id), "reason", why)
	o.lost(id)
}

// releaseAll gives every held room up (drain handover): their leases are
// released so another node can take the rooms at once.
func (o *ownership) releaseAll(ctx context.Context) {
	o.mu.Lock()
	var leases []cluster.Lease
	for id, h := range o.held {
		select {
		case <-h.ready:
			if h.err == nil && h.lease.Token != "" {
				leases = append(leases, h.lease)
			}
		default:
		}
		delete(o.held, id)
	}
	o.mu.Unlock()
	for _, l := range leases {
		if err := o.state.Release(ctx, l); err != nil {
			o.log.Warn("room lease release failed", "room", string(l.Room), "err", err)
		}
	}
}

// available reports whether a call for room id could be placed now: nil
// when this node hosts it, or when the cluster state answers (the room is
// elsewhere, to link to, or nobody's, to take); room.ErrUnavailable when
// the state is unreachable and rooms may not open without it.
func (o *ownership) available(id room.ID) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var moved *room.MovedError
	if err := o.LocateRoom(ctx, id); err != nil && !errors.As(err, &moved) {
		return err
	}
	return nil
}
