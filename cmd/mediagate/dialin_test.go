package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
)

func TestRoomDirectory(t *testing.T) {
	d := newRoomDirectory(map[string]configs.Room{
		"board": {PIN: "4711", Number: "1001"},
		"lobby": {Open: true, Number: "1002"},
		"vip":   {}, // no number: not reachable by phone
	})
	for _, tc := range []struct {
		number   string
		id       room.ID
		needsPIN bool
		ok       bool
	}{
		{"1001", "board", true, true},
		{"1002", "lobby", false, true},
		{"1003", "", false, false},
		{"", "", false, false},
	} {
		id, needsPIN, ok := d.Lookup(tc.number)
		require.Equal(t, tc.id, id, tc.number)
		require.Equal(t, tc.needsPIN, needsPIN, tc.number)
		require.Equal(t, tc.ok, ok, tc.number)
	}
	require.True(t, d.CheckPIN("board", "4711"))
	require.False(t, d.CheckPIN("board", "4712"))
	require.False(t, d.CheckPIN("board", "47110"))
	require.False(t, d.CheckPIN("board", ""))
	require.False(t, d.CheckPIN("lobby", ""), "a room without a PIN accepts none")
	require.False(t, d.CheckPIN("nowhere", "4711"))
}
