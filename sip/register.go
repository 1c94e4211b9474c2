package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Registration trunks (RFC 3261 §10): the UA keeps a binding of its
// contact at the trunk's registrar, refreshes it before it lapses, retries
// with backoff after failures and removes it when the UA closes.

// Timing of registrations.
const (
	// retryBase and retryMax bound the backoff after failed REGISTERs:
	// 2 s doubling per failure up to 5 min, each wait drawn from its
	// upper half so that many nodes restarted together spread out.
	retryBase = 2 * time.Second
	retryMax  = 5 * time.Minute
	// minRefresh keeps a registrar that grants a second or less from
	// making us loop.
	minRefresh = time.Second
	// unregisterTimeout bounds the un-REGISTER at Close (challenge
	// included): a dead registrar must not hold up the node's shutdown.
	unregisterTimeout = 2 * time.Second
	// maxRegisterRounds bounds the requests of one attempt: a challenge,
	// a stale nonce and a 423 Interval Too Brief each cost one.
	maxRegisterRounds = 4
	// maxExpires is the longest binding we accept to ask for after a 423.
	maxExpires = 24 * time.Hour
)

// RegState is where a registration trunk's binding stands.
type RegState string

// States of a registration.
const (
	// RegRegistering: the first REGISTER has no answer yet.
	RegRegistering RegState = "registering"
	// RegRegistered: the registrar accepted the binding; it is refreshed
	// at Registration.Next.
	RegRegistered RegState = "registered"
	// RegFailed: the last attempt failed (Registration.Err); the next is
	// at Registration.Next.
	RegFailed RegState = "failed"
	// RegUnregistered: the UA closed; the binding was removed, or never
	// existed.
	RegUnregistered RegState = "unregistered"
)

// Registration is the state of one registration trunk, for logs, health
// checks and metrics.
type Registration struct {
	// Trunk is the trunk's name.
	Trunk string
	// State is where the binding stands.
	State RegState
	// Expires is the lifetime the registrar granted at the last success.
	Expires time.Duration
	// Next is when the next refresh (registered) or retry (failed) is due.
	Next time.Time
	// Successes counts accepted REGISTERs, refreshes included.
	Successes int
	// Failures counts failed attempts since the last success.
	Failures int
	// Err is why the last attempt failed (ErrRegisterAuth,
	// ErrRegisterRefused, a transport error); nil after a success. Its
	// text has addresses and numbers redacted, so it can be logged as is.
	Err error
}

// redactedError shows an error's text redacted (redactText) and unwraps
// to it, so errors.Is still finds ErrRegisterAuth and the like.
type redactedError struct{ err error }

func (e *redactedError) Error() string { return redactText(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }

// Registrations returns the state of every registration trunk, by name.
func (u *UA) Registrations() []Registration {
	var out []Registration
	for _, t := range u.trunks().trunks {
		if t.reg != nil {
			out = append(out, t.reg.snapshot())
		}
	}
	return out
}

// registration keeps one trunk's binding. Its goroutine (run) owns cseq
// and the requests; mu guards what others read.
type registration struct {
	t         *Trunk
	uri       sip.Uri // Request-URI: the registrar, no user (RFC 3261 §10.2)
	transport string
	callID    string // one Call-ID for all our REGISTERs (RFC 3261 §10.2.4)
	tag       string
	cseq      uint32
	ua        *UA
	log       *slog.Logger
	stop      context.CancelFunc // ends run: SetTrunks removed or changed the trunk
	done      chan struct{}      // closed when run returned

	mu    sync.Mutex
	snap  Registration
	addrs []netip.Addr // the registrar's, for inbound matching
	until time.Time    // the binding lives until then
}

// newRegistration prepares t's registration; t.Registrar must parse.
func newRegistration(t *Trunk) (*registration, error) {
	uri, transport, err := parseRegistrar(t.Registrar)
	if err != nil {
		return nil, err
	}
	r := &registration{t: t, uri: uri, transport: transport, callID: randHex(16), tag: randHex(8),
		snap: Registration{Trunk: t.Name, State: RegRegistering}}
	if a, err := netip.ParseAddr(strings.Trim(uri.Host, "[]")); err == nil {
		r.addrs = []netip.Addr{a.Unmap()}
	}
	return r, nil
}

// parseRegistrar reads a registrar given as a SIP URI or host:port and
// returns the Request-URI and the transport (UDP, or TCP with
// ;transport=tcp).
func parseRegistrar(s string) (sip.Uri, string, error) {
	if s == "" {
		return sip.Uri{}, "", errors.New("register needs a registrar")
	}
	raw := s
	if l := strings.ToLower(s); !strings.HasPrefix(l, "sip:") && !strings.HasPrefix(l, "sips:") {
		raw = "sip:" + s
	}
	var uri sip.Uri
	if err := sip.ParseUri(raw, &uri); err != nil || uri.Host == "" {
		return sip.Uri{}, "", fmt.Errorf("registrar is not a sip uri or host:port")
	}
	if uri.Scheme != "sip" {
		return sip.Uri{}, "", fmt.Errorf("registrar scheme %q is not supported (only sip)", uri.Scheme)
	}
	if uri.User != "" {
		return sip.Uri{}, "", fmt.Errorf("registrar has a user part (RFC 3261 §10.2: the Request-URI names the domain)")
	}
	transport := "UDP"
	if tp, ok := uri.UriParams.Get("transport"); ok {
		switch strings.ToLower(tp) {
		case "udp":
		case "tcp":
			transport = "TCP"
		default:
			return sip.Uri{}, "", fmt.Errorf("registrar transport %q is not udp or tcp", tp)
		}
	}
	return uri, transport, nil
}

// randHex returns n random bytes in hex, for Call-IDs and tags.
func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startRegistrations starts one goroutine per registration trunk, owned
// by the UA: Close cancels u.ctx, each un-REGISTERs and ends, and Close
// waits for them with the handlers (u.wg). It must run before ServeUDP:
// a REGISTER leaves from the listening socket, which sipgo's transport
// knows only once its serve loop began, so u.udp is wrapped to say when
// that happened (the loop's first read, u.served). Registration trunks
// that SetTrunks adds later wait for the same moment.
func (u *UA) startRegistrations() {
	u.served = make(chan struct{})
	u.udp = &servingConn{PacketConn: u.udp, ready: u.served}
	for _, t := range u.trunks().trunks {
		if t.reg != nil {
			u.startRegistration(t, nil)
		}
	}
}

// startRegistration starts t's registration goroutine; it begins once
// after (when not nil) is closed: the goroutine of the registration it
// replaces has removed its binding by then, so that un-REGISTER cannot
// remove the new one. The caller holds u.mu or runs before the UA serves.
func (u *UA) startRegistration(t *trunk, after <-chan struct{}) {
	ctx, stop := context.WithCancel(u.ctx)
	t.reg.ua, t.reg.log, t.reg.stop, t.reg.done = u, u.log.With("trunk", t.Name), stop, make(chan struct{})
	u.wg.Add(1)
	go func() {
		defer close(t.reg.done)
		if after != nil {
			select {
			case <-after:
			case <-ctx.Done():
			}
		}
		t.reg.run(ctx, u.served)
	}()
}

// servingConn is the UDP listener, closing ready when sipgo first reads
// from it, by which time sipgo's transport has it in its pool.
type servingConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

// ReadFrom marks the listener as served, then reads.
func (c *servingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	return c.PacketConn.ReadFrom(b)
}

// run registers, refreshes and retries until ctx ends, then removes the
// binding. It begins once the listener is served (ready).
func (r *registration) run(ctx context.Context, ready <-chan struct{}) {
	defer r.ua.wg.Done()
	select {
	case <-ready:
	case <-ctx.Done():
		r.unregister()
		return
	}
	failures := 0
	for {
		granted, retryAfter, err := r.register(ctx, r.t.Expires)
		if ctx.Err() != nil {
			break
		}
		var wait time.Duration
		if err != nil {
			failures++
			wait = min(max(backoff(failures), retryAfter), retryMax)
			r.failed(err, failures, wait)
		} else {
			failures = 0
			wait = max(granted/2, minRefresh)
			r.registered(granted, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	r.unregister()
}

// backoff is the wait after the n-th failure in a row (n ≥ 1): retryBase
// doubling up to retryMax, drawn from its upper half.
func backoff(n int) time.Duration {
	d := retryMax
	if n < 20 {
		d = min(retryBase<<(n-1), retryMax)
	}
	return d/2 + mrand.N(d/2+1)
}

// registered records a success: refresh after half the granted lifetime
// (RFC 3261 §10.2.4 leaves the moment to the UA; half leaves the other
// half for retries before the binding lapses).
func (r *registration) registered(granted, refresh time.Duration) {
	r.mu.Lock()
	first := r.snap.State != RegRegistered
	now := time.Now()
	r.until = now.Add(granted)
	r.snap.State, r.snap.Expires, r.snap.Next = RegRegistered, granted, now.Add(refresh)
	r.snap.Successes++
	r.snap.Failures, r.snap.Err = 0, nil
	r.mu.Unlock()
	level := slog.LevelDebug
	if first {
		level = slog.LevelInfo
	}
	r.log.Log(context.Background(), level, "trunk registered", "expires", granted, "refresh_in", refresh)
}

// failed records a failed attempt.
func (r *registration) failed(err error, failures int, retry time.Duration) {
	err = &redactedError{err}
	r.mu.Lock()
	r.snap.State, r.snap.Next, r.snap.Failures, r.snap.Err = RegFailed, time.Now().Add(retry), failures, err
	r.mu.Unlock()
	r.log.Warn("trunk registration failed", "err", err.Error(), "failures", failures, "retry_in", retry)
}

// snapshot returns the current state.
func (r *registration) snapshot() Registration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snap
}

// from reports whether a is one of the registrar's addresses.
func (r *registration) from(a netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.addrs, a)
}

// unregister removes a binding that may still live (RFC 3261 §10.2.2:
// Expires 0 for our contact), bounded by unregisterTimeout even though
// the UA's context is gone: teardown outlives cancellation (STYLE 10).
func (r *registration) unregister() {
	r.mu.Lock()
	live := time.Now().Before(r.until)
	r.mu.Unlock()
	var err error
	if live {
		ctx, cancel := context.WithTimeout(context.Background(), unregisterTimeout)
		_, _, err = r.register(ctx, 0)
		cancel()
	}
	r.mu.Lock()
	r.snap.State, r.snap.Next, r.until = RegUnregistered, time.Time{}, time.Time{}
	r.mu.Unlock()
	switch {
	case err != nil:
		r.log.Warn("trunk un-registration failed", "err", redactText(err.Error()))
	case live:
		r.log.Info("trunk unregistered")
	}
}

// register runs one REGISTER asking for expires, answering a challenge
// and a 423, and returns the lifetime granted, or the error and how long
// the registrar asked us to wait (Retry-After).
func (r *registration) register(ctx context.Context, expires time.Duration) (time.Duration, time.Duration, error) {
	dst, err := r.resolve(ctx)
	if err != nil {
		return 0, 0, err
	}
	var chal *digestChallenge
	for range maxRegisterRounds {
		req, contact := r.request(dst, expires, chal)
		res, err := r.ua.client.Do(ctx, req)
		if err != nil {
			return 0, 0, fmt.Errorf("register: %w", err)
		}
		switch code := res.StatusCode; {
		case code >= 200 && code < 300:
			return grantedExpiry(res, contact, expires), 0, nil
		case code == 401 || code == 407:
			c, err := pickChallenge(res, r.t.Realm)
			if err != nil {
				return 0, 0, err
			}
			if chal != nil && !c.stale { // RFC 3261 §22.2: our answer was refused
				return 0, 0, fmt.Errorf("%w: %d %s", ErrRegisterAuth, code, res.Reason)
			}
			chal = &c
		case code == 423: // Interval Too Brief (RFC 3261 §10.2.8)
			least := headerSeconds(res, "Min-Expires")
			if least <= expires || least > maxExpires {
				return 0, 0, fmt.Errorf("%w: 423 with Min-Expires %v", ErrRegisterRefused, least)
			}
			expires = least
		default:
			return 0, headerSeconds(res, "Retry-After"), fmt.Errorf("%w: %d %s", ErrRegisterRefused, code, res.Reason)
		}
	}
	return 0, 0, fmt.Errorf("%w: no answer after %d requests", ErrRegisterRefused, maxRegisterRounds)
}

// resolve looks the registrar up (A/AAAA; RFC 3263 SRV and NAPTR are not
// used) and remembers its addresses for inbound matching.
func (r *registration) resolve(ctx context.Context) (netip.AddrPort, error) {
	port := uint16(5060) // RFC 3261 §19.1.2
	if r.uri.Port > 0 {
		port = uint16(r.uri.Port)
	}
	host := strings.Trim(r.uri.Host, "[]")
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(found) == 0 {
			return netip.AddrPort{}, fmt.Errorf("resolve registrar: %w", err)
		}
		for _, a := range found {
			addrs = append(addrs, a.Unmap())
		}
	}
	r.mu.Lock()
	r.addrs = addrs
	r.mu.Unlock()
	return netip.AddrPortFrom(addrs[0], port), nil
}

// request builds a REGISTER (RFC 3261 §10.2): To and From the
// address-of-record, our Call-ID with the next CSeq, our contact, and the
// answer to chal when there is one. Like BYE it carries our own Via and
// leaves from the SIP port, so the registrar's answers and later INVITEs
// come back there.
func (r *registration) request(dst netip.AddrPort, expires time.Duration, chal *digestChallenge) (*sip.Request, sip.Uri) {
	local := r.ua.localIP(dst.Addr())
	contact := sip.Uri{Scheme: "sip", User: r.t.Username, Host: local.String(), Port: r.ua.port}
	if r.transport == "TCP" {
		contact.UriParams = sip.NewParams()
		contact.UriParams.Add("transport", "tcp")
	}
	req := sip.NewRequest(sip.REGISTER, r.uri)
	req.SetTransport(r.transport)
	req.SetDestination(dst.String())
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: r.transport,
		Host: local.String(), Port: r.ua.port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	via.Params.Add("rport", "") // RFC 3581: a NAT between us and the registrar
	req.AppendHeader(via)
	aor := sip.Uri{Scheme: "sip", User: r.t.Username, Host: r.uri.Host}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", r.tag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	callID := sip.CallIDHeader(r.callID)
	req.AppendHeader(&callID)
	r.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER})
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.AppendHeader(sip.NewHeader("User-Agent", r.ua.opts.name))
	if chal != nil {
		req.AppendHeader(chal.authorize(r.t.Username, r.t.Password, "REGISTER", r.uri.String()))
	}
	req.SetBody(nil)
	if r.transport == "UDP" {
		if la, ok := r.ua.udp.LocalAddr().(*net.UDPAddr); ok {
			req.Laddr = sip.Addr{IP: la.IP, Port: la.Port}
		}
	}
	return req, contact
}

// grantedExpiry is the lifetime a 2xx grants our contact (RFC 3261
// §10.2.4): its Contact's expires parameter, else the Expires header,
// else what we asked for.
func grantedExpiry(res *sip.Response, contact sip.Uri, asked time.Duration) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address.User != contact.User || c.Address.Host != contact.Host || c.Address.Port != contact.Port {
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	if d := headerSeconds(res, "Expires"); d > 0 {
		return d
	}
	return asked
}

// headerSeconds reads a header holding delta-seconds (Expires,
// Min-Expires, Retry-After with an optional comment, RFC 3261 §20.33); 0
// when absent or malformed, capped at maxExpires.
func headerSeconds(res *sip.Response, name string) time.Duration {
	h := res.GetHeader(name)
	if h == nil {
		return 0
	}
	v, _, _ := strings.Cut(strings.TrimSpace(h.Value()), " ")
	v, _, _ = strings.Cut(v, ";")
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxExpires)
}
