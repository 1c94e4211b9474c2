package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/mediagate/mediagate/internal/anon"
)

// Decision 8 (private by default): caller numbers are masked, IP addresses
// anonymised, and nothing sipgo logs reaches the log unfiltered. The types
// here carry that into every log call: Number and CallID implement
// slog.LogValuer, so passing them as attributes is safe by construction.

// Number is a telephone number or SIP user part (the caller's From user, the
// dialed Request-URI user). It is personal data: String, LogValue and %v
// show only the last two characters ("*******56"); Digits returns the number
// itself for dispatch rules, never for logs.
type Number string

// Digits returns the number unmasked, for matching against dial plans.
func (n Number) Digits() string { return string(n) }

// String returns the masked number, so fmt and %v never leak it.
func (n Number) String() string { return MaskNumber(string(n)) }

// LogValue masks the number in slog records.
func (n Number) LogValue() slog.Value { return slog.StringValue(MaskNumber(string(n))) }

// GoString masks the number in %#v too.
func (n Number) GoString() string { return fmt.Sprintf("sip.Number(%q)", MaskNumber(string(n))) }

// MaskNumber keeps the last two characters of s and replaces the rest with
// '*', so support staff can tell calls apart without learning who called.
// Strings of two characters or fewer become "**".
func MaskNumber(s string) string {
	r := []rune(s)
	if len(r) <= 2 {
		return "**"
	}
	return strings.Repeat("*", len(r)-2) + string(r[len(r)-2:])
}

// CallID is the SIP Call-ID of a call (RFC 3261 §8.1.1.4): the identifier
// the bridge uses as room.ParticipantID. Many user agents build it from
// their IP address ("a84b4c76e66710@192.0.2.4"), so its LogValue anonymises
// any address in it; the rest stays, so that logs can be matched with a
// carrier's trace.
type CallID string

// LogValue returns the Call-ID with addresses anonymised.
func (id CallID) LogValue() slog.Value { return slog.StringValue(redactAddrs(string(id))) }

// AnonymizeAddr cuts an address to its network: the /24 of an IPv4 address,
// the /48 of an IPv6 one, the usual anonymisation for logs (decision 8);
// the whole address when the operator turned that off (anon.SetEnabled).
func AnonymizeAddr(a netip.Addr) netip.Prefix { return anon.Prefix(a) }

// addrAttr logs an address (with or without port) anonymised.
func addrAttr(key string, ap netip.AddrPort) slog.Attr {
	if !ap.IsValid() {
		return slog.String(key, "")
	}
	return slog.String(key, AnonymizeAddr(ap.Addr()).String())
}

var (
	// sip:, sips: and tel: URIs: the user part up to '@', ';', '>' or space.
	uriUserRE = regexp.MustCompile(`(?i)\b(sips?:|tel:)([^@;>\s"]+)(@)?`)
	// Dotted IPv4 addresses; the last octet is replaced.
	ipv4RE = regexp.MustCompile(`\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}\b`)
	// IPv6 addresses, bracketed or bare (at least two colons).
	ipv6RE = regexp.MustCompile(`\[?\b[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}\b\]?`)
	// Long digit runs outside URIs: phone numbers in free text.
	digitsRE = regexp.MustCompile(`\+?\d{5,}`)
)

// redactText masks what a free-text log value (sipgo's messages, errors,
// start lines) may hold: URI user parts, IP addresses, phone numbers and
// SDES keys (a=crypto ... inline:KEY).
func redactText(s string) string {
	s = redactKeys(s)
	s = uriUserRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := uriUserRE.FindStringSubmatch(m)
		if sub[3] == "" && !strings.EqualFold(sub[1], "tel:") {
			return m // sip:host without a user part
		}
		return sub[1] + MaskNumber(sub[2]) + sub[3]
	})
	return digitsRE.ReplaceAllStringFunc(redactAddrs(s), MaskNumber)
}

// redactAddrs anonymises the IPv4 and IPv6 addresses in s, unless
// anonymisation is off.
func redactAddrs(s string) string {
	if !anon.Enabled() {
		return s
	}
	s = ipv4RE.ReplaceAllString(s, "${1}.0")
	return ipv6RE.ReplaceAllStringFunc(s, func(m string) string {
		a, err := netip.ParseAddr(strings.Trim(m, "[]"))
		if err != nil || !a.Is6() {
			return m
		}
		anon := AnonymizeAddr(a).Addr().String()
		if strings.HasPrefix(m, "[") && strings.HasSuffix(m, "]") {
			return "[" + anon + "]"
		}
		return anon
	})
}

// stackHandler adapts sipgo's logging to ours: records below its level are
// dropped (sipgo logs every transaction at Debug and Info), each record is
// tagged component=sipgo, and every value is redacted — sipgo logs raw
// messages ("data"), start lines and peer addresses.
//
// sipgo logs "failed to parse" at Error for every datagram it cannot parse:
// on a port that is being scanned that is one line per attacker packet, so
// those lines are lowered to Warn and let through at most once per
// parseLogEvery, with how many were held back.
type stackHandler struct {
	next  slog.Handler
	level slog.Leveler
	parse *logLimiter // shared by the handler's clones
}

// parseLogEvery is how often at most sipgo's "failed to parse" is logged.
const parseLogEvery = 10 * time.Second

// StackLogger returns the logger the UA hands to sipgo's layers: base's
// handler behind the level and redaction filter. A few sipgo code paths log
// through sipgo's package default (sip.DefaultLogger, i.e. slog.Default);
// main may install this logger there once at start with sipgo's
// sip.SetDefaultLogger, so those records are filtered too.
func StackLogger(base *slog.Logger, level slog.Leveler) *slog.Logger {
	h := &stackHandler{next: base.Handler(), level: level, parse: newLogLimiter(1, parseLogEvery)}
	return slog.New(h).With("component", "sipgo")
}

func (h *stackHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level.Level() && h.next.Enabled(ctx, l)
}

func (h *stackHandler) Handle(ctx context.Context, r slog.Record) error {
	level := r.Level
	var held int
	if r.Message == "failed to parse" {
		ok, n := h.parse.allow(r.Time)
		if !ok {
			return nil
		}
		level, held = min(level, slog.LevelWarn), n
	}
	out := slog.NewRecord(r.Time, level, redactText(r.Message), r.PC)
	if held > 0 {
		out.AddAttrs(slog.Int("held_back", held))
	}
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *stackHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return &stackHandler{next: h.next.WithAttrs(red), level: h.level, parse: h.parse}
}

func (h *stackHandler) WithGroup(name string) slog.Handler {
	return &stackHandler{next: h.next.WithGroup(name), level: h.level, parse: h.parse}
}

// redactAttr redacts one attribute: raw SIP messages are replaced by their
// size, everything else is turned into redacted text.
func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, x := range g {
			red[i] = redactAttr(x)
		}
		return slog.Group(a.Key, red...)
	case slog.KindString:
		if a.Key == "data" {
			return slog.String(a.Key, fmt.Sprintf("[%d bytes]", len(v.String())))
		}
		return slog.String(a.Key, redactText(v.String()))
	case slog.KindAny:
		return slog.String(a.Key, redactText(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: a.Key, Value: v}
}
