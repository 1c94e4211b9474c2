package recorder

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mediagate/mediagate/media"
)

// Defaults of Options; the admin config documents them.
const (
	// DefaultPolicyName names the policy used when Start is given none.
	DefaultPolicyName = "default"
	// DefaultRetention is how long the default policy keeps a recording:
	// 30 days, long enough to download it after a meeting, short enough
	// not to keep personal data around for no reason.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultMaxRetention caps Extend on the default policy: a year, for a
	// dispute that needs the recording longer.
	DefaultMaxRetention = 365 * 24 * time.Hour
	// DefaultSweepInterval is how often Run looks for expired recordings.
	DefaultSweepInterval = time.Minute
	// MinReceiptKeyLen is the shortest HMAC key accepted for receipts: 256
	// bits, the size of the HMAC-SHA256 output (RFC 2104 §3).
	MinReceiptKeyLen = 32
	// ReceiptsFileName is the receipts log's name in Dir unless
	// Options.ReceiptsFile says otherwise.
	ReceiptsFileName = "deletion-receipts.jsonl"
	// RecommendedMixBuffer is the ring size (frames) to subscribe to a
	// room's mix with for a recording: 3 s, so an fsync stalled by a busy
	// disk loses no audio.
	RecommendedMixBuffer = 150
	// DefaultFenceInterval is how often a recording started WithEpoch asks
	// Options.Fence whether its node still owns the room, besides before
	// every manifest write: once a page, so a node that lost the room
	// writes at most about one more page of audio.
	DefaultFenceInterval = time.Second
)

// Policy is a named retention rule (decision 7). Start fixes a recording's
// expires_at to its start plus Duration; Extend may move it up to start plus
// Max; no deletion other than expiry happens before start plus Min.
type Policy struct {
	// Name is what Start and the manifests call the policy.
	Name string
	// Duration is the retention a recording starts with.
	Duration time.Duration
	// Min is how long a recording must be kept (a legal duty): admin
	// deletions and erasure requests before start plus Min are refused
	// with ErrRetentionMin. 0: no minimum.
	Min time.Duration
	// Max bounds Extend: expires_at never goes past start plus Max. 0
	// means Duration (no extension).
	Max time.Duration
}

// DefaultPolicy is the policy used when Options define none named
// DefaultPolicyName.
func DefaultPolicy() Policy {
	return Policy{Name: DefaultPolicyName, Duration: DefaultRetention, Max: DefaultMaxRetention}
}

func (p Policy) validate() error {
	switch {
	case p.Name == "":
		return fmt.Errorf("%w: policy without a name", ErrOptions)
	case p.Duration <= 0:
		return fmt.Errorf("%w: policy %q: duration must be positive", ErrOptions, p.Name)
	case p.Min < 0 || p.Min > p.Duration:
		return fmt.Errorf("%w: policy %q: min must be between 0 and duration", ErrOptions, p.Name)
	case p.Max != 0 && p.Max < p.Duration:
		return fmt.Errorf("%w: policy %q: max must not be below duration", ErrOptions, p.Name)
	}
	return nil
}

// SyncPolicy says when recording files are fsynced.
type SyncPolicy int

const (
	// SyncEveryPage fsyncs the audio file after each page (at most once a
	// second per recording), so a power cut loses at most about a second.
	// BenchmarkRecordingTick/fsync measures its cost.
	SyncEveryPage SyncPolicy = iota
	// SyncNever leaves flushing to the kernel: a process crash still loses
	// at most a page, a power cut up to the kernel's writeback delay.
	SyncNever
)

// Options configure a Recorder. Zero fields take the defaults named on them.
type Options struct {
	// Dir is the store directory: <id>.opus or <id>.m4a and <id>.json per recording,
	// and the receipts log. It belongs to one node. Required.
	Dir string
	// Node names this node in manifests and receipts (cluster.NodeID);
	// default: the host name.
	Node string
	// Policies are the retention policies Start may name. One named
	// DefaultPolicyName is added (DefaultPolicy) unless given.
	Policies []Policy
	// ReceiptKey signs deletion receipts (HMAC-SHA256); at least
	// MinReceiptKeyLen bytes. Required. Never logged.
	ReceiptKey []byte
	// EncryptionKey, when set, encrypts new recordings at rest with
	// AES-256-GCM (sealed.go); EncryptionKeyLen bytes. Recordings made
	// without it stay readable; encrypted ones need it (New refuses a
	// key that does not match them, by KeyID). Never logged.
	EncryptionKey []byte
	// ReceiptsFile is the receipts log; default Dir/ReceiptsFileName.
	ReceiptsFile string
	// Opus is the encoder's configuration; default media.DefaultOpusConfig
	// (48 kHz VoIP, 32 kbit/s, complexity 5). Rate must be 48 kHz.
	Opus media.OpusConfig
	// Format is the file format of new recordings: FormatOpus (default)
	// or FormatM4A (AAC-LC 48 kHz mono at AACBitrate in fragmented MP4).
	Format string
	// Sync is the fsync policy of audio files; default SyncEveryPage.
	Sync SyncPolicy
	// SweepInterval is how often Run sweeps; default DefaultSweepInterval.
	SweepInterval time.Duration
	// ExpiryWarnings are the lead times before expires_at at which
	// WarnExpiring (run after every sweep) raises EventExpiring, e.g. 7
	// days and 1 day. Each must be positive; none: no warnings.
	ExpiryWarnings []time.Duration
	// Fence tells whether this node still owns a room (decision 4); the
	// zero Fence is one node, owning every room. See Fence and WithEpoch.
	Fence Fence
	// FenceInterval is how often a running recording asks Fence about its
	// room; default DefaultFenceInterval.
	FenceInterval time.Duration
	// Now is the clock for start, end, expiry and deletion times; default
	// time.Now. Tests inject their own.
	Now func() time.Time
	// Logger gets the recorder's logs (component=recorder); default
	// discards. Logs carry recording IDs, never names or numbers.
	Logger *slog.Logger
	// OnEvent, when set, is called for every Event (started, completed,
	// interrupted, recovered, deleted, deletion failed, expiring) from
	// the goroutine that caused it, with no lock held. It must return
	// quickly.
	OnEvent func(Event)
}

// withDefaults fills zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, fmt.Errorf("%w: Dir is required", ErrOptions)
	}
	if len(o.ReceiptKey) < MinReceiptKeyLen {
		return o, fmt.Errorf("%w: ReceiptKey must be at least %d bytes", ErrOptions, MinReceiptKeyLen)
	}
	if n := len(o.EncryptionKey); n != 0 && n != EncryptionKeyLen {
		return o, fmt.Errorf("%w: EncryptionKey must be %d bytes, got %d", ErrOptions, EncryptionKeyLen, n)
	}
	if o.Node == "" {
		o.Node, _ = os.Hostname()
		if o.Node == "" {
			o.Node = "local"
		}
	}
	if o.ReceiptsFile == "" {
		o.ReceiptsFile = filepath.Join(o.Dir, ReceiptsFileName)
	}
	if o.Opus == (media.OpusConfig{}) {
		o.Opus = media.DefaultOpusConfig()
	}
	if o.Opus.Rate != media.Rate48k {
		return o, fmt.Errorf("%w: Opus.Rate must be %d", ErrOptions, media.Rate48k)
	}
	if o.Format == "" {
		o.Format = FormatOpus
	}
	if err := checkFormat(o.Format); err != nil {
		return o, err
	}
	if o.Sync != SyncEveryPage && o.Sync != SyncNever {
		return o, fmt.Errorf("%w: Sync %d", ErrOptions, o.Sync)
	}
	if o.FenceInterval <= 0 {
		o.FenceInterval = DefaultFenceInterval
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	o.ExpiryWarnings = slices.Clone(o.ExpiryWarnings)
	for _, d := range o.ExpiryWarnings {
		if d <= 0 {
			return o, fmt.Errorf("%w: ExpiryWarnings must be positive, got %s", ErrOptions, d)
		}
	}
	// Longest first, so that the level of a warning grows with urgency.
	slices.SortFunc(o.ExpiryWarnings, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	o.ExpiryWarnings = slices.Compact(o.ExpiryWarnings)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	policies, err := checkPolicies(o.Policies)
	if err != nil {
		return o, err
	}
	o.Policies = policies
	o.ReceiptKey = append([]byte(nil), o.ReceiptKey...)
	if o.EncryptionKey != nil {
		o.EncryptionKey = append([]byte(nil), o.EncryptionKey...)
	}
	return o, nil
}

// checkPolicies validates retention policies and returns them completed:
// Max defaults to Duration, and the default policy is added unless one of
// them replaces it.
func checkPolicies(in []Policy) ([]Policy, error) {
	seen := map[string]bool{}
	policies := make([]Policy, 0, len(in)+1)
	for _, p := range in {
		if err := p.validate(); err != nil {
			return nil, err
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("%w: policy %q defined twice", ErrOptions, p.Name)
		}
		seen[p.Name] = true
		if p.Max == 0 {
			p.Max = p.Duration
		}
		policies = append(policies, p)
	}
	if !seen[DefaultPolicyName] {
		policies = append(policies, DefaultPolicy())
	}
	return policies, nil
}

// findPolicy returns the policy called name ("" is DefaultPolicyName).
func findPolicy(policies []Policy, name string) (Policy, bool) {
	if name == "" {
		name = DefaultPolicyName
	}
	for _, p := range policies {
		if p.Name == name {
			return p, true
		}
	}
	return Policy{}, false
}

// EventType says what happened to a recording.
type EventType uint8

// Recording events.
const (
	// EventStarted: Start created the recording.
	EventStarted EventType = iota + 1
	// EventCompleted: the recording ended normally (Stop, the room closed,
	// Recorder.Close) and its manifest holds the final size and hash.
	EventCompleted
	// EventInterrupted: a write error stopped the recording; Err says
	// which. Other recordings go on.
	EventInterrupted
	// EventRecovered: New found the recording still "recording" after a
	// crash and cut it at its last intact page or fragment.
	EventRecovered
	// EventDeleted: the audio was deleted and the receipt written.
	EventDeleted
	// EventDeleteFailed: a deletion failed (Err); the sweeper retries it.
	EventDeleteFailed
	// EventManifestFailed: a manifest could not be written (Err); the
	// recording goes on if it can, and start-up recovery repairs it.
	EventManifestFailed
	// EventExpiring: the recording expires within one of
	// Options.ExpiryWarnings (Lead), at ExpiresAt (WarnExpiring).
	EventExpiring
)

// String returns the event name webhooks and logs use.
func (t EventType) String() string {
	switch t {
	case EventStarted:
		return "started"
	case EventCompleted:
		return "completed"
	case EventInterrupted:
		return "interrupted"
	case EventRecovered:
		return "recovered"
	case EventDeleted:
		return "deleted"
	case EventDeleteFailed:
		return "delete_failed"
	case EventManifestFailed:
		return "manifest_failed"
	case EventExpiring:
		return "expiring"
	}
	return "unknown"
}

// Event is something that happened to a recording, for webhooks, metrics
// and alerts.
type Event struct {
	Type   EventType
	ID     ID
	Tenant Tenant
	// Err is the cause for EventInterrupted, EventDeleteFailed and
	// EventManifestFailed.
	Err  error
	Time time.Time
	// ExpiresAt and Lead are set for EventExpiring: when the recording
	// expires, and the lead time of the warning.
	ExpiresAt time.Time
	Lead      time.Duration
}
