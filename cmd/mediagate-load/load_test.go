package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediagate/mediagate/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestMixedRoomReport runs the suite's mixed scenario in small: the real
// gateway (built without -race, as the benchmark measures it, and with
// rtp.shared, as the suite runs it), one room of
// two SIP callers and two WHIP participants, a caller and a WHIP
// participant speaking, a 4 s window. The report must be sane: every
// participant joined and stayed, the listeners heard the probe bursts (so
// audio went phone → room → phone and WebRTC), little loss, and the
// gateway's CPU, RSS and mixer counters were read.
func TestMixedRoomReport(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mediagate")
	build := exec.Command("go", "build", "-o", bin, "../mediagate")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building mediagate: %s", out)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := options{scenario: "test", calls: 4, roomSize: 4, speakers: 2, webrtcPerRoom: 2, host: "127.0.0.1",
		numberBase: 7000, rate: 20, warmup: 2 * time.Second, duration: 4 * time.Second,
		probeEvery: time.Second, sharedRTP: true}
	clients, err := newWebRTCClients(o.host)
	require.NoError(t, err)
	t.Cleanup(clients.close)
	o.webrtc, o.opus = clients, &opusLoops{}
	rep, err := runMediagate(ctx, bin, o)
	require.NoError(t, err)
	var table strings.Builder
	printTable(&table, []Report{rep})
	t.Logf("\n%s", table.String())

	require.Equal(t, "mediagate", rep.Target)
	require.Zero(t, rep.Failed, "joins failed")
	require.Zero(t, rep.Dropped, "calls the gateway hung up")
	require.Less(t, rep.LossPct, 5.0)
	// Both speakers probe (a caller and a WHIP participant, half a second
	// apart); the two others, a caller and a WHIP participant, hear about
	// 4 bursts of each in 4 s: every path is measured. Allow for a loaded
	// machine.
	require.GreaterOrEqual(t, rep.DelaySamples, 10, "probe bursts heard")
	paths := map[string]int{}
	for _, p := range rep.DelayPaths {
		paths[p.From+"→"+p.To] = p.Samples
		require.Positive(t, p.P50Ms, "%s→%s", p.From, p.To)
	}
	for _, p := range []string{"phone→phone", "phone→webrtc", "webrtc→phone", "webrtc→webrtc"} {
		require.GreaterOrEqual(t, paths[p], 2, "%s: %v", p, paths)
	}
	require.Greater(t, rep.DelayP50Ms, 0.0)
	// The generator runs under the race detector here, which slows its
	// Opus decoding and pion several-fold: the median is the figure to
	// hold to the bound, the tail is the machine's.
	require.Less(t, rep.DelayP50Ms, 300.0)
	require.Greater(t, rep.SetupP50Ms, 0.0)
	require.Greater(t, rep.GatewayCPUPct, 0.0)
	require.Greater(t, rep.CPUPerParticipantMs, 0.0)
	require.Positive(t, rep.RSSBytes)
	require.NotNil(t, rep.LateTicksPct, "late ticks from /metrics")
	require.NotNil(t, rep.EncodesPerTick)
	require.Positive(t, *rep.EncodesPerTick, "the room encoded its mixes")

	// The JSON and the table carry the row.
	path := filepath.Join(t.TempDir(), "latest.json")
	require.NoError(t, writeJSON(path, []Report{rep}))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc struct {
		Results []Report `json:"results"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	require.Equal(t, []Report{rep}, doc.Results)
	require.Contains(t, table.String(), "test")
}

func TestHeldProbe(t *testing.T) {
	frame := func(parts ...[]byte) []int16 {
		pcm := make([]int16, frameSamples)
		sum := make([]float64, frameSamples)
		for _, p := range parts {
			media.DecodeULaw(pcm, p)
			for i, s := range pcm {
				sum[i] += float64(s)
			}
		}
		for i := range pcm {
			pcm[i] = int16(sum[i])
		}
		return pcm
	}
	bg := func(freq float64) []byte { return toneULaw(freq, bgAmp, frameSamples) }
	tests := []struct {
		name string
		pcm  []int16
		want int // the probeSlot, -1 for none
	}{
		{"probe alone", frame(probeULaw[0]), 0},
		{"second prober's probe", frame(probeULaw[1]), 1},
		{"probe over five speakers", frame(probeULaw[0], bg(300), bg(390), bg(480), bg(570), bg(660)), 0},
		{"second probe over five speakers", frame(probeULaw[1], bg(300), bg(390), bg(480), bg(570), bg(660)), 1},
		{"speakers only", frame(bg(300), bg(390)), -1},
		{"silence", frame(silenceULaw), -1},
		{"quiet probe", frame(toneULaw(probeFreqs[0], 0.005, frameSamples)), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slot, ok := heldProbe(tt.pcm, 8000)
			if tt.want < 0 {
				require.False(t, ok)
				return
			}
			require.True(t, ok)
			require.Equal(t, tt.want, slot)
		})
	}
}

func TestOnsetIndex(t *testing.T) {
	probe := make([]int16, 2*frameSamples)
	media.DecodeULaw(probe[:frameSamples], probeULaw[0])
	media.DecodeULaw(probe[frameSamples:], probeULaw[0])
	for _, start := range []int{40, 160, 200} {
		all := make([]int16, 2*frameSamples)
		copy(all[start:], probe)
		require.InDelta(t, start, onsetIndex(all[:frameSamples], all[frameSamples:], 20), 20, "onset at %d", start)
	}
}

func TestLossCountersAcrossWrap(t *testing.T) {
	var l receiver
	l.init(legConfig{room: &roomState{}})
	for _, seq := range []uint16{65530, 65531, 65533, 65535, 0, 1, 3, 2} {
		l.count(seq)
	}
	exp, got := l.lossCounters()
	require.Equal(t, int64(10), exp, "65530 … 3 across the wrap")
	require.Equal(t, int64(8), got)
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, percentile(ds, 50))
	require.Equal(t, 99*time.Millisecond, percentile(ds, 99))
	require.Equal(t, 100*time.Millisecond, ds[0], "the input stays unsorted")
	require.Zero(t, percentile(nil, 50))
}

// TestDelayPaths: the report splits the delays by path, sorted, when
// there is more than one path, and keeps the overall figures.
func TestDelayPaths(t *testing.T) {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	var paths []pathDelay
	for i := 1; i <= 10; i++ {
		paths = append(paths, pathDelay{from: kindWebRTC, to: kindPhone, d: ms(40 + i)},
			pathDelay{from: kindPhone, to: kindWebRTC, d: ms(10 + i)})
	}
	now := time.Now()
	var r Report
	r.fill(sample{at: now}, sample{at: now.Add(time.Second)}, 4, 0, 0, paths, false)
	require.Equal(t, 20, r.DelaySamples)
	require.Equal(t, []PathDelay{
		{From: kindPhone, To: kindWebRTC, Samples: 10, P50Ms: 15, P99Ms: 20},
		{From: kindWebRTC, To: kindPhone, Samples: 10, P50Ms: 45, P99Ms: 50},
	}, r.DelayPaths)
	require.Contains(t, pathsCell(r), "phone→webrtc 15.0/20.0, webrtc→phone 45.0/50.0")

	r = Report{}
	r.fill(sample{at: now}, sample{at: now.Add(time.Second)}, 4, 0, 0, paths[:1], false)
	require.Nil(t, r.DelayPaths, "one path: the overall figures say it all")
}

func TestJanusRatio(t *testing.T) {
	reps := []Report{
		{Scenario: "a", Target: "mediagate", CPUPerParticipantMs: 0.5},
		{Scenario: "a", Target: "janus", CPUPerParticipantMs: 2},
		{Scenario: "b", Target: "mediagate", CPUPerParticipantMs: 1},
	}
	setJanusRatios(reps)
	require.NotNil(t, reps[0].JanusRatio)
	require.InDelta(t, 0.25, *reps[0].JanusRatio, 1e-9)
	require.Nil(t, reps[2].JanusRatio, "no Janus row for b")
}
