package cluster

import "errors"

// Errors returned by every implementation of the cluster interfaces, so callers
// test with errors.Is and never care whether memory or Redis answered.
var (
	// ErrLeaseHeld is returned by Acquire when another holder owns the room;
	// the caller should redirect to the owner instead of creating the room.
	ErrLeaseHeld = errors.New("cluster: room lease held by another node")
	// ErrLeaseLost is returned by Renew and Release when the lease expired or
	// was taken over: the holder must stop acting as the room's owner at once.
	ErrLeaseLost = errors.New("cluster: room lease lost")
	// ErrStaleEpoch is returned by fence checks when a side effect carries an
	// epoch older than the room's current one (decision 4: refuse stale writers).
	ErrStaleEpoch = errors.New("cluster: stale room epoch")
	// ErrNoOwner is returned by Owner when no node holds the room.
	ErrNoOwner = errors.New("cluster: room has no owner")
	// ErrNotFound is returned by lookups of one item (a recording) that
	// the cluster does not know.
	ErrNotFound = errors.New("cluster: not found")
	// ErrBackend wraps failures of the shared store (Redis unreachable, timeout),
	// so callers can tell "the answer is no" from "nobody could answer".
	ErrBackend = errors.New("cluster: backend unavailable")
)
