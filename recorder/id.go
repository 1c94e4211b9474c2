package recorder

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// idBytes is the entropy of an ID: 128 bits, so IDs can be neither guessed
// nor enumerated by someone who knows one of them.
const idBytes = 16

// idLen is the length of an ID: idBytes in unpadded base64url.
var idLen = base64.RawURLEncoding.EncodedLen(idBytes)

// ID names a recording. It is random, URL-safe and the base name of the
// recording's files, so it is validated (Valid, ParseID) before any path is
// built from it.
type ID string

// ReceiptID names a deletion receipt; same form as ID.
type ReceiptID string

// Tenant names the customer a recording belongs to, for per-tenant export
// and erasure.
type Tenant string

// newRandomID returns 128 random bits as unpadded base64url.
func newRandomID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NewID returns a fresh random recording ID.
func NewID() ID { return ID(newRandomID()) }

// ParseID checks s against the strict form of an ID (idLen characters of
// unpadded base64url decoding to exactly 128 bits) and returns it, or
// ErrInvalidID. Use it on every ID that comes from outside (URL, CLI).
func ParseID(s string) (ID, error) {
	if !validRandomID(s) {
		return "", fmt.Errorf("%w: %q", ErrInvalidID, truncate(s, 40))
	}
	return ID(s), nil
}

// Valid reports whether id has the strict form ParseID accepts.
func (id ID) Valid() bool { return validRandomID(string(id)) }

// Valid reports whether id has the form of a receipt ID.
func (id ReceiptID) Valid() bool { return validRandomID(string(id)) }

// validRandomID accepts exactly what newRandomID makes. Strict decoding
// also refuses non-canonical final characters, so each ID has one spelling.
func validRandomID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	var b [idBytes]byte
	n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(s))
	return err == nil && n == idBytes
}

// maxTenantLen bounds tenant names, which appear in every manifest and
// receipt.
const maxTenantLen = 64

// Valid reports whether t is a usable tenant name: 1 to 64 letters, digits,
// '.', '_' or '-'.
func (t Tenant) Valid() bool {
	if len(t) == 0 || len(t) > maxTenantLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// MaskNumber keeps the last two characters of a caller number and replaces
// the rest with '*' (as sip.MaskNumber does; recorder may not import sip),
// so a manifest tells calls apart without saying who called. Two characters
// or fewer become "**"; an empty number stays empty.
func MaskNumber(s string) string {
	if s == "" {
		return ""
	}
	r := []rune(s)
	if len(r) <= 2 {
		return "**"
	}
	return strings.Repeat("*", len(r)-2) + string(r[len(r)-2:])
}

// truncate cuts s to at most n bytes for error messages about bad input.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
