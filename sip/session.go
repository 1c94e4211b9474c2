package sip

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
)

// refreshTimeout bounds a session refresh transaction: Timer B and F are
// 64*T1 = 32 s (RFC 3261 §17.1.1.2, §17.1.2.2), after which the caller
// counts as gone (RFC 4028 §10).
const refreshTimeout = 32 * time.Second

// offerState is where the call's offer/answer exchange stands (RFC 3264
// §4), which decides how a crossing offer is refused (RFC 3311 §5.2, RFC
// 3261 §14.2).
type offerState uint8

const (
	offerNone     offerState = iota
	offerSent                // our offer waits for the caller's answer: 491 to a new one
	offerReceived            // we are answering the caller's offer: 500 to a new one
)

// dialogState is what in-dialog requests change on a Call: the session
// timer, the caller's target and capabilities. Guarded by Call.mu.
type dialogState struct {
	timer      sessionTimer
	timerStart time.Time     // the current interval's start: the last refresh
	kick       chan struct{} // tells the supervisor the timer restarted (cap 1)
	target     sip.Uri       // the caller's current Contact (RFC 3261 §12.2.1.1)
	peerUpdate bool          // the caller's Allow lists UPDATE
	lastAck    *sip.Request  // ACK of our last re-INVITE's 2xx, sent again on its retransmissions
	offerAll   bool          // our last description is an offerless INVITE's offer of every codec

	byeReceived atomic.Bool // set before the caller's BYE is answered

	// ctx ends when the call does, aborting a refresh in flight.
	ctx  context.Context
	stop context.CancelFunc
}

// initDialogState fills the dialog state from the INVITE.
func (c *Call) initDialogState() {
	c.kick = make(chan struct{}, 1)
	c.ctx, c.stop = context.WithCancel(context.Background())
	req := c.in.dlg.InviteRequest
	c.target = req.Contact().Address
	c.peerUpdate = hasTag(req, string(sip.UPDATE), "Allow")
}

// noteRequest takes what a request from the caller changes beyond the
// session: a target refresh (re-INVITE, UPDATE: RFC 3261 §12.2.2, RFC 3311
// §5.2) moves the remote target to its Contact; an Allow tells whether
// UPDATE may refresh the session.
func (c *Call) noteRequest(req *sip.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ct := req.Contact(); ct != nil {
		c.target = *ct.Address.Clone()
	}
	if len(req.GetHeaders("Allow")) > 0 {
		c.peerUpdate = hasTag(req, string(sip.UPDATE), "Allow")
	}
}

// remoteTarget is where in-dialog requests go.
func (c *Call) remoteTarget() sip.Uri {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.target.Clone()
}

// addDialogHeaders adds what every 2xx of ours carries: Allow, Supported,
// our Contact and the session timer st.
func (c *Call) addDialogHeaders(res *sip.Response, st sessionTimer) {
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Supported", supported))
	for _, h := range st.responseHeaders() {
		res.AppendHeader(h)
	}
	res.AppendHeader(sip.HeaderClone(&c.in.contact))
}

// restartTimer starts a new session interval after a 2xx to a refresh,
// either way (RFC 4028 §10).
func (c *Call) restartTimer(st sessionTimer) {
	c.mu.Lock()
	c.timer, c.timerStart = st, time.Now()
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// untilDue is how long until the session timer wants action.
func (c *Call) untilDue() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Until(c.timerStart.Add(c.timer.due()))
}

// startSupervisor starts the goroutine that keeps the session timer and
// the call length limit. It ends with the call and belongs to the UA's
// WaitGroup. The timer runs from the INVITE's negotiation unless a
// re-INVITE or UPDATE that crossed the ACK renegotiated it already.
func (c *Call) startSupervisor() {
	c.mu.Lock()
	if c.timerStart.IsZero() {
		c.timer, c.timerStart = c.in.timer, time.Now()
	}
	c.mu.Unlock()
	c.ua.wg.Add(1)
	go c.supervise()
}

// supervise refreshes the session or ends it when it expires, and ends
// the call at sip.max_call_duration.
func (c *Call) supervise() {
	defer c.ua.wg.Done()
	var limit <-chan time.Time
	if d := c.ua.opts.session.maxDuration; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		limit = t.C
	}
	next := time.NewTimer(c.untilDue())
	defer next.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-limit:
			c.log.Info("maximum call duration reached", "limit", c.ua.opts.session.maxDuration)
			_ = c.end(context.Background(), ErrMaxDuration, true)
			return
		case <-c.kick:
			next.Reset(c.untilDue())
		case <-next.C:
			wait, err := c.onTimer()
			if err != nil {
				_ = c.end(context.Background(), err, true)
				return
			}
			next.Reset(wait)
		}
	}
}

// onTimer acts on a due session timer and returns how long until it is due
// again, or ErrSessionExpired to end the call.
func (c *Call) onTimer() (time.Duration, error) {
	c.mu.Lock()
	st, start := c.timer, c.timerStart
	c.mu.Unlock()
	if wait := time.Until(start.Add(st.due())); wait > 0 {
		return wait, nil // restarted meanwhile
	}
	if !st.weRefresh {
		c.log.Info("session expired without refresh", "interval", st.interval)
		return 0, ErrSessionExpired
	}
	expiry := start.Add(st.interval)
	if !time.Now().Before(expiry) {
		c.log.Info("session expired: no refresh succeeded", "interval", st.interval)
		return 0, ErrSessionExpired
	}
	retry, err := c.refresh(st)
	if err != nil || retry == 0 {
		return 0, err // 0: due is recomputed at once
	}
	return min(retry, time.Until(expiry)), nil
}

// refresh sends one session refresh (RFC 4028 §7.4, §10): UPDATE without
// a body when the caller allows it (the RFC's recommendation), else a
// re-INVITE with our last description unchanged. It returns when to try
// again (0: as the timer says), or ErrSessionExpired when the caller is
// gone (408, 481, no response).
func (c *Call) refresh(st sessionTimer) (time.Duration, error) {
	c.mu.Lock()
	update := c.peerUpdate
	claimed := update || (!c.reinviting && c.offer == offerNone)
	if !update && claimed {
		c.offer = offerSent
	}
	c.mu.Unlock()
	if !claimed {
		return glareWait(), nil // the caller's re-INVITE is under way
	}
	res, err := c.sendRefresh(st, update)
	if !update {
		c.mu.Lock()
		c.offer = offerNone
		c.mu.Unlock()
	}
	switch {
	case err != nil:
		if c.ctx.Err() == nil { // else the call is ending anyway
			c.log.Info("session refresh failed", "method", methodName(update), "err", redactText(err.Error()))
		}
		return 0, ErrSessionExpired
	case res.IsSuccess():
		c.restartTimer(c.ua.afterRefresh(st, res))
		c.log.Debug("session refreshed", "method", methodName(update))
		return 0, nil
	case res.StatusCode == 408 || res.StatusCode == 481:
		c.log.Info("session refresh refused", "method", methodName(update), "code", res.StatusCode)
		return 0, ErrSessionExpired
	case res.StatusCode == 491:
		return glareWait(), nil
	case res.StatusCode == 422:
		if m, err := minSE(res); err == nil && m > st.interval {
			c.mu.Lock()
			c.timer.interval = m // RFC 4028 §7.3: retry with its Min-SE
			c.mu.Unlock()
			return 0, nil
		}
	case update && (res.StatusCode == 405 || res.StatusCode == 501):
		c.mu.Lock()
		c.peerUpdate = false // retry with re-INVITE
		c.mu.Unlock()
		return 0, nil
	}
	// Another refusal: the session goes on; try again halfway to expiry.
	c.log.Info("session refresh refused", "method", methodName(update), "code", res.StatusCode)
	c.mu.Lock()
	left := time.Until(c.timerStart.Add(c.timer.interval))
	c.mu.Unlock()
	return max(left/2, time.Second), nil
}

// sendRefresh sends the refresh request and, for a re-INVITE, ACKs its 2xx
// and takes the answer.
func (c *Call) sendRefresh(st sessionTimer, update bool) (*sip.Response, error) {
	method := sip.INVITE
	if update {
		method = sip.UPDATE
	}
	req := c.newRequest(method)
	for _, h := range st.requestHeaders(c.ua.opts.session.minSE) {
		req.AppendHeader(h)
	}
	req.AppendHeader(sip.NewHeader("Allow", allowed))
	if !update {
		body, err := c.refreshOffer()
		if err != nil {
			return nil, err
		}
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	ctx, cancel := context.WithTimeout(c.ctx, refreshTimeout)
	defer cancel()
	res, err := c.in.dlg.Do(ctx, req)
	if err != nil || !res.IsSuccess() {
		return res, err
	}
	if ct := res.Contact(); ct != nil {
		c.mu.Lock()
		c.target = *ct.Address.Clone() // RFC 3261 §12.2.1.2, RFC 3311 §5.1
		c.mu.Unlock()
	}
	if update {
		return res, nil
	}
	c.ackRefresh()
	c.takeRefreshAnswer(res)
	return res, nil
}

// refreshOffer is what a refresh re-INVITE offers: our last description
// unchanged (RFC 3264 §8: same o= version), except while that is still
// the offer of an offerless INVITE, which lists every codec of ours: then
// the call's codec alone, so that the answer cannot switch codecs.
func (c *Call) refreshOffer() ([]byte, error) {
	c.mu.Lock()
	all, codec := c.offerAll, c.codec.Name
	c.mu.Unlock()
	if !all {
		return c.localSDP(), nil
	}
	return c.describe(func(l localMedia) ([]byte, error) {
		return buildOffer(l, []string{codec}, sdp.DirectionSendRecv)
	})
}

// ackRefresh ACKs the 2xx of our re-INVITE (RFC 3261 §13.2.2.4) and keeps
// the ACK for the 2xx's retransmissions. A retransmission that crosses
// the first ACK finds none kept yet; the next one, T1 later at the
// earliest (§13.3.1.4), gets it.
func (c *Call) ackRefresh() {
	ack := c.newRequest(sip.ACK)
	if err := c.in.dlg.WriteRequest(ack); err != nil {
		c.log.Info("ack of re-invite failed", "err", redactText(err.Error()))
	}
	c.mu.Lock()
	c.lastAck = ack
	c.mu.Unlock()
}

// takeRefreshAnswer applies the caller's answer to our re-INVITE; an
// unusable one leaves the media as it was (our offer repeated the
// session, so nothing was to change).
func (c *Call) takeRefreshAnswer(res *sip.Response) {
	codec := c.Codec()
	sd, err := parseSDP(res.Body())
	var rm remoteMedia
	if err == nil {
		rm, err = readAnswer(sd, []string{codec.Name}, codec.Name, c.localCrypto())
	}
	if err != nil {
		c.log.Info("unusable answer to session refresh", "err", redactText(err.Error()))
		return
	}
	c.apply(rm)
}

// onStrayResponse takes responses that match no client transaction: a
// retransmitted 2xx of our re-INVITE, whose transaction ended with the
// first, gets our ACK again (RFC 3261 §13.2.2.4); others are dropped.
func (u *UA) onStrayResponse(res *sip.Response) {
	cseq, callID, from, to := res.CSeq(), res.CallID(), res.From(), res.To()
	if cseq == nil || callID == nil || from == nil || to == nil || cseq.MethodName != sip.INVITE || !res.IsSuccess() {
		return
	}
	ours, _ := from.Params.Get("tag")
	theirs, _ := to.Params.Get("tag")
	u.mu.Lock()
	in := u.dialogs[sip.DialogIDMake(callID.Value(), ours, theirs)]
	u.mu.Unlock()
	if in == nil {
		return
	}
	c := in.answeredCall()
	if c == nil {
		return
	}
	c.mu.Lock()
	ack := c.lastAck
	c.mu.Unlock()
	if ack != nil && ack.CSeq().SeqNo == cseq.SeqNo {
		_ = u.client.WriteRequest(ack.Clone(), noBuild)
	}
}

// noBuild sends a request as it is: it was built for its dialog already.
func noBuild(*sipgo.Client, *sip.Request) error { return nil }

// byeReason is the Reason header (RFC 3326 §2) of a BYE that mediagate's
// own limits send, with the Q.850 causes carriers' records expect: 102
// "recovery on timer expiry" for an expired session, 16 "normal call
// clearing" for the call length limit.
func byeReason(err error) sip.Header {
	switch {
	case errors.Is(err, ErrMaxDuration):
		return sip.NewHeader("Reason", `Q.850;cause=16;text="Maximum call duration reached"`)
	case errors.Is(err, ErrSessionExpired):
		return sip.NewHeader("Reason", `Q.850;cause=102;text="Session timer expired"`)
	}
	return nil
}

// glareWait is how long to wait before repeating a request refused with
// 491 (or not sent because the caller's own was under way): 0 to 2 s, as
// RFC 3261 §14.1 asks of the side that did not create the Call-ID.
func glareWait() time.Duration {
	return time.Duration(10+rand.IntN(1990)) * time.Millisecond
}

func methodName(update bool) string {
	if update {
		return "UPDATE"
	}
	return "INVITE"
}
