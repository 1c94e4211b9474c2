package anon

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPrefix(t *testing.T) {
	for _, c := range []struct{ in, on, off string }{
		{"203.0.113.77", "203.0.113.0/24", "203.0.113.77/32"},
		{"::ffff:203.0.113.77", "203.0.113.0/24", "203.0.113.77/32"},
		{"2001:db8:abcd:12:34::1", "2001:db8:abcd::/48", "2001:db8:abcd:12:34::1/128"},
		{"fe80::1%eth0", "fe80::/48", "fe80::1/128"},
	} {
		a := netip.MustParseAddr(c.in)
		require.True(t, Enabled())
		require.Equal(t, c.on, Prefix(a).String(), c.in)
		require.Equal(t, netip.MustParsePrefix(c.on).Addr(), Addr(a), c.in)
		SetEnabled(false)
		require.Equal(t, c.off, Prefix(a).String(), c.in)
		SetEnabled(true)
	}
	require.Equal(t, netip.Prefix{}, Prefix(netip.Addr{}))
}
