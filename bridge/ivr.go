package bridge

import (
	"errors"
	"time"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

// IVR is the dial-in voice menu of one call as a pure state machine: it
// starts no goroutine, reads no clock and does no I/O. The call feeds it
// events, each with the time it happened, and executes the Actions it
// returns in order; asynchronous work (looking up a number, checking a PIN,
// joining a room) is an action whose answer comes back as another event.
// Because time is an input, tests drive every timeout to the nanosecond.
//
// The flow (issue [3]):
//
//	welcome → enter_number … # → Lookup → [enter_pin … # → CheckPIN] → Join
//	        → joining | first_participant [→ recording_notice] → in call
//
// Entry rules, the same for the number and the PIN:
//
//   - digits are collected until '#'; '*' clears what was typed so far
//     (keeping the attempt) so a caller who mistyped can start again;
//   - digits typed during the step's prompts (welcome, enter_*, wrong_*)
//     stop the prompt (ActStopPrompt) and count as input, so a caller who
//     knows the number need not listen;
//   - the first digit must come within 10 s of the end of the prompt, each
//     further one within 5 s of the previous one (after '*', 10 s again).
//     A timeout is due when now ≥ deadline, whether Tick or the next event
//     notices it first, so the outcome depends only on the event times;
//   - an empty entry, one longer than 15 digits, or one holding A–D counts
//     as wrong, as does a number the lookup does not find or a wrong PIN;
//     the caller hears wrong_number/wrong_pin, then the step's prompt again.
//     A timeout is a failed attempt too and replays the step's prompt;
//   - after the 3rd failed attempt of a step the caller hears (wrong_*
//     and) goodbye, then ActHangUp.
//
// PINs: the IVR never compares a PIN. It hands the digits to the call in
// ActCheckPIN, whose checker compares them in constant time, and zeroes
// its own buffer when it emits the action; the Action slice holding the
// PIN string is cleared at the next event. Nothing else keeps it.
//
// Digits typed while nothing asks for them (waiting for a lookup, during
// the join announcements, the recording notice and the goodbye, which must
// be heard) are ignored.
//
// In the call, '*' followed within 2 s by '6' toggles self-mute (ActMute,
// then the muted/unmuted prompt or, WithMuteTone, ActTone); every other
// sequence is ignored. A room that closes, or an operator's removal, ends
// the call with room_closed/goodbye (see Left).
//
// An IVR is not safe for concurrent use: one goroutine (the call's) owns it.
type IVR struct {
	cfg   ivrConfig
	state ivrState

	// The prompt playing now (playing), its Seq and whether digits stop
	// it; queue holds the prompts to play after it, in order.
	playing       bool
	seq           uint64
	interruptible bool
	queue         [3]PromptID
	queued        int

	// The entry being typed: its digits, and whether it is already wrong
	// (too long, A–D).
	entry   [maxDigitsLimit]byte
	n       int
	spoiled bool

	deadline time.Time // timeout of the current step or wait
	armed    bool
	failures int // failed attempts in the current step

	roomID    room.ID
	recording bool // recording started while the join was under way
	noticed   bool // the recording notice has been played or queued

	star       bool // in call: '*' seen, waiting for the command digit
	starExpiry time.Time
	muted      bool

	reason HangUpReason // why the call ends, once closing
	out    []Action
}

// ivrState is where in the call flow the IVR is.
type ivrState uint8

const (
	stIdle     ivrState = iota // before Start
	stNumber                   // asking for and collecting the number
	stLookup                   // waiting for NumberResult
	stPIN                      // asking for and collecting the PIN
	stCheckPIN                 // waiting for PINResult
	stJoin                     // waiting for JoinResult
	stAnnounce                 // playing joining / recording notice
	stInCall                   // in the room, listening for commands
	stClosing                  // playing the last prompts before ActHangUp
	stDone                     // hung up or call ended: ignores everything
)

// NewIVR returns an IVR waiting for Start.
func NewIVR(opts ...IVROption) *IVR {
	cfg := defaultIVRConfig()
	for _, o := range opts {
		o(&cfg)
	}
	return &IVR{cfg: cfg, out: make([]Action, 0, 4)}
}

// begin starts a new event: it drops the previous event's actions (and
// with them any PIN) and reports whether the IVR still listens.
func (m *IVR) begin() bool {
	clear(m.out)
	m.out = m.out[:0]
	return m.state != stIdle && m.state != stDone
}

// Start begins the call flow once the call is answered: the welcome and
// the first question, or, for a fixed room without PIN, the join.
func (m *IVR) Start(now time.Time) []Action {
	clear(m.out)
	m.out = m.out[:0]
	if m.state != stIdle {
		return m.out
	}
	switch {
	case m.cfg.fixedRoom == "":
		m.state = stNumber
		m.play(true, PromptWelcome, PromptEnterNumber)
	case m.cfg.fixedNeedsPIN:
		m.roomID = m.cfg.fixedRoom
		m.state = stPIN
		m.play(true, PromptWelcome, PromptEnterPIN)
	default:
		m.roomID = m.cfg.fixedRoom
		m.join(now)
	}
	return m.out
}

// Digit handles one key press (already de-duplicated across RFC 4733, SIP
// INFO and in-band detection) at time now.
func (m *IVR) Digit(d media.Digit, now time.Time) []Action {
	if !m.begin() {
		return m.out
	}
	m.expire(now)
	switch m.state {
	case stNumber, stPIN:
		if m.playing && !m.interrupt() {
			return m.out
		}
		m.key(d, now)
	case stInCall:
		if m.playing && !m.interrupt() {
			return m.out
		}
		m.command(d, now)
	}
	return m.out
}

// Tick lets timeouts fire; the call calls it at Deadline (calling it
// more often is harmless).
func (m *IVR) Tick(now time.Time) []Action {
	if m.begin() {
		m.expire(now)
	}
	return m.out
}

// Deadline is when the IVR next needs a Tick, if it does: the call sets
// its timer to it after every event.
func (m *IVR) Deadline() (time.Time, bool) {
	if m.state == stInCall && m.star {
		return m.starExpiry, true
	}
	return m.deadline, m.armed && m.state != stDone
}

// PromptDone reports that the prompt or tone of Action.Seq seq played to
// its end. Reports for a stopped or superseded prompt are ignored.
func (m *IVR) PromptDone(seq uint64, now time.Time) []Action {
	if !m.begin() || !m.playing || seq != m.seq {
		return m.out
	}
	m.playing = false
	if m.queued > 0 {
		next := m.queue[0]
		copy(m.queue[:], m.queue[1:m.queued])
		m.queued--
		m.startPrompt(next, m.interruptible)
		return m.out
	}
	switch m.state {
	case stNumber, stPIN:
		m.arm(now, m.cfg.firstDigit)
	case stAnnounce:
		m.state = stInCall
	case stClosing:
		m.state = stDone
		m.armed = false
		m.out = append(m.out, Action{Kind: ActHangUp, Reason: m.reason})
	}
	return m.out
}

// answered starts handling the answer to a request the IVR made in state
// want: it reports false (the answer is ignored) unless the machine is
// still waiting in that state once timeouts up to now have run, and
// disarms the wait's timer when it is.
func (m *IVR) answered(want ivrState, now time.Time) bool {
	if !m.begin() {
		return false
	}
	m.expire(now)
	if m.state != want {
		return false
	}
	m.armed = false
	return true
}

// NumberResult answers ActLookup. It is ignored unless a lookup is under
// way (a late answer after a timeout, say).
func (m *IVR) NumberResult(res LookupResult, now time.Time) []Action {
	if !m.answered(stLookup, now) {
		return m.out
	}
	switch {
	case res.Err != nil:
		m.close(HangUpError, PromptError, PromptGoodbye)
	case !res.Found:
		m.state = stNumber
		m.fail(true)
	case res.NeedsPIN:
		m.roomID = res.Room
		m.state = stPIN
		m.failures = 0
		m.play(true, PromptEnterPIN)
	default:
		m.roomID = res.Room
		m.join(now)
	}
	return m.out
}

// PINResult answers ActCheckPIN: ok when the PIN matched; err for a
// technical failure of the check. Ignored unless a check is under way.
func (m *IVR) PINResult(ok bool, err error, now time.Time) []Action {
	if !m.answered(stCheckPIN, now) {
		return m.out
	}
	switch {
	case err != nil:
		m.close(HangUpError, PromptError, PromptGoodbye)
	case !ok:
		m.state = stPIN
		m.fail(true)
	default:
		m.join(now)
	}
	return m.out
}

// JoinResult answers ActJoin: err is the room's error (room.ErrRoomFull,
// room.ErrRoomClosed, ...), mapped here to the prompt the caller hears
// before the hang-up; on success info decides the announcements. Ignored
// unless a join is under way.
func (m *IVR) JoinResult(info JoinInfo, err error, now time.Time) []Action {
	if !m.answered(stJoin, now) {
		return m.out
	}
	if err != nil {
		m.closeFor(err)
		return m.out
	}
	m.state = stAnnounce
	first := PromptJoining
	if info.First {
		first = PromptFirstParticipant
	}
	if info.Recording || m.recording {
		m.noticed = true
		m.play(false, first, PromptRecordingNotice)
	} else {
		m.play(false, first)
	}
	return m.out
}

// RecordingStarted tells the IVR that the room's recording began: a caller
// in the room hears the notice (after any announcement still playing),
// one still joining hears it with the join announcement.
func (m *IVR) RecordingStarted(now time.Time) []Action {
	if !m.begin() {
		return m.out
	}
	m.expire(now)
	switch m.state {
	case stJoin:
		m.recording = true
	case stAnnounce:
		if !m.noticed && m.queued < len(m.queue) {
			m.noticed = true
			m.queue[m.queued] = PromptRecordingNotice
			m.queued++
		}
	case stInCall:
		if m.playing && !m.interrupt() {
			// Another notice is playing; it says the same.
			return m.out
		}
		m.noticed = true
		m.play(false, PromptRecordingNotice)
	}
	return m.out
}

// Left tells the IVR that the room let go of the caller
// (room.Participant.Detached): err nil after the call's own Leave ends the
// IVR quietly; room.ErrRoomClosed plays room_closed and goodbye,
// room.ErrParticipantRemoved goodbye, anything else the error prompt, each
// followed by ActHangUp.
func (m *IVR) Left(err error, now time.Time) []Action {
	if !m.begin() {
		return m.out
	}
	if m.state != stAnnounce && m.state != stInCall {
		return m.out
	}
	if m.playing {
		m.stopPrompt()
	}
	switch {
	case err == nil:
		m.state = stDone
	case errors.Is(err, room.ErrParticipantRemoved):
		m.close(HangUpRemoved, PromptGoodbye)
	default:
		m.closeFor(err)
	}
	return m.out
}

// SetMuted tells the IVR the caller's mute state changed outside it (an
// operator muted the caller), so the next *6 toggles from the right state.
func (m *IVR) SetMuted(muted bool) { m.muted = muted }

// CallEnded tells the IVR the call is over (BYE from the caller, media
// timeout): it stops and ignores every later event.
func (m *IVR) CallEnded() {
	clear(m.out)
	m.out = m.out[:0]
	m.state = stDone
	m.armed, m.playing, m.queued = false, false, 0
	m.clearEntry()
}

// Done reports whether the IVR has hung up or the call ended.
func (m *IVR) Done() bool { return m.state == stDone }
