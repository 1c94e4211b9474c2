package media

/*
#cgo pkg-config: speexdsp
#cgo noescape mg_resample
#cgo nocallback mg_resample
#include <stdint.h>
#include <speex/speex_resampler.h>

// mg_resample runs one block through st and returns produced<<32 | consumed,
// or a negative speexdsp error. Lengths travel by value so that no Go
// pointer to a length is handed to C; in and out are only read and written
// during the call and never kept.
static int64_t mg_resample(SpeexResamplerState *st, const spx_int16_t *in,
		spx_uint32_t in_len, spx_int16_t *out, spx_uint32_t out_len) {
	int err = speex_resampler_process_int(st, 0, in, &in_len, out, &out_len);
	if (err != RESAMPLER_ERR_SUCCESS) {
		return -(int64_t)err;
	}
	return ((int64_t)out_len << 32) | (int64_t)in_len;
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// resampleQuality is the speexdsp quality every Resampler uses: the lowest
// that meets all three of mediagate's needs. Quality 1 already puts a 6 kHz
// tone resampled 48→8 kHz 73 dB down, but it loses 1.4 dB at 3 kHz, inside
// the telephone band (TestResamplerQualityChoice). Quality 2 is flat to 3 kHz
// but speexdsp runs it, for 8→48 kHz, through its interpolating filter path
// (the direct polyphase table would be too big for its oversampling), which
// costs ~24 µs per frame against a 10 µs budget (BenchmarkResampleQuality).
// Quality 3 takes the direct path (~6 µs), rejects the 6 kHz alias by more
// than 90 dB and delays by 3 ms, the most the mixer's latency budget allows.
const resampleQuality = 3

// Resampler converts 20 ms frames of mono 16-bit PCM between two of the
// rates mediagate uses (8, 16 and 48 kHz): codecs run at 8 or 16 kHz while
// the mixer runs at 48 kHz. It wraps a libspeexdsp resampler whose state
// lives in C memory, so Close must be called. A Resampler keeps filter
// history between frames and is not safe for concurrent use.
type Resampler struct {
	st       *C.SpeexResamplerState
	from, to int
	inN      int
	outN     int
	latency  int // input samples
	closed   bool
}

// NewResampler returns a resampler from rate from to rate to (Hz), each one
// of Rate8k, Rate16k and Rate48k. Equal rates give a resampler that copies,
// so callers need not special-case them.
func NewResampler(from, to int) (*Resampler, error) {
	return newResamplerQuality(from, to, resampleQuality)
}

func newResamplerQuality(from, to, quality int) (*Resampler, error) {
	if !validRate(from) || !validRate(to) {
		return nil, fmt.Errorf("%w: %d Hz to %d Hz", ErrResampleRate, from, to)
	}
	r := &Resampler{
		from: from,
		to:   to,
		inN:  SamplesPerFrame(from),
		outN: SamplesPerFrame(to),
	}
	if from == to {
		return r, nil
	}
	var errc C.int
	st := C.speex_resampler_init(1, C.spx_uint32_t(from), C.spx_uint32_t(to), C.int(quality), &errc)
	if st == nil || errc != C.RESAMPLER_ERR_SUCCESS {
		if st != nil {
			C.speex_resampler_destroy(st)
		}
		return nil, fmt.Errorf("%w: speexdsp init: %s", ErrResampleFailed, C.GoString(C.speex_resampler_strerror(errc)))
	}
	r.st = st
	r.latency = int(C.speex_resampler_get_input_latency(st))
	return r, nil
}

func validRate(rate int) bool {
	return rate == Rate8k || rate == Rate16k || rate == Rate48k
}

// Process resamples one frame: in holds exactly SamplesPerFrame(from)
// samples and out receives SamplesPerFrame(to) samples, the number
// returned. The output lags the input by Delay(). It allocates nothing.
func (r *Resampler) Process(in, out []int16) (int, error) {
	if r.closed {
		return 0, ErrResamplerClosed
	}
	if len(in) != r.inN || len(out) < r.outN {
		return 0, fmt.Errorf("%w: in %d samples (want %d), out %d (want %d)",
			ErrResampleFrame, len(in), r.inN, len(out), r.outN)
	}
	if r.st == nil {
		return copy(out, in), nil
	}
	res := C.mg_resample(r.st,
		(*C.spx_int16_t)(unsafe.Pointer(&in[0])), C.spx_uint32_t(r.inN),
		(*C.spx_int16_t)(unsafe.Pointer(&out[0])), C.spx_uint32_t(r.outN))
	if res < 0 {
		return 0, fmt.Errorf("%w: speexdsp: %s", ErrResampleFailed, C.GoString(C.speex_resampler_strerror(C.int(-res))))
	}
	consumed, produced := int(res&0xffffffff), int(res>>32)
	if consumed != r.inN || produced != r.outN {
		// Cannot happen for the integer ratios between 8, 16 and 48 kHz;
		// reported rather than hidden should speexdsp ever change.
		return produced, fmt.Errorf("%w: consumed %d of %d, produced %d of %d",
			ErrResampleFailed, consumed, r.inN, produced, r.outN)
	}
	return produced, nil
}

// Delay is how much later a sound comes out than it went in: half the
// filter length, which callers add to their latency budget and use to
// line up resampled audio with other streams.
func (r *Resampler) Delay() time.Duration {
	return time.Duration(r.latency) * time.Second / time.Duration(r.from)
}

// Reset clears the filter history so that an unrelated stream (a new call
// on a pooled resampler) does not hear the tail of the previous one.
func (r *Resampler) Reset() {
	if r.st != nil && !r.closed {
		C.speex_resampler_reset_mem(r.st)
	}
}

// Close frees the C state. It is safe to call more than once; Process
// fails with ErrResamplerClosed afterwards.
func (r *Resampler) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.st != nil {
		C.speex_resampler_destroy(r.st)
		r.st = nil
	}
	return nil
}
