package bridge

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// loadEmbedded loads the shipped catalogue once per test binary: the
// resampling at Load is the expensive part.
var loadEmbedded = sync.OnceValues(func() (*Prompts, error) { return Load("") })

func embeddedPrompts(t testing.TB) *Prompts {
	t.Helper()
	p, err := loadEmbedded()
	require.NoError(t, err)
	return p
}

// TestEmbeddedPromptsComplete: every prompt exists in English and German as
// speech at the level scripts/gen-prompts promises, the script names every
// PromptID, and the shipped files stay small.
func TestEmbeddedPromptsComplete(t *testing.T) {
	p := embeddedPrompts(t)
	require.Equal(t, []Lang{German, English}, p.Languages())
	var total int64
	err := fs.WalkDir(embedded, "prompts", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, err := d.Info()
			require.NoError(t, err)
			total += info.Size()
		}
		return err
	})
	require.NoError(t, err)
	require.Less(t, total, int64(1_500_000), "shipped prompts must stay below 1.5 MB")

	for _, lang := range []Lang{English, German} {
		for _, id := range AllPrompts {
			pr := p.Prompt(lang, id)
			require.Equal(t, media.Rate8k, pr.Rate, "%s/%s", lang, id)
			require.Equal(t, "embedded", pr.Source)
			d := pr.Duration()
			require.True(t, d >= 400*time.Millisecond && d <= 6*time.Second, "%s/%s lasts %v", lang, id, d)
			rms := mediatest.RMSDBFS(pr.PCM)
			require.InDelta(t, -18.0, rms, 1.5, "%s/%s level", lang, id)
			// Trimmed: no long silence at either end (20 ms below -50 dBFS).
			edge := media.SamplesPerFrame(pr.Rate)
			require.Greater(t, mediatest.RMSDBFS(pr.PCM[:2*edge]), -50.0, "%s/%s starts with silence", lang, id)
			require.Greater(t, mediatest.RMSDBFS(pr.PCM[len(pr.PCM)-2*edge:]), -50.0, "%s/%s ends with silence", lang, id)
			require.Len(t, pr.PCM48, 6*len(pr.PCM))
		}
	}

	script, err := os.ReadFile("../scripts/gen-prompts")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?s)\nids=\(([^)]*)\)`).FindSubmatch(script)
	require.NotNil(t, m, "ids=(...) in scripts/gen-prompts")
	var ids []PromptID
	for _, f := range strings.Fields(string(m[1])) {
		ids = append(ids, PromptID(f))
	}
	require.Equal(t, AllPrompts, ids)
}

// TestPromptLanguagesDiffer guards against a copy of one language shipped
// as the other: the same prompt differs between English and German.
func TestPromptLanguagesDiffer(t *testing.T) {
	p := embeddedPrompts(t)
	for _, id := range AllPrompts {
		en, _ := p.Get(English, id)
		de, _ := p.Get(German, id)
		require.NotEqual(t, en, de, "%s", id)
	}
}

// TestGetFallsBackToEnglish: an unknown language gets the English prompt;
// an unknown id gets nothing.
func TestGetFallsBackToEnglish(t *testing.T) {
	p := embeddedPrompts(t)
	en, rate := p.Get(English, PromptWelcome)
	fr, frRate := p.Get("fr", PromptWelcome)
	require.Equal(t, en, fr)
	require.Equal(t, rate, frRate)
	require.Equal(t, p.Get48k(English, PromptGoodbye), p.Get48k("xx", PromptGoodbye))
	require.False(t, p.Has("fr"))
	require.True(t, p.Has(German))
	pcm, rate := p.Get(English, "nonsense")
	require.Nil(t, pcm)
	require.Zero(t, rate)
}

// TestResampleTo48k: the 48 kHz version of a prompt is the same sound at
// the same time — a tone keeps its level and lines up with an ideal 48 kHz
// tone without the resampler's delay (SNR ≥ 30 dB with lag 0) — for both
// rates operators may supply.
func TestResampleTo48k(t *testing.T) {
	for _, rate := range []int{media.Rate8k, media.Rate16k, media.Rate48k} {
		in := mediatest.Sine(1000, 0.5, rate, rate/2+37) // not a whole number of frames
		out, err := resampleTo48k(in, rate)
		require.NoError(t, err)
		require.Len(t, out, len(in)*media.Rate48k/rate)
		want := mediatest.Sine(1000, 0.5, media.Rate48k, len(out))
		// Skip the filter's run-in and run-out at the edges.
		mid := out[480 : len(out)-480]
		require.InDelta(t, -6.02, mediatest.ToneDB(mid, 1000, media.Rate48k), 0.5)
		lag, corr := mediatest.BestLag(want[480:len(want)-480], out[480:], 24)
		require.Zero(t, lag, "rate %d", rate)
		require.Greater(t, corr, 0.99)
		require.Greater(t, mediatest.SNRDB(want[480:len(want)-480], mid, 0), 30.0, "rate %d", rate)
	}
}

// writeOverride writes dir/lang/name with the given content.
func writeOverride(t *testing.T, dir, lang, name string, b []byte) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, lang), 0o755))
	file := filepath.Join(dir, lang, name)
	require.NoError(t, os.WriteFile(file, b, 0o644))
	return file
}

// TestLoadOverrides: a valid file replaces exactly its prompt (at its own
// rate, played at 48 kHz), other files are ignored, a complete new
// language is added.
func TestLoadOverrides(t *testing.T) {
	dir := t.TempDir()
	tone := mediatest.Sine(440, 0.25, media.Rate16k, 8000)
	file := writeOverride(t, dir, "de", "welcome.wav", encodeWAV(tone, media.Rate16k))
	writeOverride(t, dir, "de", "README.txt", []byte("operator notes"))
	writeOverride(t, dir, "de", ".welcome.wav.swp", []byte("editor junk"))
	for _, id := range AllPrompts {
		writeOverride(t, dir, "fr", string(id)+".wav", encodeWAV(mediatest.Sine(300, 0.1, 8000, 800), 8000))
	}

	p, err := Load(dir)
	require.NoError(t, err)
	pr := p.Prompt(German, PromptWelcome)
	require.Equal(t, tone, pr.PCM)
	require.Equal(t, media.Rate16k, pr.Rate)
	require.Equal(t, file, pr.Source)
	require.Len(t, pr.PCM48, 3*len(tone))
	require.Greater(t, mediatest.ToneDB(pr.PCM48[480:len(pr.PCM48)-480], 440, media.Rate48k), -13.0)
	require.Equal(t, time.Second/2, pr.Duration())

	emb := embeddedPrompts(t)
	require.Equal(t, emb.Prompt(German, PromptGoodbye).PCM, p.Prompt(German, PromptGoodbye).PCM, "other prompts stay")
	require.Equal(t, emb.Prompt(English, PromptWelcome).PCM, p.Prompt(English, PromptWelcome).PCM, "other languages stay")
	require.True(t, p.Has("fr"))
	require.Equal(t, []Lang{German, English, "fr"}, p.Languages())
}

// TestLoadBadOverrides: every mistake in the override directory fails Load
// with ErrPromptOverride and names the file (or directory) to fix.
func TestLoadBadOverrides(t *testing.T) {
	good := encodeWAV(mediatest.Sine(440, 0.25, 8000, 800), 8000)
	tests := []struct {
		name  string
		lang  string
		file  string
		body  []byte
		inner error
		names string // what the message must name
	}{
		{"stereo", "en", "goodbye.wav", riffFile(fmtChunk(wavFormatPCM, 2, 8000, 16), dataChunk(testPCM[:6])), ErrWAVFormat, "goodbye.wav"},
		{"44.1 kHz", "de", "muted.wav", encodeWAV(testPCM, 44100), ErrWAVFormat, "muted.wav"},
		{"truncated", "en", "welcome.wav", good[:len(good)-10], ErrWAVMalformed, "welcome.wav"},
		{"not a wav", "en", "error.wav", []byte("ID3\x03 mp3 data"), ErrWAVMalformed, "error.wav"},
		{"empty", "en", "joining.wav", encodeWAV(nil, 8000), nil, "joining.wav"},
		{"unknown prompt", "en", "welcom.wav", good, nil, "welcom.wav"},
		{"incomplete new language", "fr", "welcome.wav", good, nil, "goodbye.wav"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeOverride(t, dir, tc.lang, tc.file, tc.body)
			_, err := Load(dir)
			require.ErrorIs(t, err, ErrPromptOverride)
			if tc.inner != nil {
				require.ErrorIs(t, err, tc.inner)
			}
			require.Contains(t, err.Error(), tc.names)
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "nope"))
		require.ErrorIs(t, err, ErrPromptOverride)
		require.Contains(t, err.Error(), "nope")
	})
}

// TestLoadEmptyOverrideDir: an existing, empty directory changes nothing.
func TestLoadEmptyOverrideDir(t *testing.T) {
	p, err := Load(t.TempDir())
	require.NoError(t, err)
	emb := embeddedPrompts(t)
	for _, id := range AllPrompts {
		require.True(t, slices.Equal(emb.Get48k(German, id), p.Get48k(German, id)), "%s", id)
	}
}

// BenchmarkLoad is the start-up cost of the catalogue: reading and
// resampling all embedded prompts to 48 kHz.
func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(""); err != nil {
			b.Fatal(err)
		}
	}
}
