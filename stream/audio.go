package stream

import (
	"context"
	"time"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

// MixSource is where an egress reads its room's full mix: a
// *room.MixConsumer (Room.SubscribeMix with RecommendedMixBuffer frames)
// or a test's stand-in. Read returns io.EOF when the room has closed; the
// egress then ends. The audio timeline follows MixFrame.Time (when the
// room mixed the frame; the time of reading if zero), not the order of
// reads, so frames held up in the ring keep their place against the
// video.
type MixSource interface {
	Read(ctx context.Context, dst *room.MixFrame) error
	Close()
}

var _ MixSource = (*room.MixConsumer)(nil)

const (
	// aacDelaySamples is libvo-aacenc's delay: its output starts with
	// this many samples of priming before the first input sample
	// (measured by TestAACDelay). FLV has no field for it, so the
	// timestamps are moved back by it and the audio plays in sync.
	aacDelaySamples = 1600
	// maxDrift is how far the audio timeline may stray from the mix's
	// own clock (MixFrame.Time) before it is pulled back: the room's
	// ticks jitter by a few ms, a gap of dropped frames is 20 ms or more.
	maxDrift = 60 * time.Millisecond
	// maxSilenceFill is the longest gap filled with silence; a longer one
	// (a stalled room) moves the timeline instead of encoding seconds of
	// nothing in a burst.
	maxSilenceFill = 50
)

// audioPipe turns mix frames into AAC tags. One goroutine (runAudio) uses
// it.
type audioPipe struct {
	e        *Egress
	enc      *media.AACEncoder
	channels int
	pcm      []int16 // one AAC frame, interleaved
	n        int     // samples per channel in pcm
	out      [media.AACMaxPayload]byte
	silence  media.Frame

	anchored bool
	anchor   time.Duration // timeline position of the first sample fed
	fed      int64         // samples per channel fed since anchor
	frames   int64         // AAC frames made since anchor
}

func newAudioPipe(e *Egress, bitrate, channels int) (*audioPipe, error) {
	enc, err := media.NewAACEncoder(media.Rate48k, channels, bitrate)
	if err != nil {
		return nil, err
	}
	return &audioPipe{e: e, enc: enc, channels: channels, pcm: make([]int16, media.AACFrameSamples*channels)}, nil
}

// header returns the AAC sequence header tag body.
func (a *audioPipe) header() []byte { return appendAudioHeader(nil, a.enc.AudioSpecificConfig()) }

// samplesDur is the duration of n samples at 48 kHz.
func samplesDur(n int64) time.Duration {
	return time.Duration(n) * time.Second / media.Rate48k
}

// push takes one mix frame. The audio timeline is the sample count; it
// follows the frames' Time: a gap (dropped or missing ticks) is filled
// with silence, a longer one moves the timeline, and frames that come
// faster than their clock are dropped.
func (a *audioPipe) push(f *room.MixFrame) error {
	when := f.Time
	if when.IsZero() { // a source without a clock: the frame is now
		when = a.e.now()
	}
	at := when.Sub(a.e.zero)
	if !a.anchored {
		a.anchored, a.anchor, a.fed, a.frames = true, at, 0, 0
	}
	drift := at - (a.anchor + samplesDur(a.fed))
	switch {
	case drift > maxDrift:
		gap := int(drift / media.FrameDuration)
		if gap > maxSilenceFill {
			a.anchor += drift // skip: the timestamps jump
			break
		}
		for range gap {
			if err := a.feed(&a.silence); err != nil {
				return err
			}
		}
	case drift < -maxDrift:
		return nil // ahead of the clock: drop
	}
	return a.feed(&f.PCM)
}

// feed adds 20 ms of PCM and encodes every full AAC frame.
func (a *audioPipe) feed(pcm *media.Frame) error {
	a.fed += media.FrameSamples
	for i := 0; i < len(pcm); {
		k := min(len(pcm)-i, media.AACFrameSamples-a.n)
		if a.channels == 1 {
			copy(a.pcm[a.n:], pcm[i:i+k])
		} else {
			for j, s := range pcm[i : i+k] {
				a.pcm[2*(a.n+j)], a.pcm[2*(a.n+j)+1] = s, s
			}
		}
		a.n += k
		i += k
		if a.n == media.AACFrameSamples {
			a.n = 0
			if err := a.encode(); err != nil {
				return err
			}
		}
	}
	return nil
}

// encode encodes the full frame in pcm and publishes it, timestamped by
// the first sample it holds (less the encoder's priming).
func (a *audioPipe) encode() error {
	n, err := a.enc.Encode(a.pcm, a.out[:])
	if err != nil {
		return err
	}
	ts := a.anchor + samplesDur(a.frames*media.AACFrameSamples-aacDelaySamples)
	a.frames++
	if n == 0 {
		return nil
	}
	t := a.e.fan.get(typeAudio, ts.Round(time.Millisecond).Milliseconds())
	t.data = appendAudioFrame(t.data)
	t.data = append(t.data, a.out[:n]...)
	a.e.fan.publish(t)
	return nil
}

// close frees the encoder.
func (a *audioPipe) close() { _ = a.enc.Close() }
