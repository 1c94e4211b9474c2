package sip

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SRTP (RFC 3711) with keys from SDES (sdes.go): a call whose offer is
// RTP/SAVP gets our own fresh key in the answer; outgoing RTP and RTCP
// are protected with ours, incoming unprotected with the caller's.
// Packets that fail authentication, and replays, are dropped and counted
// (DropSRTPAuth, DropSRTPReplay); the call carries on.

// SRTPPolicy is whether a trunk's calls use SRTP (sip.trunks.<name>.srtp).
type SRTPPolicy uint8

const (
	// SRTPOptional answers an RTP/SAVP offer with SRTP and an RTP/AVP
	// offer with plain RTP; the default, and the policy of calls when no
	// trunks are configured.
	SRTPOptional SRTPPolicy = iota
	// SRTPOff answers only plain RTP: an offer with only RTP/SAVP gets 488
	// (ErrNoCommonTransport).
	SRTPOff
	// SRTPRequired answers only SRTP: an offer with only plain RTP gets
	// 488 with Warning 399 "SRTP required" (ErrSRTPRequired), and an
	// INVITE without an offer gets an RTP/SAVP offer.
	SRTPRequired
)

var policyNames = [...]string{SRTPOptional: "optional", SRTPOff: "off", SRTPRequired: "required"}

// String returns the policy's configuration word.
func (p SRTPPolicy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "unknown"
}

// ParseSRTPPolicy parses "off", "optional" or "required"; empty is
// optional. Other words wrap ErrConfig.
func ParseSRTPPolicy(s string) (SRTPPolicy, error) {
	if s == "" {
		return SRTPOptional, nil
	}
	for i, n := range policyNames {
		if s == n {
			return SRTPPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("%w: srtp policy %q is not off, optional or required", ErrConfig, s)
}

// srtpTrailer is the most an SRTP or SRTCP packet is longer than the
// plain one: an 80-bit tag, plus the SRTCP index.
const srtpTrailer = 10 + 4

// srtpState is a call's SRTP contexts: tx protects what we send (our
// key), rx unprotects what arrives (the caller's key). A pion context is
// not safe for concurrent use: txMu serialises the send goroutine and the
// RTCP reports, rxMu the RTP and RTCP receive goroutines. Both nil: the
// call is plain RTP.
type srtpState struct {
	txMu  sync.Mutex
	tx    *srtp.Context
	txKey cryptoAttr
	txHdr rtp.Header // scratch for EncryptRTP, under txMu

	rxMu  sync.Mutex
	rx    *srtp.Context
	rxKey cryptoAttr
}

// replayWindow is the SRTP replay window in packets: RFC 3711 §3.3.2's
// minimum of 64 is 1.3 s of 20 ms audio; 256 covers more reordering.
const replayWindow = 256

// set installs the contexts for our key local and the caller's remote.
// A context whose key and suite stay is kept, with its rollover counter
// and replay window (a re-INVITE repeating the keys changes nothing); a
// new key gets a new context. Our own key is never reused in a new
// context: the rollover counter would restart and repeat keystream.
func (st *srtpState) set(local, remote *cryptoAttr) error {
	if (local == nil) != (remote == nil) {
		return errors.New("sip: srtp needs both keys")
	}
	if local == nil {
		st.txMu.Lock()
		st.tx = nil
		st.txMu.Unlock()
		st.rxMu.Lock()
		st.rx = nil
		st.rxMu.Unlock()
		return nil
	}
	st.txMu.Lock()
	if st.tx == nil || !sameKey(st.txKey, *local) {
		tx, err := newSRTPContext(*local)
		if err != nil {
			st.txMu.Unlock()
			return err
		}
		st.tx, st.txKey = tx, *local
	}
	st.txMu.Unlock()
	st.rxMu.Lock()
	defer st.rxMu.Unlock()
	if st.rx == nil || !sameKey(st.rxKey, *remote) {
		rx, err := newSRTPContext(*remote)
		if err != nil {
			return err
		}
		st.rx, st.rxKey = rx, *remote
	}
	return nil
}

func sameKey(a, b cryptoAttr) bool { return a.suite == b.suite && a.key == b.key }

// newSRTPContext creates a context for one key, with replay protection
// for both SRTP and SRTCP.
func newSRTPContext(c cryptoAttr) (*srtp.Context, error) {
	ctx, err := srtp.CreateContext(c.key[:16], c.key[16:], c.suite.profile(),
		srtp.SRTPReplayProtection(replayWindow), srtp.SRTCPReplayProtection(replayWindow))
	if err != nil {
		return nil, fmt.Errorf("sip: srtp context: %w", err)
	}
	return ctx, nil
}

// secure reports whether the call uses SRTP.
func (st *srtpState) secure() bool {
	st.txMu.Lock()
	defer st.txMu.Unlock()
	return st.tx != nil
}

// protectRTP returns pkt protected into dst (cap at least len(pkt) +
// srtpTrailer), or pkt itself for a plain call.
func (st *srtpState) protectRTP(dst, pkt []byte) ([]byte, error) {
	st.txMu.Lock()
	defer st.txMu.Unlock()
	if st.tx == nil {
		return pkt, nil
	}
	return st.tx.EncryptRTP(dst[:0], pkt, &st.txHdr)
}

// protectRTCP returns an RTCP compound packet protected, or as it is for
// a plain call.
func (st *srtpState) protectRTCP(pkt []byte) ([]byte, error) {
	st.txMu.Lock()
	defer st.txMu.Unlock()
	if st.tx == nil {
		return pkt, nil
	}
	return st.tx.EncryptRTCP(make([]byte, 0, len(pkt)+srtpTrailer), pkt, nil)
}

// unprotectRTP authenticates and decrypts b in place and returns the
// plain packet; hdr is the caller's scratch header. plain reports a call
// without SRTP (b is returned as it is). A packet that fails is
// classified: shorter than a header or not version 2 as RTP framing, a
// replayed index as DropSRTPReplay, anything else (no room for a tag, a
// wrong tag, plain RTP, a forged or garbled packet) as DropSRTPAuth.
func (st *srtpState) unprotectRTP(b []byte, hdr *rtp.Header) ([]byte, DropReason, bool) {
	st.rxMu.Lock()
	defer st.rxMu.Unlock()
	if st.rx == nil {
		return b, 0, true
	}
	if len(b) < rtpHeaderLen {
		return nil, DropRTPShort, false
	}
	if b[0]>>6 != 2 {
		return nil, DropRTPVersion, false
	}
	if len(b) < rtpHeaderLen+st.rxKey.suite.rtpTagLen() {
		return nil, DropSRTPAuth, false // no room for the tag
	}
	out, err := st.rx.DecryptRTP(b, b, hdr)
	if err != nil {
		return nil, srtpDropReason(err, b, false), false
	}
	return out, 0, true
}

// unprotectRTCP is unprotectRTP for SRTCP (RFC 3711 §3.4).
func (st *srtpState) unprotectRTCP(b []byte) ([]byte, DropReason, bool) {
	st.rxMu.Lock()
	defer st.rxMu.Unlock()
	if st.rx == nil {
		return b, 0, true
	}
	if len(b) < 8 {
		return nil, DropRTCPShort, false
	}
	if b[0]>>6 != 2 {
		return nil, DropRTCPVersion, false
	}
	if len(b) < 8+srtpTrailer {
		// No room for the index and tag: plain RTCP (baresip sends its
		// RTCP APP keep-alives so) or a forgery, unauthenticated either way.
		return nil, DropSRTPAuth, false
	}
	var hdr rtcp.Header
	out, err := st.rx.DecryptRTCP(b, b, &hdr)
	if err != nil {
		return nil, srtpDropReason(err, b, true), false
	}
	return out, 0, true
}

// srtpDropReason classifies a failed unprotect. pion reports a replay
// with an unexported error type whose text says "duplicated"; a header
// pion could not parse is RTP framing; everything else (a wrong tag, a
// packet too short for its tag, a forgery) fails authentication.
func srtpDropReason(err error, b []byte, isRTCP bool) DropReason {
	switch {
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
		return DropSRTPAuth
	case strings.Contains(err.Error(), "duplicated"):
		return DropSRTPReplay
	case isRTCP:
		return DropSRTPAuth
	}
	if r, ok := checkRTP(b); !ok && r != DropRTPPadding {
		return r // the padding octet is encrypted: not checkable before
	}
	return DropSRTPAuth
}

// initCrypto prepares our key when the call starts: for an SRTP offer,
// with the tag and suite we accept; for an offerless INVITE on a trunk
// that requires SRTP, for the RTP/SAVP offer we make (tag 1, the default
// suite).
func (c *Call) initCrypto() error {
	var lc cryptoAttr
	var err error
	switch {
	case c.in.offer != nil && c.in.rm.crypto != nil:
		lc, err = newLocalCrypto(c.in.rm.crypto.tag, c.in.rm.crypto.suite)
	case c.in.offer == nil && c.in.srtp == SRTPRequired:
		lc, err = newLocalCrypto(1, suiteAES80)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	c.local.crypto = &lc
	return nil
}

// localCrypto is our current key, nil for a plain call.
func (c *Call) localCrypto() *cryptoAttr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local.crypto
}

// renegotiationPolicy keeps a call's transport through re-INVITEs and
// UPDATEs: an SRTP call stays SRTP, a plain one plain (an offer that
// would switch gets 488 and the session goes on as it was).
func (c *Call) renegotiationPolicy() SRTPPolicy {
	if c.localCrypto() != nil {
		return SRTPRequired
	}
	return SRTPOff
}

// answerCrypto sets our key for answering a new SRTP offer rm: the same
// key under the offer's tag while the suite stays (RFC 4568 §7.1.4 lets
// the answerer keep its key), a fresh one for another suite.
func (c *Call) answerCrypto(rm remoteMedia) error {
	if rm.crypto == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if lc := c.local.crypto; lc != nil && lc.suite == rm.crypto.suite {
		next := *lc
		next.tag = rm.crypto.tag
		c.local.crypto = &next
		return nil
	}
	lc, err := newLocalCrypto(rm.crypto.tag, rm.crypto.suite)
	if err != nil {
		return err
	}
	c.local.crypto = &lc
	return nil
}

// configureMedia applies a negotiated description to the RTP session and
// its SRTP contexts: a new key from the caller gets a new inbound
// context, ours stays as long as it does.
func (c *Call) configureMedia(rm remoteMedia) error {
	if err := c.media.configure(rm); err != nil {
		return err
	}
	var local *cryptoAttr
	if rm.crypto != nil {
		local = c.localCrypto()
	}
	return c.media.srtp.set(local, rm.crypto)
}

// srtpPolicy is the SRTP policy of the named trunk's calls; optional when
// no trunks are configured.
func (tr *trunking) srtpPolicy(name string) SRTPPolicy {
	for _, t := range tr.trunks {
		if t.Name == name {
			return t.SRTP
		}
	}
	return SRTPOptional
}

// warnClearKeys warns once per trunk at start (and at each reload) when a trunk requires SRTP
// but SIP runs without TLS: SDES keys travel in the SDP, so they are only
// as secret as the signalling that carries them.
func (u *UA) warnClearKeys() {
	if u.tls != nil {
		return
	}
	for _, t := range u.trunks().trunks {
		if t.SRTP == SRTPRequired {
			u.log.Warn("trunk requires srtp but sip runs without tls: sdes keys travel in clear signalling",
				"trunk", t.Name)
		}
	}
}
