package rtc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

// Limits of a Link's WHIP requests.
const (
	// MaxLinkRedirects is how many 307/308 redirects Dial follows: the
	// node asked may send it to the owner, and an owner that just moved
	// once more.
	MaxLinkRedirects = 3
	// DefaultLinkHTTPTimeout bounds each WHIP request of a link with the
	// default HTTP client.
	DefaultLinkHTTPTimeout = 10 * time.Second
	// maxAnswerSize caps the answer's body; it is an offer's cousin.
	maxAnswerSize = MaxOfferSize
)

// LinkOptions configure Dial. Only ParticipantID is required.
type LinkOptions struct {
	// Token is the bearer token of the WHIP POST and DELETE
	// (RFC 9725 §4.5); the binary mints one that lets the link publish in
	// the remote room.
	Token string
	// ParticipantID and Name are the link's identity in the local relay
	// room (Info); the remote room names it after its token.
	ParticipantID room.ParticipantID
	Name          string
	// HTTPClient sends the WHIP requests; redirects are always handled by
	// Dial itself (at most MaxLinkRedirects, 307 and 308 only, the token
	// re-sent). Default: a client without keep-alives and with
	// DefaultLinkHTTPTimeout.
	HTTPClient *http.Client
	// Logger gets the link's messages and pion's (default: discarded).
	Logger *slog.Logger
	// Opus is how the local room encodes the link's mix, as
	// Settings.Opus is for a Server's participants.
	Opus OpusSettings
	// LoopbackOnly offers only loopback ICE candidates, as
	// Settings.LoopbackOnly does for a Server: for tests, whose nodes all
	// run on 127.0.0.1 (TESTING.md, loopback traps).
	LoopbackOnly bool
	// GatherTimeout, ConnectTimeout and DisconnectTimeout work as in
	// Settings and default to the same constants. DisconnectTimeout is how
	// long the remote node may be silent before Done fires.
	GatherTimeout     time.Duration
	ConnectTimeout    time.Duration
	DisconnectTimeout time.Duration
}

// Link is a node-to-node participant (DESIGN.md decision 5): a WHIP
// session this node holds in a room another node hosts, which is itself a
// room.Participant of a local relay room. A phone call answered here and
// the link sit in the relay room: the link's ReadFrame is the remote
// room's mix-minus, and what WriteMix gets (the relay room's mix for the
// link, the caller's voice) is sent to the remote room.
//
// Make it with Dial. It ends when the relay room lets go of it (Detached),
// on Close, or when the connection to the remote node is lost; Done is
// closed then and Err says which. Its goroutines are its own: they end
// after Done, and Close waits for them.
type Link struct {
	voice
	log      *slog.Logger
	opts     LinkOptions
	info     room.Info
	http     *http.Client
	pc       *webrtc.PeerConnection
	endpoint string // absolute URL of the WHIP endpoint that answered
	location string // absolute URL of the WHIP session: its DELETE capability, never logged

	gotAudio atomic.Bool // the first audio track is taken

	connOnce  sync.Once
	connected chan struct{} // closed when the PeerConnection connects

	endOnce sync.Once
	done    chan struct{} // closed by end: Done
	err     error         // why; set before done is closed

	detachOnce sync.Once
	finished   chan struct{} // closed when teardown has finished

	mu      sync.Mutex
	closing bool           // no new children once set
	wg      sync.WaitGroup // children: readers, the sender
}

var _ room.Participant = (*Link)(nil)

// Dial joins the room at whipURL (http://node-b:8080/whip/board) as a
// WHIP client (RFC 9725 §4.2): it offers one send-receive Opus audio
// transceiver with every candidate in it, follows up to MaxLinkRedirects
// 307/308 redirects to the node that hosts the room, and returns once ICE
// and DTLS are up. A refused POST is a *LinkError; ctx bounds the whole
// dial. Nothing of the link is left running when Dial fails.
func Dial(ctx context.Context, whipURL string, opts LinkOptions) (*Link, error) {
	l, err := newLink(opts)
	if err != nil {
		return nil, err
	}
	if err := l.connect(ctx, whipURL); err != nil {
		l.end(err)
		l.teardown()
		close(l.finished)
		return nil, err
	}
	go l.run()
	l.log.Info("link up", "endpoint", redact(l.endpoint), "format", l.info.Format.String())
	return l, nil
}

// newLink makes the PeerConnection with the link's audio transceiver;
// nothing is sent yet.
func newLink(opts LinkOptions) (*Link, error) {
	if opts.ParticipantID == "" {
		return nil, fmt.Errorf("rtc: link: %w: no participant id", room.ErrInvalidParticipant)
	}
	if err := opts.Opus.check(); err != nil {
		return nil, fmt.Errorf("rtc: link: %w", err)
	}
	set := Settings{GatherTimeout: opts.GatherTimeout, ConnectTimeout: opts.ConnectTimeout,
		DisconnectTimeout: opts.DisconnectTimeout}
	set.applyDefaults()
	opts.GatherTimeout, opts.ConnectTimeout, opts.DisconnectTimeout = set.GatherTimeout, set.ConnectTimeout, set.DisconnectTimeout
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Link{
		log:       opts.Logger.With("component", "rtc-link", "participant", string(opts.ParticipantID)),
		opts:      opts,
		http:      linkClient(opts.HTTPClient),
		connected: make(chan struct{}),
		done:      make(chan struct{}),
		finished:  make(chan struct{}),
	}
	if err := l.voice.init(true); err != nil {
		return nil, err
	}
	logs := pionLogs{l.log}
	se := webrtc.SettingEngine{LoggerFactory: logs}
	setICE(&se, opts.LoopbackOnly, opts.DisconnectTimeout, l.log)
	parts, err := newPionParts(se, logs)
	if err != nil {
		return nil, err
	}
	if l.pc, err = parts.api(kindAudio).NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, fmt.Errorf("rtc: link: new peer connection: %w", err)
	}
	l.pc.OnConnectionStateChange(l.onState)
	l.pc.OnTrack(l.onTrack)
	tr, err := l.pc.AddTransceiverFromTrack(l.out,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		_ = l.pc.Close()
		return nil, fmt.Errorf("rtc: link: audio transceiver: %w", err)
	}
	l.goChild(func() { drainRTCP(tr.Sender()) })
	return l, nil
}

// linkClient is c, or the default client, answering redirects to Dial
// instead of following them.
func linkClient(c *http.Client) *http.Client {
	if c == nil {
		// No keep-alives: a link makes two requests in its life, and an
		// idle connection would hold goroutines until it times out.
		c = &http.Client{Timeout: DefaultLinkHTTPTimeout, Transport: &http.Transport{
			DisableKeepAlives:     true,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: DefaultLinkHTTPTimeout,
		}}
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// connect makes the offer, posts it (following redirects), applies the
// answer and waits for ICE and DTLS.
func (l *Link) connect(ctx context.Context, whipURL string) error {
	offer, err := l.offer(ctx)
	if err != nil {
		return err
	}
	answer, err := l.post(ctx, whipURL, offer)
	if err != nil {
		return err
	}
	l.info = room.Info{ID: l.opts.ParticipantID, Name: l.opts.Name, Kind: room.KindOther,
		Format: opusFormat(answerFEC(answer), l.opts.Opus)}
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("rtc: link: %w: answer: %w", ErrNegotiation, err)
	}
	t := time.NewTimer(l.opts.ConnectTimeout)
	defer t.Stop()
	select {
	case <-l.connected:
	case <-l.done:
		return l.err
	case <-t.C:
		return fmt.Errorf("rtc: link: %w after %v (ice %s)", errConnectTimeout, l.opts.ConnectTimeout,
			l.pc.ICEConnectionState())
	case <-ctx.Done():
		return fmt.Errorf("rtc: link: %w", context.Cause(ctx))
	}
	l.startSending()
	return nil
}

// offer makes the offer with every candidate in it (non-trickle: mediagate
// refuses PATCH, RFC 9725 §4.3.1).
func (l *Link) offer(ctx context.Context) (string, error) {
	offer, err := l.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("rtc: link: offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(offer); err != nil {
		return "", fmt.Errorf("rtc: link: offer: %w", err)
	}
	t := time.NewTimer(l.opts.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return "", fmt.Errorf("rtc: link: %w after %v", ErrGatherTimeout, l.opts.GatherTimeout)
	case <-ctx.Done():
		return "", fmt.Errorf("rtc: link: gathering: %w", context.Cause(ctx))
	}
	return l.pc.LocalDescription().SDP, nil
}

// post sends the offer to target and follows redirects to the node that
// hosts the room (RFC 9110 §15.4.8: 307 and 308 repeat the method and the
// body). It returns the answer and sets l.location.
func (l *Link) post(ctx context.Context, target, offer string) (string, error) {
	for hop := 0; ; hop++ {
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("rtc: link: bad whip url %q", redact(target))
		}
		op := "POST " + redact(target)
		resp, body, err := l.do(ctx, http.MethodPost, target, []byte(offer), maxAnswerSize)
		if err != nil {
			return "", fmt.Errorf("rtc: link: %s: %w", op, err)
		}
		switch resp.StatusCode {
		case http.StatusCreated:
			loc := resp.Header.Get("Location")
			abs, err := u.Parse(loc)
			if loc == "" || err != nil {
				return "", fmt.Errorf("rtc: link: %s: bad Location %q", op, loc)
			}
			if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != ContentTypeSDP {
				return "", fmt.Errorf("rtc: link: %s: answer is %q, not %s", op, mt, ContentTypeSDP)
			}
			l.endpoint, l.location = target, abs.String()
			return string(body), nil
		case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			loc := resp.Header.Get("Location")
			next, err := u.Parse(loc)
			if loc == "" || err != nil {
				return "", fmt.Errorf("rtc: link: %s: redirect to bad Location %q", op, loc)
			}
			if hop == MaxLinkRedirects {
				return "", fmt.Errorf("rtc: link: %s: more than %d redirects", op, MaxLinkRedirects)
			}
			l.log.Info("link redirected", "from", redact(target), "to", redact(next.String()))
			target = next.String()
		default:
			return "", linkError(op, resp, body)
		}
	}
}

// do sends one request with the link's token and returns the answer and
// at most limit bytes of its body. Its errors name neither the method nor
// the URL; the caller adds them.
func (l *Link) do(ctx context.Context, method, target string, body []byte, limit int64) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", ContentTypeSDP)
	}
	if l.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+l.opts.Token)
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return nil, nil, unwrapURLError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, nil, fmt.Errorf("reading body: %w", err)
	}
	return resp, b, nil
}

// unwrapURLError drops net/http's *url.Error, whose text repeats the URL
// with its query.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact strips the query of a URL for logs and errors: the binary may put
// a token there one day, and the path says enough.
func redact(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "(bad url)"
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}

// linkError turns a refused request into a *LinkError.
func linkError(op string, resp *http.Response, body []byte) error {
	e := &LinkError{Op: op, Status: resp.StatusCode}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == ContentTypeProblem {
		_ = json.Unmarshal(body, &e.Problem) // a bad body leaves the status
	}
	return e
}

// answerFEC reports whether the answer's Opus takes in-band FEC
// (useinbandfec=1, RFC 7587 §6.1), so the relay room encodes with FEC for
// the link as the remote node's room does for it.
func answerFEC(answer string) bool {
	var d sdp.SessionDescription
	if d.Unmarshal([]byte(answer)) != nil {
		return false
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		pt, ok := findCodec(m, "opus", 48000)
		return ok && fmtpHas(m, pt, "useinbandfec", "1")
	}
	return false
}

// onState follows the PeerConnection: connected lets Dial return; failed
// (the remote node silent past the disconnect timeout) or closed ends the
// link. pion closes the PeerConnection when the remote node's DTLS
// close_notify arrives, which it sends when its session ends (DELETE,
// kick, shutdown), so a session ended there is noticed at once.
func (l *Link) onState(st webrtc.PeerConnectionState) {
	l.log.Debug("peer connection state", "state", st.String())
	switch st {
	case webrtc.PeerConnectionStateConnected:
		l.connOnce.Do(func() { close(l.connected) })
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		l.end(fmt.Errorf("%w: peer connection %s", ErrLinkLost, st))
	}
}

// onTrack reads the remote room's mix into the jitter buffer; it returns
// at once (pion calls it from its own goroutine).
func (l *Link) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	l.goChild(func() { drainRTCP(r) })
	if t.Kind() == webrtc.RTPCodecTypeAudio && l.gotAudio.CompareAndSwap(false, true) {
		l.goChild(func() { l.readAudio(t, r) })
		return
	}
	l.goChild(func() { drainRTP(t) })
}

// goChild runs fn as a child of the link, unless it is tearing down.
func (l *Link) goChild(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return
	}
	l.wg.Go(fn)
}

// end ends the link for err, once: Done is closed, and run tears down.
func (l *Link) end(err error) {
	l.endOnce.Do(func() {
		l.err = err
		close(l.done)
	})
}

// run waits for the end of a link that Dial returned and tears it down.
func (l *Link) run() {
	defer close(l.finished)
	<-l.done
	l.teardown()
	l.log.Info("link ended", "reason", l.err.Error(), "received", l.received.Load(),
		"sent", l.sent.Load(), "dropped", l.dropped.Load())
}

// teardown ends the WHIP session (DELETE, RFC 9725 §4.3, before the media
// goes, as a BYE would), closes the PeerConnection and waits for the
// children. It outlives the cancellation of whoever ended the link: its
// request has a bound of its own.
func (l *Link) teardown() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	if l.location != "" {
		if err := l.delete(); err != nil {
			l.log.Info("link: delete session", "err", err)
		}
	}
	if err := l.pc.Close(); err != nil {
		l.log.Debug("close peer connection", "err", err)
	}
	l.wg.Wait()
}

// delete ends the session on the remote node. 404 means it is gone
// already (the remote node ended it), a refused connection that the node
// is: neither is an error.
func (l *Link) delete() error {
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	resp, body, err := l.do(ctx, http.MethodDelete, l.location, nil, maxAnswerSize)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil
	case err != nil:
		return fmt.Errorf("rtc: link: DELETE session of %s: %w", redact(l.endpoint), err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNoContent, http.StatusNotFound:
		return nil
	}
	return linkError("DELETE session of "+redact(l.endpoint), resp, body)
}

// Info implements room.Participant: the link's ID and name from
// LinkOptions, KindOther, and Opus at 48 kHz (with FEC when the remote
// node takes it), which WriteMix sends on as it is.
func (l *Link) Info() room.Info { return l.info }

// ReadFrame implements room.Participant: the remote room's mix for this
// node, 20 ms from the jitter buffer, decoded or concealed.
func (l *Link) ReadFrame(dst *media.Frame) bool { return l.readFrame(dst) }

// WriteMix implements room.Participant: the relay room's Opus payload is
// queued for the sender, which sends it to the remote room as RTP with the
// link's own sequence numbers and timestamps; it is dropped when the
// sender is behind or the link has ended.
func (l *Link) WriteMix(pkt room.Packet) bool { return l.writeMix(pkt) }

// Detached implements room.Participant: the relay room let go, so the link
// ends (with ErrLinkClosed); the remote session is deleted in the
// background.
func (l *Link) Detached(err error) {
	l.detachOnce.Do(func() {
		l.voice.detached()
		if err == nil {
			l.end(fmt.Errorf("%w: left the relay room", ErrLinkClosed))
		} else {
			l.end(fmt.Errorf("%w: relay room: %w", ErrLinkClosed, err))
		}
	})
}

// Done is closed when the link has ended: Detached, Close, or lost (see
// Err). The binary then takes a lost link out of its relay room and dials
// again.
func (l *Link) Done() <-chan struct{} { return l.done }

// Err says why the link ended: an error wrapping ErrLinkClosed when this
// node ended it, ErrLinkLost when the connection to the remote node was
// lost. It is nil while Done is open.
func (l *Link) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// Location is the absolute URL of the link's WHIP session on the node
// that hosts the room (after any redirect).
func (l *Link) Location() string { return l.location }

// Close ends the link (DELETE of the session, then the PeerConnection) and
// waits for its goroutines, or for ctx. It does not take the link out of a
// relay room: Leave does that, and the room's Detached ends the link too.
// Close is safe to call more than once and after Done.
func (l *Link) Close(ctx context.Context) error {
	l.end(ErrLinkClosed)
	select {
	case <-l.finished:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rtc: link close: %w", ctx.Err())
	}
}
