package bridge

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fmtAction writes an action compactly for the tables below: "play x" for
// an interruptible prompt, "play! x" for one digits cannot stop. Unlike
// Action.String it shows the PIN, which is what the tests check.
func fmtAction(a Action) string {
	switch a.Kind {
	case ActPlay:
		if a.Interruptible {
			return "play " + string(a.Prompt)
		}
		return "play! " + string(a.Prompt)
	case ActTone:
		return fmt.Sprintf("tone %s", onOff(a.Muted))
	case ActStopPrompt:
		return "stop"
	case ActLookup:
		return "lookup " + a.Number
	case ActCheckPIN:
		return fmt.Sprintf("pin %s %s", a.Room, a.PIN)
	case ActJoin:
		return "join " + string(a.Room)
	case ActMute:
		return "mute " + onOff(a.Muted)
	case ActHangUp:
		return "hangup " + a.Reason.String()
	}
	return a.String()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// ivrRun drives an IVR and remembers the Seq of the last prompt, so
// tables can say "done" without knowing it.
type ivrRun struct {
	m   *IVR
	seq uint64
}

func (r *ivrRun) record(acts []Action) string {
	s := make([]string, len(acts))
	for i, a := range acts {
		if a.Kind == ActPlay || a.Kind == ActTone {
			r.seq = a.Seq
		}
		s[i] = fmtAction(a)
	}
	return strings.Join(s, ", ")
}

// ev is one input to the IVR at a time.
type ev func(r *ivrRun, now time.Time) []Action

func start() ev { return func(r *ivrRun, now time.Time) []Action { return r.m.Start(now) } }

// keys presses each key of s at the same instant.
func keys(s string) ev {
	return func(r *ivrRun, now time.Time) []Action {
		var all []Action
		for _, c := range s {
			d, err := media.ParseDigit(c)
			if err != nil {
				panic(err)
			}
			all = append(all, r.m.Digit(d, now)...)
		}
		return all
	}
}

func done() ev {
	return func(r *ivrRun, now time.Time) []Action { return r.m.PromptDone(r.seq, now) }
}

// staleDone reports the end of the prompt before the current one.
func staleDone() ev {
	return func(r *ivrRun, now time.Time) []Action { return r.m.PromptDone(r.seq-1, now) }
}

func tick() ev { return func(r *ivrRun, now time.Time) []Action { return r.m.Tick(now) } }

func found(id room.ID, needsPIN bool) ev {
	return func(r *ivrRun, now time.Time) []Action {
		return r.m.NumberResult(LookupResult{Found: true, Room: id, NeedsPIN: needsPIN}, now)
	}
}

func notFound() ev {
	return func(r *ivrRun, now time.Time) []Action { return r.m.NumberResult(LookupResult{}, now) }
}

func lookupErr() ev {
	return func(r *ivrRun, now time.Time) []Action {
		return r.m.NumberResult(LookupResult{Found: true, Err: errors.New("directory down")}, now)
	}
}

func pinOK(ok bool) ev {
	return func(r *ivrRun, now time.Time) []Action { return r.m.PINResult(ok, nil, now) }
}

func pinErr() ev {
	return func(r *ivrRun, now time.Time) []Action { return r.m.PINResult(false, errors.New("x"), now) }
}

func joined(first, recording bool) ev {
	return func(r *ivrRun, now time.Time) []Action {
		return r.m.JoinResult(JoinInfo{First: first, Recording: recording}, nil, now)
	}
}

func joinErr(err error) ev {
	return func(r *ivrRun, now time.Time) []Action { return r.m.JoinResult(JoinInfo{}, err, now) }
}

func left(err error) ev {
	return func(r *ivrRun, now time.Time) []Action { return r.m.Left(err, now) }
}

func recStart() ev {
	return func(r *ivrRun, now time.Time) []Action { return r.m.RecordingStarted(now) }
}

func callEnded() ev {
	return func(r *ivrRun, now time.Time) []Action { r.m.CallEnded(); return nil }
}

// deadline checks Deadline: at "" for none, else at t0+d.
func deadline(d time.Duration, set bool) ev {
	return func(r *ivrRun, now time.Time) []Action {
		at, ok := r.m.Deadline()
		if ok != set || (set && !at.Equal(t0.Add(d))) {
			return []Action{{Kind: ActionKind(99), Number: fmt.Sprintf("deadline %v %t", at.Sub(t0), ok)}}
		}
		return nil
	}
}

// step is one event at t0+at and the actions it must produce.
type step struct {
	at   time.Duration
	ev   ev
	want string
}

const s = time.Second

// enterNumber is the common opening: welcome, then enter_number played
// to its end at 4 s (the first-digit timeout runs to 14 s).
var enterNumber = []step{
	{0, start(), "play welcome"},
	{2 * s, done(), "play enter_number"},
	{4 * s, done(), ""},
}

// withOpening prepends the opening to steps.
func withOpening(steps ...step) []step { return append(append([]step{}, enterNumber...), steps...) }

func runSteps(t *testing.T, m *IVR, steps []step) {
	t.Helper()
	r := &ivrRun{m: m}
	for i, st := range steps {
		got := r.record(st.ev(r, t0.Add(st.at)))
		require.Equal(t, st.want, got, "step %d at %v", i, st.at)
	}
}
