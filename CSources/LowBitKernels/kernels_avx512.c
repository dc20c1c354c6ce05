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
/* How far ahead the fused sums kernels prefetch y: 1 KiB. Their arithmetic is heavy
 * enough that the hardware prefetcher alone leaves the stream from L3 short of loads
 * in flight (binary: 68 -> 77 GB/s, ternary: 74 -> 78, measured by lowbit bench quantize). */
#define PREFETCH_FLOATS 256
INLINE void prefetch_block(const float *p) {
    for (int l = 0; l < 4; l++) _mm_prefetch((const char *)(p + PREFETCH_FLOATS + 16 * l), _MM_HINT_T0);
}

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
 * lane l of (v0 + v1) + (v2 + v3) is the block's float sum for lane l, added to the float
 * partials fs (|x|: fa); every 16 blocks two conversions take them into the eight-double
 * partials acc[0..1] (|x|: acc[2..3]). */

/* a + b computed by the FMA units, a * 1 + b: the same rounding as an add (one rounding of
 * the exact sum), but it runs on the multiply pipes, which the sums leave idle while the
 * add pipes are the bottleneck. The compiler would turn a visible * 1.0 back into an add. */
INLINE __m512 add_on_fma(__m512 a, __m512 b) {
    __m512 one = _mm512_set1_ps(1.0f);
    __asm__("" : "+v"(one));
    return _mm512_fmadd_ps(a, one, b);
}

typedef struct {
    __m512 fs, fa;
    __m512d acc[4];
    int blocks;
} sums_acc;

INLINE void sums_init(sums_acc *a) {
    a->fs = a->fa = _mm512_setzero_ps();
    for (int i = 0; i < 4; i++) a->acc[i] = _mm512_setzero_pd();
    a->blocks = 0;
}

INLINE __m512d high_half_pd(__m512 v) {
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

INLINE void sums_flush(sums_acc *a, const int with_sum) {
    if (with_sum) {
        a->acc[0] = _mm512_add_pd(a->acc[0], _mm512_cvtps_pd(_mm512_castps512_ps256(a->fs)));
        a->acc[1] = _mm512_add_pd(a->acc[1], high_half_pd(a->fs));
    }
    a->acc[2] = _mm512_add_pd(a->acc[2], _mm512_cvtps_pd(_mm512_castps512_ps256(a->fa)));
    a->acc[3] = _mm512_add_pd(a->acc[3], high_half_pd(a->fa));
    a->fs = a->fa = _mm512_setzero_ps();
    a->blocks = 0;
}

INLINE void sums_add(sums_acc *a, const __m512 v[4], const int with_sum) {
    if (with_sum)
        a->fs = _mm512_add_ps(a->fs, _mm512_add_ps(add_on_fma(v[0], v[1]), add_on_fma(v[2], v[3])));
    const __m512 u = _mm512_add_ps(add_on_fma(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1])),
                                   _mm512_add_ps(_mm512_abs_ps(v[2]), _mm512_abs_ps(v[3])));
    a->fa = _mm512_add_ps(a->fa, u);
    if (++a->blocks == LOWBIT_SUMS_SUPERBLOCK) sums_flush(a, with_sum);
}

INLINE void sums_block(sums_acc *a, const float *restrict x, int64_t left, const int with_sum) {
    __m512 v[4];
    for (int q = 0; q < 4; q++) /* masked-off lanes load +0.0: the padding */
        v[q] = left >= 64 ? _mm512_loadu_ps(x + 16 * q) : _mm512_maskz_loadu_ps(tail_mask(left - 16 * q), x + 16 * q);
    sums_add(a, v, with_sum);
}

/* The blocks of a stream y that starts `off` (1..15) floats past a cache line, from whole-line
 * loads: each block vector joins two aligned ones (vpermt2ps). The sums cannot start at a
 * line instead, since their order is fixed from y[0]; and in the fused kernels a load across
 * two lines costs two, on load ports shared with the pass over x. */
typedef struct {
    const float *base; /* y - off: a cache line */
    __m512i join;      /* lane l takes element off + l of two adjacent aligned vectors */
    __m512 carry;      /* the aligned vector that starts the next block */
} line_stream;

INLINE void line_stream_start(line_stream *st, const float *y, int64_t off) {
    st->base = y - off;
    st->join = _mm512_add_epi32(_mm512_set1_epi32((int)off), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    st->carry = _mm512_maskz_load_ps((__mmask16)(0xffffu << off), st->base); /* nothing before y */
}

/* Block y[i .. i+63]; needs y[i+64 .. i+79-off] to be in the stream too (i + 80 <= n). */
INLINE void line_stream_block(line_stream *st, int64_t i, __m512 v[4]) {
    for (int q = 0; q < 4; q++) {
        const __m512 next = _mm512_load_ps(st->base + i + 16 * (q + 1));
        v[q] = _mm512_permutex2var_ps(st->carry, st->join, next);
        st->carry = next;
    }
}

/* The offset of y past a cache line, in floats, when it is worth streaming y by lines. */
INLINE int64_t line_offset(const float *y, int64_t n) {
    return n >= 256 && ((uintptr_t)y & 3) == 0 ? (int64_t)((uintptr_t)y & 63) / 4 : 0;
}

INLINE int sums_finish(sums_acc *a, double *restrict sum, double *restrict abssum, const int with_sum) {
    if (a->blocks) sums_flush(a, with_sum);
    double lane[16];
    if (with_sum) {
        _mm512_storeu_pd(lane, a->acc[0]);
        _mm512_storeu_pd(lane + 8, a->acc[1]);
        *sum = lowbit_reduce16(lane);
    }
    _mm512_storeu_pd(lane, a->acc[2]);
    _mm512_storeu_pd(lane + 8, a->acc[3]);
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
    sums_acc a;
    sums_init(&a);
    for (int64_t i = 0; i < n; i += 64) sums_block(&a, x + i, n - i, with_sum);
    return sums_finish(&a, sum, abssum, with_sum);
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
        absmax_block(m, y + i, n - i);
        quantize_block(x + i, n - i, vinv, hi, q + i);
    }
    return absmax_finish(m, out);
}

INLINE int quantize_sums_loop(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q,
                              const float *restrict y, double *restrict sum, double *restrict abssum, const int with_sum) {
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps((float)qmax);
    sums_acc a;
    sums_init(&a);
    int64_t i = 0;
    const int64_t off = line_offset(y, n);
    if (off) {
        line_stream st;
        line_stream_start(&st, y, off);
        for (; i + 80 <= n; i += 64) {
            __m512 v[4];
            prefetch_block(st.base + i);
            line_stream_block(&st, i, v);
            sums_add(&a, v, with_sum);
            quantize_block(x + i, 64, vinv, hi, q + i);
        }
    }
    for (; i < n; i += 64) {
        sums_block(&a, y + i, n - i, with_sum);
        quantize_block(x + i, n - i, vinv, hi, q + i);
    }
    return sums_finish(&a, sum, abssum, with_sum);
}

static int quantize_sums_avx512(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q,
                                const float *restrict y, double *restrict sum, double *restrict abssum) {
    return sum ? quantize_sums_loop(x, n, inv, qmax, q, y, sum, abssum, 1)
               : quantize_sums_loop(x, n, inv, qmax, q, y, NULL, abssum, 0);
}

INLINE int sign_sums_loop(const float *restrict x, int64_t n, float threshold, int8_t *restrict q,
                          const float *restrict y, double *restrict sum, double *restrict abssum, const int with_sum) {
    const __m512 t = _mm512_set1_ps(threshold);
    sums_acc a;
    sums_init(&a);
    int64_t i = 0;
    const int64_t off = line_offset(y, n);
    if (off) {
        line_stream st;
        line_stream_start(&st, y, off);
        for (; i + 80 <= n; i += 64) {
            __m512 v[4];
            prefetch_block(st.base + i);
            line_stream_block(&st, i, v);
            sums_add(&a, v, with_sum);
            sign_block(x + i, 64, t, q + i);
        }
    }
    for (; i < n; i += 64) {
        sums_block(&a, y + i, n - i, with_sum);
        sign_block(x + i, n - i, t, q + i);
    }
    return sums_finish(&a, sum, abssum, with_sum);
}

static int sign_sums_avx512(const float *restrict x, int64_t n, float threshold, int8_t *restrict q,
                            const float *restrict y, double *restrict sum, double *restrict abssum) {
    return sum ? sign_sums_loop(x, n, threshold, q, y, sum, abssum, 1)
               : sign_sums_loop(x, n, threshold, q, y, NULL, abssum, 0);
}

#define LOWBIT_DOT_SUFFIX _avx512
#define LOWBIT_DOT_VNNI 0
#define LOWBIT_DOT_GFNI 0
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
