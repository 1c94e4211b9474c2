package sip

import (
	"fmt"
	"strings"

	"github.com/mediagate/mediagate/media"
)

// Codec names as SDP spells them in a=rtpmap (RFC 3551 §6, RFC 7587 §7) and
// as room.Codec spells them, so the bridge maps one to the other by name.
const (
	CodecPCMU = "PCMU"
	CodecPCMA = "PCMA"
	CodecG722 = "G722"
	CodecOpus = "opus"
)

// DefaultCodecs is the default preference order (sip.codecs). G.722 first:
// wideband, cheap to encode, and offered by HD-voice phones and trunks; then
// the two G.711 laws every carrier offers, A-law before µ-law as ITU-T's
// international default (µ-law trunks offer PCMU alone and get it anyway);
// Opus last because its encoder costs ten times G.722's (decision 2) and
// carriers rarely offer it — softphone-heavy deployments move it up.
var DefaultCodecs = []string{CodecG722, CodecPCMA, CodecPCMU, CodecOpus}

// Codec is the audio encoding negotiated for a call: what the bridge needs
// to pick the room.Format of the caller's mix and to resample what
// Call.ReadFrame returns.
type Codec struct {
	// Name is CodecPCMU, CodecPCMA, CodecG722 or CodecOpus.
	Name string
	// PayloadType is the RTP payload type the peer uses for it.
	PayloadType uint8
	// ClockRate is the RTP timestamp rate: 8000 for G.722 too, for
	// historical reasons (RFC 3551 §4.5.2), 48000 for Opus (RFC 7587 §4.1).
	ClockRate int
	// Channels is the rtpmap channel count (2 for Opus, which is always
	// signalled as stereo, RFC 7587 §7; mediagate decodes it as mono).
	Channels int
	// SampleRate is the PCM rate of the codec: what ReadFrame returns and
	// what the payloads given to WriteAudio must encode (8000, 16000, 48000).
	SampleRate int
	// FEC is set for Opus when the peer asked for in-band FEC
	// (useinbandfec=1, RFC 7587 §6.1): encode the caller's mix with FEC.
	FEC bool
}

// FrameTS is the RTP timestamp step of one 20 ms frame.
func (c Codec) FrameTS() uint32 { return uint32(c.ClockRate / 50) }

// String describes the codec for logs ("PCMA/8000 pt 8").
func (c Codec) String() string {
	return fmt.Sprintf("%s/%d pt %d", c.Name, c.ClockRate, c.PayloadType)
}

// known lists the codecs mediagate carries with their static (or our
// preferred dynamic) payload types.
var known = []Codec{
	{Name: CodecPCMU, PayloadType: 0, ClockRate: 8000, Channels: 1, SampleRate: media.Rate8k},
	{Name: CodecPCMA, PayloadType: 8, ClockRate: 8000, Channels: 1, SampleRate: media.Rate8k},
	{Name: CodecG722, PayloadType: 9, ClockRate: 8000, Channels: 1, SampleRate: media.Rate16k},
	{Name: CodecOpus, PayloadType: 111, ClockRate: 48000, Channels: 2, SampleRate: media.Rate48k},
}

// Payload types of telephone-event in our own offers (RFC 4733 §7.1.1): one
// per clock rate, since the event clock must match the audio's.
const (
	tePT8k  = 101
	tePT48k = 110
)

// lookupCodec finds a known codec by name, case-insensitively.
func lookupCodec(name string) (Codec, bool) {
	for _, c := range known {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return Codec{}, false
}

// ParseCodecs checks a preference list (sip.codecs) and returns it with
// canonical spellings. Names are case-insensitive; unknown or repeated
// names are an error wrapping ErrUnknownCodec, and so is an empty list.
func ParseCodecs(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: empty list", ErrUnknownCodec)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		c, ok := lookupCodec(strings.TrimSpace(n))
		if !ok {
			return nil, fmt.Errorf("%w: %q (want %s)", ErrUnknownCodec, n, strings.Join(DefaultCodecs, ", "))
		}
		for _, o := range out {
			if o == c.Name {
				return nil, fmt.Errorf("%w: %q named twice", ErrUnknownCodec, n)
			}
		}
		out = append(out, c.Name)
	}
	return out, nil
}

// newDecoder returns media's decoder for c.
func newDecoder(c Codec) (media.Decoder, error) {
	switch c.Name {
	case CodecPCMU:
		return media.NewPCMUDecoder(), nil
	case CodecPCMA:
		return media.NewPCMADecoder(), nil
	case CodecG722:
		return media.NewG722Decoder(), nil
	case CodecOpus:
		return media.NewOpusDecoder(media.WithOpusRate(media.Rate48k))
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownCodec, c.Name)
}
