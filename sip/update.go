package sip

import (
	"github.com/emiago/sipgo/sip"
)

// UPDATE (RFC 3311) changes a session without touching the dialog's INVITE
// state: carriers and SBCs use it for hold and resume, for a new media
// address and, without a body, to refresh the session timer (RFC 4028
// §7.4 recommends it over re-INVITE). mediagate answers it as it answers a
// re-INVITE, in one non-INVITE transaction: no ACK.

// onUpdate handles an UPDATE. One for an unknown dialog gets 481 (RFC 3261
// §12.2.2). Before the call is answered our answer travelled in an
// unreliable 183 at most (no 100rel), so the INVITE's offer/answer
// exchange is not complete: an offer then gets 500 with Retry-After (RFC
// 3311 §5.2), a bodiless UPDATE 200.
func (u *UA) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	in := u.lookup(req)
	if in == nil {
		u.respond(req, tx, 481, "")
		return
	}
	if c := in.answeredCall(); c != nil {
		if c.hungUp() {
			u.respond(req, tx, 481, "")
			return
		}
		c.update(req, tx)
		return
	}
	if err := in.dlg.ReadRequest(req, tx); err != nil {
		u.respond(req, tx, 500, "")
		return
	}
	if len(req.Body()) > 0 {
		u.respond(req, tx, 500, "", retryAfter())
		return
	}
	u.respond(req, tx, 200, "", sip.NewHeader("Allow", allowed), sip.NewHeader("Supported", supported))
}

// update answers one UPDATE in an answered call: an offer is negotiated
// like a re-INVITE's (same codec, else 488), the session timer restarts
// with the request's Session-Expires (RFC 4028 §9), and the 2xx carries
// the answer, if any, and the timer.
func (c *Call) update(req *sip.Request, tx sip.ServerTransaction) {
	u := c.ua
	if err := c.in.dlg.ReadRequest(req, tx); err != nil {
		u.respond(req, tx, 500, "") // RFC 3261 §12.2.2: CSeq out of order
		return
	}
	offered := len(req.Body()) > 0
	if !c.beginExchange(req, tx, false, offered) {
		return
	}
	st, body, rm, err := c.answerRequest(req, offered, false)
	if err == nil && offered {
		c.apply(rm)
	}
	// Released before the response, which the caller may follow at once.
	c.endExchange(false, offered)
	if err != nil {
		u.refuseRequest(req, tx, err)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	if offered {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	c.addDialogHeaders(res, st)
	c.noteRequest(req)
	c.restartTimer(st)
	if err := tx.Respond(res); err != nil {
		c.log.Debug("update response failed", "err", redactText(err.Error()))
	}
}
