package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// The abuse guard (issue 7) stands between the transports and the
// handlers. Per source IP address it keeps a token bucket of SIP messages,
// counted on the raw read before sipgo parses anything (a UDP datagram, a
// TCP or TLS read); a source that empties its bucket is banned, and the
// messages of banned sources are dropped unread and unanswered, in the
// spirit of Kamailio's pike module. Requests whose User-Agent names a
// known scanner are dropped unanswered too. Sources in a trunk's CIDRs
// (and a registration trunk's registrar) are never limited or banned.
// Bans are shared through a BanList, so that a flooder banned on one
// node is dropped by the others.

// BanList shares bans between nodes. cluster.Memory and cluster.Redis
// (cluster.Bans) implement it; the guard consults it at most once per
// source and sharedRecheck, and pushes its own bans to it in the
// background, so a flood never waits on it.
type BanList interface {
	// Ban refuses addr until the given time; a later Ban replaces the time.
	Ban(ctx context.Context, addr string, until time.Time) error
	// IsBanned reports whether addr is banned now.
	IsBanned(ctx context.Context, addr string) (bool, error)
}

// ErrCallLimit refuses a new call when the caller's source address or the
// whole node has GuardConfig.MaxCallsPerSource or MaxCalls calls: 503
// Service Unavailable with Retry-After (RFC 3261 §21.5.4), so that a
// carrier tries another node.
var ErrCallLimit = &Error{"sip: too many calls", 503}

// GuardConfig sets the abuse guard (sip.guard). Zero values switch the
// part off: Rate 0 limits no rate, MaxCalls 0 caps no calls.
type GuardConfig struct {
	// Rate is how many SIP messages a source may send in Window (the
	// bucket's size; it refills at Rate per Window). Over it, the source
	// is banned.
	Rate int
	// Window is the period Rate is counted over.
	Window time.Duration
	// Ban is how long a source is banned the first time; each further
	// ban of a source doubles it, up to BanMax. A source is forgotten
	// BanMax after its last ban ended.
	Ban time.Duration
	// BanMax is the longest ban.
	BanMax time.Duration
	// ScannerUserAgents are User-Agent substrings (case-insensitive) of
	// SIP scanners, whose requests are dropped unanswered.
	ScannerUserAgents []string
	// BanScanners bans a source whose request named a scanner.
	BanScanners bool
	// MaxCallsPerSource caps the calls (answered or being set up) from
	// one source address; trunk sources have no per-source cap. 0: none.
	MaxCallsPerSource int
	// MaxCalls caps the calls of the UA. 0: none.
	MaxCalls int
}

// DefaultScannerUserAgents are the User-Agent substrings of well-known SIP
// scanners (SIPVicious and its forks, sipcli, and others seen in the
// wild).
var DefaultScannerUserAgents = []string{"friendly-scanner", "sipcli", "sipvicious", "SIP Call",
	"sip-scan", "pplsip", "sundayddr", "iWar"}

// DefaultGuardConfig is the guard's configuration in mediagate.yaml: 16
// messages per 2 s per source (Kamailio pike's defaults), bans of 10 min
// doubling up to 24 h, scanners dropped and banned, 20 calls per source.
func DefaultGuardConfig() GuardConfig {
	return GuardConfig{Rate: 16, Window: 2 * time.Second, Ban: 10 * time.Minute, BanMax: 24 * time.Hour,
		ScannerUserAgents: slices.Clone(DefaultScannerUserAgents), BanScanners: true, MaxCallsPerSource: 20}
}

// WithGuard turns the abuse guard on with c. Default: off (every source
// is served; the binary turns it on, sip.guard.enabled).
func WithGuard(c GuardConfig) Option {
	return func(o *options) { o.guard = &c }
}

// WithBanList shares the guard's bans through b (the cluster state).
// Default: bans stay on this UA.
func WithBanList(b BanList) Option { return func(o *options) { o.banList = b } }

// GuardStats are the guard's counters since the UA started.
type GuardStats struct {
	// DroppedBanned are messages dropped because their source was banned
	// (here, or on another node through the BanList).
	DroppedBanned uint64
	// DroppedRate are messages that went over their source's rate (each
	// bans the source).
	DroppedRate uint64
	// DroppedScanner are requests dropped for a scanner's User-Agent.
	DroppedScanner uint64
	// RefusedCalls are INVITEs answered 503 for a call cap.
	RefusedCalls uint64
	// Bans is how many bans this UA imposed.
	Bans uint64
	// ActiveBans is how many sources this UA has banned now (including
	// bans learned from the BanList for the next second).
	ActiveBans int
	// BanListErrors are failed BanList lookups and pushes.
	BanListErrors uint64
}

// GuardStats returns the guard's counters; zero without WithGuard.
func (u *UA) GuardStats() GuardStats {
	if u.guard == nil {
		return GuardStats{}
	}
	return u.guard.stats()
}

// Limits of the guard's bookkeeping.
const (
	// sharedRecheck is how often a source is looked up in the BanList.
	sharedRecheck = time.Second
	// banListTimeout bounds one BanList call.
	banListTimeout = 2 * time.Second
	// maxSources bounds the sources tracked; beyond it (after a sweep)
	// new sources go untracked and unlimited rather than evicting bans.
	maxSources = 1 << 17
	// guardLogEvery is how often one source may be logged.
	guardLogEvery = time.Minute
)

// guard is the UA's abuse guard. Safe for concurrent use.
type guard struct {
	cfg      GuardConfig
	scanners []string // lower-case
	exempt   func(netip.Addr) bool
	bans     BanList // nil: local only
	now      func() time.Time
	log      *slog.Logger

	mu        sync.Mutex
	sources   map[netip.Addr]*source
	lastSweep time.Time
	calls     map[netip.Addr]int
	total     int

	droppedBanned, droppedRate, droppedScanner, refusedCalls, banCount, banListErrors atomic.Uint64

	push   chan sharedBan // to the pusher; nil without bans
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// source is what the guard knows of one address.
type source struct {
	bucket
	bannedUntil time.Time
	offences    int       // bans so far, for the escalation
	sharedAt    time.Time // last BanList lookup
	loggedAt    time.Time
}

type sharedBan struct {
	addr  netip.Addr
	until time.Time
}

// newGuard prepares a guard; exempt says which sources are trunks'. Close
// stops its pusher.
func newGuard(c GuardConfig, bans BanList, exempt func(netip.Addr) bool, now func() time.Time, log *slog.Logger) *guard {
	g := &guard{cfg: c, exempt: exempt, bans: bans, now: now, log: log,
		sources: map[netip.Addr]*source{}, calls: map[netip.Addr]int{}}
	for _, s := range c.ScannerUserAgents {
		if s != "" {
			g.scanners = append(g.scanners, strings.ToLower(s))
		}
	}
	if bans != nil {
		ctx, cancel := context.WithCancel(context.Background())
		g.push, g.cancel = make(chan sharedBan, 256), cancel
		g.wg.Add(1)
		go g.pusher(ctx)
	}
	return g
}

// close stops the pusher and waits for it.
func (g *guard) close() {
	if g.cancel != nil {
		g.cancel()
	}
	g.wg.Wait()
}

// pusher shares this UA's bans through the BanList, one at a time, each
// bounded by banListTimeout.
func (g *guard) pusher(ctx context.Context) {
	defer g.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-g.push:
			pctx, cancel := context.WithTimeout(ctx, banListTimeout)
			if err := g.bans.Ban(pctx, b.addr.String(), b.until); err != nil {
				g.banListErrors.Add(1)
				g.log.Warn("sip guard: sharing a ban failed", "source", AnonymizeAddr(b.addr).String(), "err", err)
			}
			cancel()
		}
	}
}

// readFilter is sipgo's transport read filter: it drops a message (nil)
// whose source is banned or over its rate, before it is parsed.
func (g *guard) readFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if g.packet(addrOf(p.RemoteAddr)) {
		return data, nil
	}
	return nil, nil
}

// addrOf is the IP address of a transport address; invalid when unknown.
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// packet counts one message from a and reports whether it may go on: not
// when a is banned, or when it just went over its rate, which bans it.
func (g *guard) packet(a netip.Addr) bool {
	if !a.IsValid() || g.exempt(a) {
		return true
	}
	now := g.now()
	g.mu.Lock()
	s := g.sourceLocked(a, now)
	if s == nil {
		g.mu.Unlock()
		return true
	}
	if now.Before(s.bannedUntil) {
		g.mu.Unlock()
		g.droppedBanned.Add(1)
		return false
	}
	if g.cfg.Rate <= 0 || s.take(now, g.cfg.Rate, g.cfg.Window) {
		g.mu.Unlock()
		return true
	}
	until, log := g.banLocked(s, now)
	g.mu.Unlock()
	g.droppedRate.Add(1)
	g.banned(a, until, log, "rate", "rate", g.cfg.Rate, "window", g.cfg.Window)
	return false
}

// sourceLocked returns a's record, creating it; nil when the table is
// full. It sweeps the table at most once per second.
func (g *guard) sourceLocked(a netip.Addr, now time.Time) *source {
	if now.Sub(g.lastSweep) >= time.Second || now.Before(g.lastSweep) {
		g.sweepLocked(now)
	}
	s := g.sources[a]
	if s == nil {
		if len(g.sources) >= maxSources {
			return nil
		}
		s = &source{bucket: bucket{tokens: float64(g.cfg.Rate), last: now}}
		g.sources[a] = s
	}
	return s
}

// sweepLocked forgets sources with a full bucket, no ban, and no ban in
// the last BanMax (after which offences no longer escalate).
func (g *guard) sweepLocked(now time.Time) {
	g.lastSweep = now
	for a, s := range g.sources {
		if now.Sub(s.last) < g.cfg.Window || now.Before(s.bannedUntil) {
			continue
		}
		if s.offences > 0 && now.Sub(s.bannedUntil) < g.cfg.BanMax {
			continue
		}
		delete(g.sources, a)
	}
}

// banDuration is the length of a source's n-th ban (n ≥ 1): Ban doubled
// for each earlier one, at most BanMax.
func (c GuardConfig) banDuration(n int) time.Duration {
	d := c.Ban
	for i := 1; i < n && d < c.BanMax; i++ {
		d *= 2
	}
	return min(d, c.BanMax)
}

// banLocked bans s from now and reports until when, and whether the ban
// may be logged (once per source per guardLogEvery).
func (g *guard) banLocked(s *source, now time.Time) (time.Time, bool) {
	s.offences++
	s.bannedUntil = now.Add(g.cfg.banDuration(s.offences))
	s.bucket = bucket{tokens: float64(g.cfg.Rate), last: s.bannedUntil}
	log := now.Sub(s.loggedAt) >= guardLogEvery || s.loggedAt.IsZero()
	if log {
		s.loggedAt = now
	}
	return s.bannedUntil, log
}

// banned counts a ban of a, shares it and logs it when allowed.
func (g *guard) banned(a netip.Addr, until time.Time, log bool, why string, attrs ...any) {
	g.banCount.Add(1)
	if g.push != nil {
		select {
		case g.push <- sharedBan{a, until}:
		default:
			g.banListErrors.Add(1) // the BanList is too slow: the ban stays local
		}
	}
	if log {
		g.log.Warn("sip source banned", append([]any{"source", AnonymizeAddr(a).String(), "why", why,
			"until", until.UTC().Format(time.RFC3339)}, attrs...)...)
	}
}

// screen checks a parsed request from a banned source (known locally or
// through the BanList) or with a scanner's User-Agent; it reports whether
// the request may go on. Dropped requests get no answer.
func (g *guard) screen(req *sip.Request) bool {
	ap, _ := netip.ParseAddrPort(req.Source())
	a := ap.Addr().Unmap()
	if !a.IsValid() || g.exempt(a) {
		return true
	}
	if ua := req.GetHeader("User-Agent"); ua != nil && g.scanner(ua.Value()) {
		g.droppedScanner.Add(1)
		now := g.now()
		g.mu.Lock()
		s := g.sourceLocked(a, now)
		var until time.Time
		log := s != nil && (s.loggedAt.IsZero() || now.Sub(s.loggedAt) >= guardLogEvery)
		ban := s != nil && g.cfg.BanScanners && !now.Before(s.bannedUntil)
		switch {
		case ban:
			until, log = g.banLocked(s, now)
		case log:
			s.loggedAt = now
		}
		g.mu.Unlock()
		if ban {
			g.banned(a, until, log, "scanner user agent")
		} else if log {
			g.log.Warn("sip scanner dropped", "source", AnonymizeAddr(a).String())
		}
		return false
	}
	return !g.bannedHere(a) && !g.bannedShared(a)
}

// scanner reports whether a User-Agent value names a scanner.
func (g *guard) scanner(ua string) bool {
	ua = strings.ToLower(ua)
	for _, s := range g.scanners {
		if strings.Contains(ua, s) {
			return true
		}
	}
	return false
}

// bannedHere reports whether a is banned locally (a TCP read may carry
// more than one request), counting the drop.
func (g *guard) bannedHere(a netip.Addr) bool {
	now := g.now()
	g.mu.Lock()
	s := g.sources[a]
	banned := s != nil && now.Before(s.bannedUntil)
	g.mu.Unlock()
	if banned {
		g.droppedBanned.Add(1)
	}
	return banned
}

// bannedShared looks a up in the BanList, at most once per source and
// sharedRecheck; a source banned there is dropped here until the next
// lookup. Lookup errors let the request pass.
func (g *guard) bannedShared(a netip.Addr) bool {
	if g.bans == nil {
		return false
	}
	now := g.now()
	g.mu.Lock()
	s := g.sourceLocked(a, now)
	due := s != nil && (s.sharedAt.IsZero() || now.Sub(s.sharedAt) >= sharedRecheck || now.Before(s.sharedAt))
	if due {
		s.sharedAt = now
	}
	g.mu.Unlock()
	if !due {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), banListTimeout)
	banned, err := g.bans.IsBanned(ctx, a.String())
	cancel()
	if err != nil {
		g.banListErrors.Add(1)
		return false
	}
	if !banned {
		return false
	}
	g.mu.Lock()
	log := false
	if s := g.sources[a]; s != nil {
		s.bannedUntil = later(s.bannedUntil, now.Add(sharedRecheck))
		if log = s.loggedAt.IsZero() || now.Sub(s.loggedAt) >= guardLogEvery; log {
			s.loggedAt = now
		}
	}
	g.mu.Unlock()
	g.droppedBanned.Add(1)
	if log {
		g.log.Warn("sip source banned on another node", "source", AnonymizeAddr(a).String())
	}
	return true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// takeCall counts a new call from a against the caps, or refuses it with
// ErrCallLimit. giveCall gives it back.
func (g *guard) takeCall(a netip.Addr) error {
	perSource := g.cfg.MaxCallsPerSource > 0 && a.IsValid() && !g.exempt(a)
	g.mu.Lock()
	defer g.mu.Unlock()
	if (g.cfg.MaxCalls > 0 && g.total >= g.cfg.MaxCalls) || (perSource && g.calls[a] >= g.cfg.MaxCallsPerSource) {
		g.refusedCalls.Add(1)
		return ErrCallLimit
	}
	g.total++
	g.calls[a]++
	return nil
}

// giveCall ends a call takeCall counted.
func (g *guard) giveCall(a netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.calls[a]--; g.calls[a] <= 0 {
		delete(g.calls, a)
	}
}

func (g *guard) stats() GuardStats {
	now := g.now()
	g.mu.Lock()
	active := 0
	for _, s := range g.sources {
		if now.Before(s.bannedUntil) {
			active++
		}
	}
	g.mu.Unlock()
	return GuardStats{DroppedBanned: g.droppedBanned.Load(), DroppedRate: g.droppedRate.Load(),
		DroppedScanner: g.droppedScanner.Load(), RefusedCalls: g.refusedCalls.Load(),
		Bans: g.banCount.Load(), ActiveBans: active, BanListErrors: g.banListErrors.Load()}
}

// bucket is a token bucket: up to rate tokens, refilled at rate per
// window; each message takes one.
type bucket struct {
	tokens float64
	last   time.Time
}

// take refills the bucket for the time since the last call and takes a
// token, reporting whether there was one.
func (b *bucket) take(now time.Time, rate int, window time.Duration) bool {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(rate), b.tokens+float64(rate)*el.Seconds()/window.Seconds())
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// guarded wraps a request handler: requests the guard drops never reach
// it. Without a guard it is h itself.
func (u *UA) guarded(h sipgo.RequestHandler) sipgo.RequestHandler {
	g := u.guard
	if g == nil {
		return h
	}
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if g.screen(req) {
			h(req, tx)
		}
	}
}

// exempt reports whether a belongs to a trunk: its CIDRs, or its
// registrar's addresses. The guard never limits those.
func (tr *trunking) exempt(a netip.Addr) bool {
	for _, t := range tr.trunks {
		if t.contains(a) {
			return true
		}
	}
	return false
}

// check refuses a guard configuration that cannot work; nil is off.
// Errors wrap ErrConfig.
func (c *GuardConfig) check() error {
	switch {
	case c == nil:
		return nil
	case c.Rate < 0 || c.MaxCalls < 0 || c.MaxCallsPerSource < 0:
		return fmt.Errorf("%w: guard: negative rate or call cap", ErrConfig)
	case c.Rate > 0 && c.Window <= 0:
		return fmt.Errorf("%w: guard: rate without a window", ErrConfig)
	case (c.Rate > 0 || c.BanScanners) && (c.Ban <= 0 || c.BanMax < c.Ban):
		return fmt.Errorf("%w: guard: ban %v, ban max %v", ErrConfig, c.Ban, c.BanMax)
	}
	return nil
}

// startGuard builds the guard of WithGuard, if any.
func (u *UA) startGuard() {
	if u.opts.guard != nil {
		u.guard = newGuard(*u.opts.guard, u.opts.banList, func(a netip.Addr) bool { return u.trunks().exempt(a) }, time.Now, u.log)
	}
}

// readFilter is the transports' read filter: the abuse guard's first,
// when there is one (a flood is dropped before any parsing), then the
// screen's (screen.go), which answers malformed requests itself.
func (u *UA) readFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if u.guard != nil {
		var err error
		if data, err = u.guard.readFilter(p, data); err != nil || data == nil {
			return data, err
		}
	}
	return u.screenFilter(p, data)
}

// screenAccept wraps a TCP or TLS listener so that connections from
// banned sources are closed as soon as they are accepted, unread and
// unlogged. Reads on connections already open are screened by the read
// filter, which skips those of a source banned meanwhile.
func (u *UA) screenAccept(ln net.Listener) net.Listener {
	if u.guard == nil {
		return ln
	}
	return &guardListener{Listener: ln, g: u.guard}
}

type guardListener struct {
	net.Listener
	g *guard
}

// Accept returns the next connection from a source that is not banned.
func (l *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.g.bannedHere(addrOf(c.RemoteAddr())) {
			return c, nil
		}
		_ = c.Close()
	}
}
