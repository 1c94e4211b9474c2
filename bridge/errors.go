package bridge

import "errors"

// Errors of package bridge. They are wrapped with %w and detail (the file, the
// prompt) by the functions that return them, so callers compare with
// errors.Is.
var (
	// ErrWAVMalformed means a WAV file's RIFF structure is broken: a chunk
	// runs past the end, a size does not add up, fmt or data is missing or
	// repeated. Prompt files come from operators, so a damaged one is
	// reported instead of being played as noise.
	ErrWAVMalformed = errors.New("bridge: malformed wav file")

	// ErrWAVFormat means a well-formed WAV file holds audio the bridge does
	// not play: anything but 16-bit linear PCM, mono, at 8, 16 or 48 kHz
	// (the rates media.Resampler converts). Converting other formats at
	// start-up would hide a badly exported file behind a resampler.
	ErrWAVFormat = errors.New("bridge: unsupported wav format (want 16-bit pcm, mono, 8/16/48 khz)")

	// ErrWAVTooLarge means a WAV file is larger than maxWAVBytes; prompts
	// are seconds long, and a runaway file must not fill memory at start-up.
	ErrWAVTooLarge = errors.New("bridge: wav file too large")

	// ErrPromptOverride means a file in the prompt override directory cannot
	// replace a prompt: it is not a valid WAV (wrapping the reader's error),
	// it is empty, or its name is no known prompt. The error names the file,
	// so the operator knows which recording to fix; start-up fails rather
	// than playing the built-in prompt the operator meant to replace.
	ErrPromptOverride = errors.New("bridge: bad prompt override")

	// ErrCallCodec means a call's negotiated codec has no room.Format, so
	// the call cannot be bridged into a room. The UA only negotiates codecs
	// the room can encode, so it points at a UA and a bridge out of step.
	ErrCallCodec = errors.New("bridge: call codec has no room format")
)
