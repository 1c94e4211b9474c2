package bridge

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/sip"
)

// TestPINLockoutKey: callers are told apart by address (IPv4 /32, IPv6
// /64) unless they come from a trunk, where the carrier's address is
// everyone's and the calling number (hashed: no number in the shared
// state) tells them apart.
func TestPINLockoutKey(t *testing.T) {
	src := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	a := pinLockoutKey("board", sip.CallInfo{Source: src("192.0.2.7:5060"), Caller: "+4930111"})
	require.Equal(t, "pin-ivr:board:192.0.2.7/32", a)
	require.Equal(t, a, pinLockoutKey("board", sip.CallInfo{Source: src("[::ffff:192.0.2.7]:5062")}))
	require.NotEqual(t, a, pinLockoutKey("annex", sip.CallInfo{Source: src("192.0.2.7:5060")}))
	require.Equal(t, "pin-ivr:board:2001:db8:1:2::/64",
		pinLockoutKey("board", sip.CallInfo{Source: src("[2001:db8:1:2:aaaa::1]:5060")}))

	t1 := pinLockoutKey("board", sip.CallInfo{Source: src("203.0.113.5:5060"), Trunk: "carrier", Caller: "+4930111"})
	t2 := pinLockoutKey("board", sip.CallInfo{Source: src("203.0.113.5:5060"), Trunk: "carrier", Caller: "+4930222"})
	require.NotEqual(t, t1, t2, "two callers of one carrier")
	require.NotContains(t, t1, "4930111")
	require.Equal(t, t1, pinLockoutKey("board", sip.CallInfo{Source: src("203.0.113.9:5060"), Trunk: "carrier", Caller: "+4930111"}))
}
