package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the many-node cluster state (decisions 4 and 5). Every call is
// bounded by the configured timeout, and every failure of Redis itself wraps
// ErrBackend.
//
// Keys (prefix "mediagate" by default):
//
//	PREFIX:lease:{ROOM}          "EPOCH TOKEN NODE", PX lease TTL
//	PREFIX:epoch:{ROOM}          epoch counter, INCR on every acquisition
//	                             (raised by Reassert), no TTL
//	PREFIX:{nodes}               set of node IDs that have sent a heartbeat
//	PREFIX:{nodes}:ID            NodeInfo as JSON, PX node TTL
//	PREFIX:ban:ADDR              "1", PX until the ban ends
//	PREFIX:lockout:{KEY}:fails   failures in the window, PX window from the first
//	PREFIX:lockout:{KEY}:until   present while KEY is locked out, PX the lockout
//	PREFIX:lockout:{KEY}:level   lockouts so far, PX until the count decays
//	PREFIX:lockout.NS:{KEY}:...  the same for Lockouts of namespace NS
//	                             (NewLockouts)
//	PREFIX:rec:ID                RecordingEntry as JSON, no TTL (recordings
//	                             outlive nodes)
//	PREFIX:recs                  sorted set of recording IDs, score StartedAt
//	                             in Unix milliseconds, no TTL
//	PREFIX:keys                  hash of API key records: key ID → the record
//	                             as package api writes it (JSON), no TTL (a
//	                             revocation must outlive every node)
//
// Events are published on the channels PREFIX:events:TOPIC.
// The hash tags keep each script's keys in one slot.
type Redis struct {
	cfg config
	c   *redis.Client
	ops *opMeters // the client's hook: commands, errors, latency
}

var (
	_ Registry = (*Redis)(nil)
	_ Leases   = (*Redis)(nil)
	_ Fence    = (*Redis)(nil)
	_ Bans     = (*Redis)(nil)
)

// NewRedis returns cluster state kept in the standalone Redis at addr,
// configured by options; OpenRedis takes a whole RedisConfig (ACL user,
// Sentinel). It does not dial; use Ping to check that Redis answers
// (readiness).
func NewRedis(addr string, opts ...Option) *Redis {
	return newRedis(RedisConfig{Addr: addr}, newConfig(opts))
}

// Close releases the connection pool.
func (r *Redis) Close() error { return r.c.Close() }

// Ping checks that Redis answers within the timeout.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	return backend("ping", r.c.Ping(ctx).Err())
}

func (r *Redis) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.cfg.timeout)
}

// backend wraps a Redis failure so callers see ErrBackend and the cause.
func backend(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis %s: %w: %w", op, ErrBackend, err)
}

func (r *Redis) leaseKey(room RoomID) string { return r.cfg.prefix + ":lease:{" + string(room) + "}" }
func (r *Redis) epochKey(room RoomID) string { return r.cfg.prefix + ":epoch:{" + string(room) + "}" }
func (r *Redis) nodesKey() string            { return r.cfg.prefix + ":{nodes}" }
func (r *Redis) nodeKey(id NodeID) string    { return r.nodesKey() + ":" + string(id) }
func (r *Redis) banKey(addr string) string   { return r.cfg.prefix + ":ban:" + addr }

func leaseValue(l Lease) string {
	return strconv.FormatUint(l.Epoch, 10) + " " + l.Token + " " + string(l.Owner)
}

func parseLease(room RoomID, v string) (Lease, error) {
	parts := strings.SplitN(v, " ", 3)
	if len(parts) != 3 {
		return Lease{}, fmt.Errorf("redis lease %q: malformed value: %w", room, ErrBackend)
	}
	epoch, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		return Lease{}, fmt.Errorf("redis lease %q: malformed epoch: %w: %w", room, ErrBackend, err)
	}
	return Lease{Room: room, Epoch: epoch, Token: parts[1], Owner: NodeID(parts[2])}, nil
}

// acquireScript bumps the epoch and sets the lease only if nobody holds it,
// atomically, so no epoch is spent on a failed attempt and no lease exists
// without its epoch. Returns the new epoch, or 0 when held.
var acquireScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local e = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], e .. ' ' .. ARGV[1] .. ' ' .. ARGV[2], 'NX', 'PX', ARGV[3])
return e
`)

// renewScript extends the lease only if it still carries the caller's value
// (epoch and token): a superseded owner cannot extend its successor's lease.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes the lease only for its holder.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// reassertScript puts a lease back after Redis lost it. First the epoch
// counter is raised to the caller's epoch (after a FLUSHALL or a restart it
// may be gone or lower), so no epoch given out before is given out again,
// whatever happens next. Then the lease is renewed when still stored with
// the caller's value, refused (-1) when another holds it or the counter
// had passed the caller's epoch, else set again. Returns 1 on success.
var reassertScript = redis.NewScript(`
local e = tonumber(redis.call('GET', KEYS[2]) or '0')
local want = tonumber(ARGV[3])
if e < want then redis.call('SET', KEYS[2], ARGV[3]) end
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur or e > want then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// pruneScript drops node IDs whose heartbeat key has expired, checking each
// one atomically so a node that beats again meanwhile is never dropped.
var pruneScript = redis.NewScript(`
for i, id in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[1] .. ':' .. id) == 0 then
    redis.call('SREM', KEYS[1], id)
  end
end
return 0
`)

// Acquire implements Leases.
func (r *Redis) Acquire(ctx context.Context, room RoomID, node NodeID) (Lease, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	tok := newToken()
	epoch, err := acquireScript.Run(ctx, r.c,
		[]string{r.leaseKey(room), r.epochKey(room)},
		tok, string(node), r.cfg.leaseTTL.Milliseconds()).Uint64()
	if err != nil {
		return Lease{}, backend("acquire", err)
	}
	if epoch == 0 {
		return Lease{}, fmt.Errorf("acquire %q: %w", room, ErrLeaseHeld)
	}
	return Lease{Room: room, Owner: node, Token: tok, Epoch: epoch}, nil
}

// Renew implements Leases.
func (r *Redis) Renew(ctx context.Context, l Lease) error {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	n, err := renewScript.Run(ctx, r.c, []string{r.leaseKey(l.Room)},
		leaseValue(l), r.cfg.leaseTTL.Milliseconds()).Int()
	if err != nil {
		return backend("renew", err)
	}
	if n == 0 {
		return fmt.Errorf("renew %q epoch %d: %w", l.Room, l.Epoch, ErrLeaseLost)
	}
	return nil
}

// Release implements Leases.
func (r *Redis) Release(ctx context.Context, l Lease) error {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	n, err := releaseScript.Run(ctx, r.c, []string{r.leaseKey(l.Room)}, leaseValue(l)).Int()
	if err != nil {
		return backend("release", err)
	}
	if n == 0 {
		return fmt.Errorf("release %q epoch %d: %w", l.Room, l.Epoch, ErrLeaseLost)
	}
	return nil
}

// Reassert implements Leases.
func (r *Redis) Reassert(ctx context.Context, l Lease) error {
	if l.Token == "" || l.Epoch == 0 {
		return fmt.Errorf("reassert %q: not a held lease: %w", l.Room, ErrLeaseLost)
	}
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	n, err := reassertScript.Run(ctx, r.c, []string{r.leaseKey(l.Room), r.epochKey(l.Room)},
		leaseValue(l), r.cfg.leaseTTL.Milliseconds(), strconv.FormatUint(l.Epoch, 10)).Int()
	if err != nil {
		return backend("reassert", err)
	}
	if n != 1 {
		return fmt.Errorf("reassert %q epoch %d: %w", l.Room, l.Epoch, ErrLeaseLost)
	}
	return nil
}

// Owner implements Leases.
func (r *Redis) Owner(ctx context.Context, room RoomID) (Lease, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	v, err := r.c.Get(ctx, r.leaseKey(room)).Result()
	if errors.Is(err, redis.Nil) {
		return Lease{}, fmt.Errorf("owner %q: %w", room, ErrNoOwner)
	}
	if err != nil {
		return Lease{}, backend("owner", err)
	}
	l, err := parseLease(room, v)
	l.Token = ""
	return l, err
}

// CheckEpoch implements Fence.
func (r *Redis) CheckEpoch(ctx context.Context, room RoomID, epoch uint64) error {
	l, err := r.Owner(ctx, room)
	if errors.Is(err, ErrNoOwner) || (err == nil && l.Epoch != epoch) {
		return fmt.Errorf("room %q epoch %d: %w", room, epoch, ErrStaleEpoch)
	}
	return err
}

// Heartbeat implements Registry.
func (r *Redis) Heartbeat(ctx context.Context, info NodeInfo) error {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("heartbeat %q: %w", info.ID, err)
	}
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.nodeKey(info.ID), b, r.cfg.nodeTTL)
		p.SAdd(ctx, r.nodesKey(), string(info.ID))
		return nil
	})
	return backend("heartbeat", err)
}

// Nodes implements Registry; IDs whose heartbeat expired are pruned.
func (r *Redis) Nodes(ctx context.Context) ([]NodeInfo, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	ids, err := r.c.SMembers(ctx, r.nodesKey()).Result()
	if err != nil {
		return nil, backend("nodes", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.nodeKey(NodeID(id))
	}
	vals, err := r.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, backend("nodes", err)
	}
	var out []NodeInfo
	var gone []any
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			gone = append(gone, ids[i])
			continue
		}
		var n NodeInfo
		if err := json.Unmarshal([]byte(s), &n); err != nil {
			return nil, fmt.Errorf("redis node %q: %w: %w", ids[i], ErrBackend, err)
		}
		out = append(out, n)
	}
	if len(gone) > 0 {
		if err := pruneScript.Run(ctx, r.c, []string{r.nodesKey()}, gone...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, backend("nodes prune", err)
		}
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out, nil
}

// Ban implements Bans. The expiry is sent as a duration, not a timestamp, so
// clock skew between this node and Redis does not stretch or cut bans.
func (r *Redis) Ban(ctx context.Context, addr string, until time.Time) error {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	d := time.Until(until)
	if d < time.Millisecond {
		return backend("unban", r.c.Del(ctx, r.banKey(addr)).Err())
	}
	return backend("ban", r.c.Set(ctx, r.banKey(addr), "1", d).Err())
}

// IsBanned implements Bans.
func (r *Redis) IsBanned(ctx context.Context, addr string) (bool, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	n, err := r.c.Exists(ctx, r.banKey(addr)).Result()
	if err != nil {
		return false, backend("is banned", err)
	}
	return n == 1, nil
}
