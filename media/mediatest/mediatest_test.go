package mediatest

import (
	"math"
	"testing"
)

func TestToneMeasurements(t *testing.T) {
	s := Sine(1000, 0.5, 8000, 800)
	if db := ToneDB(s, 1000, 8000); math.Abs(db-(-6.02)) > 0.2 {
		t.Fatalf("1 kHz at half scale: %.2f dB, want about -6 dB", db)
	}
	if db := ToneDB(s, 2000, 8000); db > -60 {
		t.Fatalf("2 kHz in a 1 kHz tone: %.2f dB, want below -60", db)
	}
	if db := RMSDBFS(s); math.Abs(db-(-9.03)) > 0.1 {
		t.Fatalf("RMS of a half-scale sine: %.2f dBFS, want -9.03", db)
	}
	var tone Tone = Tone{Freq: 1000, Amp: 0.5, Rate: 8000}
	a, b := make([]int16, 300), make([]int16, 500)
	tone.Fill(a)
	tone.Fill(b)
	if snr := SNRDB(s, append(a, b...), 0); snr < 80 {
		t.Fatalf("Tone in two pieces differs from Sine: SNR %.1f dB", snr)
	}
}

// TestBlockToneDB: a tone whose phase jumps half a cycle in the middle
// (a dropped frame) loses most of its level to one coherent Goertzel, and
// nothing to BlockToneDB when the jump falls between blocks.
func TestBlockToneDB(t *testing.T) {
	s := append(Sine(1000, 0.5, 8000, 800), Sine(1000, -0.5, 8000, 800)...)
	if db := ToneDB(s, 1000, 8000); db > -20 {
		t.Fatalf("one Goertzel over the phase jump: %.2f dB, want far below -6", db)
	}
	if db := BlockToneDB(s, 1000, 8000, 160); math.Abs(db-(-6.02)) > 0.2 {
		t.Fatalf("in blocks of 160: %.2f dB, want about -6 dB", db)
	}
	if a, b := BlockToneDB(s[:100], 1000, 8000, 160), ToneDB(s[:100], 1000, 8000); a != b {
		t.Fatalf("shorter than a block: %.2f dB, want ToneDB's %.2f", a, b)
	}
}

func TestBestLag(t *testing.T) {
	noise := make([]int16, 800)
	seed := uint32(1)
	for i := range noise {
		seed = seed*1664525 + 1013904223
		noise[i] = int16(seed >> 16)
	}
	delayed := append(make([]int16, 13), noise...)
	if lag, c := BestLag(noise[:400], delayed, 40); lag != 13 || c < 0.99 {
		t.Fatalf("noise delayed by 13: lag %d corr %.3f", lag, c)
	}
}

func TestSpeech(t *testing.T) {
	s := Speech(t, 8000, 3)
	if len(s) != 24000 {
		t.Fatalf("len %d, want 24000", len(s))
	}
	if db := RMSDBFS(s); db < -35 || db > -6 {
		t.Fatalf("speech level %.1f dBFS, want a normal speaking level", db)
	}
}
