package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediagate/mediagate/sip"
)

// registerSIPMetrics exposes the SIP user agent's calls and its abuse
// guard's counters on /metrics, read when scraped: the calls a node has
// (to watch sip.guard.max_calls hold), the bans it imposed and holds, and
// the calls it refused for a cap.
func registerSIPMetrics(reg prometheus.Registerer, ua *sip.UA) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mediagate_sip_calls",
			Help: "SIP calls the node has now, answered or being set up.",
		}, func() float64 { return float64(ua.Calls()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mediagate_sip_guard_bans_total",
			Help: "Sources the SIP abuse guard banned (sip.guard), over their rate or for a scanner's User-Agent.",
		}, func() float64 { return float64(ua.GuardStats().Bans) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mediagate_sip_guard_active_bans",
			Help: "Sources the SIP abuse guard holds banned now.",
		}, func() float64 { return float64(ua.GuardStats().ActiveBans) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mediagate_sip_guard_refused_calls_total",
			Help: "INVITEs answered 503 for sip.guard.max_calls or max_calls_per_source.",
		}, func() float64 { return float64(ua.GuardStats().RefusedCalls) }),
	)
}
