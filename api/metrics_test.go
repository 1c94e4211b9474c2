package api

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/internal/meter"
	"github.com/mediagate/mediagate/internal/promtest"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/rtc"
	"github.com/mediagate/mediagate/sip"
	"github.com/mediagate/mediagate/stream"
)

// fakeSources returns sources with distinct values everywhere, so a
// value in the wrong series shows.
func fakeSources() MetricsSources {
	setup := meter.NewHistogram(sip.SetupBuckets...)
	setup.Observe(700 * time.Millisecond)
	tick := meter.NewHistogram(room.TickBuckets...)
	tick.Observe(300 * time.Microsecond)
	tick.Observe(30 * time.Millisecond)
	redisLat := meter.NewHistogram(cluster.RedisLatencyBuckets...)
	redisLat.Observe(time.Millisecond)
	calls := sip.CallStats{Active: 2, Admitted: 3, SetupSeconds: setup.Snapshot(), Screened: 7,
		DTMF:  sip.DTMFCounts{RFC4733: 3, Info: 4, InBand: 5},
		Media: sip.MediaTotals{PacketsIn: 100, BytesIn: 16000, PacketsOut: 90, BytesOut: 14400, Late: 1, Lost: 2, Concealed: 3}}
	calls.Outcomes[sip.OutcomeAnswered], calls.Outcomes[sip.OutcomeRejected] = 6, 8
	calls.Media.MalformedBy[sip.DropRTPShort] = 9
	var rec recorder.Stats
	rec.Active, rec.BytesWritten, rec.ReceiptsWritten = 1, 4096, 2
	rec.Events[recorder.EventDeleted], rec.Events[recorder.EventExpiring] = 2, 3
	return MetricsSources{
		Calls: func() sip.CallStats { return calls },
		Guard: func() sip.GuardStats {
			return sip.GuardStats{DroppedBanned: 11, DroppedRate: 12, DroppedScanner: 13, RefusedCalls: 14, Bans: 15, ActiveBans: 1}
		},
		Rooms: func() RoomCounts { return RoomCounts{Rooms: 1, Phone: 1, WebRTC: 2, Listeners: 3} },
		Mixer: func() room.TotalStats {
			return room.TotalStats{Ticks: 500, LateTicks: 1, SharedEncodes: 500, OwnEncodes: 250, TickSeconds: tick.Snapshot()}
		},
		WebRTCDrops: func() rtc.InputDrops { return rtc.InputDrops{STUN: 21, DTLS: 22} },
		Recordings:  func() recorder.Stats { return rec },
		Egresses: func() []stream.Status {
			return []stream.Status{{Room: "board", Destinations: []stream.DestinationStatus{
				{ID: "d1", Name: "YouTube", URL: "rtmp://a.example/live", State: stream.StateLive, Bitrate: 128000, Bytes: 5000, Reconnects: 2},
			}}, {Room: "old", Ended: true, Destinations: []stream.DestinationStatus{{ID: "d1", State: stream.StateStopped}}}}
		},
		Redis: func() []cluster.RedisOpStats {
			return []cluster.RedisOpStats{{Command: "evalsha", Ops: 40, Errors: 1, Seconds: redisLat.Snapshot()}}
		},
		PhonePINs: func() PINCounts { return PINCounts{Failures: 31, Lockouts: 32, RoomLockouts: 33} },
	}
}

// TestMetricsCollector: every source reaches its series with its type,
// labels and value, read back from the exposition format.
func TestMetricsCollector(t *testing.T) {
	_, base := startServer(t, WithMetrics(fakeSources()))
	f := promtest.Scrape(t, base+"/metrics")

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
		typ    dto.MetricType
	}{
		{"mediagate_calls_active", nil, 2, dto.MetricType_GAUGE},
		{"mediagate_calls_admitted", nil, 3, dto.MetricType_GAUGE},
		{"mediagate_calls_total", []string{"outcome", "answered"}, 6, dto.MetricType_COUNTER},
		{"mediagate_calls_total", []string{"outcome", "rejected"}, 8, dto.MetricType_COUNTER},
		{"mediagate_calls_total", []string{"outcome", "canceled"}, 0, dto.MetricType_COUNTER},
		{"mediagate_call_setup_seconds", nil, 1, dto.MetricType_HISTOGRAM},
		{"mediagate_dtmf_digits_total", []string{"method", "rfc4733"}, 3, dto.MetricType_COUNTER},
		{"mediagate_dtmf_digits_total", []string{"method", "info"}, 4, dto.MetricType_COUNTER},
		{"mediagate_dtmf_digits_total", []string{"method", "inband"}, 5, dto.MetricType_COUNTER},
		{"mediagate_rtp_packets_total", []string{"direction", "in"}, 100, dto.MetricType_COUNTER},
		{"mediagate_rtp_bytes_total", []string{"direction", "out"}, 14400, dto.MetricType_COUNTER},
		{"mediagate_rtp_malformed_packets_total", []string{"reason", "rtp_short"}, 9, dto.MetricType_COUNTER},
		{"mediagate_jitter_late_packets_total", nil, 1, dto.MetricType_COUNTER},
		{"mediagate_jitter_lost_packets_total", nil, 2, dto.MetricType_COUNTER},
		{"mediagate_jitter_concealed_frames_total", nil, 3, dto.MetricType_COUNTER},
		{"mediagate_sip_requests_dropped_total", []string{"reason", "malformed"}, 7, dto.MetricType_COUNTER},
		{"mediagate_sip_requests_dropped_total", []string{"reason", "banned"}, 11, dto.MetricType_COUNTER},
		{"mediagate_sip_requests_dropped_total", []string{"reason", "call_limit"}, 14, dto.MetricType_COUNTER},
		{"mediagate_sip_bans_total", nil, 15, dto.MetricType_COUNTER},
		{"mediagate_sip_bans_active", nil, 1, dto.MetricType_GAUGE},
		{"mediagate_webrtc_dropped_datagrams_total", []string{"reason", "dtls"}, 22, dto.MetricType_COUNTER},
		{"mediagate_rooms_active", nil, 1, dto.MetricType_GAUGE},
		{"mediagate_participants", []string{"kind", "webrtc"}, 2, dto.MetricType_GAUGE},
		{"mediagate_participants", []string{"kind", "listener"}, 3, dto.MetricType_GAUGE},
		{"mediagate_mixer_ticks_total", nil, 500, dto.MetricType_COUNTER},
		{"mediagate_mixer_late_ticks_total", nil, 1, dto.MetricType_COUNTER},
		{"mediagate_mixer_encodes_total", []string{"mode", "shared"}, 500, dto.MetricType_COUNTER},
		{"mediagate_mixer_encodes_total", []string{"mode", "individual"}, 250, dto.MetricType_COUNTER},
		{"mediagate_mixer_tick_seconds", nil, 2, dto.MetricType_HISTOGRAM},
		{"mediagate_recordings_active", nil, 1, dto.MetricType_GAUGE},
		{"mediagate_recordings_written_bytes_total", nil, 4096, dto.MetricType_COUNTER},
		{"mediagate_recordings_deleted_total", nil, 2, dto.MetricType_COUNTER},
		{"mediagate_recordings_expiring_total", nil, 3, dto.MetricType_COUNTER},
		{"mediagate_receipts_written_total", nil, 2, dto.MetricType_COUNTER},
		{"mediagate_egress_state", []string{"room", "board", "destination", "d1", "state", "live"}, 1, dto.MetricType_GAUGE},
		{"mediagate_egress_state", []string{"room", "board", "destination", "d1", "state", "backoff"}, 0, dto.MetricType_GAUGE},
		{"mediagate_egress_rate_bytes_per_second", []string{"room", "board"}, 16000, dto.MetricType_GAUGE},
		{"mediagate_egress_sent_bytes_total", []string{"room", "board"}, 5000, dto.MetricType_COUNTER},
		{"mediagate_egress_reconnects_total", []string{"room", "board"}, 2, dto.MetricType_COUNTER},
		{"mediagate_redis_commands_total", []string{"command", "evalsha"}, 40, dto.MetricType_COUNTER},
		{"mediagate_redis_command_errors_total", []string{"command", "evalsha"}, 1, dto.MetricType_COUNTER},
		{"mediagate_redis_command_seconds", []string{"command", "evalsha"}, 1, dto.MetricType_HISTOGRAM},
		{"mediagate_pin_failures_total", []string{"channel", "sip"}, 31, dto.MetricType_COUNTER},
		{"mediagate_pin_lockouts_total", []string{"channel", "sip", "scope", "source"}, 32, dto.MetricType_COUNTER},
		{"mediagate_pin_lockouts_total", []string{"channel", "sip", "scope", "room"}, 33, dto.MetricType_COUNTER},
	} {
		require.Equal(t, c.want, f.Value(t, c.name, c.labels...), "%s%v", c.name, c.labels)
		require.Equal(t, c.typ, f.Type(c.name), c.name)
	}
	h := f.Histogram(t, "mediagate_mixer_tick_seconds")
	require.InDelta(t, 0.0303, h.GetSampleSum(), 1e-9)
	for _, b := range h.GetBucket() {
		switch b.GetUpperBound() {
		case 0.00025:
			require.Zero(t, b.GetCumulativeCount())
		case 0.0005, 0.02:
			require.Equal(t, uint64(1), b.GetCumulativeCount(), "bucket %v", b.GetUpperBound())
		case 0.05:
			require.Equal(t, uint64(2), b.GetCumulativeCount())
		}
	}
	require.Nil(t, f.Find("mediagate_egress_state", "room", "old"), "an ended egress has no series")
	vals := f.LabelValues()
	require.False(t, slices.Contains(vals, "YouTube"), "no destination name in labels")
	require.False(t, slices.Contains(vals, "rtmp://a.example/live"), "no URL in labels")
}

// TestMetricsWithoutSources: a server without WithMetrics exposes none of
// the node's series, and nil sources are skipped.
func TestMetricsWithoutSources(t *testing.T) {
	_, base := startServer(t, WithMetrics(MetricsSources{Rooms: func() RoomCounts { return RoomCounts{Rooms: 3} }}))
	f := promtest.Scrape(t, base+"/metrics")
	require.Equal(t, 3.0, f.Value(t, "mediagate_rooms_active"))
	require.Nil(t, f.Find("mediagate_calls_active"))
	require.NotNil(t, f.Find("mediagate_build_info"))
}

// TestMetricsDocumented: docs/metrics.md lists exactly the mediagate_
// series a node exposes, the webhook ones included.
func TestMetricsDocumented(t *testing.T) {
	s, base := startServer(t, WithMetrics(fakeSources()))
	hooks := NewWebhooks(slog.New(slog.DiscardHandler), []WebhookEndpoint{
		{Name: "platform", URL: "http://127.0.0.1:9/hooks", Secret: "0123456789abcdef"}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hooks.Close(ctx)
	})
	s.Registry().MustRegister(hooks)
	res, err := http.Get(base + "/healthz") // counts one HTTP request
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	var exposed []string
	for name := range promtest.Scrape(t, base+"/metrics") {
		if strings.HasPrefix(name, "mediagate_") {
			exposed = append(exposed, name)
		}
	}
	doc, err := os.ReadFile("../docs/metrics.md")
	require.NoError(t, err)
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(mediagate_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	slices.Sort(exposed)
	slices.Sort(documented)
	require.Equal(t, documented, exposed, "docs/metrics.md against /metrics")
}
