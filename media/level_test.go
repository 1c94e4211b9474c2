package media

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// whiteNoise returns n samples of uniform white noise at rmsDB dBFS RMS,
// from a fixed seed.
func whiteNoise(n int, rmsDB float64, seed uint32) []int16 {
	amp := math.Pow(10, rmsDB/20) * math.Sqrt(3) * 32768
	out := make([]int16, n)
	for i := range out {
		seed = seed*1664525 + 1013904223
		u := float64(seed)/float64(1<<31) - 1 // [-1, 1)
		out[i] = int16(math.Round(u * amp))
	}
	return out
}

func TestMeasureLevel(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pcm        []int16
		rms, peak  float64
		audioLevel uint8
	}{
		{name: "full-scale sine", pcm: sine(1000, 1, Rate48k, FrameSamples), rms: -3.01, peak: 0, audioLevel: 3},
		{name: "half-scale sine", pcm: sine(440, 0.5, Rate48k, FrameSamples), rms: -9.03, peak: -6.02, audioLevel: 9},
		{name: "-60 dBFS noise", pcm: whiteNoise(FrameSamples, -60, 7), rms: -60, peak: -55.2, audioLevel: 60},
		{name: "silence", pcm: make([]int16, FrameSamples), rms: SilenceDBFS, peak: SilenceDBFS, audioLevel: 127},
		{name: "empty", pcm: nil, rms: SilenceDBFS, peak: SilenceDBFS, audioLevel: 127},
		{name: "most negative sample", pcm: []int16{-32768}, rms: 0, peak: 0, audioLevel: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := MeasureLevel(tc.pcm)
			require.InDelta(t, tc.rms, l.RMS, 0.2)
			require.InDelta(t, tc.peak, l.Peak, 0.2)
			if len(tc.pcm) > 0 && tc.rms > SilenceDBFS {
				require.InDelta(t, rmsDBFS(tc.pcm), l.RMS, 0.01, "agrees with the test helper")
			}
			require.Equal(t, tc.audioLevel, l.AudioLevel(), "RFC 6464 -dBov")
		})
	}
}

func TestLevelMeter(t *testing.T) {
	m := NewLevelMeter(Rate48k)
	require.Zero(t, m.Normalized())
	loud := sine(300, 0.5, Rate48k, FrameSamples) // -9 dBFS RMS
	quiet := make([]int16, FrameSamples)
	m.Update(loud)
	require.InDelta(t, -9.03, m.DBFS(), 0.1, "rises at once")
	require.InDelta(t, 1-9.03/60, m.Normalized(), 0.01)
	for range 25 { // 0.5 s of silence
		m.Update(quiet)
	}
	require.InDelta(t, -19.03, m.DBFS(), 0.1, "falls 20 dB/s")
	require.Equal(t, SilenceDBFS, m.Last().RMS)
	for range 300 { // 6 s fall more than 108 dB
		m.Update(quiet)
	}
	require.Equal(t, SilenceDBFS, m.DBFS())
	require.Zero(t, m.Normalized())
}

// vadRun feeds pcm to v in 20 ms frames and returns the activity after each.
func vadRun(v *VAD, pcm []int16, rate int) []bool {
	n := SamplesPerFrame(rate)
	var out []bool
	for i := 0; i+n <= len(pcm); i += n {
		out = append(out, v.Process(pcm[i:i+n]))
	}
	return out
}

// countTrue returns how many of b are true.
func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

func TestVADSpeech(t *testing.T) {
	sp := speech(t, Rate48k, 20)
	v := NewVAD(Rate48k)
	active := vadRun(v, sp, Rate48k)
	// Every frame clearly carrying voice (above -40 dBFS) must be heard.
	var loud, heard int
	for i, a := range active {
		if rmsDBFS(sp[i*FrameSamples:(i+1)*FrameSamples]) > -40 {
			loud++
			if a {
				heard++
			}
		}
	}
	require.Greater(t, loud, 300, "the speech has voice in it")
	require.GreaterOrEqual(t, float64(heard)/float64(loud), 0.95, "%d of %d voiced frames active", heard, loud)
	// After the speech stops, 300 ms of hangover and then silence.
	tail := vadRun(v, whiteNoise(Rate48k, -60, 3), Rate48k)
	require.True(t, !tail[len(tail)-1] && countTrue(tail) <= 15, "inactive after hangover: %v", tail)
}

func TestVADSilenceAndNoise(t *testing.T) {
	for _, tc := range []struct {
		name string
		pcm  []int16
	}{
		{name: "digital silence", pcm: make([]int16, 5*Rate48k)},
		{name: "-60 dBFS white noise", pcm: whiteNoise(5*Rate48k, -60, 11)},
		{name: "-55 dBFS hum", pcm: sine(50, math.Pow(10, -52.0/20), Rate48k, 5*Rate48k)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Less(t, rmsDBFS(tc.pcm), -54.0)
			v := NewVAD(Rate48k)
			require.Zero(t, countTrue(vadRun(v, tc.pcm, Rate48k)))
			require.Less(t, v.NoiseFloor(), -50.0)
		})
	}
}

func TestVADBurst(t *testing.T) {
	// 1 s of -60 dBFS noise, a 200 ms burst of voice-like sound at
	// -20 dBFS, then 1 s of noise again; 20 ms frames.
	const burstFrom, burstFrames = 50, 10
	pcm := whiteNoise(3*Rate48k, -60, 5)
	burst := sine(220, 0.14, Rate48k, burstFrames*FrameSamples)
	for i, s := range burst {
		pcm[burstFrom*FrameSamples+i] += s
	}
	require.InDelta(t, -20, rmsDBFS(pcm[burstFrom*FrameSamples:(burstFrom+burstFrames)*FrameSamples]), 1)
	v := NewVAD(Rate48k)
	active := vadRun(v, pcm, Rate48k)
	for i, a := range active {
		// Active from the second burst frame (40 ms attack) until 300 ms
		// (15 frames) after the burst.
		want := i >= burstFrom+1 && i < burstFrom+burstFrames+15-1
		require.Equal(t, want, a, "frame %d", i)
	}
}

func TestVADAdaptsAndIgnoresClicks(t *testing.T) {
	// A loud fan (-35 dBFS noise) is voice to a fresh VAD, but within the
	// noise-floor window it becomes background; speech 20 dB over it is
	// heard again. A single 20 ms click never activates.
	pcm := whiteNoise(6*Rate48k, -35, 9)
	over := sine(300, 0.14, Rate48k, Rate48k/2) // -20 dBFS, 0.5 s
	for i, s := range over {
		pcm[4*Rate48k+i] += s
	}
	click := sine(1000, 0.9, Rate48k, FrameSamples)
	for i, s := range click {
		pcm[5*Rate48k+i] += s
	}
	v := NewVAD(Rate48k)
	active := vadRun(v, pcm, Rate48k)
	require.Zero(t, countTrue(active[150:200]), "noise alone after 3 s: floor %.1f dBFS", v.NoiseFloor())
	require.Equal(t, 24, countTrue(active[200:225]), "speech over the noise")
	require.Zero(t, countTrue(active[250:]), "click")
	require.InDelta(t, -35, v.NoiseFloor(), 1)

	v2 := NewVAD(Rate48k, WithVADAttack(100*time.Millisecond), WithVADHangover(500*time.Millisecond))
	active = vadRun(v2, pcm, Rate48k)
	require.Equal(t, 21, countTrue(active[200:225]), "100 ms attack")
	require.True(t, active[248] && !active[249], "500 ms hangover")
}

func TestVADNoAlloc(t *testing.T) {
	sp := sine(300, 0.3, Rate48k, 50*FrameSamples)
	v := NewVAD(Rate48k)
	m := NewLevelMeter(Rate48k)
	var f Frame
	allocs := testing.AllocsPerRun(5, func() {
		v.Reset()
		for i := 0; i < 50; i++ {
			copy(f[:], sp[i*FrameSamples:])
			v.Process(f[:])
			m.Update(f[:])
		}
	})
	require.Zero(t, allocs)
	require.True(t, v.Active())
	require.InDelta(t, -13.5, v.Level().RMS, 0.1)
}
