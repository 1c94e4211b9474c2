package sip

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/sip/siptest"
)

// TestAudioBetweenTelephoneEvents: a phone that goes on sending audio
// between the telephone events of its key presses (baresip does; the
// events take sequence numbers of the same RTP stream, RFC 4733 §2.1)
// keeps its audio whole: while and after it keys 1001#, every frame the
// call plays out holds its 1 kHz tone, the jitter buffer never conceals or
// re-anchors, and its delay stays low. Taking each event's sequence number
// for a lost audio packet, the buffer concealed one frame in two and added
// 20 ms of delay per 40 ms of keys (1.2 s for five keys), for good.
func TestAudioBetweenTelephoneEvents(t *testing.T) {
	type heard struct {
		pcm   []int16
		stats Stats
	}
	result := make(chan heard, 1)
	calls := make(chan *Call, 1)
	u := startUA(t, HandlerFunc(func(ctx context.Context, in *IncomingCall) {
		c, err := in.Answer()
		if err != nil {
			return
		}
		calls <- c
		// Read like the mixer, every 20 ms, for 4 s.
		var h heard
		pcm := make([]int16, media.SamplesPerFrame(media.Rate8k))
		frames := 0
		everyFrame(ctx.Done(), func() bool {
			n, _ := c.ReadFrame(pcm)
			h.pcm = append(h.pcm, pcm[:n]...)
			frames++
			return frames < 200
		})
		if frames < 200 {
			return
		}
		h.stats = c.Stats()
		result <- h
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	gw := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(u.Port()))
	phone, err := siptest.NewPhone(t).Dial(ctx, gw,
		siptest.Options{TelephoneEvent: true, AudioDuringEvents: true})
	require.NoError(t, err)
	phone.PlayTone(1000, 0.3)
	var c *Call
	select {
	case c = <-calls:
	case <-ctx.Done():
		t.Fatal("no call answered")
	}
	// The keys (1 s) over the tone, then the tone alone.
	require.NoError(t, phone.Press(ctx, "1001#", siptest.RFC4733))
	var h heard
	select {
	case h = <-result:
	case <-ctx.Done():
		t.Fatal("the call did not play out 4 s")
	}
	var keys []rune
	for len(keys) < 5 {
		select {
		case d := <-c.DTMF():
			keys = append(keys, d.Digit.Rune())
		default:
			t.Fatalf("keys received: %q", string(keys))
		}
	}
	require.Equal(t, "1001#", string(keys))

	// From the first tone on, every frame holds it at its level.
	frame := media.SamplesPerFrame(media.Rate8k)
	first := -1
	quiet := 0
	for i := 0; i+frame <= len(h.pcm); i += frame {
		db := mediatest.RMSDBFS(h.pcm[i : i+frame])
		if first < 0 {
			if db > -20 {
				first = i
			}
			continue
		}
		if db < -16 { // a 0.3 sine is at -13.5 dBFS
			quiet++
		}
	}
	require.GreaterOrEqual(t, first, 0, "no tone played out")
	st := h.stats.Jitter
	t.Logf("%d of %d frames below the tone's level; jitter buffer: %d lost, %d concealed, %d resyncs, %d discarded, delay %v",
		quiet, (len(h.pcm)-first)/frame, st.Lost, st.Concealed, st.Resyncs, st.Discarded, st.Delay)
	require.Zero(t, quiet, "the tone broke up")
	require.Zero(t, st.Concealed, "audio concealed")
	require.Zero(t, st.Resyncs, "playout re-anchored")
	require.Less(t, st.Delay, 150*time.Millisecond, "the keys added delay")
}
