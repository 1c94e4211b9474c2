package recorder

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// recover repairs a recording that a crash left in state recording
// (decision 6): it cuts the audio file after its last intact Ogg page or
// MP4 fragment (repairFile), and sets duration, size, hash and
// end time from what is left. The manifest becomes interrupted. When the
// file cannot be repaired the manifest still becomes interrupted, with the
// reason in its error field.
func (r *Recorder) recover(m *Manifest) {
	end, dur, size, sum, err := r.repairAudio(m)
	m.State = StateInterrupted
	m.Duration, m.Bytes, m.SHA256 = dur, size, sum
	m.EndedAt = m.StartedAt.Add(time.Duration(dur * float64(time.Second))).Truncate(time.Millisecond)
	m.Error = "node stopped while recording; recovered at start-up"
	if err != nil {
		m.Error += ": " + err.Error()
	}
	closeStays(m.Participants, m.EndedAt)
	if werr := r.st.writeManifest(m); werr != nil {
		r.log.Error("recovered manifest not written", "recording", string(m.ID), "err", werr)
		r.emit(EventManifestFailed, m, werr)
	}
	r.log.Warn("recording recovered after crash", "recording", string(m.ID), "cut_at", end, "duration", dur, "err", err)
	r.emit(EventRecovered, m, err)
}

// repairAudio cuts the audio file after its last intact page or fragment
// (repairFile) and returns the cut offset, playing time, size and SHA-256
// of what remains.
func (r *Recorder) repairAudio(m *Manifest) (end int64, dur float64, size int64, sum string, err error) {
	path, err := r.st.audioPath(m.ID, m.Format)
	if err != nil {
		return 0, 0, 0, "", err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, 0, "", fmt.Errorf("%w: no audio file", ErrNoAudio)
	}
	if err != nil {
		return 0, 0, 0, "", fmt.Errorf("open audio: %w", err)
	}
	defer f.Close()
	var target repairable = f
	if m.Encryption != "" {
		st, err := f.Stat()
		if err != nil {
			return 0, 0, 0, "", fmt.Errorf("open audio: %w", err)
		}
		// the plaintext ends at the first chunk that does not decrypt:
		// a tail torn by the crash
		sf, err := openSealed(f, st.Size(), r.opts.EncryptionKey, true)
		if err != nil {
			return 0, 0, 0, "", err
		}
		sf.fsync = true
		target = sf
	}
	end, dur, ok, err := repairFile(m.Format, target)
	if err != nil {
		return 0, 0, 0, "", err
	}
	if err := target.Sync(); err != nil {
		return 0, 0, 0, "", fmt.Errorf("sync audio: %w", err)
	}
	h := sha256.New()
	if size, err = io.Copy(h, io.NewSectionReader(target, 0, end)); err != nil {
		return 0, 0, 0, "", fmt.Errorf("hash audio: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if !ok {
		return end, 0, size, sum, ErrNoAudio
	}
	return end, dur, size, sum, nil
}

// repairable is an audio file as repair sees it: an *os.File, or the
// plaintext of an encrypted one (sealedFile).
type repairable interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
}

// wholeFile reads f from its start.
func wholeFile(f io.ReaderAt) io.Reader { return io.NewSectionReader(f, 0, 1<<62) }

// repairOgg cuts f after its last intact Ogg page (CRC checked) and marks
// that page end-of-stream.
func repairOgg(f repairable) (end int64, dur float64, ok bool, err error) {
	s, err := scanOgg(wholeFile(f))
	if err != nil {
		return 0, 0, false, fmt.Errorf("scan audio: %w", err)
	}
	end = s.end
	if !s.headers {
		end = 0 // nothing playable: an empty file says so more plainly than torn headers
	}
	if err := f.Truncate(end); err != nil {
		return 0, 0, false, fmt.Errorf("cut audio: %w", err)
	}
	if s.headers && s.lastLen > 0 && s.lastFlags&flagEOS == 0 {
		if err := rewriteEOS(f, s.lastPage, s.lastLen); err != nil {
			return 0, 0, false, err
		}
	}
	return end, playSeconds(s.granule, s.preSkip), s.headers, nil
}

// rewriteEOS sets the end-of-stream flag on the page at off.
func rewriteEOS(f repairable, off int64, n int) error {
	p := make([]byte, n)
	if _, err := f.ReadAt(p, off); err != nil {
		return fmt.Errorf("read last page: %w", err)
	}
	markEOS(p)
	if _, err := f.WriteAt(p, off); err != nil {
		return fmt.Errorf("rewrite last page: %w", err)
	}
	return nil
}
