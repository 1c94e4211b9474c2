package bridge

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// drain pulls frames until the player is idle and returns what it played.
func drain(t *testing.T, p *Player) []int16 {
	t.Helper()
	var out []int16
	var f media.Frame
	for i := 0; p.Next(&f); i++ {
		require.Less(t, i, 10_000, "player never ends")
		out = append(out, f[:]...)
	}
	return out
}

// TestPlayerPlaysPromptExactly: a real prompt comes out sample for sample,
// followed by the gap and silence to the end of the last frame, and its end
// is reported once with its Seq.
func TestPlayerPlaysPromptExactly(t *testing.T) {
	prompt := embeddedPrompts(t).Get48k(English, PromptEnterNumber)
	require.NotZero(t, len(prompt)%media.FrameSamples, "want a prompt that ends mid-frame")
	for _, gap := range []time.Duration{0, DefaultPromptGap} {
		p := NewPlayer(gap)
		p.Start(prompt, 7)
		_, ended := p.Ended()
		require.False(t, ended)
		out := drain(t, p)
		gapN := int(gap.Seconds() * media.Rate48k)
		frames := (len(prompt) + gapN + media.FrameSamples - 1) / media.FrameSamples
		require.Len(t, out, frames*media.FrameSamples, "gap %v", gap)
		require.Equal(t, prompt, out[:len(prompt)])
		require.Equal(t, make([]int16, len(out)-len(prompt)), out[len(prompt):], "silence after the prompt")
		seq, ok := p.Ended()
		require.True(t, ok)
		require.Equal(t, uint64(7), seq)
		_, ok = p.Ended()
		require.False(t, ok, "reported once")
		require.False(t, p.Playing())
	}
}

// TestPlayerWholeFrames: a prompt of exactly two frames takes two frames,
// no silent third one, and ends in the second.
func TestPlayerWholeFrames(t *testing.T) {
	p := NewPlayer(0)
	tone := mediatest.Sine(1000, 0.5, media.Rate48k, 2*media.FrameSamples)
	p.Start(tone, 1)
	var f media.Frame
	require.True(t, p.Next(&f))
	_, ok := p.Ended()
	require.False(t, ok)
	require.True(t, p.Next(&f))
	_, ok = p.Ended()
	require.True(t, ok)
	require.False(t, p.Next(&f))
}

// TestPlayerStopFades: Stop fades the prompt out within 5 ms of the next
// frame without a click — the largest step between samples stays that of
// the tone itself, where a hard cut would jump by up to its amplitude — and
// never reports the stopped prompt as ended.
func TestPlayerStopFades(t *testing.T) {
	const amp = 0.5
	sine := mediatest.Sine(1000, amp, media.Rate48k, media.Rate48k)
	maxStep := amp * 32767 * 2 * math.Pi * 1000 / media.Rate48k // steepest slope of the tone
	// Frames hold whole periods of 1 kHz: stop at a zero crossing, and
	// (starting a quarter period in) at a peak, where a cut would click.
	for _, shift := range []int{0, 12} {
		tone := sine[shift:]
		frames := 3
		p := NewPlayer(DefaultPromptGap)
		p.Start(tone, 1)
		var f media.Frame
		for range frames {
			require.True(t, p.Next(&f))
		}
		pos := frames * media.FrameSamples
		p.Stop()
		require.True(t, p.Playing(), "the fade is still to play")
		require.True(t, p.Next(&f))
		// Continuous with what was played before the stop...
		require.InDelta(t, float64(tone[pos-1]), float64(f[0]), maxStep*1.05)
		prev := float64(tone[pos-1])
		for i, v := range f {
			require.LessOrEqual(t, math.Abs(float64(v)-prev), maxStep*1.05, "click at sample %d", i)
			prev = float64(v)
			// ...never louder than the tone, and silent after 5 ms.
			require.LessOrEqual(t, math.Abs(float64(v)), math.Abs(float64(tone[pos+i]))+1)
			if i >= 5*media.Rate48k/1000 {
				require.Zero(t, v, "sample %d after 5 ms", i)
			}
		}
		require.False(t, p.Next(&f))
		_, ok := p.Ended()
		require.False(t, ok, "a stopped prompt is not reported")
	}
}

// TestPlayerStartReplaces: starting a prompt over a playing one fades the
// old one out, then plays the new one from its first sample in the same
// frame, and only the new one's end is reported.
func TestPlayerStartReplaces(t *testing.T) {
	old := mediatest.Sine(1000, 0.5, media.Rate48k, media.Rate48k)
	next := mediatest.Sine(440, 0.3, media.Rate48k, 3*media.FrameSamples)
	p := NewPlayer(0)
	p.Start(old, 1)
	var f media.Frame
	p.Next(&f)
	p.Start(next, 2)
	require.True(t, p.Next(&f))
	out := append([]int16(nil), f[fadeSamples:]...)
	out = append(out, drain(t, p)...)
	require.Equal(t, next, out[:len(next)])
	require.InDelta(t, float64(old[media.FrameSamples]), float64(f[0]), 300, "fade starts where the old one was")
	seq, ok := p.Ended()
	require.True(t, ok)
	require.Equal(t, uint64(2), seq)
}

// TestPlayerStopIdleAndGap: Stop on an idle player, or during the gap,
// plays nothing more.
func TestPlayerStopIdleAndGap(t *testing.T) {
	p := NewPlayer(DefaultPromptGap)
	p.Stop()
	var f media.Frame
	require.False(t, p.Next(&f))
	p.Start(mediatest.Sine(440, 0.3, media.Rate48k, 100), 1)
	require.True(t, p.Next(&f)) // prompt + start of the gap
	p.Stop()
	require.False(t, p.Next(&f))
	_, ok := p.Ended()
	require.False(t, ok)
}

// TestConfirmTone: muted falls 660 → 440 Hz, unmuted rises 440 → 660 Hz,
// each beep at about the prompts' level and clearly the right pitch, with
// silence between them; both start and end at zero (no click).
func TestConfirmTone(t *testing.T) {
	for _, muted := range []bool{true, false} {
		tone := ConfirmTone(muted)
		first := tone[toneRamp : toneBeep-toneRamp]
		gap := tone[toneBeep : toneBeep+toneGap]
		second := tone[toneBeep+toneGap+toneRamp : len(tone)-toneRamp]
		f1, f2 := 440.0, 660.0
		if muted {
			f1, f2 = f2, f1
		}
		require.Greater(t, mediatest.ToneDB(first, f1, media.Rate48k)-mediatest.ToneDB(first, f2, media.Rate48k), 30.0)
		require.Greater(t, mediatest.ToneDB(second, f2, media.Rate48k)-mediatest.ToneDB(second, f1, media.Rate48k), 30.0)
		require.InDelta(t, -18, mediatest.RMSDBFS(first), 1)
		require.Equal(t, make([]int16, len(gap)), gap)
		require.Less(t, math.Abs(float64(tone[0])), 100.0)
		require.Less(t, math.Abs(float64(tone[len(tone)-1])), 100.0)
		require.Less(t, math.Abs(float64(tone[toneBeep-1])), 100.0)
	}
}

// TestPlayerNoAllocs: pulling frames allocates nothing, whether playing,
// fading or idle.
func TestPlayerNoAllocs(t *testing.T) {
	prompt := mediatest.Sine(440, 0.3, media.Rate48k, media.Rate48k)
	p := NewPlayer(DefaultPromptGap)
	var f media.Frame
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		if i%50 == 0 {
			p.Start(prompt, uint64(i))
		}
		if i%50 == 30 {
			p.Stop()
		}
		p.Next(&f)
		p.Ended()
		i++
	})
	require.Zero(t, allocs)
}

// TestPlayerConcurrent: the IVR goroutine starting and stopping while the
// media goroutine pulls frames is race-free (run with -race).
func TestPlayerConcurrent(t *testing.T) {
	prompt := mediatest.Sine(440, 0.3, media.Rate48k, 4*media.FrameSamples)
	p := NewPlayer(0)
	var wg sync.WaitGroup
	wg.Go(func() {
		var f media.Frame
		for range 2000 {
			p.Next(&f)
			p.Ended()
		}
	})
	for i := range 500 {
		if i%2 == 0 {
			p.Start(prompt, uint64(i))
		} else {
			p.Stop()
		}
	}
	wg.Wait()
}

// BenchmarkPlayerNext is the per-frame cost of playing a prompt.
func BenchmarkPlayerNext(b *testing.B) {
	prompt := mediatest.Sine(440, 0.3, media.Rate48k, 10*media.Rate48k)
	p := NewPlayer(0)
	var f media.Frame
	b.ReportAllocs()
	for b.Loop() {
		if !p.Next(&f) {
			p.Start(prompt, 1)
		}
	}
}

// BenchmarkPlayerStopFade is the cost of a frame that fades out a stopped
// prompt.
func BenchmarkPlayerStopFade(b *testing.B) {
	prompt := mediatest.Sine(440, 0.3, media.Rate48k, 10*media.Rate48k)
	p := NewPlayer(0)
	var f media.Frame
	b.ReportAllocs()
	for b.Loop() {
		p.Start(prompt, 1)
		p.Stop()
		p.Next(&f)
	}
}
