package sip

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
)

func TestParseDTMFInfo(t *testing.T) {
	tests := []struct {
		ct, body string
		digit    media.Digit
		dur      time.Duration
		wantErr  bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", media.Digit5, 160 * time.Millisecond, false},
		{"Application/DTMF-Relay; charset=utf-8", "signal= #\nduration=250", media.DigitPound, 250 * time.Millisecond, false},
		{"application/dtmf-relay", "Signal=10\r\nDuration=100", media.DigitStar, 100 * time.Millisecond, false},
		{"application/dtmf-relay", "Signal=11", media.DigitPound, 0, false},
		{"application/dtmf-relay", "Signal=d\r\nDuration=x", media.DigitD, 0, false},
		{"application/dtmf", "7", media.Digit7, 0, false},
		{"application/dtmf", "Signal=*\r\nDuration=80", media.DigitStar, 80 * time.Millisecond, false},
		{"application/dtmf-relay", "Signal=55", 0, 0, true},
		{"application/dtmf-relay", "Duration=160", 0, 0, true},
		{"application/dtmf", "x", 0, 0, true},
		{"text/plain", "5", 0, 0, true},
	}
	for _, tt := range tests {
		d, dur, err := parseDTMFInfo(tt.ct, []byte(tt.body))
		if tt.wantErr {
			require.Error(t, err, "%s %q", tt.ct, tt.body)
			continue
		}
		require.NoError(t, err, "%s %q", tt.ct, tt.body)
		require.Equal(t, tt.digit, d)
		require.Equal(t, tt.dur, dur)
	}
	_, _, err := parseDTMFInfo("text/plain", []byte("5"))
	var ub *unsupportedBody
	require.ErrorAs(t, err, &ub, "unknown types are 415, not 400")
}

// TestDTMFDedup: one press reported by two methods counts once; the same
// key pressed twice by one method counts twice; a second method's report
// outside the window is a new press.
func TestDTMFDedup(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(d media.Digit, s DTMFSource, ms int) DTMF { return DTMF{Digit: d, Source: s, At: at(ms)} }
	tests := []struct {
		name string
		in   []DTMF
		want []DTMF
	}{
		{"rfc4733 then info", []DTMF{ev(5, DTMFRFC4733, 0), ev(5, DTMFInfo, 30)}, []DTMF{ev(5, DTMFRFC4733, 0)}},
		{"info then in-band, late", []DTMF{ev(5, DTMFInfo, 0), ev(5, DTMFInBand, 260)}, []DTMF{ev(5, DTMFInfo, 0)}},
		{"same method twice", []DTMF{ev(1, DTMFRFC4733, 0), ev(1, DTMFRFC4733, 150)},
			[]DTMF{ev(1, DTMFRFC4733, 0), ev(1, DTMFRFC4733, 150)}},
		{"fast double press by two methods", []DTMF{ev(1, DTMFRFC4733, 0), ev(1, DTMFInfo, 20), ev(1, DTMFRFC4733, 200), ev(1, DTMFInfo, 220)},
			[]DTMF{ev(1, DTMFRFC4733, 0), ev(1, DTMFRFC4733, 200)}},
		{"outside the window", []DTMF{ev(5, DTMFRFC4733, 0), ev(5, DTMFInfo, 900)}, []DTMF{ev(5, DTMFRFC4733, 0), ev(5, DTMFInfo, 900)}},
		{"other key", []DTMF{ev(5, DTMFRFC4733, 0), ev(6, DTMFInfo, 10)}, []DTMF{ev(5, DTMFRFC4733, 0), ev(6, DTMFInfo, 10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newDTMFQueue(nil)
			for _, d := range tt.in {
				q.push(d)
			}
			var got []DTMF
			for len(q.ch) > 0 {
				got = append(got, <-q.ch)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// TestDTMFQueueFull: a reader that does not keep up loses presses, the
// producers never block.
func TestDTMFQueueFull(t *testing.T) {
	q := newDTMFQueue(nil)
	for i := range 40 {
		q.push(DTMF{Digit: media.Digit(i % 2), Source: DTMFRFC4733, At: time.Unix(int64(i), 0)})
	}
	require.Len(t, q.ch, cap(q.ch))
	require.EqualValues(t, 40-cap(q.ch), q.dropped)
}

// FuzzParseDTMFInfo: INFO bodies come from the network; nothing may panic
// and every accepted body yields a valid key.
func FuzzParseDTMFInfo(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Add("application/dtmf-relay", []byte("Signal=\r\nDuration=-1\r\n=\n"))
	f.Add("application/dtmf;x", []byte("\xff"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, dur, err := parseDTMFInfo(ct, body)
		if err == nil && (!d.Valid() || dur < 0 || dur > time.Minute) {
			t.Fatalf("accepted %q as %v for %v", body, d, dur)
		}
	})
}
