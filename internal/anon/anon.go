// Package anon cuts IP addresses down to their network before they reach
// a log line or an audit entry (decision 8): an IPv4 address keeps its
// /24, an IPv6 address its /48. An operator who must see whole addresses
// (log.anonymize_ips: false) turns that off for the whole process with
// SetEnabled(false).
package anon

import (
	"net/netip"
	"sync/atomic"
)

// Prefix lengths kept of an address while anonymising.
const (
	IPv4Bits = 24
	IPv6Bits = 48
)

// off is the inverse of the setting, so that the zero value anonymises.
var off atomic.Bool

// SetEnabled turns anonymisation on (the default) or off for the process.
func SetEnabled(on bool) { off.Store(!on) }

// Enabled reports whether addresses are anonymised.
func Enabled() bool { return !off.Load() }

// Prefix is the network a of which may be logged: its /24 or /48, or the
// whole address (/32, /128) when anonymisation is off. An IPv4-mapped IPv6
// address counts as IPv4; a zone is dropped. The zero Addr gives the zero
// Prefix.
func Prefix(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := a.BitLen()
	if Enabled() {
		bits = IPv6Bits
		if a.Is4() {
			bits = IPv4Bits
		}
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// Addr is a with its host part cleared: the first address of Prefix(a).
func Addr(a netip.Addr) netip.Addr { return Prefix(a).Addr() }
