package room

import (
	"log/slog"
	"time"

	"github.com/mediagate/mediagate/media"
)

// Defaults of a room; every one can be changed with an Option.
const (
	// DefaultEmptyTimeout is how long a room with nobody in it stays open:
	// long enough for a browser reload or a dropped call to come back to
	// the same room, short enough not to hold resources for an ended call.
	DefaultEmptyTimeout = 30 * time.Second
	// DefaultMaxSpeakers caps the voices mixed at once: beyond four
	// simultaneous talkers nobody is understood, and each one costs an
	// extra encode (their own mix-minus).
	DefaultMaxSpeakers = 4
	// DefaultVADThreshold is the level (RFC 6464 -dBov) at or above which a
	// frame counts as voice: -45 dBov sits well above browser and phone
	// noise floors (about -60 to -70) and below quiet speech (about -35).
	DefaultVADThreshold = 45
	// DefaultVADHangover keeps a participant speaking through the pauses
	// between words.
	DefaultVADHangover = 300 * time.Millisecond
	// DefaultEncoderHangover keeps a participant on its own encoder after
	// its voice left the mix, so that short pauses do not switch its
	// decoder between streams (see Room).
	DefaultEncoderHangover = time.Second
)

// config is a room's settings: defaults, then Options.
type config struct {
	maxParticipants int
	locked          bool
	emptyTimeout    time.Duration
	maxSpeakers     int
	vadThreshold    uint8
	vadHangover     int // ticks
	encoderHangover int // ticks
	perListener     bool
	manual          bool
	factory         EncoderFactory
	logger          *slog.Logger
	now             func() time.Time
	totals          *Totals // nil: counted per room only

	// Set by Manager only.
	onClose func(*Room) // called once, when the room has closed
}

func defaultConfig() config {
	return config{
		emptyTimeout:    DefaultEmptyTimeout,
		maxSpeakers:     DefaultMaxSpeakers,
		vadThreshold:    DefaultVADThreshold,
		vadHangover:     ticks(DefaultVADHangover),
		encoderHangover: ticks(DefaultEncoderHangover),
		factory:         NewEncoder,
		now:             time.Now,
	}
}

// ticks converts a duration into whole mixer ticks (rounded up).
func ticks(d time.Duration) int {
	return int((d + media.FrameDuration - 1) / media.FrameDuration)
}

// Option changes one setting of a room at creation.
type Option func(*config)

// WithMaxParticipants refuses joins beyond n participants with ErrRoomFull;
// 0 (the default) means no limit.
func WithMaxParticipants(n int) Option { return func(c *config) { c.maxParticipants = max(n, 0) } }

// WithLocked creates the room locked: joins fail with ErrRoomLocked until
// SetLocked(false), for rooms an operator prepares before opening them.
func WithLocked(locked bool) Option { return func(c *config) { c.locked = locked } }

// WithEmptyTimeout sets the grace period after which a room with nobody in
// it closes; a negative value keeps empty rooms open until Close.
func WithEmptyTimeout(d time.Duration) Option { return func(c *config) { c.emptyTimeout = d } }

// WithMaxSpeakers caps how many voices are mixed at once (the loudest win);
// 0 mixes every speaking participant, up to media.MaxMixVoices (16), the
// loudest first.
func WithMaxSpeakers(n int) Option { return func(c *config) { c.maxSpeakers = max(n, 0) } }

// WithVAD sets the voice-activity threshold as an RFC 6464 level (-dBov,
// 0..127: frames at or louder than -thresholdDBov are voice) and how long
// speech lasts after the last voiced frame.
func WithVAD(thresholdDBov int, hangover time.Duration) Option {
	return func(c *config) {
		c.vadThreshold = uint8(min(max(thresholdDBov, 0), silentLevel))
		c.vadHangover = ticks(hangover)
	}
}

// WithEncoderHangover sets how long a participant keeps its own encoder
// after its voice left the mix before it moves back to the shared stream.
func WithEncoderHangover(d time.Duration) Option {
	return func(c *config) { c.encoderHangover = ticks(d) }
}

// WithPerListenerEncoding gives every participant its own encoder every tick,
// as a mixer without decision 2 would. It exists only so that benchmarks
// can measure what shared encoding saves; never use it in production.
func WithPerListenerEncoding() Option { return func(c *config) { c.perListener = true } }

// WithEncoderFactory replaces NewEncoder, for codecs of other packages and
// for tests that count encodes.
func WithEncoderFactory(f EncoderFactory) Option { return func(c *config) { c.factory = f } }

// WithLogger sets the logger; the room adds component=room and room=ID.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock sets where event and join times come from (time.Now by
// default), so tests get predictable timestamps.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithManualTick starts no ticker goroutine: the owner calls Room.Tick every
// 20 ms itself. Tests and benchmarks use it to run the mixer without
// waiting on real time; the empty-room grace period then runs on the times
// given to Tick.
func WithManualTick() Option { return func(c *config) { c.manual = true } }
