package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/rtc/rtctest"
)

// The cluster benchmarks of issue [6] run three nodes of the real gateway,
// built without the race detector, on one redis-server (the test cluster
// of cluster_helpers_test.go, which logs at debug level as the tests
// need). They report latencies as custom metrics and run once.

// BenchmarkClusterLookup: room demo is open on node b with one pion
// participant. GET /r/demo on node c, which does not host the room, looks
// its owner up in Redis (the lease, then the live nodes: GET, SMEMBERS,
// MGET) and answers 307 to b; the same GET on b finds the room open
// locally, asks Redis nothing and renders the join page (200). 1000 of
// each, alternating, one client with keep-alive, after 20 of each to warm
// up. Metrics: lookup-p50-ms, lookup-p99-ms (on c), owner-p50-ms,
// owner-p99-ms (on b).
func BenchmarkClusterLookup(b *testing.B) {
	const n, warmup = 1000, 20
	c := startTestCluster(b, benchBinary(b), "a", "b", "c")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.joinBot(ctx, b, "b")
	c.nodes["b"].logs.await(b, 5*time.Second, "room lease acquired", "room="+demoRoom)

	viaC, onB := c.nodes["c"].base+"/r/"+demoRoom, c.nodes["b"].base+"/r/"+demoRoom
	var lookups, owner []time.Duration
	for i := range warmup + n {
		l := timeGet(b, viaC, http.StatusTemporaryRedirect, onB)
		o := timeGet(b, onB, http.StatusOK, "")
		if i >= warmup {
			lookups, owner = append(lookups, l), append(owner, o)
		}
	}
	reportLatency(b, "lookup", lookups)
	reportLatency(b, "owner", owner)
}

// timeGet times one GET of target with noRedirect, body read, and checks
// the status and, when location is set, the Location header.
func timeGet(tb testing.TB, target string, status int, location string) time.Duration {
	tb.Helper()
	start := time.Now()
	resp, err := noRedirect.Get(target)
	require.NoError(tb, err)
	_, err = io.Copy(io.Discard, resp.Body)
	took := time.Since(start)
	require.NoError(tb, err)
	require.NoError(tb, resp.Body.Close())
	require.Equal(tb, status, resp.StatusCode, "GET %s", target)
	if location != "" {
		require.Equal(tb, location, resp.Header.Get("Location"))
	}
	return took
}

// BenchmarkClusterJoin: room demo is open on node b with one pion
// participant. 100 WebRTC joins (WHIP, page tokens) through node c, which
// answers 307 to b after asking Redis (the lease acquisition fails, then
// the owner lookup), and 100 straight to b, alternating, after one of each
// to warm up; each client is closed once connected. A join is timed from
// the end of the client's ICE gathering, right before its POST, until its
// PeerConnection is connected (ICE and DTLS up). Metrics: via-c-p50-ms,
// via-c-p99-ms, on-b-p50-ms, on-b-p99-ms.
func BenchmarkClusterJoin(b *testing.B) {
	const n, warmup = 100, 1
	c := startTestCluster(b, benchBinary(b), "a", "b", "c")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c.joinBot(ctx, b, "b")
	c.nodes["b"].logs.await(b, 5*time.Second, "room lease acquired", "room="+demoRoom)

	var viaC, onB []time.Duration
	for i := range warmup + n {
		vc := timeJoin(ctx, b, c.nodes["c"].base, c.nodes["b"].base)
		ob := timeJoin(ctx, b, c.nodes["b"].base, c.nodes["b"].base)
		if i >= warmup {
			viaC, onB = append(viaC, vc), append(onB, ob)
		}
	}
	reportLatency(b, "via-c", viaC)
	reportLatency(b, "on-b", onB)
}

// timeJoin joins room demo through base with a page token, checks that the
// session is on host, closes the client and returns the time from the
// POST to connected.
func timeJoin(ctx context.Context, tb testing.TB, base, host string) time.Duration {
	tb.Helper()
	token, err := rtctest.PageToken(ctx, base, demoRoom, "Bench", demoPIN)
	require.NoError(tb, err)
	// gathered gets the time ICE gathering completed: the offer is then
	// complete and rtctest posts it at once (it does no trickle ICE).
	gathered := make(chan time.Time, 1)
	prepare := func(pc *webrtc.PeerConnection) error {
		pc.OnICEGatheringStateChange(func(s webrtc.ICEGatheringState) {
			if s == webrtc.ICEGatheringStateComplete {
				select {
				case gathered <- time.Now():
				default:
				}
			}
		})
		return nil
	}
	cl, err := rtctest.Join(ctx, tb, base, demoRoom, token, rtctest.Options{Prepare: prepare})
	connected := time.Now()
	require.NoError(tb, err)
	require.True(tb, strings.HasPrefix(cl.Location(), host+"/whip/"+demoRoom+"/"), "session %q", cl.Location())
	require.NoError(tb, cl.Close())
	select {
	case posted := <-gathered:
		return connected.Sub(posted)
	case <-time.After(time.Second):
		tb.Fatal("no end of ICE gathering reported")
		return 0
	}
}

// BenchmarkClusterFailover: ten times, the node hosting room demo (with a
// pion participant sending toneHz) is killed (SIGKILL) while a phone
// answered on another node is linked to the room; the participant
// rejoins through the third node as soon as some node takes the room
// (rejoin), and the time from the kill until the phone hears the
// participant's tone again is taken (phoneHearsTone: a half second of
// the tone, so up to 0.5 s of it is listening). Then the phone hangs up,
// the killed node is started again with its storage, and the next round
// kills the room's new host. Metrics: failover-min-s, failover-p50-s,
// failover-mean-s, failover-max-s.
func BenchmarkClusterFailover(b *testing.B) {
	const rounds = 10
	c := startTestCluster(b, benchBinary(b), "a", "b", "c")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	host := "b"
	bot := c.joinBot(ctx, b, host)
	c.nodes[host].logs.await(b, 5*time.Second, "room lease acquired", "room="+demoRoom)
	var took []time.Duration
	var log []string
	for r := range rounds {
		phone, via := otherNodes(host, r)
		d, again := failover(ctx, b, c, bot, host, phone, via)
		next := c.nodeAt(b, again.Location())
		log = append(log, fmt.Sprintf("%s killed (phone on %s, rejoin via %s, room to %s) %v",
			host, phone, via, next, d.Round(time.Millisecond)))
		took = append(took, d)
		c.start(b, host)
		bot, host = again, next
	}
	b.Logf("rounds: %s", strings.Join(log, "; "))
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	b.ReportMetric(took[0].Seconds(), "failover-min-s")
	b.ReportMetric(percentile(took, 50).Seconds(), "failover-p50-s")
	b.ReportMetric((sum / time.Duration(len(took))).Seconds(), "failover-mean-s")
	b.ReportMetric(took[len(took)-1].Seconds(), "failover-max-s")
}

// failover is one round of BenchmarkClusterFailover: bot is in room demo
// on node host; a phone calls node phone and is linked to it; host is
// killed and the participant rejoins through node via. It returns the
// time from the kill until the phone heard the room again, and the new
// participant. The phone has hung up when it returns.
func failover(ctx context.Context, b *testing.B, c *testCluster, bot *rtctest.Client, host, phone, via string) (time.Duration, *rtctest.Client) {
	b.Helper()
	from := c.nodes[phone].logs.mark()
	call := c.dialDemo(ctx, b, phone)
	c.nodes[phone].logs.awaitAfter(b, from, 5*time.Second, "call linked to the room's node", "node="+host)
	phoneHearsTone(ctx, b, call, toneHz)

	killed := time.Now()
	require.NoError(b, c.nodes[host].cmd.Process.Kill())
	<-c.nodes[host].done
	require.NoError(b, bot.Close())
	again := c.rejoin(ctx, b, via)
	phoneHearsTone(ctx, b, call, toneHz)
	took := time.Since(killed)
	require.NoError(b, call.Err())
	require.NoError(b, call.Hangup(ctx))
	return took, again
}

// otherNodes returns the two nodes of a, b and c other than host, in
// turn's order.
func otherNodes(host string, turn int) (string, string) {
	others := slices.DeleteFunc([]string{"a", "b", "c"}, func(n string) bool { return n == host })
	if turn%2 == 1 {
		return others[1], others[0]
	}
	return others[0], others[1]
}

// nodeAt names the node whose base URL starts url.
func (c *testCluster) nodeAt(tb testing.TB, url string) string {
	tb.Helper()
	for name, n := range c.nodes {
		if strings.HasPrefix(url, n.base+"/") {
			return name
		}
	}
	tb.Fatalf("%s is on no node of the cluster", url)
	return ""
}

// reportLatency reports the 50th and 99th percentiles of times as
// name-p50-ms and name-p99-ms, and logs them with the extremes.
func reportLatency(b *testing.B, name string, times []time.Duration) {
	b.Helper()
	slices.Sort(times)
	p50, p99 := percentile(times, 50), percentile(times, 99)
	b.Logf("%s: %d samples, min %v, p50 %v, p99 %v, max %v", name, len(times),
		times[0], p50, p99, times[len(times)-1])
	b.ReportMetric(ms(p50), name+"-p50-ms")
	b.ReportMetric(ms(p99), name+"-p99-ms")
}

// percentile is the p-th percentile of sorted by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
