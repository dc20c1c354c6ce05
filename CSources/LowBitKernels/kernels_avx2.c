/* AVX2 kernels. Compiled with a per-region target attribute (no -mavx2), called only when
 * the CPU has AVX2 and FMA. The 4-way byte dot product is vpmaddubsw + vpmaddwd. */
#include "lowbit_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <float.h>
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define INLINE static inline __attribute__((always_inline))

/* |x| compared as unsigned integers (non-negative floats order like their bit patterns, and
 * NaN and Inf lie above every finite one): one max per vector, four chains. */
static int absmax_avx2(const float *restrict x, int64_t n, float *restrict out) {
    const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
    __m256i m[4];
    for (int c = 0; c < 4; c++) m[c] = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int c = 0; c < 4; c++)
            m[c] = _mm256_max_epu32(m[c], _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i + 8 * c)), magnitude));
    const __m256i all = _mm256_max_epu32(_mm256_max_epu32(m[0], m[1]), _mm256_max_epu32(m[2], m[3]));
    uint32_t lanes[8], top = 0;
    _mm256_storeu_si256((__m256i *)lanes, all);
    for (int l = 0; l < 8; l++) top = lanes[l] > top ? lanes[l] : top;
    float head, tail;
    memcpy(&head, &top, sizeof head);
    const int bad = top >= 0x7f800000u;
    const int tail_bad = lowbit_absmax_scalar(x + i, n - i, &tail);
    *out = tail > head ? tail : head;
    return bad | tail_bad;
}

/* The canonical order: a block of 64 is v[q] = b[16q..16q+15], in two ymm halves each
 * (lanes 8h .. 8h+7); float partials fs/fa per half, flushed into the doubles every 16 blocks. */
static int sums_avx2(const float *restrict x, int64_t n, double *restrict sum, double *restrict abssum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 fs[2], fa[2];
    __m256d s[4], a[4];
    for (int h = 0; h < 2; h++) fs[h] = fa[h] = _mm256_setzero_ps();
    for (int l = 0; l < 4; l++) s[l] = a[l] = _mm256_setzero_pd();
    int64_t i = 0;
    int blocks = 0;
    for (; i + 64 <= n; i += 64) {
        for (int h = 0; h < 2; h++) {
            const __m256 v0 = _mm256_loadu_ps(x + i + 8 * h), v1 = _mm256_loadu_ps(x + i + 16 + 8 * h);
            const __m256 v2 = _mm256_loadu_ps(x + i + 32 + 8 * h), v3 = _mm256_loadu_ps(x + i + 48 + 8 * h);
            fs[h] = _mm256_add_ps(fs[h], _mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3)));
            fa[h] = _mm256_add_ps(fa[h], _mm256_add_ps(_mm256_add_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                                       _mm256_add_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3))));
        }
        if (++blocks == LOWBIT_SUMS_SUPERBLOCK) {
            for (int h = 0; h < 2; h++) {
                s[2 * h] = _mm256_add_pd(s[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(fs[h])));
                s[2 * h + 1] = _mm256_add_pd(s[2 * h + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(fs[h], 1)));
                a[2 * h] = _mm256_add_pd(a[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(fa[h])));
                a[2 * h + 1] = _mm256_add_pd(a[2 * h + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(fa[h], 1)));
                fs[h] = fa[h] = _mm256_setzero_ps();
            }
            blocks = 0;
        }
    }
    lowbit_sums_state st = {.blocks = blocks};
    for (int h = 0; h < 2; h++) {
        _mm256_storeu_ps(st.fs + 8 * h, fs[h]);
        _mm256_storeu_ps(st.fa + 8 * h, fa[h]);
    }
    for (int l = 0; l < 4; l++) {
        _mm256_storeu_pd(st.s + 4 * l, s[l]);
        _mm256_storeu_pd(st.a + 4 * l, a[l]);
    }
    if (i < n) lowbit_sums_tail(&st, x + i, n - i);
    return lowbit_sums_finish(&st, sum, abssum);
}

/* 32 at a time into one store: packing 4 x 8 int32 to bytes leaves them grouped by 128-bit
 * lane (dword l*4 + v holds vector v's elements 4l..4l+3); one permute fixes the order. */
static void quantize_avx2(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q) {
    const __m256 vinv = _mm256_set1_ps(inv), hi = _mm256_set1_ps((float)qmax), lo = _mm256_set1_ps(-(float)qmax);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a[4];
        for (int v = 0; v < 4; v++) {
            const __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * v), vinv),
                                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            a[v] = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(r, hi), lo)); /* integral: exact */
        }
        const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(a[0], a[1]), _mm256_packs_epi32(a[2], a[3]));
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(b, order));
    }
    lowbit_quantize_scalar(x + i, n - i, inv, qmax, q + i);
}

static void sign_avx2(const float *restrict x, int64_t n, float threshold, int8_t *restrict q) {
    const __m256 t = _mm256_set1_ps(threshold);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        /* all-ones (-1) where x < t, else 0; then 2 * that + 1 gives -1 or +1 */
        const __m256i lt = _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(x + i), t, _CMP_NGE_UQ));
        const __m256i v = _mm256_add_epi32(_mm256_add_epi32(lt, lt), _mm256_set1_epi32(1));
        const __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packs_epi16(h, h));
    }
    lowbit_sign_scalar(x + i, n - i, threshold, q + i);
}

LOWBIT_DEFINE_FUSED_BY_PARTS(static, , _avx2)

/* acc += 4-way dot of unsigned codes u (<= 15) and signed bytes s, per int32 lane. */
INLINE __m256i dp_small(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

/* The same for full 8-bit codes, by the sign trick: with w = code - 128 (code xor 0x80),
 * vpmaddubsw(|w|, sign(s, w)) is w * s summed in pairs, exactly: |w| <= 128 fits the
 * unsigned operand and, s being in [-127, 127] (the contract), -s never wraps and
 * 2 * 128 * 127 < 2^15. The tile adds 128 * sum(s) back to turn w * s into code * s.
 * Three vector operations a token fewer than splitting the codes into nibbles. */
INLINE __m256i dp_signed(__m256i acc, __m256i wabs, __m256i w, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, _mm256_sign_epi8(s, w)),
                                                   _mm256_set1_epi16(1)));
}

/* sum of n signed bytes (n a multiple of 4) */
INLINE int32_t sum_bytes(const int8_t *restrict x, int64_t n) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m256i s = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) /* sum(x + 128) in 4 lanes, by vpsadbw against 0 */
        s = _mm256_add_epi64(s, _mm256_sad_epu8(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + i)), flip),
                                                _mm256_setzero_si256()));
    int64_t t = _mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) + _mm256_extract_epi64(s, 2) +
                _mm256_extract_epi64(s, 3) - 128 * i;
    for (; i < n; i++) t += x[i];
    return (int32_t)t;
}

/* One panel (two ymm of 8 rows) times NR <= 4 tokens: sums of code * x, or with `values`
 * (8-bit codes only) of (code - 128) * x, what the sign trick computes (dot_s8). */
INLINE void dot_tile(const int bits, const int values, const int NR, int64_t chunks, const uint8_t *restrict w,
                     const int8_t *restrict x, int64_t ldx, int32_t *restrict acc) {
    const int planes = 8 / bits, chunk_k = 32 / bits;
    const __m256i mask = _mm256_set1_epi8((char)((1 << bits) - 1));
    __m256i a0[4], a1[4];
    for (int j = 0; j < NR; j++) a0[j] = a1[j] = _mm256_setzero_si256();
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int64_t c = 0; c < chunks; c++) {
        const __m256i v0 = _mm256_loadu_si256((const __m256i *)(w + c * 64));
        const __m256i v1 = _mm256_loadu_si256((const __m256i *)(w + c * 64 + 32));
        if (bits == 8) {
            const __m256i w0 = _mm256_xor_si256(v0, flip), w1 = _mm256_xor_si256(v1, flip);
            const __m256i m0 = _mm256_abs_epi8(w0), m1 = _mm256_abs_epi8(w1);
            for (int j = 0; j < NR; j++) {
                const __m256i xb = _mm256_set1_epi32(lowbit_load_i32(x + c * 4 + j * ldx));
                a0[j] = dp_signed(a0[j], m0, w0, xb);
                a1[j] = dp_signed(a1[j], m1, w1, xb);
            }
            continue;
        }
        for (int p = 0; p < planes; p++) {
            const __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(v0, p * bits), mask);
            const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(v1, p * bits), mask);
            const int8_t *xp = x + c * chunk_k + 4 * p;
            for (int j = 0; j < NR; j++) {
                const __m256i xb = _mm256_set1_epi32(lowbit_load_i32(xp + j * ldx));
                a0[j] = dp_small(a0[j], c0, xb);
                a1[j] = dp_small(a1[j], c1, xb);
            }
        }
    }
    for (int j = 0; j < NR; j++) {
        if (bits == 8 && !values) { /* back from w * x to code * x */
            const __m256i corr = _mm256_set1_epi32(128 * sum_bytes(x + j * ldx, chunks * 4));
            a0[j] = _mm256_add_epi32(a0[j], corr);
            a1[j] = _mm256_add_epi32(a1[j], corr);
        }
        _mm256_storeu_si256((__m256i *)(acc + 16 * j), a0[j]);
        _mm256_storeu_si256((__m256i *)(acc + 16 * j + 8), a1[j]);
    }
}

INLINE void codes_tile(const int bits, const int NR, int64_t chunks, const uint8_t *restrict w,
                       const int8_t *restrict x, int64_t ldx, int32_t *restrict acc) {
    dot_tile(bits, 0, NR, chunks, w, x, ldx, acc);
}

INLINE void values_tile(const int bits, const int NR, int64_t chunks, const uint8_t *restrict w,
                        const int8_t *restrict x, int64_t ldx, int32_t *restrict acc) {
    dot_tile(bits, 1, NR, chunks, w, x, ldx, acc);
}

INLINE void dot_avx2(const int bits, int64_t chunks, const uint8_t *restrict w, const int8_t *restrict x,
                     int64_t ldx, int nr, int32_t *restrict acc) {
    LOWBIT_TOKENS_BY_4(codes_tile, bits, chunks, w, x, ldx, nr, acc)
}

INLINE void values_avx2(const int bits, int64_t chunks, const uint8_t *restrict w, const int8_t *restrict x,
                        int64_t ldx, int nr, int32_t *restrict acc) {
    LOWBIT_TOKENS_BY_4(values_tile, bits, chunks, w, x, ldx, nr, acc)
}

#define DEFINE_DOT(B) LOWBIT_DEFINE_DOT_BY_PANEL(B, _avx2, dot_avx2)
DEFINE_DOT(1)
DEFINE_DOT(2)
DEFINE_DOT(4)
DEFINE_DOT(8)

static void dot_s8_avx2(int64_t chunks, const uint8_t *restrict w, int64_t panel_stride, int np,
                        const int8_t *restrict x, int64_t ldx, int nr, int32_t *restrict acc) {
    for (int q = 0; q < np; q++)
        values_avx2(8, chunks, w + q * panel_stride, x, ldx, nr, acc + q * LOWBIT_MAX_NR * LOWBIT_PANEL_ROWS);
}

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

void lowbit_table_init_avx2(lowbit_kernel_table *t) {
#define SET(name)              \
    t->name = name##_avx2;     \
    t->name##_isa = LOWBIT_ISA_AVX2;
    SET(absmax) SET(sums) SET(quantize) SET(sign) SET(quantize_absmax) SET(quantize_sums) SET(sign_sums) SET(dot_b1) SET(dot_b2) SET(dot_b4) SET(dot_b8) SET(dot_s8)
#undef SET
}
#endif
