package media

import "github.com/gotranspile/g722"

// G.722 (ITU-T G.722) is wideband sub-band ADPCM: 16 kHz PCM, 64 kbit/s, so
// 320 samples become 160 bytes per 20 ms. RFC 3551 §4.5.2: the RTP clock of
// G.722 runs at 8000 Hz although the audio is sampled at 16000 Hz; that is
// the packetiser's concern, the codec here only sees 16 kHz PCM.
//
// The codec is github.com/gotranspile/g722 (a Go translation of spandsp's),
// used in its 64 kbit/s, 16 kHz, unpacked mode. Keep about 0.5 dB of
// headroom: within that of full scale the library's decoder output wraps
// around instead of saturating (int16(xout >> 11) in its g722_decode.go), a
// loud click; the mixer's limiter keeps its output below that.

const (
	g722FrameSamples = Rate16k / 50         // 320 PCM samples per 20 ms
	g722FrameBytes   = g722FrameSamples / 2 // 160 bytes: one byte per two samples at 64 kbit/s
)

// G722Encoder is the G.722 Encoder (RTP payload type 9), the HD voice codec
// of desk phones.
type G722Encoder struct {
	enc *g722.Encoder // nil once closed
}

// G722Decoder is the G.722 Decoder with fade-out concealment (G.722 has no
// loss concealment of its own in this mode).
type G722Decoder struct {
	dec  *g722.Decoder // nil once closed
	fade codecFade
}

var (
	_ Encoder = (*G722Encoder)(nil)
	_ Decoder = (*G722Decoder)(nil)
)

// NewG722Encoder returns a 64 kbit/s G.722 encoder taking 16 kHz PCM.
func NewG722Encoder() *G722Encoder {
	return &G722Encoder{enc: g722.NewEncoder(g722.Rate64000, 0)}
}

// Rate is the 16 kHz PCM rate G.722 encodes.
func (e *G722Encoder) Rate() int { return Rate16k }

// Encode encodes one 20 ms frame (320 samples) into 160 bytes of dst.
func (e *G722Encoder) Encode(pcm []int16, dst []byte) (int, error) {
	switch {
	case e.enc == nil:
		return 0, ErrCodecClosed
	case len(pcm) != g722FrameSamples:
		return 0, ErrCodecFrameSize
	case len(dst) < g722FrameBytes:
		return 0, ErrCodecShortBuffer
	}
	return e.enc.Encode(dst, pcm), nil
}

// Close drops the encoder state; it is safe to call twice.
func (e *G722Encoder) Close() error {
	e.enc = nil
	return nil
}

// NewG722Decoder returns a 64 kbit/s G.722 decoder producing 16 kHz PCM.
func NewG722Decoder() *G722Decoder {
	return &G722Decoder{
		dec:  g722.NewDecoder(g722.Rate64000, 0),
		fade: codecFade{n: g722FrameSamples},
	}
}

// Rate is the 16 kHz PCM rate G.722 decodes to.
func (d *G722Decoder) Rate() int { return Rate16k }

// Decode decodes payload (any length; each byte is two samples) into pcm.
func (d *G722Decoder) Decode(payload []byte, pcm []int16) (int, error) {
	switch {
	case d.dec == nil:
		return 0, ErrCodecClosed
	case len(pcm) < 2*len(payload):
		return 0, ErrCodecShortBuffer
	}
	n := d.dec.Decode(pcm, payload)
	d.fade.remember(pcm[:n])
	return n, nil
}

// Conceal writes 320 samples replaying the last 20 ms decoded, 6 dB quieter
// for every consecutive loss and silent from the fifth; next is ignored.
func (d *G722Decoder) Conceal(_ []byte, pcm []int16) (int, error) {
	switch {
	case d.dec == nil:
		return 0, ErrCodecClosed
	case len(pcm) < g722FrameSamples:
		return 0, ErrCodecShortBuffer
	}
	return d.fade.conceal(pcm[:g722FrameSamples]), nil
}

// Close drops the decoder state; it is safe to call twice.
func (d *G722Decoder) Close() error {
	d.dec = nil
	return nil
}
