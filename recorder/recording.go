package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

// maxGapFill bounds the silence written for frames the recording missed in
// one go (5 s); a longer gap is counted but shortens the file instead of
// stalling the recording while it catches up.
const maxGapFill = 250

// maxNameLen bounds a stored display name (bytes).
const maxNameLen = 256

// vendor is the OpusTags vendor string (RFC 7845 §5.2).
const vendor = "mediagate (libopus)"

// Recording is one room's mix being written to <id>.opus or <id>.m4a. Its
// goroutine is the only one touching the file and the encoder; the methods
// are safe for concurrent use.
//
// Fencing (decision 4). A recording started WithEpoch asks Options.Fence
// whether its node still owns the room before every manifest write (on
// participant changes, at the end) and, every Options.FenceInterval, before
// writing more audio. When the fence cannot tell (Redis unreachable) the
// recording carries on, as running rooms do during an outage, and the next
// check asks again. When the epoch is stale (the node was paused past its
// lease and another node owns the room now) the recording stops at once:
//
//   - no more audio: the file keeps its complete pages as they are on disk
//     (at most about FenceInterval of them written after the lease was
//     lost); the page being filled is dropped, nothing is truncated,
//     appended or synced;
//   - no more manifest writes by the recording: the manifest on disk stays
//     as the owner last wrote it, state recording. Any write, even a final
//     "interrupted", would be a write with the stale epoch, and the rule
//     is that there are none; the one honest record of what happened is
//     the one the owner made.
//   - in memory the recording is interrupted (Err wraps ErrStale and
//     ErrInterrupted; the manifest's error says the room's ownership was
//     lost; size, duration and hash are those of the file as it is), so
//     this node's admin API and List show the truth, EventInterrupted
//     tells webhooks, and the recording can be downloaded, held and
//     deleted like any interrupted one. Those later writes of the manifest
//     are the node's own bookkeeping of its own files (a random ID the new
//     owner never uses), not side effects of the room. If the node restarts
//     first, start-up recovery finds the manifest still recording and marks
//     it interrupted, as after a crash, which it was as far as the room is
//     concerned.
type Recording struct {
	r      *Recorder
	e      *entry
	id     ID
	room   room.ID // what Options.Fence is asked about
	epoch  uint64
	src    Source
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed by run when the recording has ended
	err    error         // why it was interrupted; set before done closes

	// dirty says the participants changed and the manifest should be
	// rewritten at the next page.
	dirty atomic.Bool

	// Owned by the recording's goroutine.
	f        audioFile
	enc      packetEncoder
	out      container
	sum      hash.Hash
	frame    room.MixFrame
	silence  media.Frame
	pkt      []byte // cap the encoder's largest packet
	lastTick uint64
	started  bool
	dropped  uint64
	// nextFence is when the audio writes next ask Options.Fence (the
	// monotonic clock: the interval must not follow Options.Now).
	nextFence time.Time
	// fenceDown says the last check could not tell (logged once per
	// outage, not once a second).
	fenceDown bool
}

func newRecording(r *Recorder, e *entry, src Source) *Recording {
	ctx, cancel := context.WithCancel(context.Background())
	return &Recording{r: r, e: e, id: e.m.ID, room: e.m.Room, epoch: e.m.Epoch, src: src, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), nextFence: time.Now().Add(r.opts.FenceInterval)}
}

// open writes the first manifest (state recording), then creates the audio
// file with its container's headers. The manifest comes first so that a crash in
// between leaves a recording that start-up recovery finds.
func (rec *Recording) open() (err error) {
	r := rec.r
	if err := r.st.writeManifest(&rec.e.m); err != nil {
		return err
	}
	path, err := r.st.audioPath(rec.id, rec.e.m.Format)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			rec.cancel()
			if rec.enc != nil {
				_ = rec.enc.Close()
			}
			if rec.f != nil {
				_ = rec.f.Close()
				_ = os.Remove(path)
			}
			if mp, perr := r.st.manifestPath(rec.id); perr == nil {
				_ = os.Remove(mp)
			}
		}
	}()
	if rec.f, err = r.createAudio(path); err != nil {
		return fmt.Errorf("create recording %s: %w", rec.id, err)
	}
	var sync func() error
	if r.opts.Sync == SyncEveryPage {
		sync = rec.f.Sync
	}
	if rec.e.m.Encryption != "" {
		t, ok := rec.f.(sealTarget)
		if !ok {
			return fmt.Errorf("recording %s: audio file cannot be encrypted", rec.id)
		}
		sf, err := createSealed(t, r.opts.EncryptionKey, r.opts.Sync == SyncEveryPage)
		if err != nil {
			return fmt.Errorf("recording %s: %w", rec.id, err)
		}
		// every page is sealed into the file, fsynced or not
		rec.f, sync = sf, sf.Sync
	}
	rec.sum = sha256.New()
	tr, err := newTrack(&r.opts, rec.e.m.Format, countingWriter{rec.f, &r.count.bytes}, sync, rec.sum)
	if err != nil {
		return fmt.Errorf("recording %s: %w", rec.id, err)
	}
	rec.enc, rec.out, rec.pkt = tr.enc, tr.out, make([]byte, tr.max)
	return nil
}

// ID returns the recording's ID.
func (rec *Recording) ID() ID { return rec.id }

// Done is closed when the recording has ended and its manifest is final.
func (rec *Recording) Done() <-chan struct{} { return rec.done }

// Err returns, once Done is closed, the error that interrupted the
// recording (wrapping ErrInterrupted), or nil if it completed.
func (rec *Recording) Err() error {
	select {
	case <-rec.done:
		return rec.err
	default:
		return nil
	}
}

// Manifest returns a copy of the recording's manifest as it is now.
func (rec *Recording) Manifest() Manifest {
	rec.e.mu.Lock()
	defer rec.e.mu.Unlock()
	return rec.e.m.clone()
}

// State returns the recording's state.
func (rec *Recording) State() State {
	rec.e.mu.Lock()
	defer rec.e.mu.Unlock()
	return rec.e.m.State
}

// Stop ends the recording: the pending page is written as the last one,
// the file closed and the manifest completed. It waits for that or for ctx,
// and returns the interruption error if a write error ended the recording
// earlier. It is safe to call twice and after the recording ended.
func (rec *Recording) Stop(ctx context.Context) error {
	rec.cancel()
	select {
	case <-rec.done:
		return rec.err
	case <-ctx.Done():
		return fmt.Errorf("stop recording %s: %w", rec.id, ctx.Err())
	}
}

// ParticipantInfo describes a participant joining a recorded room, as the
// caller learns it from room events and Room.Participants.
type ParticipantInfo struct {
	// ID matches Left to Joined; it is not stored (a SIP Call-ID may hold
	// an address).
	ID room.ParticipantID
	// Name is the display name.
	Name string
	// Number is the caller's number for phone participants; it is masked
	// (MaskNumber) before it is stored, never stored or logged in clear.
	Number string
	Kind   room.Kind
}

// Joined records that a participant joined at at (zero: now). Calls after
// the recording ended are ignored. The manifest on disk follows within a
// page (a second).
func (rec *Recording) Joined(p ParticipantInfo, at time.Time) {
	if at.IsZero() {
		at = rec.r.opts.Now()
	}
	name := p.Name
	if len(name) > maxNameLen {
		name = truncate(name, maxNameLen)
	}
	rec.e.mu.Lock()
	defer rec.e.mu.Unlock()
	if rec.e.rec != rec {
		return
	}
	rec.e.m.Participants = append(rec.e.m.Participants, Participant{
		Name: name, Number: MaskNumber(p.Number), Kind: p.Kind.String(), JoinedAt: utc(at), id: p.ID,
	})
	rec.e.m.ParticipantCount++
	rec.dirty.Store(true)
}

// Left records that the participant with id left at at (zero: now).
func (rec *Recording) Left(id room.ParticipantID, at time.Time) {
	if at.IsZero() {
		at = rec.r.opts.Now()
	}
	rec.e.mu.Lock()
	defer rec.e.mu.Unlock()
	if rec.e.rec != rec {
		return
	}
	ps := rec.e.m.Participants
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].id == id && ps[i].LeftAt.IsZero() {
			ps[i].LeftAt = utc(at)
			rec.dirty.Store(true)
			return
		}
	}
}

// run is the recording's goroutine.
func (rec *Recording) run() {
	defer rec.r.wg.Done()
	defer close(rec.done)
	err := rec.loop()
	rec.src.Close()
	rec.finish(err) // flushes the encoder's partial packet
	_ = rec.enc.Close()
}

// loop reads and writes frames until Stop, the end of the mix, or an error.
func (rec *Recording) loop() error {
	for rec.ctx.Err() == nil {
		if err := rec.src.Read(rec.ctx, &rec.frame); err != nil {
			if errors.Is(err, io.EOF) || rec.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read mix: %w", err)
		}
		if rec.r.opts.Fence.Check != nil && time.Now().After(rec.nextFence) {
			if err := rec.checkFence(); err != nil {
				return err
			}
		}
		if err := rec.writeFrame(); err != nil {
			return err
		}
	}
	return nil
}

// checkFence asks Options.Fence whether this node still owns the room. It
// returns only a stale epoch (wrapping ErrStale), which ends the recording;
// a fence that cannot tell is logged and asked again later.
func (rec *Recording) checkFence() error {
	r := rec.r
	if r.opts.Fence.Check == nil {
		return nil
	}
	rec.nextFence = time.Now().Add(r.opts.FenceInterval)
	err := checkFence(context.Background(), r.opts.Fence, rec.room, rec.epoch)
	switch {
	case err != nil && !errors.Is(err, ErrStale):
		if !rec.fenceDown {
			r.log.Warn("room ownership cannot be checked; recording goes on", "recording", string(rec.id), "err", err)
		}
		rec.fenceDown = true
		return nil
	case err == nil && rec.fenceDown:
		r.log.Info("room ownership confirmed again", "recording", string(rec.id))
	}
	rec.fenceDown = false
	return err
}

// writeFrame encodes the frame just read, after silence for the frames the
// source dropped (a gap in ticks) so that the recording keeps time.
func (rec *Recording) writeFrame() error {
	if rec.started && rec.frame.Tick > rec.lastTick+1 {
		gap := rec.frame.Tick - rec.lastTick - 1
		rec.dropped += gap
		for range min(gap, maxGapFill) {
			if err := rec.encode(&rec.silence); err != nil {
				return err
			}
		}
	}
	rec.started, rec.lastTick = true, rec.frame.Tick
	return rec.encode(&rec.frame.PCM)
}

func (rec *Recording) encode(pcm *media.Frame) error {
	n, err := rec.enc.Encode(pcm, rec.pkt)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return rec.writePacket(n)
}

// writePacket hands the n-byte packet in rec.pkt (none if n is 0) to the
// container, and updates the manifest when a page went to disk.
func (rec *Recording) writePacket(n int) error {
	if n == 0 {
		return nil
	}
	flushed, err := rec.out.WritePacket(rec.pkt[:n])
	if err != nil {
		return err
	}
	if flushed && rec.dirty.Load() {
		return rec.saveProgress()
	}
	return nil
}

// closeTrack writes what the encoder still holds and the last page.
func (rec *Recording) closeTrack() error {
	for {
		n, err := rec.enc.Flush(rec.pkt)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		if n == 0 {
			return rec.out.Close()
		}
		if err := rec.writePacket(n); err != nil {
			return err
		}
	}
}

// saveProgress rewrites the manifest with the participants and the size so
// far, once the fence has confirmed the room's ownership; a stale epoch is
// returned and ends the recording. A write failure is reported, not fatal:
// the audio matters more, and start-up recovery rebuilds size and hash
// anyway.
func (rec *Recording) saveProgress() error {
	if err := rec.checkFence(); err != nil {
		return err
	}
	rec.dirty.Store(false)
	e := rec.e
	e.mu.Lock()
	e.m.Bytes, e.m.Duration = rec.out.Written(), rec.out.Duration()
	err := rec.r.st.writeManifest(&e.m)
	m := e.m.clone()
	e.mu.Unlock()
	if err != nil {
		rec.dirty.Store(true)
		rec.r.log.Warn("manifest update failed", "recording", string(rec.id), "err", err)
		rec.r.emit(EventManifestFailed, &m, err)
	}
	return nil
}

// finish closes the stream and the file and writes the final manifest:
// complete, or interrupted by cause with the file cut back to its last
// complete page. The last page and the final manifest are fenced too; when
// the epoch is stale (now, or cause already says so) nothing more is
// written (see Recording).
func (rec *Recording) finish(cause error) {
	r := rec.r
	if cause == nil {
		cause = rec.checkFence()
	}
	if cause == nil {
		cause = rec.closeTrack()
	}
	stale := errors.Is(cause, ErrStale)
	switch {
	case stale:
		_ = rec.f.Close() // its complete pages stay as they are
	case cause == nil:
		if err := rec.f.Close(); err != nil {
			cause = fmt.Errorf("close: %w", err)
		}
	default:
		_ = rec.f.Truncate(rec.out.Written())
		_ = rec.f.Sync()
		_ = rec.f.Close()
	}
	state, errText := StateComplete, ""
	if cause != nil {
		state, errText = StateInterrupted, cause.Error()
		cause = fmt.Errorf("%w: %s: %w", ErrInterrupted, rec.id, cause)
	}
	e := rec.e
	e.mu.Lock()
	m := &e.m
	m.State, m.EndedAt, m.Error = state, r.now(), errText
	m.Duration, m.Bytes = rec.out.Duration(), rec.out.Written()
	m.SHA256 = hex.EncodeToString(rec.sum.Sum(nil))
	m.DroppedFrames = rec.dropped
	closeStays(m.Participants, m.EndedAt)
	e.rec = nil
	r.count.active.Add(-1)
	var werr error
	if !stale {
		werr = r.st.writeManifest(m)
	}
	snap := m.clone()
	rec.err = cause
	e.mu.Unlock()

	if stale {
		r.log.Warn("recording stopped: room ownership lost; its manifest on disk stays as last written",
			"recording", string(rec.id), "room", string(snap.Room), "epoch", snap.Epoch, "err", cause)
		r.emit(EventInterrupted, &snap, cause)
		return
	}
	if cause != nil {
		r.log.Error("recording interrupted", "recording", string(rec.id), "err", cause)
		r.emit(EventInterrupted, &snap, cause)
	} else {
		r.log.Info("recording complete", "recording", string(rec.id), "duration", snap.Duration, "bytes", snap.Bytes)
		r.emit(EventCompleted, &snap, nil)
	}
	if werr != nil {
		r.log.Error("final manifest not written; start-up recovery will repair it", "recording", string(rec.id), "err", werr)
		r.emit(EventManifestFailed, &snap, werr)
	}
}

// closeStays ends the stays of participants still there at end.
func closeStays(ps []Participant, end time.Time) {
	for i := range ps {
		if ps[i].LeftAt.IsZero() {
			ps[i].LeftAt = end
		}
	}
}
