package api

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadyzCapacity: /readyz answers 429 with Retry-After and the
// exhausted limits while one is reached, 200 below it and with no limit,
// and 503 first while a check fails or the node drains.
func TestReadyzCapacity(t *testing.T) {
	var calls, participants, participantLimit atomic.Int64
	var failing atomic.Bool
	participantLimit.Store(3)
	s, base := startServer(t,
		WithCapacity("calls", func() (int, int) { return int(calls.Load()), 1 }),
		WithCapacity("participants", func() (int, int) { return int(participants.Load()), int(participantLimit.Load()) }),
		WithCapacity("unlimited", func() (int, int) { return 1000, 0 }),
		WithReadiness("redis", func(context.Context) error {
			if failing.Load() {
				return errors.New("connection refused")
			}
			return nil
		}))
	code, body := get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code, "below every limit; a limit of 0 is none")
	require.JSONEq(t, `{"status":"ready"}`, body)

	calls.Store(1)
	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.JSONEq(t, `{"status":"at capacity","capacity":{"calls":{"used":1,"limit":1}}}`, body)

	participants.Store(4)
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.JSONEq(t, `{"status":"at capacity","capacity":{"calls":{"used":1,"limit":1},"participants":{"used":4,"limit":3}}}`, body,
		"above a limit counts as reached; every exhausted limit is named")

	failing.Store(true)
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "a failing dependency comes before capacity")
	require.JSONEq(t, `{"status":"not ready","failed":{"redis":"connection refused"}}`, body)
	failing.Store(false)

	calls.Store(0)
	participantLimit.Store(0)
	code, _ = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code, "room again")

	calls.Store(1)
	s.Drain()
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "draining comes before capacity")
	require.JSONEq(t, `{"status":"draining"}`, body)
}
