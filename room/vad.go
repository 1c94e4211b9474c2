package room

import (
	"math"

	"github.com/mediagate/mediagate/media"
)

// Voice activity inside the room: an energy detector with hangover. media
// has no level meter or VAD yet (media/level.go is being written); this one
// is small, unexported and easy to swap for media's once it lands.

// silentLevel is the RFC 6464 level of digital silence: -127 dBov.
const silentLevel = 127

// frameLevel returns the level of f as RFC 6464 §3 expresses it: -dBov,
// 0 (a full-scale square wave) to 127 (silence). A full-scale sine is 3.
// It allocates nothing.
func frameLevel(f *media.Frame) uint8 {
	var sum int64
	for _, s := range f {
		v := int64(s)
		sum += v * v
	}
	if sum == 0 {
		return silentLevel
	}
	ms := float64(sum) / (float64(len(f)) * 32768 * 32768)
	db := -10 * math.Log10(ms)
	if db >= silentLevel {
		return silentLevel
	}
	return uint8(math.Max(0, math.Round(db)))
}

// vad decides whether a participant is speaking from its frame levels. Speech
// starts on the first frame louder than the threshold (no onset is clipped
// beyond the frame that carries it) and ends after hangover quiet frames, so
// the pauses between words do not cut the voice in and out of the mix.
type vad struct {
	threshold uint8 // level (-dBov) at or below which a frame is voice
	hangover  int   // quiet frames before speech ends
	quiet     int   // quiet frames seen since the last voiced one
	active    bool
}

// update feeds one frame's level and returns whether the participant is
// speaking.
func (v *vad) update(level uint8) bool {
	if level <= v.threshold {
		v.active, v.quiet = true, 0
		return true
	}
	if v.active {
		v.quiet++
		if v.quiet > v.hangover {
			v.active = false
		}
	}
	return v.active
}
