package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runRoomStateConformance holds RoomStates to its contract.
func runRoomStateConformance(t *testing.T, newBackend func(t *testing.T) backendUnderTest) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

	t.Run("put, list sorted, replace, expire", func(t *testing.T) {
		b := newBackend(t)
		got, err := b.states.RoomStates(ctx)
		require.NoError(t, err)
		require.Empty(t, got)

		board := RoomState{Room: "board", Node: "a", Epoch: 3, Participants: 5, Phone: 2, WebRTC: 3,
			Recording: true, Egresses: 1, UpdatedAt: t0}
		lobby := RoomState{Room: "lobby", Node: "b", Epoch: 1, Participants: 1, WebRTC: 1, UpdatedAt: t0}
		require.NoError(t, b.states.PutRoomState(ctx, lobby, b.ttl))
		require.NoError(t, b.states.PutRoomState(ctx, board, b.ttl))
		got, err = b.states.RoomStates(ctx)
		require.NoError(t, err)
		require.Equal(t, []RoomState{board, lobby}, got)

		board.Participants, board.UpdatedAt = 6, t0.Add(time.Second)
		require.NoError(t, b.states.PutRoomState(ctx, board, b.ttl))
		got, err = b.states.RoomStates(ctx)
		require.NoError(t, err)
		require.Equal(t, []RoomState{board, lobby}, got, "the latest state wins")

		eventually(t, b, "lobby's state expires while board's owner refreshes it", func() bool {
			require.NoError(t, b.states.PutRoomState(ctx, board, b.ttl))
			got, err := b.states.RoomStates(ctx)
			require.NoError(t, err)
			return len(got) == 1 && got[0] == board
		})
		require.Error(t, b.states.PutRoomState(ctx, RoomState{Node: "a"}, b.ttl), "a state needs a room")
		require.Error(t, b.states.PutRoomState(ctx, board, 0), "a state needs a ttl")
	})

	t.Run("a lower epoch is refused", func(t *testing.T) {
		b := newBackend(t)
		newer := RoomState{Room: "board", Node: "b", Epoch: 5, Participants: 1, UpdatedAt: t0}
		require.NoError(t, b.states.PutRoomState(ctx, newer, b.ttl))
		stale := RoomState{Room: "board", Node: "a", Epoch: 4, Participants: 9, UpdatedAt: t0}
		require.ErrorIs(t, b.states.PutRoomState(ctx, stale, b.ttl), ErrStaleEpoch)
		got, err := b.states.RoomStates(ctx)
		require.NoError(t, err)
		require.Equal(t, []RoomState{newer}, got)

		newest := newer
		newest.Epoch, newest.Node = 6, "c"
		require.NoError(t, b.states.PutRoomState(ctx, newest, b.ttl))
		got, err = b.states.RoomStates(ctx)
		require.NoError(t, err)
		require.Equal(t, []RoomState{newest}, got)
	})

	t.Run("delete only by the node that stored it", func(t *testing.T) {
		b := newBackend(t)
		s := RoomState{Room: "board", Node: "b", Epoch: 2, UpdatedAt: t0}
		require.NoError(t, b.states.PutRoomState(ctx, s, b.ttl))
		require.NoError(t, b.states.DeleteRoomState(ctx, "board", "a"), "the old owner's delete does nothing")
		got, err := b.states.RoomStates(ctx)
		require.NoError(t, err)
		require.Equal(t, []RoomState{s}, got)

		require.NoError(t, b.states.DeleteRoomState(ctx, "board", "b"))
		got, err = b.states.RoomStates(ctx)
		require.NoError(t, err)
		require.Empty(t, got)
		require.NoError(t, b.states.DeleteRoomState(ctx, "board", "b"), "deleting twice is fine")

		old := RoomState{Room: "board", Node: "a", Epoch: 1, UpdatedAt: t0}
		require.NoError(t, b.states.PutRoomState(ctx, old, b.ttl), "after a delete any epoch may start again")
	})
}
