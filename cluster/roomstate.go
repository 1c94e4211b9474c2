package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// RoomState is what a room's owner tells the other nodes about it, so the
// admin API on any node lists every open room.
type RoomState struct {
	Room         RoomID    `json:"room"`
	Node         NodeID    `json:"node"`
	Epoch        uint64    `json:"epoch"`
	Participants int       `json:"participants"`
	Phone        int       `json:"phone"`
	WebRTC       int       `json:"webrtc"`
	Recording    bool      `json:"recording"`
	Egresses     int       `json:"egresses"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// RoomStates shares the state of open rooms. An owner refreshes its rooms'
// states more often than their TTL, so the state of a room whose owner died
// disappears by itself.
type RoomStates interface {
	// PutRoomState stores s for ttl unless refreshed. A state with a lower
	// epoch than the stored one is refused with ErrStaleEpoch, so a
	// superseded owner cannot overwrite its successor's state.
	PutRoomState(ctx context.Context, s RoomState, ttl time.Duration) error
	// RoomStates returns the live states, sorted by Room.
	RoomStates(ctx context.Context) ([]RoomState, error)
	// DeleteRoomState removes room's state only if node stored it (a
	// successor's state stays); otherwise, or when there is none, it does
	// nothing.
	DeleteRoomState(ctx context.Context, room RoomID, node NodeID) error
}

var (
	_ RoomStates = (*Memory)(nil)
	_ RoomStates = (*Redis)(nil)
)

type memRoomState struct {
	state   RoomState
	expires time.Time
}

func checkRoomState(s RoomState, ttl time.Duration) error {
	switch {
	case s.Room == "":
		return errors.New("put room state: empty room")
	case ttl < time.Millisecond:
		return fmt.Errorf("put room state %q: ttl %v below 1ms", s.Room, ttl)
	}
	return nil
}

// PutRoomState implements RoomStates.
func (m *Memory) PutRoomState(_ context.Context, s RoomState, ttl time.Duration) error {
	if err := checkRoomState(s, ttl); err != nil {
		return err
	}
	s.UpdatedAt = s.UpdatedAt.UTC().Round(0)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.clock.Now()
	if cur, ok := m.roomStates[s.Room]; ok && now.Before(cur.expires) && cur.state.Epoch > s.Epoch {
		return fmt.Errorf("room state %q epoch %d: stored epoch %d: %w", s.Room, s.Epoch, cur.state.Epoch, ErrStaleEpoch)
	}
	m.roomStates[s.Room] = memRoomState{state: s, expires: now.Add(ttl)}
	return nil
}

// RoomStates implements RoomStates; expired states are dropped on the way.
func (m *Memory) RoomStates(_ context.Context) ([]RoomState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.clock.Now()
	out := make([]RoomState, 0, len(m.roomStates))
	for room, s := range m.roomStates {
		if !now.Before(s.expires) {
			delete(m.roomStates, room)
			continue
		}
		out = append(out, s.state)
	}
	slices.SortFunc(out, func(a, b RoomState) int { return cmp.Compare(a.Room, b.Room) })
	return out, nil
}

// DeleteRoomState implements RoomStates.
func (m *Memory) DeleteRoomState(_ context.Context, room RoomID, node NodeID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.roomStates[room]; ok && cur.state.Node == node {
		delete(m.roomStates, room)
	}
	return nil
}

func (r *Redis) roomStatesKey() string           { return r.cfg.prefix + ":{roomstates}" }
func (r *Redis) roomStateKey(room RoomID) string { return r.roomStatesKey() + ":" + string(room) }
func (r *Redis) roomStateKeys(room RoomID) []string {
	return []string{r.roomStateKey(room), r.roomStatesKey()}
}

// putRoomStateScript stores a state unless the stored one has a higher
// epoch (returns 0 then), and adds the room to the set of rooms. KEYS:
// state, set; ARGV: JSON, epoch, ttl ms, room.
var putRoomStateScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cjson.decode(cur).epoch) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
`)

// deleteRoomStateScript deletes a state only if the given node stored it.
// KEYS: state, set; ARGV: node, room.
var deleteRoomStateScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SREM', KEYS[2], ARGV[2])
  return 0
end
if cjson.decode(cur).node ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
`)

// PutRoomState implements RoomStates.
func (r *Redis) PutRoomState(ctx context.Context, s RoomState, ttl time.Duration) error {
	if err := checkRoomState(s, ttl); err != nil {
		return err
	}
	s.UpdatedAt = s.UpdatedAt.UTC().Round(0)
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("put room state %q: %w", s.Room, err)
	}
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	n, err := putRoomStateScript.Run(ctx, r.c, r.roomStateKeys(s.Room),
		b, s.Epoch, ttl.Milliseconds(), string(s.Room)).Int()
	if err != nil {
		return backend("put room state", err)
	}
	if n == 0 {
		return fmt.Errorf("room state %q epoch %d: %w", s.Room, s.Epoch, ErrStaleEpoch)
	}
	return nil
}

// RoomStates implements RoomStates; rooms whose state expired are pruned
// from the set.
func (r *Redis) RoomStates(ctx context.Context) ([]RoomState, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	rooms, err := r.c.SMembers(ctx, r.roomStatesKey()).Result()
	if err != nil {
		return nil, backend("room states", err)
	}
	if len(rooms) == 0 {
		return nil, nil
	}
	keys := make([]string, len(rooms))
	for i, room := range rooms {
		keys[i] = r.roomStateKey(RoomID(room))
	}
	vals, err := r.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, backend("room states", err)
	}
	var out []RoomState
	var gone []any
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			gone = append(gone, rooms[i])
			continue
		}
		var s RoomState
		if err := json.Unmarshal([]byte(str), &s); err != nil {
			return nil, fmt.Errorf("redis room state %q: %w: %w", rooms[i], ErrBackend, err)
		}
		out = append(out, s)
	}
	if len(gone) > 0 {
		if err := pruneScript.Run(ctx, r.c, []string{r.roomStatesKey()}, gone...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, backend("room states prune", err)
		}
	}
	slices.SortFunc(out, func(a, b RoomState) int { return cmp.Compare(a.Room, b.Room) })
	return out, nil
}

// DeleteRoomState implements RoomStates.
func (r *Redis) DeleteRoomState(ctx context.Context, room RoomID, node NodeID) error {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	err := deleteRoomStateScript.Run(ctx, r.c, r.roomStateKeys(room), string(node), string(room)).Err()
	return backend("delete room state", err)
}
