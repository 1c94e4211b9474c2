package media

import "errors"

// The errors of package media, grouped by the part that returns them. They
// are wrapped with %w and more detail where it helps, so callers compare
// with errors.Is.

// Errors of the codecs (G.711, G.722, Opus, AAC). They are wrapped with %w and
// more detail, so callers test them with errors.Is.
var (
	// ErrCodecClosed is returned by Encode, Decode and Conceal after Close, so
	// a stream torn down while a frame is in flight fails cleanly instead of
	// touching released codec state.
	ErrCodecClosed = errors.New("media: codec closed")

	// ErrCodecFrameSize is returned when the PCM handed to an encoder is not
	// exactly one codec frame: every codec here keeps state across frames and
	// a short or long frame would silently shift the stream's timing.
	ErrCodecFrameSize = errors.New("media: wrong number of samples for codec frame")

	// ErrCodecShortBuffer is returned when dst or pcm cannot hold the result;
	// codecs never grow a caller's buffer because the media path must not
	// allocate.
	ErrCodecShortBuffer = errors.New("media: codec buffer too short")

	// ErrCodecConfig is returned by constructors given a sample rate, channel
	// count, bitrate or option the codec does not support.
	ErrCodecConfig = errors.New("media: invalid codec configuration")

	// ErrCodecFailed wraps an error code reported by a codec library (libopus,
	// libvo-aacenc) that has no better match above.
	ErrCodecFailed = errors.New("media: codec library failed")
)

// Errors of the resampler and the jitter buffer. They are wrapped with %w
// and more detail; compare with errors.Is.
var (
	// ErrResampleRate means a rate other than 8, 16 or 48 kHz was asked
	// for: mediagate never needs others, and the frame sizes assume them.
	ErrResampleRate = errors.New("media: unsupported resample rate")
	// ErrResampleFrame means Process was given an input that is not one
	// 20 ms frame at the source rate, or an output too small for one frame
	// at the target rate.
	ErrResampleFrame = errors.New("media: resample buffer is not one frame")
	// ErrResampleFailed means libspeexdsp refused to create a resampler or
	// to process a frame.
	ErrResampleFailed = errors.New("media: resampler failed")
	// ErrResamplerClosed means Process was called after Close.
	ErrResamplerClosed = errors.New("media: resampler closed")
	// ErrJitterPayloadTooBig means a packet's payload does not fit in a
	// jitter-buffer slot (MaxJitterPayload bytes); the packet is dropped.
	ErrJitterPayloadTooBig = errors.New("media: rtp payload too big for jitter buffer")
	// ErrJitterConfig means a jitter-buffer option was out of range.
	ErrJitterConfig = errors.New("media: invalid jitter buffer option")
)

// Errors of the DTMF and telephone-event code. They are sentinel values so
// callers can tell a malformed packet from a bug with errors.Is; wrapped
// errors add the offending value.
var (
	// ErrInvalidDigit is returned by ParseDigit for a character that is not
	// one of the 16 DTMF keys, so a dial string is rejected before anything
	// is sent.
	ErrInvalidDigit = errors.New("media: not a dtmf digit")

	// ErrShortTelephoneEvent is returned for a telephone-event payload
	// shorter than the 4 bytes RFC 4733 §2.3 defines; such a packet carries
	// no event and is dropped.
	ErrShortTelephoneEvent = errors.New("media: telephone-event payload shorter than 4 bytes")
)
