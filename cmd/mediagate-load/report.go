package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one scenario's figures, as bench/results/latest.json holds
// them. Fields that were not measured stay null (pointers) rather than 0.
type Report struct {
	Scenario     string `json:"scenario"`
	Target       string `json:"target"` // mediagate or janus
	Participants int    `json:"participants"`
	RoomSize     int    `json:"room_size"`
	Speakers     int    `json:"speakers_per_room"`
	Failed       int    `json:"failed_joins"`
	// Dropped counts calls the gateway hung up before the load did.
	Dropped int `json:"dropped_by_gateway"`
	// NotMeasured, when set, says why the row has no figures (Janus failed).
	NotMeasured string `json:"not_measured,omitempty"`

	WindowS float64 `json:"window_s"`
	// Setup is INVITE sent → 200 OK received (mediagate) or the join
	// request's round trip (Janus).
	SetupP50Ms float64 `json:"setup_p50_ms"`
	SetupP99Ms float64 `json:"setup_p99_ms"`
	// GatewayCPUPct is the gateway's CPU time over the window, in % of one
	// core; CPUPerParticipantMs is CPU milliseconds per participant per
	// second of call.
	GatewayCPUPct       float64 `json:"gateway_cpu_pct"`
	CPUPerParticipantMs float64 `json:"cpu_ms_per_participant_s"`
	RSSBytes            int64   `json:"rss_bytes"`
	// RSSPerParticipantKB is (RSS loaded − RSS before the first join) per
	// participant.
	RSSPerParticipantKB float64 `json:"rss_kb_per_participant"`
	// LateTicksPct and EncodesPerTick come from mediagate's /metrics.
	LateTicksPct   *float64 `json:"late_ticks_pct"`
	EncodesPerTick *float64 `json:"encodes_per_tick"`
	// RecordingsActive and EgressesLive are read at the window's end.
	RecordingsActive int     `json:"recordings_active"`
	EgressesLive     int     `json:"egresses_live"`
	LossPct          float64 `json:"loss_pct"`
	// Delay is phone → gateway → phone: a probe burst's first sample sent
	// by the room's first speaker to its arrival at the other members.
	DelaySamples int     `json:"delay_samples"`
	DelayP50Ms   float64 `json:"delay_p50_ms"`
	DelayP99Ms   float64 `json:"delay_p99_ms"`
	// DelayPaths splits the delay by the kinds of sender and receiver
	// (phone → webrtc, webrtc → phone, ...), in the order of paths.
	DelayPaths []PathDelay `json:"delay_paths,omitempty"`
	LoadCPUPct float64     `json:"load_generator_cpu_pct"`
	// CPUPctPerUnit is what each Unit ("recording", "egress") added to the
	// previous row's gateway CPU, in % of one core.
	CPUPctPerUnit *float64 `json:"cpu_pct_per_unit,omitempty"`
	Unit          string   `json:"unit,omitempty"`
	// JanusRatio is this scenario's CPU per participant over Janus
	// AudioBridge's for the same load, when both ran.
	JanusRatio *float64 `json:"janus_ratio"`
}

// PathDelay is the delay of one path: a probe from a participant of kind
// From to one of kind To.
type PathDelay struct {
	From    string  `json:"from"`
	To      string  `json:"to"`
	Samples int     `json:"samples"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
}

// fill computes the report's figures from the samples around the window.
func (r *Report) fill(s0, s1 sample, joined int, rss, rssIdle int64, paths []pathDelay, mixer bool) {
	win := s1.at.Sub(s0.at).Seconds()
	r.WindowS = math.Round(win*100) / 100
	gw := (s1.gwCPU - s0.gwCPU).Seconds()
	r.GatewayCPUPct = round2(100 * gw / win)
	r.CPUPerParticipantMs = round3(1000 * gw / win / float64(joined))
	r.LoadCPUPct = round2(100 * (s1.selfCPU - s0.selfCPU).Seconds() / win)
	r.RSSBytes = rss
	r.RSSPerParticipantKB = round2(float64(rss-rssIdle) / 1024 / float64(joined))
	if exp := s1.expected - s0.expected; exp > 0 {
		r.LossPct = round3(100 * max(0, float64(exp-(s1.gotten-s0.gotten))) / float64(exp))
	}
	if mixer {
		if ticks := s1.mixer.ticks - s0.mixer.ticks; ticks > 0 {
			late := round3(100 * (s1.mixer.late - s0.mixer.late) / ticks)
			enc := round2((s1.mixer.sharedEnc + s1.mixer.individual - s0.mixer.sharedEnc - s0.mixer.individual) / ticks)
			r.LateTicksPct, r.EncodesPerTick = &late, &enc
		}
		r.RecordingsActive, r.EgressesLive = int(s1.mixer.recordings), int(s1.mixer.egressesLive)
	}
	delays := make([]time.Duration, len(paths))
	byPath := map[[2]string][]time.Duration{}
	for i, p := range paths {
		delays[i] = p.d
		byPath[[2]string{p.from, p.to}] = append(byPath[[2]string{p.from, p.to}], p.d)
	}
	r.DelaySamples = len(delays)
	r.DelayP50Ms, r.DelayP99Ms = ms(percentile(delays, 50)), ms(percentile(delays, 99))
	if len(byPath) > 1 {
		for _, k := range slices.SortedFunc(maps.Keys(byPath), func(a, b [2]string) int {
			return strings.Compare(a[0]+a[1], b[0]+b[1])
		}) {
			d := byPath[k]
			r.DelayPaths = append(r.DelayPaths, PathDelay{From: k[0], To: k[1], Samples: len(d),
				P50Ms: ms(percentile(d, 50)), P99Ms: ms(percentile(d, 99))})
		}
	}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// setJanusRatios sets each mediagate report's JanusRatio from the Janus
// report of the same scenario.
func setJanusRatios(reps []Report) {
	for i := range reps {
		if reps[i].Target != "mediagate" || reps[i].NotMeasured != "" {
			continue
		}
		j := slices.IndexFunc(reps, func(o Report) bool {
			return o.Target == "janus" && o.Scenario == reps[i].Scenario && o.NotMeasured == "" &&
				o.CPUPerParticipantMs > 0
		})
		if j >= 0 {
			v := round3(reps[i].CPUPerParticipantMs / reps[j].CPUPerParticipantMs)
			reps[i].JanusRatio = &v
		}
	}
}

// printTable writes the reports as one aligned table.
func printTable(w io.Writer, reps []Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\ttarget\tparticipants\tgateway CPU %\tCPU ms/participant/s\tRSS KB/participant\t"+
		"late ticks %\tencodes/tick\tloss %\tdelay p50/p99 ms\tdelay by path p50/p99 ms\tsetup p50/p99 ms\tJanus ratio\tload gen CPU %\tnote")
	for _, r := range reps {
		if r.NotMeasured != "" {
			fmt.Fprintf(tw, "%s\t%s\t%d\tnot measured\t—\t—\t—\t—\t—\t—\t—\t—\t—\t—\t%s\n", r.Scenario,
				r.Target, r.Participants, r.NotMeasured)
			continue
		}
		note := ""
		if r.Failed > 0 {
			note = fmt.Sprintf("%d of %d joins failed", r.Failed, r.Participants)
		}
		if r.RecordingsActive > 0 || r.EgressesLive > 0 {
			note = strings.TrimSpace(fmt.Sprintf("%s %d recording, %d streaming;", note, r.RecordingsActive, r.EgressesLive))
		}
		if r.CPUPctPerUnit != nil {
			note = strings.TrimSpace(fmt.Sprintf("%s %.2f %% of a core per %s", note, *r.CPUPctPerUnit, r.Unit))
		}
		if r.Dropped > 0 {
			note = strings.TrimSpace(fmt.Sprintf("%s %d dropped by the gateway", note, r.Dropped))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.3f\t%.1f\t%s\t%s\t%.2f\t%s\t%s\t%.1f/%.1f\t%s\t%.1f\t%s\n",
			r.Scenario, r.Target, r.Participants-r.Failed, r.GatewayCPUPct, r.CPUPerParticipantMs,
			r.RSSPerParticipantKB, optional(r.LateTicksPct, "%.2f"), optional(r.EncodesPerTick, "%.2f"), r.LossPct, delayCell(r),
			pathsCell(r), r.SetupP50Ms, r.SetupP99Ms, optional(r.JanusRatio, "%.2f"), r.LoadCPUPct, note)
	}
	_ = tw.Flush()
}

func optional(v *float64, format string) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf(format, *v)
}

func delayCell(r Report) string {
	if r.DelaySamples == 0 {
		return "—"
	}
	return strings.TrimSpace(fmt.Sprintf("%.1f/%.1f", r.DelayP50Ms, r.DelayP99Ms))
}

// pathsCell is the delay by path, when there is more than one.
func pathsCell(r Report) string {
	if len(r.DelayPaths) == 0 {
		return "—"
	}
	var parts []string
	for _, p := range r.DelayPaths {
		parts = append(parts, fmt.Sprintf("%s→%s %.1f/%.1f", p.From, p.To, p.P50Ms, p.P99Ms))
	}
	return strings.Join(parts, ", ")
}
