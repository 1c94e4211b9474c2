package cluster

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// runKeyRecordsConformance holds KeyRecords to its contract.
func runKeyRecordsConformance(t *testing.T, newBackend func(t *testing.T) backendUnderTest) {
	ctx := context.Background()

	t.Run("put, list, replace, never expire", func(t *testing.T) {
		b := newBackend(t)
		got, err := b.keys.KeyRecords(ctx)
		require.NoError(t, err)
		require.Empty(t, got)

		a := []byte(`{"id":"0123456789ab","name":"ops"}`)
		require.NoError(t, b.keys.PutKeyRecord(ctx, "0123456789ab", a))
		require.NoError(t, b.keys.PutKeyRecord(ctx, "ba9876543210", []byte(`{"id":"ba9876543210"}`)))
		a[2] = 'X' // the store kept its own copy
		got, err = b.keys.KeyRecords(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string][]byte{
			"0123456789ab": []byte(`{"id":"0123456789ab","name":"ops"}`),
			"ba9876543210": []byte(`{"id":"ba9876543210"}`),
		}, got)

		got["0123456789ab"][2] = 'Y' // and hands out copies
		revoked := []byte(`{"id":"0123456789ab","revoked_at":"2026-11-23T10:00:00Z"}`)
		require.NoError(t, b.keys.PutKeyRecord(ctx, "0123456789ab", revoked))
		b.sleep(3 * b.ttl)
		got, err = b.keys.KeyRecords(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string][]byte{
			"0123456789ab": revoked,
			"ba9876543210": []byte(`{"id":"ba9876543210"}`),
		}, got, "replaced, and kept past every TTL")
	})

	t.Run("empty id refused", func(t *testing.T) {
		b := newBackend(t)
		err := b.keys.PutKeyRecord(ctx, "", []byte(`{}`))
		require.Error(t, err)
		require.False(t, errors.Is(err, ErrBackend), "a caller's mistake, not an outage")
		got, err := b.keys.KeyRecords(ctx)
		require.NoError(t, err)
		require.Empty(t, got)
	})
}
