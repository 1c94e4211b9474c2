package configs

import "time"

// PINLockout is auth.pin_lockout: when wrong PINs lock a caller out of a
// room, for the voice menu (counted per room and calling number on a
// trunk, per room and source address otherwise) and, with Redis, the join
// page across the nodes (per room and client network; package api's own
// per-node limit is apart); and when wrong PINs from all of them lock the
// room's PIN entry (RoomFailures). Package cluster's LockoutPolicy
// applies it.
type PINLockout struct {
	// Failures is how many wrong PINs within Window lock a caller out.
	Failures int `yaml:"failures"`
	// Window is the period Failures counts over, from the first of them.
	Window time.Duration `yaml:"window"`
	// Lockout is the first lockout; each further one of the same caller
	// doubles it.
	Lockout time.Duration `yaml:"lockout"`
	// LockoutMax is the longest lockout; a caller's lockouts are forgotten
	// LockoutMax after the last one ended.
	LockoutMax time.Duration `yaml:"lockout_max"`
	// RoomFailures is how many wrong PINs for one room within Window, over
	// all callers and the join page and across the nodes, lock the room's
	// PIN entry for everyone (against guessing spread over many sources,
	// each below Failures), for Lockout doubling up to LockoutMax like a
	// caller's; 0 turns the room limit off.
	RoomFailures int `yaml:"room_failures"`
}

// defaultPINLockout is package cluster's default policy: five wrong PINs
// in five minutes cost a minute, then 2, 4, 8 ... up to an hour. Thirty
// wrong PINs for one room in five minutes lock the room alike: six
// guessers' worth, far more than a room's own people mistype.
func defaultPINLockout() PINLockout {
	return PINLockout{Failures: 5, Window: 5 * time.Minute, Lockout: time.Minute, LockoutMax: time.Hour,
		RoomFailures: 30}
}

// Bounds of auth.pin_lockout.
const (
	maxLockoutFailures = 100
	minLockoutWindow   = time.Second
	maxLockoutWindow   = 24 * time.Hour
	minLockout         = time.Second
	maxLockoutMax      = 7 * 24 * time.Hour
	maxRoomFailures    = 10000
)

// pinLockout checks auth.pin_lockout: ranges, lockout_max not below
// lockout, room_failures (unless 0) not below failures (a room limit
// below a caller's would lock the room before any one guesser).
func (v *validator) pinLockout(p PINLockout) {
	v.intRange("auth.pin_lockout.failures", p.Failures, 1, maxLockoutFailures)
	if p.Window < minLockoutWindow || p.Window > maxLockoutWindow {
		v.fail("auth.pin_lockout.window", "%s out of range 1s..24h", p.Window)
	}
	okLockout := p.Lockout >= minLockout && p.Lockout <= maxLockoutMax
	if !okLockout {
		v.fail("auth.pin_lockout.lockout", "%s out of range 1s..168h", p.Lockout)
	}
	switch {
	case p.LockoutMax > maxLockoutMax:
		v.fail("auth.pin_lockout.lockout_max", "%s above 168h", p.LockoutMax)
	case okLockout && p.LockoutMax < p.Lockout:
		v.fail("auth.pin_lockout.lockout_max", "%s below auth.pin_lockout.lockout (%s)", p.LockoutMax, p.Lockout)
	}
	okFailures := p.Failures >= 1 && p.Failures <= maxLockoutFailures
	if v.intRange("auth.pin_lockout.room_failures", p.RoomFailures, 0, maxRoomFailures) &&
		okFailures && p.RoomFailures > 0 && p.RoomFailures < p.Failures {
		v.fail("auth.pin_lockout.room_failures", "%d below auth.pin_lockout.failures (%d)", p.RoomFailures, p.Failures)
	}
}
