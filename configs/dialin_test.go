package configs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestValidateDialin: each rule of the dialin section accepts its edge
// values and refuses the values just outside.
func TestValidateDialin(t *testing.T) {
	rooms := map[string]Room{"board": {PIN: "4711"}, "lobby": {Open: true}}
	tests := []struct {
		name string
		edit func(*Dialin)
		want string // "" means valid
	}{
		{"defaults", func(*Dialin) {}, ""},
		{"German", func(d *Dialin) { d.Language = "de" }, ""},
		{"unknown language", func(d *Dialin) { d.Language = "fr" },
			`dialin.language: "fr" is not one of de, en (dialin.prompts_dir can add languages)`},
		{"empty language", func(d *Dialin) { d.Language = "" },
			`dialin.language: "" is not one of de, en (dialin.prompts_dir can add languages)`},
		{"language from the prompts directory", func(d *Dialin) { d.Language, d.PromptsDir = "fr", "/srv/prompts" }, ""},
		{"8 letters", func(d *Dialin) { d.Language, d.PromptsDir = "abcdefgh", "/srv/prompts" }, ""},
		{"9 letters", func(d *Dialin) { d.Language, d.PromptsDir = "abcdefghi", "/srv/prompts" },
			`dialin.language: "abcdefghi" must be a shipped language (de, en) or a directory of dialin.prompts_dir named with 2 to 8 letters a-z`},
		{"1 letter", func(d *Dialin) { d.Language, d.PromptsDir = "f", "/srv/prompts" },
			`dialin.language: "f" must be a shipped language (de, en) or a directory of dialin.prompts_dir named with 2 to 8 letters a-z`},
		{"no path in a language", func(d *Dialin) { d.Language, d.PromptsDir = "../x", "/srv/prompts" },
			`dialin.language: "../x" must be a shipped language (de, en) or a directory of dialin.prompts_dir named with 2 to 8 letters a-z`},
		{"rules", func(d *Dialin) {
			d.Numbers = map[string]DialinNumber{
				"4930555000":      {Room: "board", Language: "de"},
				"+4930555001":     {Room: "lobby"},
				"123456789012345": {},
				"1":               {Language: "en"},
				"*":               {},
			}
		}, ""},
		{"16 digits", func(d *Dialin) { d.Numbers = map[string]DialinNumber{"1234567890123456": {}} },
			`dialin.numbers.1234567890123456: "1234567890123456" must be "*" or 1 to 15 digits, optionally after a + (ITU-T E.164 §6)`},
		{"only a plus", func(d *Dialin) { d.Numbers = map[string]DialinNumber{"+": {}} },
			`dialin.numbers.+: "+" must be "*" or 1 to 15 digits, optionally after a + (ITU-T E.164 §6)`},
		{"a name", func(d *Dialin) { d.Numbers = map[string]DialinNumber{"sales": {}} },
			`dialin.numbers.sales: "sales" must be "*" or 1 to 15 digits, optionally after a + (ITU-T E.164 §6)`},
		{"a pattern", func(d *Dialin) { d.Numbers = map[string]DialinNumber{"4930*": {}} },
			`dialin.numbers.4930*: "4930*" must be "*" or 1 to 15 digits, optionally after a + (ITU-T E.164 §6)`},
		{"unknown room", func(d *Dialin) { d.Numbers = map[string]DialinNumber{"2000": {Room: "bord"}} },
			`dialin.numbers.2000.room: "bord" is no room of the rooms section`},
		{"rule language", func(d *Dialin) { d.Numbers = map[string]DialinNumber{"*": {Language: "English"}} },
			`dialin.numbers.*.language: "English" is not one of de, en (dialin.prompts_dir can add languages)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Rooms = rooms
			tt.edit(&c.Dialin)
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, tt.want, err.Error())
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

// TestDialinEnv: the dispatch rules from the environment, as a JSON object
// or one key at a time, and their errors naming the variable and the key.
func TestDialinEnv(t *testing.T) {
	board := `MEDIAGATE_ROOMS={"board": {}}`
	for _, tc := range []struct {
		name string
		env  []string
		want Dialin
	}{
		{"language and prompts", []string{"MEDIAGATE_DIALIN_LANGUAGE=de", "MEDIAGATE_DIALIN_PROMPTS_DIR=/srv/prompts"},
			Dialin{Language: "de", PromptsDir: "/srv/prompts", Numbers: map[string]DialinNumber{}}},
		{"whole section as JSON", []string{board, `MEDIAGATE_DIALIN_NUMBERS={"+4930555000": {"room": "board", "language": "de"}, "*": {}}`},
			Dialin{Language: "en", Numbers: map[string]DialinNumber{"+4930555000": {Room: "board", Language: "de"}, "*": {}}}},
		{"per key", []string{board, "MEDIAGATE_DIALIN_NUMBERS_4930555000_ROOM=board", "MEDIAGATE_DIALIN_NUMBERS_4930555000_LANGUAGE=de"},
			Dialin{Language: "en", Numbers: map[string]DialinNumber{"4930555000": {Room: "board", Language: "de"}}}},
		{"empty section", []string{"MEDIAGATE_DIALIN_NUMBERS="}, Dialin{Language: "en", Numbers: map[string]DialinNumber{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load("", tc.env)
			require.NoError(t, err)
			require.Equal(t, tc.want, got.Dialin)
		})
	}

	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{`MEDIAGATE_DIALIN_NUMBERS={"2000": {"rom": "board"}}`}, "env MEDIAGATE_DIALIN_NUMBERS: dialin.numbers.2000.rom: unknown key"},
		{[]string{`MEDIAGATE_DIALIN_NUMBERS={"2000": {"room": "nowhere"}}`},
			`env MEDIAGATE_DIALIN_NUMBERS: dialin.numbers.2000.room: "nowhere" is no room of the rooms section`},
		{[]string{"MEDIAGATE_DIALIN_NUMBERS_2000_LANGUAGE=fr"},
			`env MEDIAGATE_DIALIN_NUMBERS_2000_LANGUAGE: "fr" is not one of de, en (dialin.prompts_dir can add languages)`},
		{[]string{"MEDIAGATE_DIALIN_LANGUAGE=EN"},
			`env MEDIAGATE_DIALIN_LANGUAGE: "EN" is not one of de, en (dialin.prompts_dir can add languages)`},
	} {
		_, err := Load("", tc.env)
		require.Error(t, err, strings.Join(tc.env, " "))
		require.Equal(t, tc.want, err.Error())
	}
}
