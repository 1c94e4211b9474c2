package recorder

import (
	"encoding/binary"
	"fmt"
	"hash"
	"io"

	"github.com/mediagate/mediagate/media"
)

// Fragmented MP4 (ISO/IEC 14496-12 §8.8) carrying one AAC-LC track
// (ISO/IEC 14496-14 §5.6 esds), written fragment by fragment so that a
// crash loses at most the fragment being filled: ftyp and a moov whose
// sample tables are empty (mvex announces fragments), then one moof+mdat
// pair per second or less of audio.
//
// The encoder delays the audio by aacPriming samples (33 ms). As ffmpeg's
// own fragmented MP4 does, the file has no edit list: the priming plays as
// silence at the start, and the encoder is fed silence at the end until
// all the audio handed in is out, the last frame padded. Duration, in the
// manifest, counts AAC frames × 1024 minus the priming, over 48000: the
// audio handed in, rounded up to a frame. ffprobe counts the priming in
// and shows 33 ms more, as it shows Ogg/Opus's pre-skip.
// Timestamps are in samples (mdhd timescale 48000).

const (
	// mp4Timescale is the track's time unit: one sample at 48 kHz.
	mp4Timescale = media.Rate48k
	// framesPerFragment caps a fragment at one second (decision 6):
	// 46 × 1024 samples = 0.981 s.
	framesPerFragment = mp4Timescale / media.AACFrameSamples
	// mp4TrackID is the one track's ID.
	mp4TrackID = 1
	// moofLen is the size of a moof with framesPerFragment samples:
	// moof(8) mfhd(16) traf(8) tfhd(20) tfdt(20) trun(20 + 4 per sample).
	moofLen = 8 + 16 + 8 + 20 + 20 + 20 + 4*framesPerFragment
)

// mp4Writer writes the fragments of one AAC track. It is used by one
// goroutine. Steady-state WritePacket allocates nothing: frames gather in a
// buffer sized for the largest fragment.
type mp4Writer struct {
	w    io.Writer
	sync func() error // called after each fragment; nil for no fsync
	sum  hash.Hash    // sees every byte of every complete box written

	seq     uint32 // fragments written
	decode  uint64 // samples in the fragments written
	written int64  // bytes of complete boxes written

	sizes [framesPerFragment]uint32
	n     int    // frames pending
	data  []byte // pending frames, cap framesPerFragment × media.AACMaxPayload
	frag  []byte // the fragment being assembled
}

func newMP4Writer(w io.Writer, sync func() error, sum hash.Hash) *mp4Writer {
	return &mp4Writer{
		w: w, sync: sync, sum: sum,
		data: make([]byte, 0, framesPerFragment*media.AACMaxPayload),
		frag: make([]byte, 0, moofLen+8+framesPerFragment*media.AACMaxPayload),
	}
}

// box appends a box of type typ with the contents body writes, fixing its
// size afterwards (ISO/IEC 14496-12 §4.2).
func box(b []byte, typ string, body func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, typ...)
	b = body(b)
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// fullBox is box with a version and flags (ISO/IEC 14496-12 §4.2).
func fullBox(b []byte, typ string, version byte, flags uint32, body func([]byte) []byte) []byte {
	return box(b, typ, func(b []byte) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(version)<<24|flags)
		return body(b)
	})
}

func u32s(b []byte, vs ...uint32) []byte {
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// unityMatrix is the identity transform of mvhd and tkhd.
var unityMatrix = []uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}

// WriteHeader writes ftyp and moov for an AAC-LC mono 48 kHz track with
// AudioSpecificConfig asc, then syncs.
func (m *mp4Writer) WriteHeader(asc []byte, bitrate int) error {
	b := box(nil, "ftyp", func(b []byte) []byte {
		b = append(b, "iso6"...)
		b = u32s(b, 0)
		return append(b, "iso6mp41M4A "...)
	})
	b = box(b, "moov", func(b []byte) []byte {
		b = fullBox(b, "mvhd", 0, 0, func(b []byte) []byte {
			b = u32s(b, 0, 0, mp4Timescale, 0, 0x00010000) // times, timescale, duration, rate
			b = append(b, 0x01, 0, 0, 0)                   // volume 1.0, reserved
			b = u32s(b, 0, 0)
			b = u32s(b, unityMatrix...)
			b = u32s(b, 0, 0, 0, 0, 0, 0)
			return u32s(b, mp4TrackID+1) // next_track_ID
		})
		b = box(b, "trak", func(b []byte) []byte {
			b = fullBox(b, "tkhd", 0, 3, func(b []byte) []byte { // enabled, in movie
				b = u32s(b, 0, 0, mp4TrackID, 0, 0, 0, 0)
				b = append(b, 0, 0, 0, 0, 0x01, 0, 0, 0) // layer, alternate_group, volume 1.0, reserved
				b = u32s(b, unityMatrix...)
				return u32s(b, 0, 0) // width, height
			})
			return box(b, "mdia", func(b []byte) []byte {
				b = fullBox(b, "mdhd", 0, 0, func(b []byte) []byte {
					b = u32s(b, 0, 0, mp4Timescale, 0)
					return append(b, 0x55, 0xc4, 0, 0) // language "und", pre_defined
				})
				b = fullBox(b, "hdlr", 0, 0, func(b []byte) []byte {
					b = u32s(b, 0)
					b = append(b, "soun"...)
					b = u32s(b, 0, 0, 0)
					return append(b, "SoundHandler\x00"...)
				})
				return box(b, "minf", func(b []byte) []byte {
					b = fullBox(b, "smhd", 0, 0, func(b []byte) []byte { return u32s(b, 0) })
					b = box(b, "dinf", func(b []byte) []byte {
						return fullBox(b, "dref", 0, 0, func(b []byte) []byte {
							b = u32s(b, 1)
							return fullBox(b, "url ", 0, 1, func(b []byte) []byte { return b }) // media in this file
						})
					})
					return box(b, "stbl", func(b []byte) []byte {
						b = fullBox(b, "stsd", 0, 0, func(b []byte) []byte {
							b = u32s(b, 1)
							return mp4aEntry(b, asc, bitrate)
						})
						// Empty sample tables: the samples are in the fragments.
						b = fullBox(b, "stts", 0, 0, func(b []byte) []byte { return u32s(b, 0) })
						b = fullBox(b, "stsc", 0, 0, func(b []byte) []byte { return u32s(b, 0) })
						b = fullBox(b, "stsz", 0, 0, func(b []byte) []byte { return u32s(b, 0, 0) })
						return fullBox(b, "stco", 0, 0, func(b []byte) []byte { return u32s(b, 0) })
					})
				})
			})
		})
		return box(b, "mvex", func(b []byte) []byte {
			return fullBox(b, "trex", 0, 0, func(b []byte) []byte {
				// track, sample description 1, 1024 samples per frame,
				// size per sample, flags 0
				return u32s(b, mp4TrackID, 1, media.AACFrameSamples, 0, 0)
			})
		})
	})
	return m.write(b, "header")
}

// mp4aEntry appends the AudioSampleEntry (ISO/IEC 14496-12 §12.2.3) with
// its esds (ISO/IEC 14496-14 §5.6, descriptors of ISO/IEC 14496-1 §7.2.6).
func mp4aEntry(b []byte, asc []byte, bitrate int) []byte {
	return box(b, "mp4a", func(b []byte) []byte {
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 1) // reserved, data_reference_index 1
		b = u32s(b, 0, 0)
		b = append(b, 0, 1, 0, 16, 0, 0, 0, 0) // channelcount 1, samplesize 16, pre_defined, reserved
		b = u32s(b, mp4Timescale<<16)
		return fullBox(b, "esds", 0, 0, func(b []byte) []byte {
			dsi := 2 + len(asc)
			dcd := 2 + 13 + dsi
			b = append(b, 0x03, byte(3+dcd+3)) // ES_Descriptor
			b = append(b, 0, 0, 0)             // ES_ID 0, no flags
			b = append(b, 0x04, byte(13+dsi))  // DecoderConfigDescriptor
			b = append(b, 0x40, 0x15)          // MPEG-4 audio; audio stream, upstream 0, reserved 1
			b = append(b, 0, 0x06, 0)          // bufferSizeDB: 1536, the largest mono frame
			b = u32s(b, uint32(bitrate), uint32(bitrate))
			b = append(b, 0x05, byte(len(asc))) // DecoderSpecificInfo
			b = append(b, asc...)
			return append(b, 0x06, 1, 0x02) // SLConfigDescriptor, predefined 2 (MP4)
		})
	})
}

// WritePacket adds one AAC frame. It first writes the pending fragment if
// it holds framesPerFragment frames, so a fragment is on disk within one
// frame of holding a second of audio and Close never writes an empty one.
func (m *mp4Writer) WritePacket(p []byte) (flushed bool, err error) {
	if len(p) == 0 || len(p) > media.AACMaxPayload {
		return false, fmt.Errorf("aac frame of %d bytes", len(p))
	}
	if m.n == framesPerFragment {
		if err := m.flush(); err != nil {
			return false, err
		}
		flushed = true
	}
	m.sizes[m.n] = uint32(len(p))
	m.n++
	m.data = append(m.data, p...)
	return flushed, nil
}

// Close writes the pending frames as the last fragment. A fragmented file
// needs no end marker (ISO/IEC 14496-12 §8.8: an mfra is optional).
func (m *mp4Writer) Close() error {
	if m.n == 0 {
		return nil
	}
	return m.flush()
}

// flush writes the pending frames as moof+mdat (ISO/IEC 14496-12 §8.8.4,
// §8.1.1) and syncs. The boxes are built by hand, not with box, so that
// the steady state allocates nothing.
func (m *mp4Writer) flush() error {
	n := uint32(m.n)
	trunLen := 20 + 4*n
	trafLen := 8 + 20 + 20 + trunLen
	moof := 8 + 16 + trafLen
	b := m.frag[:0]
	b = u32s(b, moof)
	b = append(b, "moof"...)
	b = u32s(b, 16)
	b = append(b, "mfhd"...)
	b = u32s(b, 0, m.seq+1) // sequence_number from 1 (§8.8.5)
	b = u32s(b, trafLen)
	b = append(b, "traf"...)
	b = u32s(b, 20)
	b = append(b, "tfhd"...)
	b = u32s(b, 0x020008, mp4TrackID, media.AACFrameSamples) // default-base-is-moof, default duration
	b = u32s(b, 20)
	b = append(b, "tfdt"...)
	b = u32s(b, 1<<24) // version 1: 64-bit time
	b = binary.BigEndian.AppendUint64(b, m.decode)
	b = u32s(b, trunLen)
	b = append(b, "trun"...)
	b = u32s(b, 0x000201, n, moof+8) // data offset, sample sizes; data after mdat's header
	b = u32s(b, m.sizes[:n]...)
	b = u32s(b, 8+uint32(len(m.data)))
	b = append(b, "mdat"...)
	b = append(b, m.data...)
	m.frag = b[:0]
	if err := m.write(b, "fragment"); err != nil {
		return err
	}
	m.seq++
	m.decode += uint64(n) * media.AACFrameSamples
	m.n, m.data = 0, m.data[:0]
	return nil
}

// write writes b, syncs, and counts it as written.
func (m *mp4Writer) write(b []byte, what string) error {
	if _, err := m.w.Write(b); err != nil {
		return fmt.Errorf("write mp4 %s %d: %w", what, m.seq, err)
	}
	if m.sync != nil {
		if err := m.sync(); err != nil {
			return fmt.Errorf("sync mp4 %s %d: %w", what, m.seq, err)
		}
	}
	m.sum.Write(b)
	m.written += int64(len(b))
	return nil
}

// Written is the size of the complete boxes written.
func (m *mp4Writer) Written() int64 { return m.written }

// Duration is the playing time of the fragments written.
func (m *mp4Writer) Duration() float64 { return mp4Seconds(m.decode) }

// aacPriming is libvo-aacenc's delay: the decoded audio starts this many
// samples (33 ms) late. TestM4ARecordingPlays measures it.
const aacPriming = 1600

// mp4Seconds converts the samples of a file's fragments into playing time:
// the priming does not count (as Ogg's pre-skip does not).
func mp4Seconds(samples uint64) float64 {
	if samples <= aacPriming {
		return 0
	}
	return float64(samples-aacPriming) / mp4Timescale
}
