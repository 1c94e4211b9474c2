package recorder

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

// seedOgg is a small valid stream: headers and two audio pages of fake
// packets of varied sizes.
func seedOgg() []byte {
	var buf bytes.Buffer
	w := newOggWriter(&buf, nil, sha256.New(), 7, 312)
	_ = w.WriteHeaders(vendor)
	for i := range 60 {
		_, _ = w.WritePacket(bytes.Repeat([]byte{0xfc}, 1+(i*37)%300))
	}
	_ = w.Close()
	return buf.Bytes()
}

// FuzzScanOgg feeds arbitrary files to the recovery scanner, which reads
// whatever a crash (or worse) left on disk. It must never panic, never
// claim more than the data, and be stable: the intact part scans the same
// on its own.
func FuzzScanOgg(f *testing.F) {
	s := seedOgg()
	f.Add(s)
	f.Add(s[:len(s)-10])
	f.Add(append(append([]byte{}, s...), "OggS\x00\x04garbage"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scanOgg(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("scan of in-memory data failed: %v", err)
		}
		if s.end < 0 || s.end > int64(len(data)) || s.lastPage+int64(s.lastLen) > s.end {
			t.Fatalf("scan claims %d bytes (last page %d+%d) of %d", s.end, s.lastPage, s.lastLen, len(data))
		}
		again, err := scanOgg(bytes.NewReader(data[:s.end]))
		if err != nil || again != s {
			t.Fatalf("intact part scans differently: %+v vs %+v (%v)", again, s, err)
		}
		if s.lastLen > 0 && s.lastFlags&flagEOS == 0 {
			p := append([]byte{}, data[s.lastPage:s.lastPage+int64(s.lastLen)]...)
			markEOS(p)
			fixed := append(append([]byte{}, data[:s.lastPage]...), p...)
			e, _ := scanOgg(bytes.NewReader(fixed))
			if e.end != s.end || e.lastFlags&flagEOS == 0 {
				t.Fatalf("marking EOS broke the page: %+v", e)
			}
		}
	})
}

// seedReceipts is a valid two-line log.
func seedReceipts() []byte {
	var buf bytes.Buffer
	prev := genesisPrev
	for i := range 2 {
		rc := Receipt{ID: ReceiptID(NewID()), Recording: NewID(), Tenant: "acme", Room: "r", SHA256: strings.Repeat("a", 64),
			Bytes: int64(i), ExpiresAt: t0, DeletedAt: t0.Add(time.Hour), Reason: ReasonExpired, Actor: "x", Node: "n", Prev: prev}
		line, _ := signLine(&rc, testKey)
		prev = lineHash(line)
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// FuzzVerify feeds arbitrary logs to Verify and ReadReceipts, which read
// files an auditor hands in. They must never panic; Verify must accept
// nothing it did not sign and count only what it checked.
func FuzzVerify(f *testing.F) {
	s := seedReceipts()
	f.Add(s)
	f.Add(s[:len(s)/2])
	f.Add(bytes.Replace(s, []byte("acme"), []byte("acmf"), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Verify(bytes.NewReader(data), testKey)
		lines := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
		if err == nil && n != lines {
			t.Fatalf("verified %d of %d lines", n, lines)
		}
		if n < 0 || n > lines {
			t.Fatalf("count %d of %d lines", n, lines)
		}
		_, _ = ReadReceipts(bytes.NewReader(data), ReceiptFilter{Tenant: "acme"})
	})
}
