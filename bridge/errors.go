package bridge

import (
	"errors"

	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
)

// Error is a bridge error that refuses a call: like the errors of room and
// sip it knows the final response it stands for (SIPStatus), so Refusal
// maps it with the others.
type Error struct {
	msg    string
	status int
}

// Error returns the lower-case message.
func (e *Error) Error() string { return e.msg }

// SIPStatus is the final response an INVITE refused for this error gets
// (RFC 3261 §21).
func (e *Error) SIPStatus() int { return e.status }

// ErrUnknownNumber means the dialed number matches no dispatch rule (and
// there is no catch-all rule): 404 Not Found (RFC 3261 §21.4.5), so the
// carrier tells the caller the number does not exist instead of ringing
// out.
var ErrUnknownNumber = &Error{"bridge: dialed number matches no dispatch rule", 404}

// RetryAfter is the Retry-After, in seconds, of a 503 Service Unavailable
// (RFC 3261 §21.5.4, §20.33): when an overloaded or draining node may be
// asked again. Carriers route the call to another node meanwhile; package
// sip puts the same value on the 503s it sends by itself.
const RetryAfter = 30

// refusals is the SIP error mapping of the calls the bridge refuses before
// answering, first match wins. After the answer no status can be sent any
// more: the IVR says it with a prompt instead (IVR.closeFor).
var refusals = []struct {
	err  error
	code int
}{
	{ErrUnknownNumber, 404},
	// RFC 3261 §21.4.24: the callee (the room) cannot take another call;
	// phones show busy.
	{room.ErrRoomFull, 486},
	// RFC 3261 §21.4.4: an operator locked the room against joins.
	{room.ErrRoomLocked, 403},
	{room.ErrNotFound, 404},
	// RFC 3261 §21.4.18: the room closed a moment ago and may open again.
	{room.ErrRoomClosed, 480},
	// Overload and shutdown (RFC 3261 §21.5.4): the room manager refusing,
	// the UA closing or draining, no RTP port left. With Retry-After.
	{room.ErrManagerClosed, 503},
	{sip.ErrClosed, 503},
	{sip.ErrNoPorts, 503},
	// The caller gave up; sipgo has answered 487 already.
	{sip.ErrCanceled, 487},
}

// Refusal returns the final response that refuses an INVITE for err, the
// one SIP error mapping of the bridge (see CallHandler): the table above,
// else the status an error of another package carries (a SIPStatus()
// method, as package sip's trunk rejection with 403 Forbidden or its 488
// for an offer without a common codec), else 500 Server Internal Error.
// A 503 always carries RetryAfter.
func Refusal(err error) *sip.StatusError {
	code := 500
	found := false
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			code, found = r.code, true
			break
		}
	}
	var s interface{ SIPStatus() int }
	if !found && errors.As(err, &s) && s.SIPStatus() >= 300 && s.SIPStatus() <= 699 {
		code = s.SIPStatus()
	}
	res := &sip.StatusError{Code: code}
	if code == 503 {
		res.RetryAfter = RetryAfter
	}
	return res
}

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
