package stream

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
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

// TestAudioTimeline: AAC tags follow the frames' clock: 1024 samples
// apart, moved back by the encoder's delay; a gap of a few ticks is filled
// with silence (no jump), a long one moves the timeline, frames ahead of
// their clock are dropped.
func TestAudioTimeline(t *testing.T) {
	e, q := benchEgress(t)
	t0 := e.zero.Add(time.Second)
	var f room.MixFrame
	tone := mediatest.Tone{Freq: 440, Amp: 0.3, Rate: media.Rate48k}
	var ts []int64
	feed := func(at time.Time) {
		tone.Fill(f.PCM[:])
		f.Time = at
		require.NoError(t, e.audio.push(&f))
		for tg, _ := q.pop(); tg != nil; tg, _ = q.pop() {
			require.Equal(t, typeAudio, tg.typ)
			ts = append(ts, tg.ts)
			tg.release()
		}
	}
	tick := func(i int) time.Time { return t0.Add(time.Duration(i) * media.FrameDuration) }
	for i := range 100 {
		feed(tick(i))
	}
	require.Len(t, ts, 100*960/1024)
	require.Equal(t, (time.Second - samplesDur(aacDelaySamples)).Round(time.Millisecond).Milliseconds(), ts[0])
	for i := 1; i < len(ts); i++ {
		require.InDelta(t, 21.33, float64(ts[i]-ts[i-1]), 1)
	}

	n := len(ts)
	feed(tick(110)) // 10 ticks lost: filled
	require.Equal(t, 111*960/1024-n, len(ts)-n)
	for i := n; i < len(ts); i++ {
		require.InDelta(t, 21.33, float64(ts[i]-ts[i-1]), 1, "no jump over a short gap")
	}

	for i := 111; i < 120; i++ {
		feed(tick(i))
	}
	n = len(ts)
	feed(tick(300)) // 3.6 s lost: the timeline moves
	for i := 301; i < 310; i++ {
		feed(tick(i))
	}
	require.Greater(t, len(ts), n)
	require.InDelta(t, 3600, float64(ts[len(ts)-1]-ts[n-1]), 250, "jump over a long gap")
	for i := 1; i < len(ts); i++ {
		require.Greater(t, ts[i], ts[i-1], "timestamps go forward")
	}

	n = len(ts)
	for range 20 {
		feed(tick(309)) // the same time again and again: ahead of the clock
	}
	require.LessOrEqual(t, len(ts)-n, 3, "frames ahead of their clock are dropped")
}
