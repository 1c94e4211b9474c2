package stream

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/mediagate/mediagate/room"
)

// EventType says what an Event reports.
type EventType string

const (
	// EventState: a destination changed state; Err is why it left live
	// or connecting, if it failed.
	EventState EventType = "state"
	// EventEnded: the egress stopped (Close, or its room ended); the last
	// event.
	EventEnded EventType = "ended"
)

// Event reports a change, for the admin API's webhooks and logs.
type Event struct {
	// Type says what happened.
	Type EventType
	// Room is Options.Room.
	Room room.ID
	// Destination and URL (masked) name the destination; empty for
	// EventEnded.
	Destination DestinationID
	URL         string
	// State is the destination's new state.
	State State
	// Err is the failure behind the change, with the stream key masked in
	// its text; errors.Is sees through it.
	Err error
	// Time is when it happened, by Options.Now.
	Time time.Time
}

// Status is a snapshot of an egress.
type Status struct {
	// Room is Options.Room.
	Room room.ID
	// StartedAt is when New made the egress.
	StartedAt time.Time
	// Video is what is being sent as video.
	Video VideoMode
	// Destinations in the order they were added.
	Destinations []DestinationStatus
	// Ended is true once the egress stopped.
	Ended bool
}

// Egress streams one room to its destinations. Its methods are safe for
// concurrent use.
//
// Goroutines: New starts the audio pipeline, the slate ticker, the
// presenter reader (with a VideoSource) and a supervisor; Add starts one
// per destination (plus a reader while it publishes). Close, or the end of
// the room's mix, stops them all; Done is closed when they have.
type Egress struct {
	opts  Options
	log   *slog.Logger
	zero  time.Time
	roots *x509.CertPool
	meta  streamMetadata
	fan   *fanout
	audio *audioPipe
	video *videoPipe
	mix   MixSource
	vsrc  VideoSource

	ctx    context.Context
	cancel context.CancelFunc
	pipes  sync.WaitGroup // audio, slate, presenter
	dests  sync.WaitGroup
	done   chan struct{}

	mu     sync.Mutex
	byID   map[DestinationID]*destination
	order  []*destination
	closed bool
	nextID int
}

// New starts an egress for a room: audio from mix, video from video (nil:
// the slate only). It takes both sources over: the egress closes them when
// it ends, New when it fails. Destinations are added with Add. With
// Options.Fence, New fails with ErrStale when Options.Epoch is stale.
func New(mix MixSource, video VideoSource, opts Options) (*Egress, error) {
	e, err := newEgress(mix, video, opts)
	if err != nil {
		mix.Close()
		if video != nil {
			video.Close()
		}
		return nil, err
	}
	return e, nil
}

func newEgress(mix MixSource, video VideoSource, opts Options) (*Egress, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkFence(context.Background(), opts.Fence, opts.Room, opts.Epoch); errors.Is(err, ErrStale) {
		return nil, fmt.Errorf("start egress: %w", err)
	}
	slate, err := loadSlate()
	if err != nil {
		return nil, err
	}
	e := &Egress{
		opts:  opts,
		log:   opts.Logger.With("component", "stream", "room", string(opts.Room)),
		zero:  opts.Now(),
		roots: rootPool(opts.ExtraRootCAs),
		meta:  newMetadata(opts.AudioBitrate, opts.AudioChannels),
		fan:   newFanout(),
		mix:   mix,
		vsrc:  video,
		done:  make(chan struct{}),
		byID:  map[DestinationID]*destination{},
	}
	if e.audio, err = newAudioPipe(e, opts.AudioBitrate, opts.AudioChannels); err != nil {
		return nil, fmt.Errorf("%w: audio: %w", ErrOptions, err)
	}
	hdr := e.fan.get(typeAudio, 0)
	hdr.hdr, hdr.data = true, append(hdr.data, e.audio.header()...)
	e.fan.publish(hdr)
	e.video = newVideoPipe(e, video, slate)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.pipes.Add(2)
	go e.runAudio()
	go func() {
		defer e.pipes.Done()
		e.video.runSlate(e.ctx)
	}()
	if video != nil {
		video.RequestKeyframe()
		e.pipes.Add(1)
		go func() {
			defer e.pipes.Done()
			e.video.runPresenter(e.ctx)
		}()
	}
	go e.supervise()
	return e, nil
}

func (e *Egress) now() time.Time { return e.opts.Now() }

func (e *Egress) emit(ev Event) {
	if e.opts.OnEvent != nil {
		ev.Room = e.opts.Room
		e.opts.OnEvent(ev)
	}
}

func (e *Egress) connectOptions() connectOptions {
	return connectOptions{dial: e.opts.Dial, roots: e.roots, timeout: e.opts.Timeout, metadata: e.meta}
}

// runAudio encodes the mix until it ends (the egress ends with it) or the
// egress stops.
func (e *Egress) runAudio() {
	defer e.pipes.Done()
	var f room.MixFrame
	for {
		err := e.mix.Read(e.ctx, &f)
		if err == nil {
			err = e.audio.push(&f)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			e.log.Info("room mix ended: stopping the egress")
		case e.ctx.Err() == nil:
			e.log.Error("audio pipeline failed: stopping the egress", "err", err)
		}
		e.cancel()
		return
	}
}

// supervise waits for the end, then stops the destinations and pipelines,
// releases the sources and closes done.
func (e *Egress) supervise() {
	<-e.ctx.Done()
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.dests.Wait()
	e.mix.Close()
	if e.vsrc != nil {
		e.vsrc.Close()
	}
	e.pipes.Wait()
	e.audio.close()
	e.log.Info("egress ended")
	e.emit(Event{Type: EventEnded, Time: e.now()})
	close(e.done)
}

// Done is closed once the egress has stopped: after Close, or when the
// room's mix ended.
func (e *Egress) Done() <-chan struct{} { return e.done }

// Close stops every destination (unpublishing politely, within a second),
// the pipelines, and closes the sources. It is safe to call twice.
func (e *Egress) Close() error {
	e.cancel()
	<-e.done
	return nil
}

// Add checks d and starts publishing to it: the URL must be rtmp or rtmps
// with an application and a stream key, and its host must not be or
// resolve to a non-public address unless Options.AllowPrivate (ctx bounds
// the lookup). Errors name the destination by its masked URL. A
// destination that reached a final state (rejected, error) stays listed,
// with its last error, until Remove. With Options.Fence, Add fails with
// ErrStale when Options.Epoch is stale (ctx bounds the question too).
func (e *Egress) Add(ctx context.Context, d Destination) (DestinationID, error) {
	if !validID(d.ID) {
		return "", fmt.Errorf("%w: %q", ErrInvalidID, truncate(string(d.ID), 40))
	}
	t, err := parseTarget(d.URL, d.Key)
	if err != nil {
		return "", err
	}
	if !e.opts.AllowPrivate {
		if err := checkAddress(ctx, e.opts.Resolver, t); err != nil {
			return "", err
		}
	}
	if err := e.refuseStale(ctx); err != nil {
		return "", fmt.Errorf("add %s: %w", t.masked, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", ErrClosed
	}
	id := d.ID
	for id == "" || e.byID[id] != nil && d.ID == "" {
		e.nextID++
		id = DestinationID("d" + strconv.Itoa(e.nextID))
	}
	if e.byID[id] != nil {
		return "", fmt.Errorf("%w: id %q", ErrDuplicate, truncate(string(id), 40))
	}
	for _, o := range e.order {
		if o.t.tcURL == t.tcURL && o.t.key == t.key {
			return "", fmt.Errorf("%w: %s with the same key is %s", ErrDuplicate, t.masked, o.id)
		}
	}
	ctxD, cancel := context.WithCancel(e.ctx)
	dst := &destination{
		e: e, id: id, name: d.Name, t: t, q: newQueue(e.opts.Queue),
		cancel: cancel, done: make(chan struct{}),
	}
	dst.st = DestinationStatus{ID: id, Name: d.Name, URL: t.masked, State: StateConnecting, StateSince: e.now()}
	e.byID[id] = dst
	e.order = append(e.order, dst)
	e.dests.Add(1)
	go func() {
		defer e.dests.Done()
		dst.run(ctxD)
	}()
	return id, nil
}

// validID reports whether id is empty (to be generated) or fit for URLs
// and logs.
func validID(id DestinationID) bool {
	if len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Remove stops publishing to destination id (unpublishing politely) and
// forgets it once stopped.
func (e *Egress) Remove(id DestinationID) error {
	e.mu.Lock()
	d := e.byID[id]
	if d != nil {
		delete(e.byID, id)
		for i, o := range e.order {
			if o == d {
				e.order = append(e.order[:i], e.order[i+1:]...)
				break
			}
		}
	}
	e.mu.Unlock()
	if d == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, truncate(string(id), 40))
	}
	d.cancel()
	<-d.done
	return nil
}

// Status returns a snapshot of the egress and its destinations.
func (e *Egress) Status() Status {
	e.mu.Lock()
	dests := append([]*destination(nil), e.order...)
	e.mu.Unlock()
	s := Status{Room: e.opts.Room, StartedAt: e.zero, Video: e.video.Mode()}
	select {
	case <-e.done:
		s.Ended = true
	default:
	}
	for _, d := range dests {
		s.Destinations = append(s.Destinations, d.status())
	}
	return s
}

// Destination returns the status of destination id.
func (e *Egress) Destination(id DestinationID) (DestinationStatus, error) {
	e.mu.Lock()
	d := e.byID[id]
	e.mu.Unlock()
	if d == nil {
		return DestinationStatus{}, fmt.Errorf("%w: %q", ErrNotFound, truncate(string(id), 40))
	}
	return d.status(), nil
}
