package media

// Encoder turns one 20 ms frame of PCM at its own sample rate into a payload.
// An Encoder keeps state between frames and is not safe for concurrent use.
type Encoder interface {
	// Rate is the PCM sample rate the encoder takes (Hz).
	Rate() int
	// Encode encodes pcm, which holds SamplesPerFrame(Rate()) samples, into
	// dst and returns the payload length.
	Encode(pcm []int16, dst []byte) (int, error)
	// Close releases the encoder's resources; it is safe to call twice.
	Close() error
}

// Decoder turns payloads back into PCM at its own sample rate and conceals
// lost frames. A Decoder keeps state between frames and is not safe for
// concurrent use.
type Decoder interface {
	// Rate is the PCM sample rate the decoder produces (Hz).
	Rate() int
	// Decode decodes one payload into pcm and returns the number of samples
	// written.
	Decode(payload []byte, pcm []int16) (int, error)
	// Conceal fills pcm with one frame standing in for a lost packet and
	// returns the number of samples written. next, when not nil, is the
	// payload of the packet after the lost one: codecs with in-band forward
	// error correction (Opus) recover the lost frame from it; the others
	// ignore it and fade out what they played last.
	Conceal(next []byte, pcm []int16) (int, error)
	// Close releases the decoder's resources; it is safe to call twice.
	Close() error
}
