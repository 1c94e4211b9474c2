package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runIndexConformance holds RecordingsIndex to its contract.
func runIndexConformance(t *testing.T, newBackend func(t *testing.T) backendUnderTest) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	entry := func(id string, node NodeID, tenant string, room RoomID, start time.Duration) RecordingEntry {
		return RecordingEntry{ID: id, Node: node, Tenant: tenant, Room: room, State: RecordingComplete,
			StartedAt: t0.Add(start), ExpiresAt: t0.Add(start + 720*time.Hour),
			Bytes: 123456, Duration: 90*time.Second + 250*time.Millisecond}
	}

	t.Run("put, get, replace, delete", func(t *testing.T) {
		b := newBackend(t)
		_, err := b.index.Recording(ctx, "r1")
		require.ErrorIs(t, err, ErrNotFound)

		e := entry("r1", "a", "acme", "board", 0)
		e.State = RecordingActive
		// A time in another zone, with a monotonic reading, comes back as the
		// same instant in UTC.
		e.StartedAt = time.Now().In(time.FixedZone("CET", 3600))
		require.NoError(t, b.index.PutRecording(ctx, e))
		got, err := b.index.Recording(ctx, "r1")
		require.NoError(t, err)
		require.True(t, e.StartedAt.Equal(got.StartedAt))
		require.Equal(t, time.UTC, got.StartedAt.Location())
		e.StartedAt = got.StartedAt
		require.Equal(t, e, got)

		e.State, e.Bytes, e.Node = RecordingInterrupted, 999, "b"
		require.NoError(t, b.index.PutRecording(ctx, e))
		got, err = b.index.Recording(ctx, "r1")
		require.NoError(t, err)
		require.Equal(t, e, got, "put replaces by id")
		all, err := b.index.Recordings(ctx, RecordingFilter{})
		require.NoError(t, err)
		require.Equal(t, []RecordingEntry{e}, all, "a replaced entry is listed once")

		require.Error(t, b.index.PutRecording(ctx, RecordingEntry{}), "an entry needs an id")
		require.NoError(t, b.index.DeleteRecording(ctx, "r1"))
		_, err = b.index.Recording(ctx, "r1")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, b.index.DeleteRecording(ctx, "r1"), "deleting twice is fine")
		all, err = b.index.Recordings(ctx, RecordingFilter{})
		require.NoError(t, err)
		require.Empty(t, all)
	})

	t.Run("list newest first, filtered and limited", func(t *testing.T) {
		b := newBackend(t)
		es := []RecordingEntry{
			entry("r1", "a", "acme", "board", 1*time.Minute),
			entry("r2", "b", "acme", "board", 3*time.Minute),
			entry("r3", "a", "other", "lobby", 2*time.Minute),
			entry("r4", "b", "acme", "sales", 4*time.Minute),
			entry("r5", "a", "acme", "board", 3*time.Minute), // same start as r2: ties by ID, descending
		}
		for _, e := range es {
			require.NoError(t, b.index.PutRecording(ctx, e))
		}
		ids := func(f RecordingFilter) []string {
			t.Helper()
			got, err := b.index.Recordings(ctx, f)
			require.NoError(t, err)
			var out []string
			for _, e := range got {
				out = append(out, e.ID)
			}
			return out
		}
		require.Equal(t, []string{"r4", "r5", "r2", "r3", "r1"}, ids(RecordingFilter{}))
		require.Equal(t, []string{"r4", "r5"}, ids(RecordingFilter{Limit: 2}))
		require.Equal(t, []string{"r4", "r5", "r2", "r1"}, ids(RecordingFilter{Tenant: "acme"}))
		require.Equal(t, []string{"r5", "r2", "r1"}, ids(RecordingFilter{Room: "board"}))
		require.Equal(t, []string{"r5", "r3", "r1"}, ids(RecordingFilter{Node: "a"}))
		require.Equal(t, []string{"r5", "r1"}, ids(RecordingFilter{Tenant: "acme", Room: "board", Node: "a"}))
		require.Equal(t, []string{"r5"}, ids(RecordingFilter{Tenant: "acme", Node: "a", Limit: 1}))
		require.Empty(t, ids(RecordingFilter{Tenant: "nobody"}))
	})

	t.Run("a filtered limit reads past the first page", func(t *testing.T) {
		b := newBackend(t)
		for i := range 600 {
			tenant := "busy"
			if i%100 == 0 {
				tenant = "rare" // i = 0, 100, ..., 500: oldest-first
			}
			require.NoError(t, b.index.PutRecording(ctx, entry(fmt.Sprintf("r%03d", i), "a", tenant, "x", time.Duration(i)*time.Second)))
		}
		got, err := b.index.Recordings(ctx, RecordingFilter{Tenant: "rare", Limit: 5})
		require.NoError(t, err)
		require.Len(t, got, 5)
		require.Equal(t, "r500", got[0].ID)
		require.Equal(t, "r100", got[4].ID)
		all, err := b.index.Recordings(ctx, RecordingFilter{})
		require.NoError(t, err)
		require.Len(t, all, 600)
		require.Equal(t, "r599", all[0].ID)
		require.Equal(t, "r000", all[599].ID)
	})

	t.Run("entries have no expiry", func(t *testing.T) {
		// Recordings outlive nodes: time passing changes nothing.
		b := newBackend(t)
		e := entry("r1", "a", "acme", "board", 0)
		require.NoError(t, b.index.PutRecording(ctx, e))
		b.sleep(2 * b.ttl)
		got, err := b.index.Recording(ctx, "r1")
		require.NoError(t, err)
		require.Equal(t, e, got)
	})
}
