package sip

import (
	"errors"
	"fmt"
)

// Error is a sip error that knows the final response it stands for, so the
// UA (and the bridge, which maps its own errors the same way) turns an error
// into a SIP response in one place: errors.As with an interface holding
// SIPStatus finds it through any %w wrapping.
type Error struct {
	msg    string
	status int
}

// Error returns the lower-case message.
func (e *Error) Error() string { return e.msg }

// SIPStatus is the final response code an INVITE is answered with when this
// error ends it (RFC 3261 §21).
func (e *Error) SIPStatus() int { return e.status }

// Errors of package sip that refuse or end an INVITE. Compare with
// errors.Is; they are wrapped with %w and detail where it helps.
var (
	// ErrClosed means the UA is shutting down or shut down: new calls are
	// refused with 503 Service Unavailable (RFC 3261 §21.5.4), so a carrier
	// tries another node.
	ErrClosed = &Error{"sip: user agent closed", 503}

	// ErrCanceled means the caller gave up (CANCEL, RFC 3261 §9.2) before
	// the call was answered; the INVITE got 487 Request Terminated.
	ErrCanceled = &Error{"sip: call canceled by the caller", 487}

	// ErrNoCommonCodec means the offer holds no audio codec of sip.codecs
	// on a stream whose transport the call may use: 488 Not Acceptable
	// Here with a Warning 305 "Incompatible media format" (RFC 3261
	// §21.4.26, §20.43).
	ErrNoCommonCodec = &Error{"sip: no acceptable audio codec", 488}

	// ErrSRTPRequired means the call's trunk requires SRTP (sip.trunks.
	// <name>.srtp: required) and the offer has only plain RTP: 488 Not
	// Acceptable Here with Warning 399 "SRTP required".
	ErrSRTPRequired = &Error{"sip: srtp required", 488}

	// ErrNoCommonTransport means the offer has only SRTP (RTP/SAVP) and
	// the call's trunk has SRTP off: 488 with Warning 302 "Incompatible
	// transport protocol" (RFC 3261 §20.43).
	ErrNoCommonTransport = &Error{"sip: no common media transport", 488}

	// ErrCrypto means an SRTP stream's a=crypto attributes (RFC 4568) hold
	// none mediagate can honour: another suite than AES_CM_128_HMAC_SHA1_80
	// or _32, a key that is not 30 octets of base64, an MKI, a lifetime
	// below 2^31, an unknown session parameter, a tag used twice. 488 with
	// Warning 399 naming the reason; the message never holds the key.
	ErrCrypto = &Error{"sip: no usable srtp crypto attribute", 488}

	// ErrBadSDP means a session description could not be parsed or makes
	// no sense (no audio stream, no address); 400 Bad Request.
	ErrBadSDP = &Error{"sip: malformed session description", 400}

	// ErrNoPorts means every RTP port of rtp.port_min..rtp.port_max is in
	// use: the node is full, so 503 lets the carrier try elsewhere.
	ErrNoPorts = &Error{"sip: no free rtp port", 503}

	// ErrFinalResponse means Ring, Progress, Answer or Reject came after the
	// INVITE already got its final response: a call is answered or
	// rejected exactly once (RFC 3261 §13.3.1).
	ErrFinalResponse = &Error{"sip: invite already has a final response", 500}

	// ErrIntervalTooSmall means the caller asked for a session interval
	// (Session-Expires) below sip.min_se: 422 Session Interval Too Small
	// with our Min-SE, so that it retries with a longer one (RFC 4028 §6).
	ErrIntervalTooSmall = &Error{"sip: session interval too small", 422}

	// ErrNoEarlyMedia means Progress was asked for on an INVITE without an
	// SDP offer: our offer would need a reliable 183 (RFC 3262, 100rel),
	// which mediagate does not implement, so early media is impossible.
	ErrNoEarlyMedia = &Error{"sip: no early media without an offer in the invite", 500}
)

// Errors that end an established call (Call.Err), and configuration errors.
// They carry no response code: the call was answered already.
var (
	// ErrNoAck means the caller never acknowledged our 200 OK within 64*T1
	// (RFC 3261 §13.3.1.4); the call is torn down with BYE.
	ErrNoAck = errors.New("sip: no ack for 200 ok")

	// ErrRemoteHangup ends a call whose peer sent BYE.
	ErrRemoteHangup = errors.New("sip: remote hung up")

	// ErrLocalHangup ends a call that Hangup (or the UA's Close) hung up.
	ErrLocalHangup = errors.New("sip: hung up")

	// ErrMediaTimeout ends a call that received no RTP or RTCP for
	// sip.media_timeout while not on hold: the peer is gone without a BYE
	// (crashed, network lost), so mediagate sends one and frees the seat.
	ErrMediaTimeout = errors.New("sip: no media received")

	// ErrSessionExpired ends a call whose session timer ran out (RFC 4028
	// §10): the caller was to refresh the session and did not before the
	// expiry, or our refresh got 408, 481 or no answer at all. The caller
	// is gone without a BYE; mediagate sends one, with a Reason header.
	ErrSessionExpired = errors.New("sip: session timer expired")

	// ErrMaxDuration ends a call that reached sip.max_call_duration
	// (WithMaxCallDuration); the caller gets a BYE with a Reason header
	// (RFC 3326) saying so.
	ErrMaxDuration = errors.New("sip: maximum call duration reached")

	// ErrBadAnswer ends an offerless call whose ACK carried no usable SDP
	// answer (RFC 3264 §5: the answer must pick one of the offered codecs);
	// the call is torn down with BYE.
	ErrBadAnswer = errors.New("sip: unusable sdp answer in ack")

	// ErrUnknownCodec is returned by ParseCodecs and New for a codec name
	// other than PCMU, PCMA, G722 or opus, or one named twice.
	ErrUnknownCodec = errors.New("sip: unknown or repeated codec name")

	// ErrConfig is returned by New for options out of range (port range,
	// timeouts), so a bad configuration fails at start.
	ErrConfig = errors.New("sip: invalid configuration")
)

// StatusError is a final response chosen by the handler: IncomingCall.Reject
// sends Code with Reason (the standard phrase when empty). Errors of other
// packages need not use it; any error with a SIPStatus() int method works.
type StatusError struct {
	// Code is the response code, 300..699.
	Code int
	// Reason is the reason phrase; empty means the RFC 3261 §21 phrase.
	Reason string
	// RetryAfter, when positive, adds a Retry-After header in seconds
	// (RFC 3261 §20.33), which carriers honour on 503 and 486.
	RetryAfter int
}

// Error describes the status for logs.
func (e *StatusError) Error() string {
	return fmt.Sprintf("sip: rejected with %d %s", e.Code, e.reason())
}

// SIPStatus returns Code.
func (e *StatusError) SIPStatus() int { return e.Code }

func (e *StatusError) reason() string {
	if e.Reason != "" {
		return e.Reason
	}
	return reasonPhrase(e.Code)
}

// statusOf returns the response code an error stands for: its SIPStatus
// when it has one in 300..699, otherwise 500 Server Internal Error.
func statusOf(err error) int {
	var s interface{ SIPStatus() int }
	if errors.As(err, &s) {
		if c := s.SIPStatus(); c >= 300 && c <= 699 {
			return c
		}
	}
	return 500
}

// reasonPhrase returns the reason phrase RFC 3261 §21 gives a code.
func reasonPhrase(code int) string {
	if p, ok := reasonPhrases[code]; ok {
		return p
	}
	switch {
	case code < 200:
		return "Session Progress"
	case code < 300:
		return "OK"
	case code < 400:
		return "Redirection"
	case code < 500:
		return "Client Error"
	case code < 600:
		return "Server Error"
	}
	return "Global Failure"
}

var reasonPhrases = map[int]string{
	100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 408: "Request Timeout", 410: "Gone",
	415: "Unsupported Media Type", 420: "Bad Extension", 422: "Session Interval Too Small",
	480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
	486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
	491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
	503: "Service Unavailable", 603: "Decline",
}

// Errors of registration trunks (Registration.Err). They are wrapped with
// %w and the registrar's status.
var (
	// ErrRegisterAuth means the registrar refused our credentials (a
	// second 401 or 407 to an answered challenge, RFC 3261 §22.2) or
	// challenged in a way we cannot answer (no MD5 or SHA-256 digest, a
	// foreign realm, only qop=auth-int).
	ErrRegisterAuth = errors.New("sip: registrar refused our credentials")

	// ErrRegisterRefused means the registrar answered REGISTER with an
	// error response other than a challenge (RFC 3261 §10.2); the
	// registration is retried with backoff.
	ErrRegisterRefused = errors.New("sip: registrar refused the registration")
)
