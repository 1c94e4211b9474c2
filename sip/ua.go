package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Handler receives incoming calls. The bridge implements it: it looks at
// the dialed number and the caller, then rings, answers or rejects.
type Handler interface {
	// HandleCall runs in its own goroutine for each new INVITE. ctx ends
	// when the caller cancels, the call ends or the UA closes. The handler
	// must give the INVITE a final response (Answer or Reject); if it
	// returns without one the UA answers 480 Temporarily Unavailable. After
	// Answer it may return at once: the Call lives on until one side hangs
	// up.
	HandleCall(ctx context.Context, in *IncomingCall)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, in *IncomingCall)

// HandleCall calls f.
func (f HandlerFunc) HandleCall(ctx context.Context, in *IncomingCall) { f(ctx, in) }

var _ Handler = HandlerFunc(nil)

// allowed is what the UA implements, for Allow headers (RFC 3261 §20.5).
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"

// supported are the extensions the UA implements, for Supported headers
// (RFC 3261 §20.37): session timers (RFC 4028).
const supported = "timer"

// accepted are the bodies the UA understands (RFC 3261 §20.1).
const accepted = "application/sdp, application/dtmf-relay, application/dtmf"

// Option configures a UA.
type Option func(*options)

type options struct {
	log          *slog.Logger
	stackLevel   slog.Leveler
	codecs       []string
	portMin      int
	portMax      int
	sharedRTP    bool
	mediaTimeout time.Duration
	advertise    netip.Addr
	name         string
	trunk        trunkOptions // trunk.go
	session      sessionOptions
	tls          tlsOptions
	guard        *GuardConfig // guard.go; nil: off
	banList      BanList
}

// WithLogger sets the logger; records get component=sip. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithStackLogLevel sets the least severe level of sipgo's own records that
// reach the logger (default Warn: sipgo logs every transaction below).
func WithStackLogLevel(l slog.Leveler) Option { return func(o *options) { o.stackLevel = l } }

// WithCodecs sets the codec preference order (sip.codecs); see
// DefaultCodecs and ParseCodecs. No names keep DefaultCodecs.
func WithCodecs(names ...string) Option {
	return func(o *options) {
		if len(names) > 0 {
			o.codecs = names
		}
	}
}

// WithRTPPorts sets the RTP port range (rtp.port_min, rtp.port_max).
// Default 10000..20000.
func WithRTPPorts(lo, hi int) Option { return func(o *options) { o.portMin, o.portMax = lo, hi } }

// WithSharedRTP puts the calls whose media address a NAT would not have
// rewritten on one RTP/RTCP port pair (the first free one of the range),
// told apart by the address their SDP names (rtp.shared; see rtpMux):
// a third less CPU per caller at a thousand callers. Calls from a private
// address, calls without an offer and a call naming the address of one
// already on the pair keep a pair of their own; a re-INVITE moving a call
// on the pair to another's address is answered 488.
func WithSharedRTP(on bool) Option { return func(o *options) { o.sharedRTP = on } }

// WithMediaTimeout sets how long a call may receive no RTP or RTCP while
// not on hold before it is hung up (sip.media_timeout, default 30 s); 0
// keeps the default.
func WithMediaTimeout(d time.Duration) Option {
	return func(o *options) {
		if d != 0 {
			o.mediaTimeout = d
		}
	}
}

// WithAdvertisedAddr sets the address put in SDP, Contact and Via instead
// of the local one, for a node behind a 1:1 NAT (sip.external_address).
func WithAdvertisedAddr(a netip.Addr) Option { return func(o *options) { o.advertise = a } }

// WithUserAgent sets the User-Agent/Server product name (default
// "mediagate").
func WithUserAgent(name string) Option { return func(o *options) { o.name = name } }

// UA is mediagate's SIP user agent: UDP and TCP listeners on one address,
// the INVITE server side and the calls it answered. New starts it; Close
// hangs up every call and stops it.
type UA struct {
	log     *slog.Logger
	opts    options
	handler Handler
	stack   *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	udp     net.PacketConn
	tcp     net.Listener
	tls     net.Listener // nil without WithTLS
	tlsPort int
	bindIP  netip.Addr // listen host; invalid means all interfaces
	port    int
	ports   *portAllocator
	mux     *rtpMux                  // WithSharedRTP's port pair, or nil
	trs     atomic.Pointer[trunking] // trunk.go: who may call, registrations; SetTrunks replaces it
	trMu    sync.Mutex               // serialises SetTrunks
	served  chan struct{}            // closed once sipgo serves the UDP listener (register.go)
	guard   *guard                   // guard.go: nil without WithGuard

	ctx    context.Context // handlers' base context, cancelled by Close
	cancel context.CancelFunc

	mu       sync.Mutex
	closing  bool
	draining bool                     // new INVITEs get 503, calls go on
	dialogs  map[string]*IncomingCall // by dialog ID (RFC 3261 §12)

	meters callMeters // metrics.go

	wg    sync.WaitGroup // handlers and media goroutines
	serve sync.WaitGroup // the listeners' serve loops
}

// New binds listen (host:port; port 0 picks a free one, the same for UDP and
// TCP) and starts serving; h gets the incoming calls.
func New(listen string, h Handler, opts ...Option) (*UA, error) {
	o := options{
		log: slog.New(slog.DiscardHandler), stackLevel: slog.LevelWarn, codecs: DefaultCodecs,
		portMin: 10000, portMax: 20000, mediaTimeout: 30 * time.Second, name: "mediagate",
		session: defaultSessionOptions(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	codecs, err := ParseCodecs(o.codecs)
	if err != nil {
		return nil, err
	}
	o.codecs = codecs
	if o.mediaTimeout <= 0 {
		return nil, fmt.Errorf("%w: media timeout %v", ErrConfig, o.mediaTimeout)
	}
	if err := o.session.check(); err != nil {
		return nil, err
	}
	u := &UA{log: o.log.With("component", "sip"), opts: o, handler: h, dialogs: map[string]*IncomingCall{},
		meters: newCallMeters()}
	tr, err := newTrunking(o.trunk, o.name, nil)
	if err != nil {
		return nil, err
	}
	u.trs.Store(tr)
	if err := o.guard.check(); err != nil {
		return nil, err
	}
	if err := u.listen(listen); err != nil {
		return nil, err
	}
	if err := u.listenTLS(); err != nil {
		u.closeListeners()
		return nil, err
	}
	if u.ports, err = newPortAllocator(u.bindIP, o.portMin, o.portMax); err != nil {
		u.closeListeners()
		return nil, err
	}
	if o.sharedRTP {
		if u.mux, err = newRTPMux(u.log, u.ports); err != nil {
			u.closeListeners()
			return nil, fmt.Errorf("sip: shared rtp port: %w", err)
		}
	}
	if err := u.startStack(); err != nil {
		u.closeListeners()
		if u.mux != nil {
			u.mux.close(u.ports)
		}
		return nil, err
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	u.startRegistrations() // before ServeUDP: it waits for the listener (register.go)
	u.serve.Add(2)
	go func() { defer u.serve.Done(); _ = u.srv.ServeUDP(u.udp) }()
	go func() { defer u.serve.Done(); _ = u.srv.ServeTCP(u.screenAccept(u.tcp)) }()
	u.serveTLS()
	u.log.Info("sip listening", "port", u.port, "tls_port", u.tlsPort, "codecs", o.codecs)
	u.warnClearKeys()
	return u, nil
}

// listen binds UDP, then TCP on the same port.
func (u *UA) listen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: listen %q: %v", ErrConfig, addr, err)
	}
	if host != "" {
		if u.bindIP, err = netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%w: listen host %q is not an ip address", ErrConfig, host)
		}
	}
	for attempt := 0; ; attempt++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("sip: listen udp: %w", err)
		}
		p := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			u.udp, u.tcp, u.port = udp, tcp, p
			return nil
		}
		_ = udp.Close()
		if port != "0" || attempt == 5 {
			return fmt.Errorf("sip: listen tcp: %w", err)
		}
	}
}

func (u *UA) closeListeners() {
	_ = u.udp.Close()
	_ = u.tcp.Close()
	if u.tls != nil {
		_ = u.tls.Close()
	}
}

// startStack builds sipgo's UA, server and client with our logger.
func (u *UA) startStack() error {
	stackLog := StackLogger(u.log, u.opts.stackLevel)
	stack, err := sipgo.NewUA(
		sipgo.WithUserAgent(u.opts.name),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(stackLog),
			sip.WithTransactionLayerUnhandledResponseHandler(u.onStrayResponse)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(stackLog),
			sip.WithTransportLayerReadFilter(u.readFilter)), // guard.go, then screen.go
	)
	if err != nil {
		return err
	}
	srv, err := sipgo.NewServer(stack, sipgo.WithServerLogger(stackLog))
	if err != nil {
		return err
	}
	client, err := sipgo.NewClient(stack, sipgo.WithClientLogger(stackLog), sipgo.WithClientPort(u.port))
	if err != nil {
		return err
	}
	u.stack, u.srv, u.client = stack, srv, client
	// The guard (guard.go) screens every request before the trunks do.
	u.startGuard()
	srv.OnInvite(u.guarded(u.onInvite)) // admits by itself (trunk.go)
	srv.OnAck(u.guarded(u.onAck))
	srv.OnBye(u.guarded(u.gated(u.onBye)))
	srv.OnCancel(u.guarded(u.gated(u.onCancel)))
	srv.OnInfo(u.guarded(u.gated(u.onInfo)))
	srv.OnUpdate(u.guarded(u.gated(u.onUpdate)))
	srv.OnOptions(u.guarded(u.gated(u.onOptions)))
	srv.OnNoRoute(u.guarded(u.gated(u.onNoRoute)))
	return nil
}

// Port is the UDP and TCP port the UA listens on.
func (u *UA) Port() int { return u.port }

// TLSPort is the port of the TLS listener (WithTLS), 0 without one.
func (u *UA) TLSPort() int { return u.tlsPort }

// Close stops taking calls (new INVITEs and OPTIONS get 503), hangs up every
// call with BYE, waits for handlers and media goroutines to end (bounded by
// ctx) and closes the listeners. BYEs are sent even when ctx is already
// cancelled (each bounded by its own timeout): teardown outlives
// cancellation (STYLE 10).
func (u *UA) Close(ctx context.Context) error {
	u.mu.Lock()
	if u.closing {
		u.mu.Unlock()
		return nil
	}
	u.closing = true
	pending := make([]*IncomingCall, 0, len(u.dialogs))
	for _, in := range u.dialogs {
		pending = append(pending, in)
	}
	u.mu.Unlock()
	u.cancel()

	var hangups sync.WaitGroup
	for _, in := range pending {
		if c := in.answeredCall(); c != nil {
			hangups.Add(1)
			go func() { defer hangups.Done(); _ = c.Hangup(ctx) }()
		}
	}
	hangups.Wait()

	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("sip: close: %w", ctx.Err())
	}
	u.closeListeners()
	_ = u.stack.Close()
	u.serve.Wait()
	if u.mux != nil {
		u.mux.close(u.ports) // after the calls' media (u.wg), unless ctx ended first
	}
	if u.guard != nil {
		u.guard.close()
	}
	return err
}

// Drain makes the UA refuse new calls with 503 Service Unavailable and
// Retry-After (RFC 3261 §21.5.4), so carriers try another node, while the
// calls it has go on until they end or Close hangs them up.
func (u *UA) Drain() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.draining = true
}

// Calls returns how many calls (answered or still being set up) the UA has.
func (u *UA) Calls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.dialogs)
}

// refusing reports whether new calls are refused: draining or closing.
func (u *UA) refusing() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.draining || u.closing
}

// isClosing reports whether Close has begun.
func (u *UA) isClosing() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.closing
}

// track registers an INVITE's dialog so ACK, BYE, INFO and re-INVITEs find
// it; it fails once Close has begun.
func (u *UA) track(in *IncomingCall) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closing {
		return ErrClosed
	}
	if u.guard != nil {
		if err := u.guard.takeCall(in.info.Source.Addr().Unmap()); err != nil {
			return err // 503 with Retry-After
		}
	}
	u.dialogs[in.dlg.ID] = in
	return nil
}

// forget drops a dialog that ended.
func (u *UA) forget(in *IncomingCall) {
	u.mu.Lock()
	u.forgetLocked(in)
	u.mu.Unlock()
}

// forgetLocked is forget with u.mu held.
func (u *UA) forgetLocked(in *IncomingCall) {
	if u.dialogs[in.dlg.ID] == in {
		delete(u.dialogs, in.dlg.ID)
		if u.guard != nil {
			u.guard.giveCall(in.info.Source.Addr().Unmap())
		}
	}
}

// lookup finds the dialog an in-dialog request belongs to.
func (u *UA) lookup(req *sip.Request) *IncomingCall {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.dialogs[id]
}

// respond sends a response built from req, logging failures.
func (u *UA) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	if reason == "" {
		reason = reasonPhrase(code)
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		u.log.Debug("sip respond failed", "code", code, "err", redactText(err.Error()))
	}
}

// onOptions answers OPTIONS (RFC 3261 §11.2) with what we support, or 503
// while closing so that carriers' health checks route around the node.
func (u *UA) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if u.isClosing() {
		u.respond(req, tx, 503, "", sip.NewHeader("Retry-After", "30"))
		return
	}
	u.respond(req, tx, 200, "", sip.NewHeader("Allow", allowed), sip.NewHeader("Accept", accepted),
		sip.NewHeader("Accept-Language", "en"), sip.NewHeader("Supported", supported),
		sip.NewHeader("Server", u.opts.name))
}

// onCancel answers a CANCEL that matched no INVITE transaction (matching
// ones are answered by sipgo's transaction layer: 200, then 487 to the
// INVITE): RFC 3261 §9.2 says 481.
func (u *UA) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	u.respond(req, tx, 481, "")
}

// knownMethods are the RFC 3261 and extension methods we recognise but do
// not allow: they get 405 with Allow (RFC 3261 §8.2.1); others get 501
// (§21.5.2).
var knownMethods = map[sip.RequestMethod]bool{
	sip.REGISTER: true, sip.SUBSCRIBE: true, sip.NOTIFY: true, sip.REFER: true,
	sip.MESSAGE: true, sip.PRACK: true, sip.PUBLISH: true,
}

func (u *UA) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	if req.IsAck() {
		return // never answered (RFC 3261 §17.2.3)
	}
	code := 501
	if knownMethods[req.Method] {
		code = 405
	}
	u.respond(req, tx, code, "", sip.NewHeader("Allow", allowed))
}

// localIP is the address we give peer in SDP, Contact and Via: the
// advertised one, the listen address, or the source address the kernel
// picks to reach peer (no packet is sent).
func (u *UA) localIP(peer netip.Addr) netip.Addr {
	if u.opts.advertise.IsValid() {
		return u.opts.advertise
	}
	if u.bindIP.IsValid() && !u.bindIP.IsUnspecified() {
		return u.bindIP
	}
	if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(peer, 9))); err == nil {
		defer c.Close()
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				return ip.Unmap()
			}
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}
