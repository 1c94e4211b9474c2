package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRecordingsCLIProgress: without a terminal, a download's progress is
// a line at the start and at every further tenth, a resumed one starting
// where it resumes; on a terminal, a bar redrawn in place that ends its
// line.
func TestRecordingsCLIProgress(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, false, "x.opus", 0, 1000)
	for range 40 {
		_, _ = p.Write(make([]byte, 25))
	}
	p.finish()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 11, b.String())
	require.Equal(t, "x.opus: 0% (0 of 1000 bytes)", lines[0])
	require.Equal(t, "x.opus: 50% (500 of 1000 bytes)", lines[5])
	require.Equal(t, "x.opus: 100% (1000 of 1000 bytes)", lines[10])

	b.Reset()
	p = newProgress(&b, false, "x.opus", 450, 1000)
	_, _ = p.Write(make([]byte, 550))
	require.Equal(t, "x.opus: 40% (450 of 1000 bytes)\nx.opus: 100% (1000 of 1000 bytes)\n", b.String())

	b.Reset()
	p = newProgress(&b, true, "x.opus", 0, 2_000_000)
	for range 4 {
		_, _ = p.Write(make([]byte, 500_000))
	}
	p.finish()
	frames := strings.Split(strings.TrimPrefix(b.String(), "\r"), "\r")
	require.GreaterOrEqual(t, len(frames), 5, "%q", b.String())
	require.Equal(t, "x.opus [------------------------------]   0% 0 B of 2.0 MB ", frames[0])
	require.Equal(t, "x.opus [###############---------------]  50% 1.0 MB of 2.0 MB ", frames[2])
	require.Equal(t, "x.opus [##############################] 100% 2.0 MB of 2.0 MB \n", frames[len(frames)-1])
	require.False(t, isTerminal(&b))
}
