package room

import "math"

// Voice activity inside the room: an energy detector with hangover, per
// 20 ms frame at whatever rate the frame comes in (a phone's 8 kHz frame
// is measured before it is resampled). media.VAD, with its adaptive noise
// floor, is for a single stream; the room's decision is simpler on
// purpose: the loudest voices win, and a fixed threshold is predictable.

// silentLevel is the RFC 6464 level of digital silence: -127 dBov.
const silentLevel = 127

// frameLevel returns the level of f as RFC 6464 §3 expresses it: -dBov,
// 0 (a full-scale square wave) to 127 (silence). A full-scale sine is 3.
// It allocates nothing.
func frameLevel(f []int16) uint8 {
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
