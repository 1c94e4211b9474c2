package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/recorder"
)

// apiClient talks to a gateway's admin API with one API key.
type apiClient struct {
	t    *testing.T
	base string
	key  string
}

// newAdminKey returns an API key and the environment that configures it.
func newAdminKey() (key, env string) {
	key, hash := api.NewAdminKey()
	return key, "MEDIAGATE_AUTH_ADMIN_KEYS=" + hash
}

// do sends a request and returns the status and body.
func (c apiClient) do(method, path, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, b
}

// manifest sends a request that answers a manifest with status want.
func (c apiClient) manifest(method, path, body string, want int) recorder.Manifest {
	c.t.Helper()
	code, b := c.do(method, path, body)
	require.Equal(c.t, want, code, "%s %s: %s", method, path, b)
	var m recorder.Manifest
	require.NoError(c.t, json.Unmarshal(b, &m))
	return m
}

// download fetches a recording into a file in dir and checks that the
// ETag is the SHA-256 of what came and equals the manifest's.
func (c apiClient) download(id recorder.ID, dir string) (path, sum string) {
	c.t.Helper()
	code, b := c.do(http.MethodGet, "/api/v1/recordings/"+string(id)+"/download", "")
	require.Equal(c.t, http.StatusOK, code, "%s", b)
	h := sha256.Sum256(b)
	sum = hex.EncodeToString(h[:])
	path = filepath.Join(dir, string(id)+".opus")
	require.NoError(c.t, os.WriteFile(path, b, 0o600))
	return path, sum
}

// awaitLog reads the gateway's log lines until one holds every part, or
// fails after timeout.
func (n *gateway) awaitLog(t *testing.T, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-n.logs:
			if !ok {
				t.Fatalf("mediagate exited before logging %q", parts)
			}
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return line
			}
		case <-deadline:
			t.Fatalf("no log line with %q within %v", parts, timeout)
		}
	}
}

// ffprobeDuration returns the duration ffprobe reports for an Ogg/Opus
// file (with the 6.5 ms pre-skip counted in) and checks it is one Opus
// stream at 48 kHz.
func ffprobeDuration(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries",
		"format=duration:stream=codec_name,sample_rate", "-of", "json", path).CombinedOutput()
	require.NoError(t, err, "ffprobe: %s", out)
	var v struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			Codec      string `json:"codec_name"`
			SampleRate string `json:"sample_rate"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &v), "%s", out)
	require.Len(t, v.Streams, 1, "%s", out)
	require.Equal(t, "opus", v.Streams[0].Codec)
	require.Equal(t, "48000", v.Streams[0].SampleRate)
	d, err := strconv.ParseFloat(v.Format.Duration, 64)
	require.NoError(t, err, "%s", out)
	return d
}

// boxDecimate turns 48 kHz into 48/k kHz by averaging k samples, for a cheap
// coarse search.
func boxDecimate(pcm []int16, k int) []int16 {
	out := make([]int16, len(pcm)/k)
	for i := range out {
		var s int
		for _, v := range pcm[k*i : k*i+k] {
			s += int(v)
		}
		out[i] = int16(s / k)
	}
	return out
}

// speechMatch is how well the recording's window [from, from+n) (48 kHz
// samples) follows the looped source. The window is found in the loop
// coarsely (4 kHz, a 2 s piece against one pass) and then followed half a
// second at a time, each piece aligned to the sample within ±100 ms of the
// one before: a live room's jitter buffer drops or conceals a frame now and
// then, which moves the rest of the recording 20 ms against the source. corr
// is the normalised cross-correlation of the whole window with the pieces so
// aligned (energy-weighted, so a quiet piece counts little); drift the
// offset of each piece from the first, in samples.
func speechMatch(t *testing.T, src, rec []int16, from, n int) (corr float64, drift []int) {
	t.Helper()
	require.GreaterOrEqual(t, len(rec), from+n, "recording too short")
	loop := append(append(append([]int16(nil), src...), src...), src...)
	const (
		k      = 12    // decimation for the coarse searches
		piece  = 24000 // 0.5 s
		follow = 4800  // ±100 ms
		slack  = 120   // ±2.5 ms at full rate
	)
	lag, coarse := mediatest.BestLag(boxDecimate(rec[from:from+2*48000], k), boxDecimate(loop, k), len(src)/k)
	lag *= k
	t.Logf("coarse alignment: source offset %.3f s, correlation %.2f", float64(lag)/48000, coarse)
	var xy, xx, yy float64
	first := -1
	for off := 0; off+piece <= n; off += piece {
		want := rec[from+off : from+off+piece]
		if first >= 0 { // follow: ±100 ms around the last piece's offset, coarsely
			lo := max(lag-follow, 0)
			l, _ := mediatest.BestLag(boxDecimate(want, k), boxDecimate(loop[lo+off:lo+off+piece+2*follow], k), 2*follow/k)
			lag = lo + l*k
		}
		lo := max(lag-slack, 0)
		l, _ := mediatest.BestLag(want, loop[lo+off:lo+off+piece+2*slack], 2*slack)
		lag = lo + l
		if first < 0 {
			first = lag
		}
		drift = append(drift, lag-first)
		for i, x := range want {
			y := float64(loop[lag+off+i])
			xy += float64(x) * y
			xx += float64(x) * float64(x)
			yy += y * y
		}
	}
	require.NotZero(t, xx*yy, "silence")
	return xy / math.Sqrt(xx*yy), drift
}
