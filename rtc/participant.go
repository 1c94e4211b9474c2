package rtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

// Reasons a session ends, for the log.
var (
	errConnectTimeout = errors.New("not connected in time")
	errLeft           = errors.New("left")
)

// participant is one WHIP or WHEP session: a PeerConnection and the room
// member behind it. Its run goroutine (owned by the Server) waits for the
// end of the session and tears it down; the goroutines it starts for pion
// (readers, sender) are children it waits for.
type participant struct {
	srv      *Server
	log      *slog.Logger
	session  string
	roomID   room.ID
	listen   bool // WHEP: never contributes audio
	grant    Grant
	info     room.Info
	offer    offerInfo
	location string
	etag     string
	answer   string

	rm   atomic.Pointer[room.Room] // set once joined
	left atomic.Bool               // Leave called (or the room let go)

	// voice is the session's audio: the peer's, decoded for the mixer
	// (WHIP only), and the mix sent to the peer.
	voice
	gotAudio atomic.Bool // the first audio track is taken

	video *VideoSub // a WHEP viewer's presenter video; guarded by mu

	stopOnce   sync.Once
	stopCh     chan struct{} // closed by stop
	stopErr    error
	detachOnce sync.Once
	detached   chan struct{} // closed by Detached
	detachErr  error
	connOnce   sync.Once
	connected  chan struct{} // closed when the PeerConnection connects
	done       chan struct{} // closed at teardown: children stop

	keys      *dtlsKeys   // the session's DTLS handshake, for the direct mix
	mixDirect atomic.Bool // the mix goes around pion, for the log

	mu      sync.Mutex
	pc      *webrtc.PeerConnection
	audio   *webrtc.RTPSender // the mix's sender, when the peer takes audio
	closing bool
	wg      sync.WaitGroup // children
}

var _ room.Participant = (*participant)(nil)

// newParticipant prepares a session for a checked offer; nothing runs yet.
func (s *Server) newParticipant(id room.ID, g Grant, oi offerInfo, listen bool) (*participant, error) {
	sess := newSessionID()
	pid := g.ParticipantID
	if pid == "" {
		// Not the session ID: participant IDs are shown to operators and
		// in lists, the session URL must stay with its client.
		pid = room.ParticipantID("webrtc-" + newSessionID())
	}
	p := &participant{
		srv: s, session: sess, roomID: id, listen: listen, grant: g, offer: oi,
		log:       s.log.With("room", string(id), "session", sess),
		info:      room.Info{ID: pid, Name: g.Name, Kind: room.KindWebRTC, Format: opusFormat(oi.fec, s.set.Opus)},
		location:  sessionPath(listen, id, sess),
		etag:      `"` + newSessionID() + `"`,
		stopCh:    make(chan struct{}),
		detached:  make(chan struct{}),
		connected: make(chan struct{}),
		done:      make(chan struct{}),
	}
	if err := p.voice.init(!listen); err != nil {
		return nil, err
	}
	return p, nil
}

// start answers the offer and then joins the room, so that an offer pion
// refuses never shows up in the room. On error the caller stops p.
func (p *participant) start(ctx context.Context, offer string) error {
	answer, err := p.negotiate(ctx, offer)
	if err != nil {
		return err
	}
	rm, err := p.srv.rooms.Join(p.roomID, p)
	if err != nil {
		p.left.Store(true)
		return err
	}
	p.rm.Store(rm)
	select {
	case <-p.stopCh:
		// Stopped (server closing) while joining: run may have passed its
		// leave already, so leave here.
		p.leave()
		return p.stopReason()
	default:
	}
	p.answer = answer
	p.log.Info("session started", "participant", string(p.info.ID), "whep", p.listen,
		"format", p.info.Format.String(), "video_in", p.offer.sendVideo && !p.listen, "video_out", p.offer.recvVideo && p.listen)
	return nil
}

// negotiate creates the PeerConnection, answers the offer and waits for
// ICE gathering to complete (non-trickle, RFC 9725 §4.3.1), bounded by the
// gather timeout and the request's context.
func (p *participant) negotiate(ctx context.Context, offer string) (string, error) {
	if !p.srv.set.MixThroughPion {
		p.keys = &dtlsKeys{}
	}
	api, err := p.srv.sessionAPI(p.keys, p.offer.actpass, p.kind())
	if err != nil {
		return "", err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("rtc: new peer connection: %w", err)
	}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		_ = pc.Close()
		return "", ErrServerClosed
	}
	p.pc = pc
	p.mu.Unlock()
	pc.OnConnectionStateChange(p.onState)
	pc.OnTrack(p.onTrack)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNegotiation, err)
	}
	if p.offer.recvAudio {
		sender, err := pc.AddTrack(p.out)
		if err != nil {
			return "", fmt.Errorf("%w: audio track: %w", ErrNegotiation, err)
		}
		p.goChild(func() { drainRTCP(sender) })
		p.mu.Lock()
		p.audio = sender
		p.mu.Unlock()
	}
	if p.listen && p.offer.recvVideo {
		if err := p.srv.addViewer(p, pc); err != nil {
			return "", fmt.Errorf("%w: video track: %w", ErrNegotiation, err)
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNegotiation, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNegotiation, err)
	}
	t := time.NewTimer(p.srv.set.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return "", fmt.Errorf("%w after %v", ErrGatherTimeout, p.srv.set.GatherTimeout)
	case <-ctx.Done():
		return "", context.Cause(ctx)
	case <-p.stopCh:
		return "", p.stopReason()
	}
	return pc.LocalDescription().SDP, nil
}

// kind is what interceptors the session needs (pionParts): a WHEP
// listener without video none.
func (p *participant) kind() sessionKind {
	switch {
	case p.offer.sendVideo || p.offer.recvVideo:
		return kindVideo
	case p.listen:
		return kindListen
	}
	return kindAudio
}

// onState follows the PeerConnection: connected stops the connect timer;
// failed (ICE silent for the disconnect timeout) or closed ends the
// session.
func (p *participant) onState(st webrtc.PeerConnectionState) {
	p.log.Debug("peer connection state", "state", st.String())
	switch st {
	case webrtc.PeerConnectionStateConnected:
		p.connOnce.Do(func() {
			p.beginSending()
			close(p.connected)
		})
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		p.stop(fmt.Errorf("peer connection %s", st))
	}
}

// beginSending lets the room's mix go to a peer that takes audio, now
// that the connection is up (pion drops what is written before), around
// pion where the session's keys are known and through the track where
// not.
func (p *participant) beginSending() {
	p.mu.Lock()
	pc, audio := p.pc, p.audio
	p.mu.Unlock()
	if audio == nil {
		return
	}
	if p.keys != nil {
		d, err := newDirectSender(p.keys, p.srv.input, pc, audio)
		switch {
		case err != nil && p.offer.actpass:
			// The gateway was the DTLS server: the keys should be known.
			p.log.Warn("mix through pion", "why", err.Error())
		case err != nil:
			p.log.Debug("mix through pion", "why", err.Error())
		default:
			p.direct = d
			p.mixDirect.Store(true)
		}
	}
	p.startSending()
}

// onTrack starts a reader for a track from the peer; it returns at once
// (pion calls it from its own goroutine).
func (p *participant) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	p.goChild(func() { drainRTCP(r) })
	switch {
	case t.Kind() == webrtc.RTPCodecTypeAudio && !p.listen && p.gotAudio.CompareAndSwap(false, true):
		p.goChild(func() { p.readAudio(t, r) })
	case t.Kind() == webrtc.RTPCodecTypeVideo && !p.listen && p.grant.Present:
		p.goChild(func() { p.srv.publishVideo(p, t) })
	default:
		// A listener's audio, a second audio track, unauthorised video:
		// read and dropped, so pion's buffers do not fill.
		p.goChild(func() { drainRTP(t) })
	}
}

// Info implements room.Participant.
func (p *participant) Info() room.Info { return p.info }

// ReadFrame implements room.Participant: the next 20 ms from the jitter
// buffer, decoded or concealed. A WHEP listener never has audio.
func (p *participant) ReadFrame(dst *media.Frame) bool { return p.readFrame(dst) }

// WriteMix implements room.Participant: the payload is copied into a free
// slot of the send queue, or dropped when the sender is behind.
func (p *participant) WriteMix(pkt room.Packet) bool {
	if !p.offer.recvAudio {
		return true // a send-only publisher takes no audio
	}
	return p.writeMix(pkt)
}

// Detached implements room.Participant: the room let go, so the session
// ends; the run goroutine closes the PeerConnection.
func (p *participant) Detached(err error) {
	p.detachOnce.Do(func() {
		p.detachErr = err
		p.left.Store(true)
		p.voice.detached()
		close(p.detached)
	})
}

// stop ends the session for err (nil: the client asked); run does the rest.
func (p *participant) stop(err error) {
	p.stopOnce.Do(func() {
		p.stopErr = err
		close(p.stopCh)
	})
}

// stopReason is why the session was stopped, never nil; call it once
// stopCh is closed.
func (p *participant) stopReason() error {
	if p.stopErr != nil {
		return p.stopErr
	}
	return errLeft
}

// leave takes the participant out of its room, once.
func (p *participant) leave() {
	rm := p.rm.Load()
	if rm == nil || !p.left.CompareAndSwap(false, true) {
		return
	}
	_ = rm.Leave(p.info.ID) // fails only when the room let go already
}

// run is the session goroutine: it waits for the session to end (DELETE,
// the room letting go, the peer failing or never connecting, the server
// closing), then leaves the room and tears the PeerConnection down.
func (p *participant) run() {
	reason := p.wait()
	p.srv.unregisterIf(p) // first, so a session is gone once its Left event is out
	p.leave()
	p.teardown()
	if reason == nil {
		reason = errLeft
	}
	mix := "pion"
	if p.mixDirect.Load() {
		mix = "direct"
	}
	p.log.Info("session ended", "participant", string(p.info.ID), "reason", reason.Error(),
		"received", p.received.Load(), "sent", p.sent.Load(), "dropped", p.dropped.Load(), "mix", mix)
}

func (p *participant) wait() error {
	timer := time.NewTimer(p.srv.set.ConnectTimeout)
	defer timer.Stop()
	connected := p.connected
	for {
		select {
		case <-connected:
			timer.Stop()
			connected = nil
		case <-timer.C:
			return errConnectTimeout
		case <-p.detached:
			return p.detachErr
		case <-p.stopCh:
			return p.stopErr
		}
	}
}

// teardown closes the PeerConnection (bounded by teardownTimeout; a close
// that takes longer finishes in the background under the Server's wait
// group) and waits for the children.
func (p *participant) teardown() {
	p.mu.Lock()
	p.closing = true
	pc := p.pc
	p.mu.Unlock()
	close(p.done)
	p.srv.dropVideo(p)
	if pc != nil {
		closed := make(chan struct{})
		p.srv.wg.Go(func() {
			defer close(closed)
			if err := pc.Close(); err != nil {
				p.log.Debug("close peer connection", "err", err)
			}
		})
		t := time.NewTimer(teardownTimeout)
		select {
		case <-closed:
		case <-t.C:
			p.log.Warn("peer connection close takes long", "timeout", teardownTimeout)
		}
		t.Stop()
	}
	p.wg.Wait()
}

// goChild runs fn as a child of the session, unless it is tearing down.
func (p *participant) goChild(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return
	}
	p.wg.Go(fn)
}
