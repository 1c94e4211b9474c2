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
type Recording struct {
	r      *Recorder
	e      *entry
	id     ID
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
}

func newRecording(r *Recorder, e *entry, src Source) *Recording {
	ctx, cancel := context.WithCancel(context.Background())
	return &Recording{r: r, e: e, id: e.m.ID, src: src, ctx: ctx, cancel: cancel, done: make(chan struct{})}
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
	rec.sum = sha256.New()
	tr, err := newTrack(&r.opts, rec.e.m.Format, rec.f, sync, rec.sum)
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
		if err := rec.writeFrame(); err != nil {
			return err
		}
	}
	return nil
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
		rec.saveProgress()
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
// far. A failure is reported, not fatal: the audio matters more, and
// start-up recovery rebuilds size and hash anyway.
func (rec *Recording) saveProgress() {
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
}

// finish closes the stream and the file and writes the final manifest:
// complete, or interrupted by cause with the file cut back to its last
// complete page.
func (rec *Recording) finish(cause error) {
	r := rec.r
	if cause == nil {
		cause = rec.closeTrack()
	}
	if cause == nil {
		if err := rec.f.Close(); err != nil {
			cause = fmt.Errorf("close: %w", err)
		}
	} else {
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
	werr := r.st.writeManifest(m)
	snap := m.clone()
	rec.err = cause
	e.mu.Unlock()

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
