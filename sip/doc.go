// Package sip is mediagate's SIP user agent: UDP, TCP and TLS transports
// (sipgo), the INVITE server side with its dialogs (re-INVITE and UPDATE
// for hold, resume and media moves; session timers, RFC 4028; a call
// length limit), SDP offer/answer (pion/sdp), one RTP/RTCP session per
// call (SRTP with SDES keys when offered or required: sdes.go, srtp.go),
// and the caller's DTMF from RFC 4733 events, SIP INFO and in-band tones.
//
// It exposes calls and knows nothing of rooms: a Handler (the bridge) gets
// each IncomingCall, rings, answers or rejects it, and turns the answered
// Call — its Codec, ReadFrame, WriteAudio, DTMF and Done — into a room
// participant.
//
// Privacy (decision 8): caller numbers are Number values that log masked,
// Call-IDs log with addresses anonymised, peer addresses are logged as
// their /24 (IPv6 /48), and sipgo's own log records pass through a filter
// that redacts them the same way, SDES keys (inline:...) included.
//
// Trunks (trunk.go, digest.go, register.go) decide who may call: with
// none configured everyone may; otherwise a request outside a dialog must
// come from a trunk's CIDRs, answer a digest challenge with a trunk's
// credentials, or come from the registrar the UA keeps a registration
// trunk's binding at. Others get 403, or silence with WithHideUnknown.
// Each trunk has an SRTPPolicy: optional, off or required.
//
// The abuse guard (guard.go, WithGuard) comes before the trunks: per
// source address a token bucket of messages counted before parsing, bans
// that double for repeat offenders and are shared through a BanList,
// scanners' User-Agents dropped, and call caps (503 with Retry-After).
// Trunk sources are exempt.
package sip
