package sip

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"

	"github.com/mediagate/mediagate/media"
)

// byeTimeout bounds a BYE transaction at hang-up: long enough for a few
// retransmissions over UDP, short enough not to stall a shutdown.
const byeTimeout = 4 * time.Second

// Call is an answered (or early-media) phone call: its negotiated codec,
// its audio in both directions, its DTMF, and its end. The bridge turns it
// into a room participant. All methods are safe for concurrent use, except
// that ReadFrame must be called from one goroutine at a time (the mixer's).
type Call struct {
	ua    *UA
	in    *IncomingCall
	info  CallInfo
	log   *slog.Logger
	media *rtpSession
	dtmf  *dtmfQueue

	mu         sync.Mutex
	local      localMedia
	lastSDP    []byte // the description we sent last
	remote     remoteMedia
	codec      Codec
	acks       map[uint32]chan *sip.Request // waiting for the ACK of a 2xx, by CSeq
	reinviting bool
	offer      offerState
	dialogState

	done    chan struct{}
	endOnce sync.Once
	err     error
	active  atomic.Int32 // callSettingUp, callActive, callEnded (metrics.go)
}

// newCall binds the call's RTP ports and prepares our SDP: the answer to
// the INVITE's offer, or our offer for an offerless INVITE.
func newCall(in *IncomingCall) (*Call, error) {
	c := &Call{ua: in.ua, in: in, info: in.info, log: in.log, dtmf: newDTMFQueue(in.ua.meters.countDTMF),
		acks: map[uint32]chan *sip.Request{}, done: make(chan struct{})}
	c.initDialogState()
	var mux *rtpMux
	if src, err := netip.ParseAddrPort(in.req.Source()); err == nil && in.offer != nil && in.ua.mux != nil &&
		useShared(in.rm.rtp, src.Addr()) && !in.ua.mux.routed(in.rm.rtp) {
		mux = in.ua.mux
	}
	m, err := newRTPSession(in.log, in.ua.ports, mux, &in.ua.wg, func(d DTMF) { c.dtmf.push(d) })
	if err != nil {
		return nil, err
	}
	c.media = m
	c.local = localMedia{addr: in.ip, port: m.port, sessID: rand.Uint64() >> 2, version: 1}
	if err := c.initCrypto(); err != nil {
		m.close()
		return nil, err
	}
	if in.offer != nil {
		if err := c.configureMedia(in.rm); err != nil {
			m.close()
			return nil, err
		}
		c.remote, c.codec = in.rm, in.rm.codec
		c.lastSDP, err = buildAnswer(c.local, in.offer, in.rm)
	} else {
		c.lastSDP, err = buildOffer(c.local, in.ua.opts.codecs, sdp.DirectionSendRecv)
		c.offer = offerSent // until the ACK answers it
		c.offerAll = true
	}
	if err != nil {
		m.close()
		return nil, err
	}
	return c, nil
}

// ID is the SIP Call-ID, unique per call; the bridge uses it as the room
// participant ID.
func (c *Call) ID() CallID { return c.info.ID }

// Info describes the call as the INVITE presented it.
func (c *Call) Info() CallInfo { return c.info }

// Codec is the negotiated audio codec. It does not change during the call
// (re-INVITEs that would change it are refused), so the bridge chooses the
// caller's room.Format once.
func (c *Call) Codec() Codec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.codec
}

// WriteAudio queues one encoded 20 ms frame (in Codec, from PCM at
// Codec().SampleRate) for sending as one RTP packet with the call's own
// sequence number, timestamp and SSRC (RFC 3550 §5.1). frame numbers the
// frame on the sender's clock, e.g. the room's tick: the RTP timestamp
// advances by one frame per number, so frames the sender skipped keep the
// timeline, and the packet after a gap carries the marker bit. The payload
// is copied; WriteAudio never blocks and returns false only when the send
// queue is full (the frame is dropped and counted). While the caller has
// us on hold nothing is sent and it returns true.
func (c *Call) WriteAudio(payload []byte, frame uint64) bool {
	return c.media.writeAudio(payload, frame)
}

// ReadFrame fills pcm with the caller's next 20 ms of audio at
// Codec().SampleRate (pcm needs SampleRate/50 samples) from the jitter
// buffer and decoder, concealing losses, and returns the samples written
// and where they came from: media.PlayoutSilence means the buffer had
// nothing (yet) and pcm holds silence. It never blocks. Call it once per
// 20 ms from one goroutine: in-band DTMF of G.711 calls without
// telephone-event is detected on the frames it returns, so a caller must
// read continuously (the IVR and the mixer do).
func (c *Call) ReadFrame(pcm []int16) (int, media.PlayoutStatus) {
	return c.media.readFrame(pcm)
}

// DTMF delivers the caller's key presses from RFC 4733 events, SIP INFO and
// in-band detection, each press once (see DTMF). The channel is buffered
// (32) and never closed: select on Done as well. Presses are dropped when
// nobody reads.
func (c *Call) DTMF() <-chan DTMF { return c.dtmf.ch }

// Done is closed when the call has ended and its media is released.
func (c *Call) Done() <-chan struct{} { return c.done }

// Err is why the call ended (ErrRemoteHangup, ErrLocalHangup,
// ErrMediaTimeout, ErrCanceled, ...), nil while it lasts.
func (c *Call) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Held reports whether the caller has put us on hold (we must not send).
func (c *Call) Held() bool { return !c.media.sending.Load() }

// Stats returns the call's media counters.
func (c *Call) Stats() Stats { return c.media.snapshot() }

// Hangup ends the call: BYE for an answered call (RFC 3261 §15.1.1),
// 480 Temporarily Unavailable for one still in early media; then the media
// is released. It waits for the BYE's response at most byeTimeout, even if
// ctx is already cancelled, and returns its error (nil when the call had
// ended already).
func (c *Call) Hangup(ctx context.Context) error {
	c.in.mu.Lock()
	answered := c.in.answered
	c.in.mu.Unlock()
	if !answered {
		c.end(ctx, ErrLocalHangup, false)
		if err := c.in.Reject(&StatusError{Code: 480}); !errors.Is(err, ErrFinalResponse) {
			return err
		}
		return nil
	}
	return c.end(ctx, ErrLocalHangup, true)
}

// end ends the call once: BYE first when bye is set (teardown outlives
// cancellation: context.WithoutCancel plus byeTimeout), then media, then
// Done. Concurrent callers wait for the first.
func (c *Call) end(ctx context.Context, reason error, bye bool) error {
	var err error
	first := false
	c.endOnce.Do(func() {
		first = true
		c.mu.Lock()
		c.err = reason
		c.mu.Unlock()
		c.stop() // aborts a session refresh in flight
		if bye {
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), byeTimeout)
			err = c.sendBye(bctx, reason)
			cancel()
		}
		c.media.close()
		st := c.media.snapshot()
		c.ua.retire(c, st)
		if c.active.Swap(callEnded) == callActive {
			c.ua.meters.active.Add(-1)
		}
		c.in.cancel()
		attrs := []any{"reason", reason, "rx", st.Received, "tx", st.Sent,
			"lost", st.Jitter.Lost, "malformed", st.Malformed, "bye_err", err}
		if st.SRTP {
			attrs = append(attrs, "srtp_auth", st.MalformedBy[DropSRTPAuth], "srtp_replay", st.MalformedBy[DropSRTPReplay])
		}
		c.log.Info("call ended", attrs...)
		close(c.done)
	})
	if !first {
		<-c.done
	}
	return err
}

// sendBye sends BYE to the caller (RFC 3261 §15.1.1), saying why with a
// Reason header (RFC 3326) when mediagate's own limits end the call.
func (c *Call) sendBye(ctx context.Context, reason error) error {
	bye := c.newRequest(sip.BYE)
	if h := byeReason(reason); h != nil {
		bye.AppendHeader(h)
	}
	return c.in.dlg.WriteBye(ctx, bye)
}

// newRequest starts a request inside the dialog, to the caller's current
// target (RFC 3261 §12.2.1.1), with our own Via, since sipgo's default Via
// names the listener's wildcard address.
func (c *Call) newRequest(method sip.RequestMethod) *sip.Request {
	transport := c.in.dlg.InviteRequest.Transport()
	req := sip.NewRequest(method, c.remoteTarget())
	req.SetTransport(transport)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: transport,
		Host: c.in.ip.String(), Port: c.ua.portFor(transport), Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	req.AppendHeader(via)
	if !sip.IsReliable(transport) {
		// Send from the SIP port (RFC 3261 §18.1.1), not an ephemeral one,
		// so the request passes the same NAT bindings as the INVITE did.
		if la, ok := c.ua.udp.LocalAddr().(*net.UDPAddr); ok {
			req.Laddr = sip.Addr{IP: la.IP, Port: la.Port}
		}
		return req
	}
	// Over TCP and TLS, reuse the caller's connection while it is open
	// (RFC 5923 §4): a phone behind NAT cannot take a new one.
	src := c.in.dlg.InviteRequest.Source()
	if _, err := c.ua.srv.TransportLayer().GetConnection(transport, src); err == nil {
		req.SetDestination(src)
	}
	return req
}

// localSDP is the description we sent last (or will send first).
func (c *Call) localSDP() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastSDP
}

// describe builds our next description; the o= version grows only when it
// differs from the last one (RFC 3264 §8).
func (c *Call) describe(build func(localMedia) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := build(c.local)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(b, c.lastSDP) {
		c.local.version++
		if b, err = build(c.local); err != nil {
			return nil, err
		}
	}
	c.lastSDP, c.offerAll = b, false
	return b, nil
}

// expectAck returns the channel the ACK of the 2xx with CSeq cseq arrives on.
func (c *Call) expectAck(cseq uint32) <-chan *sip.Request {
	ch := make(chan *sip.Request, 1)
	c.mu.Lock()
	c.acks[cseq] = ch
	c.mu.Unlock()
	return ch
}

// deliverAck hands an ACK to whoever waits for it; retransmitted ACKs find
// nobody and are dropped.
func (c *Call) deliverAck(req *sip.Request) {
	c.mu.Lock()
	ch := c.acks[req.CSeq().SeqNo]
	delete(c.acks, req.CSeq().SeqNo)
	c.mu.Unlock()
	if ch != nil {
		ch <- req
	}
}

// takeAnswer reads the SDP answer of an offerless INVITE from its ACK
// (RFC 3261 §13.2.1) and starts media.
func (c *Call) takeAnswer(ack *sip.Request) error {
	if len(ack.Body()) == 0 {
		return ErrBadSDP
	}
	sd, err := parseSDP(ack.Body())
	if err != nil {
		return err
	}
	rm, err := readAnswer(sd, c.ua.opts.codecs, "", c.localCrypto())
	if err != nil {
		return err
	}
	if err := c.configureMedia(rm); err != nil {
		return err
	}
	c.mu.Lock()
	c.remote, c.codec = rm, rm.codec
	c.offer = offerNone
	c.mu.Unlock()
	return nil
}

// established starts the media timeout, the session timer and the call
// length limit once the ACK is in.
func (c *Call) established() {
	if c.active.CompareAndSwap(callSettingUp, callActive) {
		c.ua.meters.active.Add(1)
	}
	c.in.settle(OutcomeAnswered)
	c.media.watch(c.ua.opts.mediaTimeout, func() {
		c.log.Info("media timeout", "after", c.ua.opts.mediaTimeout)
		_ = c.end(context.Background(), ErrMediaTimeout, true)
	})
	c.startSupervisor()
	c.mu.Lock()
	codec, te, secure := c.codec, c.remote.tePT >= 0, c.local.crypto != nil
	c.mu.Unlock()
	c.log.Info("call answered", "codec", codec.String(), "telephone_event", te, "srtp", secure)
}
