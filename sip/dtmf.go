package sip

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mediagate/mediagate/media"
)

// DTMFSource says how a key press reached mediagate.
type DTMFSource uint8

const (
	// DTMFRFC4733 is a telephone-event in the RTP stream (RFC 4733).
	DTMFRFC4733 DTMFSource = iota + 1
	// DTMFInfo is a SIP INFO request (application/dtmf-relay or
	// application/dtmf).
	DTMFInfo
	// DTMFInBand is a tone in the G.711 audio found by media.DTMFDetector.
	DTMFInBand
)

// String names the source for logs.
func (s DTMFSource) String() string {
	switch s {
	case DTMFRFC4733:
		return "rfc4733"
	case DTMFInfo:
		return "info"
	case DTMFInBand:
		return "inband"
	}
	return "unknown"
}

// DTMF is one key press on the caller's phone, reported once however many
// methods carried it.
type DTMF struct {
	// Digit is the key.
	Digit media.Digit
	// Source is the method that reported the press first.
	Source DTMFSource
	// Duration is how long the key was held when known at the press
	// (INFO's Duration); RFC 4733 and in-band presses are reported at
	// their start, when the length is not known yet.
	Duration time.Duration
	// At is when mediagate learned of the press.
	At time.Time
}

// dtmfDedupWindow is how far apart the reports of one press by two methods
// may arrive. A phone that sends both RFC 4733 and INFO emits them within a
// few ms of each other; in-band detection lags by the jitter buffer (up to
// 200 ms) plus 40 ms of tone. Two real presses of one key are at least
// ~100 ms apart, but they come by the same method, which is never merged.
const dtmfDedupWindow = 500 * time.Millisecond

// dtmfQueue is a call's outgoing DTMF channel with cross-method
// de-duplication: a press is dropped when the previous press delivered was
// the same key from another method within dtmfDedupWindow and was not
// itself matched yet. Three producers (the RTP reader, the INFO handler, the
// frame reader's in-band detector) call push; it never blocks.
type dtmfQueue struct {
	ch chan DTMF

	mu      sync.Mutex
	last    DTMF
	matched bool
	dropped uint64 // channel full
	dups    uint64 // merged duplicates
	// count counts each press once, by its method (the UA's metrics); the
	// presses the channel had no room for are counted too.
	count func(DTMFSource)
}

func newDTMFQueue(count func(DTMFSource)) *dtmfQueue {
	if count == nil {
		count = func(DTMFSource) {}
	}
	return &dtmfQueue{ch: make(chan DTMF, 32), count: count}
}

// push reports a press; it returns false when it was a duplicate or the
// channel was full.
func (q *dtmfQueue) push(d DTMF) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.last
	if l.Source != 0 && l.Source != d.Source && l.Digit == d.Digit && !q.matched &&
		d.At.Sub(l.At) < dtmfDedupWindow && l.At.Sub(d.At) < dtmfDedupWindow {
		q.matched = true
		q.dups++
		return false
	}
	q.last, q.matched = d, false
	q.count(d.Source)
	select {
	case q.ch <- d:
		return true
	default:
		q.dropped++
		return false
	}
}

// parseDTMFInfo reads the body of an INFO request carrying a key press:
// application/dtmf-relay ("Signal=5\r\nDuration=160", the de-facto format
// of Cisco and most PBXes) or application/dtmf ("5", RFC 2976-era usage,
// some send a dtmf-relay body under this type too). Duration is in ms.
func parseDTMFInfo(contentType string, body []byte) (media.Digit, time.Duration, error) {
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	text := strings.TrimSpace(string(body))
	if ct != "application/dtmf-relay" && ct != "application/dtmf" {
		return 0, 0, &unsupportedBody{ct}
	}
	if ct == "application/dtmf" && !strings.Contains(text, "=") {
		return parseSignal(text, "")
	}
	var signal, duration string
	for line := range strings.SplitSeq(text, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "signal":
			signal = strings.TrimSpace(v)
		case "duration":
			duration = strings.TrimSpace(v)
		}
	}
	return parseSignal(signal, duration)
}

// unsupportedBody is an INFO body of a type we do not take (415).
type unsupportedBody struct{ contentType string }

func (e *unsupportedBody) Error() string {
	return fmt.Sprintf("sip: unsupported info body %q", e.contentType)
}

// parseSignal turns a signal ("5", "*", "#", "A", or the event code
// "10"/"11" some gateways send for * and #) and a duration in ms into a
// digit.
func parseSignal(signal, duration string) (media.Digit, time.Duration, error) {
	var d media.Digit
	switch r := []rune(signal); {
	case len(r) == 1:
		var err error
		if d, err = media.ParseDigit(r[0]); err != nil {
			return 0, 0, err
		}
	case signal == "10" || signal == "11":
		d = media.DigitStar
		if signal == "11" {
			d = media.DigitPound
		}
	default:
		return 0, 0, fmt.Errorf("%w: signal %q", media.ErrInvalidDigit, signal)
	}
	var dur time.Duration
	if ms, err := strconv.Atoi(duration); err == nil && ms > 0 && ms < 60000 {
		dur = time.Duration(ms) * time.Millisecond
	}
	return d, dur, nil
}
