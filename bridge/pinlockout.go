package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
)

// PINLockouts limits PIN guessing beyond one call (the IVR allows three
// tries per call): wrong PINs are counted per room and caller, with
// lockouts that grow while the caller keeps failing, shared by the nodes
// of a cluster (cluster.Lockouts implements it). The caller is the
// calling number for calls from a configured trunk (a carrier's calls
// share its address) and the source address otherwise. The same interface
// counts wrong PINs per room over all callers (SessionDeps.RoomPINLockouts,
// keyed by the room ID).
type PINLockouts interface {
	// Fail records a wrong PIN for key; it returns until when key is
	// locked (zero when it is not).
	Fail(ctx context.Context, key string) (time.Time, error)
	// Locked returns until when key is locked now (zero when it is not).
	Locked(ctx context.Context, key string) (time.Time, error)
	// Reset forgets key's failures, after a right PIN.
	Reset(ctx context.Context, key string) error
}

// pinLockoutTimeout bounds one lockout check on the session's goroutine,
// which also plays the caller's prompts: when the shared state is slow,
// the PIN is checked without it rather than the prompt stalling.
const pinLockoutTimeout = 250 * time.Millisecond

// checkPIN checks pin for room id against the directory, unless the
// caller or the room is locked out, and counts a wrong PIN for both. A
// right PIN clears the caller's count, not the room's: a guesser that
// knows one room's PIN must not reset the count of the room it guesses.
func (s *session) checkPIN(id room.ID, pin string) bool {
	src, rl := s.deps.PINLockouts, s.deps.RoomPINLockouts
	if src == nil && rl == nil {
		return s.deps.Directory.CheckPIN(id, pin)
	}
	key := pinLockoutKey(id, s.call.Info())
	ctx, cancel := context.WithTimeout(context.Background(), pinLockoutTimeout)
	defer cancel()
	if until := s.lockedUntil(ctx, src, key); !until.IsZero() {
		s.deps.Log.Info("session: PIN locked out", "call", string(s.call.ID()), "room", string(id),
			"until", until.UTC().Format(time.RFC3339))
		return false
	}
	if until := s.lockedUntil(ctx, rl, string(id)); !until.IsZero() {
		s.deps.Log.Debug("session: room PIN entry locked", "call", string(s.call.ID()), "room", string(id))
		return false
	}
	ok := s.deps.Directory.CheckPIN(id, pin)
	switch {
	case ok && src != nil:
		_ = src.Reset(ctx, key)
	case !ok:
		if src != nil {
			if until, err := src.Fail(ctx, key); err == nil && !until.IsZero() {
				s.deps.Log.Info("session: PIN guessing locked out", "call", string(s.call.ID()), "room", string(id),
					"until", until.UTC().Format(time.RFC3339))
			}
		}
		if rl != nil {
			// The room was not locked a moment ago, so a lockout now is
			// this failure's: logged once, without caller or address.
			if until, err := rl.Fail(ctx, string(id)); err == nil && !until.IsZero() {
				s.deps.Log.Warn("session: room PIN entry locked out", "room", string(id),
					"until", until.UTC().Format(time.RFC3339))
			}
		}
	}
	return ok
}

// lockedUntil asks l until when key is locked, the zero time when it is
// not, when l is nil or when l cannot answer (the PIN is then checked
// without it rather than the caller being refused for a Redis outage).
func (s *session) lockedUntil(ctx context.Context, l PINLockouts, key string) time.Time {
	if l == nil {
		return time.Time{}
	}
	until, err := l.Locked(ctx, key)
	if err != nil || !until.After(s.deps.Now()) {
		return time.Time{}
	}
	return until
}

// pinLockoutKey names a caller's PIN attempts for room id: by calling
// number on a trunk (hashed: the shared state holds no phone numbers), by
// address (IPv4 /32, IPv6 /64) otherwise.
func pinLockoutKey(id room.ID, c sip.CallInfo) string {
	if c.Trunk != "" && c.Caller != "" {
		sum := sha256.Sum256([]byte(c.Caller))
		return "pin-ivr:" + string(id) + ":trunk:" + c.Trunk + ":" + hex.EncodeToString(sum[:16])
	}
	a := c.Source.Addr().Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return "pin-ivr:" + string(id) + ":" + p.String()
}
