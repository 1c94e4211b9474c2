package recorder

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// oggScan is what scanOgg learned about a file: where its last intact page
// ends and how much audio the intact pages hold.
type oggScan struct {
	// end is the offset just past the last intact page; everything after
	// it (a torn page, garbage) is to be cut.
	end int64
	// headers is true when the OpusHead and OpusTags pages are intact.
	headers bool
	preSkip uint16
	// granule is the granule position of the last intact audio page.
	granule uint64
	// lastPage and lastLen locate the last intact audio page (lastLen 0:
	// none), lastFlags is its header_type.
	lastPage  int64
	lastLen   int
	lastFlags byte
	pages     int
}

// scanOgg reads Ogg pages from r and stops at the first one that is torn,
// fails its CRC, belongs to another stream or breaks the RFC 7845 layout
// (OpusHead page, OpusTags page, audio pages). It never fails on bad data,
// only on read errors other than EOF: bad data just ends the intact part.
func scanOgg(r io.Reader) (oggScan, error) {
	var s oggScan
	br := bufio.NewReaderSize(r, 64<<10)
	page := make([]byte, 0, maxPageLen)
	var serial uint32
	var off int64
	for {
		p, err := readPage(br, page)
		if err != nil {
			if errors.Is(err, errBadPage) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return s, nil
			}
			return s, err
		}
		flags := p[5]
		granule := binary.LittleEndian.Uint64(p[6:])
		ser := binary.LittleEndian.Uint32(p[14:])
		seq := binary.LittleEndian.Uint32(p[18:])
		body := p[pageHeaderLen+int(p[26]):]
		switch {
		case s.pages == 0:
			if flags != flagBOS || seq != 0 || len(body) < 19 || !bytes.HasPrefix(body, []byte("OpusHead")) || body[9] != 1 {
				return s, nil
			}
			serial = ser
			s.preSkip = binary.LittleEndian.Uint16(body[10:])
		case ser != serial || seq != uint32(s.pages) || flags&(flagBOS|flagContinued) != 0:
			return s, nil
		case s.pages == 1:
			if !bytes.HasPrefix(body, []byte("OpusTags")) {
				return s, nil
			}
			s.headers = true
		default:
			if granule < s.granule || granule == ^uint64(0) {
				return s, nil
			}
			s.granule = granule
			s.lastPage, s.lastLen, s.lastFlags = off, len(p), flags
		}
		s.pages++
		off += int64(len(p))
		s.end = off
		if flags&flagEOS != 0 {
			return s, nil
		}
	}
}

// errBadPage marks data that is not an intact page.
var errBadPage = errors.New("not an intact ogg page")

// readPage reads one page into buf and checks its capture pattern, version
// and CRC; it returns the page's bytes.
func readPage(br *bufio.Reader, buf []byte) ([]byte, error) {
	b := buf[:pageHeaderLen]
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, err
	}
	if string(b[:4]) != "OggS" || b[4] != 0 {
		return nil, errBadPage
	}
	nsegs := int(b[26])
	b = b[:pageHeaderLen+nsegs]
	if _, err := io.ReadFull(br, b[pageHeaderLen:]); err != nil {
		return nil, err
	}
	bodyLen := 0
	for _, l := range b[pageHeaderLen:] {
		bodyLen += int(l)
	}
	hl := len(b)
	b = b[:hl+bodyLen]
	if _, err := io.ReadFull(br, b[hl:]); err != nil {
		return nil, err
	}
	want := binary.LittleEndian.Uint32(b[22:])
	binary.LittleEndian.PutUint32(b[22:], 0)
	got := oggCRC(0, b)
	binary.LittleEndian.PutUint32(b[22:], want)
	if got != want {
		return nil, errBadPage
	}
	return b, nil
}

// markEOS sets the end-of-stream flag on the page p (a complete page as
// scanOgg located it) and fixes its CRC, so that a recovered file ends the
// way RFC 3533 §6 wants a stream to end.
func markEOS(p []byte) {
	p[5] |= flagEOS
	binary.LittleEndian.PutUint32(p[22:], 0)
	binary.LittleEndian.PutUint32(p[22:], oggCRC(0, p))
}
