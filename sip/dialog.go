package sip

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
)

// Requests inside a dialog (RFC 3261 §12.2.2): ACK, BYE, INFO, re-INVITE
// and UPDATE (update.go). A request for a dialog we do not know gets 481.

// currentCall returns the call of a dialog, answered or in early media.
func (in *IncomingCall) currentCall() *Call {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.call
}

// onAck hands the ACK of a 2xx to the call waiting for it.
func (u *UA) onAck(req *sip.Request, tx sip.ServerTransaction) {
	in := u.lookup(req)
	if in == nil {
		return // stray or late: ACKs are never answered
	}
	_ = in.dlg.ReadAck(req, tx)
	if c := in.currentCall(); c != nil {
		c.deliverAck(req)
	}
}

// onBye answers 200 and ends the call (RFC 3261 §15.1.2).
func (u *UA) onBye(req *sip.Request, tx sip.ServerTransaction) {
	in := u.lookup(req)
	if in == nil {
		u.respond(req, tx, 481, "")
		return
	}
	// Answer first: a BYE crossing ours must not wait for our BYE's
	// timeout. Requests the caller sends once it has our 200 find the
	// dialog over (hungUp).
	c := in.currentCall()
	if c != nil {
		c.byeReceived.Store(true)
	}
	if err := in.dlg.ReadBye(req, tx); err != nil {
		if c != nil {
			c.byeReceived.Store(false)
		}
		u.respond(req, tx, 500, "")
	}
	in.log.Debug("bye received")
	if c != nil {
		_ = c.end(context.Background(), ErrRemoteHangup, false)
		return
	}
	u.forget(in)
}

// onInfo takes DTMF from INFO requests (application/dtmf-relay,
// application/dtmf). An INFO without body is a keep-alive (200); other
// bodies get 415 with Accept (RFC 3261 §21.4.13, RFC 6086 §4.2.2).
func (u *UA) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	in := u.lookup(req)
	if in == nil {
		u.respond(req, tx, 481, "")
		return
	}
	if len(req.Body()) == 0 {
		u.respond(req, tx, 200, "")
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	d, dur, err := parseDTMFInfo(ct, req.Body())
	var unsupported *unsupportedBody
	switch {
	case errors.As(err, &unsupported):
		u.respond(req, tx, 415, "", sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	case err != nil:
		u.respond(req, tx, 400, "")
		return
	}
	u.respond(req, tx, 200, "")
	if c := in.currentCall(); c != nil {
		c.dtmf.push(DTMF{Digit: d, Source: DTMFInfo, Duration: dur, At: time.Now()})
	}
}

// onReinvite handles an INVITE inside a dialog: hold and resume, a new
// media address, or an offerless re-INVITE asking for our offer.
func (u *UA) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	in := u.lookup(req)
	var c *Call
	if in != nil {
		c = in.answeredCall()
	}
	if c == nil || c.hungUp() {
		u.respond(req, tx, 481, "")
		return
	}
	c.reinvite(req, tx)
}

// hungUp reports whether the call's dialog is over: a BYE came or went,
// or the call ended, so that requests following the BYE get 481 (RFC 3261
// §15.1.2).
func (c *Call) hungUp() bool {
	select {
	case <-c.done:
		return true
	default:
		return c.byeReceived.Load() || c.in.dlg.LoadState() == sip.DialogStateEnded
	}
}

// reinvite answers one re-INVITE (RFC 3261 §14.2, RFC 3264 §8, RFC 4028
// §9 for its session timer). The codec must stay: an offer without it gets
// 488 and the session goes on unchanged.
func (c *Call) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	u := c.ua
	if err := c.in.dlg.ReadRequest(req, tx); err != nil {
		u.respond(req, tx, 500, "", retryAfter())
		return
	}
	offered := len(req.Body()) > 0
	if !c.beginExchange(req, tx, true, offered) {
		return
	}
	st, body, rm, err := c.answerRequest(req, offered, true)
	if err != nil {
		c.endExchange(true, offered) // before the response, which the caller may follow at once
		u.refuseRequest(req, tx, err)
		return
	}
	defer c.endExchange(true, offered)
	if offered {
		c.apply(rm)
	}
	res := sip.NewSDPResponseFromRequest(req, body)
	c.addDialogHeaders(res, st)
	c.noteRequest(req)
	c.restartTimer(st)
	ack, err := retransmit2xx(tx, res, sip.IsReliable(req.Transport()), c.expectAck(req.CSeq().SeqNo), c.done)
	if err != nil {
		c.log.Info("no ack for re-invite", "err", err)
		_ = c.end(context.Background(), ErrNoAck, true)
		return
	}
	if offered || ack == nil {
		return
	}
	codec := c.Codec()
	sd, err := parseSDP(ack.Body())
	if err == nil {
		rm, err = readAnswer(sd, []string{codec.Name}, codec.Name, c.localCrypto())
	}
	if err != nil {
		c.log.Info("unusable answer in re-invite ack", "err", err)
		_ = c.end(context.Background(), ErrBadAnswer, true)
		return
	}
	c.apply(rm)
}

// beginExchange claims the call's offer/answer state for a re-INVITE
// (reinvite) or UPDATE from the caller, or refuses the request and
// returns false: 491 while our own offer waits for its answer (RFC 3261
// §14.2, RFC 3311 §5.2), 500 with Retry-After while another request of the
// caller's is being answered (same sections). An UPDATE without an offer
// only refreshes the session and claims nothing.
func (c *Call) beginExchange(req *sip.Request, tx sip.ServerTransaction, reinvite, offered bool) bool {
	c.mu.Lock()
	claims := reinvite || offered
	code := 0
	switch {
	case claims && c.offer == offerSent:
		code = 491
	case claims && c.offer == offerReceived, reinvite && c.reinviting:
		code = 500
	case offered:
		c.offer = offerReceived
	case reinvite:
		c.offer = offerSent // our offer goes in the 2xx, the answer in the ACK
	}
	if code == 0 && reinvite {
		c.reinviting = true
	}
	c.mu.Unlock()
	switch code {
	case 491:
		c.ua.respond(req, tx, 491, "")
	case 500:
		c.ua.respond(req, tx, 500, "", retryAfter())
	}
	return code == 0
}

// endExchange releases what beginExchange claimed.
func (c *Call) endExchange(reinvite, offered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if reinvite {
		c.reinviting = false
	}
	if reinvite || offered {
		c.offer = offerNone
	}
}

// answerRequest negotiates a re-INVITE or UPDATE from the caller: its
// session timer, and the answer to its offer or, for a re-INVITE without
// one, our offer (sendrecv: an offerless re-INVITE resumes). The codec is
// the call's, so prefs hold only it.
func (c *Call) answerRequest(req *sip.Request, offered, reinvite bool) (sessionTimer, []byte, remoteMedia, error) {
	st, err := c.ua.negotiateTimer(req)
	if err != nil {
		return st, nil, remoteMedia{}, err
	}
	prefs := []string{c.Codec().Name}
	var rm remoteMedia
	var body []byte
	switch {
	case offered:
		var offer *sdp.SessionDescription
		if offer, err = readOffer(req); err == nil {
			if rm, err = negotiate(offer, prefs, c.renegotiationPolicy()); err == nil {
				if err = c.media.addressFree(rm.rtp); err == nil {
					err = c.answerCrypto(rm)
				}
				if err == nil {
					body, err = c.describe(func(l localMedia) ([]byte, error) { return buildAnswer(l, offer, rm) })
				}
			}
		}
	case reinvite:
		body, err = c.describe(func(l localMedia) ([]byte, error) {
			return buildOffer(l, prefs, sdp.DirectionSendRecv)
		})
	}
	return st, body, rm, err
}

// readOffer parses the SDP body of an in-dialog request; another body
// type is 415 (RFC 3261 §21.4.13).
func readOffer(req *sip.Request) (*sdp.SessionDescription, error) {
	ct := req.ContentType()
	if ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/sdp") {
		return nil, &StatusError{Code: 415}
	}
	return parseSDP(req.Body())
}

// refuseRequest answers an in-dialog request with the status its error
// stands for, the StatusError's reason phrase and the headers the status
// needs (refusalHeaders).
func (u *UA) refuseRequest(req *sip.Request, tx sip.ServerTransaction, err error) {
	code := statusOf(err)
	reason := ""
	var se *StatusError
	if errors.As(err, &se) {
		reason = se.reason()
	}
	u.respond(req, tx, code, reason, refusalHeaders(err, code)...)
}

// apply switches media to a renegotiated description and logs holds.
func (c *Call) apply(rm remoteMedia) {
	wasHeld := c.Held()
	if err := c.configureMedia(rm); err != nil {
		c.log.Warn("media reconfiguration failed", "err", err)
		return
	}
	c.mu.Lock()
	addrChanged := c.remote.rtp != rm.rtp
	c.remote = rm
	c.mu.Unlock()
	switch held := c.Held(); {
	case held && !wasHeld:
		c.log.Info("call on hold", "direction", rm.dir.String())
	case !held && wasHeld:
		c.log.Info("call resumed")
	}
	if addrChanged {
		c.log.Info("media address changed", addrAttr("to", rm.rtp))
	}
}
