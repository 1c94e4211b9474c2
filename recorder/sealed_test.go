package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// encKey and otherKey encrypt recordings in tests.
var (
	encKey   = bytes.Repeat([]byte{0xe1}, EncryptionKeyLen)
	otherKey = bytes.Repeat([]byte{0xe2}, EncryptionKeyLen)
)

func withKey(key []byte, format string) func(*Options) {
	return func(o *Options) { o.EncryptionKey, o.Format = key, format }
}

// readAll reads a recording through Open.
func readAll(t *testing.T, r *Recorder, id ID) ([]byte, error) {
	t.Helper()
	f, _, err := r.Open(id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// entropy is the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	var n [256]float64
	for _, c := range b {
		n[c]++
	}
	e := 0.0
	for _, c := range n {
		if c > 0 {
			p := c / float64(len(b))
			e -= p * math.Log2(p)
		}
	}
	return e
}

func TestEncryptedRecording(t *testing.T) {
	for _, tc := range []struct {
		format  string
		markers []string // what the plaintext holds and the stored file must not
	}{
		{FormatOpus, []string{"OggS", "OpusHead", "OpusTags"}},
		{FormatM4A, []string{"ftyp", "moov", "moof", "mdat"}},
	} {
		t.Run(Extension(tc.format), func(t *testing.T) {
			h := newHarness(t, withKey(encKey, tc.format))
			m := h.record(t, "acme", "", toneFrames(&mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}, 1, 250))
			require.Equal(t, EncryptionAESGCM, m.Encryption)
			require.Equal(t, KeyID(encKey), m.EncryptionKeyID)
			require.Equal(t, m, h.diskManifest(t, m.ID))

			stored, err := os.ReadFile(h.audioPath(t, m.ID))
			require.NoError(t, err)
			plain, err := readAll(t, h.r, m.ID)
			require.NoError(t, err)
			for _, s := range tc.markers {
				require.Contains(t, string(plain), s)
				require.NotContains(t, string(stored), s, "the stored file shows the container")
			}
			require.Greater(t, entropy(stored[sealHeaderLen:]), 7.9, "stored bytes look random")
			require.Less(t, entropy(plain), 7.9)
			sum := sha256.Sum256(plain)
			require.Equal(t, hex.EncodeToString(sum[:]), m.SHA256, "the manifest's hash is of the audio as downloaded")
			require.Equal(t, int64(len(plain)), m.Bytes)
			require.Greater(t, len(plain), 3*sealChunk, "several chunks")
			require.Equal(t, int64(len(stored)), sealHeaderLen+int64(len(plain))+int64((len(plain)+sealChunk-1)/sealChunk)*sealOverhead)

			// it plays
			path := filepath.Join(t.TempDir(), "plain"+Extension(tc.format))
			require.NoError(t, os.WriteFile(path, plain, 0o600))
			got := mediatest.FFmpegDecode(t, path)
			require.Greater(t, mediatest.ToneDB(got[media.Rate48k:2*media.Rate48k], 1000, media.Rate48k), -8.0)

			// ranges decrypt only what they need, and any range is right
			f, _, err := h.r.Open(m.ID)
			require.NoError(t, err)
			defer f.Close()
			end, err := f.Seek(0, io.SeekEnd)
			require.NoError(t, err)
			require.Equal(t, int64(len(plain)), end)
			rng := rand.New(rand.NewPCG(1, 2))
			for range 200 {
				off := rng.IntN(len(plain))
				n := rng.IntN(min(len(plain)-off, 3*sealChunk) + 1)
				_, err := f.Seek(int64(off), io.SeekStart)
				require.NoError(t, err)
				b := make([]byte, n)
				_, err = io.ReadFull(f, b)
				require.NoError(t, err)
				require.Equal(t, plain[off:off+n], b, "range %d+%d", off, n)
			}
			_, err = f.Seek(int64(len(plain)), io.SeekStart)
			require.NoError(t, err)
			n, err := f.Read(make([]byte, 10))
			require.Equal(t, 0, n)
			require.ErrorIs(t, err, io.EOF)
		})
	}
}

func TestEncryptedRecordingTampered(t *testing.T) {
	h := newHarness(t, withKey(encKey, FormatOpus))
	m := h.record(t, "acme", "", toneFrames(&mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}, 1, 250))
	path := h.audioPath(t, m.ID)
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	slot := sealOverhead + sealChunk
	for _, tc := range []struct {
		name    string
		damage  func(b []byte) []byte
		openErr bool // Open itself refuses
	}{
		{"byte flipped in a chunk", func(b []byte) []byte { b[sealHeaderLen+slot+100] ^= 1; return b }, false},
		{"byte flipped in a tag", func(b []byte) []byte { b[sealHeaderLen+2*slot-1] ^= 0x80; return b }, false},
		{"byte flipped in the last chunk", func(b []byte) []byte { b[len(b)-20] ^= 1; return b }, false},
		{"salt changed", func(b []byte) []byte { b[20] ^= 1; return b }, false},
		{"chunks swapped", func(b []byte) []byte {
			c := append([]byte(nil), b[sealHeaderLen:sealHeaderLen+slot]...)
			copy(b[sealHeaderLen:], b[sealHeaderLen+slot:sealHeaderLen+2*slot])
			copy(b[sealHeaderLen+slot:], c)
			return b
		}, false},
		{"last chunk cut off whole", func(b []byte) []byte {
			return b[:sealHeaderLen+slot*((len(b)-sealHeaderLen)/slot)]
		}, true},
		{"magic changed", func(b []byte) []byte { b[0] = 'X'; return b }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, tc.damage(bytes.Clone(orig)), 0o640))
			got, err := readAll(t, h.r, m.ID)
			require.ErrorIs(t, err, ErrDecrypt)
			if tc.openErr {
				return
			}
			require.Contains(t, err.Error(), "fails authentication")
			require.Less(t, len(got), len(orig), "no garbage handed out")
		})
	}
	require.NoError(t, os.WriteFile(path, orig, 0o640))
	got, err := readAll(t, h.r, m.ID)
	require.NoError(t, err)
	require.Equal(t, m.Bytes, int64(len(got)))
}

func TestEncryptedRecoveryAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sync   SyncPolicy
		damage func(t *testing.T, path string)
		min    float64 // seconds left at least
	}{
		{"cut after the last page", SyncEveryPage, func(*testing.T, string) {}, 2.99},
		{"cut mid-chunk", SyncEveryPage, func(t *testing.T, p string) { cut(t, p, -100) }, 1.99},
		{"cut mid-chunk, no fsync", SyncNever, func(t *testing.T, p string) { cut(t, p, -100) }, 1.99},
		{"last chunk flipped", SyncEveryPage, func(t *testing.T, p string) { flip(t, p, -10) }, 1.99},
		{"garbage appended", SyncEveryPage, func(t *testing.T, p string) { appendBytes(t, p, bytes.Repeat([]byte{0x5a}, 3000)) }, 2.99},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, id := snapshotRecording(t, func(o *Options) { o.EncryptionKey, o.Sync = encKey, tc.sync }, ".opus", true)
			path := filepath.Join(dir, string(id)+".opus")
			tc.damage(t, path)

			h := newHarness(t, func(o *Options) { o.Dir, o.EncryptionKey = dir, encKey })
			ev := h.awaitEvent(t, EventRecovered, id)
			require.NoError(t, ev.Err)
			m, err := h.r.Get(id)
			require.NoError(t, err)
			require.Equal(t, StateInterrupted, m.State)
			require.GreaterOrEqual(t, m.Duration, tc.min)
			require.LessOrEqual(t, m.Duration, 3.01)

			plain, err := readAll(t, h.r, id)
			require.NoError(t, err)
			sum := sha256.Sum256(plain)
			require.Equal(t, hex.EncodeToString(sum[:]), m.SHA256)
			require.Equal(t, int64(len(plain)), m.Bytes)
			s, err := scanOgg(bytes.NewReader(plain))
			require.NoError(t, err)
			require.Equal(t, int64(len(plain)), s.end, "cut at a page boundary")
			require.Equal(t, byte(flagEOS), s.lastFlags&flagEOS, "the last page ends the stream")
			require.InDelta(t, m.Duration, playSeconds(s.granule, s.preSkip), 0.001)
			p := filepath.Join(t.TempDir(), "plain.opus")
			require.NoError(t, os.WriteFile(p, plain, 0o600))
			require.InDelta(t, m.Duration, probe(t, p).Duration, 0.05)

			h.reopen(t)
			m2, err := h.r.Get(id)
			require.NoError(t, err)
			require.Equal(t, m, m2, "recovery is done once")
		})
	}
}

func TestEncryptionKeyAtStartup(t *testing.T) {
	h := newHarness(t, withKey(encKey, FormatOpus))
	tone := &mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}
	enc := h.record(t, "acme", "", toneFrames(tone, 1, 60))
	require.NoError(t, h.r.Close(t.Context()))

	for _, tc := range []struct {
		name string
		key  []byte
		want string
	}{
		{"another key", otherKey, "wrong recording encryption key: recording " + string(enc.ID) + " needs key id " + KeyID(encKey) + ", the configured key is " + KeyID(otherKey)},
		{"no key", nil, "wrong recording encryption key: recording " + string(enc.ID) + " is encrypted (key id " + KeyID(encKey) + ") and no encryption key is configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := h.opts
			o.EncryptionKey = tc.key
			_, err := New(o)
			require.ErrorIs(t, err, ErrEncryptionKey)
			require.EqualError(t, err, tc.want)
			require.NotContains(t, err.Error(), hex.EncodeToString(encKey[:4]))
		})
	}
	_, err := New(Options{Dir: t.TempDir(), ReceiptKey: testKey, EncryptionKey: encKey[:16]})
	require.ErrorIs(t, err, ErrOptions)
	require.EqualError(t, err, "invalid recorder options: EncryptionKey must be 32 bytes, got 16")
}

func TestEncryptionAmongPlainRecordings(t *testing.T) {
	h := newHarness(t, nil)
	tone := &mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}
	plainRec := h.record(t, "acme", "", toneFrames(tone, 1, 60))
	require.Empty(t, plainRec.Encryption)

	h.opts.EncryptionKey = encKey
	h.reopen(t)
	got, err := readAll(t, h.r, plainRec.ID)
	require.NoError(t, err, "recordings made before encryption stay readable")
	stored, err := os.ReadFile(h.audioPath(t, plainRec.ID))
	require.NoError(t, err)
	require.Equal(t, stored, got)

	encRec := h.record(t, "acme", "", toneFrames(tone, 1, 60))
	require.Equal(t, EncryptionAESGCM, encRec.Encryption)

	// deletion receipts describe the audio as the manifest does
	m, err := h.r.Delete(encRec.ID, ReasonAdmin, "admin")
	require.NoError(t, err)
	require.Equal(t, encRec.SHA256, m.Deletion.SHA256)
	require.Equal(t, encRec.Bytes, m.Deletion.Bytes)

	// a store whose encrypted recordings are all deleted needs no key
	h.opts.EncryptionKey = nil
	h.reopen(t)
}

// TestSealedFile checks the plaintext view against a plain copy through
// appends, syncs, overwrites, cuts and reopening.
func TestSealedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	s, err := createSealed(f, encKey, false)
	require.NoError(t, err)
	var want []byte
	rng := rand.New(rand.NewPCG(3, 4))
	reopen := func() {
		require.NoError(t, s.Close())
		f, err = os.OpenFile(path, os.O_RDWR, 0)
		require.NoError(t, err)
		st, err := f.Stat()
		require.NoError(t, err)
		s, err = openSealed(f, st.Size(), encKey, false)
		require.NoError(t, err)
	}
	for i := range 300 {
		switch op := rng.IntN(10); {
		case op < 6:
			b := make([]byte, rng.IntN(3*sealChunk))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			_, err := s.Write(b)
			require.NoError(t, err)
			want = append(want, b...)
		case op < 7:
			require.NoError(t, s.Sync())
		case op < 8 && len(want) > 0:
			n := rng.IntN(len(want) + 1)
			require.NoError(t, s.Truncate(int64(n)))
			want = want[:n]
		case op < 9 && len(want) > 10:
			off := rng.IntN(len(want) - 10)
			b := []byte("0123456789")
			_, err := s.WriteAt(b, int64(off))
			require.NoError(t, err)
			copy(want[off:], b)
		default:
			reopen()
		}
		require.Equal(t, int64(len(want)), s.Size(), "step %d", i)
		got := make([]byte, len(want))
		_, err := s.ReadAt(got, 0)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "step %d", i)
	}
	require.NoError(t, s.Close())
}

// fullAtFile is an audio file on a disk that refuses writes past limit
// bytes (WriteAt, as an encrypted recording writes).
type fullAtFile struct {
	*os.File
	limit int64
}

func (f *fullAtFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= f.limit {
		return f.File.WriteAt(p, off)
	}
	n, _ := f.File.WriteAt(p[:max(f.limit-off, 0)], off)
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

// TestEncryptedDiskFull: a write error interrupts an encrypted recording,
// which is cut back to its last complete page, sealed, and reads back.
func TestEncryptedDiskFull(t *testing.T) {
	h := newHarness(t, withKey(encKey, FormatOpus))
	create := h.r.createAudio
	h.r.createAudio = func(path string) (audioFile, error) {
		f, err := create(path)
		if err != nil {
			return f, err
		}
		return &fullAtFile{File: f.(*os.File), limit: 3 * (sealOverhead + sealChunk)}, nil
	}
	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "", src)
	require.NoError(t, err)
	for _, f := range toneFrames(&mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}, 1, 250) {
		src.frames <- f
	}
	waitDone(t, rec)
	require.ErrorIs(t, rec.Err(), syscall.ENOSPC)
	m := rec.Manifest()
	require.Equal(t, StateInterrupted, m.State)
	require.Greater(t, m.Duration, 1.0)
	plain, err := readAll(t, h.r, m.ID)
	require.NoError(t, err)
	require.Equal(t, m.Bytes, int64(len(plain)))
	sum := sha256.Sum256(plain)
	require.Equal(t, hex.EncodeToString(sum[:]), m.SHA256)
	s, err := scanOgg(bytes.NewReader(plain))
	require.NoError(t, err)
	require.Equal(t, int64(len(plain)), s.end, "whole pages only")
	require.InDelta(t, m.Duration, playSeconds(s.granule, s.preSkip), 0.001)
}

// memFile is a sealTarget in memory.
type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) Truncate(n int64) error { m.b = m.b[:n]; return nil }
func (m *memFile) Sync() error            { return nil }
func (m *memFile) Close() error           { return nil }

// FuzzSealedOpen feeds arbitrary files to the encrypted file's reader, as
// a download and start-up recovery open them. It must never panic; a
// download reads the audio or fails with ErrDecrypt; recovery's intact
// part always reads back whole.
func FuzzSealedOpen(f *testing.F) {
	m := &memFile{}
	s, err := createSealed(m, encKey, false)
	require.NoError(f, err)
	_, err = s.Write(bytes.Repeat(seedOgg(), 3))
	require.NoError(f, err)
	require.NoError(f, s.Close())
	f.Add(m.b)
	f.Add(m.b[:len(m.b)-100])
	f.Add(m.b[:sealHeaderLen+sealOverhead+sealChunk])
	f.Add(m.b[:sealHeaderLen])
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, repair := range []bool{false, true} {
			mf := &memFile{b: bytes.Clone(data)}
			s, err := openSealed(mf, int64(len(data)), encKey, repair)
			if err != nil {
				require.ErrorIs(t, err, ErrDecrypt)
				continue
			}
			require.LessOrEqual(t, s.Size(), int64(len(data)))
			got := make([]byte, s.Size())
			_, err = s.ReadAt(got, 0)
			if repair {
				require.NoError(t, err, "recovery's intact part reads back")
			} else if err != nil {
				require.ErrorIs(t, err, ErrDecrypt)
			}
		}
	})
}
