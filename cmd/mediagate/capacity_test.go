package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readyz returns the status and body of g's /readyz.
func readyz(t *testing.T, base string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// TestReadyzAtCapacity: with sip.guard.max_calls and
// node.max_participants at 1, one call makes /readyz answer 429 naming
// both limits; once the call ended it answers 200 again.
func TestReadyzAtCapacity(t *testing.T) {
	g := startGateway(t, nil,
		`MEDIAGATE_ROOMS={"board": {"open": true}}`,
		`MEDIAGATE_DIALIN_NUMBERS={"2000": {"room": "board"}}`,
		"MEDIAGATE_SIP_GUARD_MAX_CALLS=1", "MEDIAGATE_NODE_MAX_PARTICIPANTS=1")
	code, body := readyz(t, g.base)
	require.Equal(t, http.StatusOK, code, "%s", body)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	phone := newRTPSink(t)
	cmd := sipp(ctx, t, g, "dialin_fixed.xml", "2000", "-key", "rtp_port", strconv.Itoa(phone.port()))
	out := make(chan error, 1)
	var output []byte
	go func() {
		var err error
		output, err = cmd.CombinedOutput()
		out <- err
	}()
	require.Eventually(t, func() bool {
		code, body = readyz(t, g.base)
		return code == http.StatusTooManyRequests
	}, 6*time.Second, 50*time.Millisecond, "429 during the call: %d %s", code, body)
	type use struct{ Used, Limit int }
	var full struct {
		Status   string
		Capacity map[string]use
	}
	require.NoError(t, json.Unmarshal(body, &full))
	require.Equal(t, "at capacity", full.Status)
	require.Equal(t, use{1, 1}, full.Capacity["calls"])
	// The participant joins a moment after the call is counted.
	require.Eventually(t, func() bool {
		code, body = readyz(t, g.base)
		return code == http.StatusTooManyRequests && json.Unmarshal(body, &full) == nil && full.Capacity["participants"] == use{1, 1}
	}, 6*time.Second, 50*time.Millisecond, "the caller counts as a participant: %s", body)

	select {
	case err := <-out:
		require.NoError(t, err, "sipp: %s", lastLines(string(output), 30))
	case <-ctx.Done():
		t.Fatal("sipp did not finish")
	}
	require.Eventually(t, func() bool {
		code, body = readyz(t, g.base)
		return code == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "ready again once the call ended: %d %s", code, body)
}
