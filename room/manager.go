package room

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Manager holds a node's open rooms by ID. Rooms open on the first join (or
// through Create, with their own options) and close themselves once they
// have been empty for their grace period; Close stops them all.
type Manager struct {
	autoCreate bool
	defaults   []Option
	onOpen     func(*Room)
	gate       func(ID) (func(), error)
	optsFor    func(ID) []Option

	mu     sync.Mutex
	rooms  map[ID]*Room
	closed bool
	// closing holds rooms that closed on their own and whose ticker
	// goroutine may still be returning, so Close can wait for it.
	closing []*Room
}

// ManagerOption changes one setting of a Manager.
type ManagerOption func(*Manager)

// WithRoomDefaults sets the options every room of the manager starts with
// (logger, encoder factory, grace period, limits); Create's own options
// apply after them.
func WithRoomDefaults(opts ...Option) ManagerOption {
	return func(m *Manager) { m.defaults = append(m.defaults, opts...) }
}

// WithAutoCreate sets whether Join opens a room that does not exist (the
// default) or fails with ErrNotFound, for deployments where only the admin
// API creates rooms.
func WithAutoCreate(on bool) ManagerOption { return func(m *Manager) { m.autoCreate = on } }

// WithOnOpen sets a function called with every room the manager opens
// (Create, or Join opening a room), after the room is registered and before
// anyone is in it, so that a subscriber to its events misses nobody: the
// recorder's auto-recording watches rooms this way. It runs on the opening
// goroutine without the manager's lock; it must return quickly and must not
// close the room.
func WithOnOpen(f func(*Room)) ManagerOption { return func(m *Manager) { m.onOpen = f } }

// WithOpenGate sets a function asked before the manager opens a room
// (Create, or Join opening one): it returns nil and a release function,
// called once when that room has closed, or an error that Create and Join
// return instead of opening the room (a *MovedError when another node of
// the cluster hosts it, ErrUnavailable when that cannot be known). The
// gate runs without the manager's lock and may block on the network; it
// may be asked again for a room it admitted while that room is still
// open (two first joins at once), and must then admit it again, with a
// release function of its own.
func WithOpenGate(gate func(id ID) (release func(), err error)) ManagerOption {
	return func(m *Manager) { m.gate = gate }
}

// WithOptionsFor sets a function giving the options of a room that Join
// opens, after the defaults: the settings of a room the operator
// configured but that opens on demand (in a cluster, on the node that
// wins it). Create applies them too, before its own options.
func WithOptionsFor(f func(id ID) []Option) ManagerOption {
	return func(m *Manager) { m.optsFor = f }
}

// NewManager returns a Manager with no rooms.
func NewManager(opts ...ManagerOption) *Manager {
	m := &Manager{autoCreate: true, rooms: make(map[ID]*Room)}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Create opens room id with the manager's defaults and then opts. It fails
// with ErrRoomExists if the room is open, ErrManagerClosed after Close.
func (m *Manager) Create(id ID, opts ...Option) (*Room, error) {
	m.mu.Lock()
	err := m.checkLocked(id)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	release, err := m.admit(id)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", id, err)
	}
	m.mu.Lock()
	if err := m.checkLocked(id); err != nil {
		m.mu.Unlock()
		release()
		return nil, err
	}
	if m.optsFor != nil {
		opts = append(m.optsFor(id), opts...)
	}
	r := m.openLocked(id, opts, release)
	m.mu.Unlock()
	m.opened(r)
	return r, nil
}

// checkLocked fails when Create cannot open id: the manager closed, or the
// room is open. m.mu is held.
func (m *Manager) checkLocked(id ID) error {
	if m.closed {
		return ErrManagerClosed
	}
	if m.rooms[id] != nil {
		return fmt.Errorf("create %s: %w", id, ErrRoomExists)
	}
	return nil
}

// admit asks the open gate, if any, whether this node may open room id.
func (m *Manager) admit(id ID) (func(), error) {
	if m.gate == nil {
		return func() {}, nil
	}
	release, err := m.gate(id)
	if err != nil {
		return nil, err
	}
	if release == nil {
		release = func() {}
	}
	return release, nil
}

// opened runs the WithOnOpen function for a room just opened.
func (m *Manager) opened(r *Room) {
	if m.onOpen != nil {
		m.onOpen(r)
	}
}

// openLocked opens a room and registers it; m.mu is held. release is the
// open gate's, called once the room has closed.
func (m *Manager) openLocked(id ID, opts []Option, release func()) *Room {
	all := make([]Option, 0, len(m.defaults)+len(opts)+1)
	all = append(all, m.defaults...)
	all = append(all, opts...)
	all = append(all, func(c *config) {
		c.onClose = func(r *Room) {
			m.forget(r)
			release()
		}
	})
	r := NewRoom(id, all...)
	m.rooms[id] = r
	return r
}

// forget drops a closed room from the map, unless the ID already names a
// newer room, and remembers it until its goroutine has returned.
func (m *Manager) forget(r *Room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rooms[r.id] == r {
		delete(m.rooms, r.id)
	}
	m.closing = slices.DeleteFunc(m.closing, func(c *Room) bool {
		select {
		case <-c.loopDone:
			return true
		default:
			return c == r
		}
	})
	m.closing = append(m.closing, r)
}

// Join adds p to room id, opening the room if it does not exist and the
// manager creates rooms on join. It returns the room, or an error from
// Room.Join, ErrNotFound or ErrManagerClosed.
func (m *Manager) Join(id ID, p Participant) (*Room, error) {
	// A room found here may close (empty past its grace period) before p is
	// in; then a fresh one is opened. Three rounds of that cannot happen
	// honestly.
	for range 3 {
		r, err := m.getOrOpen(id)
		if err != nil {
			return nil, err
		}
		err = r.Join(p)
		if errors.Is(err, ErrRoomClosed) {
			m.forget(r)
			continue
		}
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	return nil, fmt.Errorf("join %s: %w", id, ErrRoomClosed)
}

func (m *Manager) getOrOpen(id ID) (*Room, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrManagerClosed
	}
	if r := m.rooms[id]; r != nil {
		m.mu.Unlock()
		return r, nil
	}
	if !m.autoCreate {
		m.mu.Unlock()
		return nil, fmt.Errorf("room %s: %w", id, ErrNotFound)
	}
	m.mu.Unlock()
	release, err := m.admit(id)
	if err != nil {
		return nil, fmt.Errorf("room %s: %w", id, err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		release()
		return nil, ErrManagerClosed
	}
	if r := m.rooms[id]; r != nil { // opened by another join meanwhile
		m.mu.Unlock()
		release()
		return r, nil
	}
	var opts []Option
	if m.optsFor != nil {
		opts = m.optsFor(id)
	}
	r := m.openLocked(id, opts, release)
	m.mu.Unlock()
	m.opened(r)
	return r, nil
}

// Admits reports whether a participant could join room id now: the open
// room's Admits, nil for a room Join would open, ErrNotFound (wrapped) for
// one it would not, ErrManagerClosed after Close. Like Room.Admits it lets
// the SIP bridge refuse a call with the right status before answering it.
func (m *Manager) Admits(id ID) error {
	m.mu.Lock()
	r, closed := m.rooms[id], m.closed
	m.mu.Unlock()
	if closed {
		return ErrManagerClosed
	}
	if r != nil {
		// A room closing this moment is replaced by Join, as if it had
		// not been open.
		if err := r.Admits(); !errors.Is(err, ErrRoomClosed) {
			return err
		}
	}
	if !m.autoCreate {
		return fmt.Errorf("room %s: %w", id, ErrNotFound)
	}
	return nil
}

// Get returns the open room id, or ErrNotFound.
func (m *Manager) Get(id ID) (*Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.rooms[id]; r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("room %s: %w", id, ErrNotFound)
}

// List returns the open rooms sorted by ID.
func (m *Manager) List() []*Room {
	m.mu.Lock()
	rooms := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	slices.SortFunc(rooms, func(a, b *Room) int { return cmp.Compare(a.id, b.id) })
	return rooms
}

// CloseRoom closes room id (see Room.Close), or returns ErrNotFound.
func (m *Manager) CloseRoom(ctx context.Context, id ID) error {
	r, err := m.Get(id)
	if err != nil {
		return err
	}
	return r.Close(ctx)
}

// Close stops the manager: no new rooms or joins, every open room closed,
// and every room goroutine (including those of rooms that closed on their
// own a moment ago) waited for, or ctx's error.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	rooms := slices.Clone(m.closing)
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	var errs []error
	for _, r := range rooms {
		// Close is idempotent; for a room that closed on its own it just
		// waits for the ticker goroutine to return.
		if err := r.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
