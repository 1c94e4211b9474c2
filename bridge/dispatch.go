package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
)

// Rule says where calls to one dialed number go: a dispatch rule of the
// configuration (dialin.numbers).
type Rule struct {
	// Room is the room the caller joins without being asked for a
	// conference number; empty sends the caller to the IVR, which asks.
	Room room.ID
	// NeedsPIN makes the IVR ask for the PIN of a fixed Room before the
	// join. A number leading straight into a room replaces the conference
	// number, never the PIN: a room with a PIN keeps it whichever way a
	// caller reaches it (DESIGN.md decision 8, private by default).
	NeedsPIN bool
	// Lang is the language of the prompts; empty means the Dispatcher's
	// default.
	Lang Lang
}

// CatchAll is the dialed number of the rule that takes the calls to
// numbers no other rule names.
const CatchAll sip.Number = "*"

// Dispatcher maps the number a caller dialed (sip.CallInfo.Dialed: the
// Request-URI user, else the To user) to its Rule. Numbers are compared as
// they arrive, without normalisation: a carrier that sends +4930123 and
// one that sends 030123 need a rule each. It is read-only after
// NewDispatcher and safe for concurrent use.
type Dispatcher struct {
	lang  Lang
	rules map[sip.Number]Rule
}

// NewDispatcher returns a dispatcher for rules, keyed by dialed number
// (CatchAll for the rest), whose rules without a language get lang. With
// no rules at all every call goes to the IVR in lang: a node that has
// just one number needs no dispatch configuration.
func NewDispatcher(lang Lang, rules map[sip.Number]Rule) *Dispatcher {
	d := &Dispatcher{lang: lang, rules: make(map[sip.Number]Rule, len(rules))}
	for n, r := range rules {
		if r.Lang == "" {
			r.Lang = lang
		}
		d.rules[n] = r
	}
	return d
}

// Route returns the rule for a call to dialed: the number's own rule,
// else the CatchAll rule, else (when there are no rules at all) the IVR in
// the default language. A number no rule takes is ErrUnknownNumber: the
// call is refused with 404 Not Found before anything is answered.
func (d *Dispatcher) Route(dialed sip.Number) (Rule, error) {
	if len(d.rules) == 0 {
		return Rule{Lang: d.lang}, nil
	}
	if r, ok := d.rules[dialed]; ok && dialed != CatchAll {
		return r, nil
	}
	if r, ok := d.rules[CatchAll]; ok {
		return r, nil
	}
	return Rule{}, fmt.Errorf("%w: %v", ErrUnknownNumber, dialed) // Number masks itself
}

// CallHandler is the bridge's sip.Handler, the call flow of dial-in from
// the INVITE to the IVR:
//
//  1. the Dispatcher's rule for the dialed number, or 404 Not Found;
//  2. for a rule with a fixed room, the room's admission (room.Manager
//     Admits): 486 Busy Here when it is full, 403 Forbidden when it is
//     locked, 503 Service Unavailable with Retry-After while the node
//     shuts down; for the IVR the room is not known yet, and a full room
//     is a prompt after the answer (IVR.JoinResult);
//  3. 180 Ringing (RFC 3261 §21.1.2), then 200 OK (IncomingCall.Answer);
//  4. RunCall, in the rule's language and, for a fixed room, straight
//     into it (WithFixedRoom).
//
// Refusals go through Refusal, the bridge's one SIP error mapping. A
// source package sip's trunks reject (403) and an offer without a common
// codec (488) are refused by package sip before the handler runs; a UA
// that drains refuses with 503 by itself as well.
type CallHandler struct {
	dispatch atomic.Pointer[Dispatcher] // SetDispatcher replaces it
	deps     SessionDeps
	log      *slog.Logger
}

var _ sip.Handler = (*CallHandler)(nil)

// NewCallHandler returns the handler that dispatches calls with d and
// runs each as a session with deps (deps.Lang is replaced by the rule's
// language).
func NewCallHandler(d *Dispatcher, deps SessionDeps) *CallHandler {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	h := &CallHandler{deps: deps, log: deps.Log}
	h.dispatch.Store(d)
	return h
}

// SetDispatcher replaces the dispatch rules, for a configuration reload:
// the next INVITE is routed by d, while calls already admitted keep the
// rule they were given.
func (h *CallHandler) SetDispatcher(d *Dispatcher) { h.dispatch.Store(d) }

// HandleCall leads one INVITE through the call flow of CallHandler. It
// returns when the call has ended.
func (h *CallHandler) HandleCall(ctx context.Context, in *sip.IncomingCall) {
	info := in.Info()
	rule, err := h.admit(info)
	if err != nil {
		h.refuse(in, err)
		return
	}
	if err := in.Ring(); err != nil {
		if errors.Is(err, sip.ErrCanceled) {
			return // sipgo answered the CANCEL with 487
		}
		h.log.Debug("bridge: ringing", "call", info, "err", err)
	}
	call, err := in.Answer()
	if err != nil {
		h.log.Debug("bridge: answer", "call", info, "err", err)
		return
	}
	deps := h.deps
	deps.Lang = rule.Lang
	if rule.Room != "" {
		deps.IVROptions = append(slices.Clip(deps.IVROptions), WithFixedRoom(rule.Room, rule.NeedsPIN))
	}
	h.log.Info("bridge: call answered", "call", info, "room", string(rule.Room), "lang", string(rule.Lang))
	now := h.deps.Now
	if now == nil {
		now = time.Now
	}
	started := now()
	h.notify(CallEvent{Info: info, Room: rule.Room, Time: started})
	last, err := runCall(ctx, call, deps)
	if err != nil {
		h.log.Warn("bridge: call ended with an error", "call", info, "err", err)
	}
	ended := now()
	h.notify(CallEvent{Ended: true, Info: info, Room: last, Time: ended, Duration: ended.Sub(started)})
}

// notify hands ev to SessionDeps.OnCall, if set.
func (h *CallHandler) notify(ev CallEvent) {
	if h.deps.OnCall != nil {
		h.deps.OnCall(ev)
	}
}

// admit finds the call's rule and, for a fixed room, asks the room
// whether it takes one more participant.
func (h *CallHandler) admit(info sip.CallInfo) (Rule, error) {
	rule, err := h.dispatch.Load().Route(info.Dialed)
	if err != nil {
		return Rule{}, err
	}
	if rule.Room != "" {
		if err := h.deps.Rooms.Admits(rule.Room); err != nil {
			return Rule{}, err
		}
	}
	return rule, nil
}

// refuse rejects the INVITE with the response Refusal maps err to.
func (h *CallHandler) refuse(in *sip.IncomingCall, err error) {
	res := Refusal(err)
	h.log.Info("bridge: call refused", "call", in.Info(), "code", res.Code, "err", err)
	if rerr := in.Reject(res); rerr != nil && !errors.Is(rerr, sip.ErrCanceled) {
		h.log.Debug("bridge: reject", "call", in.Info(), "err", rerr)
	}
}
