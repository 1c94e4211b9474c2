package cluster

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMemoryPublishNeverWaits fills a subscriber's buffer and checks that
// further notices are counted as dropped instead of blocking the publisher.
func TestMemoryPublishNeverWaits(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	s, err := m.Subscribe(ctx, "t", 1)
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, m.Publish(ctx, "t", []byte("x")))
	}
	require.Equal(t, uint64(2), s.Dropped())
	require.NoError(t, s.Close())
	require.NoError(t, m.Publish(ctx, "t", []byte("after close")), "publishing to a closed subscription is a no-op")
}
