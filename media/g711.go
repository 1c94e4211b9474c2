package media

import "math/bits"

// G.711 (ITU-T G.711, 1988) is the PCMU (µ-law) and PCMA (A-law) codec of
// RFC 3551 §4.5.14: 8 kHz PCM, one byte per sample, 160 bytes per 20 ms.
//
// The encoders are table lookups built once at start-up from the segment
// formulas: µ-law quantises 14-bit samples, so its table has 2¹⁴ entries
// indexed by the top 14 bits of the 16-bit sample; A-law quantises 13-bit
// samples whose top 12 bits (after one's complement of negatives) decide the
// code, so its table has 2¹² entries. Both fit in L1 where a 64 KiB table per
// law would not. Decoding is a 256-entry table per law.
//
// Negative samples are folded with one's complement (-1 becomes magnitude 0),
// as ITU-T G.191's reference g711.c does, so the quantiser is symmetric
// around zero and a decoded code word encodes back to itself. The one code
// that cannot round-trip is µ-law 0x7F, "negative zero": G.711 Table 2a
// decodes it to 0, exactly like 0xFF, and 0 encodes as 0xFF. The two carry
// the same sound.

// g711FrameSamples is one 20 ms frame at G.711's 8 kHz.
const g711FrameSamples = Rate8k / 50

var (
	ulawEncTable = func() (t [1 << 14]byte) {
		for i := range t {
			t[i] = ulawCompress(int16(uint16(i << 2)))
		}
		return t
	}()
	alawEncTable = func() (t [1 << 12]byte) {
		for i := range t {
			t[i] = alawCompress(int16(uint16(i << 4)))
		}
		return t
	}()
	ulawDecTable = func() (t [256]int16) {
		for i := range t {
			t[i] = ulawExpand(byte(i))
		}
		return t
	}()
	alawDecTable = func() (t [256]int16) {
		for i := range t {
			t[i] = alawExpand(byte(i))
		}
		return t
	}()
)

// ulawCompress is the µ-law quantiser of G.711 §3 for one 16-bit sample: the
// 14-bit magnitude plus the bias 33 is split into a 3-bit segment (position
// of its leading one) and a 4-bit step within it; the code is inverted.
func ulawCompress(s int16) byte {
	sign := byte(0x80) // positive codes have bit 7 set after the inversion
	mag := int(s)
	if mag < 0 {
		mag, sign = ^mag, 0
	}
	biased := min(mag>>2+33, 0x1FFF)
	exp := bits.Len(uint(biased)) - 6
	mant := (biased >> (exp + 1)) & 0xF
	return sign | ^byte(exp<<4|mant)&0x7F
}

// ulawExpand is the µ-law decoder of G.711 Table 2a, scaled from 14 to 16
// bits: the midpoint of the code's interval, ((2m+33)<<e) - 33.
func ulawExpand(c byte) int16 {
	v := ^c
	exp := int(v>>4) & 7
	mant := int(v & 0xF)
	mag := ((mant<<1 + 33) << exp) - 33
	if v&0x80 != 0 {
		return int16(-mag << 2)
	}
	return int16(mag << 2)
}

// alawCompress is the A-law quantiser of G.711 §2 for one 16-bit sample:
// segments 0 and 1 share one step size, each further segment doubles it;
// even bits are inverted (XOR 0x55) for line transmission.
func alawCompress(s int16) byte {
	sign := byte(0x80) // positive codes have bit 7 set before the XOR
	mag := int(s)
	if mag < 0 {
		mag, sign = ^mag, 0
	}
	mag >>= 4
	code := mag
	if mag >= 16 {
		exp := bits.Len(uint(mag)) - 4
		code = exp<<4 | (mag>>(exp-1))&0xF
	}
	return (sign | byte(code)) ^ 0x55
}

// alawExpand is the A-law decoder of G.711 Table 1a, scaled from 13 to 16
// bits: the midpoint of the code's interval.
func alawExpand(c byte) int16 {
	v := c ^ 0x55
	exp := int(v>>4) & 7
	mant := int(v & 0xF)
	mag := mant<<1 + 1
	if exp > 0 {
		mag = (mant<<1 + 33) << (exp - 1)
	}
	mag <<= 3
	if v&0x80 == 0 {
		return int16(-mag)
	}
	return int16(mag)
}

// EncodeULaw encodes min(len(dst), len(pcm)) samples of 16-bit PCM into
// µ-law bytes and returns that count. It has no state, so callers that only
// need the conversion (a recorder, a test peer) can skip the Encoder.
func EncodeULaw(dst []byte, pcm []int16) int {
	n := min(len(dst), len(pcm))
	dst = dst[:n]
	for i, s := range pcm[:n] {
		dst[i] = ulawEncTable[uint16(s)>>2]
	}
	return n
}

// DecodeULaw decodes min(len(dst), len(b)) µ-law bytes into 16-bit PCM and
// returns that count.
func DecodeULaw(dst []int16, b []byte) int {
	n := min(len(dst), len(b))
	dst = dst[:n]
	for i, c := range b[:n] {
		dst[i] = ulawDecTable[c]
	}
	return n
}

// EncodeALaw encodes min(len(dst), len(pcm)) samples of 16-bit PCM into
// A-law bytes and returns that count.
func EncodeALaw(dst []byte, pcm []int16) int {
	n := min(len(dst), len(pcm))
	dst = dst[:n]
	for i, s := range pcm[:n] {
		dst[i] = alawEncTable[uint16(s)>>4]
	}
	return n
}

// DecodeALaw decodes min(len(dst), len(b)) A-law bytes into 16-bit PCM and
// returns that count.
func DecodeALaw(dst []int16, b []byte) int {
	n := min(len(dst), len(b))
	dst = dst[:n]
	for i, c := range b[:n] {
		dst[i] = alawDecTable[c]
	}
	return n
}

// g711Encoder is the Encoder shared by both laws.
type g711Encoder struct {
	encode func(dst []byte, pcm []int16) int
	closed bool
}

// Rate is G.711's 8 kHz.
func (e *g711Encoder) Rate() int { return Rate8k }

// Encode encodes one 20 ms frame (160 samples) into 160 bytes of dst.
func (e *g711Encoder) Encode(pcm []int16, dst []byte) (int, error) {
	switch {
	case e.closed:
		return 0, ErrCodecClosed
	case len(pcm) != g711FrameSamples:
		return 0, ErrCodecFrameSize
	case len(dst) < g711FrameSamples:
		return 0, ErrCodecShortBuffer
	}
	return e.encode(dst, pcm), nil
}

// Close marks the encoder closed; G.711 holds no resources.
func (e *g711Encoder) Close() error {
	e.closed = true
	return nil
}

// g711Decoder is the Decoder shared by both laws.
type g711Decoder struct {
	decode func(dst []int16, b []byte) int
	fade   codecFade
	closed bool
}

// Rate is G.711's 8 kHz.
func (d *g711Decoder) Rate() int { return Rate8k }

// Decode decodes every byte of payload into one sample of pcm; any payload
// length is accepted (RFC 3551 §4.5.14 allows other packet times).
func (d *g711Decoder) Decode(payload []byte, pcm []int16) (int, error) {
	switch {
	case d.closed:
		return 0, ErrCodecClosed
	case len(pcm) < len(payload):
		return 0, ErrCodecShortBuffer
	}
	n := d.decode(pcm, payload)
	d.fade.remember(pcm[:n])
	return n, nil
}

// Conceal writes 160 samples replaying the last 20 ms decoded, 6 dB quieter
// for every consecutive loss and silent from the fifth; G.711 has no FEC so
// next is ignored.
func (d *g711Decoder) Conceal(_ []byte, pcm []int16) (int, error) {
	switch {
	case d.closed:
		return 0, ErrCodecClosed
	case len(pcm) < g711FrameSamples:
		return 0, ErrCodecShortBuffer
	}
	return d.fade.conceal(pcm[:g711FrameSamples]), nil
}

// Close marks the decoder closed; G.711 holds no resources.
func (d *g711Decoder) Close() error {
	d.closed = true
	return nil
}

// PCMUEncoder is the G.711 µ-law Encoder (RTP payload type 0), the codec
// every SIP peer offers.
type PCMUEncoder struct{ g711Encoder }

// PCMUDecoder is the G.711 µ-law Decoder with fade-out concealment.
type PCMUDecoder struct{ g711Decoder }

// PCMAEncoder is the G.711 A-law Encoder (RTP payload type 8), the default
// outside North America and Japan.
type PCMAEncoder struct{ g711Encoder }

// PCMADecoder is the G.711 A-law Decoder with fade-out concealment.
type PCMADecoder struct{ g711Decoder }

var (
	_ Encoder = (*PCMUEncoder)(nil)
	_ Decoder = (*PCMUDecoder)(nil)
	_ Encoder = (*PCMAEncoder)(nil)
	_ Decoder = (*PCMADecoder)(nil)
)

// NewPCMUEncoder returns a µ-law encoder for 8 kHz, 20 ms frames.
func NewPCMUEncoder() *PCMUEncoder {
	return &PCMUEncoder{g711Encoder{encode: EncodeULaw}}
}

// NewPCMUDecoder returns a µ-law decoder producing 8 kHz PCM.
func NewPCMUDecoder() *PCMUDecoder {
	return &PCMUDecoder{g711Decoder{decode: DecodeULaw, fade: codecFade{n: g711FrameSamples}}}
}

// NewPCMAEncoder returns an A-law encoder for 8 kHz, 20 ms frames.
func NewPCMAEncoder() *PCMAEncoder {
	return &PCMAEncoder{g711Encoder{encode: EncodeALaw}}
}

// NewPCMADecoder returns an A-law decoder producing 8 kHz PCM.
func NewPCMADecoder() *PCMADecoder {
	return &PCMADecoder{g711Decoder{decode: DecodeALaw, fade: codecFade{n: g711FrameSamples}}}
}

// fadeFrames is the number of consecutive lost frames after which a fading
// concealment is silent: 6 dB per frame, so the fifth fades from -24 dB to
// nothing. Replaying longer would turn one remembered frame into a buzz.
const fadeFrames = 5

// codecFade conceals losses for codecs without concealment of their own
// (G.711, G.722): it remembers the last frame decoded and replays it with a
// gain ramp that falls 6 dB per consecutive lost frame, smoothly within each
// frame so the fade itself does not click.
type codecFade struct {
	hist [Rate16k / 50]int16 // last n samples decoded
	n    int                 // samples per 20 ms frame at the codec's rate
	lost int                 // consecutive frames concealed so far
}

// remember keeps the last n samples of what was just decoded and ends a run
// of losses.
func (f *codecFade) remember(pcm []int16) {
	f.lost = 0
	h := f.hist[:f.n]
	if len(pcm) >= f.n {
		copy(h, pcm[len(pcm)-f.n:])
		return
	}
	copy(h, h[len(pcm):])
	copy(h[f.n-len(pcm):], pcm)
}

// fadeGain is the Q15 gain after k lost frames.
func fadeGain(k int) int32 {
	if k >= fadeFrames {
		return 0
	}
	return 1 << 15 >> k
}

// conceal fills dst (n samples) with the remembered frame at the next step of
// the fade and returns n.
func (f *codecFade) conceal(dst []int16) int {
	f.lost++
	if f.lost > fadeFrames {
		clear(dst)
		return len(dst)
	}
	g0, g1 := fadeGain(f.lost-1), fadeGain(f.lost)
	n := int32(len(dst))
	for i, s := range f.hist[:len(dst)] {
		g := g0 + (g1-g0)*int32(i+1)/n
		dst[i] = int16(int32(s) * g >> 15)
	}
	return len(dst)
}
