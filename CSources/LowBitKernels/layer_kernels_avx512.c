/* AVX-512F float kernels: the contracts of lowbit_kernels.def, 16 lanes at a time, with the
 * scalar twins' operations in the same order (masked loads pad tails with +0.0). */
#include "lowbit_internal.h"

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

static void softmax_avx512(float *restrict x, int64_t n, float scale) {
    const __m512 s = _mm512_set1_ps(scale);
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

/* A register tile of NR (1..4) queries x NV (1..4) vectors of 16 keys: each load of keys
 * feeds NR queries' FMAs, and the NR x NV accumulators are independent chains (a single
 * query's one or two would wait on the FMA's latency: the causal rows are mostly short).
 * NR and NV are constants in every expansion, so the loops carry no branches. */
INLINE void scores_tile(const int NR, const int NV, const float *restrict q, int64_t ldq, const float *restrict kt,
                        int64_t ldk, int64_t width, const __mmask16 *k, float *restrict out, int64_t ldo) {
    __m512 a[4][4];
    for (int r = 0; r < NR; r++)
        for (int x = 0; x < NV; x++) a[r][x] = _mm512_setzero_ps();
    for (int64_t c = 0; c < width; c++) {
        __m512 v[4];
        for (int x = 0; x < NV; x++) v[x] = _mm512_maskz_loadu_ps(k[x], kt + c * ldk + 16 * x);
        for (int r = 0; r < NR; r++) {
            const __m512 qc = _mm512_set1_ps(q[r * ldq + c]);
            for (int x = 0; x < NV; x++) a[r][x] = _mm512_fmadd_ps(qc, v[x], a[r][x]);
        }
    }
    for (int r = 0; r < NR; r++)
        for (int x = 0; x < NV; x++) _mm512_mask_storeu_ps(out + r * ldo + 16 * x, k[x], a[r][x]);
}

static void scores_avx512(const float *restrict q, int64_t ldq, int nq, const float *restrict kt, int64_t ldk,
                          int64_t width, int64_t count, float *restrict out, int64_t ldo) {
    for (int r0 = 0; r0 < nq; r0 += 4) {
        const int nr = nq - r0 < 4 ? nq - r0 : 4;
        for (int64_t j = 0; j < count; j += 64) {
            const int nv = count - j >= 64 ? 4 : (int)((count - j + 15) / 16);
            const __mmask16 k[4] = {tail_mask(count - j), tail_mask(count - j - 16), tail_mask(count - j - 32),
                                    tail_mask(count - j - 48)};
            const float *qr = q + r0 * ldq, *kj = kt + j;
            float *o = out + r0 * ldo + j;
            switch ((nr - 1) * 4 + nv - 1) {
#define CASE(R, V) \
    case (R - 1) * 4 + V - 1: scores_tile(R, V, qr, ldq, kj, ldk, width, k, o, ldo); break;
            CASE(1, 1) CASE(1, 2) CASE(1, 3) CASE(1, 4) CASE(2, 1) CASE(2, 2) CASE(2, 3) CASE(2, 4)
            CASE(3, 1) CASE(3, 2) CASE(3, 3) CASE(3, 4) CASE(4, 1) CASE(4, 2) CASE(4, 3) CASE(4, 4)
#undef CASE
            }
        }
    }
}

/* NR (1..4) rows of weights x NV (1..4) vectors of 16 columns: each load of v feeds NR rows'
 * FMAs; a row whose count has ended keeps its accumulators by the FMA's mask (so its sums are
 * exactly its own) and its weights past the count are not read. */
INLINE void combine_tile(const int NR, const int NV, const float *restrict p, int64_t ldp, const int64_t *cnt, int64_t most,
                         const float *restrict v, int64_t ldv, const __mmask16 *k, float *restrict out, int64_t ldo) {
    __m512 a[4][4];
    for (int r = 0; r < NR; r++)
        for (int x = 0; x < NV; x++) a[r][x] = _mm512_setzero_ps();
    for (int64_t j = 0; j < most; j++) {
        __m512 vx[4];
        for (int x = 0; x < NV; x++) vx[x] = _mm512_maskz_loadu_ps(k[x], v + j * ldv + 16 * x);
        for (int r = 0; r < NR; r++) {
            const int live = j < cnt[r];
            const __mmask16 on = live ? 0xffff : 0;
            const __m512 pj = _mm512_set1_ps(live ? p[r * ldp + j] : 0.0f);
            for (int x = 0; x < NV; x++) a[r][x] = _mm512_mask3_fmadd_ps(pj, vx[x], a[r][x], on);
        }
    }
    for (int r = 0; r < NR; r++)
        for (int x = 0; x < NV; x++) _mm512_mask_storeu_ps(out + r * ldo + 16 * x, k[x], a[r][x]);
}

static void combine_avx512(const float *restrict p, int64_t ldp, int nq, const int64_t *restrict counts,
                           const float *restrict v, int64_t ldv, int64_t width, float *restrict out, int64_t ldo) {
    for (int r0 = 0; r0 < nq; r0 += 4) {
        const int nr = nq - r0 < 4 ? nq - r0 : 4;
        int64_t most = 0;
        for (int r = 0; r < nr; r++) most = counts[r0 + r] > most ? counts[r0 + r] : most;
        for (int64_t c = 0; c < width; c += 64) {
            const int nv = width - c >= 64 ? 4 : (int)((width - c + 15) / 16);
            const __mmask16 k[4] = {tail_mask(width - c), tail_mask(width - c - 16), tail_mask(width - c - 32),
                                    tail_mask(width - c - 48)};
            const float *pr = p + r0 * ldp, *vc = v + c;
            const int64_t *cnt = counts + r0;
            float *o = out + r0 * ldo + c;
            switch ((nr - 1) * 4 + nv - 1) {
#define CASE(R, V) \
    case (R - 1) * 4 + V - 1: combine_tile(R, V, pr, ldp, cnt, most, vc, ldv, k, o, ldo); break;
            CASE(1, 1) CASE(1, 2) CASE(1, 3) CASE(1, 4) CASE(2, 1) CASE(2, 2) CASE(2, 3) CASE(2, 4)
            CASE(3, 1) CASE(3, 2) CASE(3, 3) CASE(3, 4) CASE(4, 1) CASE(4, 2) CASE(4, 3) CASE(4, 4)
#undef CASE
            }
        }
    }
}

INLINE __m512i splitmix8(__m512i z) {
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ull));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64((long long)0x94D049BB133111EBull));
    return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

/* the draws j + 1 .. j + 8 for lanes 0..7, as floats in [0, 1) */
INLINE __m256 draws8(uint64_t state, int64_t j) {
    const __m512i index = _mm512_add_epi64(_mm512_set1_epi64(j + 1), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    const __m512i z = _mm512_add_epi64(_mm512_set1_epi64((long long)state),
                                       _mm512_mullo_epi64(index, _mm512_set1_epi64((long long)LOWBIT_SPLITMIX_INCREMENT)));
    return _mm256_mul_ps(_mm512_cvtepi64_ps(_mm512_srli_epi64(splitmix8(z), 40)), _mm256_set1_ps(0x1p-24f));
}

static void quantize_stochastic_avx512(const float *restrict x, int64_t n, float inv, uint64_t state, int64_t first,
                                       int8_t *restrict q) {
    const __m512 iv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 u = _mm512_insertf32x8(_mm512_castps256_ps512(draws8(state, first + i)), draws8(state, first + i + 8), 1);
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

static void adamw_avx512(float *restrict w, float *restrict m, float *restrict v, const float *restrict g, int64_t n,
                         const lowbit_adamw_step *restrict h) {
    const __m512 b1 = _mm512_set1_ps(h->beta1), b2 = _mm512_set1_ps(h->beta2);
    const __m512 a1 = _mm512_set1_ps(1.0f - h->beta1), a2 = _mm512_set1_ps(1.0f - h->beta2);
    const __m512 c1 = _mm512_set1_ps(h->c1), c2 = _mm512_set1_ps(h->c2), eps = _mm512_set1_ps(h->epsilon);
    const __m512 decay = _mm512_set1_ps(h->decay), lr = _mm512_set1_ps(h->learning_rate);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 gi = _mm512_maskz_loadu_ps(k, g + i), wi = _mm512_maskz_loadu_ps(k, w + i);
        const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(k, m + i)), _mm512_mul_ps(a1, gi));
        const __m512 vi =
            _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(k, v + i)), _mm512_mul_ps(_mm512_mul_ps(a2, gi), gi));
        const __m512 den = _mm512_add_ps(_mm512_sqrt_ps(_mm512_div_ps(vi, c2)), eps);
        const __m512 s = _mm512_add_ps(_mm512_div_ps(_mm512_div_ps(mi, c1), den), _mm512_mul_ps(decay, wi));
        _mm512_mask_storeu_ps(m + i, k, mi), _mm512_mask_storeu_ps(v + i, k, vi);
        _mm512_mask_storeu_ps(w + i, k, _mm512_sub_ps(wi, _mm512_mul_ps(lr, s)));
    }
}

#pragma clang attribute pop

void lowbit_table_init_layers_avx512(lowbit_kernel_table *t) {
#define SET(name)              \
    t->name = name##_avx512;   \
    t->name##_isa = LOWBIT_ISA_AVX512;
    SET(softmax) SET(silu) SET(silu_backward) SET(layernorm) SET(scores) SET(quantize_stochastic) SET(combine) SET(dequantize) SET(adamw)
#undef SET
}
#endif
