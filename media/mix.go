package media

/*
#cgo CFLAGS: -O3
#include <stdint.h>

#define MG_FRAME 960
#define MG_VOICES 16
#define MG_KNEE 23197
#define MG_STEP_BITS 6
#define MG_STEP (1 << MG_STEP_BITS)
#define MG_ENTRIES 1024
#define MG_BLOCK 32 // divides MG_FRAME

// mg_above is limitAbove of limiter.go: x > MG_KNEE through the table,
// interpolated, in the same integer arithmetic. t is limitPacked: entry i
// holds limitTable[i] in its low 16 bits and the step to entry i+1 above.
static inline int16_t mg_above(int32_t x, const uint32_t *t) {
	int32_t e = x - MG_KNEE;
	int32_t i = e >> MG_STEP_BITS;
	if (i >= MG_ENTRIES) return (int16_t)(t[MG_ENTRIES] & 0xffff);
	int32_t f = e & (MG_STEP - 1);
	uint32_t v = t[i];
	return (int16_t)((v & 0xffff) + (((v >> 16) * f) >> MG_STEP_BITS));
}

// mg_fix rewrites the samples of out whose sum acc - own lies beyond the
// knee (their int16 store wrapped or is too loud) with the curve. It skips
// blocks within the knee with a vectorised test, since loud speech passes
// it in a few places only.
static inline void mg_fix(const int32_t *acc, const int16_t *own, int16_t *out, const uint32_t *t) {
	for (int b = 0; b < MG_FRAME; b += MG_BLOCK) {
		int32_t peak = 0;
		for (int i = b; i < b + MG_BLOCK; i++) {
			int32_t x = acc[i] - own[i];
			int32_t a = x < 0 ? -x : x;
			peak = a > peak ? a : peak;
		}
		if (peak <= MG_KNEE) continue;
		for (int i = b; i < b + MG_BLOCK; i++) {
			int32_t x = acc[i] - own[i];
			if (x > MG_KNEE) out[i] = mg_above(x, t);
			else if (x < -MG_KNEE) out[i] = (int16_t)-mg_above(-x, t);
		}
	}
}

typedef void mg_fixer(const int32_t *, const int16_t *, int16_t *, const uint32_t *);

// mg_mix_body sums the n contiguous frames of voices into acc and writes
// the full mix and each voice's mix-minus (the sum less that voice),
// tracking each output's peak; only outputs whose peak passes the knee get
// the limiter's second pass, fix. It is inlined into each CPU's build.
static inline __attribute__((always_inline)) void mg_mix_body(const int16_t *restrict voices,
		int n, int32_t *restrict acc, int16_t *restrict full, int16_t *restrict minus,
		const uint32_t *restrict t, mg_fixer fix) {
	static const int16_t silence[MG_FRAME];
	for (int i = 0; i < MG_FRAME; i++) acc[i] = 0;
	for (int k = 0; k < n; k++) {
		const int16_t *v = voices + k * MG_FRAME;
		for (int i = 0; i < MG_FRAME; i++) acc[i] += v[i];
	}
	int32_t peak = 0;
	for (int i = 0; i < MG_FRAME; i++) {
		int32_t x = acc[i];
		int32_t a = x < 0 ? -x : x;
		peak = a > peak ? a : peak;
		full[i] = (int16_t)x;
	}
	if (peak > MG_KNEE) fix(acc, silence, full, t);
	for (int k = 0; k < n; k++) {
		const int16_t *v = voices + k * MG_FRAME;
		int16_t *o = minus + k * MG_FRAME;
		peak = 0;
		for (int i = 0; i < MG_FRAME; i++) {
			int32_t x = acc[i] - v[i];
			int32_t a = x < 0 ? -x : x;
			peak = a > peak ? a : peak;
			o[i] = (int16_t)x;
		}
		if (peak > MG_KNEE) fix(acc, v, o, t);
	}
}

static void mg_mix_base(const int16_t *voices, int n, int32_t *acc, int16_t *full,
		int16_t *minus, const uint32_t *t) {
	mg_mix_body(voices, n, acc, full, minus, t, mg_fix);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define MG_X86 1
#include <immintrin.h>

// mg_curve8 is mg_above for the 8 lanes of a whose mask over is set (a >
// MG_KNEE), a elsewhere: one gather from the table (4 KB, in L1) instead
// of 8 branchy lookups.
__attribute__((target("avx2")))
static inline __m256i mg_curve8(__m256i a, __m256i over, const uint32_t *t) {
	__m256i e = _mm256_sub_epi32(a, _mm256_set1_epi32(MG_KNEE));
	e = _mm256_max_epi32(e, _mm256_setzero_si256());
	e = _mm256_min_epi32(e, _mm256_set1_epi32(MG_ENTRIES * MG_STEP));
	__m256i i = _mm256_srli_epi32(e, MG_STEP_BITS);
	__m256i f = _mm256_and_si256(e, _mm256_set1_epi32(MG_STEP - 1));
	__m256i v = _mm256_i32gather_epi32((const int *)t, i, 4);
	__m256i lo = _mm256_and_si256(v, _mm256_set1_epi32(0xffff));
	__m256i d = _mm256_mullo_epi32(_mm256_srli_epi32(v, 16), f);
	__m256i y = _mm256_add_epi32(lo, _mm256_srli_epi32(d, MG_STEP_BITS));
	return _mm256_blendv_epi8(a, y, over);
}

// mg_fix_avx2 is mg_fix 16 samples at a time: groups within the knee are
// skipped, the others rewritten whole (their samples within the knee with
// the same value).
__attribute__((target("avx2")))
static void mg_fix_avx2(const int32_t *acc, const int16_t *own, int16_t *out, const uint32_t *t) {
	const __m256i knee = _mm256_set1_epi32(MG_KNEE);
	for (int i = 0; i < MG_FRAME; i += 16) {
		__m256i x0 = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(acc + i)),
			_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(own + i))));
		__m256i x1 = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(acc + i + 8)),
			_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(own + i + 8))));
		__m256i a0 = _mm256_abs_epi32(x0), a1 = _mm256_abs_epi32(x1);
		__m256i o0 = _mm256_cmpgt_epi32(a0, knee), o1 = _mm256_cmpgt_epi32(a1, knee);
		__m256i any = _mm256_or_si256(o0, o1);
		if (_mm256_testz_si256(any, any)) continue;
		__m256i r0 = _mm256_sign_epi32(mg_curve8(a0, o0, t), x0);
		__m256i r1 = _mm256_sign_epi32(mg_curve8(a1, o1, t), x1);
		__m256i r = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);
		_mm256_storeu_si256((__m256i *)(out + i), r);
	}
}

__attribute__((target("avx2")))
static void mg_mix_avx2(const int16_t *voices, int n, int32_t *acc, int16_t *full,
		int16_t *minus, const uint32_t *t) {
	mg_mix_body(voices, n, acc, full, minus, t, mg_fix_avx2);
}
#endif

// mg_has_avx2 reports whether this CPU runs mg_mix_avx2.
static int mg_has_avx2(void) {
#ifdef MG_X86
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") != 0;
#else
	return 0;
#endif
}

// mg_mix runs the AVX2 build when avx2 is set (only where mg_has_avx2),
// the portable one otherwise.
static void mg_mix(const int16_t *voices, int n, int32_t *acc, int16_t *full,
		int16_t *minus, const uint32_t *t, int avx2) {
	(void)avx2;
#ifdef MG_X86
	if (avx2) {
		mg_mix_avx2(voices, n, acc, full, minus, t);
		return;
	}
#endif
	mg_mix_base(voices, n, acc, full, minus, t);
}
*/
import "C"

import "unsafe"

// MaxMixVoices is how many voices one Mix adds up. A conference mixes a
// handful (room.DefaultMaxSpeakers is 4, plus the voices fading out of the
// mix); a fixed bound keeps Mix a plain array that C can read.
const MaxMixVoices = 16

// The C kernel is written for these sizes; a change on either side fails
// the build here instead of reading past an array.
var (
	_ [C.MG_FRAME - FrameSamples]struct{}
	_ [FrameSamples - C.MG_FRAME]struct{}
	_ [C.MG_VOICES - MaxMixVoices]struct{}
	_ [MaxMixVoices - C.MG_VOICES]struct{}
	_ [C.MG_KNEE - LimitKnee]struct{}
	_ [LimitKnee - C.MG_KNEE]struct{}
	_ [C.MG_STEP - limitStep]struct{}
	_ [limitStep - C.MG_STEP]struct{}
	_ [C.MG_ENTRIES - limitEntries]struct{}
	_ [limitEntries - C.MG_ENTRIES]struct{}
)

// limitPacked is limitTable as the C kernel reads it: entry i holds
// limitTable[i] in its low 16 bits and limitTable[i+1] - limitTable[i] (0
// for the last) in its high 16 bits, so one load (one gather in AVX2)
// fetches both ends of the interpolation. The curve's slope is at most 1,
// so a step is at most limitStep and the entries fit.
var limitPacked = func() (p [limitEntries + 1]uint32) {
	for i, lo := range limitTable {
		var step int32
		if i < limitEntries {
			step = limitTable[i+1] - lo
		}
		p[i] = uint32(lo) | uint32(step)<<16
	}
	return p
}()

// mixAVX2 selects the kernel's AVX2 build; tests clear it to check the
// portable build on the same machine.
var mixAVX2 = C.mg_has_avx2() != 0

// Mix is a conference mixer's per-tick arithmetic: the full mix of up to
// MaxMixVoices voices and every voice's mix-minus (what that speaker hears:
// everyone but itself), soft-clipped (limiter.go). One cgo call does it all
// in about a microsecond for ten ordinary voices, where Go needs ten times
// that.
//
// Mix holds no pointers, only arrays, so the arrays inside it may be handed
// to C under the cgo pointer rules; it is about 67 KB, so allocate it once
// (or embed it in a long-lived struct) and reuse it every tick. The zero
// value is ready. A Mix is not safe for concurrent use.
type Mix struct {
	// Voices are the inputs: the caller copies this tick's contributing
	// frames into Voices[:n] before Run.
	Voices [MaxMixVoices]Frame
	// Minus[k] is, after Run(n) and for k < n, the mix without Voices[k].
	Minus [MaxMixVoices]Frame
	// Full is, after Run, the mix of all n voices.
	Full Frame

	acc [FrameSamples]int32
}

// Run mixes Voices[:n] into Full and Minus[:n]: Full is the limited sum of
// the n voices and Minus[k] the limited sum less Voices[k], each sample
// exactly limitSample of the int32 sum. n outside 0..MaxMixVoices is
// clamped (beyond MaxMixVoices only the first MaxMixVoices voices are
// mixed); n == 0 leaves Full silent. Minus[n:] are left as they were. Run
// allocates nothing.
func (m *Mix) Run(n int) {
	n = min(max(n, 0), MaxMixVoices)
	avx2 := C.int(0)
	if mixAVX2 {
		avx2 = 1
	}
	// Each pointer is to a field of m (or the table), an array without Go
	// pointers, which C reads or writes only within that array and only
	// during the call.
	C.mg_mix(
		(*C.int16_t)(unsafe.Pointer(&m.Voices)), C.int(n),
		(*C.int32_t)(unsafe.Pointer(&m.acc)),
		(*C.int16_t)(unsafe.Pointer(&m.Full)),
		(*C.int16_t)(unsafe.Pointer(&m.Minus)),
		(*C.uint32_t)(unsafe.Pointer(&limitPacked)), avx2)
}
