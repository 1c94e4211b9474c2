package configs

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testSecret is a token secret of the shortest accepted length.
const testSecret = "0123456789abcdef0123456789abcdef"

// testEncryptionKey is a recording.encryption_key: base64 of 32 bytes.
const testEncryptionKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// TestValidRoomID pins the room ID alphabet and length.
func TestValidRoomID(t *testing.T) {
	for id, want := range map[string]bool{
		"board": true, "b": true, "0": true, "sales-eu": true, "team_2": true,
		strings.Repeat("a", 64): true, strings.Repeat("a", 65): false,
		"": false, "Board": false, "-x": false, "_x": false, "a.b": false, "a/b": false,
		"a b": false, "ä": false, "a%2f": false,
	} {
		require.Equal(t, want, ValidRoomID(id), "%q", id)
	}
}

// TestValidateRoomsAndAuth: each rule of the rooms and auth sections
// accepts its edge values and refuses the values just outside.
func TestValidateRoomsAndAuth(t *testing.T) {
	tests := []struct {
		name  string
		rooms map[string]Room
		auth  func(*Auth)
		want  string // "" means valid
	}{
		{"no rooms", nil, nil, ""},
		{"all settings", map[string]Room{"board": {Name: "Board – Vorstand", PIN: "0000", MaxParticipants: 50, Number: "123456789012345"}}, nil, ""},
		{"pin 12 digits", map[string]Room{"a": {PIN: "123456789012"}}, nil, ""},
		{"pin 13 digits", map[string]Room{"a": {PIN: "1234567890123"}}, nil, "rooms.a.pin: must be 4 to 12 digits"},
		{"pin 3 digits", map[string]Room{"a": {PIN: "123"}}, nil, "rooms.a.pin: must be 4 to 12 digits"},
		{"pin unicode digits", map[string]Room{"a": {PIN: "١٢٣٤"}}, nil, "rooms.a.pin: must be 4 to 12 digits"},
		{"open with pin", map[string]Room{"a": {Open: true, PIN: "1234"}}, nil,
			"rooms.a.pin: must be empty in an open room (rooms.a.open: true)"},
		{"name 100 runes", map[string]Room{"a": {Name: strings.Repeat("ö", 100)}}, nil, ""},
		{"name 101 runes", map[string]Room{"a": {Name: strings.Repeat("ö", 101)}}, nil,
			"rooms.a.name: must be at most 100 printable characters"},
		{"name invalid utf-8", map[string]Room{"a": {Name: "\xff"}}, nil,
			"rooms.a.name: must be at most 100 printable characters"},
		{"number 16 digits", map[string]Room{"a": {Number: "1234567890123456"}}, nil,
			`rooms.a.number: "1234567890123456" must be 1 to 15 digits (ITU-T E.164 §6)`},
		{"numbers unique", map[string]Room{"a": {Number: "1"}, "b": {Number: "2"}}, nil, ""},
		{"number taken, later id blamed", map[string]Room{"b": {Number: "1"}, "a": {Number: "1"}}, nil,
			`rooms.b.number: "1" is already the number of rooms.a`},
		{"bad id", map[string]Room{"a.b": {}}, nil,
			`rooms.a.b: room id "a.b" must be 1 to 64 characters from a-z 0-9 _ -, starting with a letter or digit`},
		{"tenant 64 characters", map[string]Room{"a": {Tenant: "Acme.EU_" + strings.Repeat("x", 55) + "-"}}, nil, ""},
		{"tenant 65 characters", map[string]Room{"a": {Tenant: strings.Repeat("x", 65)}}, nil,
			`rooms.a.tenant: "` + strings.Repeat("x", 65) + `" must be 1 to 64 characters from A-Z a-z 0-9 . _ -`},
		{"tenant with a space", map[string]Room{"a": {Tenant: "acme eu"}}, nil,
			`rooms.a.tenant: "acme eu" must be 1 to 64 characters from A-Z a-z 0-9 . _ -`},
		{"tenant star is for keys", map[string]Room{"a": {Tenant: "*"}}, nil,
			`rooms.a.tenant: "*" must be 1 to 64 characters from A-Z a-z 0-9 . _ -`},
		{"secret 32 bytes", nil, func(a *Auth) { a.TokenSecret = testSecret }, ""},
		{"secret 31 bytes", nil, func(a *Auth) { a.TokenSecret = testSecret[1:] },
			"auth.token_secret: must be at least 32 bytes (RFC 7518 §3.2), got 31"},
		{"lifetime 1m", nil, func(a *Auth) { a.PageTokenLifetime = time.Minute }, ""},
		{"lifetime 24h", nil, func(a *Auth) { a.PageTokenLifetime = 24 * time.Hour }, ""},
		{"lifetime under 1m", nil, func(a *Auth) { a.PageTokenLifetime = 59 * time.Second },
			"auth.page_token_lifetime: 59s out of range 1m..24h"},
		{"lifetime over 24h", nil, func(a *Auth) { a.PageTokenLifetime = 24*time.Hour + 1 },
			"auth.page_token_lifetime: 24h0m0.000000001s out of range 1m..24h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Rooms = tt.rooms
			if tt.auth != nil {
				tt.auth(&c.Auth)
			}
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, tt.want, err.Error())
			require.ErrorIs(t, err, ErrInvalid)
			for _, r := range tt.rooms {
				if r.PIN != "" {
					require.NotContains(t, err.Error(), r.PIN)
				}
			}
			if c.Auth.TokenSecret != "" {
				require.NotContains(t, err.Error(), c.Auth.TokenSecret)
			}
		})
	}
}

// TestRoomTenant: a room without a tenant belongs to the default tenant;
// ValidTenant takes what recorder.Tenant takes and nothing else.
func TestRoomTenant(t *testing.T) {
	require.Equal(t, DefaultTenant, Room{}.TenantName())
	require.Equal(t, "acme", Room{Tenant: "acme"}.TenantName())
	for s, want := range map[string]bool{
		"acme": true, "A": true, "acme.eu-2_x": true, strings.Repeat("a", 64): true,
		"": false, strings.Repeat("a", 65): false, "*": false, "a b": false, "a/b": false, "ä": false, "a\n": false,
	} {
		require.Equal(t, want, ValidTenant(s), "%q", s)
	}
	got, err := Load("", []string{"MEDIAGATE_ROOMS_BOARD_TENANT=acme"})
	require.NoError(t, err)
	require.Equal(t, map[string]Room{"board": {Tenant: "acme"}}, got.Rooms)
}

// TestRedacted: secrets are replaced in the copy, the original and its map
// stay as they were, and unset secrets stay empty.
func TestRedacted(t *testing.T) {
	c := Default()
	c.Auth.TokenSecret = testSecret
	c.Rooms = map[string]Room{"board": {Name: "Board", PIN: "4711", Number: "1001"}, "lobby": {Open: true}}
	r := c.Redacted()
	require.Equal(t, "<redacted>", r.Auth.TokenSecret)
	require.Equal(t, Room{Name: "Board", PIN: "<redacted>", Number: "1001"}, r.Rooms["board"])
	require.Equal(t, Room{Open: true}, r.Rooms["lobby"])
	require.Equal(t, testSecret, c.Auth.TokenSecret)
	require.Equal(t, "4711", c.Rooms["board"].PIN, "the original map is untouched")

	d := Default().Redacted()
	require.Equal(t, Default(), d, "nothing to redact in the defaults")

	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", c.Rooms)} {
		require.NotContains(t, s, "4711", "fmt never prints a PIN")
		require.NotContains(t, s, testSecret, "fmt never prints the secret")
		require.Contains(t, s, "<redacted>")
	}
}

// TestRoomsEnv: rooms from the environment, whole section and per key.
func TestRoomsEnv(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want map[string]Room
	}{
		{"per key creates the room", []string{"MEDIAGATE_ROOMS_BOARD_PIN=4711", "MEDIAGATE_ROOMS_BOARD_NAME=Board"},
			map[string]Room{"board": {Name: "Board", PIN: "4711"}}},
		{"id with underscore and multi-word key", []string{"MEDIAGATE_ROOMS_TEAM_2_MAX_PARTICIPANTS=5", "MEDIAGATE_ROOMS_TEAM_2_OPEN=true"},
			map[string]Room{"team_2": {Open: true, MaxParticipants: 5}}},
		{"id that looks like a key", []string{"MEDIAGATE_ROOMS_PIN_NAME=x"}, map[string]Room{"pin": {Name: "x"}}},
		{"whole section as JSON", []string{`MEDIAGATE_ROOMS={"sales-eu": {"pin": "2468", "number": "42"}, "lobby": {"open": true}}`},
			map[string]Room{"sales-eu": {PIN: "2468", Number: "42"}, "lobby": {Open: true}}},
		{"whole section as YAML flow, entry without settings", []string{"MEDIAGATE_ROOMS={a: {open: true}, b: }"},
			map[string]Room{"a": {Open: true}, "b": {}}},
		{"per key applies after the section whatever the order", []string{
			"MEDIAGATE_ROOMS_LOBBY_NAME=Lobby", `MEDIAGATE_ROOMS={"lobby": {"open": true}, "x": {}}`,
		}, map[string]Room{"lobby": {Name: "Lobby", Open: true}, "x": {}}},
		{"empty section", []string{"MEDIAGATE_ROOMS="}, map[string]Room{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load("", tt.env)
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Rooms)
		})
	}
}

// TestRoomsEnvErrors: bad room variables name the variable, and the key
// when the variable holds a whole section; PINs never show.
func TestRoomsEnvErrors(t *testing.T) {
	tests := []struct {
		env  string
		want string
		kind error
	}{
		{`MEDIAGATE_ROOMS={"board": {"pinn": "4711"}}`, "env MEDIAGATE_ROOMS: rooms.board.pinn: unknown key", ErrUnknownKey},
		{`MEDIAGATE_ROOMS={"board": {"open": "yes"}}`, `env MEDIAGATE_ROOMS: rooms.board.open: want true or false, got "yes"`, ErrType},
		{`MEDIAGATE_ROOMS=[board]`, "env MEDIAGATE_ROOMS: want a mapping, got a list", ErrType},
		{`MEDIAGATE_ROOMS={"board": 1}`, `env MEDIAGATE_ROOMS: rooms.board: want a mapping, got "1"`, ErrType},
		{`MEDIAGATE_ROOMS={"a": {}, "a": {}}`, "env MEDIAGATE_ROOMS: rooms.a: duplicate key (first at line 1)", ErrDuplicateKey},
		{`MEDIAGATE_ROOMS={"board": `, "env MEDIAGATE_ROOMS: did not find expected node content", ErrSyntax},
		{`MEDIAGATE_ROOMS={"Board": {}}`,
			`env MEDIAGATE_ROOMS: rooms.Board: room id "Board" must be 1 to 64 characters from a-z 0-9 _ -, starting with a letter or digit`, ErrInvalid},
		{`MEDIAGATE_ROOMS={"board": {"pin": "47x1"}}`, "env MEDIAGATE_ROOMS: rooms.board.pin: must be 4 to 12 digits", ErrInvalid},
		{"MEDIAGATE_ROOMS_BOARD_PIN=47x1", "env MEDIAGATE_ROOMS_BOARD_PIN: must be 4 to 12 digits", ErrInvalid},
		{"MEDIAGATE_ROOMS_BOARD_OPEN=maybe", `env MEDIAGATE_ROOMS_BOARD_OPEN: want true or false, got "maybe"`, ErrType},
		{"MEDIAGATE_ROOMS_BOARD_PINN=4711", "env MEDIAGATE_ROOMS_BOARD_PINN: matches no config key", ErrUnknownKey},
		{"MEDIAGATE_ROOMS_PIN=4711", "env MEDIAGATE_ROOMS_PIN: matches no config key", ErrUnknownKey},
		{"MEDIAGATE_ROOMS_Board_PIN=4711", "env MEDIAGATE_ROOMS_Board_PIN: matches no config key", ErrUnknownKey},
		{"MEDIAGATE_ROOMS_=1", "env MEDIAGATE_ROOMS_: matches no config key", ErrUnknownKey},
		{"MEDIAGATE_AUTH_TOKEN_SECRET=short", "env MEDIAGATE_AUTH_TOKEN_SECRET: must be at least 32 bytes (RFC 7518 §3.2), got 5", ErrInvalid},
	}
	for _, tt := range tests {
		_, err := Load("", []string{tt.env})
		require.Error(t, err, tt.env)
		require.Equal(t, tt.want, err.Error(), tt.env)
		require.ErrorIs(t, err, tt.kind, tt.env)
		require.NotContains(t, err.Error(), "47x1")
		require.NotContains(t, err.Error(), "short")
	}
}

// mapTypesConfig has a map section below a section, to show the loader
// handles map sections wherever they are, with entries that have a
// section of their own.
type mapTypesConfig struct {
	S struct {
		M map[string]struct {
			N   int `yaml:"n"`
			Sub struct {
				X string `yaml:"x"`
			} `yaml:"sub"`
		} `yaml:"m"`
	} `yaml:"s"`
}

// TestMapSectionsAnywhere: a nested map section with nested entry sections
// loads from YAML and from per-key variables, with exact error locations.
func TestMapSectionsAnywhere(t *testing.T) {
	var c mapTypesConfig
	l := loader{file: "t.yaml", origins: map[string]origin{}}
	root := reflectValue(&c)
	l.yaml([]byte("s:\n  m:\n    one:\n      n: 1\n      sub:\n        x: a\n"), root)
	l.env([]string{"MEDIAGATE_S_M_TWO_SUB_X=b", "MEDIAGATE_S_M_ONE_N=3"}, root)
	require.NoError(t, join(l.errs))
	require.Equal(t, 3, c.S.M["one"].N)
	require.Equal(t, "a", c.S.M["one"].Sub.X)
	require.Equal(t, "b", c.S.M["two"].Sub.X)
	require.Equal(t, origin{line: 6}, l.origins["s.m.one.sub.x"])
	require.Equal(t, origin{env: "MEDIAGATE_S_M_ONE_N"}, l.origins["s.m.one.n"])

	l = loader{file: "t.yaml", origins: map[string]origin{}}
	l.yaml([]byte("s:\n  m:\n    one:\n      sub:\n        y: 1\n"), reflectValue(&c))
	require.Equal(t, "t.yaml:5: s.m.one.sub.y: unknown key", join(l.errs).Error())
}

// reflectValue is the settable struct p points to.
func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
