package sip

import (
	"context"
	"errors"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
)

// Requests inside a dialog (RFC 3261 §12.2.2): ACK, BYE, INFO and
// re-INVITE. A request for a dialog we do not know gets 481.

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
	// timeout.
	if err := in.dlg.ReadBye(req, tx); err != nil {
		u.respond(req, tx, 500, "")
	}
	in.log.Debug("bye received")
	if c := in.currentCall(); c != nil {
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
	if c == nil {
		u.respond(req, tx, 481, "")
		return
	}
	c.reinvite(req, tx)
}

// reinvite answers one re-INVITE (RFC 3261 §14.2, RFC 3264 §8). The codec
// must stay: an offer without it gets 488 and the session goes on
// unchanged. A re-INVITE crossing another gets 500 with Retry-After.
func (c *Call) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	u := c.ua
	if err := c.in.dlg.ReadRequest(req, tx); err != nil {
		u.respond(req, tx, 500, "", retryAfter())
		return
	}
	c.mu.Lock()
	busy := c.reinviting
	c.reinviting = true
	codec := c.codec
	c.mu.Unlock()
	if busy {
		u.respond(req, tx, 500, "", retryAfter())
		return
	}
	defer func() {
		c.mu.Lock()
		c.reinviting = false
		c.mu.Unlock()
	}()

	prefs := []string{codec.Name}
	var rm remoteMedia
	var body []byte
	var err error
	offered := len(req.Body()) > 0
	if offered {
		var offer *sdp.SessionDescription
		if offer, err = parseSDP(req.Body()); err == nil {
			if rm, err = negotiate(offer, prefs); err == nil {
				body, err = c.describe(func(l localMedia) ([]byte, error) { return buildAnswer(l, offer, rm) })
			}
		}
	} else {
		body, err = c.describe(func(l localMedia) ([]byte, error) {
			return buildOffer(l, prefs, sdp.DirectionSendRecv)
		})
	}
	if err != nil {
		code := statusOf(err)
		u.respond(req, tx, code, "", refusalHeaders(err, code)...)
		return
	}
	if offered {
		c.apply(rm)
	}
	res := sip.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.HeaderClone(&c.in.contact))
	ack, err := retransmit2xx(tx, res, sip.IsReliable(req.Transport()), c.expectAck(req.CSeq().SeqNo), c.done)
	if err != nil {
		c.log.Info("no ack for re-invite", "err", err)
		_ = c.end(context.Background(), ErrNoAck, true)
		return
	}
	if offered || ack == nil {
		return
	}
	sd, err := parseSDP(ack.Body())
	if err == nil {
		rm, err = readAnswer(sd, prefs, codec.Name)
	}
	if err != nil {
		c.log.Info("unusable answer in re-invite ack", "err", err)
		_ = c.end(context.Background(), ErrBadAnswer, true)
		return
	}
	c.apply(rm)
}

// apply switches media to a renegotiated description and logs holds.
func (c *Call) apply(rm remoteMedia) {
	wasHeld := c.Held()
	if err := c.media.configure(rm); err != nil {
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
