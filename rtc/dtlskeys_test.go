package rtc

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/require"
)

// TestDTLSKeys: the SRTP key and salt dtlsKeys derives from pion's key log
// and ServerHello hook are the DTLS server's write key and salt by the
// connection's own RFC 5705 exporter, for each SRTP profile and for cipher
// suites with either PRF hash; and SRTP a client makes with its side of
// the exporter opens what a context of these keys sealed.
func TestDTLSKeys(t *testing.T) {
	cert, err := selfsign.GenerateSelfSigned()
	require.NoError(t, err)
	for _, suite := range []dtls.CipherSuiteID{
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	} {
		for _, profile := range []dtls.SRTPProtectionProfile{
			dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM,
		} {
			t.Run(fmt.Sprintf("%s/%#04x", dtls.CipherSuiteName(suite), uint16(profile)), func(t *testing.T) {
				dtlsKeysCase(t, cert, suite, profile)
			})
		}
	}
}

func dtlsKeysCase(t *testing.T, cert tls.Certificate, suite dtls.CipherSuiteID, profile dtls.SRTPProtectionProfile) {
	keys := &dtlsKeys{}
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srvCh := make(chan *dtls.Conn, 1)
	errCh := make(chan error, 1)
	go func() {
		c, err := dtls.ServerWithOptions(a, b.LocalAddr(),
			dtls.WithCertificates(cert), dtls.WithCipherSuites(suite), dtls.WithSRTPProtectionProfiles(profile),
			dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
			dtls.WithKeyLogWriter(keys), dtls.WithServerHelloMessageHook(keys.serverHello))
		if err == nil {
			err = c.HandshakeContext(ctx)
		}
		errCh <- err
		srvCh <- c
	}()
	cli, err := dtls.ClientWithOptions(b, a.LocalAddr(),
		dtls.WithCertificates(cert), dtls.WithCipherSuites(suite), dtls.WithSRTPProtectionProfiles(profile),
		dtls.WithInsecureSkipVerify(true))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	require.NoError(t, cli.HandshakeContext(ctx))
	require.NoError(t, <-errCh)
	srv := <-srvCh
	t.Cleanup(func() { _ = srv.Close() })

	got, key, salt, err := keys.srtpKeys()
	require.NoError(t, err)
	require.Equal(t, srtp.ProtectionProfile(profile), got)
	keyLen, err := got.KeyLen()
	require.NoError(t, err)
	saltLen, err := got.SaltLen()
	require.NoError(t, err)
	state, ok := srv.ConnectionState()
	require.True(t, ok)
	want, err := state.ExportKeyingMaterial(exporterLabel, nil, 2*(keyLen+saltLen))
	require.NoError(t, err)
	require.Equal(t, want[keyLen:2*keyLen], key, "server write key")
	require.Equal(t, want[2*keyLen+saltLen:], salt, "server write salt")
	_, _, _, err = keys.srtpKeys()
	require.ErrorIs(t, err, errNoKeys, "the secret is used once")

	// The client's view: its exporter's server half opens the packet.
	cstate, ok := cli.ConnectionState()
	require.True(t, ok)
	m, err := cstate.ExportKeyingMaterial(exporterLabel, nil, 2*(keyLen+saltLen))
	require.NoError(t, err)
	seal, err := srtp.CreateContext(key, salt, got)
	require.NoError(t, err)
	open, err := srtp.CreateContext(m[keyLen:2*keyLen], m[2*keyLen+saltLen:], got)
	require.NoError(t, err)
	plain := []byte{0x80, 111, 0, 1, 0, 0, 3, 192, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5}
	sealed, err := seal.EncryptRTP(nil, plain, nil)
	require.NoError(t, err)
	opened, err := open.DecryptRTP(nil, sealed, nil)
	require.NoError(t, err)
	require.Equal(t, plain, opened)
}

// TestDTLSKeysIncomplete: without the whole handshake (the gateway was the
// DTLS client: no ServerHello of its own) there are no keys, and a
// malformed key log line is refused.
func TestDTLSKeysIncomplete(t *testing.T) {
	k := &dtlsKeys{}
	line := "CLIENT_RANDOM " + fmt.Sprintf("%064x", 7) + " " + fmt.Sprintf("%096x", 9) + "\n"
	n, err := k.Write([]byte(line))
	require.NoError(t, err)
	require.Equal(t, len(line), n)
	_, _, _, err = k.srtpKeys()
	require.ErrorIs(t, err, errNoKeys)
	_, err = k.Write([]byte("CLIENT_RANDOM zz 00\n"))
	require.Error(t, err)
	_, err = k.Write([]byte("SERVER_HANDSHAKE_TRAFFIC_SECRET 00 00\n"))
	require.NoError(t, err, "other labels are not this one's business")
}
