package configs

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Auth holds the settings of the join tokens that let browsers and other
// WebRTC clients into rooms (api/token.go).
type Auth struct {
	// TokenSecret is the HMAC key join tokens are signed with (JWT HS256,
	// RFC 7518 §3.2). Empty means a random key made at every start: tokens
	// then die with a restart and nodes cannot check each other's tokens,
	// so a cluster must give every node the same secret. It is a secret:
	// never logged, blanked by Redacted.
	TokenSecret string `yaml:"token_secret"`
	// PageTokenLifetime is how long a token the join page hands out stays
	// valid; the page renews it while its participant stays in the room.
	PageTokenLifetime time.Duration `yaml:"page_token_lifetime"`
	// AdminKeys are the SHA-256 hashes of the API keys that may use the
	// admin REST API (/api/v1), each "sha256:" and 64 hex digits, as
	// `mediagate keys new` prints them. Only hashes are configured, so a
	// leaked configuration grants nothing. Empty: the admin API answers
	// 401 to everyone.
	AdminKeys []string `yaml:"admin_keys"`
	// PINLockout locks out callers and clients that keep keying wrong
	// PINs (lockout.go).
	PINLockout PINLockout `yaml:"pin_lockout"`
}

// AdminKeyPrefix starts every entry of auth.admin_keys.
const AdminKeyPrefix = "sha256:"

// ValidAdminKeyHash reports whether s is "sha256:" and 64 lower-case hex
// digits.
func ValidAdminKeyHash(s string) bool {
	h, ok := strings.CutPrefix(s, AdminKeyPrefix)
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Room is a room the operator defines in the rooms section, keyed by its
// room ID. Every field's zero value is its default, so an entry with no
// settings is a room that only tokens from the admin API open.
type Room struct {
	// Name is the display name on the join page; empty means the room ID.
	Name string `yaml:"name"`
	// PIN is what the join page asks for before it hands out a token;
	// empty means no PIN. It is a secret: never logged, blanked by Redacted.
	PIN string `yaml:"pin"`
	// Open lets anyone with the link join without PIN or token.
	Open bool `yaml:"open"`
	// MaxParticipants caps the participants at once; 0 means no limit.
	MaxParticipants int `yaml:"max_participants"`
	// Number is the conference number phone callers dial in with; empty
	// means the room takes no dial-in calls.
	Number string `yaml:"number"`
	// Tenant is the customer the room belongs to: admin API keys of
	// another tenant neither see nor change it, and its recordings are
	// that tenant's. Empty means DefaultTenant.
	Tenant string `yaml:"tenant"`
	// AutoRecord records the room whenever someone is in it, without an
	// admin starting it (issue [4]: the room setting auto_record).
	AutoRecord bool `yaml:"auto_record"`
	// AutoStream are destinations the room is streamed to live whenever
	// someone is in it, without an admin starting it. Their keys are
	// secrets: never logged, blanked by Redacted.
	AutoStream []StreamDestination `yaml:"auto_stream"`
}

// DefaultTenant owns the rooms whose entry names no tenant and the rooms
// the configuration does not list at all, so a node without tenants needs
// no tenant setting anywhere.
const DefaultTenant = "default"

// MaxTenantLen bounds tenant names, which appear in every manifest,
// receipt and audit entry.
const MaxTenantLen = 64

// ValidTenant reports whether t can name a tenant: 1 to MaxTenantLen
// characters from A-Z a-z 0-9 . _ -, the alphabet recorder.Tenant accepts,
// so a room's tenant is always a valid recording tenant. "*", which marks
// API keys for every tenant, is not a tenant.
func ValidTenant(t string) bool {
	if t == "" || len(t) > MaxTenantLen {
		return false
	}
	for i := range len(t) {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// TenantName is the room's tenant: Tenant, or DefaultTenant when none is
// set.
func (r Room) TenantName() string { return cmp.Or(r.Tenant, DefaultTenant) }

// DisplayName is the room's name as the join page shows it: Name, or the
// room's ID when no name is set.
func (r Room) DisplayName(id string) string { return cmp.Or(r.Name, id) }

// Limits of the auth and rooms sections, enforced by Validate.
const (
	// MinTokenSecretLen is the shortest accepted token secret: RFC 7518
	// §3.2 wants an HS256 key at least as long as the hash output.
	MinTokenSecretLen = 32
	// MaxTokenLifetime bounds every join token: a leaked token must not
	// open a room for longer than a day.
	MaxTokenLifetime = 24 * time.Hour
	// minPageTokenLifetime leaves a browser time to ask for the
	// microphone and finish ICE before its token runs out.
	minPageTokenLifetime = time.Minute
	// MaxRoomIDLen keeps room IDs short enough for URLs, metric labels and
	// Redis keys.
	MaxRoomIDLen = 64
	// maxRoomNameLen keeps display names to one line of the join page.
	maxRoomNameLen = 100
	// minPINLen and maxPINLen: four digits are the least a keypad user
	// expects; twelve are the most anyone types on a phone.
	minPINLen, maxPINLen = 4, 12
	// maxNumberLen is the longest international number (ITU-T E.164 §6).
	maxNumberLen = 15
)

// redactedValue replaces a set secret in Redacted's copy.
const redactedValue = "<redacted>"

// ValidRoomID reports whether id can name a room: 1 to MaxRoomIDLen
// characters from a-z 0-9 _ -, starting with a letter or digit, so it is
// safe in a URL path segment, a file name and a metric label as it is.
func ValidRoomID(id string) bool {
	if id == "" || len(id) > MaxRoomIDLen {
		return false
	}
	for i, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '_' || r == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Redacted returns a copy of c with every secret (auth.token_secret, the
// rooms' PINs and stream keys, the trunks' passwords,
// recording.receipt_key, recording.encryption_key, redis.password, redis.sentinel.password,
// the webhooks' secrets and the passwords in their URLs) replaced
// by "<redacted>" when it is set, for code that prints or logs the configuration. A set secret is
// replaced rather than emptied so the reader still sees that there is one;
// the copy is for showing only and does not pass Validate. The maps are
// copied, c itself is unchanged.
func (c Config) Redacted() Config {
	c.SIP.Trunks = redactTrunks(c.SIP.Trunks)
	c.Redis.Password = redact(c.Redis.Password)
	c.Redis.Sentinel.Password = redact(c.Redis.Sentinel.Password)
	if c.Auth.TokenSecret != "" {
		c.Auth.TokenSecret = redactedValue
	}
	if c.Recording.ReceiptKey != "" {
		c.Recording.ReceiptKey = redactedValue
	}
	c.Recording.EncryptionKey = redact(c.Recording.EncryptionKey)
	if c.Rooms != nil {
		rooms := make(map[string]Room, len(c.Rooms))
		for id, r := range c.Rooms {
			if r.PIN != "" {
				r.PIN = redactedValue
			}
			r.AutoStream = redactStreams(r.AutoStream)
			rooms[id] = r
		}
		c.Rooms = rooms
	}
	c.Webhooks = redactWebhooks(c.Webhooks)
	return c
}

// auth checks the auth section. Messages never show the secret.
func (v *validator) auth(a Auth) {
	if n := len(a.TokenSecret); n > 0 && n < MinTokenSecretLen {
		v.fail("auth.token_secret", "must be at least %d bytes (RFC 7518 §3.2), got %d", MinTokenSecretLen, n)
	}
	if d := a.PageTokenLifetime; d < minPageTokenLifetime || d > MaxTokenLifetime {
		v.fail("auth.page_token_lifetime", "%s out of range 1m..24h", d)
	}
	for i, k := range a.AdminKeys {
		if !ValidAdminKeyHash(k) {
			// The entry is not echoed: someone may have pasted a key
			// instead of its hash.
			v.fail(fmt.Sprintf("auth.admin_keys[%d]", i), "must be %q and 64 lower-case hex digits (the hash `mediagate keys new` prints, never the key)", AdminKeyPrefix)
		}
	}
	v.pinLockout(a.PINLockout)
}

// rooms checks every room of the rooms section in the order the operator
// wrote them (file line, then ID), so that of two rooms sharing a number
// the later one is blamed. Messages never show a PIN.
func (v *validator) rooms(rooms map[string]Room) {
	ids := slices.SortedFunc(maps.Keys(rooms), func(a, b string) int {
		return cmp.Or(cmp.Compare(v.origins["rooms."+a].line, v.origins["rooms."+b].line), cmp.Compare(a, b))
	})
	numbers := make(map[string]string, len(rooms)) // number → room ID
	for _, id := range ids {
		r, key := rooms[id], "rooms."+id
		if !ValidRoomID(id) {
			v.fail(key, "room id %q must be 1 to %d characters from a-z 0-9 _ -, starting with a letter or digit", id, MaxRoomIDLen)
		}
		if n := utf8.RuneCountInString(r.Name); n > maxRoomNameLen || !printable(r.Name) {
			v.fail(key+".name", "must be at most %d printable characters", maxRoomNameLen)
		}
		if r.PIN != "" && !digits(r.PIN, minPINLen, maxPINLen) {
			v.fail(key+".pin", "must be %d to %d digits", minPINLen, maxPINLen)
		}
		if r.Open && r.PIN != "" {
			v.fail(key+".pin", "must be empty in an open room (%s.open: true)", key)
		}
		if r.Tenant != "" && !ValidTenant(r.Tenant) {
			v.fail(key+".tenant", "%q must be 1 to %d characters from A-Z a-z 0-9 . _ -", r.Tenant, MaxTenantLen)
		}
		v.autoStream(key+".auto_stream", r.AutoStream)
		if r.MaxParticipants < 0 {
			v.fail(key+".max_participants", "%d must not be negative (0: no limit)", r.MaxParticipants)
		}
		if r.Number == "" {
			continue
		}
		if !digits(r.Number, 1, maxNumberLen) {
			v.fail(key+".number", "%q must be 1 to %d digits (ITU-T E.164 §6)", r.Number, maxNumberLen)
		} else if other, dup := numbers[r.Number]; dup {
			v.fail(key+".number", "%q is already the number of rooms.%s", r.Number, other)
		} else {
			numbers[r.Number] = id
		}
	}
}

// digits reports whether s is lo to hi ASCII digits.
func digits(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// String keeps a Room's PIN out of fmt's %v and %+v, should a room ever be
// printed whole.
func (r Room) String() string {
	pin := ""
	if r.PIN != "" {
		pin = redactedValue
	}
	return fmt.Sprintf("{name:%q pin:%q open:%t max_participants:%d number:%q tenant:%q auto_record:%t auto_stream:%v}",
		r.Name, pin, r.Open, r.MaxParticipants, r.Number, r.Tenant, r.AutoRecord, r.AutoStream)
}

// String keeps the token secret out of fmt's %v and %+v.
func (a Auth) String() string {
	secret := ""
	if a.TokenSecret != "" {
		secret = redactedValue
	}
	return fmt.Sprintf("{token_secret:%q page_token_lifetime:%s}", secret, a.PageTokenLifetime)
}
