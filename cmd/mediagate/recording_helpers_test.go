package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
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

// speechCorrelation finds where in the looped source the recording's
// window [from, from+n) (48 kHz samples) comes from, coarsely at 4 kHz
// over the whole loop and then to the sample, and returns the normalised
// cross-correlation there.
func speechCorrelation(t *testing.T, src, rec []int16, from, n int) float64 {
	t.Helper()
	require.GreaterOrEqual(t, len(rec), from+n, "recording too short")
	loop := append(append(append([]int16(nil), src...), src...), src...)
	// Coarse: a 2 s piece of the window against one pass of the loop.
	const k = 12
	want := boxDecimate(rec[from:from+2*48000], k)
	lag, coarse := mediatest.BestLag(want, boxDecimate(loop, k), len(src)/k)
	t.Logf("coarse alignment: source offset %.3f s, correlation %.2f", float64(lag*k)/48000, coarse)
	// Fine: the whole window around it.
	const slack = 120 // 2.5 ms each way
	start := max(lag*k-slack, 0)
	_, corr := mediatest.BestLag(rec[from:from+n], loop[start:], 2*slack)
	return corr
}
