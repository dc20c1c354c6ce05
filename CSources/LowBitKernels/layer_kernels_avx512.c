/* AVX-512F float kernels: the contracts of lowbit_kernels.def, 16 lanes at a time, with the
 * scalar twins' operations in the same order (masked loads pad tails with +0.0). */
#include "lowbit_internal.h"
#include "adamw_lanes.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang fp contract(off)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))), apply_to = function)

#define INLINE static inline __attribute__((always_inline))

INLINE __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

/* lowbit_expf, lane by lane */
INLINE __m512 exp16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(LOWBIT_EXP_LO));
    x = _mm512_min_ps(x, _mm512_set1_ps(LOWBIT_EXP_HI));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOWBIT_EXP_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LOWBIT_EXP_C1), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LOWBIT_EXP_C2), r);
    const __m512 z = _mm512_mul_ps(r, r);
    __m512 p = _mm512_set1_ps(LOWBIT_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LOWBIT_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LOWBIT_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LOWBIT_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LOWBIT_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LOWBIT_EXP_P5));
    __m512 y = _mm512_fmadd_ps(p, z, r);
    y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(bits));
}

/* lane l += lane l + w for w = 8, 4, 2, 1 */
INLINE float fold16(__m512 v) {
    const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    const __m128 d = _mm_add_ss(c, _mm_movehdup_ps(c));
    return _mm_cvtss_f32(d);
}

static float sum16_avx512(const float *x, int64_t n) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    return fold16(acc);
}

/* A row of up to 64 (attention's rows in the design's 60 steps) stays in registers: the same
 * operations in the same order as the three passes below, without the two reloads. */
static void softmax64(float *restrict x, int64_t n, __m512 s) {
    __m512 v[4];
    __mmask16 k[4];
    __m512 m = _mm512_set1_ps(-INFINITY);
    const int blocks = (int)((n + 15) / 16);
    for (int b = 0; b < blocks; b++) {
        k[b] = tail_mask(n - 16 * b);
        v[b] = _mm512_mul_ps(_mm512_maskz_loadu_ps(k[b], x + 16 * b), s);
        m = _mm512_mask_max_ps(m, k[b], m, v[b]);
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        v[b] = _mm512_maskz_mov_ps(k[b], exp16(_mm512_sub_ps(v[b], mx)));
        acc = _mm512_add_ps(acc, v[b]);
    }
    const __m512 total = _mm512_set1_ps(fold16(acc));
    for (int b = 0; b < blocks; b++) _mm512_mask_storeu_ps(x + 16 * b, k[b], _mm512_div_ps(v[b], total));
}

static void softmax_avx512(float *restrict x, int64_t n, float scale) {
    const __m512 s = _mm512_set1_ps(scale);
    if (n <= 64) {
        softmax64(x, n, s);
        return;
    }
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), s);
        _mm512_mask_storeu_ps(x + i, k, v);
        m = _mm512_mask_max_ps(m, k, m, v);
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mx)));
        _mm512_mask_storeu_ps(x + i, k, e);
        acc = _mm512_add_ps(acc, e);
    }
    const __m512 total = _mm512_set1_ps(fold16(acc));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, k, _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), total));
    }
}

INLINE __m512 sigmoid16(__m512 u) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 e = exp16(_mm512_xor_ps(u, _mm512_set1_ps(-0.0f)));  /* -u, as the scalar twin */
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

static void silu_avx512(const float *restrict u, int64_t n, float *restrict a) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(k, u + i);
        _mm512_mask_storeu_ps(a + i, k, _mm512_mul_ps(v, sigmoid16(v)));
    }
}

static void silu_backward_avx512(const float *restrict u, int64_t n, float *restrict g) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(k, u + i), s = sigmoid16(v);
        const __m512 f = _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(v, _mm512_sub_ps(one, s))));
        _mm512_mask_storeu_ps(g + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), f));
    }
}

static void layernorm_avx512(const float *restrict x, int64_t d, const float *restrict gamma, const float *restrict beta,
                             float eps, float *restrict y, float *restrict xhat, float *restrict rstd) {
    const float mean = sum16_avx512(x, d) / (float)d;
    const __m512 mv = _mm512_set1_ps(mean);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < d; i += 16) {
        const __mmask16 k = tail_mask(d - i);
        const __m512 t = _mm512_maskz_mov_ps(k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mv));
        acc = _mm512_add_ps(acc, _mm512_mul_ps(t, t));
    }
    const float r = 1.0f / sqrtf(fold16(acc) / (float)d + eps);
    const __m512 rv = _mm512_set1_ps(r);
    for (int64_t i = 0; i < d; i += 16) {
        const __mmask16 k = tail_mask(d - i);
        const __m512 h = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mv), rv);
        if (xhat) _mm512_mask_storeu_ps(xhat + i, k, h);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(h, _mm512_maskz_loadu_ps(k, gamma + i), _mm512_maskz_loadu_ps(k, beta + i)));
    }
    *rstd = r;
}

/* Attention's register tile: NR (1..4) rows of a small matrix a (ld lda) times `depth` rows of
 * b (ld ldb), NV (1..4) vectors of 16 columns wide: out[r][.] = sum over t of a[r][t] b[t][.],
 * t in order, one FMA chain per (row, vector). Each load of b feeds NR rows' FMAs, and the
 * NR x NV chains are independent (one row's one or two would wait on the FMA's latency: the
 * causal rows are mostly short). With `ends` (combine), row r stops after ends[r] terms: its
 * FMAs are masked off past it, so its sums are exactly its own, and its a past it is not read.
 * NR, NV and whether there are ends are constants in every expansion: no branches in the loop.
 * scores: a = queries, b = keys transposed, depth = width; combine: a = weights, b = v. */
INLINE void tile(const int NR, const int NV, const float *restrict a, int64_t lda, const int64_t *ends, int64_t depth,
                 const float *restrict b, int64_t ldb, const __mmask16 *k, float *restrict out, int64_t ldo) {
    __m512 acc[4][4];
    for (int r = 0; r < NR; r++)
        for (int x = 0; x < NV; x++) acc[r][x] = _mm512_setzero_ps();
    for (int64_t t = 0; t < depth; t++) {
        __m512 bt[4];
        for (int x = 0; x < NV; x++) bt[x] = _mm512_maskz_loadu_ps(k[x], b + t * ldb + 16 * x);
        for (int r = 0; r < NR; r++) {
            const int live = !ends || t < ends[r];
            const __m512 ar = _mm512_set1_ps(live ? a[r * lda + t] : 0.0f);
            for (int x = 0; x < NV; x++)
                acc[r][x] = ends ? _mm512_mask3_fmadd_ps(ar, bt[x], acc[r][x], live ? 0xffff : 0)
                                 : _mm512_fmadd_ps(ar, bt[x], acc[r][x]);
        }
    }
    for (int r = 0; r < NR; r++)
        for (int x = 0; x < NV; x++) _mm512_mask_storeu_ps(out + r * ldo + 16 * x, k[x], acc[r][x]);
}

/* Rows of a in blocks of 4, columns of b in blocks of 64, each block through its expansion
 * of `tile` (ends: NULL for scores). */
INLINE void tiles(const float *restrict a, int64_t lda, int nq, const int64_t *ends, int64_t depth, const float *restrict b,
                  int64_t ldb, int64_t cols, float *restrict out, int64_t ldo) {
    for (int r0 = 0; r0 < nq; r0 += 4) {
        const int nr = nq - r0 < 4 ? nq - r0 : 4;
        int64_t most = depth;
        if (ends) {
            most = 0;
            for (int r = 0; r < nr; r++) most = ends[r0 + r] > most ? ends[r0 + r] : most;
        }
        for (int64_t c = 0; c < cols; c += 64) {
            const int nv = cols - c >= 64 ? 4 : (int)((cols - c + 15) / 16);
            const __mmask16 k[4] = {tail_mask(cols - c), tail_mask(cols - c - 16), tail_mask(cols - c - 32),
                                    tail_mask(cols - c - 48)};
            const float *ar = a + r0 * lda, *bc = b + c;
            const int64_t *e = ends ? ends + r0 : NULL;
            float *o = out + r0 * ldo + c;
            switch ((nr - 1) * 4 + nv - 1) {
#define CASE(R, V)                                                                      \
    case (R - 1) * 4 + V - 1:                                                           \
        if (e) tile(R, V, ar, lda, e, most, bc, ldb, k, o, ldo);                        \
        else tile(R, V, ar, lda, NULL, most, bc, ldb, k, o, ldo);                       \
        break;
            CASE(1, 1) CASE(1, 2) CASE(1, 3) CASE(1, 4) CASE(2, 1) CASE(2, 2) CASE(2, 3) CASE(2, 4)
            CASE(3, 1) CASE(3, 2) CASE(3, 3) CASE(3, 4) CASE(4, 1) CASE(4, 2) CASE(4, 3) CASE(4, 4)
#undef CASE
            }
        }
    }
}

static void scores_avx512(const float *restrict q, int64_t ldq, int nq, const float *restrict kt, int64_t ldk,
                          int64_t width, int64_t count, float *restrict out, int64_t ldo) {
    tiles(q, ldq, nq, NULL, width, kt, ldk, count, out, ldo);
}

static void combine_avx512(const float *restrict p, int64_t ldp, int nq, const int64_t *restrict counts,
                           const float *restrict v, int64_t ldv, int64_t width, float *restrict out, int64_t ldo) {
    tiles(p, ldp, nq, counts, 0, v, ldv, width, out, ldo);
}

/* The top 24 bits of SplitMix64's output for the states z (8 lanes): its last step,
 * z ^ (z >> 31), leaves bits 40..63 as they are, so it is left out. */
INLINE __m512i splitmix_top24(__m512i z) {
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ull));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64((long long)0x94D049BB133111EBull));
    return _mm512_srli_epi64(z, 40);
}

/* The draws of the states z0 (lanes 0..7) and z1 (8..15), as floats in [0, 1): the 24-bit
 * integers packed into 32-bit lanes (exactly converted) in one conversion. */
INLINE __m512 draws16(__m512i z0, __m512i z1) {
    const __m512i both = _mm512_permutex2var_epi32(splitmix_top24(z0),
                                                   _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
                                                   splitmix_top24(z1));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(both), _mm512_set1_ps(0x1p-24f));
}

/* Draw d's state is state + d * increment (mod 2^64): computed once for the first 16 draws,
 * then stepped by an add, one 64-bit multiply per 8 draws fewer than from d each time. */
static void quantize_stochastic_avx512(const float *restrict x, int64_t n, float inv, uint64_t state, int64_t first,
                                       int8_t *restrict q) {
    const __m512 iv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    const __m512i increment = _mm512_set1_epi64((long long)LOWBIT_SPLITMIX_INCREMENT);
    const __m512i step = _mm512_set1_epi64((long long)(16 * LOWBIT_SPLITMIX_INCREMENT));
    const __m512i index = _mm512_add_epi64(_mm512_set1_epi64(first + 1), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    __m512i z0 = _mm512_add_epi64(_mm512_set1_epi64((long long)state), _mm512_mullo_epi64(index, increment));
    __m512i z1 = _mm512_add_epi64(z0, _mm512_set1_epi64((long long)(8 * LOWBIT_SPLITMIX_INCREMENT)));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 u = draws16(z0, z1);
        z0 = _mm512_add_epi64(z0, step), z1 = _mm512_add_epi64(z1, step);
        __m512 r = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), iv), u);
        r = _mm512_roundscale_ps(r, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
        _mm_mask_storeu_epi8(q + i, k, _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(r)));
    }
}

static void dequantize_avx512(const int32_t *restrict acc, int rows, int nr, uint32_t step, const uint32_t *restrict corr,
                              const float *restrict xs, const float *restrict ws, const float *restrict base,
                              float *restrict y, int64_t ldy) {
    const __mmask16 k = tail_mask(rows);
    const __m512 w = _mm512_maskz_loadu_ps(k, ws), b = base ? _mm512_maskz_loadu_ps(k, base) : _mm512_setzero_ps();
    const __m512i st = _mm512_set1_epi32((int)step);
    for (int i = 0; i < nr; i++) {
        __m512i a = _mm512_maskz_loadu_epi32(k, acc + i * LOWBIT_PANEL_ROWS);
        if (step != 1) a = _mm512_mullo_epi32(st, a);
        a = _mm512_sub_epi32(a, _mm512_set1_epi32((int)corr[i]));
        const __m512 prod = _mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(_mm512_set1_ps(xs[i]), w));
        float *row = y + i * ldy;
        _mm512_mask_storeu_ps(row, k, _mm512_add_ps(base ? b : _mm512_maskz_loadu_ps(k, row), prod));
    }
}

LOWBIT_DEFINE_ADAMW(adamw_avx512, 16)

#pragma clang attribute pop

void lowbit_table_init_layers_avx512(lowbit_kernel_table *t) {
#define SET(name)              \
    t->name = name##_avx512;   \
    t->name##_isa = LOWBIT_ISA_AVX512;
    SET(softmax) SET(silu) SET(silu_backward) SET(layernorm) SET(scores) SET(quantize_stochastic) SET(combine) SET(dequantize) SET(adamw)
#undef SET
}
#endif
