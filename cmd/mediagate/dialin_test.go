package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
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

// TestDialInDispatcher: the dialin section's rules become the bridge's,
// a fixed room asking for its PIN when it has one.
func TestDialInDispatcher(t *testing.T) {
	cfg := configs.Default()
	cfg.Rooms = map[string]configs.Room{"board": {PIN: "4711"}, "lobby": {Open: true}, "hall": {}}
	cfg.Dialin.Numbers = map[string]configs.DialinNumber{
		"2000": {Room: "board"},
		"2001": {Room: "lobby", Language: "de"},
		"2002": {Room: "hall"},
		"*":    {},
	}
	d := newDispatcher(cfg)
	for number, want := range map[sip.Number]bridge.Rule{
		"2000": {Room: "board", NeedsPIN: true, Lang: bridge.English},
		"2001": {Room: "lobby", Lang: bridge.German},
		"2002": {Room: "hall", Lang: bridge.English},
		"9999": {Lang: bridge.English},
	} {
		got, err := d.Route(number)
		require.NoError(t, err)
		require.Equal(t, want, got, number.Digits())
	}
	_, err := newDispatcher(configs.Default()).Route("9999")
	require.NoError(t, err, "no rules: everything goes to the IVR")
}

// TestDialInPrompts: dialin.prompts_dir may add a language, which rules
// can then name; a language nobody provides, or a directory that does not
// exist, stops the start naming the key.
func TestDialInPrompts(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "fr"), 0o755))
	for _, id := range bridge.AllPrompts {
		b, err := os.ReadFile(filepath.Join("..", "..", "bridge", "prompts", "en", string(id)+".wav"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "fr", string(id)+".wav"), b, 0o644))
	}
	p, err := loadPrompts(configs.Dialin{Language: "fr", PromptsDir: dir,
		Numbers: map[string]configs.DialinNumber{"2000": {Language: "de"}}})
	require.NoError(t, err)
	require.True(t, p.Has("fr"))

	_, err = loadPrompts(configs.Dialin{Language: "en", PromptsDir: dir,
		Numbers: map[string]configs.DialinNumber{"2000": {Language: "it"}}})
	require.ErrorContains(t, err, `dialin.numbers.2000.language: no prompts in language "it"`)
	_, err = loadPrompts(configs.Dialin{Language: "es", PromptsDir: dir})
	require.ErrorContains(t, err, `dialin.language: no prompts in language "es"`)
	_, err = loadPrompts(configs.Dialin{Language: "en", PromptsDir: filepath.Join(dir, "missing")})
	require.ErrorIs(t, err, bridge.ErrPromptOverride)
	require.ErrorContains(t, err, "dialin.prompts_dir")
}
