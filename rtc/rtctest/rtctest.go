// Package rtctest is a WHIP/WHEP client for the tests of every package that
// puts audio through mediagate's WebRTC side (rtc, cmd, and later sip,
// bridge, cluster): a real pion PeerConnection on loopback that sends a
// tone or given PCM as Opus every 20 ms, like a microphone, and records
// the mix it receives, decoded, as a timeline of frames with their arrival
// times. Tests then assert on the audio (media/mediatest), not on packets.
//
// A Client's goroutines all end in Close, which Join registers with
// t.Cleanup, so a test package can run goleak.
package rtctest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// Defaults of Options.
const (
	DefaultAmp            = 0.25
	DefaultConnectTimeout = 10 * time.Second
	// gatherTimeout bounds ICE gathering; on loopback it takes
	// milliseconds.
	gatherTimeout = 5 * time.Second
	// deleteTimeout bounds the DELETE that Close sends.
	deleteTimeout = 5 * time.Second
	// maxConceal is the longest run of lost packets the timeline fills
	// with concealment; a longer jump (a restarted sender) is not filled.
	maxConceal = 50
)

// Options choose what a Client sends and how it connects. The zero value
// is a WHIP participant that sends silence.
type Options struct {
	// Tone is the frequency in Hz of the sine the client sends; 0 (and no
	// PCM) sends digital silence.
	Tone float64
	// Amp is the tone's peak, 0..1 of full scale (default DefaultAmp).
	Amp float64
	// PCM, when set, is sent instead of the tone: 48 kHz mono, looped.
	PCM []int16
	// Backlog is how many 20 ms frames the client sends at once when it
	// starts, before it keeps time: a browser whose first audio queued
	// while the connection came up. The receiver's jitter buffer then
	// starts that much deeper than the network needs.
	Backlog int
	// MarkEvery sets the RTP marker bit on every audio packet, as pion's
	// TrackLocalStaticSample does (its packetizer marks the last packet of
	// each sample), instead of on the first only, as browsers do.
	MarkEvery bool
	// ListenOnly joins through WHEP (/whep/{room}) with a receive-only
	// transceiver: the client hears the room and sends nothing.
	ListenOnly bool
	// Conn is the one UDP socket the client uses (a socket a test can
	// stall or close, say); Close closes it. Default: pion's own sockets.
	// It is ignored when API is set.
	Conn net.PacketConn
	// API makes the PeerConnection instead of NewAPI(nil, Conn, Logs), to
	// share one API between clients or to offer other codecs.
	API *webrtc.API
	// Logs receives pion's messages (default: its errors to stderr).
	Logs logging.LoggerFactory
	// Prepare, when set, is called with the PeerConnection before the
	// offer is made, to add transceivers of the test's own (video, say).
	Prepare func(pc *webrtc.PeerConnection) error
	// OnTrack, when set, is given every received track that is not audio.
	// It runs on a goroutine that Close waits for, so it must return once
	// ReadRTP fails. Unset, such tracks are read and dropped.
	OnTrack func(tr *webrtc.TrackRemote)
	// Offer, when set, rewrites the offer before it is posted (a DTLS
	// role the client insists on, say); the client's own description
	// stays pion's.
	Offer func(sdp string) string
	// ConnectTimeout bounds ICE and DTLS after the answer (default
	// DefaultConnectTimeout).
	ConnectTimeout time.Duration
}

// Frame is one received 20 ms frame of the mix.
type Frame struct {
	// Arrival is when its packet arrived (for a concealed frame, when the
	// packet after the gap did).
	Arrival time.Time
	// Timestamp is its RTP timestamp.
	Timestamp uint32
	// Lost marks a frame made by Opus concealment for a packet that never
	// came (or failed to decode), so the timeline keeps its length.
	Lost bool
	// PCM is the decoded audio, 48 kHz mono.
	PCM media.Frame
}

// Client is one WHIP (or WHEP) participant. Make it with Join; it is safe
// for concurrent use.
type Client struct {
	opts     Options
	pc       *webrtc.PeerConnection
	mux      ice.UDPMux // when opts.Conn was given
	location string     // absolute URL of the session
	token    string

	connected chan struct{}
	done      chan struct{} // closed when the PeerConnection closes or fails
	connOnce  sync.Once
	doneOnce  sync.Once

	t         testing.TB
	stop      chan struct{} // closed by Close: stops the sender
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	closing bool           // no new goroutines once set
	wg      sync.WaitGroup // sender, receivers; Add only under mu
	frames  []Frame
	changed chan struct{} // closed and replaced when frames grows
}

// Join connects a client to room through the server at baseURL
// (http://host:port): WHIP (RFC 9725 §4.2), or WHEP with ListenOnly, with
// token as the bearer token (none when empty). It returns once ICE and
// DTLS are up and the client is sending, or an error (an *HTTPError when
// the server refused the offer). The client is closed when the test ends.
func Join(ctx context.Context, t testing.TB, baseURL, room, token string, o Options) (*Client, error) {
	t.Helper()
	if o.Amp == 0 {
		o.Amp = DefaultAmp
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	api := o.API
	var mux ice.UDPMux
	if api == nil {
		var err error
		if api, mux, err = NewAPI(nil, o.Conn, o.Logs); err != nil {
			return nil, err
		}
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		if mux != nil {
			_ = mux.Close()
		}
		return nil, fmt.Errorf("rtctest: %w", err)
	}
	c := &Client{opts: o, pc: pc, mux: mux, token: token, t: t, stop: make(chan struct{}),
		connected: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{})}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.connect(ctx, baseURL, room); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// connect makes the offer, posts it and waits for the connection; then
// it starts the sender.
func (c *Client) connect(ctx context.Context, baseURL, room string) error {
	pc := c.pc
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			c.connOnce.Do(func() { close(c.connected) })
		case webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed:
			c.doneOnce.Do(func() { close(c.done) })
		}
	})
	pc.OnTrack(c.onTrack)
	var track *webrtc.TrackLocalStaticRTP
	var sender *webrtc.RTPSender
	if c.opts.ListenOnly {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fmt.Errorf("rtctest: %w", err)
		}
	} else {
		var err error
		track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "rtctest")
		if err != nil {
			return fmt.Errorf("rtctest: %w", err)
		}
		tr, err := pc.AddTransceiverFromTrack(track,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
		if err != nil {
			return fmt.Errorf("rtctest: %w", err)
		}
		sender = tr.Sender()
	}
	if c.opts.Prepare != nil {
		if err := c.opts.Prepare(pc); err != nil {
			return fmt.Errorf("rtctest: prepare: %w", err)
		}
	}
	offer, err := c.offer(ctx)
	if err != nil {
		return err
	}
	if c.opts.Offer != nil {
		offer = c.opts.Offer(offer)
	}
	kind := "whip"
	if c.opts.ListenOnly {
		kind = "whep"
	}
	path := "/" + kind + "/" + url.PathEscape(room)
	resp, answer, err := do(ctx, http.MethodPost, baseURL+path, c.token, "application/sdp", []byte(offer))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return &HTTPError{Op: "POST " + path, Status: resp.StatusCode, Body: string(answer)}
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return fmt.Errorf("rtctest: POST %s: bad Location %q", path, resp.Header.Get("Location"))
	}
	c.location = loc.String()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return fmt.Errorf("rtctest: answer: %w", err)
	}
	timer := time.NewTimer(c.opts.ConnectTimeout)
	defer timer.Stop()
	select {
	case <-c.connected:
	case <-c.done:
		return fmt.Errorf("rtctest: %s: connection %s before it was up", path, pc.ConnectionState())
	case <-timer.C:
		return fmt.Errorf("rtctest: %s: not connected after %v (%s)", path, c.opts.ConnectTimeout, pc.ICEConnectionState())
	case <-ctx.Done():
		return fmt.Errorf("rtctest: %s: %w", path, ctx.Err())
	}
	if track != nil && c.track() {
		go func() {
			defer c.wg.Done()
			c.send(track, audioLevelID(sender))
		}()
	}
	return nil
}

// offer makes the offer with every candidate in it: WHIP has no trickle
// here (RFC 9725 §4.3.1 makes it optional; mediagate refuses it).
func (c *Client) offer(ctx context.Context) (string, error) {
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("rtctest: offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return "", fmt.Errorf("rtctest: offer: %w", err)
	}
	timer := time.NewTimer(gatherTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
		return "", errors.New("rtctest: ICE gathering timed out")
	case <-ctx.Done():
		return "", fmt.Errorf("rtctest: gathering: %w", ctx.Err())
	}
	return c.pc.LocalDescription().SDP, nil
}

// track counts a new goroutine in wg, unless the client is closing.
func (c *Client) track() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.wg.Add(1)
	return true
}

// audioLevelID is the ID the RFC 6464 audio level extension was
// negotiated with on s, or 0.
func audioLevelID(s *webrtc.RTPSender) uint8 {
	for _, e := range s.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI && e.ID > 0 && e.ID < 15 {
			return uint8(e.ID)
		}
	}
	return 0
}

// send encodes the client's sound every 20 ms until Close, timed by a
// ticker like a microphone, one packet per frame with the marker bit on
// the first, and, when levelID is not 0, each frame's RFC 6464 audio level
// as a browser sends it.
func (c *Client) send(track *webrtc.TrackLocalStaticRTP, levelID uint8) {
	enc, err := media.NewOpusEncoder()
	if err != nil {
		c.t.Errorf("rtctest: opus encoder: %v", err)
		return
	}
	defer enc.Close()
	tone := mediatest.Tone{Freq: c.opts.Tone, Amp: c.opts.Amp, Rate: media.Rate48k}
	var pcm media.Frame
	pos := 0
	buf := make([]byte, media.MaxOpusPayload)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}}
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	for sent := 0; ; sent++ {
		if sent >= c.opts.Backlog {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
		}
		switch {
		case len(c.opts.PCM) > 0:
			for i := range pcm {
				pcm[i] = c.opts.PCM[pos]
				pos = (pos + 1) % len(c.opts.PCM)
			}
		case c.opts.Tone > 0:
			tone.Fill(pcm[:])
		}
		n, err := enc.Encode(pcm[:], buf)
		if err != nil {
			c.t.Errorf("rtctest: opus encode: %v", err)
			return
		}
		pkt.Marker = sent == 0 || c.opts.MarkEvery
		pkt.Payload = buf[:n]
		if levelID != 0 {
			level := media.MeasureLevel(pcm[:]).AudioLevel()
			if err := pkt.SetExtension(levelID, []byte{level}); err != nil {
				c.t.Errorf("rtctest: audio level: %v", err)
				return
			}
		}
		if err := track.WriteRTP(&pkt); err != nil {
			return // closed
		}
		pkt.SequenceNumber++
		pkt.Timestamp += media.FrameSamples
	}
}

// onTrack runs on pion's goroutine for each received track until the
// track ends; Close waits for it.
func (c *Client) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if !c.track() {
		return
	}
	defer c.wg.Done()
	switch {
	case tr.Kind() == webrtc.RTPCodecTypeAudio:
		c.receive(tr)
	case c.opts.OnTrack != nil:
		c.opts.OnTrack(tr)
	default:
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
		}
	}
}

// receive decodes the received mix into the timeline. Packets come in
// arrival order; a gap in sequence numbers is filled with concealed
// frames (FEC from the next packet for the last one), and a late or
// repeated packet is dropped, as a jitter buffer would.
func (c *Client) receive(tr *webrtc.TrackRemote) {
	dec, err := media.NewOpusDecoder()
	if err != nil {
		c.t.Errorf("rtctest: opus decoder: %v", err)
		return
	}
	defer dec.Close()
	var last uint16
	started := false
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		gap := 0
		if started {
			d := int(int16(pkt.SequenceNumber - last))
			if d <= 0 {
				continue
			}
			gap = d - 1
		}
		started, last = true, pkt.SequenceNumber
		for i := gap; i > 0 && i <= maxConceal; i-- {
			f := Frame{Arrival: now, Timestamp: pkt.Timestamp - uint32(i*media.FrameSamples), Lost: true}
			var next []byte
			if i == 1 {
				next = pkt.Payload
			}
			_, _ = dec.Conceal(next, f.PCM[:])
			c.add(&f)
		}
		f := Frame{Arrival: now, Timestamp: pkt.Timestamp}
		if _, err := dec.Decode(pkt.Payload, f.PCM[:]); err != nil {
			f.Lost = true
			_, _ = dec.Conceal(nil, f.PCM[:])
		}
		c.add(&f)
	}
}

func (c *Client) add(f *Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, *f)
	close(c.changed)
	c.changed = make(chan struct{})
}

// Received is the number of frames in the timeline so far.
func (c *Client) Received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.frames)
}

// WaitFrames waits until the timeline holds n frames, or ctx ends.
func (c *Client) WaitFrames(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		have, changed := len(c.frames), c.changed
		c.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("rtctest: %d of %d frames: %w", have, n, ctx.Err())
		}
	}
}

// Frames returns a copy of frames [from, to) of the timeline.
func (c *Client) Frames(from, to int) []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Frame(nil), c.frames[from:to]...)
}

// PCM returns the samples of frames [from, to), concatenated.
func (c *Client) PCM(from, to int) []int16 {
	return Samples(c.Frames(from, to))
}

// Samples concatenates the frames' samples.
func Samples(frames []Frame) []int16 {
	out := make([]int16, 0, len(frames)*media.FrameSamples)
	for i := range frames {
		out = append(out, frames[i].PCM[:]...)
	}
	return out
}

// PeerConnection is the client's pion PeerConnection, for tests that
// look at its state or send RTCP.
func (c *Client) PeerConnection() *webrtc.PeerConnection { return c.pc }

// Location is the absolute URL of the client's WHIP/WHEP session.
func (c *Client) Location() string { return c.location }

// Done is closed when the PeerConnection has closed or failed: after
// Close, or when the server ended the session.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close leaves: DELETE on the session (RFC 9725 §4.3; an already ended
// session is no error), then it closes the PeerConnection and waits for
// the client's goroutines. It is safe to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		close(c.stop)
		var errs []error
		if c.location != "" {
			errs = append(errs, c.delete())
		}
		errs = append(errs, c.pc.Close())
		if c.mux != nil {
			_ = c.mux.Close() // closes opts.Conn
		}
		c.wg.Wait()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// delete ends the session on the server. 404 means it is gone already
// (the server closed it); 503, that the server is closing.
func (c *Client) delete() error {
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	resp, body, err := do(ctx, http.MethodDelete, c.location, c.token, "", nil)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil // the server is gone, and the session with it
		}
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNoContent, http.StatusNotFound, http.StatusServiceUnavailable:
		return nil
	}
	return &HTTPError{Op: "DELETE " + c.location, Status: resp.StatusCode, Body: string(body)}
}
