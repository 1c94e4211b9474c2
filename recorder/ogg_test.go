package recorder

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

func TestOggCRC(t *testing.T) {
	// The Ogg CRC is CRC-32/CKSUM (poly 0x04c11db7, init 0, not
	// reflected) without the final inversion: check value 0x765e7680 ^
	// 0xffffffff for "123456789".
	require.Equal(t, uint32(0x765e7680^0xffffffff), oggCRC(0, []byte("123456789")))
}

// writeOgg encodes pcm (whole 20 ms frames) into an Ogg/Opus file through
// oggWriter and returns the writer and the number of fsyncs. After every
// packet it checks that the file holds every complete page (nothing
// buffered) and that at most a page's worth of packets is pending.
func writeOgg(t *testing.T, path string, pcm []int16) (*oggWriter, int) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	syncs := 0
	w := newOggWriter(f, func() error { syncs++; return f.Sync() }, sha256.New(), 0x6d67, opusPreSkip(false))
	require.NoError(t, w.WriteHeaders(vendor))
	enc, err := media.NewOpusEncoder()
	require.NoError(t, err)
	defer enc.Close()
	pkt := make([]byte, media.MaxOpusPayload)
	for i := 0; i+media.FrameSamples <= len(pcm); i += media.FrameSamples {
		n, err := enc.Encode(pcm[i:i+media.FrameSamples], pkt)
		require.NoError(t, err)
		_, err = w.WritePacket(pkt[:n])
		require.NoError(t, err)
		st, err := f.Stat()
		require.NoError(t, err)
		require.Equal(t, w.written, st.Size(), "complete pages are on disk at once")
		require.LessOrEqual(t, w.packets, packetsPerPage, "at most one second pending")
	}
	require.NoError(t, w.Close())
	return w, syncs
}

// oggPages lists a file's pages as (flags, granule, packets).
type pageInfo struct {
	flags   byte
	granule uint64
	packets int
}

func oggPages(t *testing.T, path string) []pageInfo {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	br := bufio.NewReader(f)
	var out []pageInfo
	buf := make([]byte, 0, maxPageLen)
	for {
		p, err := readPage(br, buf)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		packets := 0
		for _, l := range p[pageHeaderLen : pageHeaderLen+int(p[26])] {
			if l < 255 {
				packets++
			}
		}
		out = append(out, pageInfo{p[5], binary.LittleEndian.Uint64(p[6:]), packets})
	}
}

func TestOggWriterPlaysInFFmpeg(t *testing.T) {
	const frames = 157 // 3.14 s: three full pages and a partial one
	tone := &mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}
	src := make([]int16, frames*media.FrameSamples)
	tone.Fill(src)
	path := filepath.Join(t.TempDir(), "tone.opus")
	w, syncs := writeOgg(t, path, src)

	pages := oggPages(t, path)
	require.Len(t, pages, 2+4)
	require.Equal(t, pageInfo{flagBOS, 0, 1}, pages[0], "OpusHead alone on a BOS page")
	require.Equal(t, pageInfo{0, 0, 1}, pages[1], "OpusTags alone on its page")
	for i, p := range pages[2:] {
		require.LessOrEqual(t, p.packets, packetsPerPage)
		want := uint64(min((i+1)*packetsPerPage, frames)) * samplesPerPacket
		require.Equal(t, want, p.granule, "page %d granule: 48 kHz samples so far", i+2)
	}
	require.Equal(t, byte(flagEOS), pages[len(pages)-1].flags)
	require.Equal(t, len(pages), syncs, "one fsync per page")

	// pion's reader checks every CRC and the OpusHead independently.
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	rd, head, err := oggreader.NewWith(f)
	require.NoError(t, err)
	require.Equal(t, uint8(1), head.Channels)
	require.Equal(t, uint16(312), head.PreSkip)
	require.Equal(t, uint32(48000), head.SampleRate)
	n := 1
	for ; ; n++ {
		_, _, err := rd.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "page %d", n)
	}
	require.Equal(t, len(pages), n)

	sum, size := fileSHA(t, path)
	require.Equal(t, hex.EncodeToString(w.sum.Sum(nil)), sum, "running hash covers the file")
	require.Equal(t, w.written, size)

	p := probe(t, path)
	require.Equal(t, probeResult{Codec: "opus", SampleRate: 48000, Channels: 1, Duration: p.Duration}, p)
	require.InDelta(t, frames*0.02, p.Duration, 0.05)
	// ffprobe counts the pre-skip into the duration (6.5 ms); we do not.
	require.InDelta(t, w.Duration()+312.0/48000, p.Duration, 0.001)

	got := mediatest.FFmpegDecode(t, path)
	require.InDelta(t, frames*media.FrameSamples-312, len(got), media.FrameSamples)
	mid := got[media.Rate48k/2 : 5*media.Rate48k/2]
	require.InDelta(t, -6.0, mediatest.ToneDB(mid, 1000, media.Rate48k), 1.5, "tone level")
	require.Less(t, mediatest.ToneDB(mid, 3000, media.Rate48k), -40.0, "nothing but the tone")
	// got lines up with src (TestOggPreSkipAlignment); search ±10 ms.
	_, corr := mediatest.BestLag(src[media.Rate48k/2:media.Rate48k], got[media.Rate48k/2-480:], 960)
	require.GreaterOrEqual(t, corr, 0.9)
}

// TestOggPreSkipAlignment checks opusPreSkip against libopus's real
// look-ahead: with the right pre-skip, ffmpeg's decoded speech lines up
// with the input to the sample.
func TestOggPreSkipAlignment(t *testing.T) {
	speech := mediatest.Speech(t, media.Rate48k, 3)
	path := filepath.Join(t.TempDir(), "speech.opus")
	writeOgg(t, path, speech)
	got := mediatest.FFmpegDecode(t, path)
	const offset = 2400 // look for the match around 50 ms into got
	lag, corr := mediatest.BestLag(speech[offset:offset+media.Rate48k], got, 2*offset)
	require.GreaterOrEqual(t, corr, 0.8, "decoded speech resembles the input")
	require.InDelta(t, offset, lag, 2, "pre-skip matches the encoder's look-ahead")
}

func TestOggLongPacketsSplitPages(t *testing.T) {
	// Packets of 1000 bytes take 4 segments each: a page holds at most 63
	// of them by segments, so pages close at 50 packets still; packets of
	// 1275 bytes (6 segments) close pages at 42.
	for _, size := range []int{1000, 1275} {
		var buf bytes.Buffer
		w := newOggWriter(&buf, nil, sha256.New(), 1, 312)
		require.NoError(t, w.WriteHeaders(vendor))
		pkt := bytes.Repeat([]byte{0xfc}, size)
		for range 100 {
			_, err := w.WritePacket(pkt)
			require.NoError(t, err)
		}
		require.NoError(t, w.Close())
		s, err := scanOgg(bytes.NewReader(buf.Bytes()))
		require.NoError(t, err)
		require.Equal(t, int64(buf.Len()), s.end)
		require.Equal(t, uint64(100*samplesPerPacket), s.granule)
		wantPages := 2 + int(math.Ceil(100/math.Min(50, float64(255/(size/255+1)))))
		require.Equal(t, wantPages, s.pages, "size %d", size)
	}
	_, err := newOggWriter(io.Discard, nil, sha256.New(), 1, 312).WritePacket(nil)
	require.Error(t, err, "an empty packet is not an Opus packet (RFC 6716 §3.4)")
}
