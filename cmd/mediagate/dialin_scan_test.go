package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scanTrunk allowlists 127.0.0.1 only: the control phone's address. The
// scanners send from other loopback addresses, unknown sources.
const scanTrunk = `MEDIAGATE_SIP_TRUNKS={"carrier": {"cidrs": ["127.0.0.1/32"]}}`

// scanRate is the scanner's pace: 100 requests per second.
const scanRate = 100

// scan sends a SIPVicious-style scan from p at scanRate: an OPTIONS sweep
// over the first ten numbers (svmap), then REGISTER (svwar's default) and
// INVITE enumeration over all of numbers, rounds times; it returns when
// the last request is out.
func scan(ctx context.Context, t *testing.T, p *sipProbe, numbers []string, rounds int) {
	t.Helper()
	tick := time.NewTicker(time.Second / scanRate)
	defer tick.Stop()
	send := func(method, number string) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("scan: %v", ctx.Err())
		}
		p.send(method, number)
	}
	for _, n := range numbers[:10] {
		send("OPTIONS", n)
	}
	for range rounds {
		for _, method := range []string{"REGISTER", "INVITE"} {
			for _, n := range numbers {
				send(method, n)
			}
		}
	}
}

// TestSIPScan (issue [7]): a SIPVicious-style scan (OPTIONS sweep, then
// REGISTER and INVITE enumeration over 100 numbers, half of them dial-in
// rules or the conference number, at 100 requests/s) from 127.0.0.66, an
// unknown source, while a caller on the allowlisted trunk talks in room
// demo:
//   - the scanner is banned within 2 s of its first request: from then on
//     nothing is answered, and the ban is logged;
//   - what was answered is the same for existing and missing numbers
//     (status, reason, headers apart from tags, Call-ID and branch);
//   - the trunk's caller keeps clean audio both ways: the tones 20 dB
//     above other bands, under 1% of the packets lost.
//
// The scanner's User-Agent names no scanner: SIPVicious' own
// (friendly-scanner) is dropped at its first request (TestDialInGuard);
// this is one that hides.
func TestSIPScan(t *testing.T) {
	t.Run("banned", testSIPScanBanned)
	t.Run("raised rate", testSIPScanEnumeration)
}

func testSIPScanBanned(t *testing.T) {
	g := startDialInWith(t, trunkYAML(), scanTrunk)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	control := connectControlCall(ctx, t, g)
	numbers, exists := scanNumbers()

	mark := control.mark()
	p := newSIPProbe(t, "127.0.0.66", g.sip, "Zoiper rv2.10")
	scan(ctx, t, p, numbers, 1)
	p.settle(ctx, time.Second)
	report := control.since(mark)
	t.Logf("control call during the scan: %s", report)

	reqs := p.requests()
	first := -1
	for i, r := range reqs {
		if r.answered.IsZero() {
			first = i
			break
		}
	}
	require.Positive(t, first, "the scanner was never answered, or never banned")
	banAfter := reqs[first].sent.Sub(reqs[0].sent)
	t.Logf("scanner: %d requests at %d/s; %d answered (%s), first unanswered after %v",
		len(reqs), scanRate, first, reqs[0].status(), banAfter.Round(time.Millisecond))
	require.LessOrEqual(t, banAfter, 2*time.Second, "banned too late")
	for _, r := range reqs[first:] {
		require.Zero(t, r.responses, "%s %s answered after the ban: %s", r.method, r.number, r.final)
	}
	g.logs.await(t, 5*time.Second, "sip source banned", "why=rate")
	require.Positive(t, metric(t, g.gateway, "mediagate_sip_bans_active"))

	requireSameAnswers(t, reqs, exists, numbers)
	report.check(t, 1)
	require.NoError(t, control.phone.Err())
}

// requireSameAnswers requires every answered request of one method to
// have the same normalized answer, whether its number exists or not.
func requireSameAnswers(t *testing.T, reqs []probeRequest, exists []bool, numbers []string) {
	t.Helper()
	isExisting := map[string]bool{}
	for i, n := range numbers {
		isExisting[n] = exists[i]
	}
	want := map[string]probeRequest{}
	for _, r := range reqs {
		if r.answered.IsZero() {
			continue
		}
		w, ok := want[r.method]
		if !ok {
			want[r.method] = r
			continue
		}
		require.Equal(t, w.normalized(), r.normalized(), "%s: answer for %s (exists: %v) differs from %s's (exists: %v)",
			r.method, r.number, isExisting[r.number], w.number, isExisting[w.number])
	}
	for m, r := range want {
		t.Logf("%s: every answer %q", m, r.status())
	}
}

// scanTolerance is how far the median answer times of existing and
// missing numbers may lie apart: both answers leave the same code path
// (admission refuses unknown sources before any number is looked up), so
// what differs is the scheduling noise of a loaded two-core machine
// running a -race build. A lookup a scanner could time (a Redis round
// trip, a dial plan walk) costs a millisecond or more on loopback; the
// tolerance is 0.5 ms or a quarter of the slower median, whichever is
// larger.
func scanTolerance(a, b time.Duration) time.Duration {
	return max(500*time.Microsecond, max(a, b)/4)
}

// testSIPScanEnumeration is the scan with sip.guard.rate raised out of
// the way, so that every request is answered: two rounds of REGISTER and
// INVITE enumeration over the 100 numbers. Existing and missing numbers
// get the same answer, and answer times of the same distribution (medians
// within scanTolerance).
func testSIPScanEnumeration(t *testing.T) {
	g := startDialInWith(t, trunkYAML(), scanTrunk, "MEDIAGATE_SIP_GUARD_RATE=100000")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	numbers, exists := scanNumbers()
	p := newSIPProbe(t, "127.0.0.67", g.sip, "Zoiper rv2.10")
	scan(ctx, t, p, numbers, 2)
	p.settle(ctx, time.Second)
	reqs := p.requests()
	isExisting := map[string]bool{}
	for i, n := range numbers {
		isExisting[n] = exists[i]
	}
	times := map[string]map[bool][]time.Duration{}
	for _, r := range reqs {
		require.False(t, r.answered.IsZero(), "%s %s unanswered: the scanner is limited after all", r.method, r.number)
		if times[r.method] == nil {
			times[r.method] = map[bool][]time.Duration{}
		}
		times[r.method][isExisting[r.number]] = append(times[r.method][isExisting[r.number]], r.answered.Sub(r.sent))
	}
	requireSameAnswers(t, reqs, exists, numbers)
	for _, m := range []string{"REGISTER", "INVITE"} {
		e, x := times[m][true], times[m][false]
		require.Len(t, e, 100, m)
		require.Len(t, x, 100, m)
		me, mx := median(e), median(x)
		t.Logf("%s: median answer time %v for existing numbers, %v for missing ones (%d each; p90 %v, %v)",
			m, me, mx, len(e), e[len(e)*9/10], x[len(x)*9/10])
		d := me - mx
		require.LessOrEqual(t, max(d, -d), scanTolerance(me, mx), "%s: timing tells existing numbers from missing ones", m)
	}
}
