package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
)

// inCall is the opening through to the call: number 1234 → room r1
// without PIN, joined at 5 s, "joining" played to its end at 7 s.
func inCall(steps ...step) []step {
	return withOpening(append([]step{
		{5 * s, keys("1234#"), "lookup 1234"},
		{5 * s, found("r1", false), "join r1"},
		{5 * s, joined(false, false), "play! joining"},
		{7 * s, done(), ""},
	}, steps...)...)
}

// TestIVRFlow covers the call flow of issue [3] event by event, with the
// injected clock.
func TestIVRFlow(t *testing.T) {
	tests := []struct {
		name  string
		opts  []IVROption
		steps []step
	}{
		{"happy path without PIN", nil, withOpening(
			step{4 * s, deadline(14*s, true), ""},
			step{5 * s, keys("1234"), ""},
			step{5 * s, deadline(10*s, true), ""},
			step{6 * s, keys("#"), "lookup 1234"},
			step{6 * s, found("r1", false), "join r1"},
			step{6 * s, joined(false, false), "play! joining"},
			step{6 * s, deadline(0, false), ""},
			step{8 * s, done(), ""},
			step{8 * s, deadline(0, false), ""},
		)},
		{"happy path with PIN", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", true), "play enter_pin"},
			step{7 * s, done(), ""},
			step{7 * s, deadline(17*s, true), ""},
			step{8 * s, keys("4321#"), "pin r1 4321"},
			step{8 * s, pinOK(true), "join r1"},
			step{8 * s, joined(false, false), "play! joining"},
			step{10 * s, done(), ""},
		)},
		{"first participant", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", false), "join r1"},
			step{5 * s, joined(true, false), "play! first_participant"},
			step{7 * s, done(), ""},
		)},
		{"recording notice after joining", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", false), "join r1"},
			step{5 * s, joined(false, true), "play! joining"},
			step{7 * s, keys("*6"), ""}, // the notice cannot be skipped
			step{7 * s, done(), "play! recording_notice"},
			step{8 * s, keys("*6"), ""},
			step{9 * s, done(), ""},
			step{10 * s, keys("*6"), "mute on, play muted"},
		)},
		{"first participant and recording", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", false), "join r1"},
			step{5 * s, joined(true, true), "play! first_participant"},
			step{7 * s, done(), "play! recording_notice"},
			step{9 * s, done(), ""},
		)},
		{"recording starts while joining", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", false), "join r1"},
			step{5 * s, recStart(), ""},
			step{5 * s, joined(false, false), "play! joining"},
			step{7 * s, done(), "play! recording_notice"},
			step{9 * s, done(), ""},
		)},
		{"recording starts during the announcement", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", false), "join r1"},
			step{5 * s, joined(false, false), "play! joining"},
			step{6 * s, recStart(), ""},
			step{6 * s, recStart(), ""}, // once is enough
			step{7 * s, done(), "play! recording_notice"},
			step{9 * s, done(), ""},
		)},
		{"recording starts in the call", nil, inCall(
			step{10 * s, keys("*6"), "mute on, play muted"},
			step{11 * s, recStart(), "stop, play! recording_notice"},
			step{12 * s, keys("*6"), ""},
			step{13 * s, done(), ""},
			step{14 * s, keys("*6"), "mute off, play unmuted"},
		)},
		{"wrong number three times", nil, withOpening(
			step{5 * s, keys("1#"), "lookup 1"},
			step{5 * s, notFound(), "play wrong_number"},
			step{6 * s, done(), "play enter_number"},
			step{8 * s, done(), ""},
			step{9 * s, keys("2#"), "lookup 2"},
			step{9 * s, notFound(), "play wrong_number"},
			step{10 * s, done(), "play enter_number"},
			step{12 * s, done(), ""},
			step{13 * s, keys("3#"), "lookup 3"},
			step{13 * s, notFound(), "play! wrong_number"},
			step{14 * s, keys("1234#"), ""},
			step{14 * s, done(), "play! goodbye"},
			step{15 * s, done(), "hangup number-failed"},
			step{16 * s, keys("1234#"), ""},
			step{30 * s, tick(), ""},
			step{30 * s, done(), ""},
			step{30 * s, found("r1", false), ""},
			step{30 * s, deadline(0, false), ""},
		)},
		{"wrong PIN twice, then right", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", true), "play enter_pin"},
			step{7 * s, done(), ""},
			step{8 * s, keys("1111#"), "pin r1 1111"},
			step{8 * s, pinOK(false), "play wrong_pin"},
			step{9 * s, done(), "play enter_pin"},
			step{11 * s, done(), ""},
			step{12 * s, keys("2222#"), "pin r1 2222"},
			step{12 * s, pinOK(false), "play wrong_pin"},
			step{13 * s, done(), "play enter_pin"},
			step{15 * s, done(), ""},
			step{16 * s, keys("4321#"), "pin r1 4321"},
			step{16 * s, pinOK(true), "join r1"},
		)},
		{"wrong PIN three times", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", true), "play enter_pin"},
			step{6 * s, keys("1#"), "stop, pin r1 1"},
			step{6 * s, pinOK(false), "play wrong_pin"},
			step{6 * s, keys("2#"), "stop, pin r1 2"},
			step{6 * s, pinOK(false), "play wrong_pin"},
			step{6 * s, keys("3#"), "stop, pin r1 3"},
			step{6 * s, pinOK(false), "play! wrong_pin"},
			step{7 * s, done(), "play! goodbye"},
			step{8 * s, done(), "hangup pin-failed"},
		)},
		{"number failures do not count against the PIN", nil, withOpening(
			step{5 * s, keys("1#"), "lookup 1"},
			step{5 * s, notFound(), "play wrong_number"},
			step{5 * s, keys("2#"), "stop, lookup 2"},
			step{5 * s, notFound(), "play wrong_number"},
			step{5 * s, keys("1234#"), "stop, lookup 1234"},
			step{5 * s, found("r1", true), "play enter_pin"},
			step{6 * s, keys("1#"), "stop, pin r1 1"},
			step{6 * s, pinOK(false), "play wrong_pin"},
			step{6 * s, keys("2#"), "stop, pin r1 2"},
			step{6 * s, pinOK(false), "play wrong_pin"},
			step{6 * s, keys("4321#"), "stop, pin r1 4321"},
			step{6 * s, pinOK(true), "join r1"},
		)},
		{"first-digit timeout at exactly 10 s, three times", nil, withOpening(
			step{14*s - 1, tick(), ""},
			step{14 * s, tick(), "play enter_number"},
			step{14 * s, deadline(0, false), ""},
			step{16 * s, done(), ""},
			step{26*s - 1, tick(), ""},
			step{26 * s, tick(), "play enter_number"},
			step{28 * s, done(), ""},
			step{38 * s, tick(), "play! goodbye"},
			step{38 * s, keys("1"), ""},
			step{39 * s, done(), "hangup number-failed"},
		)},
		{"inter-digit timeout at exactly 5 s", nil, withOpening(
			step{5 * s, keys("12"), ""},
			step{9 * s, keys("3"), ""},
			step{9 * s, deadline(14*s, true), ""},
			step{14*s - 1, tick(), ""},
			step{14 * s, tick(), "play enter_number"},
			step{15 * s, keys("45#"), "stop, lookup 45"}, // 123 was forgotten
		)},
		{"a digit 1 ns before the deadline still counts", nil, withOpening(
			step{14*s - 1, keys("5"), ""},
			step{15 * s, keys("#"), "lookup 5"},
		)},
		{"a digit at the deadline comes after the timeout", nil, withOpening(
			step{14 * s, keys("5"), "play enter_number, stop"},
			step{15 * s, keys("#"), "lookup 5"},
		)},
		{"PIN timeouts", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", true), "play enter_pin"},
			step{7 * s, done(), ""},
			step{17 * s, tick(), "play enter_pin"},
			step{19 * s, done(), ""},
			step{20 * s, keys("4"), ""},
			step{25 * s, tick(), "play enter_pin"},
			step{27 * s, done(), ""},
			step{37 * s, tick(), "play! goodbye"},
			step{38 * s, done(), "hangup pin-failed"},
		)},
		{"digits during the welcome count as the number", nil, []step{
			{0, start(), "play welcome"},
			{1 * s, keys("12"), "stop"},
			{2 * s, done(), ""}, // the stopped welcome's end is stale
			{2 * s, deadline(6*s, true), ""},
			{3 * s, keys("3#"), "lookup 123"},
		}},
		{"digits during the retry prompt count", nil, withOpening(
			step{5 * s, keys("9#"), "lookup 9"},
			step{5 * s, notFound(), "play wrong_number"},
			step{6 * s, keys("1"), "stop"},
			step{6 * s, keys("234#"), "lookup 1234"},
		)},
		{"digits while waiting for the lookup are ignored", nil, withOpening(
			step{5 * s, keys("1#"), "lookup 1"},
			step{5 * s, keys("99#"), ""},
			step{6 * s, notFound(), "play wrong_number"},
		)},
		{"star clears the entry and restarts the first-digit timeout", nil, withOpening(
			step{5 * s, keys("99"), ""},
			step{6 * s, keys("*"), ""},
			step{6 * s, deadline(16*s, true), ""},
			step{7 * s, keys("12#"), "lookup 12"},
		)},
		{"star during a prompt stops it and clears", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", true), "play enter_pin"},
			step{6 * s, keys("77*"), "stop"},
			step{7 * s, keys("4321#"), "pin r1 4321"},
		)},
		{"15 digits are allowed", nil, withOpening(
			step{5 * s, keys("123456789012345#"), "lookup 123456789012345"},
		)},
		{"16 digits are wrong", nil, withOpening(
			step{5 * s, keys("1234567890123456#"), "play wrong_number"},
		)},
		{"a much longer entry counts once", nil, withOpening(
			step{5 * s, keys("1234567890123456"), ""},
			step{5 * s, keys("7890#"), "play wrong_number"},
			step{6 * s, done(), "play enter_number"},
		)},
		{"letters make the entry wrong", nil, withOpening(
			step{5 * s, keys("12A4#"), "play wrong_number"},
		)},
		{"an empty entry is wrong", nil, withOpening(
			step{5 * s, keys("#"), "play wrong_number"},
			step{5 * s, keys("#"), "stop, play wrong_number"},
			step{5 * s, staleDone(), ""},
			step{6 * s, done(), "play enter_number"},
			step{7 * s, keys("#"), "stop, play! wrong_number"},
			step{8 * s, done(), "play! goodbye"},
		)},
		{"*6 toggles mute twice", nil, inCall(
			step{10 * s, keys("*6"), "mute on, play muted"},
			step{12 * s, done(), ""},
			step{13 * s, keys("*6"), "mute off, play unmuted"},
			step{13 * s, keys("*6"), "stop, mute on, play muted"},
		)},
		{"*6 with confirmation tones", []IVROption{WithMuteTone(true)}, inCall(
			step{10 * s, keys("*6"), "mute on, tone on"},
			step{10 * s, done(), ""},
			step{11 * s, keys("*6"), "mute off, tone off"},
		)},
		{"a lone star waits 2 s", nil, inCall(
			step{10 * s, keys("*"), ""},
			step{10 * s, deadline(12*s, true), ""},
			step{12*s - 1, keys("6"), "mute on, play muted"},
			step{13 * s, done(), ""},
			step{20 * s, keys("*"), ""},
			step{22 * s, keys("6"), ""},
			step{23 * s, keys("*"), ""},
			step{25 * s, tick(), ""},
			step{25 * s, deadline(0, false), ""},
			step{25 * s, keys("6"), ""},
		)},
		{"other sequences are ignored", nil, inCall(
			step{10 * s, keys("6"), ""},
			step{10 * s, keys("*5"), ""},
			step{10 * s, keys("#6"), ""},
			step{10 * s, keys("*#6"), ""},
			step{10 * s, keys("123#"), ""},
			step{10 * s, keys("**6"), "mute on, play muted"},
		)},
		{"operator mute is taken into account", nil, inCall(
			step{10 * s, func(r *ivrRun, _ time.Time) []Action { r.m.SetMuted(true); return nil }, ""},
			step{10 * s, keys("*6"), "mute off, play unmuted"},
		)},
		{"lookup failure", nil, withOpening(
			step{5 * s, keys("1#"), "lookup 1"},
			step{5 * s, lookupErr(), "play! error"},
			step{7 * s, done(), "play! goodbye"},
			step{8 * s, done(), "hangup error"},
		)},
		{"PIN check failure", nil, withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", true), "play enter_pin"},
			step{6 * s, keys("1#"), "stop, pin r1 1"},
			step{6 * s, pinErr(), "play! error"},
		)},
		{"lookup never answered", nil, withOpening(
			step{5 * s, keys("1#"), "lookup 1"},
			step{5 * s, deadline(15*s, true), ""},
			step{15 * s, tick(), "play! error"},
			step{15 * s, found("r1", false), ""},
			step{16 * s, done(), "play! goodbye"},
		)},
		{"join never answered", nil, withOpening(
			step{5 * s, keys("1#"), "lookup 1"},
			step{5 * s, found("r1", false), "join r1"},
			step{15 * s, joined(false, false), "play! error"},
		)},
		{"stale results are ignored", nil, withOpening(
			step{5 * s, found("r1", false), ""},
			step{5 * s, pinOK(true), ""},
			step{5 * s, joined(false, false), ""},
			step{5 * s, left(room.ErrRoomClosed), ""},
			step{5 * s, keys("1#"), "lookup 1"},
			step{5 * s, pinOK(true), ""},
			step{5 * s, joined(true, true), ""},
		)},
		{"fixed room without PIN joins at once", []IVROption{WithFixedRoom("r9", false)}, []step{
			{0, start(), "join r9"},
			{0, start(), ""},
			{1 * s, joined(false, true), "play! joining"},
			{2 * s, done(), "play! recording_notice"},
		}},
		{"fixed room with PIN asks for it", []IVROption{WithFixedRoom("r9", true)}, []step{
			{0, start(), "play welcome"},
			{1 * s, done(), "play enter_pin"},
			{2 * s, keys("55#"), "stop, pin r9 55"},
			{2 * s, pinOK(true), "join r9"},
		}},
		{"custom attempts and timeouts", []IVROption{WithAttempts(1), WithDigitTimeouts(3*s, 1*s)}, withOpening(
			step{5 * s, keys("1"), ""},
			step{6 * s, tick(), "play! goodbye"},
		)},
		{"events before Start are ignored", nil, []step{
			{0, keys("1#"), ""},
			{0, tick(), ""},
			{0, deadline(0, false), ""},
			{0, start(), "play welcome"},
		}},
		{"call ended by the caller", nil, withOpening(
			step{5 * s, keys("12"), ""},
			step{5 * s, callEnded(), ""},
			step{5 * s, deadline(0, false), ""},
			step{20 * s, tick(), ""},
			step{20 * s, keys("3#"), ""},
		)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, NewIVR(tc.opts...), tc.steps)
		})
	}
}

// TestIVRJoinErrors: the room's errors, however wrapped, map to the prompt
// the caller hears before the hang-up (the SIP error mapping of an
// answered call).
func TestIVRJoinErrors(t *testing.T) {
	tests := []struct {
		err    error
		prompt string
		reason string
	}{
		{room.ErrRoomFull, "room_full", "room-full"},
		{fmt.Errorf("join r1: %w", room.ErrRoomFull), "room_full", "room-full"},
		{room.ErrRoomClosed, "room_closed", "room-closed"},
		{room.ErrNotFound, "room_closed", "room-closed"},
		{room.ErrRoomLocked, "room_closed", "room-closed"},
		{room.ErrManagerClosed, "error", "error"},
		{errors.New("link to owner node lost"), "error", "error"},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			runSteps(t, NewIVR(), withOpening(
				step{5 * s, keys("1234#"), "lookup 1234"},
				step{5 * s, found("r1", false), "join r1"},
				step{5 * s, joinErr(tc.err), "play! " + tc.prompt},
				step{6 * s, keys("*6"), ""},
				step{7 * s, done(), "play! goodbye"},
				step{8 * s, done(), "hangup " + tc.reason},
			))
		})
	}
}

// TestIVRLeft: how the room letting go of the caller ends the call.
func TestIVRLeft(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"room closed", inCall(
			step{10 * s, left(room.ErrRoomClosed), "play! room_closed"},
			step{11 * s, keys("*6"), ""},
			step{12 * s, done(), "play! goodbye"},
			step{13 * s, done(), "hangup room-closed"},
		)},
		{"room closed while a confirmation plays", inCall(
			step{10 * s, keys("*6"), "mute on, play muted"},
			step{10 * s, left(fmt.Errorf("tick: %w", room.ErrRoomClosed)), "stop, play! room_closed"},
		)},
		{"removed by an operator", inCall(
			step{10 * s, left(room.ErrParticipantRemoved), "play! goodbye"},
			step{11 * s, done(), "hangup removed"},
		)},
		{"encoder failure", inCall(
			step{10 * s, left(errors.New("opus: bad state")), "play! error"},
		)},
		{"own leave ends quietly", inCall(
			step{10 * s, left(nil), ""},
			step{11 * s, keys("*6"), ""},
			step{11 * s, left(room.ErrRoomClosed), ""},
		)},
		{"closed during the announcement", withOpening(
			step{5 * s, keys("1234#"), "lookup 1234"},
			step{5 * s, found("r1", false), "join r1"},
			step{5 * s, joined(false, true), "play! joining"},
			step{6 * s, left(room.ErrRoomClosed), "stop, play! room_closed"},
			step{7 * s, done(), "play! goodbye"},
		)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, NewIVR(), tc.steps)
		})
	}
}

// TestIVRForgetsPIN: the PIN leaves the IVR in ActCheckPIN and nowhere
// else: the entry buffer is zeroed when the action is emitted, and the
// action slice no longer holds it after the next event.
func TestIVRForgetsPIN(t *testing.T) {
	m := NewIVR()
	r := &ivrRun{m: m}
	for _, st := range withOpening(step{5 * s, keys("1234#"), "lookup 1234"}, step{5 * s, found("r1", true), "play enter_pin"}) {
		r.record(st.ev(r, t0.Add(st.at)))
	}
	acts := r.record(keys("987654#")(r, t0.Add(6*s)))
	require.Equal(t, "stop, pin r1 987654", acts)
	require.Equal(t, [maxDigitsLimit]byte{}, m.entry)
	require.Zero(t, m.n)

	m.PINResult(false, nil, t0.Add(6*s))
	for _, a := range m.out[:cap(m.out)] {
		require.Empty(t, a.PIN)
	}
}

// TestActionLogMasksPIN: logging an action (as a whole, or with %v) never
// shows the PIN.
func TestActionLogMasksPIN(t *testing.T) {
	a := Action{Kind: ActCheckPIN, Room: "r1", PIN: "987654"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("ivr", "action", a)
	require.NotContains(t, buf.String(), "987654")
	require.Contains(t, buf.String(), "check-pin(r1, pin=***)")
	require.NotContains(t, fmt.Sprint(a), "987654")
	require.NotContains(t, fmt.Sprintf("%v %s", a, a), "987654")
}
