package cluster

import (
	"crypto/rand"
	"encoding/hex"
)

// newToken returns an unguessable lease token, so a node can never renew or
// release a lease it did not acquire, even one with the same node ID.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b[:])
}
