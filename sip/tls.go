package sip

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// SIP over TLS (RFC 3261 §26.2, §18): carriers and softphones that protect
// their signalling connect to a TLS listener of its own, by convention on
// port 5061 (§19.1.2). Everything above the transport is the same as for
// TCP; only the Contact of a call differs, so that the caller's in-dialog
// requests come back over TLS too.

// tlsOptions is the TLS listener WithTLS asks for.
type tlsOptions struct {
	listen string
	cfg    *tls.Config
}

// WithTLS makes the UA listen for SIP over TLS as well, on listen
// (host:port, sip.tls.listen; port 0 picks a free one), with cfg holding
// the certificate (sip.tls.cert, sip.tls.key). Calls that arrive over TLS
// get a Contact on the TLS port: a sips: URI when they were addressed to
// one (RFC 3261 §8.1.1.8 requires it), else sip: with transport=tls. A nil
// cfg means no TLS listener. TLS versions below 1.2 are refused unless cfg
// sets MinVersion (RFC 8996 deprecates 1.0 and 1.1).
func WithTLS(listen string, cfg *tls.Config) Option {
	return func(o *options) { o.tls = tlsOptions{listen: listen, cfg: cfg} }
}

// listenTLS binds the TLS listener when WithTLS asked for one.
func (u *UA) listenTLS() error {
	o := u.opts.tls
	if o.cfg == nil {
		return nil
	}
	if len(o.cfg.Certificates) == 0 && o.cfg.GetCertificate == nil && o.cfg.GetConfigForClient == nil {
		return fmt.Errorf("%w: tls without a certificate", ErrConfig)
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("%w: tls listen %q: %v", ErrConfig, o.listen, err)
	}
	if _, err := netip.ParseAddr(host); host != "" && err != nil {
		return fmt.Errorf("%w: tls listen host %q is not an ip address", ErrConfig, host)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("sip: listen tls: %w", err)
	}
	cfg := o.cfg.Clone()
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	u.tls = tls.NewListener(ln, cfg)
	u.tlsPort = ln.Addr().(*net.TCPAddr).Port
	return nil
}

// serveTLS starts the TLS listener's serve loop, if there is one.
func (u *UA) serveTLS() {
	if u.tls == nil {
		return
	}
	u.serve.Add(1)
	go func() { defer u.serve.Done(); _ = u.srv.ServeTLS(u.screenAccept(u.tls)) }()
}

// portFor is our port for a transport: the TLS listener's for TLS, the
// UDP and TCP one otherwise.
func (u *UA) portFor(transport string) int {
	if strings.EqualFold(transport, "TLS") {
		return u.tlsPort
	}
	return u.port
}

// contact is our Contact header for a call (RFC 3261 §8.1.1.8) on the
// transport and with the scheme the INVITE came with.
func (u *UA) contact(ip netip.Addr, req *sip.Request) sip.ContactHeader {
	uri := sip.Uri{Scheme: "sip", Host: ip.String(), Port: u.portFor(req.Transport())}
	switch strings.ToUpper(req.Transport()) {
	case "TCP":
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", "tcp")
	case "TLS":
		if strings.EqualFold(req.Recipient.Scheme, "sips") {
			uri.Scheme = "sips" // TLS is implied (RFC 3261 §19.1.2)
			break
		}
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", "tls")
	}
	return sip.ContactHeader{Address: uri}
}
