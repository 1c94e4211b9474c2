package recorder

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/mediagate/mediagate/media"
)

// mp4Scan is what scanMP4 learned about a file: where its last complete
// fragment ends and how many samples the complete fragments hold.
type mp4Scan struct {
	// end is the offset just past the last complete moof+mdat pair (or
	// the moov when there is none); everything after it is to be cut.
	end int64
	// headers is true when ftyp and moov are complete.
	headers   bool
	samples   uint64
	fragments int
}

// maxHeaderBox bounds the ftyp, moov and moof boxes scanMP4 reads whole;
// the ones mp4Writer writes are far smaller.
const maxHeaderBox = 64 << 10

// scanMP4 reads top-level boxes from r: ftyp, moov, then moof+mdat pairs
// as mp4Writer writes them. It stops at the first box that is torn or
// whose sizes disagree (trun's samples against mdat's size). It never
// fails on bad data, only on read errors other than EOF.
func scanMP4(r io.Reader) (mp4Scan, error) {
	var s mp4Scan
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	stop := func(err error) (mp4Scan, error) {
		if errors.Is(err, errBadBox) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return s, nil
		}
		return s, err
	}
	for _, want := range []string{"ftyp", "moov"} {
		b, err := readBox(br, &buf, want)
		if err != nil {
			return stop(err)
		}
		s.end += int64(len(b))
	}
	s.headers = true
	for {
		moof, err := readBox(br, &buf, "moof")
		if err != nil {
			return stop(err)
		}
		sizes, samples, err := parseMoof(moof)
		if err != nil {
			return stop(err)
		}
		var hdr [8]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return stop(err)
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if string(hdr[4:]) != "mdat" || uint64(size) != 8+sizes {
			return s, nil
		}
		if n, err := br.Discard(int(sizes)); n < int(sizes) {
			return stop(err)
		}
		s.end += int64(len(moof)) + int64(size)
		s.samples += samples
		s.fragments++
	}
}

// errBadBox marks data that is not the box expected.
var errBadBox = errors.New("not an intact mp4 box")

// readBox reads one whole box of type typ, at most maxHeaderBox bytes,
// into *buf, which grows to the largest box read.
func readBox(br *bufio.Reader, buf *[]byte, typ string) ([]byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if string(hdr[4:]) != typ || size < 8 || size > maxHeaderBox {
		return nil, errBadBox
	}
	if int(size) > cap(*buf) {
		*buf = make([]byte, size)
	}
	b := (*buf)[:size]
	copy(b, hdr[:])
	if _, err := io.ReadFull(br, b[8:]); err != nil {
		return nil, err
	}
	return b, nil
}

// parseMoof checks a moof as mp4Writer writes it (mfhd, traf with tfhd,
// tfdt and a trun whose data start right after the mdat header) and
// returns the sum of its sample sizes and its samples at 48 kHz.
func parseMoof(b []byte) (sizes uint64, samples uint64, err error) {
	const fixed = 8 + 16 + 8 + 20 + 20 + 20
	if len(b) < fixed || string(b[12:16]) != "mfhd" || string(b[28:32]) != "traf" ||
		string(b[36:40]) != "tfhd" || string(b[56:60]) != "tfdt" || string(b[76:80]) != "trun" {
		return 0, 0, errBadBox
	}
	if binary.BigEndian.Uint32(b[24:]) != uint32(len(b)-24) {
		return 0, 0, errBadBox
	}
	duration := uint64(media.AACFrameSamples)
	if binary.BigEndian.Uint32(b[40:])&0x08 != 0 {
		duration = uint64(binary.BigEndian.Uint32(b[48:]))
	}
	trun := b[72:]
	n := binary.BigEndian.Uint32(trun[12:])
	if binary.BigEndian.Uint32(trun) != uint32(len(trun)) || binary.BigEndian.Uint32(trun[8:])&0xffffff != 0x000201 ||
		uint64(len(trun)) != 20+4*uint64(n) || binary.BigEndian.Uint32(trun[16:]) != uint32(len(b))+8 {
		return 0, 0, errBadBox
	}
	for i := range n {
		sizes += uint64(binary.BigEndian.Uint32(trun[20+4*i:]))
	}
	return sizes, uint64(n) * duration, nil
}

// repairMP4 cuts f after its last complete fragment. What is left plays
// as it is: a fragmented file has no end marker to set.
func repairMP4(f repairable) (end int64, dur float64, ok bool, err error) {
	s, err := scanMP4(wholeFile(f))
	if err != nil {
		return 0, 0, false, fmt.Errorf("scan audio: %w", err)
	}
	end = s.end
	if !s.headers {
		end = 0
	}
	if err := f.Truncate(end); err != nil {
		return 0, 0, false, fmt.Errorf("cut audio: %w", err)
	}
	return end, mp4Seconds(s.samples), s.headers, nil
}
