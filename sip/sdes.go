package sip

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
)

// SDES (RFC 4568): the SRTP master key and salt travel in the SDP as
// a=crypto:<tag> <suite> inline:<base64 key||salt>[|lifetime][|MKI:len]
// [session params]. The parser is strict: a line mediagate cannot honour
// exactly is refused with a reason, never half-used. Errors never quote
// the key parameter, so they may be logged.

// cryptoSuite is an SRTP crypto suite mediagate supports (RFC 4568 §6.2).
type cryptoSuite uint8

const (
	suiteNone  cryptoSuite = iota
	suiteAES80             // AES_CM_128_HMAC_SHA1_80: the RFC 4568 default
	suiteAES32             // AES_CM_128_HMAC_SHA1_32: 32-bit RTP tag, 80-bit SRTCP tag (§6.2.2)
)

var suiteNames = [...]string{suiteNone: "", suiteAES80: "AES_CM_128_HMAC_SHA1_80", suiteAES32: "AES_CM_128_HMAC_SHA1_32"}

func (s cryptoSuite) String() string { return suiteNames[s] }

// profile is pion/srtp's name for the suite.
func (s cryptoSuite) profile() srtp.ProtectionProfile {
	if s == suiteAES32 {
		return srtp.ProtectionProfileAes128CmHmacSha1_32
	}
	return srtp.ProtectionProfileAes128CmHmacSha1_80
}

// rtpTagLen is the suite's RTP authentication tag length in octets.
func (s cryptoSuite) rtpTagLen() int {
	if s == suiteAES32 {
		return 4
	}
	return 10
}

// sdesKeyLen is the length of the inline key||salt of both suites: a
// 128-bit master key and a 112-bit master salt (RFC 4568 §6.2.1).
const sdesKeyLen = 30

// sdesKey is an SRTP master key followed by its master salt.
type sdesKey [sdesKeyLen]byte

// cryptoAttr is one a=crypto attribute mediagate can use.
type cryptoAttr struct {
	tag   uint32 // 1 to 9 digits (§9.1)
	suite cryptoSuite
	key   sdesKey
}

// String describes the attribute with the key masked, so that %v of a
// cryptoAttr cannot leak it.
func (c cryptoAttr) String() string {
	return strconv.FormatUint(uint64(c.tag), 10) + " " + c.suite.String() + " inline:<redacted>"
}

// value is the attribute's value for an SDP line, key included.
func (c cryptoAttr) value() string {
	return strconv.FormatUint(uint64(c.tag), 10) + " " + c.suite.String() + " inline:" +
		base64.StdEncoding.EncodeToString(c.key[:])
}

// minLifetime is the shortest key lifetime honoured: mediagate never
// re-keys within a call, and 2^31 packets (SRTCP's own limit, RFC 3711
// §9.2) outlast any call at 50 packets a second.
const minLifetime = 1 << 31

// maxLifetime is the most packets one SRTP master key may protect (RFC
// 3711 §9.2).
const maxLifetime = 1 << 48

// tokenRE is what an error may quote from the attribute: a suite or
// session parameter name, never a key.
var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,40}$`)

// quoteToken returns s for an error message when it is a plain token, else a
// placeholder.
func quoteToken(s string) string {
	if tokenRE.MatchString(s) {
		return strconv.Quote(s)
	}
	return "(unprintable)"
}

// parseCrypto parses the value of an a=crypto attribute (RFC 4568 §9.1).
// Errors wrap ErrCrypto.
func parseCrypto(v string) (cryptoAttr, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return cryptoAttr{}, fmt.Errorf("%w: needs a tag, a suite and a key", ErrCrypto)
	}
	var c cryptoAttr
	tag, ok := parseTag(f[0])
	if !ok {
		return c, fmt.Errorf("%w: tag is not 1 to 9 digits", ErrCrypto)
	}
	c.tag = tag
	switch f[1] {
	case suiteAES80.String():
		c.suite = suiteAES80
	case suiteAES32.String():
		c.suite = suiteAES32
	default:
		return c, fmt.Errorf("%w: suite %s is not supported (only %s and %s)", ErrCrypto, quoteToken(f[1]), suiteAES80, suiteAES32)
	}
	if err := parseKeyParams(f[2], &c.key); err != nil {
		return cryptoAttr{}, err
	}
	for _, p := range f[3:] {
		// §6.3: a session parameter the answerer does not support makes
		// the attribute unusable. WSH (a window size hint, §6.3.7) only
		// advises; mediagate's replay window is its own.
		name, _, _ := strings.Cut(p, "=")
		if name != "WSH" {
			return cryptoAttr{}, fmt.Errorf("%w: session parameter %s is not supported", ErrCrypto, quoteToken(name))
		}
	}
	return c, nil
}

// parseTag parses 1*9DIGIT.
func parseTag(s string) (uint32, bool) {
	if len(s) == 0 || len(s) > 9 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// parseKeyParams parses the key parameters: exactly one inline key with
// an optional lifetime mediagate can honour and no MKI.
func parseKeyParams(s string, key *sdesKey) error {
	if strings.Contains(s, ";") {
		return fmt.Errorf("%w: more than one key (keys with an mki are not supported)", ErrCrypto)
	}
	method, info, ok := strings.Cut(s, ":")
	if !ok || method != "inline" {
		return fmt.Errorf("%w: key method is not inline", ErrCrypto)
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return fmt.Errorf("%w: key has more than a lifetime and an mki after it", ErrCrypto)
	}
	b64 := parts[0]
	if len(b64) != base64.StdEncoding.EncodedLen(sdesKeyLen) {
		return fmt.Errorf("%w: key and salt are not %d octets in base64", ErrCrypto, sdesKeyLen)
	}
	var raw [sdesKeyLen]byte
	n, err := base64.StdEncoding.Strict().Decode(raw[:], []byte(b64))
	switch {
	case err != nil:
		return fmt.Errorf("%w: key is not valid base64", ErrCrypto)
	case n != sdesKeyLen:
		return fmt.Errorf("%w: key and salt are not %d octets in base64", ErrCrypto, sdesKeyLen)
	}
	*key = raw
	for _, p := range parts[1:] {
		if strings.Contains(p, ":") {
			return fmt.Errorf("%w: keys with an mki are not supported", ErrCrypto)
		}
		if err := checkLifetime(p); err != nil {
			return err
		}
	}
	return nil
}

// checkLifetime accepts a key lifetime of "2^n" or a decimal count of
// packets (§6.1) from minLifetime to maxLifetime.
func checkLifetime(s string) error {
	var n uint64
	if exp, ok := strings.CutPrefix(s, "2^"); ok {
		e, err := strconv.ParseUint(exp, 10, 8)
		if err != nil || len(exp) > 2 || e > 48 {
			return fmt.Errorf("%w: lifetime is not 2^0 to 2^48", ErrCrypto)
		}
		n = 1 << e
	} else {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || len(s) > 15 || v > maxLifetime {
			return fmt.Errorf("%w: lifetime is not a packet count up to 2^48", ErrCrypto)
		}
		n = v
	}
	if n < minLifetime {
		return fmt.Errorf("%w: key lifetime below 2^31 packets: mediagate does not re-key within a call", ErrCrypto)
	}
	return nil
}

// pickCrypto chooses the first usable a=crypto attribute of an offered
// stream (RFC 4568 §7.1.1: the offerer's order is its preference). Tags
// must be unique in the stream (§9.1). With none usable the error is the
// first line's reason, or that there are none.
func pickCrypto(md *sdp.MediaDescription) (cryptoAttr, error) {
	var first error
	tags := map[string]bool{}
	var picked *cryptoAttr
	for _, a := range md.Attributes {
		if a.Key != "crypto" {
			continue
		}
		tag, _, _ := strings.Cut(strings.TrimSpace(a.Value), " ")
		if tags[tag] {
			return cryptoAttr{}, fmt.Errorf("%w: tag used twice in one stream", ErrCrypto)
		}
		tags[tag] = true
		c, err := parseCrypto(a.Value)
		switch {
		case err != nil && first == nil:
			first = err
		case err == nil && picked == nil:
			picked = &c
		}
	}
	switch {
	case picked != nil:
		return *picked, nil
	case first != nil:
		return cryptoAttr{}, first
	}
	return cryptoAttr{}, fmt.Errorf("%w: secure stream without a=crypto", ErrCrypto)
}

// findCrypto returns the answer's a=crypto attribute for our offered
// attribute ours: the one with its tag, which must name its suite (RFC
// 4568 §7.1.2).
func findCrypto(md *sdp.MediaDescription, ours cryptoAttr) (cryptoAttr, error) {
	for _, a := range md.Attributes {
		if a.Key != "crypto" {
			continue
		}
		tag, _, _ := strings.Cut(strings.TrimSpace(a.Value), " ")
		if t, ok := parseTag(tag); !ok || t != ours.tag {
			continue
		}
		c, err := parseCrypto(a.Value)
		if err != nil {
			return cryptoAttr{}, err
		}
		if c.suite != ours.suite {
			return cryptoAttr{}, fmt.Errorf("%w: answer changes the suite of tag %d", ErrCrypto, ours.tag)
		}
		return c, nil
	}
	return cryptoAttr{}, fmt.Errorf("%w: answer has no a=crypto for our tag %d", ErrCrypto, ours.tag)
}

// newLocalCrypto returns our attribute for tag and suite with a fresh
// random master key and salt.
func newLocalCrypto(tag uint32, suite cryptoSuite) (cryptoAttr, error) {
	c := cryptoAttr{tag: tag, suite: suite}
	if _, err := rand.Read(c.key[:]); err != nil {
		return cryptoAttr{}, fmt.Errorf("sip: srtp key: %w", err)
	}
	return c, nil
}

// inlineRE finds SDES keys in text to be logged.
var inlineRE = regexp.MustCompile(`inline:[^\s|;"]+`)

// redactKeys masks the SDES keys in s.
func redactKeys(s string) string {
	if !strings.Contains(s, "inline:") {
		return s
	}
	return inlineRE.ReplaceAllString(s, "inline:<redacted>")
}
