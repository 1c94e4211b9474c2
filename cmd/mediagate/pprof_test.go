package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPprofListener: http.pprof_listen serves the profiler on a loopback
// listener of its own, and the public listener does not serve it.
func TestPprofListener(t *testing.T) {
	n := startGateway(t, nil, "MEDIAGATE_HTTP_PPROF_LISTEN=127.0.0.1:0")
	// The line comes before "mediagate ready": it is in n.logs by now.
	var addr string
	re := regexp.MustCompile(`msg="profiler listening".* addr=(\S+)`)
	for addr == "" {
		select {
		case line := <-n.logs:
			if m := re.FindStringSubmatch(line); m != nil {
				addr = m[1]
			}
			continue
		default:
		}
		break
	}
	require.NotEmpty(t, addr, "no 'profiler listening' line")
	require.True(t, strings.HasPrefix(addr, "127.0.0.1:"), addr)

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, body := get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "goroutine profile: total")

	code, _ = get(n.base + "/debug/pprof/")
	require.Equal(t, http.StatusNotFound, code, "the profiler must not be on the public listener")
}
