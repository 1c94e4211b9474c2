package recorder

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// Encryption at rest (Options.EncryptionKey). An encrypted audio file is a
// header followed by fixed-size slots, one per chunk of plaintext:
//
//	header  48 bytes: "MGSEAL", version 1, algorithm 1 (AES-256-GCM),
//	        chunk size (uint32 big endian), 32 random salt bytes, 4 zero bytes
//	slot k  at 48 + k × (12 + chunk + 16): a 12-byte random nonce, then
//	        AES-256-GCM(chunk k of the plaintext), its 16-byte tag last
//
// Every chunk is full but the last. The file's key is HKDF-SHA256 of the
// configured key with the salt (RFC 5869), so every file has a key of its
// own; the additional data of chunk k is the header and k (uint64 big
// endian), so chunks can be neither reordered nor moved into another file.
// The plaintext size follows from the file size, and a read decrypts only
// the chunks it touches.
//
// The last chunk is sealed again, with a fresh nonce, at every page the
// recording writes (a partial chunk rewritten in place at its fixed
// offset), so the file on disk is always readable up to the last page
// (decision 6). A fresh nonce per seal, not one derived from k: the tail
// chunk is sealed many times, and reusing a GCM nonce would give its
// authentication key away. Random 96-bit nonces under a per-file key are
// far below the 2^32 seals NIST SP 800-38D §8.3 allows.
//
// The chunk size is small (sealChunk, 4 KiB: about a second of Opus at
// 32 kbit/s) because a power cut in the middle of a tail rewrite can tear
// that one slot, and recovery then loses the whole chunk.
const (
	sealMagic     = "MGSEAL"
	sealVersion   = 1
	sealAESGCM    = 1
	sealHeaderLen = 48
	sealSaltLen   = 32
	sealNonceLen  = 12
	sealTagLen    = 16
	sealOverhead  = sealNonceLen + sealTagLen
	// sealChunk is the plaintext of a full chunk.
	sealChunk = 4 << 10
	// EncryptionAESGCM is the manifest's encryption field for encrypted
	// recordings.
	EncryptionAESGCM = "aes-256-gcm"
	// EncryptionKeyLen is the length of Options.EncryptionKey: AES-256.
	EncryptionKeyLen = 32
)

// KeyID returns a short fingerprint of an encryption key (16 hex digits of
// an HMAC-SHA256 of a constant under it): stored in manifests and safe to
// log, it tells which key a recording needs without revealing it.
func KeyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("mediagate recording key id v1"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// sealTarget is the file under a sealedFile: an *os.File, or a test's
// failing stand-in.
type sealTarget interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

// sealedFile is the plaintext view of an encrypted audio file: ReadAt,
// appending writes, Truncate. It keeps one chunk in memory. It is used by
// one goroutine at a time.
type sealedFile struct {
	f      sealTarget
	aead   cipher.AEAD
	header [sealHeaderLen]byte
	chunk  int   // plaintext bytes of a full chunk
	size   int64 // plaintext size
	fsync  bool  // Sync fsyncs f after sealing

	buf   []byte // plaintext of chunk idx (len: its length)
	idx   int64  // -1: none loaded
	dirty bool   // buf is newer than its slot
	slot  []byte // sealing buffer
	adBuf [sealHeaderLen + 8]byte
}

var _ audioFile = (*sealedFile)(nil)

func (s *sealedFile) slotLen() int64 { return int64(sealOverhead + s.chunk) }

func (s *sealedFile) slotOff(k int64) int64 { return sealHeaderLen + k*s.slotLen() }

// fileAEAD derives a file's AEAD from the configured key and its header:
// AES-256-GCM under HKDF-SHA256(key, salt) (RFC 5869).
func fileAEAD(key []byte, header []byte) (cipher.AEAD, error) {
	if len(key) != EncryptionKeyLen {
		return nil, fmt.Errorf("%w: encryption key of %d bytes, want %d", ErrOptions, len(key), EncryptionKeyLen)
	}
	fk, err := hkdf.Key(sha256.New, key, header[12:12+sealSaltLen], "mediagate recording aes-256-gcm v1", 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(fk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func newSealed(f sealTarget, aead cipher.AEAD, header []byte, chunk int) *sealedFile {
	s := &sealedFile{f: f, aead: aead, chunk: chunk, idx: -1,
		buf: make([]byte, 0, chunk), slot: make([]byte, 0, sealOverhead+chunk)}
	copy(s.header[:], header)
	return s
}

// createSealed writes the header of a new encrypted file to f (empty) and
// returns its plaintext writer. fsync says whether Sync also fsyncs f.
func createSealed(f sealTarget, key []byte, fsync bool) (*sealedFile, error) {
	var h [sealHeaderLen]byte
	copy(h[:], sealMagic)
	h[6], h[7] = sealVersion, sealAESGCM
	binary.BigEndian.PutUint32(h[8:], sealChunk)
	_, _ = rand.Read(h[12 : 12+sealSaltLen])
	aead, err := fileAEAD(key, h[:])
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("write encryption header: %w", err)
	}
	s := newSealed(f, aead, h[:], sealChunk)
	s.fsync = fsync
	return s, nil
}

// openSealed reads the header of an encrypted file of fileSize bytes and
// returns its plaintext view. With repair, the plaintext ends at the
// first chunk that does not decrypt (a torn tail after a crash) instead of
// failing there.
func openSealed(f sealTarget, fileSize int64, key []byte, repair bool) (*sealedFile, error) {
	var h [sealHeaderLen]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrDecrypt, err)
	}
	if string(h[:6]) != sealMagic || h[6] != sealVersion || h[7] != sealAESGCM {
		return nil, fmt.Errorf("%w: not an encrypted recording (version %d)", ErrDecrypt, h[6])
	}
	chunk := int(binary.BigEndian.Uint32(h[8:]))
	if chunk <= 0 || chunk > 1<<20 {
		return nil, fmt.Errorf("%w: chunk size %d", ErrDecrypt, chunk)
	}
	aead, err := fileAEAD(key, h[:])
	if err != nil {
		return nil, err
	}
	s := newSealed(f, aead, h[:], chunk)
	if repair {
		s.size = s.intactSize(fileSize)
		return s, nil
	}
	rest := fileSize - sealHeaderLen
	full, tail := rest/s.slotLen(), rest%s.slotLen()
	switch {
	case rest < 0:
		return nil, fmt.Errorf("%w: file shorter than its header", ErrDecrypt)
	case tail > 0 && tail <= sealOverhead:
		return nil, fmt.Errorf("%w: torn last chunk", ErrDecrypt)
	case tail > 0:
		tail -= sealOverhead
	}
	s.size = full*int64(chunk) + tail
	return s, nil
}

// intactSize decrypts chunk after chunk and returns the plaintext size up
// to the first one that is torn or fails authentication.
func (s *sealedFile) intactSize(fileSize int64) int64 {
	var size int64
	for k := int64(0); ; k++ {
		n := min(fileSize-s.slotOff(k), s.slotLen()) - sealOverhead
		if n <= 0 {
			return size
		}
		if s.load(k, int(n)) != nil {
			// bytes after the last chunk (written by something else)
			// hide where it ends: try every shorter length, a few
			// milliseconds once at start-up
			for m := n - 1; m > 0; m-- {
				if s.load(k, int(m)) == nil {
					return size + m
				}
			}
			return size
		}
		size += n
		if n < int64(s.chunk) {
			return size
		}
	}
}

// load reads and decrypts chunk k, n bytes of plaintext, into buf.
func (s *sealedFile) load(k int64, n int) error {
	if s.idx == k && len(s.buf) == n {
		return nil
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.idx = -1
	if n == 0 { // a chunk not written yet
		s.buf, s.idx = s.buf[:0], k
		return nil
	}
	slot := s.slot[:sealOverhead+n]
	if _, err := s.f.ReadAt(slot, s.slotOff(k)); err != nil {
		return fmt.Errorf("%w: chunk %d: %w", ErrDecrypt, k, err)
	}
	p, err := s.aead.Open(s.buf[:0], slot[:sealNonceLen], slot[sealNonceLen:], s.ad(k))
	if err != nil {
		return fmt.Errorf("%w: chunk %d fails authentication (tampered, or another key)", ErrDecrypt, k)
	}
	s.buf, s.idx = p, k
	return nil
}

// ad is chunk k's additional data: the header and k. It is valid until
// the next call.
func (s *sealedFile) ad(k int64) []byte {
	copy(s.adBuf[:], s.header[:])
	binary.BigEndian.PutUint64(s.adBuf[sealHeaderLen:], uint64(k))
	return s.adBuf[:]
}

// chunkLen is the plaintext length of chunk k at the current size.
func (s *sealedFile) chunkLen(k int64) int {
	return int(min(s.size-k*int64(s.chunk), int64(s.chunk)))
}

// ReadAt reads plaintext, decrypting the chunks p spans.
func (s *sealedFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", ErrDecrypt)
	}
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= s.size {
			return n, io.EOF
		}
		k := at / int64(s.chunk)
		if err := s.load(k, s.chunkLen(k)); err != nil {
			return n, err
		}
		n += copy(p[n:], s.buf[at-k*int64(s.chunk):])
	}
	return n, nil
}

// Write appends p to the plaintext, sealing each chunk as it fills.
func (s *sealedFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := s.size / int64(s.chunk)
		if s.idx != k {
			if err := s.load(k, s.chunkLen(k)); err != nil {
				return n, err
			}
		}
		c := copy(s.buf[len(s.buf):cap(s.buf)], p[n:])
		s.buf = s.buf[:len(s.buf)+c]
		s.dirty = true
		n += c
		s.size += int64(c)
		if len(s.buf) == s.chunk {
			if err := s.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush seals the loaded chunk into its slot if it changed.
func (s *sealedFile) flush() error {
	if !s.dirty {
		return nil
	}
	slot := s.slot[:sealNonceLen]
	_, _ = rand.Read(slot)
	slot = s.aead.Seal(slot, slot[:sealNonceLen], s.buf, s.ad(s.idx))
	if _, err := s.f.WriteAt(slot, s.slotOff(s.idx)); err != nil {
		return fmt.Errorf("write encrypted chunk %d: %w", s.idx, err)
	}
	s.dirty = false
	return nil
}

// Sync seals the partial last chunk in place, so the file holds every byte
// written (decision 6), then fsyncs when the recorder's policy says so.
func (s *sealedFile) Sync() error {
	if err := s.flush(); err != nil {
		return err
	}
	if s.fsync {
		return s.f.Sync()
	}
	return nil
}

// Truncate cuts the plaintext to size (no longer than it is): the chunk
// holding the new end is sealed again, shorter, and the file cut after it.
func (s *sealedFile) Truncate(size int64) error {
	if size < 0 || size > s.size {
		return fmt.Errorf("truncate encrypted file to %d of %d bytes", size, s.size)
	}
	k := size / int64(s.chunk)
	keep := int(size - k*int64(s.chunk))
	end := s.slotOff(k)
	if keep > 0 {
		if err := s.load(k, s.chunkLen(k)); err != nil {
			return err
		}
		s.buf, s.dirty = s.buf[:keep], true
		if err := s.flush(); err != nil {
			return err
		}
		end += int64(sealOverhead + keep)
	} else if s.idx >= k {
		s.idx, s.dirty, s.buf = -1, false, s.buf[:0]
	}
	s.size = size
	if err := s.f.Truncate(end); err != nil {
		return fmt.Errorf("cut encrypted file: %w", err)
	}
	return nil
}

// WriteAt overwrites plaintext inside the file (repair's end-of-stream
// flag); it never extends it.
func (s *sealedFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > s.size {
		return 0, fmt.Errorf("write encrypted file at %d: past its end", off)
	}
	n := 0
	for n < len(p) {
		at := off + int64(n)
		k := at / int64(s.chunk)
		if err := s.load(k, s.chunkLen(k)); err != nil {
			return n, err
		}
		n += copy(s.buf[at-k*int64(s.chunk):], p[n:])
		s.dirty = true
	}
	return n, s.flush()
}

// Size is the plaintext size.
func (s *sealedFile) Size() int64 { return s.size }

// Close seals what is pending and closes the file.
func (s *sealedFile) Close() error {
	err := s.flush()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sealedReader is a download's io.ReadSeekCloser over a sealedFile.
type sealedReader struct {
	s   *sealedFile
	off int64
}

func (r *sealedReader) Read(p []byte) (int, error) {
	if r.off >= r.s.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.s.size-r.off)]
	n, err := r.s.ReadAt(p, r.off)
	r.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

func (r *sealedReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.s.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start")
	}
	r.off = offset
	return offset, nil
}

func (r *sealedReader) Close() error { return r.s.f.Close() }

// openSealedFile opens the encrypted file at path read-only for download.
func openSealedFile(path string, key []byte) (*sealedFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil {
		var s *sealedFile
		if s, err = openSealed(f, st.Size(), key, false); err == nil {
			return s, nil
		}
	}
	_ = f.Close()
	return nil, err
}
