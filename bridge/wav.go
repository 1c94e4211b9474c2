package bridge

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/mediagate/mediagate/media"
)

// maxWAVBytes bounds the size of a prompt file: 16 MiB is almost three
// minutes at 48 kHz, far more than any prompt, and small enough that a wrong
// file in the override directory cannot exhaust memory.
const maxWAVBytes = 16 << 20

// WAV format tags (the wFormatTag of the fmt chunk) the reader accepts.
const (
	wavFormatPCM        = 0x0001
	wavFormatExtensible = 0xFFFE
)

// wavSubformatPCM is KSDATAFORMAT_SUBTYPE_PCM, the GUID that marks a
// WAVE_FORMAT_EXTENSIBLE file as linear PCM (as written by some editors for
// any file, and by sox for more than 16 bits or 2 channels).
var wavSubformatPCM = [16]byte{
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
	0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
}

// ReadWAV reads a WAV file of 16-bit linear PCM, mono, at 8, 16 or 48 kHz,
// and returns its samples and sample rate. Prompt files come from the
// repository and from operators; the reader is small and strict so that a
// damaged or mis-exported file is an error at start-up, not noise in a call:
//
//   - the RIFF size must match the bytes read (one trailing pad byte is
//     allowed); every chunk must lie inside the RIFF chunk, chunks are
//     word-aligned (RIFF pads odd sizes with one byte);
//   - exactly one fmt chunk, before exactly one data chunk; other chunks
//     (LIST, fact, cue, ...) are skipped;
//   - the format is PCM (tag 1), or WAVE_FORMAT_EXTENSIBLE with the PCM
//     subformat and 16 valid bits; 1 channel, 16 bits, block align 2 and a
//     byte rate that agrees with the sample rate;
//   - the data size is a whole number of samples.
//
// Files larger than 16 MiB are refused with ErrWAVTooLarge.
func ReadWAV(r io.Reader) (pcm []int16, rate int, err error) {
	b, err := io.ReadAll(io.LimitReader(r, maxWAVBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read wav: %w", err)
	}
	if len(b) > maxWAVBytes {
		return nil, 0, fmt.Errorf("%w: more than %d bytes", ErrWAVTooLarge, maxWAVBytes)
	}
	return parseWAV(b)
}

// parseWAV is ReadWAV on the file's bytes.
func parseWAV(b []byte) ([]int16, int, error) {
	if len(b) < 12 || !bytes.Equal(b[0:4], []byte("RIFF")) || !bytes.Equal(b[8:12], []byte("WAVE")) {
		return nil, 0, fmt.Errorf("%w: no RIFF/WAVE header", ErrWAVMalformed)
	}
	size := int64(binary.LittleEndian.Uint32(b[4:8]))
	end := size + 8
	if end != int64(len(b)) && !(size%2 == 1 && end+1 == int64(len(b))) {
		return nil, 0, fmt.Errorf("%w: RIFF size %d, file has %d bytes", ErrWAVMalformed, size, len(b))
	}
	var (
		rate    int
		haveFmt bool
		data    []byte
		off     = int64(12)
	)
	for off < end {
		if end-off < 8 {
			return nil, 0, fmt.Errorf("%w: %d stray bytes at the end", ErrWAVMalformed, end-off)
		}
		id := string(b[off : off+4])
		n := int64(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		body := off + 8
		if n > end-body {
			return nil, 0, fmt.Errorf("%w: chunk %q of %d bytes runs past the end", ErrWAVMalformed, id, n)
		}
		chunk := b[body : body+n]
		off = body + n + n%2
		switch id {
		case "fmt ":
			if haveFmt {
				return nil, 0, fmt.Errorf("%w: second fmt chunk", ErrWAVMalformed)
			}
			r, err := parseWAVFormat(chunk)
			if err != nil {
				return nil, 0, err
			}
			rate, haveFmt = r, true
		case "data":
			if !haveFmt {
				return nil, 0, fmt.Errorf("%w: data chunk before fmt chunk", ErrWAVMalformed)
			}
			if data != nil {
				return nil, 0, fmt.Errorf("%w: second data chunk", ErrWAVMalformed)
			}
			if n%2 != 0 {
				return nil, 0, fmt.Errorf("%w: data of %d bytes is no whole number of 16-bit samples", ErrWAVMalformed, n)
			}
			data = chunk
		}
		if off > end {
			// The pad byte of the last chunk is missing: tolerated only
			// when the RIFF size itself is odd, i.e. counts the chunk
			// exactly (checked above), which leaves off == end+1.
			if off != end+1 || size%2 == 0 {
				return nil, 0, fmt.Errorf("%w: chunk %q not padded to an even size", ErrWAVMalformed, id)
			}
			break
		}
	}
	if !haveFmt {
		return nil, 0, fmt.Errorf("%w: no fmt chunk", ErrWAVMalformed)
	}
	if data == nil {
		return nil, 0, fmt.Errorf("%w: no data chunk", ErrWAVMalformed)
	}
	pcm := make([]int16, len(data)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return pcm, rate, nil
}

// parseWAVFormat checks a fmt chunk (the WAVEFORMATEX structure, optionally
// extended to WAVEFORMATEXTENSIBLE) and returns the sample rate.
func parseWAVFormat(c []byte) (int, error) {
	if len(c) < 16 {
		return 0, fmt.Errorf("%w: fmt chunk of %d bytes", ErrWAVMalformed, len(c))
	}
	le := binary.LittleEndian
	tag := le.Uint16(c[0:2])
	channels := le.Uint16(c[2:4])
	rate := le.Uint32(c[4:8])
	byteRate := le.Uint32(c[8:12])
	blockAlign := le.Uint16(c[12:14])
	bits := le.Uint16(c[14:16])
	switch tag {
	case wavFormatPCM:
		// 16 bytes, or 18 with a zero cbSize as some writers add.
		if len(c) != 16 && (len(c) != 18 || le.Uint16(c[16:18]) != 0) {
			return 0, fmt.Errorf("%w: pcm fmt chunk of %d bytes", ErrWAVMalformed, len(c))
		}
	case wavFormatExtensible:
		if len(c) != 40 || le.Uint16(c[16:18]) != 22 {
			return 0, fmt.Errorf("%w: extensible fmt chunk of %d bytes", ErrWAVMalformed, len(c))
		}
		if valid := le.Uint16(c[18:20]); valid != 16 {
			return 0, fmt.Errorf("%w: %d valid bits per sample", ErrWAVFormat, valid)
		}
		if !bytes.Equal(c[24:40], wavSubformatPCM[:]) {
			return 0, fmt.Errorf("%w: extensible subformat is not pcm", ErrWAVFormat)
		}
	default:
		return 0, fmt.Errorf("%w: format tag %#04x", ErrWAVFormat, tag)
	}
	switch {
	case channels != 1:
		return 0, fmt.Errorf("%w: %d channels", ErrWAVFormat, channels)
	case bits != 16:
		return 0, fmt.Errorf("%w: %d bits per sample", ErrWAVFormat, bits)
	case rate != media.Rate8k && rate != media.Rate16k && rate != media.Rate48k:
		return 0, fmt.Errorf("%w: %d Hz", ErrWAVFormat, rate)
	case blockAlign != 2 || byteRate != rate*2:
		return 0, fmt.Errorf("%w: block align %d, byte rate %d for 16-bit mono at %d Hz",
			ErrWAVMalformed, blockAlign, byteRate, rate)
	}
	return int(rate), nil
}
