// Package mediatest holds the test signals and audio measurements that every
// package's tests use: audio is checked as audio, so tests send tones and
// speech and measure tone energy, level, delay and correlation of what
// arrives. It imports only the standard library so that package media's own
// tests can use it too.
package mediatest

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Sine returns n samples of a sine at freq Hz and peak amplitude amp (0..1 of
// full scale), sampled at rate.
func Sine(freq, amp float64, rate, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// Tone is a phase-continuous sine source: successive Fill calls continue
// the same wave, as a participant's microphone would.
type Tone struct {
	Freq, Amp float64 // Hz; peak, 0..1 of full scale
	Rate      int     // Hz
	Pos       int     // index of the next sample since the tone began
}

// Fill writes the next len(dst) samples of the tone.
func (t *Tone) Fill(dst []int16) {
	for i := range dst {
		dst[i] = int16(math.Round(t.Amp * 32767 * math.Sin(2*math.Pi*t.Freq*float64(t.Pos)/float64(t.Rate))))
		t.Pos++
	}
}

// Power returns the Goertzel power of freq in samples taken at rate,
// normalised so that a full-scale sine at freq gives 0.25.
func Power(samples []int16, freq float64, rate int) float64 {
	if len(samples) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2 float64
	for _, x := range samples {
		s0 := float64(x)/32768 + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	n := float64(len(samples))
	return (s1*s1 + s2*s2 - coeff*s1*s2) / (n * n)
}

// ToneDB returns the power of freq in samples in dB relative to a full-scale
// sine at freq (0 dB).
func ToneDB(samples []int16, freq float64, rate int) float64 {
	return powerDB(Power(samples, freq, rate))
}

// BlockToneDB is ToneDB of the mean power of freq over consecutive blocks
// of block samples (a shorter rest is left out; all of samples when it
// holds less than a block). One Goertzel over a long window is coherent
// across it, so a jump in the tone's phase (a frame a jitter buffer drops)
// costs up to a few dB; per block it costs at most that block's share.
func BlockToneDB(samples []int16, freq float64, rate, block int) float64 {
	if len(samples) < block {
		return ToneDB(samples, freq, rate)
	}
	var sum float64
	n := 0
	for i := 0; i+block <= len(samples); i += block {
		sum += Power(samples[i:i+block], freq, rate)
		n++
	}
	return powerDB(sum / float64(n))
}

// powerDB is a Goertzel power in dB relative to a full-scale sine's (0.25).
func powerDB(p float64) float64 { return 10 * math.Log10(p/0.25+1e-20) }

// RMSDBFS returns the RMS level of samples in dB relative to full scale.
func RMSDBFS(samples []int16) float64 {
	var sum float64
	for _, s := range samples {
		v := float64(s) / 32768
		sum += v * v
	}
	return 10 * math.Log10(sum/float64(max(len(samples), 1))+1e-20)
}

// SNRDB returns the signal-to-noise ratio of got against want in dB, after
// shifting got by delay samples (got[i+delay] is compared with want[i]).
func SNRDB(want, got []int16, delay int) float64 {
	var sig, noise float64
	for i := range want {
		j := i + delay
		if j < 0 || j >= len(got) {
			continue
		}
		w, g := float64(want[i]), float64(got[j])
		sig += w * w
		noise += (w - g) * (w - g)
	}
	return 10 * math.Log10(sig/(noise+1e-9))
}

// BestLag returns the lag in [0, maxLag] at which got best matches want by
// normalised cross-correlation, and that correlation.
func BestLag(want, got []int16, maxLag int) (lag int, corr float64) {
	corr = -2
	for l := 0; l <= maxLag; l++ {
		var xy, xx, yy float64
		for i := range want {
			j := i + l
			if j >= len(got) {
				break
			}
			x, y := float64(want[i]), float64(got[j])
			xy += x * y
			xx += x * x
			yy += y * y
		}
		if xx == 0 || yy == 0 {
			continue
		}
		if c := xy / math.Sqrt(xx*yy); c > corr {
			lag, corr = l, c
		}
	}
	return lag, corr
}

var speechCache sync.Map // speechKey → []int16

type speechKey struct{ rate, seconds int }

// Speech returns espeak-ng speech as mono PCM at rate, exactly seconds long
// (several voices in turn until it is). It is generated once per test binary
// with espeak-ng and sox, which scripts/bootstrap installs; without them the
// test fails rather than skips.
func Speech(t testing.TB, rate, seconds int) []int16 {
	t.Helper()
	if v, ok := speechCache.Load(speechKey{rate, seconds}); ok {
		return v.([]int16)
	}
	for _, tool := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: run scripts/bootstrap", tool)
		}
	}
	dir := t.TempDir()
	text := "Good morning, and welcome to the quarterly meeting of the board. " +
		"Please state your name after the tone. The conference will begin in a moment. " +
		"We have seven items on the agenda today, starting with the budget for the coming year. " +
		"Thank you all for joining, the minutes will be sent around by email next week."
	wav := filepath.Join(dir, "speech.wav")
	raw := filepath.Join(dir, "speech.raw")
	var pcm []int16
	voices := []string{"en-us", "de", "en-gb", "en-us+f3", "de+m3", "en-us+m7"}
	for i := 0; len(pcm) < rate*seconds; i++ {
		v := voices[i%len(voices)]
		if out, err := exec.Command("espeak-ng", "-v", v, "-s", "160", "-w", wav, text).CombinedOutput(); err != nil {
			t.Fatalf("espeak-ng: %v: %s", err, out)
		}
		if out, err := exec.Command("sox", wav, "-r", strconv.Itoa(rate), "-c", "1", "-b", "16",
			"-e", "signed-integer", "-t", "raw", raw).CombinedOutput(); err != nil {
			t.Fatalf("sox: %v: %s", err, out)
		}
		b, err := os.ReadFile(raw)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k+1 < len(b); k += 2 {
			pcm = append(pcm, int16(binary.LittleEndian.Uint16(b[k:])))
		}
	}
	pcm = pcm[:rate*seconds]
	speechCache.Store(speechKey{rate, seconds}, pcm)
	return pcm
}

// FFmpegDecode has ffmpeg, the reference decoder, decode the audio file at
// path to 48 kHz mono PCM. ffmpeg must report no error at all (-xerror
// stops at the first), so a file that plays only with complaints fails
// the test.
func FFmpegDecode(t testing.TB, path string) []int16 {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", path,
		"-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", "48000", "pipe:1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v: %s", path, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Fatalf("ffmpeg complained about %s: %s", path, stderr.String())
	}
	pcm := make([]int16, len(out)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(out[2*i:]))
	}
	return pcm
}
