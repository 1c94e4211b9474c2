package media

import (
	"errors"
	"fmt"

	"gopkg.in/hraban/opus.v2"
)

// Opus (RFC 6716, RTP payload RFC 7587) through libopus, mono, 20 ms frames.
// The PCM side runs at the mixer's 48 kHz unless WithOpusRate says otherwise.

// MaxOpusPayload is the largest packet one Opus frame can produce (RFC 6716
// §3.2.1: at most 1275 bytes of compressed data). A dst of this size never
// fails; smaller ones work while the bitrate keeps packets small but may
// return ErrCodecShortBuffer.
const MaxOpusPayload = 1275

// OpusApplication selects libopus's tuning, which trades latency and
// intelligibility against fidelity.
type OpusApplication int

const (
	// OpusVoIP favours speech intelligibility (SILK/hybrid modes, 6.5 ms
	// look-ahead); the default for calls and rooms.
	OpusVoIP OpusApplication = iota
	// OpusAudio favours fidelity to the input, for music on hold or a room
	// relayed to a stream.
	OpusAudio
	// OpusRestrictedLowDelay uses CELT only: 2.5 ms look-ahead and about a
	// third of VoIP's encode cost, but no in-band FEC (it lives in SILK).
	OpusRestrictedLowDelay
)

// OpusConfig is what an Opus encoder is set up with. Fill it from
// configuration and pass it with WithOpusConfig, or set single fields with
// the other options; DefaultOpusConfig holds the defaults.
type OpusConfig struct {
	// Rate is the PCM sample rate: 8000, 12000, 16000, 24000 or 48000 Hz.
	Rate int
	// Application is libopus's tuning.
	Application OpusApplication
	// Complexity is 0 (cheapest) to 10 (best quality per bit).
	Complexity int
	// Bitrate is the target in bits/s (500 to 512000); 0 lets libopus
	// choose from rate and channels.
	Bitrate int
	// DTX stops sending audio during silence: the encoder then returns
	// payloads of 1 or 2 bytes (a table-of-contents byte, no audio) with a
	// comfort-noise update every 400 ms. Packetisers may skip sending them;
	// decoders turn them into comfort noise.
	DTX bool
	// FEC adds a low-bitrate copy of the previous frame to each packet
	// (SILK LBRR, RFC 6716 §2.1.7) so a receiver can rebuild one lost frame
	// from the next packet with Conceal.
	FEC bool
	// PacketLossPerc (0..100) is the loss the encoder expects; with FEC it
	// sets how many bits the redundancy gets.
	PacketLossPerc int
}

// DefaultOpusConfig returns the defaults: 48 kHz VoIP at 32 kbit/s,
// complexity 5 (about half the CPU of complexity 10, ~145 µs against
// ~310 µs per frame of speech, for a little quality per bit), no DTX, no FEC
// (switched on where the peer negotiates it).
func DefaultOpusConfig() OpusConfig {
	return OpusConfig{Rate: Rate48k, Application: OpusVoIP, Complexity: 5, Bitrate: 32000}
}

// OpusOption changes one setting of an Opus encoder or decoder.
type OpusOption func(*OpusConfig)

// WithOpusConfig replaces the whole configuration, for settings read from a
// file; start from DefaultOpusConfig.
func WithOpusConfig(c OpusConfig) OpusOption { return func(o *OpusConfig) { *o = c } }

// WithOpusRate sets the PCM sample rate, for peers that are not mixed at
// 48 kHz. Decoders take this option too.
func WithOpusRate(rate int) OpusOption { return func(o *OpusConfig) { o.Rate = rate } }

// WithOpusApplication sets libopus's tuning.
func WithOpusApplication(app OpusApplication) OpusOption {
	return func(o *OpusConfig) { o.Application = app }
}

// WithOpusComplexity sets the complexity, 0 to 10.
func WithOpusComplexity(c int) OpusOption { return func(o *OpusConfig) { o.Complexity = c } }

// WithOpusBitrate sets the target bitrate in bits/s (0: libopus decides).
func WithOpusBitrate(bps int) OpusOption { return func(o *OpusConfig) { o.Bitrate = bps } }

// WithOpusDTX switches discontinuous transmission on or off.
func WithOpusDTX(on bool) OpusOption { return func(o *OpusConfig) { o.DTX = on } }

// WithOpusFEC switches in-band FEC on, sized for lossPerc percent loss, as
// negotiated with useinbandfec=1 (RFC 7587 §6.1).
func WithOpusFEC(lossPerc int) OpusOption {
	return func(o *OpusConfig) { o.FEC, o.PacketLossPerc = true, lossPerc }
}

// Validate reports the first setting libopus would reject, as an
// ErrCodecConfig; NewOpusEncoder and NewOpusDecoder refuse such a
// configuration with it.
func (c OpusConfig) Validate() error {
	switch {
	case c.Rate != 8000 && c.Rate != 12000 && c.Rate != 16000 && c.Rate != 24000 && c.Rate != 48000:
		return fmt.Errorf("%w: opus rate %d Hz", ErrCodecConfig, c.Rate)
	case c.Application < OpusVoIP || c.Application > OpusRestrictedLowDelay:
		return fmt.Errorf("%w: opus application %d", ErrCodecConfig, c.Application)
	case c.Complexity < 0 || c.Complexity > 10:
		return fmt.Errorf("%w: opus complexity %d, want 0..10", ErrCodecConfig, c.Complexity)
	case c.Bitrate != 0 && (c.Bitrate < 500 || c.Bitrate > 512000):
		return fmt.Errorf("%w: opus bitrate %d, want 500..512000 or 0", ErrCodecConfig, c.Bitrate)
	case c.PacketLossPerc < 0 || c.PacketLossPerc > 100:
		return fmt.Errorf("%w: opus packet loss %d %%, want 0..100", ErrCodecConfig, c.PacketLossPerc)
	}
	return nil
}

// String is the application's name in configuration: voip, audio or
// lowdelay.
func (a OpusApplication) String() string {
	switch a {
	case OpusVoIP:
		return "voip"
	case OpusAudio:
		return "audio"
	case OpusRestrictedLowDelay:
		return "lowdelay"
	}
	return fmt.Sprintf("OpusApplication(%d)", int(a))
}

// ParseOpusApplication is the application named s (see String).
func ParseOpusApplication(s string) (OpusApplication, error) {
	for _, a := range []OpusApplication{OpusVoIP, OpusAudio, OpusRestrictedLowDelay} {
		if a.String() == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: opus application %q, want voip, audio or lowdelay", ErrCodecConfig, s)
}

func (a OpusApplication) libopus() opus.Application {
	switch a {
	case OpusAudio:
		return opus.AppAudio
	case OpusRestrictedLowDelay:
		return opus.AppRestrictedLowdelay
	default:
		return opus.AppVoIP
	}
}

// opusErr wraps a libopus error for op, mapping a too-small buffer to
// ErrCodecShortBuffer.
func opusErr(op string, err error) error {
	if errors.Is(err, opus.ErrBufferTooSmall) {
		return fmt.Errorf("opus %s: %w: %w", op, ErrCodecShortBuffer, err)
	}
	return fmt.Errorf("opus %s: %w: %w", op, ErrCodecFailed, err)
}

// OpusEncoder is a mono Opus Encoder. Encode allocates nothing.
type OpusEncoder struct {
	enc   *opus.Encoder // nil once closed
	cfg   OpusConfig
	frame int
}

var _ Encoder = (*OpusEncoder)(nil)

// NewOpusEncoder returns a mono encoder configured by DefaultOpusConfig and
// then opts.
func NewOpusEncoder(opts ...OpusOption) (*OpusEncoder, error) {
	cfg := DefaultOpusConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	enc, err := opus.NewEncoder(cfg.Rate, 1, cfg.Application.libopus())
	if err != nil {
		return nil, opusErr("new encoder", err)
	}
	bitrate := enc.SetBitrateToAuto
	if cfg.Bitrate != 0 {
		bitrate = func() error { return enc.SetBitrate(cfg.Bitrate) }
	}
	for _, set := range []func() error{
		bitrate,
		func() error { return enc.SetComplexity(cfg.Complexity) },
		func() error { return enc.SetDTX(cfg.DTX) },
		func() error { return enc.SetInBandFEC(cfg.FEC) },
		func() error { return enc.SetPacketLossPerc(cfg.PacketLossPerc) },
	} {
		if err := set(); err != nil {
			return nil, opusErr("configure", err)
		}
	}
	return &OpusEncoder{enc: enc, cfg: cfg, frame: SamplesPerFrame(cfg.Rate)}, nil
}

// Config returns the settings the encoder was built with.
func (e *OpusEncoder) Config() OpusConfig { return e.cfg }

// Rate is the PCM sample rate the encoder takes.
func (e *OpusEncoder) Rate() int { return e.cfg.Rate }

// Encode encodes one 20 ms frame into dst, which should hold MaxOpusPayload
// bytes. With DTX on, silent frames come back as 1- or 2-byte payloads.
func (e *OpusEncoder) Encode(pcm []int16, dst []byte) (int, error) {
	switch {
	case e.enc == nil:
		return 0, ErrCodecClosed
	case len(pcm) != e.frame:
		return 0, ErrCodecFrameSize
	case len(dst) == 0:
		return 0, ErrCodecShortBuffer
	}
	// The binding hands cap(dst) to libopus; cap it at len so nothing is
	// written past what the caller offered.
	n, err := e.enc.Encode(pcm, dst[:len(dst):len(dst)])
	if err != nil {
		return 0, opusErr("encode", err)
	}
	return n, nil
}

// Close drops the encoder; it is safe to call twice.
func (e *OpusEncoder) Close() error {
	e.enc = nil
	return nil
}

// OpusDecoder is a mono Opus Decoder with libopus's loss concealment (PLC)
// and in-band FEC recovery.
type OpusDecoder struct {
	dec   *opus.Decoder // nil once closed
	rate  int
	frame int
}

var _ Decoder = (*OpusDecoder)(nil)

// NewOpusDecoder returns a mono decoder; of the options only the rate
// matters (48 kHz by default). Any Opus packet decodes at any rate.
func NewOpusDecoder(opts ...OpusOption) (*OpusDecoder, error) {
	cfg := DefaultOpusConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dec, err := opus.NewDecoder(cfg.Rate, 1)
	if err != nil {
		return nil, opusErr("new decoder", err)
	}
	return &OpusDecoder{dec: dec, rate: cfg.Rate, frame: SamplesPerFrame(cfg.Rate)}, nil
}

// Rate is the PCM sample rate the decoder produces.
func (d *OpusDecoder) Rate() int { return d.rate }

// Decode decodes one packet into pcm and returns its samples (a packet may
// hold more than 20 ms if the peer chose a longer ptime; pcm must fit it).
// An empty payload is treated as a lost packet: RFC 6716 §3.4 [R1] requires
// at least one byte.
func (d *OpusDecoder) Decode(payload []byte, pcm []int16) (int, error) {
	if d.dec == nil {
		return 0, ErrCodecClosed
	}
	if len(payload) == 0 {
		return d.Conceal(nil, pcm)
	}
	if len(pcm) < d.frame {
		return 0, ErrCodecShortBuffer
	}
	// The binding takes cap(pcm) as the room libopus may fill.
	n, err := d.dec.Decode(payload, pcm[:len(pcm):len(pcm)])
	if err != nil {
		return 0, opusErr("decode", err)
	}
	return n, nil
}

// Conceal writes one 20 ms frame for a lost packet. With next == nil it is
// libopus PLC, which extrapolates from the past and fades out over a few
// frames. With next, the packet after the lost one, it decodes next's FEC
// data (RFC 6716 §4.2.5) and so recovers the lost frame itself, falling back
// to PLC when next carries none; the caller still decodes next normally
// afterwards.
func (d *OpusDecoder) Conceal(next []byte, pcm []int16) (int, error) {
	if d.dec == nil {
		return 0, ErrCodecClosed
	}
	if len(pcm) < d.frame {
		return 0, ErrCodecShortBuffer
	}
	out := pcm[:d.frame:d.frame] // libopus needs exactly the missing duration
	var err error
	if len(next) > 0 {
		err = d.dec.DecodeFEC(next, out)
	} else {
		err = d.dec.DecodePLC(out)
	}
	if err != nil {
		return 0, opusErr("conceal", err)
	}
	return d.frame, nil
}

// Reset forgets the decoder's state (OPUS_RESET_STATE by way of
// opus_decoder_init), for a stream taken up again after packets it skipped.
func (d *OpusDecoder) Reset() error {
	if d.dec == nil {
		return ErrCodecClosed
	}
	if err := d.dec.Init(d.rate, 1); err != nil {
		return opusErr("reset", err)
	}
	return nil
}

// Close drops the decoder; it is safe to call twice.
func (d *OpusDecoder) Close() error {
	d.dec = nil
	return nil
}
