package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/internal/testcert"
)

// trusting returns an HTTPS client that trusts the PEM certificate in
// file, and only it.
func trusting(t *testing.T, file string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(file)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// getHealthz asks base's /healthz with c and returns the response (body
// read) and its body.
func getHealthz(t *testing.T, c *http.Client, base string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(base + "/healthz")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, string(b)
}

// requirePlainHTTPFails: plain HTTP to the HTTPS port gets no page.
func requirePlainHTTPFails(t *testing.T, g *gateway) {
	t.Helper()
	plain := "http://" + strings.TrimPrefix(g.base, "https://")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(plain + "/healthz")
	if err != nil {
		return // refused outright is fine too
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, string(b), "HTTPS")
	require.NotContains(t, string(b), `"version"`)
}

// TestHTTPSConfigured: with http.tls_cert and http.tls_key the listener
// serves HTTPS only (HTTP/2 offered), and the ready line says so.
func TestHTTPSConfigured(t *testing.T) {
	cert, key := testcert.WriteSelfSigned(t)
	g := startGateway(t, nil, "MEDIAGATE_HTTP_TLS_CERT="+cert, "MEDIAGATE_HTTP_TLS_KEY="+key)
	require.True(t, strings.HasPrefix(g.base, "https://127.0.0.1:"), g.base)
	require.Contains(t, g.ready, "http=https://127.0.0.1:")
	resp, body := getHealthz(t, trusting(t, cert), g.base)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `"version":"test-1"`)
	require.NotNil(t, resp.TLS)
	require.Equal(t, "HTTP/2.0", resp.Proto)
	requirePlainHTTPFails(t, g)

	// a client that does not trust the certificate is refused
	_, err := (&http.Client{Timeout: 10 * time.Second}).Get(g.base + "/healthz")
	require.ErrorContains(t, err, "certificate")
}

// TestHTTPSSelfSigned: http.tls_self_signed makes a certificate at the
// first start, says in the log that it is self-signed, keeps it in
// storage.dir, and serves the same one after a restart.
func TestHTTPSSelfSigned(t *testing.T) {
	dir := t.TempDir()
	key, keyEnv := newAdminKey()
	g := startGatewayIn(t, dir, nil, "MEDIAGATE_HTTP_TLS_SELF_SIGNED=true", keyEnv)
	certFile := filepath.Join(dir, "data", configs.SelfSignedCertFile)
	keyFile := filepath.Join(dir, "data", configs.SelfSignedKeyFile)
	first, err := os.ReadFile(certFile)
	require.NoError(t, err)
	st, err := os.Stat(keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the key is private")
	requireLog(t, g, "self-signed certificate", "generated=true")

	c := trusting(t, certFile) // trusting the generated certificate, no InsecureSkipVerify
	resp, _ := getHealthz(t, c, g.base)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	served := resp.TLS.PeerCertificates[0]
	requirePlainHTTPFails(t, g)

	// the CLI trusts it through SSL_CERT_FILE (crypto/x509), and only then
	as := []string{"MEDIAGATE_SERVER=" + g.base, "MEDIAGATE_API_KEY=" + key}
	_, errOut, code := cli(t, as, "recordings", "ls")
	require.Equal(t, exitFailed, code)
	require.Contains(t, errOut, "certificate")
	out, errOut, code := cli(t, append(as, "SSL_CERT_FILE="+certFile), "recordings", "ls")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "ID")

	require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, g.wait(t))
	g = startGatewayIn(t, dir, nil, "MEDIAGATE_HTTP_TLS_SELF_SIGNED=true")
	requireLog(t, g, "self-signed certificate", "generated=false")
	again, err := os.ReadFile(certFile)
	require.NoError(t, err)
	require.Equal(t, first, again, "the same certificate across restarts")
	resp, _ = getHealthz(t, trusting(t, certFile), g.base)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, served.Equal(resp.TLS.PeerCertificates[0]))
}

// requireLog waits for a log line holding every one of parts.
func requireLog(t *testing.T, g *gateway, parts ...string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-g.logs:
			if !ok {
				t.Fatalf("no log line with %q", parts)
			}
			all := true
			for _, p := range parts {
				all = all && strings.Contains(l, p)
			}
			if all {
				return
			}
		case <-deadline:
			t.Fatalf("no log line with %q within 10 s", parts)
		}
	}
}
