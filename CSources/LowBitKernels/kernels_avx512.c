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

#define INLINE static inline __attribute__((always_inline))
#ifndef PFD
#define PF(p) ((void)0)
#else
#define PF(p) do { for (int l_ = 0; l_ < 4; l_++) _mm_prefetch((const char *)((p) + PFD + 16 * l_), _MM_HINT_T0); } while (0)
#endif

/* The kernels work on blocks of 64 floats (four vectors), which also makes the fused
 * kernels one loop: a block of x quantized and a block of y read per iteration. */

INLINE __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

/* ---- absmax: |x| compared as unsigned integers. For non-negative floats the bit patterns
 * order like the values, and NaN and Inf (exponent all ones) lie above every finite one, so
 * a single unsigned max per vector both finds the absmax and catches any non-finite value.
 * Four chains, so that no max waits on the one before. */

INLINE void absmax_block(__m512i m[4], const float *restrict x, int64_t left) {
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    for (int v = 0; v < 4; v++) {
        const __m512i a = left >= 64 ? _mm512_loadu_si512((const void *)(x + 16 * v))
                                     : _mm512_maskz_loadu_epi32(tail_mask(left - 16 * v), x + 16 * v);
        m[v] = _mm512_max_epu32(m[v], _mm512_and_si512(a, magnitude));
    }
}

INLINE int absmax_finish(const __m512i m[4], float *restrict out) {
    const uint32_t top = _mm512_reduce_max_epu32(_mm512_max_epu32(_mm512_max_epu32(m[0], m[1]), _mm512_max_epu32(m[2], m[3])));
    if (top >= 0x7f800000u) return 1;
    memcpy(out, &top, sizeof *out);
    return 0;
}

/* ---- sums: the canonical order is made for this. A block of 64 is four vectors v0..v3,
 * lane l of (v0 + v1) + (v2 + v3) is the block's float sum for lane l, and two conversions
 * take it into the eight-double partials acc[0..1] (|x| into acc[2..3]). */

/* a + b computed by the FMA units, a * 1 + b: the same rounding as an add (one rounding of
 * the exact sum), but it runs on the multiply pipes, which the sums leave idle while the
 * add pipes are the bottleneck. The compiler would turn a visible * 1.0 back into an add. */
INLINE __m512 add_on_fma_ps(__m512 a, __m512 b) {
    __m512 one = _mm512_set1_ps(1.0f);
    __asm__("" : "+v"(one));
    return _mm512_fmadd_ps(a, one, b);
}
INLINE __m512d add_on_fma_pd(__m512d a, __m512d b) {
    __m512d one = _mm512_set1_pd(1.0);
    __asm__("" : "+v"(one));
    return _mm512_fmadd_pd(a, one, b);
}

INLINE void sums_block(__m512d acc[4], const float *restrict x, int64_t left, const int with_sum) {
    __m512 v[4];
    for (int q = 0; q < 4; q++) /* masked-off lanes load +0.0: the padding */
        v[q] = left >= 64 ? _mm512_loadu_ps(x + 16 * q) : _mm512_maskz_loadu_ps(tail_mask(left - 16 * q), x + 16 * q);
    if (with_sum) {
        const __m512 t = _mm512_add_ps(add_on_fma_ps(v[0], v[1]), add_on_fma_ps(v[2], v[3]));
        acc[0] = add_on_fma_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(t)), acc[0]);
        acc[1] = add_on_fma_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1))), acc[1]);
    }
    const __m512 u = _mm512_add_ps(add_on_fma_ps(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1])), _mm512_add_ps(_mm512_abs_ps(v[2]), _mm512_abs_ps(v[3])));
    acc[2] = add_on_fma_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(u)), acc[2]);
    acc[3] = add_on_fma_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1))), acc[3]);
}

INLINE int sums_finish(const __m512d acc[4], double *restrict sum, double *restrict abssum) {
    double lane[16];
    if (sum) {
        _mm512_storeu_pd(lane, acc[0]);
        _mm512_storeu_pd(lane + 8, acc[1]);
        *sum = lowbit_reduce16(lane);
    }
    _mm512_storeu_pd(lane, acc[2]);
    _mm512_storeu_pd(lane + 8, acc[3]);
    *abssum = lowbit_reduce16(lane);
    return !(*abssum <= DBL_MAX);
}

/* ---- quantize: rint(x * inv) clamped to [-qmax, qmax], as int32 (the conversion rounds
 * half to even). vrangeps with "smaller magnitude, sign of the first operand" against qmax
 * is the clamp to [-qmax, qmax] in one operation. */

INLINE __m512i round_clamped(__m512 x, __m512 inv, __m512 hi) {
    const __m512 v = _mm512_range_ps(_mm512_mul_ps(x, inv), hi, 0x02);
    return _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* 64 codes in one store: packing 4 x 16 int32 to bytes leaves them grouped by 128-bit lane
 * (dword l*4 + v holds vector v's elements 4l..4l+3); one permute fixes the order. */
INLINE void quantize_block(const float *restrict x, int64_t left, __m512 inv, __m512 hi, int8_t *restrict q) {
    if (left >= 64) {
        const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        const __m512i a0 = round_clamped(_mm512_loadu_ps(x), inv, hi);
        const __m512i a1 = round_clamped(_mm512_loadu_ps(x + 16), inv, hi);
        const __m512i a2 = round_clamped(_mm512_loadu_ps(x + 32), inv, hi);
        const __m512i a3 = round_clamped(_mm512_loadu_ps(x + 48), inv, hi);
        const __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(a0, a1), _mm512_packs_epi32(a2, a3));
        _mm512_storeu_si512((void *)q, _mm512_permutexvar_epi32(order, b));
        return;
    }
    for (int64_t i = 0; i < left; i += 16) {
        const __mmask16 k = tail_mask(left - i);
        _mm512_mask_cvtepi32_storeu_epi8(q + i, k, round_clamped(_mm512_maskz_loadu_ps(k, x + i), inv, hi));
    }
}

/* ---- sign: four compare masks joined into one 64-bit byte mask, one blend, one store */

INLINE void sign_block(const float *restrict x, int64_t left, __m512 threshold, int8_t *restrict q) {
    const __m512i minus = _mm512_set1_epi8(-1), plus = _mm512_set1_epi8(1);
    uint64_t ge = 0;
    for (int v = 0; v < 4; v++) {
        const __mmask16 k = tail_mask(left - 16 * v);
        const __m512 a = left >= 64 ? _mm512_loadu_ps(x + 16 * v) : _mm512_maskz_loadu_ps(k, x + 16 * v);
        ge |= (uint64_t)_mm512_cmp_ps_mask(a, threshold, _CMP_GE_OQ) << (16 * v);
    }
    const __m512i b = _mm512_mask_blend_epi8((__mmask64)ge, minus, plus);
    if (left >= 64) _mm512_storeu_si512((void *)q, b);
    else _mm512_mask_storeu_epi8(q, (__mmask64)(((uint64_t)1 << left) - 1), b);
}

/* ---- the kernels: loops over blocks, the fused ones one block of each per iteration */

static int absmax_avx512(const float *restrict x, int64_t n, float *restrict out) {
    __m512i m[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int64_t i = 0; i < n; i += 64) absmax_block(m, x + i, n - i);
    return absmax_finish(m, out);
}

INLINE int sums_loop(const float *restrict x, int64_t n, double *restrict sum, double *restrict abssum,
                     const int with_sum) {
    __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    for (int64_t i = 0; i < n; i += 64) sums_block(acc, x + i, n - i, with_sum);
    return sums_finish(acc, sum, abssum);
}

static int sums_avx512(const float *restrict x, int64_t n, double *restrict sum, double *restrict abssum) {
    return sum ? sums_loop(x, n, sum, abssum, 1) : sums_loop(x, n, NULL, abssum, 0);
}

static void quantize_avx512(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q) {
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps((float)qmax);
    for (int64_t i = 0; i < n; i += 64) quantize_block(x + i, n - i, vinv, hi, q + i);
}

static void sign_avx512(const float *restrict x, int64_t n, float threshold, int8_t *restrict q) {
    const __m512 t = _mm512_set1_ps(threshold);
    for (int64_t i = 0; i < n; i += 64) sign_block(x + i, n - i, t, q + i);
}

static int quantize_absmax_avx512(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q,
                                  const float *restrict y, float *restrict out) {
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps((float)qmax);
    __m512i m[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    /* the max and the codes do not depend on the order: a head of up to 15 floats first, so
     * that the stream of y from memory (and x, when the scopes are a multiple of 16 floats)
     * loads whole cache lines; a load across two lines costs two */
    int64_t i = (int64_t)((64 - ((uintptr_t)y & 63)) & 63) / 4;
    if (i > n) i = n;
    if (i > 0) {
        absmax_block(m, y, i);
        quantize_block(x, i, vinv, hi, q);
    }
    for (; i < n; i += 64) {
        PF(y + i);
        absmax_block(m, y + i, n - i);
        quantize_block(x + i, n - i, vinv, hi, q + i);
    }
    return absmax_finish(m, out);
}

INLINE int quantize_sums_loop(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q,
                              const float *restrict y, double *restrict sum, double *restrict abssum, const int with_sum) {
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps((float)qmax);
    __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    for (int64_t i = 0; i < n; i += 64) {
        PF(y + i);
        sums_block(acc, y + i, n - i, with_sum);
        quantize_block(x + i, n - i, vinv, hi, q + i);
    }
    return sums_finish(acc, sum, abssum);
}

static int quantize_sums_avx512(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q,
                                const float *restrict y, double *restrict sum, double *restrict abssum) {
    return sum ? quantize_sums_loop(x, n, inv, qmax, q, y, sum, abssum, 1)
               : quantize_sums_loop(x, n, inv, qmax, q, y, NULL, abssum, 0);
}

static int sign_sums_avx512(const float *restrict x, int64_t n, float threshold, int8_t *restrict q,
                            const float *restrict y, double *restrict sum, double *restrict abssum) {
    const __m512 t = _mm512_set1_ps(threshold);
    __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    for (int64_t i = 0; i < n; i += 64) {
        PF(y + i);
        sums_block(acc, y + i, n - i, sum != NULL);
        sign_block(x + i, n - i, t, q + i);
    }
    return sums_finish(acc, sum, abssum);
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
    SET(absmax) SET(sums) SET(quantize) SET(sign) SET(quantize_absmax) SET(quantize_sums) SET(sign_sums) SET(dot_b1) SET(dot_b2) SET(dot_b4) SET(dot_b8)
#undef SET
}
#endif
