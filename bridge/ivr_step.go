package bridge

import (
	"errors"
	"time"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

// The IVR's internal steps. Each appends the actions it causes to m.out.

// play starts ids[0] and queues the rest, all with the same
// interruptibility; a prompt still playing is stopped first.
func (m *IVR) play(interruptible bool, ids ...PromptID) {
	if m.playing {
		m.stopPrompt()
	}
	m.queued = copy(m.queue[:], ids[1:])
	m.startPrompt(ids[0], interruptible)
}

// startPrompt emits ActPlay for one prompt under a fresh Seq.
func (m *IVR) startPrompt(id PromptID, interruptible bool) {
	m.seq++
	m.playing, m.interruptible = true, interruptible
	m.out = append(m.out, Action{Kind: ActPlay, Prompt: id, Seq: m.seq, Interruptible: interruptible})
}

// interrupt stops the prompt playing when a digit may stop it, and reports
// whether the digit is to be handled.
func (m *IVR) interrupt() bool {
	if !m.interruptible {
		return false
	}
	m.stopPrompt()
	return true
}

// stopPrompt stops the prompt playing and forgets the queued ones.
func (m *IVR) stopPrompt() {
	m.out = append(m.out, Action{Kind: ActStopPrompt})
	m.playing, m.queued = false, 0
}

// arm sets the step's timeout to d from now; d ≤ 0 means no timeout.
func (m *IVR) arm(now time.Time, d time.Duration) {
	m.deadline, m.armed = now.Add(d), d > 0
}

// expire fires the timeouts that are due at now: a step timeout is a
// failed attempt, an unanswered lookup, check or join ends the call.
func (m *IVR) expire(now time.Time) {
	if m.state == stInCall && m.star && !now.Before(m.starExpiry) {
		m.star = false
	}
	if !m.armed || now.Before(m.deadline) {
		return
	}
	m.armed = false
	switch m.state {
	case stNumber, stPIN:
		m.fail(false)
	case stLookup, stCheckPIN, stJoin:
		m.close(HangUpError, PromptError, PromptGoodbye)
	}
}

// key adds one digit to the number or PIN being typed.
func (m *IVR) key(d media.Digit, now time.Time) {
	switch {
	case d == media.DigitPound:
		m.submit(now)
	case d == media.DigitStar:
		m.clearEntry()
		m.arm(now, m.cfg.firstDigit)
	case d <= media.Digit9:
		if m.n < m.cfg.maxDigits {
			m.entry[m.n] = '0' + byte(d)
			m.n++
		} else {
			m.spoiled = true // too long: wrong, once the caller ends it
		}
		m.arm(now, m.cfg.interDigit)
	default:
		// A–D: no number or PIN holds them. The entry is wrong, but the
		// caller still ends it with # (or lets it time out), so the keys
		// typed after the mistake do not start a second attempt.
		m.spoiled = true
		m.arm(now, m.cfg.interDigit)
	}
}

// submit ends an entry with '#': a well-formed one goes to the lookup or
// the PIN check, anything else is a failed attempt.
func (m *IVR) submit(now time.Time) {
	m.armed = false
	if m.n == 0 || m.spoiled {
		m.fail(true)
		return
	}
	if m.state == stNumber {
		m.out = append(m.out, Action{Kind: ActLookup, Number: string(m.entry[:m.n])})
		m.state = stLookup
	} else {
		m.out = append(m.out, Action{Kind: ActCheckPIN, Room: m.roomID, PIN: string(m.entry[:m.n])})
		m.state = stCheckPIN
	}
	m.clearEntry()
	m.arm(now, m.cfg.resultTimeout)
}

// fail counts a failed attempt at the current step (stNumber or stPIN):
// wrong is true for a wrong entry, false for a timeout. It replays the
// step, or says goodbye after the last attempt.
func (m *IVR) fail(wrong bool) {
	m.failures++
	m.clearEntry()
	m.armed = false
	wrongPrompt, stepPrompt, reason := PromptWrongNumber, PromptEnterNumber, HangUpNumberFailed
	if m.state == stPIN {
		wrongPrompt, stepPrompt, reason = PromptWrongPIN, PromptEnterPIN, HangUpPINFailed
	}
	switch {
	case m.failures >= m.cfg.attempts && wrong:
		m.close(reason, wrongPrompt, PromptGoodbye)
	case m.failures >= m.cfg.attempts:
		m.close(reason, PromptGoodbye)
	case wrong:
		m.play(true, wrongPrompt, stepPrompt)
	default:
		m.play(true, stepPrompt)
	}
}

// join asks the call to join the room found.
func (m *IVR) join(now time.Time) {
	m.state = stJoin
	m.out = append(m.out, Action{Kind: ActJoin, Room: m.roomID})
	m.arm(now, m.cfg.resultTimeout)
}

// close plays the last prompts, which digits cannot stop; ActHangUp
// follows when the last one is done.
func (m *IVR) close(reason HangUpReason, ids ...PromptID) {
	m.state = stClosing
	m.reason = reason
	m.armed = false
	m.star = false
	m.clearEntry()
	m.play(false, ids...)
}

// closeFor ends the call for a room error: the SIP error mapping of a call
// that is already answered, where a status code can no longer be sent and
// a prompt says it instead (issue [3]: "room full 486, or a prompt then BYE
// once answered").
func (m *IVR) closeFor(err error) {
	switch {
	case errors.Is(err, room.ErrRoomFull):
		m.close(HangUpRoomFull, PromptRoomFull, PromptGoodbye)
	case errors.Is(err, room.ErrRoomClosed), errors.Is(err, room.ErrNotFound),
		errors.Is(err, room.ErrRoomLocked):
		m.close(HangUpRoomClosed, PromptRoomClosed, PromptGoodbye)
	default:
		m.close(HangUpError, PromptError, PromptGoodbye)
	}
}

// command handles a digit in the call: '*' then '6' within commandWait
// toggles mute; anything else is dropped.
func (m *IVR) command(d media.Digit, now time.Time) {
	if m.star {
		m.star = false
		if d == media.Digit6 {
			m.toggleMute()
			return
		}
		if d != media.DigitStar {
			return
		}
		// A second '*' starts the sequence afresh.
	}
	if d == media.DigitStar {
		m.star = true
		m.starExpiry = now.Add(m.cfg.commandWait)
	}
}

// toggleMute flips self-mute and confirms it to the caller.
func (m *IVR) toggleMute() {
	m.muted = !m.muted
	m.out = append(m.out, Action{Kind: ActMute, Muted: m.muted})
	if m.cfg.muteTone {
		if m.playing {
			m.stopPrompt()
		}
		m.seq++
		m.playing, m.interruptible = true, true
		m.out = append(m.out, Action{Kind: ActTone, Muted: m.muted, Seq: m.seq, Interruptible: true})
		return
	}
	if m.muted {
		m.play(true, PromptMuted)
	} else {
		m.play(true, PromptUnmuted)
	}
}

// clearEntry forgets what was typed, zeroing the buffer so that no PIN
// outlives its check.
func (m *IVR) clearEntry() {
	clear(m.entry[:])
	m.n = 0
	m.spoiled = false
}
