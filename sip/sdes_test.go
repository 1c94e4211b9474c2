package sip

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testKey is 30 octets of key and salt in base64 (RFC 4568 §6.1).
var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcd"))

// TestParseCrypto: good a=crypto values parse to tag, suite and key; each
// kind of bad one is refused with ErrCrypto and a reason that never quotes
// the key.
func TestParseCrypto(t *testing.T) {
	tests := []struct {
		name, value string
		tag         uint32
		suite       cryptoSuite
		why         string // part of the error; empty: must parse
	}{
		{"default suite", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey, 1, suiteAES80, ""},
		{"32-bit tag suite", "42 AES_CM_128_HMAC_SHA1_32 inline:" + testKey, 42, suiteAES32, ""},
		{"nine-digit tag", "999999999 AES_CM_128_HMAC_SHA1_80 inline:" + testKey, 999999999, suiteAES80, ""},
		{"lifetime 2^31", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^31", 1, suiteAES80, ""},
		{"lifetime 2^48 decimal", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|281474976710656", 1, suiteAES80, ""},
		{"window size hint", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + " WSH=128", 1, suiteAES80, ""},
		{"extra spaces", "  7   AES_CM_128_HMAC_SHA1_80\tinline:" + testKey + " ", 7, suiteAES80, ""},

		{"empty", "", 0, 0, "needs a tag, a suite and a key"},
		{"no key", "1 AES_CM_128_HMAC_SHA1_80", 0, 0, "needs a tag, a suite and a key"},
		{"ten-digit tag", "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + testKey, 0, 0, "tag is not 1 to 9 digits"},
		{"signed tag", "+1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey, 0, 0, "tag is not 1 to 9 digits"},
		{"aes-256", "1 AES_256_CM_HMAC_SHA1_80 inline:" + testKey, 0, 0, `suite "AES_256_CM_HMAC_SHA1_80" is not supported`},
		{"f8", "1 F8_128_HMAC_SHA1_80 inline:" + testKey, 0, 0, `suite "F8_128_HMAC_SHA1_80" is not supported`},
		{"lower-case suite", "1 aes_cm_128_hmac_sha1_80 inline:" + testKey, 0, 0, "is not supported"},
		{"suite holding a key", "1 inline:" + testKey + " inline:" + testKey, 0, 0, "suite (unprintable) is not supported"},
		{"other key method", "1 AES_CM_128_HMAC_SHA1_80 uri:" + testKey, 0, 0, "key method is not inline"},
		{"bad base64", "1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.Repeat("!", 40), 0, 0, "key is not valid base64"},
		{"non-canonical base64", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey[:39] + "=", 0, 0, "key is not valid base64"},
		{"short key", "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(make([]byte, 29)), 0, 0, "not 30 octets"},
		{"long key", "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(make([]byte, 46)), 0, 0, "not 30 octets"},
		{"mki", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^31|1:4", 0, 0, "mki are not supported"},
		{"mki without lifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|1:4", 0, 0, "mki are not supported"},
		{"two keys", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|1:4;inline:" + testKey + "|2:4", 0, 0, "more than one key"},
		{"short lifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^20", 0, 0, "does not re-key within a call"},
		{"short decimal lifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|1048576", 0, 0, "does not re-key within a call"},
		{"lifetime beyond 2^48", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^49", 0, 0, "lifetime is not 2^0 to 2^48"},
		{"garbage lifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|forever", 0, 0, "lifetime is not a packet count"},
		{"too many parts", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^31|1:4|x", 0, 0, "more than a lifetime and an mki"},
		{"unencrypted srtp", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + " UNENCRYPTED_SRTP", 0, 0, `session parameter "UNENCRYPTED_SRTP" is not supported`},
		{"key derivation rate", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + " KDR=23", 0, 0, `session parameter "KDR" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseCrypto(tt.value)
			if tt.why != "" {
				require.ErrorIs(t, err, ErrCrypto)
				require.ErrorContains(t, err, tt.why)
				require.NotContains(t, err.Error(), testKey[:20], "the error quotes the key")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.tag, c.tag)
			require.Equal(t, tt.suite, c.suite)
			require.Equal(t, "0123456789abcdef0123456789abcd", string(c.key[:]))
			require.NotContains(t, c.String(), testKey, "String masks the key")
			require.Contains(t, c.String(), "inline:<redacted>")
			again, err := parseCrypto(c.value())
			require.NoError(t, err, "value() parses again")
			require.Equal(t, c, again)
		})
	}
}

// TestPickCrypto: the offer's first usable attribute wins, unusable ones
// before it are skipped; a tag used twice spoils the stream.
func TestPickCrypto(t *testing.T) {
	key2 := base64.StdEncoding.EncodeToString([]byte("ZYXWVUTSRQPONMLKJIHGFEDCBA9876"))
	tests := []struct {
		name  string
		lines []string
		tag   uint32
		why   string
	}{
		{"first supported", []string{"a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:" + key2 + key2[:20],
			"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" + testKey, "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:" + key2}, 2, ""},
		{"32 preferred by the offer", []string{"a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:" + key2,
			"a=crypto:6 AES_CM_128_HMAC_SHA1_80 inline:" + testKey}, 5, ""},
		{"duplicate tags", []string{"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey,
			"a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:" + key2}, 0, "tag used twice"},
		{"none usable: the first reason", []string{"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^31|1:1",
			"a=crypto:2 AES_192_CM_HMAC_SHA1_80 inline:" + testKey}, 0, "mki"},
		{"none at all", nil, 0, "without a=crypto"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd, err := parseSDP(offer(append([]string{"m=audio 4000 RTP/SAVP 0"}, tt.lines...)...))
			require.NoError(t, err)
			c, err := pickCrypto(sd.MediaDescriptions[0])
			if tt.why != "" {
				require.ErrorIs(t, err, ErrCrypto)
				require.ErrorContains(t, err, tt.why)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.tag, c.tag)
		})
	}
}

// TestNegotiateSRTP: the SRTP policy decides which transport an offer is
// answered with, and the refusals say why; the answer carries RTP/SAVP(F)
// with the offer's tag and a key of ours.
func TestNegotiateSRTP(t *testing.T) {
	crypto := "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + testKey
	plain := "m=audio 4000 RTP/AVP 0"
	tests := []struct {
		name    string
		sdp     []byte
		policy  SRTPPolicy
		secure  bool
		proto   string
		index   int
		wantErr error
	}{
		{"savp, optional", offer("m=audio 4000 RTP/SAVP 0", crypto), SRTPOptional, true, "RTP/SAVP", 0, nil},
		{"savpf, optional", offer("m=audio 4000 RTP/SAVPF 0", crypto), SRTPOptional, true, "RTP/SAVPF", 0, nil},
		{"savp, required", offer("m=audio 4000 RTP/SAVP 0", crypto), SRTPRequired, true, "RTP/SAVP", 0, nil},
		{"avp, optional", offer(plain), SRTPOptional, false, "RTP/AVP", 0, nil},
		{"avp, off", offer(plain), SRTPOff, false, "RTP/AVP", 0, nil},
		{"avp, required", offer(plain), SRTPRequired, false, "", 0, ErrSRTPRequired},
		{"savp, off", offer("m=audio 4000 RTP/SAVP 0", crypto), SRTPOff, false, "", 0, ErrNoCommonTransport},
		{"avp then savp, required", offer(plain, "m=audio 4002 RTP/SAVP 0", crypto), SRTPRequired, true, "RTP/SAVP", 1, nil},
		{"savp then avp, off", offer("m=audio 4002 RTP/SAVP 0", crypto, plain), SRTPOff, false, "RTP/AVP", 1, nil},
		{"savp with an unknown suite", offer("m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:"+testKey), SRTPOptional, false, "", 0, ErrCrypto},
		{"savp without a common codec", offer("m=audio 4000 RTP/SAVP 18", crypto), SRTPRequired, false, "", 0, ErrNoCommonCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd, err := parseSDP(tt.sdp)
			require.NoError(t, err)
			rm, err := negotiate(sd, DefaultCodecs, tt.policy)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, 488, statusOf(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.index, rm.index)
			require.Equal(t, tt.secure, rm.crypto != nil)
			local := localMedia{addr: loopback, port: 30000, sessID: 1, version: 1}
			if rm.crypto != nil {
				require.Equal(t, uint32(3), rm.crypto.tag)
				lc, err := newLocalCrypto(rm.crypto.tag, rm.crypto.suite)
				require.NoError(t, err)
				local.crypto = &lc
			}
			body, err := buildAnswer(local, sd, rm)
			require.NoError(t, err)
			ans, err := parseSDP(body)
			require.NoError(t, err)
			md := ans.MediaDescriptions[rm.index]
			require.Equal(t, tt.proto, strings.Join(md.MediaName.Protos, "/"))
			v, ok := md.Attribute("crypto")
			require.Equal(t, tt.secure, ok, "a=crypto in the answer")
			if tt.secure {
				ours, err := parseCrypto(v)
				require.NoError(t, err)
				require.Equal(t, *local.crypto, ours)
				require.NotEqual(t, rm.crypto.key, ours.key, "our own key, not the caller's")
			}
		})
	}
}

// TestRedactKeys: SDES keys are masked in anything logged as text.
func TestRedactKeys(t *testing.T) {
	line := "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^31\r\na=ptime:20"
	got := redactText(line)
	require.NotContains(t, got, testKey)
	require.Contains(t, got, "inline:<redacted>|2^31")
}

// FuzzParseCrypto: parseCrypto never panics; what it accepts formats back
// to an equal attribute, and its errors never hold the inline key.
func FuzzParseCrypto(f *testing.F) {
	for _, s := range []string{
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey,
		"2 AES_CM_128_HMAC_SHA1_32 inline:" + testKey + "|2^31",
		"3 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^31|1:4",
		"4 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|1:4;inline:" + testKey + "|2:4",
		"5 AES_256_CM_HMAC_SHA1_80 inline:" + testKey + " KDR=1 UNENCRYPTED_SRTP",
		"6 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + " WSH=64",
		"7 AES_CM_128_HMAC_SHA1_80 inline:" + testKey[:39] + "=",
		"", "1", "1 AES_CM_128_HMAC_SHA1_80 inline:", "1 AES_CM_128_HMAC_SHA1_80 inline:|||",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseCrypto(v)
		if err != nil {
			require.ErrorIs(t, err, ErrCrypto)
			_, info, found := strings.Cut(v, "inline:")
			key, _, _ := strings.Cut(info, "|")
			// A key whose text also stands elsewhere in the line (as the
			// suite name, say) may be quoted for that.
			if found && len(key) >= 8 && strings.Count(v, key) == 1 {
				require.NotContains(t, err.Error(), key, "an error quotes the key")
			}
			return
		}
		again, err := parseCrypto(c.value())
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}
