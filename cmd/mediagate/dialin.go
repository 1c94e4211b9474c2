package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
)

// roomDirectory answers the IVR's questions from the rooms section:
// which room a conference number opens, and whether a PIN is right.
type roomDirectory struct {
	byNumber map[string]room.ID
	rooms    map[string]configs.Room
}

var _ bridge.Directory = (*roomDirectory)(nil)

func newRoomDirectory(rooms map[string]configs.Room) *roomDirectory {
	d := &roomDirectory{byNumber: map[string]room.ID{}, rooms: rooms}
	for id, r := range rooms {
		if r.Number != "" {
			d.byNumber[r.Number] = room.ID(id)
		}
	}
	return d
}

// Lookup finds the room with conference number n; open rooms need no PIN.
func (d *roomDirectory) Lookup(n string) (room.ID, bool, bool) {
	id, ok := d.byNumber[n]
	if !ok {
		return "", false, false
	}
	return id, needsPIN(d.rooms[string(id)]), true
}

// needsPIN reports whether a caller must key the room's PIN: open rooms
// and rooms without a PIN ask for none.
func needsPIN(r configs.Room) bool { return !r.Open && r.PIN != "" }

// CheckPIN compares pin with the room's PIN in constant time (over their
// hashes, so the length leaks nothing either).
func (d *roomDirectory) CheckPIN(id room.ID, pin string) bool {
	r, ok := d.rooms[string(id)]
	if !ok || r.PIN == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(pin)), sha256.Sum256([]byte(r.PIN))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// dialIn starts the SIP user agent: every call the trunks admit (sip.trunks;
// everyone when there are none) is dispatched by the dialin section's rules
// (bridge.CallHandler) into a fixed room or the IVR (conference number,
// PIN), with prompts (loadPrompts) in the rule's language. Registration
// trunks register once the UA runs and un-REGISTER when node.close closes
// it. The abuse guard (sip.guard) shares its bans through bans, the
// node's cluster state.
//
// Wrong PINs are counted across calls in lockouts (shared by the nodes of
// a cluster): a caller that keeps guessing is locked out for growing
// periods, whatever node it calls. roomLockouts (nil: none) count them per
// room over all callers and the join page, against guessing spread over
// many calling numbers or addresses. onCall hears of answered calls
// (webhooks).
//
// The dispatch rules and the room directory are the live ones of l, which a
// reload replaces (reload.go).
func dialIn(cfg configs.Config, log *slog.Logger, rooms bridge.Rooms, l *live,
	lockouts, roomLockouts bridge.PINLockouts, bans sip.BanList, onCall func(bridge.CallEvent)) (*sip.UA, error) {
	l.dir.set(newRoomDirectory(cfg.Rooms))
	deps := bridge.SessionDeps{
		Prompts:         l.prompts,
		Lang:            bridge.Lang(cfg.Dialin.Language),
		Rooms:           rooms,
		Directory:       &l.dir,
		PINLockouts:     lockouts,
		RoomPINLockouts: roomLockouts,
		Log:             log.With("component", "bridge"),
		OnCall:          onCall,
	}
	log.Info("dial-in", "rules", len(cfg.Dialin.Numbers), "language", cfg.Dialin.Language,
		"languages", l.prompts.Languages(), "prompts_dir", cfg.Dialin.PromptsDir)
	l.calls = bridge.NewCallHandler(newDispatcher(cfg), deps)
	trunks, err := sipTrunks(cfg)
	if err != nil {
		return nil, err
	}
	network, err := sipNetwork(cfg.SIP)
	if err != nil {
		return nil, err
	}
	return sip.New(cfg.SIP.Listen, l.calls, append([]sip.Option{
		sip.WithLogger(log),
		sip.WithCodecs(cfg.SIP.Codecs...),
		sip.WithMediaTimeout(cfg.SIP.MediaTimeout),
		sip.WithRTPPorts(cfg.RTP.PortMin, cfg.RTP.PortMax),
		sip.WithSharedRTP(cfg.RTP.Shared),
		sip.WithTrunks(trunks...),
		sip.WithHideUnknown(cfg.SIP.HideUnknown),
		sip.WithSessionExpires(cfg.SIP.SessionExpires),
		sip.WithMinSE(cfg.SIP.MinSE),
		sip.WithMaxCallDuration(cfg.SIP.MaxCallDuration),
	}, append(network, sipGuard(cfg.SIP.Guard, bans)...)...)...)
}

// sipGuard turns sip.guard into options: none when it is off.
func sipGuard(g configs.SIPGuard, bans sip.BanList) []sip.Option {
	if !g.Enabled {
		return nil
	}
	return []sip.Option{sip.WithGuard(guardConfig(g)), sip.WithBanList(bans)}
}

// guardConfig is package sip's form of sip.guard.
func guardConfig(g configs.SIPGuard) sip.GuardConfig {
	return sip.GuardConfig{Rate: g.Rate, Window: g.Window, Ban: g.Ban, BanMax: g.BanMax,
		ScannerUserAgents: g.ScannerUserAgents, BanScanners: g.BanScanners,
		MaxCallsPerSource: g.MaxCallsPerSource, MaxCalls: g.MaxCalls}
}

// sipTrunks turns sip.trunks into package sip's trunks, in name order.
// A trunk that challenges callers gets the node's ID as its realm unless
// it names one; a registration trunk keeps an empty realm, which answers
// the registrar's challenge in whatever realm it names.
func sipTrunks(cfg configs.Config) ([]sip.Trunk, error) {
	var out []sip.Trunk
	for _, name := range slices.Sorted(maps.Keys(cfg.SIP.Trunks)) {
		t := cfg.SIP.Trunks[name]
		st := sip.Trunk{Name: name, Username: t.Username, Password: t.Password, Realm: t.Realm,
			Register: t.Register, Registrar: t.Registrar, Expires: t.Expires}
		if !t.Register && t.Realm == "" {
			st.Realm = cfg.NodeID()
		}
		policy, err := sip.ParseSRTPPolicy(t.SRTP)
		if err != nil {
			return nil, fmt.Errorf("sip.trunks.%s.srtp: %w", name, err)
		}
		st.SRTP = policy
		for _, c := range t.CIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Errorf("sip.trunks.%s.cidrs: %w", name, err)
			}
			st.CIDRs = append(st.CIDRs, p)
		}
		out = append(out, st)
	}
	return out, nil
}

// newDispatcher turns the dialin section's rules into the bridge's; a
// fixed room asks for its PIN when it has one.
func newDispatcher(cfg configs.Config) *bridge.Dispatcher {
	rules := make(map[sip.Number]bridge.Rule, len(cfg.Dialin.Numbers))
	for n, r := range cfg.Dialin.Numbers {
		rule := bridge.Rule{Room: room.ID(r.Room), Lang: bridge.Lang(r.Language)}
		if r.Room != "" {
			rule.NeedsPIN = needsPIN(cfg.Rooms[r.Room])
		}
		rules[sip.Number(n)] = rule
	}
	return bridge.NewDispatcher(bridge.Lang(cfg.Dialin.Language), rules)
}

// loadPrompts loads the shipped prompts and dialin.prompts_dir's, and
// checks that every language the rules name is loaded: configs accepts
// any well-formed language when a prompts directory is set, and only the
// directory can say whether it provides it (bridge.Prompts would fall
// back to English without a word).
func loadPrompts(d configs.Dialin) (*bridge.Prompts, error) {
	prompts, err := bridge.Load(d.PromptsDir)
	if err != nil {
		return nil, fmt.Errorf("dialin.prompts_dir: %w", err)
	}
	if err := checkLanguages(prompts, d); err != nil {
		return nil, err
	}
	return prompts, nil
}

// checkLanguages checks that prompts has every language the dialin
// section names (at start and on reload, whose prompts stay those loaded
// at start).
func checkLanguages(prompts *bridge.Prompts, d configs.Dialin) error {
	missing := func(key, lang string) error {
		return fmt.Errorf("%s: no prompts in language %q (shipped: %s; add a directory %s/%s)",
			key, lang, strings.Join(configs.DialinLanguages, ", "), d.PromptsDir, lang)
	}
	if !prompts.Has(bridge.Lang(d.Language)) {
		return missing("dialin.language", d.Language)
	}
	for _, n := range slices.Sorted(maps.Keys(d.Numbers)) {
		if l := d.Numbers[n].Language; l != "" && !prompts.Has(bridge.Lang(l)) {
			return missing("dialin.numbers."+n+".language", l)
		}
	}
	return nil
}

// sipNetwork turns sip.external_address and sip.tls into options: the
// address announced behind NAT, and the TLS listener with the certificate
// loaded from sip.tls.cert and sip.tls.key.
func sipNetwork(s configs.SIP) ([]sip.Option, error) {
	var opts []sip.Option
	if s.ExternalAddress != "" {
		a, err := netip.ParseAddr(s.ExternalAddress)
		if err != nil {
			return nil, fmt.Errorf("sip.external_address: %w", err)
		}
		opts = append(opts, sip.WithAdvertisedAddr(a))
	}
	if s.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(s.TLS.Cert, s.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("sip.tls.cert, sip.tls.key: %w", err)
		}
		opts = append(opts, sip.WithTLS(s.TLS.Listen, &tls.Config{Certificates: []tls.Certificate{cert}}))
	}
	return opts, nil
}
