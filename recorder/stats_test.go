package recorder

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStats: a running recording is active; the octets written equal the
// file's size; an expiry deletion counts one deletion and one receipt.
func TestStats(t *testing.T) {
	h := newHarness(t, nil)
	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "", src)
	require.NoError(t, err)
	require.Equal(t, 1, h.r.Stats().Active)
	src.feed(t, shortTone())
	require.NoError(t, rec.Stop(context.Background()))
	m := rec.Manifest()
	_, size := fileSHA(t, h.audioPath(t, m.ID))

	st := h.r.Stats()
	require.Zero(t, st.Active)
	require.Equal(t, uint64(size), st.BytesWritten, "every octet of the file, counted once")
	require.Equal(t, uint64(1), st.Events[EventStarted])
	require.Equal(t, uint64(1), st.Events[EventCompleted])
	require.Zero(t, st.ReceiptsWritten)

	h.clock.Set(m.ExpiresAt)
	require.Equal(t, []ID{m.ID}, h.r.Sweep(h.clock.Now()).Deleted)
	st = h.r.Stats()
	require.Equal(t, uint64(1), st.Events[EventDeleted])
	require.Equal(t, uint64(1), st.ReceiptsWritten)
}
