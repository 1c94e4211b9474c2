package sip

import (
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/internal/meter"
)

// CallOutcome is how an INVITE for a new call ended its setup, for the
// calls-by-outcome metric.
type CallOutcome uint8

const (
	// OutcomeAnswered: the call was answered and the ACK arrived.
	OutcomeAnswered CallOutcome = iota
	// OutcomeRejected: mediagate answered with an error response (a
	// refused INVITE, no room, a wrong PIN, draining, a call cap).
	OutcomeRejected
	// OutcomeCanceled: the caller gave up first (CANCEL, or a BYE before
	// the ACK).
	OutcomeCanceled
	// OutcomeFailed: the 200 OK was sent but the call could not be set
	// up (no ACK, an unusable answer in the ACK, the UA closing).
	OutcomeFailed
	// NumCallOutcomes is the number of outcomes.
	NumCallOutcomes
)

// String names the outcome as the metric label spells it.
func (o CallOutcome) String() string {
	switch o {
	case OutcomeAnswered:
		return "answered"
	case OutcomeRejected:
		return "rejected"
	case OutcomeCanceled:
		return "canceled"
	case OutcomeFailed:
		return "failed"
	}
	return "unknown"
}

// SetupBuckets are the upper bounds (seconds) of the call setup histogram:
// from the INVITE's arrival to the ACK of our 200 OK. The handler answers
// before its IVR runs, so PIN entry is not part of it; a handler that
// rings first (or plays early media) makes it longer.
var SetupBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// CallStats are the UA's call counters since it started, for metrics.
type CallStats struct {
	// Active is the number of answered calls going on.
	Active int
	// Admitted is the number of calls the UA holds now, from the admitted
	// INVITE to their end, answered or still being set up: what
	// sip.guard.max_calls caps (Calls).
	Admitted int
	// Outcomes counts new INVITEs by how their setup ended.
	Outcomes [NumCallOutcomes]uint64
	// SetupSeconds is how long answered calls took from INVITE to ACK.
	SetupSeconds meter.HistogramSnapshot
	// DTMF counts key presses by the method that reported them first
	// (presses carried by two methods count once).
	DTMF DTMFCounts
	// Screened counts requests the RFC 4475 screen refused or dropped
	// before sipgo saw them (screen.go).
	Screened uint64
	// Media sums the media counters of every call, ended or going on.
	Media MediaTotals
}

// DTMFCounts are key presses by method.
type DTMFCounts struct {
	RFC4733, Info, InBand uint64
}

// MediaTotals are RTP counters summed over calls.
type MediaTotals struct {
	// PacketsIn and BytesIn count RTP packets accepted and their payload
	// octets; PacketsOut and BytesOut those sent.
	PacketsIn, BytesIn, PacketsOut, BytesOut uint64
	// Late, Lost and Concealed are the jitter buffers' late packets,
	// lost packets and concealed frames (media.JitterStats).
	Late, Lost, Concealed uint64
	// MalformedBy counts RTP and RTCP packets dropped as malformed, by
	// reason (Stats.MalformedBy).
	MalformedBy [NumDropReasons]uint64
	// Unmatched counts RTP and RTCP packets on the shared port
	// (WithSharedRTP) from an address no call's SDP names.
	Unmatched uint64
}

// add adds one call's counters.
func (t *MediaTotals) add(s Stats) {
	t.PacketsIn += s.Received
	t.BytesIn += s.ReceivedBytes
	t.PacketsOut += s.Sent
	t.BytesOut += s.SentBytes
	t.Late += s.Jitter.Late
	t.Lost += s.Jitter.Lost
	t.Concealed += s.Jitter.Concealed
	for i := range t.MalformedBy {
		t.MalformedBy[i] += s.MalformedBy[i]
	}
}

// callMeters are the UA's call counters; ended (guarded by UA.mu) holds
// the media counters of calls that ended, so totals never go backwards.
type callMeters struct {
	active   atomic.Int64
	outcomes [NumCallOutcomes]atomic.Uint64
	setup    *meter.Histogram
	dtmf     [3]atomic.Uint64 // by DTMFSource-1
	screened atomic.Uint64
	ended    MediaTotals
}

func newCallMeters() callMeters { return callMeters{setup: meter.NewHistogram(SetupBuckets...)} }

// countDTMF counts a press by its method.
func (m *callMeters) countDTMF(s DTMFSource) {
	if s >= DTMFRFC4733 && s <= DTMFInBand {
		m.dtmf[s-1].Add(1)
	}
}

// CallStats returns the call counters: the answered calls going on, the
// outcomes, the setup times, DTMF by method and the media totals (the
// ended calls' plus the live ones').
func (u *UA) CallStats() CallStats {
	st := CallStats{Active: int(u.meters.active.Load()), SetupSeconds: u.meters.setup.Snapshot(),
		Screened: u.meters.screened.Load(),
		DTMF: DTMFCounts{RFC4733: u.meters.dtmf[0].Load(), Info: u.meters.dtmf[1].Load(),
			InBand: u.meters.dtmf[2].Load()}}
	for i := range st.Outcomes {
		st.Outcomes[i] = u.meters.outcomes[i].Load()
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	st.Admitted = len(u.dialogs)
	st.Media = u.meters.ended
	if u.mux != nil {
		st.Media.Unmatched = u.mux.unmatched.Load()
	}
	for _, in := range u.dialogs {
		if c := in.currentCall(); c != nil {
			st.Media.add(c.media.snapshot())
		}
	}
	return st
}

// retire forgets c's dialog and adds its final media counters to the
// ended calls', in one step under the UA's lock so that CallStats counts
// the call exactly once at any moment.
func (u *UA) retire(c *Call, st Stats) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.meters.ended.add(st)
	u.forgetLocked(c.in)
}

// settle counts how the INVITE's setup ended, once; an answered call's
// setup time goes to the histogram.
func (in *IncomingCall) settle(o CallOutcome) {
	if !in.settled.CompareAndSwap(false, true) {
		return
	}
	in.ua.meters.outcomes[o].Add(1)
	if o == OutcomeAnswered {
		in.ua.meters.setup.Observe(time.Since(in.received))
	}
}

// countRefused counts an INVITE refused before it became an IncomingCall.
func (u *UA) countRefused() { u.meters.outcomes[OutcomeRejected].Add(1) }

// Call activity states (Call.active).
const (
	callSettingUp int32 = iota
	callActive
	callEnded
)
