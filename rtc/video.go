package rtc

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/mediagate/mediagate/room"
)

// Presenter video (DESIGN.md decision 3): a WHIP publisher whose grant has
// Present may send H.264; the first one in a room becomes its presenter.
// Its RTP packets are forwarded untouched but for the header to every
// subscriber: WHEP viewers that offered a video m-line, and the stream
// egress through SubscribeVideo. Keyframe requests (PLI, FIR) from viewers
// and the egress go to the presenter as PLI, at most one per
// minKeyframeInterval.

const (
	// minKeyframeInterval spaces PLIs to the presenter: a keyframe is large,
	// and one answers every viewer that asked meanwhile.
	minKeyframeInterval = 500 * time.Millisecond
	// viewerQueue is a WHEP viewer's ring: 256 packets, about half a second
	// of 720p.
	viewerQueue = 256
	// newPresenterTSStep is the timestamp step a viewer's stream makes when
	// the presenter changes: one frame at 30 fps on the 90 kHz clock.
	newPresenterTSStep = 3000
)

// videoFeed is one room's presenter video.
type videoFeed struct {
	id room.ID

	mu        sync.Mutex
	presenter *participant // nil while nobody presents
	ssrc      uint32       // the presenter's video SSRC, for PLI
	gen       uint32       // bumped for every new presenter
	lastPLI   time.Time
	subs      []*VideoSub
}

// VideoSub receives a room's presenter video as RTP packets through a
// bounded ring: the presenter's reader copies each packet in without
// waiting; when the ring is full the packet is dropped and counted, so a
// slow consumer loses video (and should ask for a keyframe) but never
// delays the presenter or the other consumers. One goroutine reads it.
type VideoSub struct {
	feed    *videoFeed
	mu      sync.Mutex
	ring    []videoSlot
	head, n int
	closed  bool
	ready   chan struct{} // capacity 1: a packet arrived or the sub closed
	dropped atomic.Uint64
}

type videoSlot struct {
	gen uint32
	n   int
	buf [rtpBufSize]byte
}

// SubscribeVideo returns a consumer of room id's presenter video holding up
// to packets packets (at least 16); the stream egress calls it. It works
// before anybody presents and across presenter changes; Close it when done.
// A keyframe is requested for the new consumer.
func (s *Server) SubscribeVideo(id room.ID, packets int) *VideoSub {
	sub := &VideoSub{ring: make([]videoSlot, max(packets, 16)), ready: make(chan struct{}, 1)}
	s.withFeed(id, func(f *videoFeed) {
		sub.feed = f
		f.subs = append(f.subs, sub)
	})
	sub.feed.requestKeyframe()
	return sub
}

// HasPresenter reports whether somebody presents video in room id, so the
// egress can choose between the presenter's video and its slate.
func (s *Server) HasPresenter(id room.ID) bool {
	s.mu.Lock()
	f := s.feeds[id]
	s.mu.Unlock()
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.presenter != nil
}

// Read waits for the next packet and copies the raw RTP packet (header and
// payload as the presenter sent it) into dst, returning its length. It
// returns ctx's error when ctx ends first and io.EOF once the sub is closed.
// A packet longer than dst is truncated.
func (v *VideoSub) Read(ctx context.Context, dst []byte) (int, error) {
	n, _, err := v.next(ctx.Done(), dst)
	if err == errStopped {
		return 0, ctx.Err()
	}
	return n, err
}

// errStopped tells next's caller that its done channel closed.
var errStopped = errors.New("rtc: video reader stopped")

// next is Read with a plain done channel, also reporting the presenter
// generation of the packet.
func (v *VideoSub) next(done <-chan struct{}, dst []byte) (int, uint32, error) {
	for {
		v.mu.Lock()
		if v.n > 0 {
			sl := &v.ring[v.head]
			n := copy(dst, sl.buf[:sl.n])
			gen := sl.gen
			v.head = (v.head + 1) % len(v.ring)
			v.n--
			v.mu.Unlock()
			return n, gen, nil
		}
		closed := v.closed
		v.mu.Unlock()
		if closed {
			return 0, 0, io.EOF
		}
		select {
		case <-v.ready:
		case <-done:
			return 0, 0, errStopped
		}
	}
}

// put copies one packet in, or drops it when the ring is full.
func (v *VideoSub) put(gen uint32, pkt []byte) {
	v.mu.Lock()
	if v.closed || v.n == len(v.ring) || len(pkt) > rtpBufSize {
		v.mu.Unlock()
		v.dropped.Add(1)
		return
	}
	sl := &v.ring[(v.head+v.n)%len(v.ring)]
	sl.gen, sl.n = gen, copy(sl.buf[:], pkt)
	v.n++
	v.mu.Unlock()
	select {
	case v.ready <- struct{}{}:
	default:
	}
}

// RequestKeyframe asks the presenter for a keyframe (a PLI, RFC 4585
// §6.3.1), e.g. after Dropped grew: decoding can only resume at one.
func (v *VideoSub) RequestKeyframe() { v.feed.requestKeyframe() }

// Dropped counts packets lost because the ring was full.
func (v *VideoSub) Dropped() uint64 { return v.dropped.Load() }

// Close unsubscribes; packets already queued can still be read, then Read
// returns io.EOF. It is safe to call twice.
func (v *VideoSub) Close() {
	f := v.feed
	f.mu.Lock()
	for i, s := range f.subs {
		if s == v {
			f.subs = append(f.subs[:i], f.subs[i+1:]...)
			break
		}
	}
	f.mu.Unlock()
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	select {
	case v.ready <- struct{}{}:
	default:
	}
}

// withFeed runs fn on room id's feed, created if need be, with the
// server's and the feed's locks held, so that dropVideo cannot delete the
// feed while fn adds a presenter or a subscriber to it.
func (s *Server) withFeed(id room.ID, fn func(*videoFeed)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feeds[id]
	if f == nil {
		f = &videoFeed{id: id}
		s.feeds[id] = f
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// publishVideo reads a publisher's video track. If the room has a
// presenter already, the track is read and dropped.
func (s *Server) publishVideo(p *participant, t *webrtc.TrackRemote) {
	var f *videoFeed
	var gen uint32
	s.withFeed(p.roomID, func(feed *videoFeed) {
		if feed.presenter != nil {
			return
		}
		f = feed
		f.presenter, f.ssrc, f.lastPLI = p, uint32(t.SSRC()), time.Time{}
		f.gen++
		gen = f.gen
	})
	if f == nil {
		p.log.Info("video ignored: the room has a presenter")
		drainRTP(t)
		return
	}
	p.log.Info("presenting video", "codec", t.Codec().MimeType)
	defer s.clearPresenter(f, p)
	f.requestKeyframe() // viewers may be waiting
	buf := make([]byte, rtpBufSize)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		f.mu.Lock()
		for _, sub := range f.subs {
			sub.put(gen, buf[:n])
		}
		f.mu.Unlock()
	}
}

// clearPresenter frees the presenter slot if p holds it.
func (s *Server) clearPresenter(f *videoFeed, p *participant) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.presenter == p {
		f.presenter, f.ssrc = nil, 0
	}
}

// requestKeyframe sends the presenter a PLI unless one went out less than
// minKeyframeInterval ago.
func (f *videoFeed) requestKeyframe() {
	f.mu.Lock()
	p, ssrc := f.presenter, f.ssrc
	if p == nil || time.Since(f.lastPLI) < minKeyframeInterval {
		f.mu.Unlock()
		return
	}
	f.lastPLI = time.Now()
	f.mu.Unlock()
	p.mu.Lock()
	pc := p.pc
	p.mu.Unlock()
	if pc == nil {
		return
	}
	if err := pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		p.log.Debug("keyframe request", "err", err)
	}
}

// addViewer gives a WHEP session a video track fed from the room's
// presenter; it is called while answering, before the answer is made.
func (s *Server) addViewer(p *participant, pc *webrtc.PeerConnection) error {
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}, "video", "mediagate")
	if err != nil {
		return err
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		return err
	}
	sub := s.SubscribeVideo(p.roomID, viewerQueue)
	p.mu.Lock()
	p.video = sub
	p.mu.Unlock()
	p.goChild(func() { viewerRTCP(sender, sub) })
	p.goChild(func() { forwardVideo(p.done, sub, track) })
	return nil
}

// viewerRTCP reads a viewer's RTCP and passes its keyframe requests (PLI,
// FIR: RFC 4585 §6.3.1, RFC 5104 §4.3.1) on to the presenter.
func viewerRTCP(sender *webrtc.RTPSender, sub *VideoSub) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				sub.RequestKeyframe()
			}
		}
	}
}

// forwardVideo writes the presenter's packets to a viewer's track until
// done closes. Header extensions are dropped (their IDs were negotiated
// with the presenter, not the viewer); sequence numbers and timestamps are
// shifted at a presenter change so the viewer sees one continuous stream
// (RFC 3550 §5.1), which its next keyframe makes decodable.
func forwardVideo(done <-chan struct{}, sub *VideoSub, track *webrtc.TrackLocalStaticRTP) {
	buf := make([]byte, rtpBufSize)
	var pkt rtp.Packet
	var gen uint32
	var seqOff uint16
	var tsOff, lastTS uint32
	var lastSeq uint16
	started := false
	for {
		n, g, err := sub.next(done, buf)
		if err != nil {
			sub.Close()
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		if !started || g != gen {
			if started {
				seqOff = lastSeq + 1 - pkt.SequenceNumber
				tsOff = lastTS + newPresenterTSStep - pkt.Timestamp
			}
			gen, started = g, true
		}
		pkt.Extension, pkt.Extensions = false, pkt.Extensions[:0]
		pkt.SequenceNumber += seqOff
		pkt.Timestamp += tsOff
		lastSeq, lastTS = pkt.SequenceNumber, pkt.Timestamp
		_ = track.WriteRTP(&pkt) // fails only when the viewer is gone
	}
}

// dropVideo releases p's part in its room's video at teardown: its
// viewer subscription, its presenter slot, and the feed once unused.
func (s *Server) dropVideo(p *participant) {
	p.mu.Lock()
	sub := p.video
	p.mu.Unlock()
	if sub != nil {
		sub.Close()
	}
	s.mu.Lock()
	f := s.feeds[p.roomID]
	s.mu.Unlock()
	if f == nil {
		return
	}
	s.clearPresenter(f, p)
	s.mu.Lock()
	defer s.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.presenter == nil && len(f.subs) == 0 && s.feeds[p.roomID] == f {
		delete(s.feeds, p.roomID)
	}
}
