package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMaskNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+4930123456", "*********56"},
		{"1000", "**00"},
		{"12", "**"},
		{"", "**"},
		{"alice", "***ce"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, MaskNumber(tt.in))
	}
	n := Number("+4930123456")
	require.Equal(t, "*********56", n.String())
	require.Equal(t, "*********56", fmt.Sprint(n))
	require.NotContains(t, fmt.Sprintf("%#v %v %s", n, n, n), "30123")
	require.Equal(t, "+4930123456", n.Digits())
}

func TestAnonymizeAddr(t *testing.T) {
	require.Equal(t, "192.0.2.0/24", AnonymizeAddr(netip.MustParseAddr("192.0.2.77")).String())
	require.Equal(t, "2001:db8:1::/48", AnonymizeAddr(netip.MustParseAddr("2001:db8:1:2::99")).String())
	require.Equal(t, "192.0.2.0/24", AnonymizeAddr(netip.MustParseAddr("::ffff:192.0.2.77")).String())
}

func TestRedactText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"INVITE sip:+4930123456@192.0.2.7:5060 SIP/2.0", "INVITE sip:*********56@192.0.2.0:5060 SIP/2.0"},
		{"From: <sips:alice@[2001:db8:1:2::99]>", "From: <sips:***ce@[2001:db8:1::]>"},
		{"tel:+4930123456", "tel:*********56"},
		{"sip:192.0.2.7;transport=tcp", "sip:192.0.2.0;transport=tcp"},
		{"caller 004930123456 dialed", "caller **********56 dialed"},
		{"port 5060 ok", "port 5060 ok"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, redactText(tt.in))
	}
	require.Equal(t, "a84b4c76e66710@192.0.2.0", CallID("a84b4c76e66710@192.0.2.4").LogValue().String())
}

// TestStackLogger: sipgo's records below the level are dropped, raw
// messages are replaced by their size, and numbers and addresses in
// everything else are redacted.
func TestStackLogger(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := StackLogger(base, slog.LevelWarn).With("raddr", "192.0.2.7:5060")
	l.Info("transaction created", "req", "INVITE sip:+4930123456@192.0.2.7")
	require.Empty(t, buf.String(), "below the stack level")
	l.Error("failed to parse", "data", "INVITE sip:+4930123456@192.0.2.7 SIP/2.0\r\n\r\n",
		"error", fmt.Errorf("bad header From: <sip:+4930123456@192.0.2.7>"),
		slog.Group("g", "src", "[2001:db8:1:2::99]:5060"))
	out := buf.String()
	require.Contains(t, out, "component=sipgo")
	require.Contains(t, out, `data="[44 bytes]"`)
	require.Contains(t, out, "192.0.2.0")
	require.Contains(t, out, "*********56")
	require.Contains(t, out, "2001:db8:1::")
	for _, secret := range []string{"30123456", "192.0.2.7", "2::99"} {
		require.NotContains(t, out, secret)
	}
	require.Contains(t, out, "level=WARN", "a packet sipgo cannot parse is no error of ours")
	require.NotContains(t, out, "level=ERROR")

	// A scan: one line per parseLogEvery, with what was held back.
	buf.Reset()
	for range 50 {
		l.Error("failed to parse", "data", "garbage", "error", errors.New("bad"))
	}
	require.Equal(t, 0, strings.Count(buf.String(), "failed to parse"), "the first line of this window was logged above")
	later := slog.NewRecord(time.Now().Add(parseLogEvery+time.Second), slog.LevelError, "failed to parse", 0)
	require.NoError(t, l.Handler().Handle(context.Background(), later))
	require.Contains(t, buf.String(), "held_back=50")
	require.Contains(t, buf.String(), "level=WARN")
}
