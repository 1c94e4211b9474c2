package bridge

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/mediagate/mediagate/room"
)

// ActionKind says what an Action asks the call to do.
type ActionKind uint8

// The actions the IVR emits. The call executes them in the order given.
const (
	// ActPlay: play Prompt to the caller (replacing whatever it hears),
	// then report IVR.PromptDone with Seq when it has played to its end.
	ActPlay ActionKind = iota + 1
	// ActTone: play the mute confirmation tone (ConfirmTone(Muted)) like a
	// prompt, with Seq.
	ActTone
	// ActStopPrompt: stop the prompt or tone playing now (with a short
	// fade, see Player.Stop) and do not report PromptDone for it.
	ActStopPrompt
	// ActLookup: look up conference number Number and answer with
	// IVR.NumberResult.
	ActLookup
	// ActCheckPIN: check PIN against the PIN of Room (in constant time,
	// never logging it) and answer with IVR.PINResult.
	ActCheckPIN
	// ActJoin: join Room as a participant and answer with IVR.JoinResult.
	ActJoin
	// ActMute: mute (Muted true) or unmute the caller in its room.
	ActMute
	// ActHangUp: end the call (BYE, then leave the room if in one) for
	// Reason. It is always the last action of an IVR.
	ActHangUp
)

// String names the kind for logs.
func (k ActionKind) String() string {
	switch k {
	case ActPlay:
		return "play"
	case ActTone:
		return "tone"
	case ActStopPrompt:
		return "stop-prompt"
	case ActLookup:
		return "lookup"
	case ActCheckPIN:
		return "check-pin"
	case ActJoin:
		return "join"
	case ActMute:
		return "mute"
	case ActHangUp:
		return "hang-up"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is one thing the IVR asks the call to do. Only the fields named
// for its Kind are set.
//
// PIN is a secret (DESIGN.md decision 8): String and LogValue mask it, so
// an Action may be logged as a whole, but the field itself must never be.
type Action struct {
	// Kind is what to do.
	Kind ActionKind
	// Prompt is the prompt to play (ActPlay).
	Prompt PromptID
	// Seq numbers the prompt or tone (ActPlay, ActTone) so that a
	// PromptDone that crosses a StopPrompt on its way is recognised as
	// stale.
	Seq uint64
	// Interruptible says whether a digit stops the prompt (ActPlay,
	// ActTone). The IVR itself emits ActStopPrompt when it does; the flag
	// lets a caller that queues digits decide how to mix prompt and room.
	Interruptible bool
	// Number is the conference number entered (ActLookup).
	Number string
	// PIN is the PIN entered (ActCheckPIN). Never log it.
	PIN string
	// Room is the room found by the lookup (ActCheckPIN, ActJoin).
	Room room.ID
	// Muted is the new mute state (ActMute) or which tone to play
	// (ActTone).
	Muted bool
	// Reason is why the call ends (ActHangUp).
	Reason HangUpReason
}

// String describes the action for logs and test failures, with the PIN
// masked.
func (a Action) String() string {
	switch a.Kind {
	case ActPlay:
		return fmt.Sprintf("play(%s #%d interruptible=%t)", a.Prompt, a.Seq, a.Interruptible)
	case ActTone:
		return fmt.Sprintf("tone(muted=%t #%d)", a.Muted, a.Seq)
	case ActLookup:
		return fmt.Sprintf("lookup(%s)", a.Number)
	case ActCheckPIN:
		return fmt.Sprintf("check-pin(%s, %s)", a.Room, maskPIN(a.PIN))
	case ActJoin:
		return fmt.Sprintf("join(%s)", a.Room)
	case ActMute:
		return fmt.Sprintf("mute(%t)", a.Muted)
	case ActHangUp:
		return fmt.Sprintf("hang-up(%s)", a.Reason)
	}
	return a.Kind.String()
}

// LogValue makes slog print the masked String instead of the fields.
func (a Action) LogValue() slog.Value { return slog.StringValue(a.String()) }

// maskPIN shows only that a PIN was entered.
func maskPIN(pin string) string {
	if pin == "" {
		return "pin=<empty>"
	}
	return "pin=***"
}

// HangUpReason says why the IVR ends a call, for logs, metrics and the SIP
// Reason header (RFC 3326) the call may add to its BYE.
type HangUpReason uint8

// The reasons for ActHangUp.
const (
	// HangUpNumberFailed: every attempt at the conference number failed.
	HangUpNumberFailed HangUpReason = iota + 1
	// HangUpPINFailed: every attempt at the PIN failed.
	HangUpPINFailed
	// HangUpRoomFull: the room refused the join, it is full.
	HangUpRoomFull
	// HangUpRoomClosed: the room closed, vanished or was locked.
	HangUpRoomClosed
	// HangUpRemoved: an operator removed the caller from the room.
	HangUpRemoved
	// HangUpError: a lookup, PIN check or join failed for a technical
	// reason, or its answer did not come in time.
	HangUpError
)

// String names the reason for logs and metric labels.
func (r HangUpReason) String() string {
	switch r {
	case HangUpNumberFailed:
		return "number-failed"
	case HangUpPINFailed:
		return "pin-failed"
	case HangUpRoomFull:
		return "room-full"
	case HangUpRoomClosed:
		return "room-closed"
	case HangUpRemoved:
		return "removed"
	case HangUpError:
		return "error"
	}
	return fmt.Sprintf("HangUpReason(%d)", uint8(r))
}

// LookupResult is the answer to ActLookup.
type LookupResult struct {
	// Found is true when the number names a room.
	Found bool
	// Room is the room the number names.
	Room room.ID
	// NeedsPIN is true when the room has a PIN.
	NeedsPIN bool
	// Err is a technical failure (directory unreachable): the IVR plays
	// the error prompt and hangs up rather than blaming the caller's
	// number. An Err wins over Found.
	Err error
}

// JoinInfo is what the IVR announces after a successful ActJoin.
type JoinInfo struct {
	// First is true when the caller is the only participant, so it hears
	// PromptFirstParticipant instead of PromptJoining.
	First bool
	// Recording is true when the room is being recorded: the caller hears
	// PromptRecordingNotice.
	Recording bool
}

// IVROption configures NewIVR.
type IVROption func(*ivrConfig)

// ivrConfig holds the IVR's knobs; defaultIVRConfig has the rules of the
// issue: 3 attempts, 10 s to the first digit, 5 s between digits.
type ivrConfig struct {
	attempts      int
	firstDigit    time.Duration
	interDigit    time.Duration
	commandWait   time.Duration
	resultTimeout time.Duration
	maxDigits     int
	muteTone      bool
	fixedRoom     room.ID
	fixedNeedsPIN bool
}

// maxDigitsLimit is the longest entry WithMaxDigits allows; the entry
// buffer is a fixed array of this size.
const maxDigitsLimit = 32

func defaultIVRConfig() ivrConfig {
	return ivrConfig{
		attempts:      3,
		firstDigit:    10 * time.Second,
		interDigit:    5 * time.Second,
		commandWait:   2 * time.Second,
		resultTimeout: 10 * time.Second,
		maxDigits:     15,
	}
}

// WithAttempts sets how many tries the caller gets for the number and
// (separately) for the PIN before goodbye and hang-up (default 3; at
// least 1).
func WithAttempts(n int) IVROption {
	return func(c *ivrConfig) { c.attempts = max(n, 1) }
}

// WithDigitTimeouts sets how long the IVR waits for the first digit of an
// entry after its prompt ended (default 10 s) and for each further digit
// (default 5 s).
func WithDigitTimeouts(first, inter time.Duration) IVROption {
	return func(c *ivrConfig) { c.firstDigit, c.interDigit = first, inter }
}

// WithResultTimeout bounds the wait for NumberResult, PINResult and
// JoinResult (default 10 s): a directory or room that never answers ends
// the call with the error prompt instead of holding the line in silence.
func WithResultTimeout(d time.Duration) IVROption {
	return func(c *ivrConfig) { c.resultTimeout = d }
}

// WithMaxDigits sets the longest number or PIN (default 15, at most 32);
// a longer entry counts as wrong.
func WithMaxDigits(n int) IVROption {
	return func(c *ivrConfig) { c.maxDigits = min(max(n, 1), maxDigitsLimit) }
}

// WithMuteTone confirms *6 with ActTone (two beeps) instead of the
// muted/unmuted prompts, for operators who find the voice too long.
func WithMuteTone(on bool) IVROption {
	return func(c *ivrConfig) { c.muteTone = on }
}

// WithFixedRoom skips the conference number: a dispatch rule that maps the
// dialled number straight to a room. Without a PIN the IVR joins at once
// (no welcome, no questions) and only announces the join and the
// recording; with one it greets the caller and asks for the PIN.
func WithFixedRoom(id room.ID, needsPIN bool) IVROption {
	return func(c *ivrConfig) { c.fixedRoom, c.fixedNeedsPIN = id, needsPIN }
}
