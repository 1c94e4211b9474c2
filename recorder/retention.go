package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"
)

// Open opens a finished recording's audio for download. Expiry is enforced
// here, not only by the sweeper (decision 7): a recording past expires_at
// without a legal hold fails with ErrExpired even before it is swept; a
// deleted one (or one whose deletion is under way) with ErrDeleted; one
// still recording with ErrActive. The manifest returned is the one the file
// belongs to (size, hash, format for the response headers).
func (r *Recorder) Open(id ID) (io.ReadSeekCloser, Manifest, error) {
	e, err := r.lookup(id)
	if err != nil {
		return nil, Manifest{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := r.readable(e); err != nil {
		return nil, Manifest{}, err
	}
	path, err := r.st.audioPath(id, e.m.Format)
	if err != nil {
		return nil, Manifest{}, err
	}
	if e.m.Encryption != "" {
		sf, err := openSealedFile(path, r.opts.EncryptionKey)
		if err != nil {
			return nil, Manifest{}, fmt.Errorf("open recording %s: %w", id, err)
		}
		if sf.Size() != e.m.Bytes { // chunks cut off whole: GCM cannot see it, the manifest can
			_ = sf.Close()
			return nil, Manifest{}, fmt.Errorf("open recording %s: %w: %d bytes of audio, the manifest says %d", id, ErrDecrypt, sf.Size(), e.m.Bytes)
		}
		return &sealedReader{s: sf}, e.m.clone(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, Manifest{}, fmt.Errorf("open recording %s: %w", id, err)
	}
	return f, e.m.clone(), nil
}

// readable says why e may not be read now, if it may not. e.mu is held.
func (r *Recorder) readable(e *entry) error {
	m := &e.m
	switch {
	case m.State == StateDeleted || m.Deletion != nil:
		return fmt.Errorf("%w: %s", ErrDeleted, m.ID)
	case e.rec != nil || m.State == StateRecording:
		return fmt.Errorf("%w: %s", ErrActive, m.ID)
	case m.LegalHold == nil && !r.now().Before(m.ExpiresAt):
		return fmt.Errorf("%w: %s at %s", ErrExpired, m.ID, m.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// Extend moves the recording's expires_at later, to until. It refuses an
// earlier time (ErrRetentionShorten), a time past started_at plus the
// policy's maximum (ErrRetentionMax), and recordings that are deleted or
// already expired without a hold.
func (r *Recorder) Extend(id ID, until time.Time) (Manifest, error) {
	if until.IsZero() {
		return Manifest{}, fmt.Errorf("%w: zero expiry", ErrInvalidArgument)
	}
	until = utc(until)
	return r.update(id, func(m *Manifest, active bool) error {
		p, ok := r.policy(m.Retention)
		if !ok { // a policy removed from the config since: keep what was promised
			p = Policy{Name: m.Retention, Max: m.ExpiresAt.Sub(m.StartedAt)}
		}
		switch {
		case m.LegalHold == nil && !r.now().Before(m.ExpiresAt):
			return fmt.Errorf("%w: %s", ErrExpired, m.ID)
		case until.Before(m.ExpiresAt):
			return fmt.Errorf("%w: %s expires at %s", ErrRetentionShorten, m.ID, m.ExpiresAt.Format(time.RFC3339))
		case until.After(m.StartedAt.Add(p.Max)):
			return fmt.Errorf("%w: policy %q allows until %s", ErrRetentionMax, p.Name, m.StartedAt.Add(p.Max).Format(time.RFC3339))
		}
		m.ExpiresAt = until
		return nil
	})
}

// SetLegalHold puts the recording on legal hold: it is neither swept nor
// deleted, and stays readable past its expiry, until ClearLegalHold. reason
// and by (the admin) are stored in the manifest; setting a hold again
// replaces them.
func (r *Recorder) SetLegalHold(id ID, reason, by string) (Manifest, error) {
	if reason == "" || by == "" {
		return Manifest{}, fmt.Errorf("%w: legal hold needs a reason and an actor", ErrInvalidArgument)
	}
	return r.update(id, func(m *Manifest, _ bool) error {
		m.LegalHold = &LegalHold{Reason: reason, By: by, At: r.now()}
		return nil
	})
}

// ClearLegalHold lifts the hold; a recording already past its expiry is
// then unreadable at once and deleted by the next sweep.
func (r *Recorder) ClearLegalHold(id ID) (Manifest, error) {
	return r.update(id, func(m *Manifest, _ bool) error {
		m.LegalHold = nil
		return nil
	})
}

// update applies change to a recording that is not deleted and writes the
// manifest; on a write error the change is undone.
func (r *Recorder) update(id ID, change func(m *Manifest, active bool) error) (Manifest, error) {
	e, err := r.lookup(id)
	if err != nil {
		return Manifest{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m.State == StateDeleted || e.m.Deletion != nil {
		return Manifest{}, fmt.Errorf("%w: %s", ErrDeleted, id)
	}
	old := e.m.clone()
	if err := change(&e.m, e.rec != nil); err != nil {
		return Manifest{}, err
	}
	if err := r.st.writeManifest(&e.m); err != nil {
		e.m = old
		return Manifest{}, err
	}
	return e.m.clone(), nil
}

// Delete deletes a finished recording's audio on an administrator's or a
// data subject's behalf (reason ReasonAdmin or ReasonErasure), writes its
// receipt and keeps its manifest without participants. It refuses
// recordings on legal hold (ErrLegalHold), within their policy's minimum
// retention (ErrRetentionMin) or still recording (ErrActive). Deleting a
// deleted recording returns its manifest and no error.
func (r *Recorder) Delete(id ID, reason DeletionReason, actor string) (Manifest, error) {
	if reason != ReasonAdmin && reason != ReasonErasure {
		return Manifest{}, fmt.Errorf("%w: deletion reason %q", ErrInvalidArgument, truncate(string(reason), 20))
	}
	if actor == "" {
		return Manifest{}, fmt.Errorf("%w: deletion needs an actor", ErrInvalidArgument)
	}
	e, err := r.lookup(id)
	if err != nil {
		return Manifest{}, err
	}
	return r.deleteEntry(e, reason, actor, r.now())
}

// deleteEntry runs a deletion, or finishes one under way, in three durable
// steps: (1) the manifest records the intent with the file's hash and size;
// (2) the audio is removed and the directory fsynced; (3) the receipt is
// appended, then the manifest becomes deleted without participants. A
// failure at any step leaves the intent in place for the sweeper to retry
// from where it stopped; a crash likewise (New finds the intent and any
// receipt already written).
func (r *Recorder) deleteEntry(e *entry, reason DeletionReason, actor string, now time.Time) (Manifest, error) {
	e.mu.Lock()
	err := r.deleteLocked(e, reason, actor, now)
	snap := e.m.clone()
	e.mu.Unlock()
	switch {
	case errors.Is(err, errAlreadyDeleted):
		return snap, nil
	case err != nil && !isRefusal(err):
		r.log.Error("deletion failed; will retry", "recording", string(snap.ID), "err", err)
		r.emit(EventDeleteFailed, &snap, err)
		return snap, err
	case err != nil:
		return snap, err
	}
	r.log.Info("recording deleted", "recording", string(snap.ID), "reason", string(snap.Deletion.Reason), "receipt", string(snap.Deletion.Receipt))
	r.emit(EventDeleted, &snap, nil)
	return snap, nil
}

var errAlreadyDeleted = errors.New("already deleted")

// isRefusal tells refusals (the recording may not be deleted now) from
// failures (it should have been and was not).
func isRefusal(err error) bool {
	return errors.Is(err, ErrLegalHold) || errors.Is(err, ErrRetentionMin) || errors.Is(err, ErrActive)
}

func (r *Recorder) deleteLocked(e *entry, reason DeletionReason, actor string, now time.Time) error {
	m := &e.m
	switch {
	case m.State == StateDeleted:
		return errAlreadyDeleted
	case e.rec != nil || m.State == StateRecording:
		return fmt.Errorf("%w: %s", ErrActive, m.ID)
	case m.LegalHold != nil:
		return fmt.Errorf("%w: %s", ErrLegalHold, m.ID)
	}
	if m.Deletion == nil {
		if p, ok := r.policy(m.Retention); ok && reason != ReasonExpired && now.Before(m.StartedAt.Add(p.Min)) {
			return fmt.Errorf("%w: %s until %s", ErrRetentionMin, m.ID, m.StartedAt.Add(p.Min).Format(time.RFC3339))
		}
		if err := r.beginDeletion(m, reason, actor, now); err != nil {
			return err
		}
	}
	path, err := r.st.audioPath(m.ID, m.Format)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete audio %s: %w", m.ID, err)
	}
	if err := r.st.syncDir(); err != nil {
		return err
	}
	if m.Deletion.Receipt == "" {
		rc := Receipt{
			Recording: m.ID, Tenant: m.Tenant, Room: m.Room,
			SHA256: m.Deletion.SHA256, Bytes: m.Deletion.Bytes, ExpiresAt: m.ExpiresAt,
			DeletedAt: now, Reason: m.Deletion.Reason, Actor: m.Deletion.Actor, Node: r.opts.Node,
		}
		if err := r.receipts.Append(&rc); err != nil {
			return err
		}
		r.count.receipts.Add(1)
		m.Deletion.Receipt, m.Deletion.At = rc.ID, now
	}
	if m.Deletion.At.IsZero() {
		m.Deletion.At = now
	}
	final := m.clone()
	final.State, final.Participants = StateDeleted, nil
	if err := r.st.writeManifest(&final); err != nil {
		return err
	}
	*m = final
	return nil
}

// beginDeletion hashes the file about to go and records the intent.
func (r *Recorder) beginDeletion(m *Manifest, reason DeletionReason, actor string, now time.Time) error {
	sum, size, err := r.hashAudio(m)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sum, size = "", 0 // nothing on disk to delete, and the receipt says so
	case err != nil:
		return err
	}
	m.Deletion = &Deletion{Reason: reason, Actor: actor, RequestedAt: now, SHA256: sum, Bytes: size}
	if err := r.st.writeManifest(m); err != nil {
		m.Deletion = nil
		return err
	}
	return nil
}

// hashAudio returns the SHA-256 and size of m's audio: of the plaintext
// for an encrypted recording, as in its manifest. When that cannot be
// decrypted (tampered), the stored bytes are hashed instead, so that the
// deletion goes ahead and its receipt describes what was removed.
func (r *Recorder) hashAudio(m *Manifest) (string, int64, error) {
	path, err := r.st.audioPath(m.ID, m.Format)
	if err != nil {
		return "", 0, err
	}
	if m.Encryption != "" {
		if sf, err := openSealedFile(path, r.opts.EncryptionKey); err == nil {
			h := sha256.New()
			n, err := io.Copy(h, io.NewSectionReader(sf, 0, sf.Size()))
			_ = sf.Close()
			if err == nil {
				return hex.EncodeToString(h.Sum(nil)), n, nil
			}
			r.log.Warn("encrypted recording unreadable; hashing its stored bytes", "recording", string(m.ID), "err", err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash audio %s: %w", m.ID, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// SweepReport says what a sweep did.
type SweepReport struct {
	// Deleted are the recordings deleted by this sweep.
	Deleted []ID
	// Held counts expired recordings kept by a legal hold.
	Held int
	// Failed are the deletions that failed; the next sweep retries them.
	Failed []DeleteFailure
}

// DeleteFailure is one deletion that did not complete.
type DeleteFailure struct {
	ID  ID
	Err error
}

// Sweep deletes every recording expired at now and not on hold, and
// finishes deletions that failed or were cut short earlier (whatever their
// reason). It looks at every recording, not at what expired since the last
// sweep, so it catches up after downtime. Deletions happen in expiry order.
func (r *Recorder) Sweep(now time.Time) SweepReport {
	var rep SweepReport
	type due struct {
		e      *entry
		at     time.Time
		reason DeletionReason
		actor  string
	}
	var work []due
	for _, e := range r.snapshot() {
		e.mu.Lock()
		m := &e.m
		switch {
		case m.State == StateDeleted || e.rec != nil || m.State == StateRecording:
		case m.Deletion != nil:
			work = append(work, due{e, m.ExpiresAt, m.Deletion.Reason, m.Deletion.Actor})
		case now.Before(m.ExpiresAt):
		case m.LegalHold != nil:
			rep.Held++
		default:
			work = append(work, due{e, m.ExpiresAt, ReasonExpired, sweeperActor})
		}
		e.mu.Unlock()
	}
	slices.SortStableFunc(work, func(a, b due) int { return a.at.Compare(b.at) })
	for _, d := range work {
		m, err := r.deleteEntry(d.e, d.reason, d.actor, now)
		switch {
		case err == nil && m.State == StateDeleted:
			rep.Deleted = append(rep.Deleted, m.ID)
		case err != nil && !isRefusal(err):
			rep.Failed = append(rep.Failed, DeleteFailure{ID: m.ID, Err: err})
		}
	}
	return rep
}

// sweeperActor is the actor of expiry deletions.
const sweeperActor = "retention-sweeper"

// Run sweeps at once (catching up on whatever expired while the node was
// down) and then every Options.SweepInterval until ctx ends, each sweep
// followed by WarnExpiring; it returns ctx's error. Failed deletions are logged, reported as EventDeleteFailed,
// and retried at the next sweep.
func (r *Recorder) Run(ctx context.Context) error {
	t := time.NewTicker(r.opts.SweepInterval)
	defer t.Stop()
	for {
		rep := r.Sweep(r.now())
		if len(rep.Deleted) > 0 || len(rep.Failed) > 0 {
			r.log.Info("retention sweep", "deleted", len(rep.Deleted), "failed", len(rep.Failed), "held", rep.Held)
		}
		r.WarnExpiring(r.now())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
