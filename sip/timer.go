package sip

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Session timers (RFC 4028): a call whose caller vanished without a BYE
// (a crashed phone, a carrier that lost its state) must not hold a seat
// for ever. One side, the refresher, repeats a re-INVITE or UPDATE every
// half interval; the other ends the session when no refresh arrives in
// time. Every INVITE, re-INVITE and UPDATE the caller sends renegotiates
// the interval and the refresher; when the caller lacks the extension
// mediagate refreshes on its own (§9, refresher=uas).

// rfcMinSE is the smallest Min-SE RFC 4028 §4 allows; sip.min_se may not
// go below it, tests may (WithMinSE).
const rfcMinSE = 90 * time.Second

// sessionOptions are the session timer and call length settings.
type sessionOptions struct {
	expires     time.Duration // the interval we ask for (sip.session_expires)
	minSE       time.Duration // the shortest we accept (sip.min_se)
	maxDuration time.Duration // 0: calls may last for ever
}

func defaultSessionOptions() sessionOptions {
	return sessionOptions{expires: 1800 * time.Second, minSE: rfcMinSE}
}

// check refuses settings that make no session timer: intervals are whole
// seconds in the headers (RFC 4028 §4), and the interval we ask for must
// not be below the minimum we demand of others.
func (o sessionOptions) check() error {
	switch {
	case o.minSE < time.Second:
		return fmt.Errorf("%w: min-se %v below 1s", ErrConfig, o.minSE)
	case o.expires < o.minSE:
		return fmt.Errorf("%w: session expires %v below min-se %v", ErrConfig, o.expires, o.minSE)
	case o.maxDuration < 0:
		return fmt.Errorf("%w: max call duration %v", ErrConfig, o.maxDuration)
	}
	return nil
}

// WithSessionExpires sets the session interval mediagate asks for and
// accepts at most (sip.session_expires, default 1800 s, RFC 4028 §4): the
// caller's Session-Expires is lowered to it, and it is the interval when
// the caller proposes none. 0 keeps the default.
func WithSessionExpires(d time.Duration) Option {
	return func(o *options) {
		if d != 0 {
			o.session.expires = d
		}
	}
}

// WithMinSE sets the shortest session interval mediagate accepts
// (sip.min_se, default 90 s): a caller asking for less gets 422 Session
// Interval Too Small with this Min-SE (RFC 4028 §6). RFC 4028 §4 forbids
// less than 90 s on the wire; the option takes any whole number of
// seconds so that tests run fast, the configuration does not. 0 keeps the
// default.
func WithMinSE(d time.Duration) Option {
	return func(o *options) {
		if d != 0 {
			o.session.minSE = d
		}
	}
}

// WithMaxCallDuration ends every answered call after d with BYE and a
// Reason header (RFC 3326); Call.Err is then ErrMaxDuration
// (sip.max_call_duration). 0, the default, lets calls last for ever.
func WithMaxCallDuration(d time.Duration) Option {
	return func(o *options) { o.session.maxDuration = d }
}

// sessionTimer is a negotiated session timer (RFC 4028 §9, §7.2).
type sessionTimer struct {
	interval time.Duration
	// weRefresh says that mediagate sends the refreshes; otherwise the
	// caller does and mediagate watches for them.
	weRefresh bool
	// peerSupports says that the caller listed "timer" in Supported or
	// Require, so that it understands Require: timer and 422.
	peerSupports bool
	// peerMinSE is the caller's Min-SE, which our refreshes respect.
	peerMinSE time.Duration
}

// due is how long after the interval's start mediagate acts: the refresh
// at half the interval (RFC 4028 §10), or, when the caller refreshes, the
// BYE at the expiry minus min(32 s, interval/3) (§10).
func (st sessionTimer) due() time.Duration {
	if st.weRefresh {
		return st.interval / 2
	}
	return st.interval - min(32*time.Second, st.interval/3)
}

// responseHeaders are the Session-Expires and Require headers of our 2xx
// (RFC 4028 §9): Require: timer whenever the caller supports the
// extension (a MUST with refresher=uac, a SHOULD with uas).
func (st sessionTimer) responseHeaders() []sip.Header {
	refresher := "uac"
	if st.weRefresh {
		refresher = "uas"
	}
	h := []sip.Header{sip.NewHeader("Session-Expires", seconds(st.interval)+";refresher="+refresher)}
	if st.peerSupports {
		h = append(h, sip.NewHeader("Require", "timer"))
	}
	return h
}

// requestHeaders are the headers of our refresh request (RFC 4028 §7.4):
// we stay the refresher (refresher=uac, we are the transaction's client).
func (st sessionTimer) requestHeaders(minSE time.Duration) []sip.Header {
	return []sip.Header{
		sip.NewHeader("Session-Expires", seconds(st.interval)+";refresher=uac"),
		sip.NewHeader("Min-SE", seconds(max(minSE, st.peerMinSE))),
		sip.NewHeader("Supported", supported),
	}
}

// negotiateTimer reads the session timer of a request from the caller
// (INVITE, re-INVITE or UPDATE) as RFC 4028 §9 tells a UAS: a
// Session-Expires below our Min-SE is 422 when the caller supports timers
// (it can retry); otherwise the interval is the caller's, lowered to ours,
// never below either Min-SE. A caller without the extension cannot retry,
// so a too-short interval is raised to our Min-SE instead, as §8.1 has
// proxies do. The caller refreshes when it asks to or leaves the choice to
// us; we do when it asks us to or lacks the extension.
func (u *UA) negotiateTimer(req *sip.Request) (sessionTimer, error) {
	o := u.opts.session
	st := sessionTimer{peerSupports: hasTag(req, "timer", "Supported", "k") || hasTag(req, "timer", "Require")}
	se, refresher, hasSE, err := sessionExpires(req)
	if err != nil {
		return st, err
	}
	if st.peerMinSE, err = minSE(req); err != nil {
		return st, err
	}
	st.interval = max(o.expires, st.peerMinSE)
	if hasSE {
		if se < o.minSE && st.peerSupports {
			return st, &intervalTooSmall{minSE: o.minSE}
		}
		st.interval = max(min(se, o.expires), st.peerMinSE, o.minSE)
		if st.peerSupports {
			st.interval = min(st.interval, se) // §9: never raised
		}
	}
	st.weRefresh = !st.peerSupports || refresher == "uas"
	return st, nil
}

// afterRefresh is the timer a 2xx to our refresh request leaves (RFC 4028
// §7.2): its Session-Expires, refresher=uac meaning us. A 2xx without
// one comes from a caller without the extension, which never refreshes:
// we go on refreshing at the same interval (§9). An interval below our
// Min-SE, which the caller should not have chosen, is raised to it.
func (u *UA) afterRefresh(st sessionTimer, res *sip.Response) sessionTimer {
	se, refresher, ok, err := sessionExpires(res)
	if err != nil || !ok {
		st.weRefresh = true
		return st
	}
	st.interval = max(se, u.opts.session.minSE)
	st.weRefresh = refresher != "uas"
	st.peerSupports = true
	return st
}

// sessionExpires parses the Session-Expires header (compact form x):
// delta-seconds, then parameters, of which refresher is "uac" or "uas"
// (RFC 4028 §4). A malformed header is 400.
func sessionExpires(m headerReader) (d time.Duration, refresher string, ok bool, err error) {
	v, ok := firstValue(m, "Session-Expires", "x")
	if !ok {
		return 0, "", false, nil
	}
	secs, params, _ := strings.Cut(v, ";")
	if d, err = parseSeconds(secs); err != nil {
		return 0, "", false, &StatusError{Code: 400, Reason: "Invalid Session-Expires"}
	}
	for p := range strings.SplitSeq(params, ";") {
		k, val, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(val))
		}
	}
	return d, refresher, true, nil
}

// minSE parses the Min-SE header (RFC 4028 §5); 0 when there is none.
func minSE(m headerReader) (time.Duration, error) {
	v, ok := firstValue(m, "Min-SE")
	if !ok {
		return 0, nil
	}
	secs, _, _ := strings.Cut(v, ";")
	d, err := parseSeconds(secs)
	if err != nil {
		return 0, &StatusError{Code: 400, Reason: "Invalid Min-SE"}
	}
	return d, nil
}

// parseSeconds reads delta-seconds (RFC 3261 §25.1: 1*DIGIT), at most
// 2^32-1.
func parseSeconds(s string) (time.Duration, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, err
	}
	return time.Duration(n) * time.Second, nil
}

// seconds writes d as delta-seconds, rounding up.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// headerReader is a SIP request or response.
type headerReader interface {
	GetHeaders(name string) []sip.Header
}

// firstValue returns the value of the first header with one of names (a
// long name and its compact form, RFC 3261 §7.3.3).
func firstValue(m headerReader, names ...string) (string, bool) {
	for _, n := range names {
		if hs := m.GetHeaders(n); len(hs) > 0 {
			return strings.TrimSpace(hs[0].Value()), true
		}
	}
	return "", false
}

// tagsOf lists the option tags of every header with one of names.
func tagsOf(m headerReader, names ...string) []string {
	var tags []string
	for _, n := range names {
		for _, h := range m.GetHeaders(n) {
			for t := range strings.SplitSeq(h.Value(), ",") {
				if t = strings.TrimSpace(t); t != "" {
					tags = append(tags, t)
				}
			}
		}
	}
	return tags
}

// hasTag reports whether one of the headers names lists the option tag.
func hasTag(m headerReader, tag string, names ...string) bool {
	for _, t := range tagsOf(m, names...) {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

// unsupportedTags lists the option tags of Require that we lack, for 420
// Bad Extension (RFC 3261 §8.2.2.3); "" when we support them all.
func unsupportedTags(m headerReader) string {
	var bad []string
	for _, t := range tagsOf(m, "Require") {
		if !strings.EqualFold(t, supported) {
			bad = append(bad, t)
		}
	}
	return strings.Join(bad, ", ")
}

// intervalTooSmall is a Session-Expires below our Min-SE: 422 Session
// Interval Too Small with our Min-SE (RFC 4028 §6).
type intervalTooSmall struct{ minSE time.Duration }

func (e *intervalTooSmall) Error() string {
	return fmt.Sprintf("%v: below %s s", ErrIntervalTooSmall, seconds(e.minSE))
}
func (e *intervalTooSmall) Unwrap() error  { return ErrIntervalTooSmall }
func (e *intervalTooSmall) SIPStatus() int { return 422 }

func (e *intervalTooSmall) minSEHeader() sip.Header {
	return sip.NewHeader("Min-SE", seconds(e.minSE))
}
