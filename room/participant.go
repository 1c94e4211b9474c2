package room

import (
	"fmt"
	"time"

	"github.com/mediagate/mediagate/media"
)

// ID names a room: the {room} of /r/{room} and /whip/{room}, and what dial
// plans map phone numbers to.
type ID string

// ParticipantID names a participant within a room: a WHIP session ID or a
// SIP Call-ID, chosen by the layer that creates the participant.
type ParticipantID string

// Kind says what sort of peer a participant is, for the participant list
// and the admin page; the mixer treats all kinds alike.
type Kind uint8

const (
	// KindWebRTC is a browser, OBS or pion client joined through WHIP/WHEP.
	KindWebRTC Kind = iota + 1
	// KindPhone is a SIP caller bridged into the room.
	KindPhone
	// KindOther is anything else (a node-to-node link, a prompt player).
	KindOther
)

// String returns the kind as the admin API spells it.
func (k Kind) String() string {
	switch k {
	case KindWebRTC:
		return "webrtc"
	case KindPhone:
		return "phone"
	default:
		return "other"
	}
}

// Codec names the encoding a participant wants its mix in. It is a string so
// that tests and later packages can add codecs through their own
// EncoderFactory without touching this package.
type Codec string

// Codecs the default factory (NewEncoder) builds.
const (
	// CodecOpus is Opus (RFC 6716/7587), the WebRTC codec, at the rate and
	// settings of Format.Opus.
	CodecOpus Codec = "opus"
	// CodecPCMU is G.711 µ-law at 8 kHz (RTP payload type 0).
	CodecPCMU Codec = "PCMU"
	// CodecPCMA is G.711 A-law at 8 kHz (RTP payload type 8).
	CodecPCMA Codec = "PCMA"
	// CodecG722 is G.722 at 16 kHz (RTP payload type 9).
	CodecG722 Codec = "G722"
)

// Format is a participant's output format: the codec and its settings. It is
// comparable on purpose: listeners whose Formats are equal share one encoder
// and receive the same payload (decision 2), so everything that changes the
// encoded bytes must be in it and nothing else may be.
type Format struct {
	// Codec is the encoding.
	Codec Codec
	// Opus holds the encoder settings when Codec is CodecOpus and must be
	// zero otherwise. A zero OpusConfig means media.DefaultOpusConfig().
	Opus media.OpusConfig
}

// OpusFormat returns the Opus format with cfg, for WebRTC participants
// (typically media.DefaultOpusConfig with FEC switched on when the peer
// offered useinbandfec=1).
func OpusFormat(cfg media.OpusConfig) Format { return Format{Codec: CodecOpus, Opus: cfg} }

// Formats of the phone codecs, which have no settings.
var (
	PCMU = Format{Codec: CodecPCMU}
	PCMA = Format{Codec: CodecPCMA}
	G722 = Format{Codec: CodecG722}
)

// normalized returns f with defaults filled in, so that formats meaning the
// same encoding compare equal and share an encoder.
func (f Format) normalized() Format {
	if f.Codec == CodecOpus && f.Opus == (media.OpusConfig{}) {
		f.Opus = media.DefaultOpusConfig()
	}
	if f.Codec != CodecOpus {
		f.Opus = media.OpusConfig{}
	}
	return f
}

// String describes the format for logs.
func (f Format) String() string {
	if f.Codec == CodecOpus {
		o := f.Opus
		return fmt.Sprintf("opus/%d %s c%d %dbps fec=%t dtx=%t", o.Rate, o.Application, o.Complexity, o.Bitrate, o.FEC, o.DTX)
	}
	return string(f.Codec)
}

// EncoderFactory makes a fresh encoder for a Format. The room calls it for
// each shared stream and each participant's own mix-minus stream; tests
// inject one to count encodes or to use a PCM pass-through codec. It returns
// an error for formats it cannot encode, which Join reports as
// ErrUnsupportedFormat. Encoders must take 8, 16 or 48 kHz PCM (the rates
// media.Resampler converts the 48 kHz mix to).
type EncoderFactory func(Format) (media.Encoder, error)

// NewEncoder is the default EncoderFactory: media's Opus, G.711 and G.722
// encoders.
func NewEncoder(f Format) (media.Encoder, error) {
	f = f.normalized()
	switch f.Codec {
	case CodecOpus:
		return media.NewOpusEncoder(media.WithOpusConfig(f.Opus))
	case CodecPCMU:
		return media.NewPCMUEncoder(), nil
	case CodecPCMA:
		return media.NewPCMAEncoder(), nil
	case CodecG722:
		return media.NewG722Encoder(), nil
	}
	return nil, fmt.Errorf("codec %q", f.Codec)
}

// Info describes a participant. The room reads it once, at Join; it stays
// fixed for the participant's stay.
type Info struct {
	// ID is unique within the room.
	ID ParticipantID
	// Name is the display name shown in the participant list (a browser's
	// chosen name, a caller's masked number).
	Name string
	// Kind is the sort of peer.
	Kind Kind
	// Format is the encoding the participant's mix is delivered in.
	Format Format
}

// Packet is one 20 ms frame of a participant's mix, encoded in its Format.
//
// Ownership: Payload is read-only and valid only until WriteMix returns. The
// room reuses the buffer at the next tick, and listeners that share a Format
// all get the very same slice, so a participant must neither modify it nor
// keep it: WriteMix copies it into the participant's own bounded send queue
// (next to the RTP header it needs anyway), or drops it. The race detector
// catches a participant that reads it later.
type Packet struct {
	// Payload is the encoded frame.
	Payload []byte
	// Tick is the room's tick number, one per 20 ms. Consecutive packets
	// have consecutive ticks; the RTP timestamp advances by one frame per
	// tick (RFC 3550 §5.1), whatever the participant did with the packets
	// in between.
	Tick uint64
	// Time is when the room mixed the frame.
	Time time.Time
	// Shared is true when the payload is the room's shared full-mix stream
	// (the participant is a listener) and false when it is the
	// participant's own mix-minus stream. Participants need not care: both
	// are one continuous stream for the same decoder (see the encoder
	// switching notes on Room).
	Shared bool
}

// Participant is one member of a room: a browser through rtc, a phone through
// bridge. The room's mixer calls ReadFrame and WriteMix once per 20 ms tick
// from its own goroutine; neither may block, do I/O or call Close on the
// room (Leave, Mute and the other room methods are fine).
type Participant interface {
	// Info describes the participant; the room reads it once, at Join.
	Info() Info
	// ReadFrame fills dst with the participant's next 20 ms of decoded audio
	// at 48 kHz (from its jitter buffer and decoder, concealing losses) and
	// reports true, or reports false when it has nothing to play (not
	// started, listen-only, buffer empty); the room then takes silence. It
	// must return at once.
	ReadFrame(dst *media.Frame) bool
	// WriteMix hands the participant its encoded mix for this tick. It must
	// return at once: copy the payload into a bounded queue and report true,
	// or report false when the queue is full; the room counts the drop and
	// carries on, so a slow participant never stalls the others.
	WriteMix(pkt Packet) bool
	// Detached tells the participant that the room let go of it: err is nil
	// after the participant's own Leave, ErrParticipantRemoved after Kick,
	// ErrRoomClosed when the room closed, or the reason its encoder failed.
	// It is the last call the room makes on the participant; it must return
	// at once.
	Detached(err error)
}

// NativeReader is a Participant whose voice comes at a lower rate than the
// room mixes at (a phone call in G.711 or G.722). The room then reads the
// frame at the participant's own rate every tick, to measure its level,
// and has it resampled to 48 kHz only in the ticks its voice is mixed:
// most of a room is silent most of the time, and resampling is the
// dearest part of a phone's input. The room looks for the interface once,
// at Join, and calls these instead of ReadFrame.
type NativeReader interface {
	// ReadNative takes the participant's next 20 ms at its own rate and
	// returns them, valid until the next ReadNative, or reports false as
	// ReadFrame does. It must return at once.
	ReadNative() (pcm []int16, ok bool)
	// To48k writes the frame the last ReadNative returned at 48 kHz into
	// dst. Called at most once per ReadNative; a participant whose
	// resampler skipped frames starts it afresh.
	To48k(dst *media.Frame)
}

// Announcer is a Participant that sometimes has audio for its own peer
// alone: a phone caller's prompts and tones after the join ("you are the
// first participant", "this conference is being recorded", the mute
// confirmation). The room looks for the interface once, at Join.
//
// While a participant announces, it gets its own stream (as a speaker
// does), so the listeners sharing its Format keep their shared encode
// (decision 2 of DESIGN.md) and hear nothing of it; the participant hears
// the announcement over its mix, which is lowered by AnnounceDuckDB. It
// stays on its own stream for the encoder hangover afterwards, so it moves
// back to the shared stream only when both carry the same mix.
type Announcer interface {
	Participant
	// Announcement fills dst with this tick's 20 ms of the participant's
	// own audio at 48 kHz and reports true, or reports false when there is
	// none. The mixer calls it once per tick from its goroutine, before
	// encoding; like ReadFrame it must return at once and not allocate.
	Announcement(dst *media.Frame) bool
}

// AnnounceDuckDB is how far the mix is lowered under an announcement:
// 12 dB (a quarter of the amplitude). The prompts sit at about -18 dBFS,
// like speech, so they stay 12 dB above the conversation, where speech is
// understood in babble nearly word for word, while the caller still hears
// that the room is there: replacing the mix would cut off whoever is
// speaking and make a caller wonder whether the line dropped. The notice
// that the conference is recorded must be understood, so the prompt wins.
const AnnounceDuckDB = 12

// announceDuckShift divides the mix by 4, AnnounceDuckDB as a shift.
const announceDuckShift = 2

// overlay adds the announcement ann onto mix lowered by AnnounceDuckDB,
// in place in ann, saturating at full scale.
func overlay(ann, mix []int16) {
	for i, a := range ann[:len(mix)] {
		v := int32(a) + int32(mix[i])>>announceDuckShift
		ann[i] = int16(min(max(v, -32768), 32767))
	}
}
