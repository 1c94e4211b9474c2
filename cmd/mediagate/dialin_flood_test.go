package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The flood: 20 sources (127.0.0.10 to 127.0.0.29), each sending floodRate
// INVITEs a second with distinct Call-IDs and an SDP offer, to rule
// number 2000.
const (
	floodSources = 20
	floodRate    = 50
	// floodMaxCalls is sip.guard.max_calls in the flood tests.
	floodMaxCalls = 20
)

// floodProbes opens the flood's sources.
func floodProbes(t *testing.T, g *dialInNode) []*sipProbe {
	t.Helper()
	probes := make([]*sipProbe, floodSources)
	for i := range probes {
		probes[i] = newSIPProbe(t, fmt.Sprintf("127.0.0.%d", 10+i), g.sip, "flood/1.0")
	}
	return probes
}

// floodPeaks are the highest readings of the gateway's /metrics while a
// flood ran.
type floodPeaks struct {
	calls, goroutines float64
	rss               int64
}

// flood sends floodRate INVITEs a second from every probe for d, reading
// the gateway's calls, goroutines and memory every 100 ms meanwhile, and
// returns their peaks.
func flood(ctx context.Context, t *testing.T, g *dialInNode, probes []*sipProbe, d time.Duration) floodPeaks {
	t.Helper()
	var wg sync.WaitGroup
	for _, p := range probes {
		wg.Go(func() {
			tick := time.NewTicker(time.Second / floodRate)
			defer tick.Stop()
			for range int(d.Seconds() * floodRate) {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
				p.send("INVITE", "2000")
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var peaks floodPeaks
	sample := time.NewTicker(100 * time.Millisecond)
	defer sample.Stop()
	for {
		peaks.calls = max(peaks.calls, metric(t, g.gateway, "mediagate_calls_admitted"))
		peaks.goroutines = max(peaks.goroutines, metric(t, g.gateway, "go_goroutines"))
		peaks.rss = max(peaks.rss, rssBytes(t, g.gateway))
		select {
		case <-done:
			require.NoError(t, ctx.Err(), "the flood was cut short")
			return peaks
		case <-sample.C:
		}
	}
}

// TestSIPInviteFlood (issue [7]): 20 unknown sources flood INVITEs at 50/s
// each for 20 s with the default sip.guard (16 messages per 2 s), while a
// caller on the allowlisted trunk talks in room demo:
//   - each source is answered at most the bucket's 16 messages plus what
//     refilled until the gateway read the last one it let through, and is
//     banned within 2 s of its first INVITE: what it sends later goes
//     unanswered, and the gateway counts 20 bans;
//   - the node's calls never exceed sip.guard.max_calls;
//   - the control call loses under 1% of its packets either way and its
//     tones stay 20 dB above the other bands;
//   - within 40 s after the flood the gateway's goroutines are back within
//     10 of their number before it, and its resident memory within 30 MiB
//     (the allocator keeps some freed memory; 30 MiB is well below what a
//     leak of 20 000 requests' state would hold).
//
// The gateway is built without -race here: the race detector's shadow
// memory grows with the flood and is never given back, and its CPU cost
// alone would make the flood a test of the machine.
func TestSIPInviteFlood(t *testing.T) {
	g := startDialInBinary(t, benchBinary(t), trunkYAML(), scanTrunk, fmt.Sprintf("MEDIAGATE_SIP_GUARD_MAX_CALLS=%d", floodMaxCalls))
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	control := connectControlCall(ctx, t, g)
	baseG, baseRSS := metric(t, g.gateway, "go_goroutines"), rssBytes(t, g.gateway)
	probes := floodProbes(t, g)

	mark := control.mark()
	peaks := flood(ctx, t, g, probes, 20*time.Second)
	ended := time.Now()
	report := control.since(mark)
	t.Logf("control call during the flood: %s", report)
	for _, p := range probes {
		p.settle(ctx, 500*time.Millisecond)
	}
	var answered []string
	var slowest time.Duration
	for _, p := range probes {
		reqs := p.requests()
		n, last, read := 0, time.Duration(0), time.Duration(0)
		for _, r := range reqs {
			if !r.answered.IsZero() {
				n, last, read = n+1, r.sent.Sub(reqs[0].sent), r.answered.Sub(reqs[0].sent)
			}
		}
		answered = append(answered, fmt.Sprint(n))
		slowest = max(slowest, last)
		// The gateway read the last one it let through before answering
		// it: the bucket refilled for at most that long.
		require.LessOrEqual(t, n, guardAllows(read), "source %s: %d of %d INVITEs answered within %v",
			p.local.Addr(), n, len(reqs), read)
		require.Zero(t, reqs[len(reqs)-1].responses, "source %s not banned", p.local.Addr())
	}
	t.Logf("INVITEs answered per source (of %d sent each): %s; the last one answered sent %v after a source's first INVITE at most",
		int(20*floodRate), strings.Join(answered, " "), slowest.Round(time.Millisecond))
	require.LessOrEqual(t, slowest, floodBanWithin, "a source was banned too late")
	require.GreaterOrEqual(t, metric(t, g.gateway, "mediagate_sip_bans_total"), float64(floodSources))
	require.GreaterOrEqual(t, metric(t, g.gateway, "mediagate_sip_bans_active"), float64(floodSources))
	require.LessOrEqual(t, peaks.calls, float64(floodMaxCalls))
	report.check(t, 1)

	nowG, nowRSS := backToBaseline(t, g, baseG, baseRSS, 40*time.Second)
	t.Logf("goroutines %.0f before, %.0f at most during, %.0f %v after; RSS %.1f MiB, %.1f MiB, %.1f MiB; calls at most %.0f (cap %d)",
		baseG, peaks.goroutines, nowG, time.Since(ended).Round(100*time.Millisecond),
		mib(baseRSS), mib(peaks.rss), mib(nowRSS), peaks.calls, floodMaxCalls)
	require.NoError(t, control.phone.Err())
}

// guardAllows is how many messages the default sip.guard (16 per 2 s)
// lets through from one source in d: its bucket, what refills meanwhile,
// and one for rounding.
func guardAllows(d time.Duration) int {
	const rate, window = 16, 2 * time.Second
	return rate + int(float64(rate)*d.Seconds()/window.Seconds()) + 1
}

// backToBaseline waits up to within for the gateway's goroutines to come
// back within 10 of baseG and its resident memory within 30 MiB of
// baseRSS, and returns the last readings.
func backToBaseline(t *testing.T, g *dialInNode, baseG float64, baseRSS int64, within time.Duration) (float64, int64) {
	t.Helper()
	deadline := time.Now().Add(within)
	poll := time.NewTicker(500 * time.Millisecond)
	defer poll.Stop()
	for {
		nowG, nowRSS := metric(t, g.gateway, "go_goroutines"), rssBytes(t, g.gateway)
		if nowG <= baseG+10 && nowRSS <= baseRSS+30<<20 {
			return nowG, nowRSS
		}
		require.True(t, time.Now().Before(deadline), "not back to baseline after %v: goroutines %.0f → %.0f, RSS %.1f MiB → %.1f MiB",
			within, baseG, nowG, mib(baseRSS), mib(nowRSS))
		<-poll.C
	}
}

// floodBanWithin is how soon after its first INVITE a flooding source
// must be banned: its INVITEs sent later go unanswered. At 50/s a bucket
// of 16 refilled at 8/s empties within 0.4 s; 2 s leaves room for a
// loaded machine reading the datagrams late.
const floodBanWithin = 2 * time.Second

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// TestSIPInviteFloodCallCap (issue [7]): the flood of TestSIPInviteFlood
// for 5 s, from sources on the trunk (127.0.0.0/8), which the guard does
// not limit, so that INVITEs reach the node's call cap
// (sip.guard.max_calls 20) with the control call holding one of its
// places: at most 19 flood calls are answered, the rest get 503 with
// Retry-After, the node's calls reach 20 and never exceed it, and the
// control call keeps clean audio.
func TestSIPInviteFloodCallCap(t *testing.T) {
	g := startDialInWith(t, trunkYAML(), `MEDIAGATE_SIP_TRUNKS={"carrier": {"cidrs": ["127.0.0.0/8"]}}`,
		fmt.Sprintf("MEDIAGATE_SIP_GUARD_MAX_CALLS=%d", floodMaxCalls))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	control := connectControlCall(ctx, t, g)
	probes := floodProbes(t, g)

	mark := control.mark()
	peaks := flood(ctx, t, g, probes, 5*time.Second)
	report := control.since(mark)
	t.Logf("control call during the flood: %s", report)
	for _, p := range probes {
		p.settle(ctx, 500*time.Millisecond)
	}
	codes := map[string]int{}
	for _, p := range probes {
		for _, r := range p.requests() {
			if r.answered.IsZero() {
				codes["none"]++
				continue
			}
			codes[r.status()]++
			if strings.HasPrefix(r.status(), "SIP/2.0 503") {
				require.NotEmpty(t, r.header("Retry-After"), "503 without Retry-After: %s", r.final)
			}
		}
	}
	t.Logf("flood answers: %v; calls at most %.0f (cap %d), %.0f refused by the cap",
		codes, peaks.calls, floodMaxCalls, metric(t, g.gateway, "mediagate_sip_requests_dropped_total", "reason", "call_limit"))
	require.LessOrEqual(t, codes["SIP/2.0 200 OK"], floodMaxCalls-1)
	require.Positive(t, codes["SIP/2.0 503 Service Unavailable"])
	// The flood's answered calls are never ACKed, so they hold their
	// places for the whole flood: the node sat at its cap.
	require.Equal(t, float64(floodMaxCalls), peaks.calls, "the flood never reached the cap, or went past it")
	require.Positive(t, metric(t, g.gateway, "mediagate_sip_requests_dropped_total", "reason", "call_limit"))
	report.check(t, 1)
	require.NoError(t, control.phone.Err())
}
