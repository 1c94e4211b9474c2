package recorder

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash"
	"io"

	"github.com/mediagate/mediagate/media"
)

// The formats a recording may be written in. A recording's manifest keeps
// its format, so a store holds both kinds once an admin switches.
const (
	// FormatOpus is Ogg/Opus (RFC 7845): the manifest's format field and
	// the Content-Type of downloads (RFC 7845 §9). It is the default.
	FormatOpus = "audio/ogg; codecs=opus"
	// FormatM4A is AAC-LC in fragmented MP4 (ISO/IEC 14496-12 §8.8,
	// RFC 6381 codecs parameter), for players that lack Opus.
	FormatM4A = "audio/mp4; codecs=mp4a.40.2"
	// Format is FormatOpus, the default format.
	Format = FormatOpus
)

// ContentType returns the media type to serve a recording of format with:
// FormatOpus as it is (RFC 7845 §9), audio/mp4 (RFC 4337 §2) for FormatM4A.
func ContentType(format string) string {
	if format == FormatM4A {
		return "audio/mp4"
	}
	return FormatOpus
}

// Extension returns the file name extension of recordings in format
// (".opus" for FormatOpus and anything unknown, as manifests before
// FormatM4A all were Ogg/Opus).
func Extension(format string) string {
	if format == FormatM4A {
		return ".m4a"
	}
	return ".opus"
}

// packetEncoder turns the mix's 20 ms frames into a codec's packets. An
// Encode call yields at most one packet: Opus packets are 20 ms, AAC
// frames 1024 samples, more than a mix frame's 960.
type packetEncoder interface {
	// Encode takes one frame and writes the packet it completes, if any,
	// into dst; n is 0 while a packet is still being filled.
	Encode(pcm *media.Frame, dst []byte) (n int, err error)
	// Flush writes into dst a packet of what the encoder still holds,
	// padded with silence; it is called until it returns 0.
	Flush(dst []byte) (n int, err error)
	Close() error
}

// container writes one encoder's packets into a file, a page or fragment of
// at most a second at a time (decision 6), each written and synced before
// WritePacket reports it flushed. On a write error nothing of the page
// counts as written; the recording cuts the file back to Written.
type container interface {
	WritePacket(p []byte) (flushed bool, err error)
	// Close writes the pending packets as the last page or fragment.
	Close() error
	// Written is the size of the complete pages written so far.
	Written() int64
	// Duration is the playing time of the complete pages, in seconds.
	Duration() float64
}

var (
	_ container     = (*oggWriter)(nil)
	_ container     = (*mp4Writer)(nil)
	_ packetEncoder = opusFrames{}
	_ packetEncoder = (*aacFrames)(nil)
)

// track is a recording's codec and container, made for its format.
type track struct {
	enc packetEncoder
	out container
	max int // the largest packet enc writes
}

// newTrack creates the encoder for format and writes the container's
// headers to w. sync is called after each page; sum sees every byte.
func newTrack(opts *Options, format string, w io.Writer, sync func() error, sum hash.Hash) (track, error) {
	switch format {
	case FormatM4A:
		enc, err := media.NewAACEncoder(media.Rate48k, 1, AACBitrate)
		if err != nil {
			return track{}, err
		}
		mp4 := newMP4Writer(w, sync, sum)
		if err := mp4.WriteHeader(enc.AudioSpecificConfig(), AACBitrate); err != nil {
			_ = enc.Close()
			return track{}, err
		}
		return track{enc: &aacFrames{enc: enc}, out: mp4, max: media.AACMaxPayload}, nil
	default:
		enc, err := media.NewOpusEncoder(media.WithOpusConfig(opts.Opus))
		if err != nil {
			return track{}, err
		}
		var serial [4]byte
		_, _ = rand.Read(serial[:])
		preSkip := opusPreSkip(opts.Opus.Application == media.OpusRestrictedLowDelay)
		ogg := newOggWriter(w, sync, sum, binary.LittleEndian.Uint32(serial[:]), preSkip)
		if err := ogg.WriteHeaders(vendor); err != nil {
			_ = enc.Close()
			return track{}, err
		}
		return track{enc: opusFrames{enc}, out: ogg, max: media.MaxOpusPayload}, nil
	}
}

// AACBitrate is the bit rate of m4a recordings: 128 kbit/s, transparent
// for speech and music from a 48 kHz mono mix.
const AACBitrate = 128000

// opusFrames is an Opus encoder: one packet per frame.
type opusFrames struct{ enc media.Encoder }

func (o opusFrames) Encode(pcm *media.Frame, dst []byte) (int, error) {
	return o.enc.Encode(pcm[:], dst)
}
func (o opusFrames) Flush([]byte) (int, error) { return 0, nil }
func (o opusFrames) Close() error              { return o.enc.Close() }

// aacFrames gathers 20 ms frames into the 1024-sample frames of AAC-LC
// (ISO 14496-3 §4.5.1) for an AAC encoder.
type aacFrames struct {
	enc     *media.AACEncoder
	buf     [media.AACFrameSamples]int16
	n       int    // samples in buf
	in, out uint64 // samples handed in and encoded
}

func (a *aacFrames) Encode(pcm *media.Frame, dst []byte) (int, error) {
	c := copy(a.buf[a.n:], pcm[:])
	a.n += c
	a.in += uint64(len(pcm))
	if a.n < len(a.buf) {
		return 0, nil
	}
	a.out += uint64(len(a.buf))
	n, err := a.enc.Encode(a.buf[:], dst)
	a.n = copy(a.buf[:], pcm[c:])
	return n, err
}

// Flush feeds silence until the encoder has let out all the audio handed
// in, which it holds back by aacPriming samples.
func (a *aacFrames) Flush(dst []byte) (int, error) {
	if a.in == 0 || a.out >= a.in+aacPriming {
		return 0, nil
	}
	clear(a.buf[a.n:])
	a.n = 0
	a.out += uint64(len(a.buf))
	return a.enc.Encode(a.buf[:], dst)
}

func (a *aacFrames) Close() error { return a.enc.Close() }

// repairFile cuts the file f of format after its last intact page or
// fragment and makes what is left end the way the format wants. It
// returns the cut offset, the playing time left, and whether the headers
// survived (false: the file was emptied).
func repairFile(format string, f repairable) (end int64, dur float64, ok bool, err error) {
	if format == FormatM4A {
		return repairMP4(f)
	}
	return repairOgg(f)
}

// checkFormat reports whether format is one the recorder writes.
func checkFormat(format string) error {
	if format != FormatOpus && format != FormatM4A {
		return fmt.Errorf("%w: Format %q, want %q or %q", ErrOptions, format, FormatOpus, FormatM4A)
	}
	return nil
}
