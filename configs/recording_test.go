package configs

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRecordingValidate: the recording section's rules accept their edge
// values and refuse the values just outside, naming the key and never the
// receipt key.
func TestRecordingValidate(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name string
		edit func(*Recording)
		want string // "" means valid
	}{
		{"defaults", func(*Recording) {}, ""},
		{"key of 32 bytes", func(r *Recording) { r.ReceiptKey = testSecret }, ""},
		{"key of 31 bytes", func(r *Recording) { r.ReceiptKey = testSecret[1:] },
			"recording.receipt_key: must be at least 32 bytes (RFC 2104 §3), got 31"},
		{"encryption key", func(r *Recording) { r.EncryptionKey = testEncryptionKey }, ""},
		{"encryption key of 31 bytes", func(r *Recording) { r.EncryptionKey = base64.StdEncoding.EncodeToString(make([]byte, 31)) },
			"recording.encryption_key: must decode to 32 bytes (AES-256), got 31"},
		{"encryption key not base64", func(r *Recording) { r.EncryptionKey = "secret-" + testEncryptionKey[7:] },
			"recording.encryption_key: not standard base64 (e.g. `openssl rand -base64 32`)"},
		{"no format", func(r *Recording) { r.Format = "" }, `recording.format: "" is not one of opus, m4a`},
		{"format m4a", func(r *Recording) { r.Format = RecordingFormatM4A }, ""},
		{"format in capitals", func(r *Recording) { r.Format = "M4A" }, `recording.format: "M4A" is not one of opus, m4a`},
		{"no policies: the built-in default", func(r *Recording) { r.Policies = nil }, ""},
		{"policy of ten years, min = duration", func(r *Recording) {
			r.Policies = map[string]RetentionPolicy{"legal": {Duration: 3650 * day, Min: 3650 * day, Max: 3650 * day}}
		}, ""},
		{"policy of 1ns", func(r *Recording) { r.Policies = map[string]RetentionPolicy{"x": {Duration: 1}} }, ""},
		{"policy without duration", func(r *Recording) { r.Policies = map[string]RetentionPolicy{"x": {Max: day}} },
			"recording.policies.x.duration: 0s out of range (0s, 87600h]"},
		{"policy min negative", func(r *Recording) { r.Policies = map[string]RetentionPolicy{"x": {Duration: day, Min: -1}} },
			"recording.policies.x.min: -1ns out of range 0s..24h0m0s (the duration)"},
		{"policy max past ten years", func(r *Recording) {
			r.Policies = map[string]RetentionPolicy{"x": {Duration: day, Max: 3650*day + 1}}
		}, "recording.policies.x.max: 87600h0m0.000000001s out of range 24h0m0s..87600h (or 0s for the duration)"},
		{"room policy default without policies", func(r *Recording) {
			r.Policies, r.RoomPolicies = nil, map[string]string{"board": "default"}
		}, ""},
		{"room policy unknown", func(r *Recording) { r.RoomPolicies = map[string]string{"board": "legal"} },
			`recording.room_policies.board: "legal" is no policy of recording.policies`},
		{"room policy bad room", func(r *Recording) { r.RoomPolicies = map[string]string{"a/b": "default"} },
			`recording.room_policies.a/b: room id "a/b" must be 1 to 64 characters from a-z 0-9 _ -, starting with a letter or digit`},
		{"no warnings", func(r *Recording) { r.ExpiryWarnings = nil }, ""},
		{"warning of ten years", func(r *Recording) { r.ExpiryWarnings = []time.Duration{3650 * day} }, ""},
		{"warning of 0s", func(r *Recording) { r.ExpiryWarnings = []time.Duration{0} },
			"recording.expiry_warnings[0]: 0s out of range (0s, 87600h]"},
		{"link 1m", func(r *Recording) { r.LinkLifetime = time.Minute }, ""},
		{"link 24h", func(r *Recording) { r.LinkLifetime = day }, ""},
		{"link over 24h", func(r *Recording) { r.LinkLifetime = day + time.Second },
			"recording.link_lifetime: 24h0m1s out of range 1m..24h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c.Recording)
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, tt.want, err.Error())
			require.ErrorIs(t, err, ErrInvalid)
			require.NotContains(t, err.Error(), testSecret[1:])
		})
	}
}

// TestRecordingHelpers: the store defaults to storage.dir/recordings, rooms
// without a policy get the default one, and fmt and Redacted never show
// the receipt and encryption keys.
func TestRecordingHelpers(t *testing.T) {
	c := Default()
	require.Equal(t, "./data/recordings", c.RecordingDir())
	c.Recording.Dir = "/srv/rec"
	require.Equal(t, "/srv/rec", c.RecordingDir())

	c.Recording.RoomPolicies = map[string]string{"board": "legal"}
	require.Equal(t, "legal", c.Recording.RoomPolicy("board"))
	require.Equal(t, DefaultPolicy, c.Recording.RoomPolicy("lobby"))

	c.Recording.ReceiptKey = testSecret
	c.Recording.EncryptionKey = testEncryptionKey
	r := c.Redacted()
	require.Equal(t, "<redacted>", r.Recording.ReceiptKey)
	require.Equal(t, "<redacted>", r.Recording.EncryptionKey)
	require.Equal(t, testSecret, c.Recording.ReceiptKey, "the original is untouched")
	require.Len(t, c.Recording.EncryptionKeyBytes(), EncryptionKeyLen)
	require.Nil(t, Default().Recording.EncryptionKeyBytes())
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", c.Recording)} {
		require.NotContains(t, s, testSecret)
		require.NotContains(t, s, testEncryptionKey[:8])
		require.Contains(t, s, "<redacted>")
	}
}

// TestRecordingFromFile: a whole recording section as an operator writes
// it, with a policies section that replaces the shipped default entry.
func TestRecordingFromFile(t *testing.T) {
	c, err := Parse("m.yaml", []byte(strings.Join([]string{
		"recording:",
		"  dir: /srv/rec",
		"  policies:",
		"    legal: {duration: 2160h, min: 720h, max: 8760h}",
		"    minute: {duration: 1m}",
		"  room_policies: {board: legal, test: minute}",
		"  expiry_warnings: [72h]",
		"  link_lifetime: 5m",
	}, "\n")), nil)
	require.NoError(t, err)
	require.Equal(t, Recording{
		Dir: "/srv/rec", Format: "opus",
		Policies: map[string]RetentionPolicy{
			"legal":  {Duration: 2160 * time.Hour, Min: 720 * time.Hour, Max: 8760 * time.Hour},
			"minute": {Duration: time.Minute},
		},
		RoomPolicies:   map[string]string{"board": "legal", "test": "minute"},
		ExpiryWarnings: []time.Duration{72 * time.Hour},
		LinkLifetime:   5 * time.Minute,
	}, c.Recording)

	_, err = Parse("m.yaml", nil, []string{`MEDIAGATE_RECORDING_ROOM_POLICIES={"board": "nope"}`})
	require.EqualError(t, err, `env MEDIAGATE_RECORDING_ROOM_POLICIES: recording.room_policies.board: "nope" is no policy of recording.policies`)
}
