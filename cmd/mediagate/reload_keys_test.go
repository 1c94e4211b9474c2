package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
)

// TestReloadKeys: what a reload applies and what waits for a restart, key
// by key, with secrets named and never shown.
func TestReloadKeys(t *testing.T) {
	running := configs.Default()
	running.Node.ID = "n-1"
	running.Rooms = map[string]configs.Room{
		"board": {PIN: "4711", Tenant: "acme", AutoRecord: true},
		"old":   {Open: true},
	}
	running.SIP.Trunks = map[string]configs.Trunk{"carrier": {CIDRs: []string{"192.0.2.0/24"}}}
	running.Dialin.Numbers = map[string]configs.DialinNumber{"2000": {Room: "board"}}

	loaded := configs.Default()
	loaded.Node.ID = "n-1"
	loaded.Log.Level = "debug"
	loaded.Log.Format = "json"
	loaded.HTTP.Listen = ":9090"
	loaded.Node.MaxParticipants = 40
	loaded.SIP.Guard.MaxCalls = 10
	loaded.Auth.TokenSecret = "a-secret-that-is-long-enough-for-hs256!"
	loaded.Rooms = map[string]configs.Room{
		"board": {PIN: "9876", Tenant: "other", AutoRecord: false, MaxParticipants: 5},
		"new":   {Tenant: "acme", AutoRecord: true},
	}
	loaded.SIP.Trunks = map[string]configs.Trunk{"carrier": {CIDRs: []string{"198.51.100.0/24"}, Username: "u", Password: "p"}}
	loaded.Dialin.Numbers = map[string]configs.DialinNumber{"2000": {Room: "new"}, "3000": {}}
	loaded.Recording.Policies["legal"] = configs.RetentionPolicy{Duration: 24 * time.Hour}
	loaded.Webhooks = map[string]configs.Webhook{"platform": {URL: "https://platform.example/hooks", Secret: "0123456789abcdef"}}

	eff := applicable(running, loaded)
	require.Equal(t, []string{
		"dialin.numbers.2000.room", "dialin.numbers.3000",
		"log.level", "node.max_participants",
		"recording.policies.legal",
		"rooms.board.max_participants", "rooms.board.pin", "rooms.new", "rooms.old",
		"sip.trunks.carrier.cidrs", "sip.trunks.carrier.password", "sip.trunks.carrier.username",
		"webhooks.platform",
	}, changedKeys(running, eff), "applied")
	require.Equal(t, []string{
		"auth.token_secret", "http.listen", "log.format",
		"rooms.board.auto_record", "rooms.board.tenant", "rooms.new.auto_record",
		"sip.guard.max_calls",
	}, changedKeys(eff, loaded), "restart")

	require.Equal(t, "acme", eff.Rooms["board"].Tenant, "an existing room keeps its tenant")
	require.Equal(t, "acme", eff.Rooms["new"].Tenant, "a new room gets its tenant")
	require.False(t, eff.Rooms["new"].AutoRecord, "recorded from the next start on")
	require.True(t, eff.Rooms["board"].AutoRecord)
	require.Equal(t, "9876", eff.Rooms["board"].PIN)
	require.Equal(t, running.HTTP, eff.HTTP)

	require.Empty(t, changedKeys(running, running))
	unchanged := configs.Default()
	unchanged.Rooms, unchanged.Dialin.Numbers = nil, nil
	require.Empty(t, changedKeys(configs.Default(), unchanged), "nil and empty are the same")
}
