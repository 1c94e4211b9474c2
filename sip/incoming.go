package sip

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
)

// CallInfo describes a call as the INVITE presented it.
type CallInfo struct {
	// ID is the SIP Call-ID.
	ID CallID
	// Caller is the From user (the caller's number for carrier calls).
	Caller Number
	// Dialed is the Request-URI user, else the To user: the number the
	// caller dialed, which dispatch rules match.
	Dialed Number
	// Transport is "UDP", "TCP" or "TLS".
	Transport string
	// Source is where the INVITE came from, for trunk matching. Personal
	// data: log it only through LogValue.
	Source netip.AddrPort
	// Trunk is the name of the trunk the call came in on (see Trunk);
	// empty when no trunks are configured.
	Trunk string
}

// LogValue logs the info with the caller masked and the address anonymised.
func (i CallInfo) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("call", i.ID), slog.Any("from", i.Caller), slog.Any("to", i.Dialed),
		slog.String("transport", i.Transport), addrAttr("source", i.Source), slog.String("trunk", i.Trunk))
}

// IncomingCall is an INVITE waiting for the handler's decision. Its
// methods are safe for concurrent use; exactly one of Answer and Reject
// takes effect.
type IncomingCall struct {
	ua      *UA
	req     *sip.Request
	tx      sip.ServerTransaction
	dlg     *sipgo.DialogServerSession
	info    CallInfo
	log     *slog.Logger
	ip      netip.Addr // our address towards the caller
	contact sip.ContactHeader

	offer *sdp.SessionDescription // nil for an offerless INVITE
	srtp  SRTPPolicy              // the trunk's
	rm    remoteMedia             // negotiated from offer
	timer sessionTimer            // negotiated from the INVITE (RFC 4028)

	cancel context.CancelFunc // the handler's context

	received time.Time   // when the INVITE arrived, for the setup time
	settled  atomic.Bool // its outcome was counted (metrics.go)

	mu       sync.Mutex
	call     *Call
	final    bool          // a final response is being or was sent
	answered bool          // and it was a 2xx
	finished chan struct{} // closed once the final response is done
}

// Info describes the call.
func (in *IncomingCall) Info() CallInfo { return in.info }

// onInvite handles INVITEs: re-INVITEs go to their dialog; new ones get 100
// Trying at once (RFC 3261 §8.2.6.1, §17.2.1), are checked and negotiated,
// then handed to the handler. It returns when the INVITE has its final
// response, as sipgo's server expects.
func (u *UA) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	received := time.Now()
	trunk, ok := u.admit(req, tx) // trunk.go: before 100, so hide_unknown sends nothing
	if !ok {
		return
	}
	if to := req.To(); to != nil && to.Params.Has("tag") {
		u.onReinvite(req, tx)
		return
	}
	u.respond(req, tx, 100, "")
	if u.refusing() {
		u.countRefused()
		u.respond(req, tx, 503, "", sip.NewHeader("Retry-After", "30"))
		return
	}
	in, err := u.newIncoming(req, tx, trunk)
	if err != nil {
		u.refuse(req, tx, err)
		return
	}
	in.info.Trunk = trunk
	in.received = received
	ctx, cancel := context.WithCancel(u.ctx)
	in.cancel = cancel
	context.AfterFunc(in.dlg.Context(), in.dialogEnded)
	if err := u.track(in); err != nil {
		cancel()
		u.refuse(req, tx, err)
		return
	}
	in.log.Info("incoming call", "from", in.info.Caller, "to", in.info.Dialed,
		"transport", in.info.Transport, addrAttr("source", in.info.Source), "trunk", trunk)
	u.wg.Add(1)
	go u.runHandler(ctx, in)
	select {
	case <-in.finished:
	case <-tx.Done():
	case <-in.dlg.Context().Done(): // cancelled: sipgo answered 487
	}
}

// refuse answers a new INVITE the UA will not hand to the handler.
func (u *UA) refuse(req *sip.Request, tx sip.ServerTransaction, err error) {
	code := statusOf(err)
	var id CallID
	if h := req.CallID(); h != nil { // nil in a malformed INVITE (RFC 4475 §3.3.1)
		id = CallID(h.Value())
	}
	u.countRefused()
	u.log.Info("invite refused", "code", code, "err", err, "call", id)
	u.respond(req, tx, code, "", refusalHeaders(err, code)...)
}

// refusalHeaders adds what a refusal must explain: Warning 305 with 488
// (RFC 3261 §20.43), Unsupported with 420 (§20.40), Accept with 415
// (§21.4.13), Min-SE with 422 (RFC 4028 §6), Retry-After when asked for
// (§20.33).
func refusalHeaders(err error, code int) []sip.Header {
	var h []sip.Header
	switch code {
	case 488:
		h = append(h, sip.NewHeader("Warning", mediaWarning(err)))
	case 420:
		var be *badExtension
		if errors.As(err, &be) {
			h = append(h, sip.NewHeader("Unsupported", be.tags))
		}
	case 415:
		h = append(h, sip.NewHeader("Accept", "application/sdp"))
	case 422:
		var ts *intervalTooSmall
		if errors.As(err, &ts) {
			h = append(h, ts.minSEHeader())
		}
	case 503:
		h = append(h, sip.NewHeader("Retry-After", "30"))
	}
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 && code != 503 {
		h = append(h, sip.NewHeader("Retry-After", strconv.Itoa(se.RetryAfter)))
	}
	return h
}

// mediaWarning is the Warning header value (RFC 3261 §20.43) of a 488.
func mediaWarning(err error) string {
	switch {
	case errors.Is(err, ErrSRTPRequired):
		return `399 mediagate "SRTP required"`
	case errors.Is(err, ErrNoCommonTransport):
		return `302 mediagate "Incompatible transport protocol"`
	case errors.Is(err, ErrCrypto):
		why := strings.TrimPrefix(err.Error(), ErrCrypto.Error()+": ")
		return `399 mediagate "Unusable SRTP crypto attribute: ` + strings.ReplaceAll(why, `"`, "'") + `"`
	}
	return `305 mediagate "Incompatible media format"`
}

// badExtension is a Require header naming extensions we lack (420).
type badExtension struct{ tags string }

func (e *badExtension) Error() string  { return "sip: unsupported extension required" }
func (e *badExtension) SIPStatus() int { return 420 }

// newIncoming checks an INVITE, negotiates its offer under the SRTP
// policy of its trunk and creates the dialog.
func (u *UA) newIncoming(req *sip.Request, tx sip.ServerTransaction, trunk string) (*IncomingCall, error) {
	// RFC 3261 §8.2.2.3: a Require naming an extension other than ours
	// (supported) is 420.
	if tags := unsupportedTags(req); tags != "" {
		return nil, &badExtension{tags: tags}
	}
	if req.From() == nil || req.CallID() == nil {
		return nil, &StatusError{Code: 400, Reason: "Missing From or Call-ID"}
	}
	in := &IncomingCall{ua: u, req: req, tx: tx, finished: make(chan struct{}), srtp: u.trunks().srtpPolicy(trunk)}
	var err error
	if in.timer, err = u.negotiateTimer(req); err != nil {
		return nil, err // 422 or 400 (RFC 4028 §9)
	}
	if body := req.Body(); len(body) > 0 {
		if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/sdp") {
			return nil, &StatusError{Code: 415}
		}
		offer, err := parseSDP(body)
		if err != nil {
			return nil, err
		}
		if in.rm, err = negotiate(offer, u.opts.codecs, in.srtp); err != nil {
			return nil, err
		}
		in.offer = offer
	}
	src, _ := netip.ParseAddrPort(req.Source())
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	in.ip = u.localIP(src.Addr())
	in.info = CallInfo{ID: CallID(req.CallID().Value()), Transport: req.Transport(), Source: src,
		Caller: Number(req.From().Address.User), Dialed: Number(req.Recipient.User)}
	if in.info.Dialed == "" && req.To() != nil {
		in.info.Dialed = Number(req.To().Address.User)
	}
	in.log = u.log.With("call", in.info.ID)
	in.contact = u.contact(in.ip, req)
	dua := &sipgo.DialogUA{Client: u.client, ContactHDR: in.contact}
	dlg, err := dua.ReadInvite(req, tx)
	if err != nil {
		return nil, &StatusError{Code: 400, Reason: "Missing Contact"} // RFC 3261 §8.1.1.8
	}
	in.dlg = dlg
	return in, nil
}

// runHandler runs the handler and rejects the INVITE if it returned
// without a final response.
func (u *UA) runHandler(ctx context.Context, in *IncomingCall) {
	defer u.wg.Done()
	u.handler.HandleCall(ctx, in)
	err := error(&StatusError{Code: 480})
	if u.isClosing() {
		err = ErrClosed
	}
	if rerr := in.Reject(err); rerr == nil {
		in.log.Info("handler returned without answering", "code", statusOf(err))
	}
}

// dialogEnded runs when sipgo ends the dialog (CANCEL, a final error
// response, BYE): it cancels the handler and ends an unanswered call
// that had early media.
func (in *IncomingCall) dialogEnded() {
	in.cancel()
	in.mu.Lock()
	c, answered := in.call, in.answered
	in.mu.Unlock()
	if !answered && in.canceled() {
		in.settle(OutcomeCanceled)
	}
	if c != nil && !answered {
		c.end(context.Background(), ErrCanceled, false)
	}
	if !answered {
		in.ua.forget(in)
	}
}

// answeredCall returns the call once it is answered.
func (in *IncomingCall) answeredCall() *Call {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.answered {
		return nil
	}
	return in.call
}

// canceled reports whether the caller cancelled the INVITE.
func (in *IncomingCall) canceled() bool {
	return errors.Is(context.Cause(in.dlg.Context()), sip.ErrTransactionCanceled) ||
		errors.Is(in.tx.Err(), sip.ErrTransactionCanceled)
}

// Ring sends 180 Ringing (RFC 3261 §21.1.2).
func (in *IncomingCall) Ring() error {
	if err := in.provisional(); err != nil {
		return err
	}
	return in.dlg.Respond(180, "Ringing", nil)
}

// provisional checks that a provisional response may still be sent.
func (in *IncomingCall) provisional() error {
	in.mu.Lock()
	final := in.final
	in.mu.Unlock()
	switch {
	case final:
		return ErrFinalResponse
	case in.canceled():
		return ErrCanceled
	}
	return nil
}

// Progress sends 183 Session Progress with our SDP answer and starts media
// (early media, RFC 3960 gateway model): prompts and tones play before the
// call is answered (and billed). The returned Call is the one Answer
// returns later; its DTMF and audio work already. An INVITE without an
// offer gets ErrNoEarlyMedia.
func (in *IncomingCall) Progress() (*Call, error) {
	if err := in.provisional(); err != nil {
		return nil, err
	}
	if in.offer == nil {
		return nil, ErrNoEarlyMedia
	}
	c, err := in.ensureCall()
	if err != nil {
		return nil, err
	}
	body := c.localSDP()
	if err := in.dlg.Respond(183, "Session Progress", body, sip.NewHeader("Content-Type", "application/sdp")); err != nil {
		return nil, err
	}
	return c, nil
}

// ensureCall creates the Call and its RTP session once.
func (in *IncomingCall) ensureCall() (*Call, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.call != nil {
		return in.call, nil
	}
	c, err := newCall(in)
	if err != nil {
		return nil, err
	}
	in.call = c
	return c, nil
}

// Answer sends 200 OK with our SDP answer (or our offer, for an INVITE
// without one), waits for the ACK and returns the established Call. It
// fails with ErrCanceled when the caller gave up first, ErrNoAck when the
// ACK never came, ErrBadAnswer when the ACK's answer is unusable (the
// call is then hung up), ErrClosed while the UA closes.
func (in *IncomingCall) Answer() (*Call, error) {
	if err := in.claimFinal(); err != nil {
		return nil, err
	}
	defer close(in.finished)
	if in.canceled() {
		in.settle(OutcomeCanceled)
		in.cleanup(ErrCanceled)
		return nil, ErrCanceled
	}
	if in.ua.isClosing() {
		_ = in.sendFinal(ErrClosed)
		return nil, ErrClosed
	}
	c, err := in.ensureCall()
	if err != nil {
		_ = in.sendFinal(err)
		return nil, err
	}
	res := sip.NewSDPResponseFromRequest(in.dlg.InviteRequest, c.localSDP())
	c.addDialogHeaders(res, in.timer)
	return in.confirm(c, res)
}

// confirm sends the 2xx, waits for the ACK and, for an offerless INVITE,
// takes the answer from it; then the call is established.
func (in *IncomingCall) confirm(c *Call, res *sip.Response) (*Call, error) {
	in.dlg.InviteResponse = res // sipgo builds the BYE's From from it
	in.mu.Lock()
	in.answered = true
	in.mu.Unlock()
	ack, err := retransmit2xx(in.tx, res, sip.IsReliable(in.req.Transport()), c.expectAck(res.CSeq().SeqNo), c.done)
	select {
	case <-c.done:
		in.settle(OutcomeCanceled)
		return nil, c.Err() // BYE crossed our 200
	default:
	}
	switch {
	case err != nil && in.canceled():
		in.settle(OutcomeCanceled)
		c.end(context.Background(), ErrCanceled, false)
		return nil, ErrCanceled
	case err != nil && in.dlg.LoadState() == sip.DialogStateEnded:
		in.settle(OutcomeCanceled)
		_ = c.end(context.Background(), ErrRemoteHangup, false) // BYE before ACK
		return nil, ErrRemoteHangup
	case err != nil:
		// Without an ACK sipgo will not send BYE (RFC 3261 §15 allows it
		// only after the ACK or the transaction's end); the peer is gone.
		in.log.Info("no ack for 200 ok")
		in.settle(OutcomeFailed)
		c.end(context.Background(), ErrNoAck, false)
		return nil, ErrNoAck
	case ack == nil:
		in.settle(OutcomeCanceled)
		return nil, c.Err() // BYE crossed our 200
	}
	_ = in.dlg.ReadAck(ack, nil) // confirms sipgo's dialog, whichever way the ACK came
	if in.offer == nil {
		if err := c.takeAnswer(ack); err != nil {
			in.log.Info("unusable answer in ack", "err", err)
			in.settle(OutcomeFailed)
			_ = c.end(context.Background(), ErrBadAnswer, true)
			return nil, ErrBadAnswer
		}
	}
	if in.ua.isClosing() {
		// Close began while we waited for the ACK and did not see the call.
		in.settle(OutcomeFailed)
		_ = c.end(context.Background(), ErrLocalHangup, true)
		return nil, ErrClosed
	}
	c.established()
	return c, nil
}

// claimFinal marks that a final response is on its way.
func (in *IncomingCall) claimFinal() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.final {
		return ErrFinalResponse
	}
	in.final = true
	return nil
}

// Reject sends the final response err stands for (its SIPStatus, else 500
// Server Internal Error; see StatusError) and waits for its ACK. It
// returns ErrFinalResponse when the INVITE already has one.
func (in *IncomingCall) Reject(err error) error {
	if cerr := in.claimFinal(); cerr != nil {
		return cerr
	}
	defer close(in.finished)
	return in.sendFinal(err)
}

// sendFinal sends an error response and ends early media. A cancelled
// INVITE has its 487 from sipgo already.
func (in *IncomingCall) sendFinal(err error) error {
	if in.canceled() {
		in.settle(OutcomeCanceled)
		in.cleanup(ErrCanceled)
		return ErrCanceled
	}
	in.settle(OutcomeRejected)
	code := statusOf(err)
	reason := reasonPhrase(code)
	var se *StatusError
	if errors.As(err, &se) {
		reason = se.reason()
	}
	rerr := in.dlg.Respond(code, reason, nil, refusalHeaders(err, code)...)
	in.cleanup(err)
	if rerr != nil && in.canceled() {
		return ErrCanceled
	}
	if rerr == nil {
		in.log.Info("call rejected", "code", code)
	}
	return rerr
}

// cleanup ends early media and forgets the dialog of an unanswered call.
func (in *IncomingCall) cleanup(reason error) {
	if c := in.currentCall(); c != nil {
		_ = c.end(context.Background(), reason, false)
	}
	in.ua.forget(in)
}

// retransmit2xx sends a 2xx on tx until its ACK arrives on acks (from the
// ACK handler) or on the transaction itself (a peer reusing the INVITE's
// branch), retransmitting at T1 doubling up to T2 over unreliable
// transports (RFC 3261 §13.3.1.4), and returns ErrNoAck after 64*T1. ended
// aborts the wait with a nil ACK (a BYE crossed our 200).
func retransmit2xx(tx sip.ServerTransaction, res *sip.Response, reliable bool, acks <-chan *sip.Request, ended <-chan struct{}) (*sip.Request, error) {
	if err := tx.Respond(res); err != nil {
		return nil, err
	}
	give := time.NewTimer(64 * sip.T1)
	defer give.Stop()
	interval := sip.T1
	resend := time.NewTimer(interval)
	defer resend.Stop()
	for {
		select {
		case ack := <-acks:
			return ack, nil
		case ack := <-tx.Acks():
			return ack, nil
		case <-ended:
			return nil, nil
		case <-tx.Done():
			return nil, ErrNoAck
		case <-give.C:
			return nil, ErrNoAck
		case <-resend.C:
			if !reliable {
				_ = tx.Respond(res)
			}
			interval = min(2*interval, sip.T2)
			resend.Reset(interval)
		}
	}
}

// retryAfter is the random 0–10 s RFC 3261 §14.2 asks for with a 500 to a
// re-INVITE that crossed another.
func retryAfter() sip.Header {
	return sip.NewHeader("Retry-After", strconv.Itoa(rand.IntN(11)))
}
