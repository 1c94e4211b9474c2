package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
)

// TestAuthSetRooms: replaced rooms apply to the next request: a changed
// PIN (the old one refused, the new one taken), a room made open, a room
// removed from the configuration, one added; and the tenant and listing
// follow.
func TestAuthSetRooms(t *testing.T) {
	e := newJoinEnv(t)
	requireToken(t, e, e.postToken("board", "Ada", "4711"), "board")
	requireProblem(t, e.postToken("vip", "Ada", ""), http.StatusForbidden, "invitation-required")

	e.auth.SetRooms(map[string]configs.Room{
		"board": {PIN: "9876", Tenant: "acme"},
		"vip":   {Open: true},
		"new":   {PIN: "1357", Tenant: "initech"},
	})
	requireProblem(t, e.postToken("board", "Ada", "4711"), http.StatusForbidden, "wrong-pin")
	requireToken(t, e, e.postToken("board", "Ada", "9876"), "board")
	requireToken(t, e, e.postToken("vip", "Ada", ""), "vip")
	requireToken(t, e, e.postToken("new", "Ada", "1357"), "new")
	require.Equal(t, "initech", e.auth.RoomTenant("new"))
	_, configured := e.auth.Room("annex")
	require.False(t, configured, "annex was removed")
	require.Equal(t, configs.DefaultTenant, e.auth.RoomTenant("annex"))
	require.Len(t, e.auth.RoomIDs(), 3)
}
