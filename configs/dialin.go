package configs

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// Dialin is how phone calls are led into rooms: the prompts' language and
// files, and the dispatch rules by dialed number (package bridge's
// Dispatcher).
type Dialin struct {
	// Language is the prompt language of calls whose rule names none, and
	// of every call when Numbers is empty.
	Language string `yaml:"language"`
	// PromptsDir holds the operator's own prompt recordings,
	// <dir>/<language>/<prompt>.wav, each replacing one shipped prompt (a
	// directory of a language not shipped adds it and must hold every
	// prompt). Empty means the shipped prompts only.
	PromptsDir string `yaml:"prompts_dir"`
	// Numbers are the dispatch rules, by dialed number (the Request-URI
	// user of the INVITE, else the To user), CatchAllNumber for the rest.
	// Empty sends every call to the IVR; otherwise a call to a number
	// without a rule is refused with 404 Not Found.
	Numbers map[string]DialinNumber `yaml:"numbers"`
}

// DialinNumber is one dispatch rule of dialin.numbers. Its zero value is
// a rule that sends the caller to the IVR in dialin.language.
type DialinNumber struct {
	// Room is the room the caller joins without being asked for a
	// conference number (a room of the rooms section; its PIN, if any, is
	// still asked for). Empty sends the caller to the IVR.
	Room string `yaml:"room"`
	// Language is the prompt language of the calls to this number; empty
	// means dialin.language.
	Language string `yaml:"language"`
}

// CatchAllNumber is the dialin.numbers key of the rule for every number
// no other rule names. In YAML it must be quoted ("*"), since a bare *
// starts an alias.
const CatchAllNumber = "*"

// DialinLanguages are the prompt languages shipped in the binary
// (bridge/prompts). dialin.prompts_dir may add others.
var DialinLanguages = []string{"de", "en"}

// maxLanguageLen bounds a language name from the prompt directory: ISO 639
// codes have two or three letters, BCP 47 primary subtags up to eight.
const maxLanguageLen = 8

// dialin checks the dialin section: the languages are shipped ones (or,
// with a prompts directory, well-formed names the directory must provide,
// which the node checks when it loads the prompts), every rule's key is a
// dialed number or "*", and every fixed room is a room of the rooms
// section. Rules are checked in the order the operator wrote them.
func (v *validator) dialin(d Dialin, rooms map[string]Room) {
	v.language("dialin.language", d.Language, d.PromptsDir)
	numbers := slices.SortedFunc(maps.Keys(d.Numbers), func(a, b string) int {
		la, lb := v.origins["dialin.numbers."+a].line, v.origins["dialin.numbers."+b].line
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(a, b))
	})
	for _, n := range numbers {
		rule, key := d.Numbers[n], "dialin.numbers."+n
		if n != CatchAllNumber && !dialedNumber(n) {
			v.fail(key, "%q must be %q or 1 to %d digits, optionally after a + (ITU-T E.164 §6)", n, CatchAllNumber, maxNumberLen)
		}
		if _, ok := rooms[rule.Room]; rule.Room != "" && !ok {
			v.fail(key+".room", "%q is no room of the rooms section", rule.Room)
		}
		if rule.Language != "" {
			v.language(key+".language", rule.Language, d.PromptsDir)
		}
	}
}

// language checks a prompt language: a shipped one, or with a prompts
// directory any name of 2 to 8 lower-case letters.
func (v *validator) language(key, lang, promptsDir string) {
	if slices.Contains(DialinLanguages, lang) {
		return
	}
	if promptsDir == "" {
		v.fail(key, "%q is not one of %s (dialin.prompts_dir can add languages)", lang, strings.Join(DialinLanguages, ", "))
		return
	}
	ok := len(lang) >= 2 && len(lang) <= maxLanguageLen
	for i := range len(lang) {
		ok = ok && lang[i] >= 'a' && lang[i] <= 'z'
	}
	if !ok {
		v.fail(key, "%q must be a shipped language (%s) or a directory of dialin.prompts_dir named with 2 to %d letters a-z",
			lang, strings.Join(DialinLanguages, ", "), maxLanguageLen)
	}
}

// dialedNumber reports whether s is 1 to maxNumberLen digits, optionally
// after a '+'.
func dialedNumber(s string) bool {
	return digits(strings.TrimPrefix(s, "+"), 1, maxNumberLen)
}
