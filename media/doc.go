// Package media holds the audio primitives every other part of mediagate is
// built from: the 20 ms frame, codecs, resampling, jitter buffering, DTMF and
// voice activity. It imports nothing of mediagate's own.
package media
