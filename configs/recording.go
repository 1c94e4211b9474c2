package configs

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Recording is how rooms are recorded and how long the recordings are kept
// (package recorder; DESIGN.md decisions 6 and 7).
type Recording struct {
	// Dir is the recordings store: audio, manifests and the deletion
	// receipts log. Empty means storage.dir/recordings (RecordingDir).
	Dir string `yaml:"dir"`
	// ReceiptKey signs the deletion receipts (HMAC-SHA256), at least
	// MinReceiptKeyLen bytes. Empty means a key the node generates once
	// and keeps in storage.dir (ReceiptKeyFile), so receipts stay
	// verifiable across restarts. It is a secret: never logged, blanked
	// by Redacted.
	ReceiptKey string `yaml:"receipt_key"`
	// EncryptionKey, when set, encrypts new recordings at rest
	// (AES-256-GCM, recorder.Options.EncryptionKey): the standard base64
	// of EncryptionKeyLen random bytes (EncryptionKeyBytes decodes it).
	// Recordings made without it stay readable; encrypted ones need it,
	// and the node refuses to start with another key. It is a secret:
	// never logged, blanked by Redacted.
	EncryptionKey string `yaml:"encryption_key"`
	// Format is the file format of new recordings: RecordingFormatOpus
	// (Ogg/Opus, RFC 7845) or RecordingFormatM4A (AAC-LC in fragmented
	// MP4). Recordings already made keep theirs.
	Format string `yaml:"format"`
	// Policies are the retention policies by name. A room without a
	// policy in RoomPolicies gets DefaultPolicy; when Policies does not
	// define it, the recorder's built-in one (30 days, extendable to a
	// year) applies.
	Policies map[string]RetentionPolicy `yaml:"policies"`
	// RoomPolicies names the policy of a room's recordings, by room ID.
	RoomPolicies map[string]string `yaml:"room_policies"`
	// ExpiryWarnings are the lead times before a recording's expiry at
	// which a recording.expiring event is raised, so that someone can
	// download or extend it in time. Empty: no warnings.
	ExpiryWarnings []time.Duration `yaml:"expiry_warnings"`
	// LinkLifetime is how long a signed download link stays valid (never
	// past the recording's expiry).
	LinkLifetime time.Duration `yaml:"link_lifetime"`
}

// RetentionPolicy is one entry of recording.policies: how long a recording
// is kept (recorder.Policy). Every field's zero value is its default.
type RetentionPolicy struct {
	// Duration is the retention a recording starts with.
	Duration time.Duration `yaml:"duration"`
	// Min is how long a recording must be kept whatever an admin or an
	// erasure request asks (a legal duty); 0: no minimum.
	Min time.Duration `yaml:"min"`
	// Max is how far an admin may extend the retention; 0 means Duration
	// (no extension).
	Max time.Duration `yaml:"max"`
}

// Names and limits of the recording section.
const (
	// DefaultPolicy is the policy of rooms recording.room_policies does not
	// name (recorder.DefaultPolicyName).
	DefaultPolicy = "default"
	// RecordingFormatOpus is recording.format for Ogg/Opus, the default.
	RecordingFormatOpus = "opus"
	// RecordingFormatM4A is recording.format for AAC-LC 48 kHz mono at
	// 128 kbit/s in fragmented MP4 (.m4a), for players without Opus.
	RecordingFormatM4A = "m4a"
	// MinReceiptKeyLen is the shortest recording.receipt_key: 256 bits, the
	// size of the HMAC-SHA256 output (RFC 2104 §3); recorder.MinReceiptKeyLen.
	MinReceiptKeyLen = 32
	// EncryptionKeyLen is the length of the decoded
	// recording.encryption_key: AES-256.
	EncryptionKeyLen = 32
	// ReceiptKeyFile is the file in storage.dir that holds the generated
	// receipt key when recording.receipt_key is empty.
	ReceiptKeyFile = "receipt.key"
	// maxRetention bounds every retention duration: ten years.
	maxRetention = 10 * 365 * 24 * time.Hour
	// minLinkLifetime and maxLinkLifetime bound recording.link_lifetime: a
	// link must outlive a click, and a leaked one must not open a
	// recording for long.
	minLinkLifetime, maxLinkLifetime = time.Minute, 24 * time.Hour
)

// defaultRecording is the recording section's defaults.
func defaultRecording() Recording {
	return Recording{
		Format: RecordingFormatOpus,
		Policies: map[string]RetentionPolicy{
			DefaultPolicy: {Duration: 30 * 24 * time.Hour, Max: 365 * 24 * time.Hour},
		},
		RoomPolicies:   map[string]string{},
		ExpiryWarnings: []time.Duration{7 * 24 * time.Hour, 24 * time.Hour},
		LinkLifetime:   15 * time.Minute,
	}
}

// RecordingDir returns the recordings store: recording.dir, or
// storage.dir/recordings when it is empty.
func (c Config) RecordingDir() string {
	if c.Recording.Dir != "" {
		return c.Recording.Dir
	}
	return c.Storage.Dir + "/recordings"
}

// RoomPolicy returns the retention policy name of room id's recordings.
func (r Recording) RoomPolicy(id string) string {
	return cmp.Or(r.RoomPolicies[id], DefaultPolicy)
}

// String keeps the receipt and encryption keys out of fmt's %v and %+v.
func (r Recording) String() string {
	return fmt.Sprintf("{dir:%q receipt_key:%q encryption_key:%q format:%q policies:%v room_policies:%v expiry_warnings:%v link_lifetime:%s}",
		r.Dir, redact(r.ReceiptKey), redact(r.EncryptionKey), r.Format, r.Policies, r.RoomPolicies, r.ExpiryWarnings, r.LinkLifetime)
}

// EncryptionKeyBytes decodes recording.encryption_key (nil when empty);
// Validate has checked it.
func (r Recording) EncryptionKeyBytes() []byte {
	if r.EncryptionKey == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(r.EncryptionKey)
	if err != nil || len(b) != EncryptionKeyLen {
		return nil
	}
	return b
}

// recording checks the recording section. Messages never show the key.
// room_policies may name rooms the rooms section does not
// define: those open on demand.
func (v *validator) recording(r Recording) {
	if n := len(r.ReceiptKey); n > 0 && n < MinReceiptKeyLen {
		v.fail("recording.receipt_key", "must be at least %d bytes (RFC 2104 §3), got %d", MinReceiptKeyLen, n)
	}
	if r.EncryptionKey != "" {
		// the message never shows the value, not even a part of it
		if b, err := base64.StdEncoding.DecodeString(r.EncryptionKey); err != nil {
			v.fail("recording.encryption_key", "not standard base64 (e.g. `openssl rand -base64 32`)")
		} else if len(b) != EncryptionKeyLen {
			v.fail("recording.encryption_key", "must decode to %d bytes (AES-256), got %d", EncryptionKeyLen, len(b))
		}
	}
	v.oneOf("recording.format", r.Format, RecordingFormatOpus, RecordingFormatM4A)
	v.policies(r.Policies)
	for _, id := range ordered(v, "recording.room_policies", r.RoomPolicies) {
		key, name := "recording.room_policies."+id, r.RoomPolicies[id]
		if !ValidRoomID(id) {
			v.fail(key, "room id %q must be 1 to %d characters from a-z 0-9 _ -, starting with a letter or digit", id, MaxRoomIDLen)
		}
		if _, ok := r.Policies[name]; !ok && name != DefaultPolicy {
			v.fail(key, "%q is no policy of recording.policies", name)
		}
	}
	leads := map[time.Duration]int{}
	for i, d := range r.ExpiryWarnings {
		key := fmt.Sprintf("recording.expiry_warnings[%d]", i)
		if first, dup := leads[d]; dup {
			v.fail(key, "%s repeats recording.expiry_warnings[%d]", d, first)
			continue
		}
		leads[d] = i
		if d <= 0 || d > maxRetention {
			v.fail(key, "%s out of range (0s, 87600h]", d)
		}
	}
	if d := r.LinkLifetime; d < minLinkLifetime || d > maxLinkLifetime {
		v.fail("recording.link_lifetime", "%s out of range 1m..24h", d)
	}
}

// policies checks recording.policies in the order the operator wrote them.
func (v *validator) policies(ps map[string]RetentionPolicy) {
	for _, name := range ordered(v, "recording.policies", ps) {
		p, key := ps[name], "recording.policies."+name
		if !ValidRoomID(name) {
			v.fail(key, "policy name %q must be 1 to %d characters from a-z 0-9 _ -, starting with a letter or digit", name, MaxRoomIDLen)
		}
		if p.Duration <= 0 || p.Duration > maxRetention {
			v.fail(key+".duration", "%s out of range (0s, 87600h]", p.Duration)
			continue
		}
		if p.Min < 0 || p.Min > p.Duration {
			v.fail(key+".min", "%s out of range 0s..%s (the duration)", p.Min, p.Duration)
		}
		if p.Max != 0 && (p.Max < p.Duration || p.Max > maxRetention) {
			v.fail(key+".max", "%s out of range %s..87600h (or 0s for the duration)", p.Max, p.Duration)
		}
	}
}

// ordered returns the keys of the map at key in the order the operator
// wrote them (file line, then name).
func ordered[V any](v *validator, key string, m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(v.origins[key+"."+a].line, v.origins[key+"."+b].line), cmp.Compare(a, b))
	})
}
