package sip

import (
	"context"
	"net/netip"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
)

// TestSippDialog runs the sipp scenarios of UPDATE, session timers, the
// call length limit and the external address. sipp asserts the exact
// responses and headers; the test what the Call saw and how it ended.
func TestSippDialog(t *testing.T) {
	answer := func(_ context.Context, in *IncomingCall) (*Call, error) { return in.Answer() }
	wait := func(_ context.Context, c *Call) { <-c.Done() }
	altPort := 0
	var held atomic.Bool
	tests := []struct {
		scenario string
		opts     []Option
		keys     func(t *testing.T) map[string]string
		after    func(ctx context.Context, c *Call)
		// check gets the answered call and how long it lasted.
		check func(t *testing.T, c *Call, lasted time.Duration)
	}{
		{
			scenario: "update_hold.xml",
			keys: func(t *testing.T) map[string]string {
				altPort = freeUDPPort(t)
				return map[string]string{"ALTPORT": strconv.Itoa(altPort)}
			},
			after: func(_ context.Context, c *Call) { held.Store(sawHold(c)) },
			check: func(t *testing.T, c *Call, _ time.Duration) {
				require.ErrorIs(t, c.Err(), ErrRemoteHangup)
				require.True(t, held.Load(), "the call was on hold")
				require.False(t, c.Held())
				c.mu.Lock()
				defer c.mu.Unlock()
				require.Equal(t, uint16(altPort), c.remote.rtp.Port(), "the media moved to the UPDATE's port")
				require.Equal(t, CodecPCMU, c.codec.Name)
			},
		},
		{
			scenario: "update_bad.xml",
			check: func(t *testing.T, c *Call, _ time.Duration) {
				require.ErrorIs(t, c.Err(), ErrRemoteHangup)
				require.Equal(t, CodecPCMU, c.Codec().Name, "the refused offer changed nothing")
				require.False(t, c.Held())
			},
		},
		{
			scenario: "session_timer_422.xml",
			check: func(t *testing.T, c *Call, _ time.Duration) {
				require.ErrorIs(t, c.Err(), ErrRemoteHangup)
				c.mu.Lock()
				defer c.mu.Unlock()
				require.Equal(t, 90*time.Second, c.timer.interval)
				require.False(t, c.timer.weRefresh)
			},
		},
		{
			scenario: "session_refresh_update.xml",
			opts:     []Option{WithMinSE(time.Second)},
			check: func(t *testing.T, c *Call, took time.Duration) {
				require.ErrorIs(t, c.Err(), ErrRemoteHangup)
				require.GreaterOrEqual(t, took, 4*time.Second, "two refreshes, each after half of 4 s")
			},
		},
		{
			scenario: "session_refresh_reinvite.xml",
			opts:     []Option{WithMinSE(time.Second)},
			check: func(t *testing.T, c *Call, took time.Duration) {
				require.ErrorIs(t, c.Err(), ErrRemoteHangup)
				require.GreaterOrEqual(t, took, 2*time.Second)
				require.False(t, c.Held(), "the answer to the refresh kept the media going")
			},
		},
		{
			scenario: "session_refresh_offerless.xml",
			opts:     []Option{WithMinSE(time.Second)},
			check: func(t *testing.T, c *Call, lasted time.Duration) {
				require.ErrorIs(t, c.Err(), ErrRemoteHangup)
				require.Equal(t, CodecPCMA, c.Codec().Name, "the codec the ACK's answer chose")
				require.GreaterOrEqual(t, lasted, 2*time.Second)
			},
		},
		{
			scenario: "session_expired.xml",
			opts:     []Option{WithMinSE(time.Second)},
			check: func(t *testing.T, c *Call, took time.Duration) {
				require.ErrorIs(t, c.Err(), ErrSessionExpired)
				require.GreaterOrEqual(t, took, 2*time.Second, "BYE at 3 s minus a third")
				require.Less(t, took, 3*time.Second, "BYE before the expiry")
			},
		},
		{
			scenario: "max_duration.xml",
			opts:     []Option{WithMaxCallDuration(1500 * time.Millisecond)},
			check: func(t *testing.T, c *Call, took time.Duration) {
				require.ErrorIs(t, c.Err(), ErrMaxDuration)
				require.GreaterOrEqual(t, took, 1500*time.Millisecond)
			},
		},
		{
			scenario: "external_address.xml",
			opts:     []Option{WithAdvertisedAddr(netip.MustParseAddr("203.0.113.7"))},
			keys: func(*testing.T) map[string]string {
				return map[string]string{"EXTRE": regexp.QuoteMeta("203.0.113.7")}
			},
			check: func(t *testing.T, c *Call, _ time.Duration) {
				require.ErrorIs(t, c.Err(), ErrRemoteHangup)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			rec := newRecorder(t)
			after := wait
			if tt.after != nil {
				after = tt.after
			}
			lasted := make(chan time.Duration, 1)
			rec.answer = answer
			rec.after = func(ctx context.Context, c *Call) {
				start := time.Now()
				after(ctx, c)
				lasted <- time.Since(start)
			}
			u := startUA(t, rec, tt.opts...)
			run := sippRun{scenario: tt.scenario}
			if tt.keys != nil {
				run.keys = tt.keys(t)
			}
			require.NoError(t, runSipp(t, u, run))
			rec.wait(t)
			c, err := rec.first()
			require.NoError(t, err)
			rec.mu.Lock()
			require.Len(t, rec.infos, 1, "one call reached the handler")
			rec.mu.Unlock()
			tt.check(t, c, <-lasted)
		})
	}
}

// sawHold watches the hold state as the mixer would, once per frame,
// until the call ends, and reports whether the call was ever on hold.
func sawHold(c *Call) bool {
	held := false
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	for {
		select {
		case <-c.Done():
			return held
		case <-tick.C:
			held = held || c.Held()
		}
	}
}
