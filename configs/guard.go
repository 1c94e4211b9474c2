package configs

import (
	"fmt"
	"slices"
	"time"
)

// SIPGuard is the SIP abuse guard (sip.guard, package sip's GuardConfig):
// per-source rate limits with bans, scanner User-Agents, call caps.
type SIPGuard struct {
	// Enabled turns the guard on.
	Enabled bool `yaml:"enabled"`
	// Rate is how many SIP messages one source address may send in
	// Window; over it, the source is banned. 0: no rate limit.
	Rate int `yaml:"rate"`
	// Window is the period Rate counts over.
	Window time.Duration `yaml:"window"`
	// Ban is the first ban of a source; each further one doubles it.
	Ban time.Duration `yaml:"ban"`
	// BanMax is the longest ban.
	BanMax time.Duration `yaml:"ban_max"`
	// ScannerUserAgents are User-Agent substrings (case-insensitive)
	// whose requests are dropped without an answer.
	ScannerUserAgents []string `yaml:"scanner_user_agents"`
	// BanScanners bans the source of a scanner's request too.
	BanScanners bool `yaml:"ban_scanners"`
	// MaxCallsPerSource caps the calls from one address (not for trunk
	// sources); 0: no cap.
	MaxCallsPerSource int `yaml:"max_calls_per_source"`
	// MaxCalls caps the calls of the node; 0: no cap.
	MaxCalls int `yaml:"max_calls"`
}

// defaultScannerUserAgents are sip.guard.scanner_user_agents' default:
// SIPVicious and its forks, sipcli, and other scanners seen in the wild
// (package sip's DefaultScannerUserAgents).
var defaultScannerUserAgents = []string{"friendly-scanner", "sipcli", "sipvicious", "SIP Call",
	"sip-scan", "pplsip", "sundayddr", "iWar"}

// defaultSIPGuard is the guard's defaults, those of Kamailio's pike
// module: 16 messages per 2 s per source; bans of 10m doubling up to 24h.
func defaultSIPGuard() SIPGuard {
	return SIPGuard{Enabled: true, Rate: 16, Window: 2 * time.Second, Ban: 10 * time.Minute,
		BanMax: 24 * time.Hour, ScannerUserAgents: slices.Clone(defaultScannerUserAgents),
		BanScanners: true, MaxCallsPerSource: 20}
}

// Bounds of sip.guard.
const (
	maxGuardRate   = 100000
	minGuardWindow = 100 * time.Millisecond
	maxGuardWindow = time.Hour
	minGuardBan    = time.Second
	maxGuardBanMax = 30 * 24 * time.Hour
	maxGuardCalls  = 1000000
)

// sipGuard checks sip.guard, enabled or not (so that turning it on never
// meets a bad value): ranges, ban_max not below ban, scanner names not
// empty.
func (v *validator) sipGuard(g SIPGuard) {
	v.intRange("sip.guard.rate", g.Rate, 0, maxGuardRate)
	if g.Window < minGuardWindow || g.Window > maxGuardWindow {
		v.fail("sip.guard.window", "%s out of range 100ms..1h", g.Window)
	}
	okBan := g.Ban >= minGuardBan && g.Ban <= maxGuardBanMax
	if !okBan {
		v.fail("sip.guard.ban", "%s out of range 1s..720h", g.Ban)
	}
	switch {
	case g.BanMax > maxGuardBanMax:
		v.fail("sip.guard.ban_max", "%s above 720h", g.BanMax)
	case okBan && g.BanMax < g.Ban:
		v.fail("sip.guard.ban_max", "%s below sip.guard.ban (%s)", g.BanMax, g.Ban)
	}
	for i, s := range g.ScannerUserAgents {
		if s == "" {
			v.fail(fmt.Sprintf("sip.guard.scanner_user_agents[%d]", i), "must not be empty")
		}
	}
	v.intRange("sip.guard.max_calls_per_source", g.MaxCallsPerSource, 0, maxGuardCalls)
	v.intRange("sip.guard.max_calls", g.MaxCalls, 0, maxGuardCalls)
}
