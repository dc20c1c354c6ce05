/* AVX-512 (F, BW, VL, DQ) kernels without VNNI. Masked loads and stores handle the tails. */
#include "lowbit_internal.h"

#if defined(__x86_64__)
#include <float.h>
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")
#endif

static inline __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* |x| compared as unsigned integers: for non-negative floats the bit patterns order like
 * the values, and NaN and Inf (exponent all ones) lie above every finite one, so a single
 * unsigned max per vector both finds the absmax and catches any non-finite value. */
static int absmax_avx512(const float *restrict x, int64_t n, float *restrict out) {
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    /* four chains, so that no max waits on the one before */
    __m512i m0 = _mm512_setzero_si512(), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512((const void *)(x + i)), magnitude));
        m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512((const void *)(x + i + 16)), magnitude));
        m2 = _mm512_max_epu32(m2, _mm512_and_si512(_mm512_loadu_si512((const void *)(x + i + 32)), magnitude));
        m3 = _mm512_max_epu32(m3, _mm512_and_si512(_mm512_loadu_si512((const void *)(x + i + 48)), magnitude));
    }
    for (; i < n; i += 16)
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_maskz_loadu_epi32(tail_mask(n - i), x + i), magnitude));
    const uint32_t top = _mm512_reduce_max_epu32(_mm512_max_epu32(_mm512_max_epu32(m0, m1), _mm512_max_epu32(m2, m3)));
    if (top >= 0x7f800000u) return 1;
    memcpy(out, &top, sizeof *out);
    return 0;
}

/* The canonical order is made for this: a block of 64 is four vectors v0..v3, lane l of
 * (v0 + v1) + (v2 + v3) is the block's float sum for lane l, and two conversions take it
 * into the eight-double partials. */
static int sums_avx512(const float *restrict x, int64_t n, double *restrict sum, double *restrict abssum) {
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, a0 = s0, a1 = s0;
    for (int64_t i = 0; i < n; i += 64) {
        __m512 v[4];
        for (int q = 0; q < 4; q++) /* masked-off lanes load +0.0: the padding */
            v[q] = i + 64 <= n ? _mm512_loadu_ps(x + i + 16 * q)
                               : _mm512_maskz_loadu_ps(tail_mask(n - i - 16 * q > 0 ? n - i - 16 * q : 0), x + i + 16 * q);
        const __m512 t = _mm512_add_ps(_mm512_add_ps(v[0], v[1]), _mm512_add_ps(v[2], v[3]));
        const __m512 u = _mm512_add_ps(_mm512_add_ps(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1])),
                                       _mm512_add_ps(_mm512_abs_ps(v[2]), _mm512_abs_ps(v[3])));
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(t)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1))));
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(u)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1))));
    }
    double sl[16], al[16];
    _mm512_storeu_pd(sl, s0);
    _mm512_storeu_pd(sl + 8, s1);
    _mm512_storeu_pd(al, a0);
    _mm512_storeu_pd(al + 8, a1);
    *sum = lowbit_reduce16(sl);
    *abssum = lowbit_reduce16(al);
    return !(*abssum <= DBL_MAX);
}

/* rint(x * inv) clamped to [-qmax, qmax], as int32 (the conversion rounds half to even).
 * vrangeps with "smaller magnitude, sign of the first operand" against qmax is the clamp
 * to [-qmax, qmax] in one operation. */
static inline __m512i round_clamped(__m512 x, __m512 inv, __m512 hi) {
    const __m512 v = _mm512_range_ps(_mm512_mul_ps(x, inv), hi, 0x02);
    return _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

static void quantize_avx512(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q) {
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps((float)qmax);
    /* 64 at a time into one store: packing 4 x 16 int32 to bytes leaves them grouped by
     * 128-bit lane (dword l*4 + v holds vector v's elements 4l..4l+3); one permute fixes it */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        for (int l = 0; l < 4; l++) _mm_prefetch((const char *)(x + n + i + 16 * l), _MM_HINT_T0);
        const __m512i a0 = round_clamped(_mm512_loadu_ps(x + i), vinv, hi);
        const __m512i a1 = round_clamped(_mm512_loadu_ps(x + i + 16), vinv, hi);
        const __m512i a2 = round_clamped(_mm512_loadu_ps(x + i + 32), vinv, hi);
        const __m512i a3 = round_clamped(_mm512_loadu_ps(x + i + 48), vinv, hi);
        const __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(a0, a1), _mm512_packs_epi32(a2, a3));
        _mm512_storeu_si512((void *)(q + i), _mm512_permutexvar_epi32(order, b));
    }
    for (; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        _mm512_mask_cvtepi32_storeu_epi8(q + i, k, round_clamped(_mm512_maskz_loadu_ps(k, x + i), vinv, hi));
    }
}

static void sign_avx512(const float *restrict x, int64_t n, float threshold, int8_t *restrict q) {
    const __m512 t = _mm512_set1_ps(threshold);
    const __m128i minus = _mm_set1_epi8(-1), plus = _mm_set1_epi8(1);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __mmask16 ge = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), t, _CMP_GE_OQ);
        _mm_storeu_si128((__m128i *)(q + i), _mm_mask_blend_epi8(ge, minus, plus));
    }
    if (i < n) {
        const __mmask16 k = tail_mask(n - i);
        const __mmask16 ge = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k, x + i), t, _CMP_GE_OQ);
        _mm_mask_storeu_epi8(q + i, k, _mm_mask_blend_epi8(ge, minus, plus));
    }
}

#define LOWBIT_DOT_SUFFIX _avx512
#define LOWBIT_DOT_VNNI 0
#include "kernels_avx512_dot.h"

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

void lowbit_table_init_avx512(lowbit_kernel_table *t) {
#define SET(name)              \
    t->name = name##_avx512;   \
    t->name##_isa = LOWBIT_ISA_AVX512;
    SET(absmax) SET(sums) SET(quantize) SET(sign) SET(dot_b1) SET(dot_b2) SET(dot_b4) SET(dot_b8)
#undef SET
}
#endif
