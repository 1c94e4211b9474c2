package recorder

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mediagate/mediagate/room"
)

// Receipt proves one deletion (decision 7). Receipts are appended to a
// JSON-lines log, one per line, each fsynced before the deletion counts as
// done. The chain and the signature make the log tamper-evident:
//
//   - prev is the hex SHA-256 of the previous line's bytes (without its
//     newline); the first line's prev is 64 zeros. Removing, inserting or
//     reordering lines breaks it.
//   - sig is the hex HMAC-SHA256, under the configured key, of the line as
//     it would be without its final `,"sig":"…"` member (the bytes before
//     that comma, then `}`). Changing any field breaks it; only holders of
//     the key can make a line that verifies.
type Receipt struct {
	ID        ReceiptID      `json:"receipt_id"`
	Recording ID             `json:"recording_id"`
	Tenant    Tenant         `json:"tenant"`
	Room      room.ID        `json:"room"`
	SHA256    string         `json:"sha256"`
	Bytes     int64          `json:"bytes"`
	ExpiresAt time.Time      `json:"expires_at"`
	DeletedAt time.Time      `json:"deleted_at"`
	Reason    DeletionReason `json:"reason"`
	Actor     string         `json:"actor"`
	Node      string         `json:"node"`
	Prev      string         `json:"prev"`
	Sig       string         `json:"sig,omitempty"`
}

// genesisPrev is the prev of the first receipt.
var genesisPrev = hex.EncodeToString(make([]byte, sha256.Size))

const sigPrefix = `,"sig":"`

// sigSuffixLen is the length of `,"sig":"<64 hex>"}`.
var sigSuffixLen = len(sigPrefix) + 2*sha256.Size + 2

// signLine encodes rc (whose Sig is empty) and appends its signature.
func signLine(rc *Receipt, key []byte) ([]byte, error) {
	rc.Sig = ""
	body, err := json.Marshal(rc)
	if err != nil {
		return nil, fmt.Errorf("encode receipt: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	rc.Sig = hex.EncodeToString(mac.Sum(nil))
	line := append(body[:len(body)-1:len(body)-1], sigPrefix...)
	line = append(line, rc.Sig...)
	return append(line, '"', '}'), nil
}

// lineHash is what the next line's prev holds.
func lineHash(line []byte) string {
	h := sha256.Sum256(line)
	return hex.EncodeToString(h[:])
}

// receiptLog appends receipts to the log file. mu serialises appends so
// the chain has one order.
type receiptLog struct {
	mu     sync.Mutex
	f      *os.File // nil once closed
	key    []byte
	prev   string
	closed bool
}

// openReceiptLog opens (creating) the log, drops a torn last line (a crash
// during an append that was never acknowledged; its deletion is retried),
// and finds the hash of the last line. For the recordings in pending whose
// deletion was cut short after its receipt was written, it fills in the
// receipt's ID so the retry writes no second receipt.
func openReceiptLog(path string, key []byte, pending map[ID]*entry) (*receiptLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open receipts: %w", err)
	}
	l := &receiptLog{f: f, key: key, prev: genesisPrev}
	if err := l.load(pending); err != nil {
		_ = f.Close()
		return nil, err
	}
	return l, nil
}

func (l *receiptLog) load(pending map[ID]*entry) error {
	br := bufio.NewReader(l.f)
	var good int64
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 { // torn tail
				if terr := l.f.Truncate(good); terr != nil {
					return fmt.Errorf("cut torn receipt: %w", terr)
				}
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read receipts: %w", err)
		}
		good += int64(len(line))
		line = line[:len(line)-1]
		l.prev = lineHash(line)
		if len(pending) == 0 {
			continue
		}
		var rc Receipt
		if json.Unmarshal(line, &rc) == nil {
			if e := pending[rc.Recording]; e != nil && e.m.Deletion != nil {
				e.m.Deletion.Receipt = rc.ID
			}
		}
	}
}

// Append signs rc, chains it to the last line and appends it, fsynced. It
// fills in rc's ID, Prev and Sig.
func (l *receiptLog) Append(rc *Receipt) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("append receipt: %w", ErrClosed)
	}
	rc.ID = ReceiptID(newRandomID())
	rc.Prev = l.prev
	line, err := signLine(rc, l.key)
	if err != nil {
		return err
	}
	st, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("append receipt: %w", err)
	}
	_, err = l.f.Write(append(line, '\n'))
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		// Leave no half line for the next receipt to chain onto.
		_ = l.f.Truncate(st.Size())
		return fmt.Errorf("append receipt: %w", err)
	}
	l.prev = lineHash(line)
	return nil
}

// Close closes the log; later appends fail with ErrClosed.
func (l *receiptLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.f.Close()
}

// VerifyError says which line of a receipts log failed verification, and
// why (ErrReceiptMalformed, ErrReceiptSignature or ErrReceiptChain).
type VerifyError struct {
	// Line is 1-based.
	Line int
	Err  error
}

// Error names the line.
func (e *VerifyError) Error() string { return fmt.Sprintf("receipts line %d: %v", e.Line, e.Err) }

// Unwrap returns the reason, for errors.Is.
func (e *VerifyError) Unwrap() error { return e.Err }

// Verify checks a receipts log read from r: every line's signature under
// key and every line's link to the one before. It returns the number of
// receipts checked and, at the first bad line, a *VerifyError naming it.
func Verify(r io.Reader, key []byte) (int, error) {
	br := bufio.NewReader(r)
	prev := genesisPrev
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, fmt.Errorf("read receipts: %w", err)
		}
		n++
		line = bytes.TrimSuffix(line, []byte("\n"))
		if _, verr := checkLine(line, key, prev); verr != nil {
			return n - 1, &VerifyError{Line: n, Err: verr}
		}
		prev = lineHash(line)
	}
}

// checkLine parses one line and checks its signature and its prev.
func checkLine(line, key []byte, prev string) (Receipt, error) {
	rc, body, err := parseLine(line)
	if err != nil {
		return rc, err
	}
	want, err := hex.DecodeString(rc.Sig)
	if err != nil {
		return rc, fmt.Errorf("%w: sig is not hex", ErrReceiptMalformed)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), want) {
		return rc, ErrReceiptSignature
	}
	if rc.Prev != prev {
		return rc, ErrReceiptChain
	}
	return rc, nil
}

// parseLine decodes a line strictly and returns it with the bytes its
// signature covers.
func parseLine(line []byte) (Receipt, []byte, error) {
	var rc Receipt
	n := len(line)
	if n < sigSuffixLen+2 || !bytes.Equal(line[n-sigSuffixLen:n-sigSuffixLen+len(sigPrefix)], []byte(sigPrefix)) ||
		!bytes.HasSuffix(line, []byte(`"}`)) {
		return rc, nil, fmt.Errorf("%w: no trailing sig", ErrReceiptMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rc); err != nil {
		return rc, nil, fmt.Errorf("%w: %w", ErrReceiptMalformed, err)
	}
	if dec.More() {
		return rc, nil, fmt.Errorf("%w: trailing data", ErrReceiptMalformed)
	}
	if !rc.ID.Valid() || !rc.Recording.Valid() || !rc.Reason.valid() || rc.DeletedAt.IsZero() {
		return rc, nil, fmt.Errorf("%w: missing or invalid field", ErrReceiptMalformed)
	}
	body := append(line[:n-sigSuffixLen:n-sigSuffixLen], '}')
	return rc, body, nil
}
