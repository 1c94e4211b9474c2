package stream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// testPKI makes a CA and a server certificate for host (and 127.0.0.1)
// signed by it; it returns the CA and the server's PEM certificate and
// key.
func testPKI(t *testing.T, host string) (*x509.Certificate, []byte, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mediagate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{host}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// feedInBackground plays a tone into mix until the test ends.
func feedInBackground(t *testing.T, mix *mixFeed, seconds int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f := feeder{mix: mix, pcm: mediatest.Sine(440, 0.3, media.Rate48k, seconds*media.Rate48k)}
		f.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestRTMPS: through an nginx TLS front with a test CA, an egress that
// trusts the CA goes live (sending SNI) and the stream is recorded; one
// that trusts only the system roots ends in state error, never live, and
// does not retry.
func TestRTMPS(t *testing.T) {
	t.Parallel()
	ca, certPEM, keyPEM := testPKI(t, "localhost")
	ng := startNginx(t, nginxOpts{certPEM: certPEM, keyPEM: keyPEM})
	url := func(key string) string { return fmt.Sprintf("rtmps://localhost:%d/live/%s", ng.tlsPort, key) }

	ev := newEvents()
	opts := testOptions(ev)
	opts.ExtraRootCAs = []*x509.Certificate{ca}
	mix := newMixFeed()
	eg, err := New(mix, nil, opts)
	require.NoError(t, err)
	defer eg.Close()
	feedInBackground(t, mix, 10)
	id, err := eg.Add(context.Background(), Destination{URL: url("tls")})
	require.NoError(t, err)
	ev.await(t, id, StateLive, 5*time.Second)
	select {
	case <-time.After(2 * time.Second): // stream for 2 s
	case <-eg.Done():
		t.Fatal("egress ended early")
	}
	st, err := eg.Destination(id)
	require.NoError(t, err)
	require.Equal(t, StateLive, st.State)
	require.Equal(t, fmt.Sprintf("rtmps://localhost:%d/live", ng.tlsPort), st.URL)

	// Untrusted: no extra roots.
	ev2 := newEvents()
	opts2 := testOptions(ev2)
	opts2.BackoffMin = 100 * time.Millisecond
	mix2 := newMixFeed()
	eg2, err := New(mix2, nil, opts2)
	require.NoError(t, err)
	defer eg2.Close()
	id2, err := eg2.Add(context.Background(), Destination{URL: url("untrusted")})
	require.NoError(t, err)
	e := ev2.await(t, id2, StateError, 5*time.Second)
	require.ErrorIs(t, e.Err, ErrCertificate)
	require.NotContains(t, ev2.states(id2), StateLive, "went live with an untrusted certificate")
	n := len(ev2.of(id2))
	time.Sleep(500 * time.Millisecond) // 5 backoffs' worth: no retry may come
	require.Len(t, ev2.of(id2), n, "events after the final state: %v", ev2.states(id2))
	st2, err := eg2.Destination(id2)
	require.NoError(t, err)
	require.Equal(t, StateError, st2.State)
	require.Zero(t, st2.Reconnects)
	require.Contains(t, st2.LastError, "certificate")

	require.NoError(t, eg.Close())
	require.NoError(t, eg2.Close())
	sni, err := os.ReadFile(filepath.Join(ng.dir, "sni.log"))
	require.NoError(t, err)
	require.Contains(t, strings.Fields(string(sni)), "localhost", "SNI sent")
	recs := ng.recordings("tls")
	require.Len(t, recs, 1)
	require.Equal(t, map[string]string{"audio": "aac", "video": "h264"}, probe(t, recs[0]).codecs())
	require.Empty(t, ng.recordings("untrusted"))
}
