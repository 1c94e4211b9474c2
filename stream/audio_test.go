package stream

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
)

// adts prefixes a raw AAC-LC frame with an ADTS header (ISO 14496-3
// §1.A.2.2) for 48 kHz mono, so ffmpeg can decode a bare frame sequence.
func adts(frame []byte) []byte {
	n := len(frame) + 7
	h := []byte{0xff, 0xf1, 1<<6 | 3<<2, 1<<6 | byte(n>>11), byte(n >> 3), byte(n<<5) | 0x1f, 0xfc}
	return append(h, frame...)
}

// TestAACDelay measures libvo-aacenc's priming delay, which the audio
// timestamps subtract (aacDelaySamples): a click fed at a known sample
// comes out of ffmpeg's decoder that many samples later.
func TestAACDelay(t *testing.T) {
	enc, err := media.NewAACEncoder(media.Rate48k, 1, 128000)
	require.NoError(t, err)
	defer enc.Close()
	const click = 10*1024 + 300
	pcm := make([]int16, 40*1024)
	for i := range 48 { // a 1 ms burst, full scale, alternating
		pcm[click+i] = int16(30000 * (1 - 2*(i%2)))
	}
	var stream []byte
	out := make([]byte, media.AACMaxPayload)
	for f := 0; f < len(pcm)/1024; f++ {
		n, err := enc.Encode(pcm[f*1024:(f+1)*1024], out)
		require.NoError(t, err)
		stream = append(stream, adts(out[:n])...)
	}
	path := filepath.Join(t.TempDir(), "click.aac")
	require.NoError(t, os.WriteFile(path, stream, 0o600))
	raw, err := exec.Command("ffmpeg", "-v", "error", "-f", "aac", "-i", path, "-f", "s16le", "-").Output()
	require.NoError(t, err)
	peak, at := 0, 0
	for i := 0; i+1 < len(raw); i += 2 {
		v := int(int16(binary.LittleEndian.Uint16(raw[i:])))
		if v < 0 {
			v = -v
		}
		if v > peak {
			peak, at = v, i/2
		}
	}
	require.Greater(t, peak, 10000)
	delay := at - click
	t.Logf("vo-aacenc delay: %d samples", delay)
	require.InDelta(t, aacDelaySamples, delay, 64)
}
