package media

/*
#cgo pkg-config: vo-aacenc
#include <stdlib.h>
#include <vo-aacenc/voAAC.h>
#include <vo-aacenc/cmnMemory.h>

enum {
	MG_AAC_FRAME = 1024,          // samples per channel per AAC frame
	MG_AAC_MAXCH = 2,
	MG_AAC_MAXOUT = 768 * MG_AAC_MAXCH // 6144 bits per channel (ISO 14496-3 §4.5.3.2)
};

// mg_aac is one encoder with everything libvo-aacenc keeps pointers to: the
// memory operator (kept by Init), the input PCM (kept by SetInputData) and
// the output buffer. It lives in C memory so no Go pointer is retained by C.
typedef struct {
	VO_AUDIO_CODECAPI api;
	VO_MEM_OPERATOR mem;
	VO_HANDLE handle;
	unsigned long err;
	int channels;
	short pcm[MG_AAC_FRAME * MG_AAC_MAXCH];
	unsigned char out[MG_AAC_MAXOUT];
} mg_aac;

// mg_aac_open returns a configured encoder, or NULL with *err set.
static mg_aac *mg_aac_open(int rate, int channels, int bitrate, unsigned long *err) {
	mg_aac *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		*err = VO_ERR_OUTOF_MEMORY;
		return NULL;
	}
	voGetAACEncAPI(&s->api);
	s->mem.Alloc = cmnMemAlloc;
	s->mem.Free = cmnMemFree;
	s->mem.Set = cmnMemSet;
	s->mem.Copy = cmnMemCopy;
	s->mem.Check = cmnMemCheck;
	s->mem.Compare = cmnMemCompare;
	s->mem.Move = cmnMemMove;
	VO_CODEC_INIT_USERDATA ud = {0};
	ud.memflag = VO_IMF_USERMEMOPERATOR;
	ud.memData = &s->mem;
	*err = s->api.Init(&s->handle, VO_AUDIO_CodingAAC, &ud);
	if (*err != VO_ERR_NONE) {
		free(s);
		return NULL;
	}
	AACENC_PARAM p = {0};
	p.sampleRate = rate;
	p.bitRate = bitrate;
	p.nChannels = (short)channels;
	p.adtsUsed = 0; // raw access units: FLV/RTMP carries the config separately
	*err = s->api.SetParam(s->handle, VO_PID_AAC_ENCPARAM, &p);
	if (*err != VO_ERR_NONE) {
		s->api.Uninit(s->handle);
		free(s);
		return NULL;
	}
	s->channels = channels;
	return s;
}

// mg_aac_encode encodes the frame in s->pcm into s->out and returns its
// length, or -1 with s->err set.
static long mg_aac_encode(mg_aac *s) {
	VO_CODECBUFFER in = {0}, out = {0};
	VO_AUDIO_OUTPUTINFO info = {0};
	in.Buffer = (VO_PBYTE)s->pcm;
	in.Length = MG_AAC_FRAME * s->channels * sizeof(short);
	s->err = s->api.SetInputData(s->handle, &in);
	if (s->err != VO_ERR_NONE) {
		return -1;
	}
	out.Buffer = s->out;
	out.Length = sizeof(s->out);
	s->err = s->api.GetOutputData(s->handle, &out, &info);
	if (s->err != VO_ERR_NONE) {
		return -1;
	}
	return (long)out.Length;
}

static void mg_aac_close(mg_aac *s) {
	s->api.Uninit(s->handle);
	free(s);
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// AAC-LC encoding for the RTMP egress (FLV audio tag, sound format 10), via
// Debian's libvo-aacenc.

// AACFrameSamples is the number of samples per channel in one AAC frame
// (ISO 14496-3 §4.5.1: 1024 for AAC-LC). Encode takes exactly this many.
const AACFrameSamples = C.MG_AAC_FRAME

// AACMaxPayload is the largest frame the encoder can return for two
// channels (6144 bits per channel, ISO 14496-3 §4.5.3.2); a dst this big
// never fails.
const AACMaxPayload = C.MG_AAC_MAXOUT

// aacRates are the sampling frequencies of ISO 14496-3 §1.6.3.4, in the
// order of samplingFrequencyIndex.
var aacRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000}

// AACEncoder encodes interleaved 16-bit PCM into raw AAC-LC frames (no ADTS
// header), as FLV/RTMP and MP4 carry them. It does not implement Encoder:
// AAC frames are 1024 samples, not 20 ms, so the caller accumulates mixer
// frames. One AACEncoder serves one stream; it is not safe for concurrent use.
type AACEncoder struct {
	st       *C.mg_aac // nil once closed
	cleanup  runtime.Cleanup
	pcm      []int16 // st's input buffer, C memory
	out      []byte  // st's output buffer, C memory
	rate     int
	channels int
	asc      [2]byte
}

// NewAACEncoder returns an AAC-LC encoder for sampleRate (one of the
// ISO 14496-3 rates, e.g. 44100 or 48000), 1 or 2 channels and bitrate in
// bits/s (4000 to 160000 per channel, at most 6 bits per sample). Close
// frees its C memory; a forgotten encoder is freed when collected.
func NewAACEncoder(sampleRate, channels, bitrate int) (*AACEncoder, error) {
	freq := -1
	for i, r := range aacRates {
		if r == sampleRate {
			freq = i
		}
	}
	switch {
	case freq < 0:
		return nil, fmt.Errorf("%w: aac sample rate %d Hz", ErrCodecConfig, sampleRate)
	case channels < 1 || channels > C.MG_AAC_MAXCH:
		return nil, fmt.Errorf("%w: aac channels %d, want 1 or 2", ErrCodecConfig, channels)
	// libvo-aacenc silently replaces a bitrate outside these bounds.
	case bitrate/channels < 4000 || bitrate/channels > 160000 || bitrate > 6*sampleRate*channels:
		return nil, fmt.Errorf("%w: aac bitrate %d for %d channel(s) at %d Hz", ErrCodecConfig, bitrate, channels, sampleRate)
	}
	var verr C.ulong
	st := C.mg_aac_open(C.int(sampleRate), C.int(channels), C.int(bitrate), &verr)
	if st == nil {
		return nil, fmt.Errorf("aac open: %w: vo-aacenc error %#x", ErrCodecFailed, uint64(verr))
	}
	e := &AACEncoder{
		st:       st,
		pcm:      unsafe.Slice((*int16)(unsafe.Pointer(&st.pcm[0])), AACFrameSamples*channels),
		out:      unsafe.Slice((*byte)(unsafe.Pointer(&st.out[0])), len(st.out)),
		rate:     sampleRate,
		channels: channels,
		// ISO 14496-3 §1.6.2.1 AudioSpecificConfig: audioObjectType 2 (LC,
		// 5 bits), samplingFrequencyIndex (4), channelConfiguration (4),
		// GASpecificConfig §4.4.1 with frameLengthFlag, dependsOnCoreCoder
		// and extensionFlag all 0 (3).
		asc: [2]byte{2<<3 | byte(freq)>>1, byte(freq)<<7 | byte(channels)<<3},
	}
	e.cleanup = runtime.AddCleanup(e, func(st *C.mg_aac) { C.mg_aac_close(st) }, st)
	return e, nil
}

// Rate is the PCM sample rate the encoder takes.
func (e *AACEncoder) Rate() int { return e.rate }

// Channels is the number of interleaved channels Encode takes.
func (e *AACEncoder) Channels() int { return e.channels }

// AudioSpecificConfig returns the 2-byte AudioSpecificConfig that the FLV
// AAC sequence header (AACPacketType 0) and MP4's esds carry, so a player
// knows profile, rate and channels before the first raw frame.
func (e *AACEncoder) AudioSpecificConfig() []byte {
	return []byte{e.asc[0], e.asc[1]}
}

// Encode encodes one frame, AACFrameSamples samples per channel interleaved,
// into dst and returns the length of the raw AAC frame. The input is copied
// into the encoder's C buffer, so pcm may be reused at once.
func (e *AACEncoder) Encode(pcm []int16, dst []byte) (int, error) {
	switch {
	case e.st == nil:
		return 0, ErrCodecClosed
	case len(pcm) != len(e.pcm):
		return 0, ErrCodecFrameSize
	}
	copy(e.pcm, pcm)
	n := int(C.mg_aac_encode(e.st))
	if n < 0 {
		return 0, fmt.Errorf("aac encode: %w: vo-aacenc error %#x", ErrCodecFailed, uint64(e.st.err))
	}
	if n > len(dst) {
		return 0, fmt.Errorf("aac encode: %w: frame of %d bytes, dst %d", ErrCodecShortBuffer, n, len(dst))
	}
	return copy(dst, e.out[:n]), nil
}

// Close frees the encoder's C memory; it is safe to call twice.
func (e *AACEncoder) Close() error {
	if e.st == nil {
		return nil
	}
	e.cleanup.Stop()
	C.mg_aac_close(e.st)
	e.st, e.pcm, e.out = nil, nil, nil
	return nil
}
