package sip

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/mediagate/mediagate/internal/testcert"
	"github.com/stretchr/testify/require"
)

// The Debian build of sipp (3.6.1) has no TLS ("To use a TLS transport
// you must compile SIPp with OpenSSL"), so the TLS tests use two other real
// peers: sipgo's client over TLS for whole calls, and openssl s_client, a
// TLS stack that is not Go's, for a raw OPTIONS.

// startTLSUA starts a UA with a TLS listener on a free loopback port.
func startTLSUA(t *testing.T, h Handler) (*UA, string) {
	t.Helper()
	certFile, keyFile := testcert.WriteSelfSigned(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	u := startUA(t, h, WithTLS("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}}))
	require.NotZero(t, u.TLSPort())
	require.NotEqual(t, u.Port(), u.TLSPort())
	return u, certFile
}

// TestTLS: whole calls over TLS with sipgo's client trusting the test
// certificate. A call to a sip: URI with transport=tls gets a Contact
// with transport=tls on the TLS port, one to a sips: URI a sips: Contact
// (RFC 3261 §8.1.1.8); BYE works from each side, the gateway's over the
// caller's connection.
func TestTLS(t *testing.T) {
	h := newAnsweringHandler()
	u, certFile := startTLSUA(t, h)
	pemCert, err := os.ReadFile(certFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pemCert))

	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: roots}),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)))
	require.NoError(t, err)
	defer ua.Close()
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname("127.0.0.1"))
	require.NoError(t, err)
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	require.NoError(t, err)
	dc := sipgo.NewDialogClientCache(cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sips", User: "peer", Host: "127.0.0.1"}})
	byes := make(chan struct{}, 1)
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if dc.ReadBye(req, tx) == nil {
			byes <- struct{}{}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rp := newRTPPeer(t, CodecPCMU, 0)
	tlsPort := strconv.Itoa(u.TLSPort())

	for _, tc := range []struct {
		uri, contact string
		byeFromPeer  bool
	}{
		{"sip:2000@127.0.0.1:" + tlsPort + ";transport=tls", "<sip:127.0.0.1:" + tlsPort + ";transport=tls>", true},
		{"sips:2000@127.0.0.1:" + tlsPort, "<sips:127.0.0.1:" + tlsPort + ">", false},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			var to sip.Uri
			require.NoError(t, sip.ParseUri(tc.uri, &to))
			req := sip.NewRequest(sip.INVITE, to)
			req.SetTransport("TLS")
			req.SetBody(peerOffer(1, rp.port(), CodecPCMU, "sendrecv"))
			req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
			d, err := dc.WriteInvite(ctx, req)
			require.NoError(t, err)
			defer d.Close()
			require.NoError(t, d.WaitAnswer(ctx, sipgo.AnswerOptions{}))
			require.Equal(t, tc.contact, d.InviteResponse.Contact().Value())
			require.NoError(t, d.Ack(ctx))
			c := h.call(t)
			require.Equal(t, "TLS", c.Info().Transport)
			if tc.byeFromPeer {
				require.NoError(t, d.Bye(ctx))
				waitDone(t, c)
				require.ErrorIs(t, c.Err(), ErrRemoteHangup)
				return
			}
			require.NoError(t, c.Hangup(ctx))
			require.ErrorIs(t, c.Err(), ErrLocalHangup)
			select {
			case <-byes:
			case <-ctx.Done():
				t.Fatal("the caller got no BYE over its TLS connection")
			}
		})
	}
}

// TestTLSOpenSSL: openssl s_client, verifying the test certificate for
// 127.0.0.1, sends OPTIONS over TLS and gets 200 with our Allow; a plain
// TCP client on the TLS port gets no SIP answer.
func TestTLSOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	require.NoError(t, err, "openssl not installed")
	u, certFile := startTLSUA(t, newAnsweringHandler())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", "127.0.0.1:"+strconv.Itoa(u.TLSPort()),
		"-CAfile", certFile, "-verify_return_error", "-verify_ip", "127.0.0.1", "-quiet", "-no_ign_eof")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	msg := strings.Join([]string{
		"OPTIONS sip:2000@127.0.0.1:" + strconv.Itoa(u.TLSPort()) + ";transport=tls SIP/2.0",
		"Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-openssl-1",
		"From: <sip:probe@127.0.0.1>;tag=openssl1",
		"To: <sip:2000@127.0.0.1>",
		"Call-ID: openssl-probe-1",
		"CSeq: 1 OPTIONS",
		"Max-Forwards: 70",
		"Content-Length: 0",
		"", "",
	}, "\r\n")
	_, err = io.WriteString(stdin, msg)
	require.NoError(t, err)

	lines := make(chan string, 32)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
	}()
	var got []string
	for line := range lines {
		got = append(got, line)
		if line == "" && len(got) > 1 {
			break // end of the response's headers
		}
	}
	require.NotEmpty(t, got, "openssl: %s", stderr.String())
	require.Equal(t, "SIP/2.0 200 OK", got[0], "openssl: %s", stderr.String())
	require.Contains(t, got, "Allow: "+allowed)
	require.Contains(t, got, "Supported: timer")
	_ = stdin.Close()
	for range lines { // drain until openssl exits
	}

	// Plain TCP on the TLS port: no handshake, no SIP.
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(u.TLSPort()), 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, msg)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(2*time.Second)))
	b := make([]byte, 64)
	n, _ := conn.Read(b)
	require.NotContains(t, string(b[:n]), "SIP/2.0")
}

// lockedBuffer collects a process's output for error messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
