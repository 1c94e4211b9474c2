package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/stream"
)

// roomStreams pushes rooms live: the wiring between a room and package
// stream, one stream.Egress per room with any number of destinations. An
// egress reads the room's mix and its presenter's video (rtc); it ends
// when the API stops it, when the room closes (its mix ends), or when the
// node shuts down. Events are logged, destinations by ID and masked URL.
// Rooms whose entry lists auto_stream destinations are streamed to them
// whenever someone is in them. It implements api.RoomStreamer.
//
// Goroutines: one reaper per egress, which forgets the egress once it
// ended; one watcher per open auto-streamed room, ended by the room's
// close or close. close closes every egress and waits for both.
type roomStreams struct {
	log   *slog.Logger
	opts  stream.Options
	rooms *room.Manager
	// epochOf is the epoch under which this node hosts a room (0 when it
	// does not hold its lease); the egress's fence checks it.
	epochOf func(room.ID) uint64
	// video subscribes to a room's presenter video (rtc.Server's
	// SubscribeVideo); nil sends the slate only.
	video func(room.ID) stream.VideoSource
	// auto are the auto_stream destinations by room.
	auto map[room.ID][]stream.Destination
	// grace is how long an auto-streamed room keeps streaming after its
	// last participant left (conference.empty_timeout).
	grace time.Duration
	// hooks hears of egresses starting, changing and ending (webhooks);
	// nil: nobody.
	hooks *nodeWebhooks

	ctx    context.Context // ends the watchers
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	active map[room.ID]*stream.Egress
	closed bool
}

var _ api.RoomStreamer = (*roomStreams)(nil)

// newRoomStreams returns the egress manager of the rooms a manager will
// hold; set rooms (and video) before the first room opens (the manager's
// WithOnOpen calls opened).
func newRoomStreams(log *slog.Logger, opts stream.Options, auto map[room.ID][]stream.Destination, grace time.Duration) *roomStreams {
	g := &roomStreams{
		log: log.With("component", "streams"), opts: opts, auto: auto, grace: max(grace, 0),
		active: map[room.ID]*stream.Egress{}, epochOf: func(room.ID) uint64 { return 0 },
	}
	g.opts.OnEvent = g.event
	g.opts.Logger = g.log
	g.ctx, g.cancel = context.WithCancel(context.Background())
	return g
}

// autoStreamed returns the rooms' auto_stream destinations as package
// stream's, by room.
func autoStreamed(rooms map[string]configs.Room) map[room.ID][]stream.Destination {
	out := map[room.ID][]stream.Destination{}
	for id, rc := range rooms {
		for _, d := range rc.AutoStream {
			out[room.ID(id)] = append(out[room.ID(id)], stream.Destination{Name: d.Name, URL: d.URL, Key: d.Key})
		}
	}
	return out
}

// opened is the room manager's WithOnOpen hook: rooms with auto_stream
// destinations get a watcher, subscribed before anyone joins.
func (g *roomStreams) opened(rm *room.Room) {
	if len(g.auto[rm.ID()]) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	sub := rm.SubscribeEvents(followBuffer)
	g.wg.Add(1)
	go g.watch(rm, sub)
}

// watch streams an auto-streamed room whenever someone is in it: from a
// join into the empty room until it has been empty for the grace period,
// or until it closes (the egress ends with the room's mix).
func (g *roomStreams) watch(rm *room.Room, sub *room.EventSub) {
	defer g.wg.Done()
	whileOccupied(g.ctx, rm, sub, g.grace, g.autoStart, g.autoStop)
}

// autoStop stops the auto-stream of rm, which has been empty for the
// grace period.
func (g *roomStreams) autoStop(rm *room.Room) {
	if err := g.StopStream(rm.ID()); err != nil && !errors.Is(err, api.ErrNotStreaming) {
		g.log.Error("auto-stream not stopped", "room", string(rm.ID()), "err", err)
	}
}

// autoStart starts the auto-stream of rm unless its egress runs.
func (g *roomStreams) autoStart(rm *room.Room) {
	if _, err := g.egress(rm.ID()); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(g.ctx, g.opts.Timeout+10*time.Second)
	defer cancel()
	_, err := g.StartStream(ctx, rm.ID(), g.auto[rm.ID()])
	if err != nil && !errors.Is(err, api.ErrAlreadyStreaming) && !errors.Is(err, stream.ErrClosed) {
		g.log.Error("auto-stream not started", "room", string(rm.ID()), "err", err)
	}
}

// streamOptions turns the stream section into egress options, reading
// stream.ca_file.
func streamOptions(c configs.Stream) (stream.Options, error) {
	o := stream.Options{
		AudioBitrate: c.AudioBitrate, AudioChannels: c.AudioChannels, Timeout: c.Timeout,
		BackoffMin: c.BackoffMin, BackoffMax: c.BackoffMax, AllowPrivate: c.AllowPrivate,
	}
	if c.CAFile == "" {
		return o, nil
	}
	cas, err := readCertificates(c.CAFile)
	if err != nil {
		return o, fmt.Errorf("stream.ca_file: %w", err)
	}
	o.ExtraRootCAs = cas
	return o, nil
}

// readCertificates reads every CERTIFICATE block of a PEM file; a file
// with none is an error.
func readCertificates(name string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for len(data) > 0 {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", name)
	}
	return out, nil
}

// event logs an egress's event and passes it to the webhooks. The URL is
// masked and the error's text has the key masked (package stream); the
// key itself is never at hand.
func (g *roomStreams) event(ev stream.Event) {
	g.hooks.egressEvent(ev)
	if ev.Type == stream.EventEnded {
		g.log.Info("room stream ended", "room", string(ev.Room))
		return
	}
	attrs := []any{"room", string(ev.Room), "destination", string(ev.Destination), "url", ev.URL, "state", string(ev.State)}
	if ev.Err != nil {
		g.log.Warn("stream destination", append(attrs, "err", ev.Err.Error())...)
		return
	}
	g.log.Info("stream destination", attrs...)
}

// StartStream starts an egress of the open room id to ds; on any error
// nothing stays started.
func (g *roomStreams) StartStream(ctx context.Context, id room.ID, ds []stream.Destination) (stream.Status, error) {
	rm, err := g.rooms.Get(id)
	if err != nil {
		return stream.Status{}, fmt.Errorf("room %s is not open on this node: %w", id, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return stream.Status{}, stream.ErrClosed
	case running(g.active[id]):
		return stream.Status{}, fmt.Errorf("room %s: %w", id, api.ErrAlreadyStreaming)
	}
	opts := g.opts
	opts.Room = id
	opts.Epoch = g.epochOf(id)
	var video stream.VideoSource
	if g.video != nil {
		video = g.video(id)
	}
	e, err := stream.New(rm.SubscribeMix(stream.RecommendedMixBuffer), video, opts)
	if err != nil {
		return stream.Status{}, err
	}
	g.hooks.egressStarted(id)
	for _, d := range ds {
		if _, err := e.Add(ctx, d); err != nil {
			_ = e.Close()
			return stream.Status{}, err
		}
	}
	g.active[id] = e
	g.wg.Add(1)
	go g.reap(id, e)
	g.log.Info("room stream started", "room", string(id), "destinations", len(ds))
	return e.Status(), nil
}

// reap forgets the egress of id once it ended.
func (g *roomStreams) reap(id room.ID, e *stream.Egress) {
	defer g.wg.Done()
	<-e.Done()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active[id] == e {
		delete(g.active, id)
	}
}

// egress returns the room's running egress: not one that ended, which
// its reaper is about to forget.
func (g *roomStreams) egress(id room.ID) (*stream.Egress, error) {
	g.mu.Lock()
	e := g.active[id]
	g.mu.Unlock()
	if running(e) {
		return e, nil
	}
	return nil, fmt.Errorf("room %s: %w", id, api.ErrNotStreaming)
}

// running reports whether e is an egress that has not ended.
func running(e *stream.Egress) bool {
	if e == nil {
		return false
	}
	select {
	case <-e.Done():
		return false
	default:
		return true
	}
}

// AddDestination adds d to the room's egress.
func (g *roomStreams) AddDestination(ctx context.Context, id room.ID, d stream.Destination) (stream.DestinationStatus, error) {
	e, err := g.egress(id)
	if err != nil {
		return stream.DestinationStatus{}, err
	}
	did, err := e.Add(ctx, d)
	if err != nil {
		return stream.DestinationStatus{}, err
	}
	return e.Destination(did)
}

// RemoveDestination stops publishing to destination d of the room.
func (g *roomStreams) RemoveDestination(id room.ID, d stream.DestinationID) error {
	e, err := g.egress(id)
	if err != nil {
		return err
	}
	return e.Remove(d)
}

// StopStream closes the room's egress and waits until it stopped.
func (g *roomStreams) StopStream(id room.ID) error {
	e, err := g.egress(id)
	if err != nil {
		return err
	}
	return e.Close()
}

// StreamStatus is the room's egress.
func (g *roomStreams) StreamStatus(id room.ID) (stream.Status, error) {
	e, err := g.egress(id)
	if err != nil {
		return stream.Status{}, err
	}
	return e.Status(), nil
}

// Streams are the running egresses in room order (not those that ended).
func (g *roomStreams) Streams() []stream.Status {
	g.mu.Lock()
	es := make([]*stream.Egress, 0, len(g.active))
	for _, e := range g.active {
		if running(e) {
			es = append(es, e)
		}
	}
	g.mu.Unlock()
	out := make([]stream.Status, 0, len(es))
	for _, e := range es {
		out = append(out, e.Status())
	}
	slices.SortFunc(out, func(a, b stream.Status) int { return strings.Compare(string(a.Room), string(b.Room)) })
	return out
}

// close closes every egress (each unpublishes politely) and waits for
// them, or for ctx.
func (g *roomStreams) close(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	g.cancel()
	es := make([]*stream.Egress, 0, len(g.active))
	for _, e := range g.active {
		es = append(es, e)
	}
	g.mu.Unlock()
	var errs []error
	for _, e := range es {
		errs = append(errs, e.Close())
	}
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("streams: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}
