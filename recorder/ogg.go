package recorder

import (
	"encoding/binary"
	"fmt"
	"hash"
	"io"
)

// Ogg (RFC 3533) carrying one mono Opus stream (RFC 7845), written page by
// page so that a crash loses at most the page being filled.

const (
	// opusGranuleRate is the rate granule positions count in, whatever the
	// encoder's input rate (RFC 7845 §4).
	opusGranuleRate = 48000
	// samplesPerPacket is one 20 ms Opus packet at the granule rate.
	samplesPerPacket = opusGranuleRate / 50
	// packetsPerPage caps a page at one second of audio (decision 6).
	packetsPerPage = 50
	// Ogg page layout (RFC 3533 §6).
	pageHeaderLen = 27
	maxSegments   = 255
	maxPageBody   = maxSegments * 255
	maxPageLen    = pageHeaderLen + maxSegments + maxPageBody

	flagContinued = 0x01
	flagBOS       = 0x02
	flagEOS       = 0x04
)

// oggCRC is the CRC-32 of Ogg (RFC 3533 §6: polynomial 0x04c11db7, not
// reflected, initial value 0, no final XOR), table-driven.
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func oggCRC(crc uint32, b []byte) uint32 {
	for _, x := range b {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^x]
	}
	return crc
}

// opusPreSkip returns the samples (at 48 kHz) the decoder must drop at the
// start: libopus's look-ahead, which its binding does not expose. It is
// 2.5 ms plus, for the SILK-capable modes, 4 ms of delay compensation
// (opus_encoder.c: Fs/400 + Fs/250); TestOggPreSkipAlignment checks it.
func opusPreSkip(restrictedLowDelay bool) uint16 {
	if restrictedLowDelay {
		return opusGranuleRate / 400
	}
	return opusGranuleRate/400 + opusGranuleRate/250
}

// oggWriter writes one logical Opus stream. It is used by one goroutine.
// Steady-state WritePacket allocates nothing: the page is assembled in a
// buffer sized for the largest page.
type oggWriter struct {
	w       io.Writer
	sync    func() error // called after each page; nil for no fsync
	sum     hash.Hash    // sees every byte of every complete page written
	serial  uint32
	seq     uint32
	preSkip uint16

	granule uint64 // samples of all packets handed in so far
	written int64  // bytes of complete pages written
	done    uint64 // granule of the last page written

	segs    [maxSegments]byte
	nsegs   int
	packets int
	body    []byte // cap maxPageBody
	page    []byte // cap maxPageLen
	pages   uint64 // pages written, for tests and metrics
}

func newOggWriter(w io.Writer, sync func() error, sum hash.Hash, serial uint32, preSkip uint16) *oggWriter {
	return &oggWriter{
		w: w, sync: sync, sum: sum, serial: serial, preSkip: preSkip,
		body: make([]byte, 0, maxPageBody),
		page: make([]byte, 0, maxPageLen),
	}
}

// WriteHeaders writes the identification and comment headers, each on a page
// of its own (RFC 7845 §3: the first audio packet starts a new page).
func (o *oggWriter) WriteHeaders(vendor string) error {
	head := make([]byte, 19)
	copy(head, "OpusHead")
	head[8] = 1 // version (RFC 7845 §5.1)
	head[9] = 1 // channels: mono
	binary.LittleEndian.PutUint16(head[10:], o.preSkip)
	binary.LittleEndian.PutUint32(head[12:], opusGranuleRate) // input rate, informational
	// output gain 0, mapping family 0 (mono/stereo, no table)
	if err := o.writeOnePacketPage(head, flagBOS); err != nil {
		return err
	}
	tags := make([]byte, 0, 8+4+len(vendor)+4)
	tags = append(tags, "OpusTags"...)
	tags = binary.LittleEndian.AppendUint32(tags, uint32(len(vendor)))
	tags = append(tags, vendor...)
	tags = binary.LittleEndian.AppendUint32(tags, 0) // no user comments (RFC 7845 §5.2)
	return o.writeOnePacketPage(tags, 0)
}

func (o *oggWriter) writeOnePacketPage(p []byte, flags byte) error {
	if len(p) >= maxPageBody {
		return fmt.Errorf("ogg header packet of %d bytes", len(p))
	}
	o.add(p)
	return o.flush(flags, 0)
}

// WritePacket adds one 20 ms Opus packet. It first writes the pending page
// if the packet would make it longer than one second or 255 segments, so a
// page is on disk within one packet of holding a second of audio and the
// last page, written by Close, is never empty.
func (o *oggWriter) WritePacket(p []byte) (flushed bool, err error) {
	if len(p) == 0 || len(p) > maxPageBody-maxSegments {
		return false, fmt.Errorf("opus packet of %d bytes", len(p))
	}
	need := len(p)/255 + 1
	if o.packets > 0 && (o.packets == packetsPerPage || o.nsegs+need > maxSegments) {
		if err := o.flush(0, o.granule); err != nil {
			return false, err
		}
		flushed = true
	}
	o.add(p)
	o.granule += samplesPerPacket
	return flushed, nil
}

// add laces p into the pending page (RFC 3533 §5: 255-byte segments, then
// one shorter, possibly empty, segment).
func (o *oggWriter) add(p []byte) {
	n := len(p)
	for ; n >= 255; n -= 255 {
		o.segs[o.nsegs] = 255
		o.nsegs++
	}
	o.segs[o.nsegs] = byte(n)
	o.nsegs++
	o.body = append(o.body, p...)
	o.packets++
}

// Close writes the pending packets as the last page, marked end of stream
// (RFC 3533 §6 header_type 0x04). Without pending packets (nothing was
// recorded) the EOS page is empty.
func (o *oggWriter) Close() error {
	return o.flush(flagEOS, o.granule)
}

// flush writes the pending page with flags and the granule position of its
// last packet (RFC 7845 §4: samples at 48 kHz since the stream start,
// pre-skip included), then syncs. On error nothing of the page counts as
// written; the caller cuts the file back to o.written.
func (o *oggWriter) flush(flags byte, granule uint64) error {
	b := o.page[:pageHeaderLen]
	copy(b, "OggS")
	b[4] = 0 // version
	b[5] = flags
	binary.LittleEndian.PutUint64(b[6:], granule)
	binary.LittleEndian.PutUint32(b[14:], o.serial)
	binary.LittleEndian.PutUint32(b[18:], o.seq)
	binary.LittleEndian.PutUint32(b[22:], 0)
	b[26] = byte(o.nsegs)
	b = append(b, o.segs[:o.nsegs]...)
	b = append(b, o.body...)
	binary.LittleEndian.PutUint32(b[22:], oggCRC(0, b))
	o.page = b[:0]
	if _, err := o.w.Write(b); err != nil {
		return fmt.Errorf("write ogg page %d: %w", o.seq, err)
	}
	if o.sync != nil {
		if err := o.sync(); err != nil {
			return fmt.Errorf("sync ogg page %d: %w", o.seq, err)
		}
	}
	o.sum.Write(b)
	o.written += int64(len(b))
	o.done = granule
	o.seq++
	o.pages++
	o.nsegs, o.packets, o.body = 0, 0, o.body[:0]
	return nil
}

// Written is the size of the complete pages written so far.
func (o *oggWriter) Written() int64 { return o.written }

// Duration is the playing time of the pages written so far, as a player
// shows it: granule position minus pre-skip (RFC 7845 §4.2).
func (o *oggWriter) Duration() float64 { return playSeconds(o.done, o.preSkip) }

// playSeconds converts a final granule position into playing time.
func playSeconds(granule uint64, preSkip uint16) float64 {
	if granule <= uint64(preSkip) {
		return 0
	}
	return float64(granule-uint64(preSkip)) / opusGranuleRate
}
