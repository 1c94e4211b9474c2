package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/rtc"
)

// clusterRooms is where the bridge puts callers: the node's rooms, and for
// a room another node hosts a relay room here linked to it (decision 5 of
// DESIGN.md).
type clusterRooms struct {
	*room.Manager
	links *links
}

var _ bridge.Rooms = (*clusterRooms)(nil)

// Admits is the manager's, and refuses a room that is not open here while
// the cluster state is unreachable, so a fixed-room call gets 503 before
// it is answered.
func (c *clusterRooms) Admits(id room.ID) error {
	if err := c.Manager.Admits(id); err != nil {
		return err
	}
	if _, err := c.Manager.Get(id); err == nil {
		return nil
	}
	return c.links.own.available(id)
}

// Join adds p to room id here, or, when another node hosts the room, to a
// relay room linked to that node.
func (c *clusterRooms) Join(id room.ID, p room.Participant) (*room.Room, error) {
	r, err := c.Manager.Join(id, p)
	var moved *room.MovedError
	if errors.As(err, &moved) {
		return c.links.join(moved, p)
	}
	return r, err
}

// links bridges calls answered on this node into rooms hosted on other
// nodes. Each such call gets a relay room on this node holding the caller
// and a WebRTC link (rtc.Link, a WHIP session with a join token this node
// signs with the cluster's shared auth.token_secret) to the room on its
// host: the relay's mixer gives the link the caller's voice and the caller
// the link's audio, which is the host room's mix without the caller. When
// the link breaks (the host died, or gave the room up), the relay dials
// the room's new host, which may be this node, and the caller stays in
// the call.
type links struct {
	log      *slog.Logger
	self     cluster.NodeID
	selfURL  string
	own      *ownership
	auth     *api.Auth
	defaults []room.Option
	// notice is what a caller hears while the link is redialled (48 kHz).
	notice []int16
	// opus is webrtc.opus_application and opus_complexity, for the
	// links' mixes.
	opus rtc.OpusSettings

	mu     sync.Mutex
	closed bool
	seq    uint64
	relays map[*room.Room]struct{}
	wg     sync.WaitGroup
}

// Timing of the relink loop: how long one dial may take, and the pause
// between failed dials (the dead host's lease expires within the lease
// TTL, so a few tries find the new host).
const (
	linkDialTimeout = 5 * time.Second
	linkRetry       = 500 * time.Millisecond
	linkTokenLife   = time.Minute
	// linkSilence is how long a link may hear nothing from the room's
	// node before it counts as lost and is redialled: the nodes share a
	// network, and a dead node's rooms move within the lease TTL.
	linkSilence = 3 * time.Second
)

func newLinks(log *slog.Logger, self cluster.NodeID, selfURL string, own *ownership,
	auth *api.Auth, defaults []room.Option, notice []int16) *links {
	return &links{log: log, self: self, selfURL: selfURL, own: own, auth: auth,
		defaults: defaults, notice: notice, relays: map[*room.Room]struct{}{}}
}

// join makes a relay room for p linked to the room where moved points.
func (l *links) join(moved *room.MovedError, p room.Participant) (*room.Room, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, room.ErrManagerClosed
	}
	l.mu.Unlock()
	id := moved.Room
	ctx, cancel := context.WithTimeout(context.Background(), linkDialTimeout)
	defer cancel()
	link, err := l.dial(ctx, id, moved.URL)
	if err != nil {
		l.log.Warn("room link failed", "room", string(id), "node", moved.Node, "err", err)
		return nil, room.ErrUnavailable
	}
	opts := append(append([]room.Option(nil), l.defaults...), room.WithEmptyTimeout(0))
	relay := room.NewRoom(id, opts...)
	events := relay.SubscribeEvents(64)
	if err := relay.Join(link); err != nil {
		_ = link.Close(ctx)
		_ = relay.Close(ctx)
		return nil, err
	}
	if err := relay.Join(p); err != nil {
		_ = relay.Close(ctx)
		return nil, err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = relay.Close(ctx)
		return nil, room.ErrManagerClosed
	}
	l.relays[relay] = struct{}{}
	l.wg.Add(1) // the supervisor; the recording watch adds its own
	l.mu.Unlock()
	l.log.Info("call linked to the room's node", "room", string(id), "node", moved.Node)
	host := &linkHost{}
	host.set(link)
	l.wg.Add(1)
	go l.watchRecording(relay, host)
	go l.supervise(relay, events, p.Info().ID, link, host)
	return relay, nil
}

// linkHost is the base URL of the node a relay's link goes to now.
type linkHost struct {
	mu   sync.Mutex
	base string
}

// set takes the base from the link's session URL (after redirects).
func (h *linkHost) set(link *rtc.Link) {
	u, err := url.Parse(link.Location())
	if err != nil {
		return
	}
	h.mu.Lock()
	h.base = u.Scheme + "://" + u.Host
	h.mu.Unlock()
}

func (h *linkHost) get() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.base
}

// recordingPoll is how often a relay asks the room's node whether the room
// is recorded, so a linked caller hears the recording notice (the relay's
// recording flag drives the bridge's prompt as a local room's does).
const recordingPoll = 2 * time.Second

// watchRecording mirrors the recording state of the room on its node into
// relay until relay closes, asking the room's join-page state endpoint
// with a listen-only token.
func (l *links) watchRecording(relay *room.Room, host *linkHost) {
	defer l.wg.Done()
	client := &http.Client{Timeout: recordingPoll,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t := time.NewTicker(recordingPoll)
	defer t.Stop()
	for {
		if on, ok := l.remoteRecording(client, relay.ID(), host.get()); ok && on != relay.Recording() {
			relay.SetRecording(on)
		}
		select {
		case <-relay.Done():
			return
		case <-t.C:
		}
	}
}

// remoteRecording asks the node at base whether room id is recorded.
func (l *links) remoteRecording(client *http.Client, id room.ID, base string) (on, ok bool) {
	if base == "" {
		return false, false
	}
	token, _, err := l.auth.IssueToken(api.TokenRequest{
		Room: id, Subject: "link-" + string(l.self), Grants: api.Grants{Listen: true}, Lifetime: linkTokenLife,
	}, time.Now())
	if err != nil {
		return false, false
	}
	req, err := http.NewRequest(http.MethodGet, base+"/r/"+string(id)+"/participants", nil)
	if err != nil {
		return false, false
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return false, false
	}
	defer resp.Body.Close()
	var state struct {
		Recording bool `json:"recording"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&state) != nil {
		return false, false
	}
	return state.Recording, true
}

// dial opens a link to room id at the node whose base URL is base.
func (l *links) dial(ctx context.Context, id room.ID, base string) (*rtc.Link, error) {
	l.mu.Lock()
	l.seq++
	pid := fmt.Sprintf("link-%s-%d", l.self, l.seq)
	l.mu.Unlock()
	token, _, err := l.auth.IssueToken(api.TokenRequest{
		Room: id, Subject: pid, Name: "phone via " + string(l.self),
		Grants:   api.Grants{Publish: true, Listen: true},
		Lifetime: linkTokenLife,
	}, time.Now())
	if err != nil {
		return nil, err
	}
	return rtc.Dial(ctx, strings.TrimSuffix(base, "/")+"/whip/"+string(id), rtc.LinkOptions{
		Token: token, ParticipantID: room.ParticipantID(pid), Name: "phone via " + string(l.self),
		DisconnectTimeout: linkSilence, Logger: l.log, Opus: l.opus,
	})
}

// supervise keeps relay linked until the caller has left it, then closes
// it. A broken link is replaced by one to the room's current host.
func (l *links) supervise(relay *room.Room, events *room.EventSub, caller room.ParticipantID, link *rtc.Link, host *linkHost) {
	defer l.wg.Done()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
		defer cancel()
		_ = relay.Close(ctx)
		l.mu.Lock()
		delete(l.relays, relay)
		l.mu.Unlock()
	}()
	for {
		select {
		case e, ok := <-events.C():
			if !ok || e.Type == room.EventRoomClosed ||
				(e.Type == room.EventLeft && e.Participant == caller) {
				return
			}
		case <-link.Done():
			l.log.Warn("room link lost; relinking", "room", string(relay.ID()), "err", link.Err())
			_ = relay.Kick(link.Info().ID)
			// The caller alone hears the notice: nobody else is in the
			// relay until the new link joins, and it leaves before that.
			notice := newNoticePlayer(l.notice)
			_ = relay.Join(notice)
			link = l.relink(relay, events, caller, func() {
				// The notice ends first, so the room does not hear it.
				notice.wait(relay.Done())
				_ = relay.Leave(notice.Info().ID)
			})
			if link == nil {
				return
			}
			host.set(link)
		}
	}
}

// relink dials the room's current host until a link is up, the caller
// left or the node closes; it returns nil in the latter cases. beforeJoin
// runs once a link is up, before it joins relay.
func (l *links) relink(relay *room.Room, events *room.EventSub, caller room.ParticipantID, beforeJoin func()) *rtc.Link {
	id := relay.ID()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), linkDialTimeout)
		link, err := l.dial(ctx, id, l.locate(ctx, id))
		cancel()
		if err == nil {
			beforeJoin()
			if err = relay.Join(link); err == nil {
				l.log.Info("room link re-established", "room", string(id))
				return link
			}
			_ = link.Close(context.Background())
		}
		l.log.Debug("relink failed; retrying", "room", string(id), "err", err)
		t := time.NewTimer(linkRetry)
		select {
		case e, ok := <-events.C():
			t.Stop()
			if !ok || e.Type == room.EventRoomClosed ||
				(e.Type == room.EventLeft && e.Participant == caller) {
				return nil
			}
		case <-t.C:
		}
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		if closed {
			return nil
		}
	}
}

// locate returns the base URL of the node that hosts room id now: its
// owner if that node is live, else this node (whose WHIP handler then
// takes the room, or redirects if another node won it meanwhile).
func (l *links) locate(ctx context.Context, id room.ID) string {
	var moved *room.MovedError
	if errors.As(l.own.hostOf(ctx, id), &moved) {
		return moved.URL
	}
	return l.selfURL
}

// close ends every relay (their callers are being hung up by the SIP UA
// already) and waits for the supervisors.
func (l *links) close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	relays := make([]*room.Room, 0, len(l.relays))
	for r := range l.relays {
		relays = append(relays, r)
	}
	l.mu.Unlock()
	var errs []error
	for _, r := range relays {
		errs = append(errs, r.Close(ctx))
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("room links: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// noticePlayer is a relay's participant that says its notice once to the
// caller while the link is redialled.
type noticePlayer struct {
	pcm  []int16
	pos  atomic.Int64  // samples played
	done chan struct{} // closed when the notice has been played
	once sync.Once
}

func newNoticePlayer(pcm []int16) *noticePlayer {
	return &noticePlayer{pcm: pcm, done: make(chan struct{})}
}

// wait returns when the notice has been played, stop is closed, or after
// the notice's length and a second (a room that stopped reading).
func (p *noticePlayer) wait(stop <-chan struct{}) {
	t := time.NewTimer(time.Duration(len(p.pcm))*time.Second/media.Rate48k + time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-stop:
	case <-t.C:
	}
}

// Info implements room.Participant; it takes its mix as G.711, the
// cheapest format, and drops it.
func (p *noticePlayer) Info() room.Info {
	return room.Info{ID: "relink-notice", Name: "notice", Kind: room.KindOther, Format: room.Format{Codec: room.CodecPCMU}}
}

// ReadFrame implements room.Participant: the notice, frame by frame, then
// nothing.
func (p *noticePlayer) ReadFrame(dst *media.Frame) bool {
	at := int(p.pos.Load())
	if at >= len(p.pcm) {
		p.once.Do(func() { close(p.done) })
		return false
	}
	n := copy(dst[:], p.pcm[at:])
	clear(dst[n:])
	p.pos.Add(int64(len(dst)))
	return true
}

// WriteMix implements room.Participant: the mix is not needed.
func (p *noticePlayer) WriteMix(room.Packet) bool { return true }

// Detached implements room.Participant.
func (p *noticePlayer) Detached(error) {}
