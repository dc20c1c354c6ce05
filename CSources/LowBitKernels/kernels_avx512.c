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

static int absmax_avx512(const float *restrict x, int64_t n, float *restrict out) {
    const __m512 big = _mm512_set1_ps(FLT_MAX);
    __m512 m = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
        bad |= _mm512_cmp_ps_mask(a, big, _CMP_NLE_UQ);
        m = _mm512_max_ps(m, a);
    }
    *out = _mm512_reduce_max_ps(m);
    return bad != 0;
}

static int sums_avx512(const float *restrict x, int64_t n, double *restrict sum, double *restrict abssum) {
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, a0 = s0, a1 = s0;
    for (int64_t i = 0; i < n; i += 16) {
        /* masked-off lanes load +0.0, and adding +0.0 leaves a partial sum unchanged */
        const __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
        const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        s0 = _mm512_add_pd(s0, lo);
        s1 = _mm512_add_pd(s1, hi);
        a0 = _mm512_add_pd(a0, _mm512_abs_pd(lo));
        a1 = _mm512_add_pd(a1, _mm512_abs_pd(hi));
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

static void quantize_avx512(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q) {
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps((float)qmax), lo = _mm512_set1_ps(-(float)qmax);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vinv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_max_ps(_mm512_min_ps(v, hi), lo);
        _mm512_mask_cvtepi32_storeu_epi8(q + i, k, _mm512_cvtps_epi32(v));
    }
}

static void sign_avx512(const float *restrict x, int64_t n, float threshold, int8_t *restrict q) {
    const __m512 t = _mm512_set1_ps(threshold);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __mmask16 ge = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k, x + i), t, _CMP_GE_OQ);
        _mm_mask_storeu_epi8(q + i, k, _mm_mask_blend_epi8(ge, _mm_set1_epi8(-1), _mm_set1_epi8(1)));
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
