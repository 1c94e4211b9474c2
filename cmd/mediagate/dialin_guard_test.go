package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/sip"
)

// TestGuardConfigDefaults: sip.guard's defaults are package sip's.
func TestGuardConfigDefaults(t *testing.T) {
	require.Equal(t, sip.DefaultGuardConfig(), guardConfig(configs.Default().SIP.Guard))
}

// TestDialInGuard: `mediagate serve` with the default sip.guard drops a
// scanner's OPTIONS unanswered and bans its source (logged), while
// another source is answered.
func TestDialInGuard(t *testing.T) {
	g := startDialIn(t)
	options := func(src, userAgent string) string {
		t.Helper()
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(src+":0")))
		require.NoError(t, err)
		defer c.Close()
		local := c.LocalAddr().String()
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%d;rport\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:probe@%s>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: guard-%s\r\n"+
			"CSeq: 1 OPTIONS\r\nUser-Agent: %s\r\nContent-Length: 0\r\n\r\n",
			g.sip, local, time.Now().UnixNano(), local, g.sip, local, userAgent)
		_, err = c.WriteToUDP([]byte(msg), net.UDPAddrFromAddrPort(g.sip))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			return "" // no answer
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		return line
	}
	require.Empty(t, options("127.0.0.12", "friendly-scanner"), "a scanner gets no answer")
	g.logs.await(t, 5*time.Second, "sip source banned", "scanner user agent")
	require.Empty(t, options("127.0.0.12", "Linphone/5.2"), "banned")
	require.Equal(t, "SIP/2.0 200 OK", options("127.0.0.13", "Linphone/5.2"))
}
