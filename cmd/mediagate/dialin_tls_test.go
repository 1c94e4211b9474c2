package main

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mediagate/mediagate/internal/testcert"
	"github.com/stretchr/testify/require"
)

// TestDialInTLSAndExternalAddress: with sip.tls.cert and sip.tls.key the
// node also listens for SIP over TLS (openssl s_client, verifying the
// test certificate, gets 200 to OPTIONS there: Debian's sipp has no TLS),
// and with sip.external_address a dial-in call's 200 carries that address
// in SDP and Contact (sipp asserts it, along with the session timer).
func TestDialInTLSAndExternalAddress(t *testing.T) {
	for _, tool := range []string{"sipp", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: run scripts/bootstrap", tool)
		}
	}
	certFile, keyFile := testcert.WriteSelfSigned(t)
	g := startGateway(t, nil, "MEDIAGATE_SIP_TLS_LISTEN=127.0.0.1:0", "MEDIAGATE_SIP_TLS_CERT="+certFile,
		"MEDIAGATE_SIP_TLS_KEY="+keyFile, "MEDIAGATE_SIP_EXTERNAL_ADDRESS=203.0.113.9")
	port := regexp.MustCompile(`sip_port=(\d+)`).FindStringSubmatch(g.ready)
	tlsPort := regexp.MustCompile(`sip_tls_port=(\d+)`).FindStringSubmatch(g.ready)
	require.NotNil(t, port, "ready line without sip_port: %s", g.ready)
	require.NotNil(t, tlsPort, "ready line without sip_tls_port: %s", g.ready)
	require.NotEqual(t, "0", tlsPort[1])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scenario, err := filepath.Abs("testdata/dialin_external.xml")
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, "sipp", "127.0.0.1:"+port[1], "-sf", scenario, "-s", "1000", "-m", "1",
		"-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", "0", "-mp", "0",
		"-timeout", "20s", "-timeout_error", "-nostdin", "-trace_err", "-max_recv_loops", "1000")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "sipp: %s", lastLines(string(out), 30))

	ssl := exec.CommandContext(ctx, "openssl", "s_client", "-connect", "127.0.0.1:"+tlsPort[1],
		"-CAfile", certFile, "-verify_return_error", "-verify_ip", "127.0.0.1", "-quiet", "-no_ign_eof")
	stdin, err := ssl.StdinPipe()
	require.NoError(t, err)
	stdout, err := ssl.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, ssl.Start())
	t.Cleanup(func() { _ = ssl.Process.Kill(); _ = ssl.Wait() })
	_, err = io.WriteString(stdin, strings.Join([]string{
		"OPTIONS sip:1000@127.0.0.1:" + tlsPort[1] + ";transport=tls SIP/2.0",
		"Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-dialin-tls-1",
		"From: <sip:probe@127.0.0.1>;tag=probe1",
		"To: <sip:1000@127.0.0.1>",
		"Call-ID: dialin-tls-probe",
		"CSeq: 1 OPTIONS",
		"Max-Forwards: 70",
		"Content-Length: 0",
		"", "",
	}, "\r\n"))
	require.NoError(t, err)
	status := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		status <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case got := <-status:
		require.Equal(t, "SIP/2.0 200 OK", got)
	case <-ctx.Done():
		t.Fatal("no answer to OPTIONS over TLS")
	}
	_ = stdin.Close()
}
