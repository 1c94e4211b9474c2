package recorder

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagate/mediagate/internal/atomicfile"
	"github.com/mediagate/mediagate/room"
)

// State is where a recording is in its life.
type State string

// Recording states, as manifests spell them.
const (
	// StateRecording: audio is being written (or the node crashed while it
	// was; New turns that into StateInterrupted).
	StateRecording State = "recording"
	// StateComplete: the recording ended normally.
	StateComplete State = "complete"
	// StateInterrupted: a write error or a crash ended it early; the file
	// holds every intact page up to then.
	StateInterrupted State = "interrupted"
	// StateDeleted: the audio is gone; the manifest stays as proof, without
	// participants.
	StateDeleted State = "deleted"
)

// manifestVersion is the layout version of manifests written here.
const manifestVersion = 1

// Manifest describes one recording. It is stored as <id>.json beside the
// audio and replaced atomically on every change; the admin API shows it.
// All times are UTC.
type Manifest struct {
	Version int     `json:"version"`
	ID      ID      `json:"id"`
	Tenant  Tenant  `json:"tenant"`
	Room    room.ID `json:"room"`
	// Node is the node that recorded it.
	Node  string `json:"node"`
	State State  `json:"state"`
	// Format is FormatOpus or FormatM4A.
	Format string `json:"format"`
	// Epoch is the fencing epoch of the room's lease the recording was
	// made under (WithEpoch); omitted on one node.
	Epoch uint64 `json:"epoch,omitempty"`

	StartedAt time.Time `json:"started_at"`
	// EndedAt is zero while recording.
	EndedAt time.Time `json:"ended_at,omitzero"`
	// Duration is the playing time in seconds. Ogg/Opus: granule position
	// minus pre-skip (RFC 7845 §4); ffprobe reports 6.5 ms more, as it
	// counts the pre-skip in. M4A: AAC frames × 1024 / 48000, what ffprobe
	// reports (mp4.go).
	Duration float64 `json:"duration"`
	// Encryption is EncryptionAESGCM when the audio file is encrypted at
	// rest (Options.EncryptionKey), empty when it is not; EncryptionKeyID
	// is the KeyID of the key it needs.
	Encryption      string `json:"encryption,omitempty"`
	EncryptionKeyID string `json:"encryption_key_id,omitempty"`
	// Bytes is the size of the audio file; SHA256 its hex digest, set when
	// the recording ends. For an encrypted recording both describe the
	// audio as downloaded (the plaintext), not the stored file, so that
	// a download can be checked against them whatever the storage.
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256,omitempty"`
	// DroppedFrames counts 20 ms frames the recording could not keep up
	// with; they are in the file as silence.
	DroppedFrames uint64 `json:"dropped_frames"`
	// Error says why a recording was interrupted.
	Error string `json:"error,omitempty"`

	// ParticipantCount is how many participants joined while recording;
	// it stays after deletion.
	ParticipantCount int `json:"participant_count"`
	// Participants are removed when the audio is deleted.
	Participants []Participant `json:"participants,omitempty"`

	// Retention is the policy's name.
	Retention string     `json:"retention"`
	ExpiresAt time.Time  `json:"expires_at"`
	LegalHold *LegalHold `json:"legal_hold"`
	// Deletion is set when a deletion starts and completed when it ends.
	Deletion *Deletion `json:"deletion,omitempty"`
}

// Participant is one stay of one participant in a recorded room.
type Participant struct {
	// Name is the display name.
	Name string `json:"name,omitempty"`
	// Number is the caller number, masked (MaskNumber).
	Number string `json:"number,omitempty"`
	// Kind is "webrtc", "phone" or "other".
	Kind     string    `json:"kind,omitempty"`
	JoinedAt time.Time `json:"joined_at"`
	// LeftAt is zero while the participant is still there.
	LeftAt time.Time `json:"left_at,omitzero"`

	id room.ParticipantID // matches Left to Joined; never stored
}

// LegalHold keeps a recording past its expiry until cleared.
type LegalHold struct {
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// DeletionReason says why a recording was deleted.
type DeletionReason string

// Deletion reasons, as receipts spell them.
const (
	// ReasonExpired: the sweeper deleted it at expires_at.
	ReasonExpired DeletionReason = "expired"
	// ReasonAdmin: an administrator deleted it.
	ReasonAdmin DeletionReason = "admin"
	// ReasonErasure: a data subject's or tenant's erasure request.
	ReasonErasure DeletionReason = "erasure-request"
)

func (r DeletionReason) valid() bool {
	return r == ReasonExpired || r == ReasonAdmin || r == ReasonErasure
}

// Deletion records a deletion in the manifest. It is written before the
// audio is removed, so a deletion cut short by a crash or an error is
// finished by the next sweep with the same reason and actor.
type Deletion struct {
	Reason      DeletionReason `json:"reason"`
	Actor       string         `json:"actor"`
	RequestedAt time.Time      `json:"requested_at"`
	// SHA256 and Bytes describe the file as it was just before removal.
	SHA256 string `json:"sha256,omitempty"`
	Bytes  int64  `json:"bytes"`
	// At is when the deletion completed; zero while under way.
	At time.Time `json:"at,omitzero"`
	// Receipt is the receipt's ID once written.
	Receipt ReceiptID `json:"receipt,omitempty"`
}

// clone returns a deep copy, for handing a manifest out of the lock.
func (m *Manifest) clone() Manifest {
	c := *m
	c.Participants = append([]Participant(nil), m.Participants...)
	if m.LegalHold != nil {
		h := *m.LegalHold
		c.LegalHold = &h
	}
	if m.Deletion != nil {
		d := *m.Deletion
		c.Deletion = &d
	}
	return c
}

// utc is how every time is stored: UTC, milliseconds, no monotonic part.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// store is the file layout of a store directory. Every path is built here,
// from an ID checked by Valid, never from raw input.
type store struct{ dir string }

// audioPath is <id>.opus or <id>.m4a, as the manifest's format says.
func (s store) audioPath(id ID, format string) (string, error) { return s.path(id, Extension(format)) }

func (s store) manifestPath(id ID) (string, error) { return s.path(id, ".json") }

func (s store) path(id ID, ext string) (string, error) {
	if !id.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidID, truncate(string(id), 40))
	}
	return filepath.Join(s.dir, string(id)+ext), nil
}

// tempPrefix starts the names of manifest temp files, so that New can find
// and remove those a crash left behind.
const tempPrefix = ".tmp-"

// writeManifest replaces <id>.json atomically: write a temp file, fsync it,
// rename it over the old one, fsync the directory (so the rename survives a
// power cut).
func (s store) writeManifest(m *Manifest) error {
	path, err := s.manifestPath(m.ID)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest %s: %w", m.ID, err)
	}
	if err := atomicfile.Replace(path, append(b, '\n'), tempPrefix+string(m.ID)+"-*"); err != nil {
		return fmt.Errorf("write manifest %s: %w", m.ID, err)
	}
	return nil
}

// syncDir fsyncs the store directory, making creates, renames and
// removals in it durable.
func (s store) syncDir() error {
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return fmt.Errorf("sync store directory: %w", err)
	}
	return nil
}

// readManifest reads <id>.json and checks it describes id.
func (s store) readManifest(id ID) (Manifest, error) {
	var m Manifest
	path, err := s.manifestPath(id)
	if err != nil {
		return m, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return m, fmt.Errorf("%w %s: %w", ErrCorruptManifest, id, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w %s: %w", ErrCorruptManifest, id, err)
	}
	switch {
	case m.ID != id:
		return m, fmt.Errorf("%w %s: names recording %q", ErrCorruptManifest, id, truncate(string(m.ID), 40))
	case m.State != StateRecording && m.State != StateComplete && m.State != StateInterrupted && m.State != StateDeleted:
		return m, fmt.Errorf("%w %s: state %q", ErrCorruptManifest, id, truncate(string(m.State), 20))
	}
	return m, nil
}

// listIDs returns the IDs that have a manifest in the store, and removes
// manifest temp files left by a crash.
func (s store) listIDs() ([]ID, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read store directory: %w", err)
	}
	var ids []ID
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) && e.Type().IsRegular() {
			_ = os.Remove(filepath.Join(s.dir, name))
			continue
		}
		base, ok := strings.CutSuffix(name, ".json")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if id := ID(base); id.Valid() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
