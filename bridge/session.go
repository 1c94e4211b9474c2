package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
)

// Directory answers the IVR's questions about conference numbers and PINs.
// The wiring implements it from the configured rooms; it keeps the PINs, so
// the session never sees one except the caller's entry.
type Directory interface {
	// Lookup maps a conference number to its room and says whether the
	// room asks for a PIN; ok is false for an unknown number.
	Lookup(number string) (id room.ID, needsPIN bool, ok bool)
	// CheckPIN reports whether pin opens room id. Implementations must
	// compare in constant time (DESIGN.md decision 8).
	CheckPIN(id room.ID, pin string) bool
}

// Rooms is where callers join: the node's room.Manager, or in a cluster
// one that puts a caller whose room another node hosts into a room linked
// to that node.
type Rooms interface {
	// Join adds p to room id (see room.Manager.Join).
	Join(id room.ID, p room.Participant) (*room.Room, error)
	// Admits reports whether a participant could join room id now (see
	// room.Manager.Admits).
	Admits(id room.ID) error
}

// SessionDeps is what RunCall needs from the gateway, passed in rather
// than reached for globally so tests can supply fakes.
type SessionDeps struct {
	// Prompts are the loaded prompts.
	Prompts *Prompts
	// Lang is the prompt language.
	Lang Lang
	// Rooms is where callers join.
	Rooms Rooms
	// Directory resolves numbers and PINs.
	Directory Directory
	// PINLockouts, when set, counts wrong PINs across calls; a locked-out
	// caller's PIN is treated as wrong (it learns nothing from the
	// answer) and not even compared.
	PINLockouts PINLockouts
	// RoomPINLockouts, when set, counts wrong PINs per room over all
	// callers (keyed by room ID; the join page counts into the same), so
	// guessing spread over many callers locks the room's PIN entry: while
	// it is locked every PIN for the room, the right one too, is treated
	// as wrong and not compared.
	RoomPINLockouts PINLockouts
	// Now is the clock the IVR's timers run on; nil means time.Now.
	Now func() time.Time
	// Log receives the session's events; nil discards them.
	Log *slog.Logger
	// IVROptions configure the call's IVR (attempts, timeouts).
	IVROptions []IVROption
	// OnCall, when set, hears of each answered call's start and end
	// (CallHandler), for webhooks. It is called on the call's goroutine
	// and must not block.
	OnCall func(CallEvent)
}

// CallEvent reports that an answered call started or ended.
type CallEvent struct {
	// Ended is false for the start (the answer), true for the end.
	Ended bool
	// Info describes the call; its numbers are personal data (mask them).
	Info sip.CallInfo
	// Room is, at the start, the room a dispatch rule leads the call to
	// (empty when the voice menu asks for it); at the end, the last room
	// the caller was in (empty if none).
	Room room.ID
	// Time is when it happened; Duration, at the end, how long the call
	// lasted since the answer.
	Time     time.Time
	Duration time.Duration
}

// sessionHangupTimeout bounds the BYE of ActHangUp and of the session's
// end, so a peer that never answers cannot hold the session.
const sessionHangupTimeout = 5 * time.Second

// session is the state of one RunCall; only its goroutine touches it.
type session struct {
	call   *sip.Call
	deps   SessionDeps
	ivr    *IVR
	player *Player

	enc     media.Encoder
	rs      *media.Resampler // nil for 48 kHz calls
	frame   media.Frame
	pcm     []int16 // the frame at the call's rate, to encode
	rx      []int16 // the caller's audio, read only for in-band DTMF
	payload []byte
	tick    uint64

	queue []Action // actions still to execute, in order

	part   *PhoneParticipant
	room   *room.Room
	joined room.ID        // the last room the caller joined
	events *room.EventSub // the room's events while the caller is in it
	// left gets the room's reason when it lets go of the caller
	// (PhoneParticipant's Detached); buffered, it never blocks the room.
	left   chan error
	hungUp bool
}

// RunCall runs one answered call through the IVR into a room: it feeds the
// caller's DTMF and the IVR's timers into the IVR, executes its actions
// and, until the caller is in a room, sends the prompts (or silence) every
// 20 ms in the call's codec. Once joined, the room sends the mix, and the
// prompts the IVR plays after the join (joining, recording notice, the *6
// confirmation) over it (see room.Announcer); the room's events reach the
// IVR: an operator's mute or unmute of the caller (IVR.SetMuted, so *6
// toggles from the right state) and a recording that starts
// (IVR.RecordingStarted). When the room lets go of the caller (it closed,
// an operator removed the caller) the IVR says why, as before the join,
// and hangs up. RunCall returns nil when the call ends, the IVR hangs up
// or ctx ends (then the call is hung up; the UA cancels the handler's ctx
// when the caller hangs up, so that is a normal end too); it leaves the
// room and stops everything it started. An error means the call could not
// be run at all (its codec has no encoder) and was hung up.
func RunCall(ctx context.Context, call *sip.Call, deps SessionDeps) error {
	_, err := runCall(ctx, call, deps)
	return err
}

// runCall is RunCall, also returning the last room the caller joined.
func runCall(ctx context.Context, call *sip.Call, deps SessionDeps) (room.ID, error) {
	s, err := newSession(call, deps)
	if err != nil {
		hctx, cancel := context.WithTimeout(context.Background(), sessionHangupTimeout)
		defer cancel()
		_ = call.Hangup(hctx)
		return "", err
	}
	defer s.close()
	err = s.run(ctx)
	return s.joined, err
}

func newSession(call *sip.Call, deps SessionDeps) (*session, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	codec := call.Codec()
	format, err := callFormat(codec)
	if err != nil {
		return nil, err
	}
	enc, err := room.NewEncoder(format)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCallCodec, codec, err)
	}
	s := &session{
		call:    call,
		deps:    deps,
		ivr:     NewIVR(deps.IVROptions...),
		player:  NewPlayer(DefaultPromptGap),
		enc:     enc,
		pcm:     make([]int16, media.SamplesPerFrame(enc.Rate())),
		rx:      make([]int16, media.SamplesPerFrame(codec.SampleRate)),
		payload: make([]byte, 1500),
		queue:   make([]Action, 0, 16),
		left:    make(chan error, 1),
	}
	if enc.Rate() != media.Rate48k {
		if s.rs, err = media.NewResampler(media.Rate48k, enc.Rate()); err != nil {
			_ = enc.Close()
			return nil, fmt.Errorf("%w: %s: %w", ErrCallCodec, codec, err)
		}
	}
	return s, nil
}

// run is the session's loop: before the join (and after the room let go)
// a 20 ms tick drives timers, prompt ends and audio; in a room the IVR's
// deadline and the end of a prompt wake it. DTMF, room events and the
// call's end arrive at any time.
func (s *session) run(ctx context.Context) error {
	ticker := time.NewTicker(media.FrameDuration)
	defer ticker.Stop()
	ticking := true
	deadline := time.NewTimer(time.Hour)
	deadline.Stop()
	defer deadline.Stop()
	s.execute(s.ivr.Start(s.deps.Now()))
	for !s.hungUp {
		// In a room the room sends the caller's audio and pulls the
		// prompts: the session has no tick, only a timer for the IVR's
		// deadline (a * waiting for its digit) and the player's word
		// that a prompt ended. A tick per caller, even a slow one, was
		// a wake-up per call that did nothing almost every time.
		var tick <-chan time.Time
		var ended <-chan struct{}
		switch inRoom := s.room != nil; {
		case inRoom && ticking:
			ticker.Stop()
			ticking = false
		case !inRoom && !ticking:
			ticker.Reset(media.FrameDuration)
			ticking = true
		}
		if ticking {
			tick = ticker.C
		} else {
			ended = s.player.EndedC()
			if dl, ok := s.ivr.Deadline(); ok {
				deadline.Reset(max(dl.Sub(s.deps.Now()), 0))
			} else {
				deadline.Stop()
			}
		}
		select {
		case <-ctx.Done():
			s.ivr.CallEnded()
			s.settle()
			return nil
		case <-s.call.Done():
			s.ivr.CallEnded()
			return nil
		case d := <-s.call.DTMF():
			s.execute(s.ivr.Digit(d.Digit, s.deps.Now()))
		case ev, ok := <-s.eventsC():
			s.onEvent(ev, ok)
		case err := <-s.left:
			s.onLeft(err)
		case <-tick:
			s.onTick()
		case <-deadline.C:
			s.onTick()
		case <-ended:
			s.onTick()
		}
	}
	return nil
}

// onLeft handles the room letting go of the caller (closed, kicked, its
// encoder failed): the IVR says why (room_closed, goodbye, error) and
// hangs up. Its prompts go out as before the join, numbered after the
// room's last frame.
func (s *session) onLeft(err error) {
	if s.room == nil {
		return
	}
	s.room = nil
	if s.events != nil {
		s.events.Close()
		s.events = nil
	}
	s.tick = max(s.tick, s.part.LastFrame())
	s.deps.Log.Info("session: left the room", "call", string(s.call.ID()), "reason", err)
	s.execute(s.ivr.Left(err, s.deps.Now()))
}

// eventsC is the room's event channel while the caller is in a room, nil
// (never ready) otherwise.
func (s *session) eventsC() <-chan room.Event {
	if s.events == nil {
		return nil
	}
	return s.events.C()
}

// onEvent hands the IVR what it must know of the room: the caller's mute
// state as an operator set it, and a recording that started. ok is false
// when the room ended the subscription (it closed; the participant's
// Detached tells onLeft).
func (s *session) onEvent(ev room.Event, ok bool) {
	if !ok {
		s.events = nil
		return
	}
	switch ev.Type {
	case room.EventMuted, room.EventUnmuted:
		// Our own ActMute comes back here too, saying what the IVR
		// already knows.
		if s.part != nil && ev.Participant == s.part.Info().ID {
			s.ivr.SetMuted(ev.Type == room.EventMuted)
		}
	case room.EventRecordingStarted:
		s.execute(s.ivr.RecordingStarted(s.deps.Now()))
	}
}

// endGrace is how long a session whose ctx ended waits for the call to
// end by itself: the UA cancels the handler's ctx just before it ends a
// call (the caller's BYE), and a BYE of ours would cross it.
const endGrace = 100 * time.Millisecond

// settle waits up to endGrace for the call to end; close hangs up a call
// that is still up after it.
func (s *session) settle() {
	t := time.NewTimer(endGrace)
	defer t.Stop()
	select {
	case <-s.call.Done():
	case <-t.C:
	}
}

// onTick fires due timers, reports a finished prompt and sends a frame
// while the caller is not in a room.
func (s *session) onTick() {
	now := s.deps.Now()
	if dl, ok := s.ivr.Deadline(); ok && !now.Before(dl) {
		s.execute(s.ivr.Tick(now))
	}
	if s.hungUp {
		return
	}
	// In a room, the room pulls the prompts (PhoneParticipant.Announcement).
	if s.room == nil && !s.player.Next(&s.frame) {
		clear(s.frame[:])
	}
	if seq, ok := s.player.Ended(); ok {
		s.execute(s.ivr.PromptDone(seq, now))
	}
	s.tick++
	if s.room != nil || s.hungUp {
		return
	}
	// The call detects in-band DTMF (G.711 without telephone-event) on
	// the frames it plays out, so they are read though nobody listens.
	s.call.ReadFrame(s.rx)
	s.send()
}

// send encodes the frame for the call and queues it.
func (s *session) send() {
	pcm := s.frame[:]
	if s.rs != nil {
		n, err := s.rs.Process(s.frame[:], s.pcm)
		if err != nil {
			s.deps.Log.Warn("session: resample", "err", err)
			return
		}
		clear(s.pcm[n:])
		pcm = s.pcm
	}
	n, err := s.enc.Encode(pcm, s.payload)
	if err != nil {
		s.deps.Log.Warn("session: encode", "err", err)
		return
	}
	s.call.WriteAudio(s.payload[:n], s.tick)
}

// execute runs acts and every action their synchronous answers produce.
// The IVR reuses its result slice, so acts are copied into the queue
// before the IVR is called again.
func (s *session) execute(acts []Action) {
	s.queue = append(s.queue, acts...)
	for len(s.queue) > 0 && !s.hungUp {
		a := s.queue[0]
		s.queue = s.queue[:copy(s.queue, s.queue[1:])]
		s.queue = append(s.queue, s.do(a)...)
	}
	s.queue = s.queue[:0]
}

// do executes one action and returns the IVR's answer to it, if any.
func (s *session) do(a Action) []Action {
	now := s.deps.Now()
	s.deps.Log.Debug("session: action", "call", string(s.call.ID()), "action", a)
	switch a.Kind {
	case ActPlay:
		s.player.Start(s.deps.Prompts.Get48k(s.deps.Lang, a.Prompt), a.Seq)
	case ActTone:
		s.player.Start(ConfirmTone(a.Muted), a.Seq)
	case ActStopPrompt:
		s.player.Stop()
	case ActLookup:
		id, needsPIN, ok := s.deps.Directory.Lookup(a.Number)
		return s.ivr.NumberResult(LookupResult{Found: ok, Room: id, NeedsPIN: needsPIN}, now)
	case ActCheckPIN:
		return s.ivr.PINResult(s.checkPIN(a.Room, a.PIN), nil, now)
	case ActJoin:
		info, err := s.join(a.Room)
		return s.ivr.JoinResult(info, err, now)
	case ActMute:
		if s.room != nil && s.part != nil {
			if err := s.room.Mute(s.part.Info().ID, a.Muted); err != nil {
				s.deps.Log.Warn("session: mute", "err", err)
			}
		}
	case ActHangUp:
		s.deps.Log.Info("session: hang up", "call", string(s.call.ID()), "reason", a.Reason.String())
		s.hangup()
	}
	return nil
}

// join makes the caller a participant of room id, hearing the session's
// prompts over the room, its frames numbered on from the IVR's.
func (s *session) join(id room.ID) (JoinInfo, error) {
	p, err := NewPhoneParticipant(s.call, room.ParticipantID(s.call.ID()), maskedName(s.call),
		WithPrompts(s.player), WithFirstFrame(s.tick+1), WithDetached(s.detached))
	if err != nil {
		return JoinInfo{}, err
	}
	r, err := s.deps.Rooms.Join(id, p)
	if err != nil {
		_ = p.Close()
		return JoinInfo{}, err
	}
	s.part, s.room, s.joined = p, r, id
	// Subscribe before asking for the recording state, so a recording
	// that starts in between is seen one way or the other.
	s.events = r.SubscribeEvents(sessionEvents)
	s.deps.Log.Info("session: joined", "call", string(s.call.ID()), "room", string(id))
	return JoinInfo{First: r.Len() == 1, Recording: r.Recording()}, nil
}

// detached is the participant's WithDetached: it passes the room's reason
// to the session's goroutine (Detached is called once).
func (s *session) detached(err error) {
	select {
	case s.left <- err:
	default:
	}
}

// sessionEvents buffers the room's events for the session, which reads
// them between ticks; joins, leaves and speaking changes of a busy room
// come in bursts, and the few the session needs must not be dropped.
const sessionEvents = 64

// maskedName is the participant's shown name: the caller ID is personal
// data, so it is masked (sip.Number.String).
func maskedName(c *sip.Call) string {
	if n := c.Info().Caller; n != "" {
		return n.String()
	}
	return "caller"
}

// hangup sends BYE, bounded by sessionHangupTimeout.
func (s *session) hangup() {
	s.hungUp = true
	ctx, cancel := context.WithTimeout(context.Background(), sessionHangupTimeout)
	defer cancel()
	if err := s.call.Hangup(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		s.deps.Log.Debug("session: hangup", "err", err)
	}
}

// close leaves the room, hangs up a call still up and frees the codec.
func (s *session) close() {
	if s.events != nil {
		s.events.Close()
	}
	if s.room != nil {
		_ = s.room.Leave(s.part.Info().ID)
	}
	select {
	case <-s.call.Done():
	default:
		s.hangup()
	}
	if s.part != nil {
		_ = s.part.Close()
	}
	_ = s.enc.Close()
	if s.rs != nil {
		_ = s.rs.Close()
	}
}
