package media

import "time"

// FrameDuration is the length of one audio frame everywhere in mediagate:
// the mixer ticks, codecs packetise and jitter buffers release in 20 ms steps.
const FrameDuration = 20 * time.Millisecond

// Sample rates mediagate works with. The mixer runs at Rate48k; G.711 needs
// Rate8k and G.722 Rate16k on its PCM side.
const (
	Rate8k  = 8000
	Rate16k = 16000
	Rate48k = 48000
)

// FrameSamples is the number of samples in one 48 kHz frame.
const FrameSamples = Rate48k / 50

// Frame is 20 ms of mono 16-bit PCM at 48 kHz, the unit the mixer adds up.
// It is an array, not a slice, so a frame can be copied and held in a ring
// without allocating.
type Frame [FrameSamples]int16

// SamplesPerFrame returns how many samples 20 ms holds at rate (Hz).
func SamplesPerFrame(rate int) int { return rate / 50 }
