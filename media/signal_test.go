package media

// Test signals and measurements shared by the tests of this package. Audio is
// checked as audio: tones by their Goertzel energy, speech by correlation and
// level, never by comparing packets.

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// sine returns n samples of a sine at freq Hz and peak amplitude amp (0..1 of
// full scale), sampled at rate.
func sine(freq, amp float64, rate, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// toneDB returns the power of freq in samples in dB relative to a full-scale
// sine (0 dB = full-scale sine at freq).
func toneDB(samples []int16, freq float64, rate int) float64 {
	return 10 * math.Log10(GoertzelPower(samples, freq, rate)/0.25+1e-20)
}

// rmsDBFS returns the RMS level of samples in dB relative to full scale.
func rmsDBFS(samples []int16) float64 {
	var sum float64
	for _, s := range samples {
		v := float64(s) / 32768
		sum += v * v
	}
	return 10 * math.Log10(sum/float64(max(len(samples), 1))+1e-20)
}

// snrDB returns the signal-to-noise ratio of got against want, in dB, after
// shifting got by delay samples (got[i+delay] is compared with want[i]).
func snrDB(want, got []int16, delay int) float64 {
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

// bestLag returns the lag in [0, maxLag] at which got best matches want by
// normalised cross-correlation, and that correlation.
func bestLag(want, got []int16, maxLag int) (lag int, corr float64) {
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

var speechCache sync.Map // rate → []int16

// speech returns espeak-ng speech as mono PCM at rate, about seconds long
// (the text is repeated until it is). It is generated once per test binary
// with espeak-ng and sox (installed by scripts/bootstrap).
func speech(t testing.TB, rate int, seconds int) []int16 {
	t.Helper()
	type key struct{ rate, seconds int }
	if v, ok := speechCache.Load(key{rate, seconds}); ok {
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
		if out, err := exec.Command("sox", wav, "-r", strconv.Itoa(rate), "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "raw", raw).CombinedOutput(); err != nil {
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
	speechCache.Store(key{rate, seconds}, pcm)
	return pcm
}

func TestSignalHelpers(t *testing.T) {
	s := sine(1000, 0.5, Rate8k, 800)
	if db := toneDB(s, 1000, Rate8k); math.Abs(db-(-6.02)) > 0.2 {
		t.Fatalf("1 kHz at half scale: %.2f dB, want about -6 dB", db)
	}
	if db := toneDB(s, 2000, Rate8k); db > -60 {
		t.Fatalf("2 kHz in a 1 kHz tone: %.2f dB, want below -60", db)
	}
	noise := make([]int16, 800)
	seed := uint32(1)
	for i := range noise {
		seed = seed*1664525 + 1013904223
		noise[i] = int16(seed >> 16)
	}
	delayed := append(make([]int16, 13), noise...)
	if lag, c := bestLag(noise[:400], delayed, 40); lag != 13 || c < 0.99 {
		t.Fatalf("bestLag on noise delayed by 13: lag %d corr %.3f", lag, c)
	}
}
