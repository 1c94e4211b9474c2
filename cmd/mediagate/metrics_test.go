package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/internal/promtest"
	"github.com/mediagate/mediagate/sip/siptest"
)

// TestMetricsEndToEnd: a phone call joins room demo through the IVR
// (the number keyed as RFC 4733 events, the PIN as SIP INFO) next to a
// WebRTC participant; an admin records the room and streams it to
// nginx-rtmp through the API. /metrics, parsed as the exposition format,
// then shows the call, its setup time, the participants by kind, the
// mixer at work with few late ticks, the phone's RTP (160 octets a PCMU
// packet), the keys by method, the running recording with octets written
// and the live egress with a plausible rate; no label holds the PIN, the
// calling number, the stream key, the API key or the ingest URL.
func TestMetricsEndToEnd(t *testing.T) {
	const (
		streamKey = "sk-metrics-0123456789abcdef"
		caller    = "+4930555123456"
	)
	ingest := startRTMPIngest(t)
	key, keyEnv := newAdminKey()
	g := startDialIn(t, keyEnv, "MEDIAGATE_STORAGE_DIR="+t.TempDir(), "MEDIAGATE_STREAM_ALLOW_PRIVATE=true")
	admin := apiClient{t, g.base, key}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pion, _ := joinToneBot(ctx, t, g)

	call, err := siptest.NewPhone(t).Dial(ctx, g.sip,
		siptest.Options{Codec: siptest.PCMU, TelephoneEvent: true, User: dialedURI, From: caller})
	require.NoError(t, err)
	g.logs.await(t, 5*time.Second, "call answered", "telephone_event=true")
	call.PlayTone(phoneToneHz, 0.3)
	require.NoError(t, call.Press(ctx, dialNumber+"#", siptest.RFC4733))
	g.logs.await(t, 5*time.Second, "lookup("+dialNumber+")")
	require.NoError(t, call.Press(ctx, demoPIN+"#", siptest.INFO))
	g.logs.await(t, 5*time.Second, "session: joined", "room="+demoRoom)

	started := admin.manifest(http.MethodPost, "/api/v1/rooms/"+demoRoom+"/recording/start", "", http.StatusCreated)
	ingestURL := fmt.Sprintf("rtmp://127.0.0.1:%d/live", ingest.port)
	code, body := admin.do(http.MethodPost, "/api/v1/rooms/"+demoRoom+"/egresses",
		fmt.Sprintf(`{"destinations":[{"id":"ingest","name":"nginx","url":%q,"key":%q}]}`, ingestURL, streamKey))
	require.Equal(t, http.StatusCreated, code, "%s", body)
	g.logs.await(t, 20*time.Second, "stream destination", "destination=ingest", "state=live")
	first := pion.Received()
	require.NoError(t, pion.WaitFrames(ctx, first+150), "3 s of the room go out")

	var f promtest.Families
	require.Eventually(t, func() bool {
		f = promtest.Scrape(t, g.base+"/metrics")
		return f.Find("mediagate_recordings_written_bytes_total") != nil &&
			f.Value(t, "mediagate_recordings_written_bytes_total") > 0 &&
			f.Value(t, "mediagate_egress_rate_bytes_per_second", "room", demoRoom, "destination", "ingest") > 0
	}, 15*time.Second, 200*time.Millisecond, "recording and egress show in the metrics")

	// The call.
	require.Equal(t, 1.0, f.Value(t, "mediagate_calls_active"))
	require.Equal(t, 1.0, f.Value(t, "mediagate_calls_total", "outcome", "answered"))
	require.Zero(t, f.Value(t, "mediagate_calls_total", "outcome", "rejected"))
	setup := f.Histogram(t, "mediagate_call_setup_seconds")
	require.Equal(t, uint64(1), setup.GetSampleCount())
	require.Greater(t, setup.GetSampleSum(), 0.0)
	require.Less(t, setup.GetSampleSum(), 5.0, "INVITE to ACK on loopback")
	require.Equal(t, 5.0, f.Value(t, "mediagate_dtmf_digits_total", "method", "rfc4733"), dialNumber+"#")
	require.Equal(t, 5.0, f.Value(t, "mediagate_dtmf_digits_total", "method", "info"), demoPIN+"#")
	require.Zero(t, f.Value(t, "mediagate_dtmf_digits_total", "method", "inband"))
	inPkts, inBytes := f.Value(t, "mediagate_rtp_packets_total", "direction", "in"), f.Value(t, "mediagate_rtp_bytes_total", "direction", "in")
	outPkts, outBytes := f.Value(t, "mediagate_rtp_packets_total", "direction", "out"), f.Value(t, "mediagate_rtp_bytes_total", "direction", "out")
	t.Logf("phone RTP: in %.0f packets %.0f octets, out %.0f packets %.0f octets", inPkts, inBytes, outPkts, outBytes)
	require.Greater(t, inPkts, 100.0)
	require.Greater(t, outPkts, 100.0)
	require.InEpsilon(t, 160*inPkts, inBytes, 0.15, "PCMU: 160 octets a packet (telephone events are 4)")
	require.Equal(t, 160*outPkts, outBytes, "PCMU: 160 octets a packet")
	require.Zero(t, f.Value(t, "mediagate_pin_failures_total", "channel", "sip"))

	// The room and its mixer.
	require.Equal(t, 1.0, f.Value(t, "mediagate_rooms_active"))
	require.Equal(t, 1.0, f.Value(t, "mediagate_participants", "kind", "phone"))
	require.Equal(t, 1.0, f.Value(t, "mediagate_participants", "kind", "webrtc"))
	require.Zero(t, f.Value(t, "mediagate_participants", "kind", "listener"))
	ticks, late := f.Value(t, "mediagate_mixer_ticks_total"), f.Value(t, "mediagate_mixer_late_ticks_total")
	t.Logf("mixer: %.0f ticks, %.0f late, %.0f shared and %.0f individual encodes, %.0f µs a tick on average", ticks, late,
		f.Value(t, "mediagate_mixer_encodes_total", "mode", "shared"), f.Value(t, "mediagate_mixer_encodes_total", "mode", "individual"),
		1e6*f.Histogram(t, "mediagate_mixer_tick_seconds").GetSampleSum()/ticks)
	require.Greater(t, ticks, 250.0, "5 s and more of 20 ms ticks")
	// A tick is late 10 ms after it was due; the race detector and the
	// other tests on a shared 2-core machine make many late, not most.
	require.Less(t, late/ticks, 0.5, "most ticks start on time")
	require.Equal(t, ticks, f.Value(t, "mediagate_mixer_tick_seconds"), "every tick of the room clock is timed")
	require.Less(t, f.Histogram(t, "mediagate_mixer_tick_seconds").GetSampleSum()/ticks, 0.02, "a tick takes less than its 20 ms")
	require.Greater(t, f.Value(t, "mediagate_mixer_encodes_total", "mode", "individual"), 0.0, "two speakers hear their own mix-minus")

	// The recording and the egress.
	require.Equal(t, 1.0, f.Value(t, "mediagate_recordings_active"))
	require.Equal(t, 1.0, f.Value(t, "mediagate_recordings_started_total"))
	require.Greater(t, f.Value(t, "mediagate_recordings_written_bytes_total"), 1000.0)
	dest := []string{"room", demoRoom, "destination", "ingest"}
	require.Equal(t, 1.0, f.Value(t, "mediagate_egress_state", append(dest, "state", "live")...))
	require.Zero(t, f.Value(t, "mediagate_egress_state", append(dest, "state", "backoff")...))
	rate := f.Value(t, "mediagate_egress_rate_bytes_per_second", dest...)
	t.Logf("egress: %.0f bytes/s, %.0f bytes sent", rate, f.Value(t, "mediagate_egress_sent_bytes_total", dest...))
	require.Greater(t, rate, 1000.0, "AAC audio and the slate: more than 8 kbit/s")
	require.Less(t, rate, 1e6, "and far less than 8 Mbit/s")
	require.Greater(t, f.Value(t, "mediagate_egress_sent_bytes_total", dest...), 10000.0)
	require.Zero(t, f.Value(t, "mediagate_egress_reconnects_total", dest...))
	require.Nil(t, f.Find("mediagate_redis_commands_total"), "one node: no Redis")

	for _, v := range f.LabelValues() {
		for _, secret := range []string{demoPIN, caller, strings.TrimPrefix(caller, "+"), streamKey, key, ingestURL, "nginx", string(started.ID)} {
			require.NotContains(t, v, secret, "a label value gives away %q", secret)
		}
	}
	require.NotContains(t, g.logs.text(), streamKey, "nor a log line the stream key")
	require.NoError(t, call.Err())
}
