package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// chunk is one RIFF chunk for the test files built below.
type chunk struct {
	id   string
	body []byte
}

// riffFile assembles a WAV file from chunks, padding odd ones as RIFF
// requires.
func riffFile(chunks ...chunk) []byte {
	var body []byte
	body = append(body, "WAVE"...)
	for _, c := range chunks {
		body = append(body, c.id...)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(c.body)))
		body = append(body, c.body...)
		if len(c.body)%2 == 1 {
			body = append(body, 0)
		}
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(out, body...)
}

// fmtChunk is a WAVEFORMATEX chunk with consistent block align and byte
// rate.
func fmtChunk(tag, channels uint16, rate uint32, bits uint16) chunk {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, tag)
	b = le.AppendUint16(b, channels)
	b = le.AppendUint32(b, rate)
	align := channels * bits / 8
	b = le.AppendUint32(b, rate*uint32(align))
	b = le.AppendUint16(b, align)
	b = le.AppendUint16(b, bits)
	return chunk{"fmt ", b}
}

// extensibleFmt is a WAVEFORMATEXTENSIBLE chunk for 16-bit mono.
func extensibleFmt(rate uint32, validBits uint16, sub [16]byte) chunk {
	c := fmtChunk(wavFormatExtensible, 1, rate, 16)
	le := binary.LittleEndian
	b := le.AppendUint16(c.body, 22)
	b = le.AppendUint16(b, validBits)
	b = le.AppendUint32(b, 0x4) // channel mask: front centre
	c.body = append(b, sub[:]...)
	return c
}

func dataChunk(pcm []int16) chunk {
	b := make([]byte, 0, 2*len(pcm))
	for _, s := range pcm {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	return chunk{"data", b}
}

// encodeWAV is the plain 44-byte-header file most tools write.
func encodeWAV(pcm []int16, rate int) []byte {
	return riffFile(fmtChunk(wavFormatPCM, 1, uint32(rate), 16), dataChunk(pcm))
}

var testPCM = []int16{0, 1, -1, 32767, -32768, 1234, -4321}

func TestReadWAV(t *testing.T) {
	good := encodeWAV(testPCM, 16000)
	pcmFmt := fmtChunk(wavFormatPCM, 1, 8000, 16)
	with := func(b []byte, off int, v ...byte) []byte {
		b = bytes.Clone(b)
		copy(b[off:], v)
		return b
	}
	oddList := riffFile(pcmFmt, chunk{"LIST", []byte("abc")}, dataChunk(testPCM))
	// stray: the RIFF chunk ends in 4 bytes that are no chunk header.
	stray := append(riffFile(pcmFmt, dataChunk(testPCM)), 1, 2, 3, 4)
	binary.LittleEndian.PutUint32(stray[4:], uint32(len(stray)-8))
	tests := []struct {
		name    string
		file    []byte
		rate    int
		wantErr error
	}{
		{"plain 16 kHz", good, 16000, nil},
		{"8 kHz", encodeWAV(testPCM, 8000), 8000, nil},
		{"48 kHz", encodeWAV(testPCM, 48000), 48000, nil},
		{"fmt with zero cbSize", riffFile(chunk{"fmt ", append(pcmFmt.body, 0, 0)}, dataChunk(testPCM)), 8000, nil},
		{"extensible pcm", riffFile(extensibleFmt(8000, 16, wavSubformatPCM), dataChunk(testPCM)), 8000, nil},
		{"LIST and fact chunks skipped", riffFile(chunk{"fact", []byte{7, 0, 0, 0}}, pcmFmt,
			chunk{"LIST", []byte("INFOISFT")}, dataChunk(testPCM), chunk{"cue ", nil}), 8000, nil},
		{"odd chunk padded", oddList, 8000, nil},
		{"empty data", riffFile(pcmFmt, dataChunk(nil)), 8000, nil},

		{"empty file", nil, 0, ErrWAVMalformed},
		{"not RIFF", with(good, 0, 'R', 'I', 'F', 'X'), 0, ErrWAVMalformed},
		{"not WAVE", with(good, 8, 'A', 'V', 'I', ' '), 0, ErrWAVMalformed},
		{"truncated", good[:len(good)-2], 0, ErrWAVMalformed},
		{"trailing junk", append(bytes.Clone(good), 0, 0, 0, 0), 0, ErrWAVMalformed},
		{"RIFF size too big", with(good, 4, 0xff, 0xff, 0xff, 0x7f), 0, ErrWAVMalformed},
		{"chunk runs past the end", with(good, 40, 0xff, 0xff, 0, 0), 0, ErrWAVMalformed},
		{"no fmt", riffFile(dataChunk(testPCM)), 0, ErrWAVMalformed},
		{"no data", riffFile(pcmFmt), 0, ErrWAVMalformed},
		{"data before fmt", riffFile(dataChunk(testPCM), pcmFmt), 0, ErrWAVMalformed},
		{"two fmt", riffFile(pcmFmt, pcmFmt, dataChunk(testPCM)), 0, ErrWAVMalformed},
		{"two data", riffFile(pcmFmt, dataChunk(testPCM), dataChunk(testPCM)), 0, ErrWAVMalformed},
		{"odd data size", riffFile(pcmFmt, chunk{"data", []byte{1, 2, 3}}), 0, ErrWAVMalformed},
		{"short fmt", riffFile(chunk{"fmt ", pcmFmt.body[:14]}, dataChunk(testPCM)), 0, ErrWAVMalformed},
		{"stray bytes after the last chunk", stray, 0, ErrWAVMalformed},
		{"wrong byte rate", riffFile(chunk{"fmt ", with(pcmFmt.body, 8, 0, 0, 0, 0)}, dataChunk(testPCM)), 0, ErrWAVMalformed},

		{"stereo", riffFile(fmtChunk(wavFormatPCM, 2, 8000, 16), dataChunk(testPCM[:6])), 0, ErrWAVFormat},
		{"8 bit", riffFile(fmtChunk(wavFormatPCM, 1, 8000, 8), dataChunk(testPCM)), 0, ErrWAVFormat},
		{"24 bit", riffFile(fmtChunk(wavFormatPCM, 1, 8000, 24), dataChunk(testPCM[:6])), 0, ErrWAVFormat},
		{"44.1 kHz", encodeWAV(testPCM, 44100), 0, ErrWAVFormat},
		{"float", riffFile(fmtChunk(3, 1, 8000, 16), dataChunk(testPCM)), 0, ErrWAVFormat},
		{"a-law", riffFile(fmtChunk(6, 1, 8000, 16), dataChunk(testPCM)), 0, ErrWAVFormat},
		{"extensible float", riffFile(extensibleFmt(8000, 16, [16]byte{3}), dataChunk(testPCM)), 0, ErrWAVFormat},
		{"extensible 12 valid bits", riffFile(extensibleFmt(8000, 12, wavSubformatPCM), dataChunk(testPCM)), 0, ErrWAVFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pcm, rate, err := ReadWAV(bytes.NewReader(tc.file))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.rate, rate)
			if tc.name == "empty data" {
				require.Empty(t, pcm)
				return
			}
			require.Equal(t, testPCM, pcm)
		})
	}
}

// TestReadWAVPadOutsideRIFFSize: a writer that pads an odd last chunk but
// leaves the pad byte out of the RIFF size is read, as is one that omits
// the pad byte altogether; both leave an odd RIFF size.
func TestReadWAVPadOutsideRIFFSize(t *testing.T) {
	f := riffFile(fmtChunk(wavFormatPCM, 1, 8000, 16), dataChunk(testPCM), chunk{"LIST", []byte("abc")})
	binary.LittleEndian.PutUint32(f[4:], uint32(len(f)-9))
	for _, file := range [][]byte{f, f[:len(f)-1]} {
		pcm, rate, err := ReadWAV(bytes.NewReader(file))
		require.NoError(t, err)
		require.Equal(t, 8000, rate)
		require.Equal(t, testPCM, pcm)
	}
}

func TestReadWAVTooLarge(t *testing.T) {
	big := make([]byte, maxWAVBytes+1)
	copy(big, encodeWAV(testPCM, 8000))
	_, _, err := ReadWAV(bytes.NewReader(big))
	require.ErrorIs(t, err, ErrWAVTooLarge)
}

// TestReadWAVFromSox reads what sox writes for the formats an operator is
// likely to export, so the reader is not only checked against its own
// test files: 16-bit mono files are accepted, the rest refused.
func TestReadWAVFromSox(t *testing.T) {
	if _, err := exec.LookPath("sox"); err != nil {
		t.Fatal("sox not installed: run scripts/bootstrap")
	}
	dir := t.TempDir()
	tests := []struct {
		args    []string
		rate    int
		wantErr error
	}{
		{[]string{"-r", "16000", "-c", "1", "-b", "16"}, 16000, nil},
		{[]string{"-r", "48000", "-c", "1", "-b", "16", "-e", "signed-integer"}, 48000, nil},
		{[]string{"-r", "8000", "-c", "2", "-b", "16"}, 0, ErrWAVFormat},
		{[]string{"-r", "8000", "-c", "1", "-b", "24"}, 0, ErrWAVFormat},
		{[]string{"-r", "8000", "-c", "1", "-e", "u-law"}, 0, ErrWAVFormat},
		{[]string{"-r", "22050", "-c", "1", "-b", "16"}, 0, ErrWAVFormat},
	}
	for i, tc := range tests {
		file := filepath.Join(dir, "t.wav")
		args := append([]string{"-n"}, tc.args...)
		args = append(args, file, "synth", "0.1", "sine", "1000")
		out, err := exec.Command("sox", args...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		f, err := os.Open(file)
		require.NoError(t, err)
		pcm, rate, err := ReadWAV(f)
		f.Close()
		if tc.wantErr != nil {
			require.ErrorIs(t, err, tc.wantErr, "case %d", i)
			continue
		}
		require.NoError(t, err, "case %d", i)
		require.Equal(t, tc.rate, rate)
		require.Len(t, pcm, tc.rate/10)
	}
}

// FuzzReadWAV: whatever the bytes, ReadWAV returns samples at an allowed
// rate or an error of its own, never panics, and what it accepts it reads
// back identically after re-encoding. Seeds: testdata/fuzz/FuzzReadWAV.
func FuzzReadWAV(f *testing.F) {
	f.Add(encodeWAV(testPCM, 8000))
	f.Add(riffFile(extensibleFmt(48000, 16, wavSubformatPCM), chunk{"LIST", []byte("abc")}, dataChunk(testPCM)))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, rate, err := ReadWAV(bytes.NewReader(b))
		if err != nil {
			require.Nil(t, pcm)
			if !errors.Is(err, ErrWAVMalformed) && !errors.Is(err, ErrWAVFormat) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		require.Contains(t, []int{8000, 16000, 48000}, rate)
		again, rate2, err := ReadWAV(bytes.NewReader(encodeWAV(pcm, rate)))
		require.NoError(t, err)
		require.Equal(t, rate, rate2)
		require.Equal(t, len(pcm), len(again))
		require.Equal(t, pcm, again)
	})
}
