package bridge

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

// Fuzz input: byte 0 picks the options, then each pair (op, arg) is one
// event; arg's high nibble advances the clock (fuzzSteps), its low nibble
// is the event's parameter.
var fuzzSteps = [16]time.Duration{
	0, 1, time.Millisecond, 20 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2*time.Second - 1, 2 * time.Second, 3 * time.Second, 5*time.Second - 1, 5 * time.Second,
	9 * time.Second, 10*time.Second - 1, 10 * time.Second, 10*time.Second + 1, 31 * time.Second,
}

var (
	fuzzRooms    = [4]room.ID{"r0", "r1", "r2", "r3"}
	fuzzJoinErrs = [4]error{nil, room.ErrRoomFull, room.ErrRoomClosed, errors.New("boom")}
	fuzzLeftErrs = [4]error{nil, room.ErrRoomClosed, room.ErrParticipantRemoved, errors.New("boom")}
)

// ivrModel is what the fuzz harness knows from outside the IVR, and the
// rules it checks every action against.
type ivrModel struct {
	cfg        ivrConfig
	hungUp     bool
	joined     bool     // a Join was emitted
	inCall     bool     // a JoinResult without error was accepted
	pinRoom    room.ID  // room a found-with-PIN lookup named
	checkRoom  room.ID  // room of the last CheckPIN
	playing    uint64   // Seq of the prompt playing, 0 for none
	lastSeq    uint64   // highest Seq seen
	lastPrompt PromptID // last prompt started

	awaitingLookup bool // a Lookup was emitted and nothing has happened since
	counts         map[string]int
}

// event tells check which input produced the actions, to judge Joins.
type event struct {
	kind     string // "start", "number", "pin", "done", other
	lookup   LookupResult
	pinOK    bool
	pinErr   error
	doneSeq  uint64
	joinedOK bool
}

func (h *ivrModel) check(t *testing.T, m *IVR, ev event, acts []Action) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("after %s: %s (actions %v)", ev.kind, fmt.Sprintf(format, args...), acts)
	}
	if h.hungUp && len(acts) > 0 {
		fail("actions after hang-up")
	}
	// Actions after a Lookup come from its result or from its timeout
	// (which plays the error prompt, never enter_pin).
	awaiting := h.awaitingLookup
	h.awaitingLookup = h.awaitingLookup && len(acts) == 0 && ev.kind != "number"
	if ev.kind == "done" && ev.doneSeq == h.playing && h.playing != 0 {
		h.playing = 0
	}
	for i, a := range acts {
		switch a.Kind {
		case ActPlay, ActTone:
			if a.Seq <= h.lastSeq {
				fail("seq %d not after %d", a.Seq, h.lastSeq)
			}
			if h.playing != 0 {
				fail("play while #%d still plays", h.playing)
			}
			if a.Kind == ActPlay && !slices.Contains(AllPrompts, a.Prompt) {
				fail("unknown prompt %q", a.Prompt)
			}
			if a.Kind == ActTone && !h.inCall {
				fail("tone outside the call")
			}
			h.playing, h.lastSeq = a.Seq, a.Seq
			h.lastPrompt = a.Prompt
			h.counts[string(a.Prompt)]++
			if a.Prompt == PromptEnterPIN && ev.kind == "number" && awaiting {
				if l := ev.lookup; !l.Found || !l.NeedsPIN || l.Err != nil {
					fail("PIN asked after lookup %+v", l)
				}
				h.pinRoom = ev.lookup.Room
			}
			if ev.joinedOK && (a.Prompt == PromptJoining || a.Prompt == PromptFirstParticipant) {
				h.inCall = true
			}
		case ActStopPrompt:
			if h.playing == 0 {
				fail("stop with nothing playing")
			}
			h.playing = 0
		case ActLookup:
			h.counts["lookup"]++
			h.awaitingLookup = true
			if h.cfg.fixedRoom != "" {
				fail("lookup for a fixed room")
			}
		case ActCheckPIN:
			h.counts["pin"]++
			want := h.pinRoom
			if h.cfg.fixedRoom != "" {
				want = h.cfg.fixedRoom
			}
			if want == "" || a.Room != want || a.PIN == "" {
				fail("check-pin for room %q, PIN step was for %q", a.Room, want)
			}
			h.checkRoom = a.Room
		case ActJoin:
			h.checkJoin(t, ev, a, fail)
		case ActMute:
			if !h.inCall {
				fail("mute outside the call")
			}
		case ActHangUp:
			if i != len(acts)-1 || ev.kind != "done" || h.lastPrompt != PromptGoodbye {
				fail("hang-up must follow the end of the goodbye prompt")
			}
			h.hungUp = true
		default:
			fail("unknown action %v", a)
		}
	}
	for _, k := range []string{"lookup", "pin", string(PromptWrongNumber), string(PromptWrongPIN),
		string(PromptEnterNumber), string(PromptEnterPIN)} {
		if h.counts[k] > h.cfg.attempts {
			fail("%d × %s, more than %d attempts", h.counts[k], k, h.cfg.attempts)
		}
	}
	if m.failures > h.cfg.attempts {
		fail("%d failures", m.failures)
	}
	// Liveness: outside the call, with nothing playing, the IVR must be
	// waiting for a timeout, or it would hold the line forever.
	if _, ok := m.Deadline(); !h.hungUp && !m.Done() && !h.inCall && h.playing == 0 && !ok {
		fail("stuck: nothing playing and no deadline in state %d", m.state)
	}
	if h.hungUp {
		if _, ok := m.Deadline(); ok {
			fail("deadline after hang-up")
		}
	}
}

// checkJoin: a Join is only the direct answer to a successful lookup of a
// room without PIN, a correct PIN for the room asked about, or Start for a
// fixed room without PIN; and it happens once.
func (h *ivrModel) checkJoin(t *testing.T, ev event, a Action, fail func(string, ...any)) {
	t.Helper()
	if h.joined {
		fail("second join")
	}
	h.joined = true
	switch ev.kind {
	case "number":
		l := ev.lookup
		if !l.Found || l.NeedsPIN || l.Err != nil || a.Room != l.Room {
			fail("join %s after lookup %+v", a.Room, l)
		}
	case "pin":
		if !ev.pinOK || ev.pinErr != nil || a.Room != h.checkRoom {
			fail("join %s after PIN result %t/%v for %s", a.Room, ev.pinOK, ev.pinErr, h.checkRoom)
		}
	case "start":
		if a.Room != h.cfg.fixedRoom || h.cfg.fixedNeedsPIN {
			fail("join %s at start", a.Room)
		}
	default:
		fail("join %s after %s", a.Room, ev.kind)
	}
}

// FuzzIVR drives the IVR with random event sequences and checks that it
// never panics, never joins without a successful lookup (and PIN when
// needed), never allows more than 3 attempts per step, always says
// goodbye before hanging up, never gets stuck, and does nothing after the
// hang-up. Seeds: testdata/fuzz/FuzzIVR and the flows below.
func FuzzIVR(f *testing.F) {
	// 0x00 options; pairs: (op, time<<4 | param). Ops: 0–2 digit,
	// 3 prompt done, 4 stale done, 5 tick, 6 number, 7 PIN, 8 join,
	// 9 left, 10 misc.
	f.Add([]byte{0x00, 3, 0x20, 3, 0x40, 0, 0x51, 0, 0x0b, 6, 0x05, 8, 0x03, 3, 0x20, 3, 0x20, 0, 0x5a, 0, 0x06})
	f.Add([]byte{0x00, 3, 0x20, 3, 0x40, 0, 0x01, 0, 0x0b, 6, 0x00, 3, 0x20, 3, 0x20, 0, 0x0b, 6, 0x00, 3, 0, 3, 0, 0, 0x0b, 6, 0, 3, 0, 3, 0})
	f.Add([]byte{0x00, 3, 0x20, 3, 0x40, 5, 0xd1, 3, 0x20, 5, 0xd1, 3, 0x20, 5, 0xd1, 3, 0x20, 0, 0x01})
	f.Add([]byte{0x00, 3, 0x20, 3, 0x40, 0, 0x01, 0, 0x0b, 6, 0x07, 3, 0x20, 0, 0x04, 0, 0x0b, 7, 0x01, 8, 0x03, 3, 0x20, 3, 0x20, 9, 0x51, 3, 0, 3, 0})
	f.Add([]byte{0x02, 8, 0x12, 3, 0x20, 10, 0x10, 9, 0x02, 3, 0x20})
	f.Add([]byte{0x06, 0, 0x01, 0, 0x0b, 7, 0x01, 8, 0x00, 3, 0x20, 0, 0x0a, 0, 0x06, 3, 0, 0, 0x0a, 0, 0x76, 0, 0x0a, 0, 0xf6})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		var opts []IVROption
		if data[0]&1 != 0 {
			opts = append(opts, WithMuteTone(true))
		}
		if data[0]&2 != 0 {
			opts = append(opts, WithFixedRoom("fixed", data[0]&4 != 0))
		}
		m := NewIVR(opts...)
		h := &ivrModel{cfg: m.cfg, counts: map[string]int{}}
		now := t0
		h.check(t, m, event{kind: "start"}, m.Start(now))
		for i := 1; i+1 < len(data); i += 2 {
			op, arg := data[i]%11, data[i+1]
			now = now.Add(fuzzSteps[arg>>4])
			ev, acts, at, ended := h.apply(m, op, arg&0x0f, now)
			now = at
			h.check(t, m, ev, acts)
			h.hungUp = h.hungUp || ended
		}
	})
}

// apply feeds the IVR event op with parameter p at now (a tick may move
// now to the deadline) and returns the event, its actions, the time, and
// whether the IVR ended without a hang-up action (own leave, call ended).
func (h *ivrModel) apply(m *IVR, op, p byte, now time.Time) (ev event, acts []Action, at time.Time, ended bool) {
	switch op {
	case 0, 1, 2:
		ev.kind = "digit"
		acts = m.Digit(media.Digit(p), now)
	case 3, 4:
		ev.kind, ev.doneSeq = "done", h.playing
		if op == 4 {
			ev.doneSeq = h.lastSeq - uint64(p)
		}
		acts = m.PromptDone(ev.doneSeq, now)
	case 5:
		ev.kind = "tick"
		if d, ok := m.Deadline(); ok && p&1 != 0 && d.After(now) {
			now = d
			if p&2 != 0 {
				now = d.Add(-1)
			}
		}
		acts = m.Tick(now)
	case 6:
		ev.kind = "number"
		ev.lookup = LookupResult{Found: p&1 != 0, NeedsPIN: p&2 != 0, Room: fuzzRooms[p>>2]}
		if p == 15 {
			ev.lookup.Err = errors.New("down")
		}
		acts = m.NumberResult(ev.lookup, now)
	case 7:
		ev.kind, ev.pinOK = "pin", p&1 != 0
		if p&6 == 6 {
			ev.pinErr = errors.New("down")
		}
		acts = m.PINResult(ev.pinOK, ev.pinErr, now)
	case 8:
		ev.kind = "join"
		err := fuzzJoinErrs[p>>2]
		ev.joinedOK = err == nil
		acts = m.JoinResult(JoinInfo{First: p&1 != 0, Recording: p&2 != 0}, err, now)
	case 9:
		ev.kind = "left"
		acts = m.Left(fuzzLeftErrs[p&3], now)
		ended = m.Done() // own leave: the IVR is done
	case 10:
		ev.kind = "misc"
		switch p % 4 {
		case 0:
			acts = m.RecordingStarted(now)
		case 1:
			m.SetMuted(p&4 != 0)
		case 2:
			acts = m.Tick(now)
		case 3:
			if p == 15 {
				m.CallEnded()
				ended = true
			}
		}
	}
	return ev, acts, now, ended
}
