package api

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/internal/meter"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/rtc"
	"github.com/mediagate/mediagate/sip"
	"github.com/mediagate/mediagate/stream"
)

// MetricsSources are where the node's metrics come from. The collector
// calls them at scrape time, so the domain packages keep plain counters
// (atomics, Stats methods) and never import the Prometheus client. A nil
// field leaves its series out. Every function must be quick and safe for
// concurrent use.
//
// Labels are bounded and carry no personal data or secret: outcomes,
// methods, kinds, reasons and commands are fixed sets; the only per-room
// series are the live egresses', labelled with the room ID and the
// destination's ID ("d1" or the ID the operator gave), never its URL,
// name or stream key.
type MetricsSources struct {
	// Calls are the SIP calls' counters (sip.UA.CallStats).
	Calls func() sip.CallStats
	// Guard are the SIP abuse guard's counters (sip.UA.GuardStats).
	Guard func() sip.GuardStats
	// Rooms counts the open rooms and their participants.
	Rooms func() RoomCounts
	// Mixer are the mixer totals of every room (room.Totals.Stats).
	Mixer func() room.TotalStats
	// WebRTCDrops are the datagrams the WebRTC port dropped
	// (rtc.Server.InputDrops).
	WebRTCDrops func() rtc.InputDrops
	// Recordings are the recorder's counters (recorder.Recorder.Stats).
	Recordings func() recorder.Stats
	// Egresses are the live streams (the RoomStreamer's Streams).
	Egresses func() []stream.Status
	// Redis are the Redis commands' counters (cluster.Redis.OpStats).
	Redis func() []cluster.RedisOpStats
	// PhonePINs are the wrong PINs and lockouts of the dial-in IVR; the
	// join page's are counted by the Server itself.
	PhonePINs func() PINCounts
}

// RoomCounts are the open rooms and their participants by kind.
type RoomCounts struct {
	Rooms int
	// Phone are SIP callers, WebRTC browsers and clients that publish
	// (WHIP), Listeners WHEP sessions that only receive the mix, Other
	// node-to-node links and players.
	Phone, WebRTC, Listeners, Other int
}

// PINCounts count wrong PINs and the attempts refused because the caller
// (Lockouts) or the room (RoomLockouts) was locked out.
type PINCounts struct {
	Failures, Lockouts, RoomLockouts uint64
}

// WithMetrics registers the collector of the node's metrics (see
// MetricsSources and docs/metrics.md) on the server's registry.
func WithMetrics(src MetricsSources) Option {
	return func(s *Server) { s.metrics = &src }
}

// pinCounters are the join page's PIN counts.
type pinCounters struct {
	failures, lockouts, roomLockouts atomic.Uint64
}

func (p *pinCounters) counts() PINCounts {
	return PINCounts{Failures: p.failures.Load(), Lockouts: p.lockouts.Load(), RoomLockouts: p.roomLockouts.Load()}
}

// desc builds a metric description.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("mediagate_"+name, help, labels, nil)
}

var (
	descCallsActive    = desc("calls_active", "Answered SIP calls in progress.")
	descCallsAdmitted  = desc("calls_admitted", "SIP calls held now, answered or still being set up: what sip.guard.max_calls caps.")
	descCalls          = desc("calls_total", "New SIP calls by how their setup ended: answered, rejected, canceled (by the caller), failed.", "outcome")
	descCallSetup      = desc("call_setup_seconds", "Time from an INVITE's arrival to the ACK of its 200 OK, for answered calls.")
	descDTMF           = desc("dtmf_digits_total", "DTMF key presses from callers, by the method that reported them first: rfc4733, info, inband.", "method")
	descRTPPackets     = desc("rtp_packets_total", "RTP packets of phone calls, received (in, accepted) and sent (out).", "direction")
	descRTPBytes       = desc("rtp_bytes_total", "RTP payload octets of phone calls, received (in) and sent (out).", "direction")
	descRTPMalformed   = desc("rtp_malformed_packets_total", "RTP and RTCP packets of phone calls dropped as malformed, by reason.", "reason")
	descRTPUnmatched   = desc("rtp_unmatched_packets_total", "RTP and RTCP packets on the shared RTP port (rtp.shared) from an address no call's SDP names, dropped.")
	descJitterLate     = desc("jitter_late_packets_total", "Phone RTP packets the jitter buffer dropped because their turn had passed.")
	descJitterLost     = desc("jitter_lost_packets_total", "Phone RTP packets never received that playout passed.")
	descJitterConceal  = desc("jitter_concealed_frames_total", "20 ms frames of phone audio the playout concealed.")
	descSIPDropped     = desc("sip_requests_dropped_total", "SIP requests dropped or refused before reaching a call: banned source, over rate, scanner User-Agent, call_limit (503 for a call cap), malformed (the RFC 4475 screen).", "reason")
	descSIPBans        = desc("sip_bans_total", "Sources the SIP guard banned.")
	descSIPBansActive  = desc("sip_bans_active", "Sources banned by the SIP guard now.")
	descBanListErrors  = desc("sip_ban_list_errors_total", "Failed lookups and pushes of the cluster's shared ban list.")
	descWebRTCDropped  = desc("webrtc_dropped_datagrams_total", "Datagrams the WebRTC port dropped before pion as malformed, by protocol: stun, dtls, rtp, other.", "reason")
	descRooms          = desc("rooms_active", "Rooms open on this node.")
	descParticipants   = desc("participants", "Participants in this node's rooms by kind: phone, webrtc (publishing), listener (WHEP), other (links, players).", "kind")
	descTicks          = desc("mixer_ticks_total", "20 ms mixing rounds of all rooms.")
	descLateTicks      = desc("mixer_late_ticks_total", "Mixing rounds that started more than half a frame (10 ms) after they were due.")
	descSkipped        = desc("mixer_skipped_frames_total", "20 ms frames the room clocks gave up on after a stall.")
	descTickSeconds    = desc("mixer_tick_seconds", "Time one mixing round of one room took.")
	descEncodes        = desc("mixer_encodes_total", "Encoder runs of the mixers: shared (one full mix for all its silent listeners) or individual (a speaker's own mix-minus); divide by mixer_ticks_total for encodes per tick.", "mode")
	descRecActive      = desc("recordings_active", "Recordings running.")
	descRecBytes       = desc("recordings_written_bytes_total", "Octets written to recording files.")
	descRecStarted     = desc("recordings_started_total", "Recordings started.")
	descRecInterrupted = desc("recordings_interrupted_total", "Recordings stopped by a write error.")
	descRecDeleted     = desc("recordings_deleted_total", "Recordings whose audio was deleted (expiry, erasure, an administrator).")
	descRecExpiring    = desc("recordings_expiring_total", "Expiry warnings raised for recordings.")
	descReceipts       = desc("receipts_written_total", "Signed deletion receipts written.")
	descEgressState    = desc("egress_state", "1 for the state each live-stream destination is in, 0 for the others.", "room", "destination", "state")
	descEgressRate     = desc("egress_rate_bytes_per_second", "Bytes per second written to a live-stream destination over the last second or so.", "room", "destination")
	descEgressBytes    = desc("egress_sent_bytes_total", "Bytes written to a live-stream destination over all its connections.", "room", "destination")
	descEgressReconn   = desc("egress_reconnects_total", "Connection attempts to a live-stream destination after the first.", "room", "destination")
	descRedisOps       = desc("redis_commands_total", "Redis commands sent, by command.", "command")
	descRedisErrs      = desc("redis_command_errors_total", "Redis commands that failed (not a missing key), by command.", "command")
	descRedisSeconds   = desc("redis_command_seconds", "Round-trip time of Redis commands, by command.", "command")
	descPINFailures    = desc("pin_failures_total", "Wrong room PINs, by channel: sip (the dial-in IVR), web (the join page).", "channel")
	descPINLockouts    = desc("pin_lockouts_total", "PIN attempts refused because of a lockout, by channel and by scope: source (the caller or client), room (the room's PIN entry).", "channel", "scope")
)

// egressStates are the states egress_state reports, in a fixed order.
var egressStates = []stream.State{stream.StateConnecting, stream.StateLive, stream.StateBackoff,
	stream.StateRejected, stream.StateError, stream.StateStopped, stream.StateFenced}

// nodeCollector turns MetricsSources into Prometheus series at scrape
// time (an "unchecked" collector: its series depend on what runs).
type nodeCollector struct {
	src MetricsSources
	web *pinCounters
}

var _ prometheus.Collector = (*nodeCollector)(nil)

// Describe sends nothing: the collector is unchecked, since the series
// of egresses and Redis commands come and go.
func (c *nodeCollector) Describe(chan<- *prometheus.Desc) {}

// Collect reads every source and sends its series.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src
	if s.Calls != nil {
		collectCalls(ch, s.Calls())
	}
	if s.Guard != nil {
		collectGuard(ch, s.Guard())
	}
	if s.Rooms != nil {
		rc := s.Rooms()
		gauge(ch, descRooms, float64(rc.Rooms))
		for _, k := range []struct {
			kind string
			n    int
		}{{"phone", rc.Phone}, {"webrtc", rc.WebRTC}, {"listener", rc.Listeners}, {"other", rc.Other}} {
			gauge(ch, descParticipants, float64(k.n), k.kind)
		}
	}
	if s.Mixer != nil {
		collectMixer(ch, s.Mixer())
	}
	if s.WebRTCDrops != nil {
		d := s.WebRTCDrops()
		counter(ch, descWebRTCDropped, d.STUN, "stun")
		counter(ch, descWebRTCDropped, d.DTLS, "dtls")
		counter(ch, descWebRTCDropped, d.RTP, "rtp")
		counter(ch, descWebRTCDropped, d.Other, "other")
	}
	if s.Recordings != nil {
		collectRecordings(ch, s.Recordings())
	}
	if s.Egresses != nil {
		collectEgresses(ch, s.Egresses())
	}
	if s.Redis != nil {
		for _, op := range s.Redis() {
			counter(ch, descRedisOps, op.Ops, op.Command)
			counter(ch, descRedisErrs, op.Errors, op.Command)
			histogram(ch, descRedisSeconds, op.Seconds, op.Command)
		}
	}
	if s.PhonePINs != nil {
		p := s.PhonePINs()
		collectPINs(ch, p, "sip")
	}
	if c.web != nil {
		collectPINs(ch, c.web.counts(), "web")
	}
}

// collectPINs reports channel's PIN counts.
func collectPINs(ch chan<- prometheus.Metric, p PINCounts, channel string) {
	counter(ch, descPINFailures, p.Failures, channel)
	counter(ch, descPINLockouts, p.Lockouts, channel, "source")
	counter(ch, descPINLockouts, p.RoomLockouts, channel, "room")
}

func collectCalls(ch chan<- prometheus.Metric, st sip.CallStats) {
	gauge(ch, descCallsActive, float64(st.Active))
	gauge(ch, descCallsAdmitted, float64(st.Admitted))
	for o := range sip.NumCallOutcomes {
		counter(ch, descCalls, st.Outcomes[o], o.String())
	}
	histogram(ch, descCallSetup, st.SetupSeconds)
	counter(ch, descDTMF, st.DTMF.RFC4733, sip.DTMFRFC4733.String())
	counter(ch, descDTMF, st.DTMF.Info, sip.DTMFInfo.String())
	counter(ch, descDTMF, st.DTMF.InBand, sip.DTMFInBand.String())
	m := st.Media
	counter(ch, descRTPPackets, m.PacketsIn, "in")
	counter(ch, descRTPPackets, m.PacketsOut, "out")
	counter(ch, descRTPBytes, m.BytesIn, "in")
	counter(ch, descRTPBytes, m.BytesOut, "out")
	for r := range sip.NumDropReasons {
		counter(ch, descRTPMalformed, m.MalformedBy[r], sip.DropReason(r).String())
	}
	counter(ch, descRTPUnmatched, m.Unmatched)
	counter(ch, descJitterLate, m.Late)
	counter(ch, descJitterLost, m.Lost)
	counter(ch, descJitterConceal, m.Concealed)
	counter(ch, descSIPDropped, st.Screened, "malformed")
}

func collectGuard(ch chan<- prometheus.Metric, g sip.GuardStats) {
	counter(ch, descSIPDropped, g.DroppedBanned, "banned")
	counter(ch, descSIPDropped, g.DroppedRate, "rate")
	counter(ch, descSIPDropped, g.DroppedScanner, "scanner")
	counter(ch, descSIPDropped, g.RefusedCalls, "call_limit")
	counter(ch, descSIPBans, g.Bans)
	gauge(ch, descSIPBansActive, float64(g.ActiveBans))
	counter(ch, descBanListErrors, g.BanListErrors)
}

func collectMixer(ch chan<- prometheus.Metric, t room.TotalStats) {
	counter(ch, descTicks, t.Ticks)
	counter(ch, descLateTicks, t.LateTicks)
	counter(ch, descSkipped, t.Skipped)
	histogram(ch, descTickSeconds, t.TickSeconds)
	counter(ch, descEncodes, t.SharedEncodes, "shared")
	counter(ch, descEncodes, t.OwnEncodes, "individual")
}

func collectRecordings(ch chan<- prometheus.Metric, st recorder.Stats) {
	gauge(ch, descRecActive, float64(st.Active))
	counter(ch, descRecBytes, st.BytesWritten)
	counter(ch, descRecStarted, st.Events[recorder.EventStarted])
	counter(ch, descRecInterrupted, st.Events[recorder.EventInterrupted])
	counter(ch, descRecDeleted, st.Events[recorder.EventDeleted])
	counter(ch, descRecExpiring, st.Events[recorder.EventExpiring])
	counter(ch, descReceipts, st.ReceiptsWritten)
}

func collectEgresses(ch chan<- prometheus.Metric, all []stream.Status) {
	for _, st := range all {
		if st.Ended {
			continue
		}
		r := string(st.Room)
		for _, d := range st.Destinations {
			id := string(d.ID)
			for _, s := range egressStates {
				v := 0.0
				if d.State == s {
					v = 1
				}
				gauge(ch, descEgressState, v, r, id, string(s))
			}
			gauge(ch, descEgressRate, float64(d.Bitrate)/8, r, id)
			counter(ch, descEgressBytes, d.Bytes, r, id)
			counter(ch, descEgressReconn, uint64(max(d.Reconnects, 0)), r, id)
		}
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func histogram(ch chan<- prometheus.Metric, d *prometheus.Desc, h meter.HistogramSnapshot, labels ...string) {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Cumulative[i]
	}
	ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, labels...)
}
