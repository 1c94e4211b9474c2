package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/internal/atomicfile"
)

// selfSignedLifetime is how long a generated development certificate is
// valid; a new one is made at the first start after it expires.
const selfSignedLifetime = 365 * 24 * time.Hour

// httpsConfig returns the TLS configuration of the HTTP listener, or nil
// for plain HTTP: the certificate of http.tls_cert and http.tls_key, or
// with http.tls_self_signed the development certificate kept in
// storage.dir (made once). listen is the listener's address, named in a
// new self-signed certificate.
func httpsConfig(cfg configs.HTTP, storageDir string, listen net.Addr, log *slog.Logger) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case cfg.TLSCert != "":
		if cert, err = tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, fmt.Errorf("http.tls_cert, http.tls_key: %w", err)
		}
	case cfg.TLSSelfSigned:
		if cert, err = selfSignedCert(storageDir, listen, log); err != nil {
			return nil, fmt.Errorf("http.tls_self_signed: %w", err)
		}
	default:
		return nil, nil
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// selfSignedCert loads the development certificate from storage.dir, or
// makes it when it is missing or expired, so that a browser that accepted
// it once keeps accepting it across restarts. Either way the log says it
// is self-signed, with its SHA-256 fingerprint to compare with the
// browser's.
func selfSignedCert(dir string, listen net.Addr, log *slog.Logger) (tls.Certificate, error) {
	certFile := filepath.Join(dir, configs.SelfSignedCertFile)
	keyFile := filepath.Join(dir, configs.SelfSignedKeyFile)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	made := false
	switch {
	case err == nil && time.Now().Add(time.Hour).After(cert.Leaf.NotAfter):
		log.Info("self-signed HTTPS certificate expired; making a new one", "file", certFile)
		fallthrough
	case errors.Is(err, fs.ErrNotExist):
		if cert, err = makeSelfSigned(certFile, keyFile, listen); err != nil {
			return tls.Certificate{}, err
		}
		made = true
	case err != nil:
		return tls.Certificate{}, err
	}
	sum := sha256.Sum256(cert.Leaf.Raw)
	log.Warn("serving HTTPS with a self-signed certificate: for development only, browsers will warn",
		"file", certFile, "generated", made, "names", cert.Leaf.DNSNames, "ips", cert.Leaf.IPAddresses,
		"not_after", cert.Leaf.NotAfter, "sha256", hex.EncodeToString(sum[:]))
	return cert, nil
}

// makeSelfSigned writes a new self-signed ECDSA P-256 certificate for
// localhost, this host's name, the loopback addresses and listen's
// address, and its key (0600), each written and fsynced before use.
func makeSelfSigned(certFile, keyFile string, listen net.Addr) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if a, ok := listen.(*net.TCPAddr); ok && !a.IP.IsUnspecified() && !a.IP.IsLoopback() {
		ips = append(ips, a.IP)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "mediagate self-signed (development)"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(selfSignedLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
		// its own issuer: a client may trust it as a CA for itself
		IsCA: true, BasicConstraintsValid: true,
	}
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o750); err != nil {
		return tls.Certificate{}, err
	}
	// the key first: a certificate on disk always has its key
	if err := writeSynced(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeSynced(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certFile, keyFile)
}

// writeSynced replaces path with b (atomicfile: a crash leaves the old
// file or the new one).
func writeSynced(path string, b []byte, mode os.FileMode) error {
	return atomicfile.ReplaceMode(path, b, ".tmp-"+filepath.Base(path)+"-*", mode)
}
