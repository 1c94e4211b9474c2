package media

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// resampleDirections are the six conversions mediagate needs.
var resampleDirections = []struct{ from, to int }{
	{Rate8k, Rate48k}, {Rate48k, Rate8k},
	{Rate16k, Rate48k}, {Rate48k, Rate16k},
	{Rate8k, Rate16k}, {Rate16k, Rate8k},
}

// resampleAll runs in (a whole number of frames at from) through r and
// returns the output at to.
func resampleAll(t testing.TB, r *Resampler, in []int16, from, to int) []int16 {
	t.Helper()
	inN, outN := SamplesPerFrame(from), SamplesPerFrame(to)
	frames := len(in) / inN
	out := make([]int16, frames*outN)
	for i := range frames {
		n, err := r.Process(in[i*inN:(i+1)*inN], out[i*outN:(i+1)*outN])
		require.NoError(t, err)
		require.Equal(t, outN, n)
	}
	return out
}

// toneThrough resamples a half-scale tone at freq for 25 frames with quality
// q and returns the output with the first 5 frames (filter start-up) cut.
func toneThrough(t *testing.T, from, to, q int, freq float64) (in, out []int16) {
	t.Helper()
	r, err := newResamplerQuality(from, to, q)
	require.NoError(t, err)
	defer r.Close()
	in = sine(freq, 0.5, from, 25*SamplesPerFrame(from))
	out = resampleAll(t, r, in, from, to)
	return in, out[5*SamplesPerFrame(to):]
}

func TestResamplerKeepsToneLevel(t *testing.T) {
	for _, d := range resampleDirections {
		t.Run(fmt.Sprintf("%dto%d", d.from/1000, d.to/1000), func(t *testing.T) {
			in, out := toneThrough(t, d.from, d.to, resampleQuality, 1000)
			want := toneDB(in, 1000, d.from)
			got := toneDB(out, 1000, d.to)
			require.InDelta(t, want, got, 0.5, "1 kHz level in %.2f dB, out %.2f dB", want, got)
		})
	}
}

func TestResamplerRejectsAliases(t *testing.T) {
	// Each tone lies above the target Nyquist frequency and would fold back
	// into the band (6 kHz → 2 kHz at 8 kHz) if the filter let it through.
	tests := []struct {
		from, to int
		freq     float64
	}{
		{Rate48k, Rate8k, 6000},
		{Rate48k, Rate16k, 12000},
		{Rate16k, Rate8k, 6000},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%dto%d_%.0fHz", tc.from/1000, tc.to/1000, tc.freq), func(t *testing.T) {
			in, out := toneThrough(t, tc.from, tc.to, resampleQuality, tc.freq)
			inDB := toneDB(in, tc.freq, tc.from)
			alias := math.Abs(float64(tc.to) - tc.freq)
			require.Less(t, toneDB(out, alias, tc.to), inDB-60, "aliased tone")
			require.Less(t, rmsDBFS(out), rmsDBFS(in)-60, "everything that leaked through")
		})
	}
}

// TestResamplerQualityChoice documents the acoustic half of why
// resampleQuality is what it is: it rejects a 6 kHz tone by 60 dB going
// 48→8 kHz and keeps 3 kHz, near the top of the telephone band, within
// 0.5 dB in every direction. Quality 0 already rejects 6 kHz by 63 dB but
// loses 3 dB at 3 kHz and lets 4.4 kHz through at -22 dB; quality 1 still
// loses 1.4 dB at 3 kHz. Quality 2 would pass here but is too slow for 8→48
// kHz (BenchmarkResampleQuality).
func TestResamplerQualityChoice(t *testing.T) {
	meets := func(q int) bool {
		in, out := toneThrough(t, Rate48k, Rate8k, q, 6000)
		if rmsDBFS(out) > rmsDBFS(in)-60 {
			return false
		}
		for _, d := range resampleDirections {
			in, out := toneThrough(t, d.from, d.to, q, 3000)
			if math.Abs(toneDB(out, 3000, d.to)-toneDB(in, 3000, d.from)) > 0.5 {
				return false
			}
		}
		return true
	}
	require.True(t, meets(resampleQuality))
	require.False(t, meets(0))
	require.False(t, meets(1))
}

func TestResamplerDelay(t *testing.T) {
	for _, d := range resampleDirections {
		t.Run(fmt.Sprintf("%dto%d", d.from/1000, d.to/1000), func(t *testing.T) {
			r, err := NewResampler(d.from, d.to)
			require.NoError(t, err)
			defer r.Close()
			// sox made ref from the same speech with a linear-phase filter
			// whose delay it compensates, so ref is the undelayed truth.
			in := speech(t, d.from, 2)
			ref := speech(t, d.to, 2)
			out := resampleAll(t, r, in, d.from, d.to)
			skip := d.to / 10
			lag, corr := bestLag(ref[skip:d.to*3/2], out[skip:], d.to/100)
			require.Greater(t, corr, 0.99, "resampled speech must match sox's")
			measured := time.Duration(lag) * time.Second / time.Duration(d.to)
			require.LessOrEqual(t, measured, 3*time.Millisecond)
			onePeriod := time.Second / time.Duration(d.to)
			require.InDelta(t, float64(r.Delay()), float64(measured), float64(onePeriod),
				"Delay() %v, measured %v", r.Delay(), measured)
		})
	}
}

func TestResamplerResetForgetsHistory(t *testing.T) {
	r, err := NewResampler(Rate8k, Rate48k)
	require.NoError(t, err)
	defer r.Close()
	out := make([]int16, SamplesPerFrame(Rate48k))
	_, err = r.Process(sine(1000, 0.9, Rate8k, SamplesPerFrame(Rate8k)), out)
	require.NoError(t, err)
	r.Reset()
	_, err = r.Process(make([]int16, SamplesPerFrame(Rate8k)), out)
	require.NoError(t, err)
	require.Less(t, rmsDBFS(out), -120.0, "the tone's tail must not survive Reset")
}

func TestResamplerErrors(t *testing.T) {
	_, err := NewResampler(44100, Rate48k)
	require.ErrorIs(t, err, ErrResampleRate)
	_, err = NewResampler(Rate8k, 0)
	require.ErrorIs(t, err, ErrResampleRate)

	r, err := NewResampler(Rate48k, Rate8k)
	require.NoError(t, err)
	_, err = r.Process(make([]int16, 959), make([]int16, 160))
	require.ErrorIs(t, err, ErrResampleFrame)
	_, err = r.Process(make([]int16, 960), make([]int16, 159))
	require.ErrorIs(t, err, ErrResampleFrame)
	require.NoError(t, r.Close())
	require.NoError(t, r.Close(), "Close is idempotent")
	r.Reset() // harmless after Close
	_, err = r.Process(make([]int16, 960), make([]int16, 160))
	require.ErrorIs(t, err, ErrResamplerClosed)
}

func TestResamplerSameRateCopies(t *testing.T) {
	r, err := NewResampler(Rate16k, Rate16k)
	require.NoError(t, err)
	defer r.Close()
	in := sine(440, 0.5, Rate16k, SamplesPerFrame(Rate16k))
	out := make([]int16, len(in))
	n, err := r.Process(in, out)
	require.NoError(t, err)
	require.Equal(t, len(in), n)
	require.Equal(t, in, out)
	require.Zero(t, r.Delay())
}

func TestResamplerAllocatesNothing(t *testing.T) {
	for _, d := range resampleDirections {
		r, err := NewResampler(d.from, d.to)
		require.NoError(t, err)
		in := sine(1000, 0.5, d.from, SamplesPerFrame(d.from))
		out := make([]int16, SamplesPerFrame(d.to))
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := r.Process(in, out); err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, allocs, "%d→%d", d.from, d.to)
		require.NoError(t, r.Close())
	}
}

func BenchmarkResample(b *testing.B) {
	for _, d := range []struct {
		name     string
		from, to int
	}{
		{"8to48", Rate8k, Rate48k}, {"48to8", Rate48k, Rate8k},
		{"16to48", Rate16k, Rate48k}, {"48to16", Rate48k, Rate16k},
	} {
		b.Run(d.name, func(b *testing.B) {
			r, err := NewResampler(d.from, d.to)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			in := speech(b, d.from, 1)[d.from/2 : d.from/2+SamplesPerFrame(d.from)]
			out := make([]int16, SamplesPerFrame(d.to))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Process(in, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResampleQuality shows the cost cliff below quality 3 for 8→48
// kHz, where speexdsp switches from its direct polyphase table to the
// interpolating path.
func BenchmarkResampleQuality(b *testing.B) {
	for q := 2; q <= 3; q++ {
		b.Run(fmt.Sprintf("8to48_q%d", q), func(b *testing.B) {
			r, err := newResamplerQuality(Rate8k, Rate48k, q)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			in := sine(1000, 0.5, Rate8k, SamplesPerFrame(Rate8k))
			out := make([]int16, SamplesPerFrame(Rate48k))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Process(in, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
