/* AVX2 + FMA float kernels: the contracts of lowbit_kernels.def, 8 lanes at a time; the
 * canonical 16-lane sums keep their 16 partials in two registers (lanes 0-7 and 8-15). */
#include "lowbit_internal.h"
#include "adamw_lanes.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang fp contract(off)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

#define INLINE static inline __attribute__((always_inline))

/* the first `left` lanes (0..8) */
INLINE __m256i tail_mask(int64_t left) {
    const int n = left >= 8 ? 8 : left <= 0 ? 0 : (int)left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
INLINE __m256 load(const float *p, int64_t left) {
    return left >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(left));
}
INLINE void store(float *p, int64_t left, __m256 v) {
    if (left >= 8) _mm256_storeu_ps(p, v);
    else if (left > 0) _mm256_maskstore_ps(p, tail_mask(left), v);
}
INLINE __m256 zero_past(__m256 v, int64_t left) {
    return left >= 8 ? v : _mm256_and_ps(v, _mm256_castsi256_ps(tail_mask(left)));
}

/* lowbit_expf, lane by lane */
INLINE __m256 exp8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(LOWBIT_EXP_LO));
    x = _mm256_min_ps(x, _mm256_set1_ps(LOWBIT_EXP_HI));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOWBIT_EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LOWBIT_EXP_C1), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LOWBIT_EXP_C2), r);
    const __m256 z = _mm256_mul_ps(r, r);
    __m256 p = _mm256_set1_ps(LOWBIT_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LOWBIT_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LOWBIT_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LOWBIT_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LOWBIT_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LOWBIT_EXP_P5));
    __m256 y = _mm256_fmadd_ps(p, z, r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

/* partials lo (lanes 0-7) and hi (8-15): lane l += lane l + w for w = 8, 4, 2, 1 */
INLINE float fold16(__m256 lo, __m256 hi) {
    const __m256 a = _mm256_add_ps(lo, hi);
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    const __m128 d = _mm_add_ss(c, _mm_movehdup_ps(c));
    return _mm_cvtss_f32(d);
}

static float sum16_avx2(const float *x, int64_t n) {
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    for (int64_t i = 0; i < n; i += 16) {
        lo = _mm256_add_ps(lo, load(x + i, n - i));
        hi = _mm256_add_ps(hi, load(x + i + 8, n - i - 8));
    }
    return fold16(lo, hi);
}

static void softmax_avx2(float *restrict x, int64_t n, float scale) {
    const __m256 s = _mm256_set1_ps(scale);
    float m = -INFINITY;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 v = _mm256_mul_ps(load(x + i, n - i), s);
        store(x + i, n - i, v);
        const __m256 keep = _mm256_castsi256_ps(tail_mask(n - i));
        mv = _mm256_max_ps(mv, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, keep));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, mv);
    for (int l = 0; l < 8; l++) m = lanes[l] > m ? lanes[l] : m;
    const __m256 mx = _mm256_set1_ps(m);
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    for (int64_t i = 0; i < n; i += 16) {
        const __m256 e0 = zero_past(exp8(_mm256_sub_ps(load(x + i, n - i), mx)), n - i);
        const __m256 e1 = zero_past(exp8(_mm256_sub_ps(load(x + i + 8, n - i - 8), mx)), n - i - 8);
        store(x + i, n - i, e0);
        store(x + i + 8, n - i - 8, e1);
        lo = _mm256_add_ps(lo, e0);
        hi = _mm256_add_ps(hi, e1);
    }
    const __m256 total = _mm256_set1_ps(fold16(lo, hi));
    for (int64_t i = 0; i < n; i += 8) store(x + i, n - i, _mm256_div_ps(load(x + i, n - i), total));
}

INLINE __m256 sigmoid8(__m256 u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = exp8(_mm256_xor_ps(u, _mm256_set1_ps(-0.0f)));  /* -u, as the scalar twin */
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

static void silu_avx2(const float *restrict u, int64_t n, float *restrict a) {
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 v = load(u + i, n - i);
        store(a + i, n - i, _mm256_mul_ps(v, sigmoid8(v)));
    }
}

static void silu_backward_avx2(const float *restrict u, int64_t n, float *restrict g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 v = load(u + i, n - i), s = sigmoid8(v);
        const __m256 f = _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(v, _mm256_sub_ps(one, s))));
        store(g + i, n - i, _mm256_mul_ps(load(g + i, n - i), f));
    }
}

static void layernorm_avx2(const float *restrict x, int64_t d, const float *restrict gamma, const float *restrict beta,
                           float eps, float *restrict y, float *restrict xhat, float *restrict rstd) {
    const float mean = sum16_avx2(x, d) / (float)d;
    const __m256 mv = _mm256_set1_ps(mean);
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    for (int64_t i = 0; i < d; i += 16) {
        const __m256 t0 = zero_past(_mm256_sub_ps(load(x + i, d - i), mv), d - i);
        const __m256 t1 = zero_past(_mm256_sub_ps(load(x + i + 8, d - i - 8), mv), d - i - 8);
        lo = _mm256_add_ps(lo, _mm256_mul_ps(t0, t0));
        hi = _mm256_add_ps(hi, _mm256_mul_ps(t1, t1));
    }
    const float r = 1.0f / sqrtf(fold16(lo, hi) / (float)d + eps);
    const __m256 rv = _mm256_set1_ps(r);
    for (int64_t i = 0; i < d; i += 8) {
        const __m256 h = _mm256_mul_ps(_mm256_sub_ps(load(x + i, d - i), mv), rv);
        if (xhat) store(xhat + i, d - i, h);
        store(y + i, d - i, _mm256_fmadd_ps(h, load(gamma + i, d - i), load(beta + i, d - i)));
    }
    *rstd = r;
}

/* 32 keys per pass over q: four accumulators share each broadcast of q[c] */
static void scores_row_avx2(const float *restrict q, const float *restrict kt, int64_t ldk, int64_t width, int64_t count,
                            float *restrict out) {
    for (int64_t j = 0; j < count; j += 32) {
        const int64_t left = count - j;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t c = 0; c < width; c++) {
            const __m256 qc = _mm256_set1_ps(q[c]);
            const float *row = kt + c * ldk + j;
            a0 = _mm256_fmadd_ps(qc, load(row, left), a0);
            if (left > 8) a1 = _mm256_fmadd_ps(qc, load(row + 8, left - 8), a1);
            if (left > 16) a2 = _mm256_fmadd_ps(qc, load(row + 16, left - 16), a2);
            if (left > 24) a3 = _mm256_fmadd_ps(qc, load(row + 24, left - 24), a3);
        }
        store(out + j, left, a0);
        store(out + j + 8, left - 8, a1);
        store(out + j + 16, left - 16, a2);
        store(out + j + 24, left - 24, a3);
    }
}

/* 32 columns per pass over the rows: four accumulators */
static void combine_row_avx2(const float *restrict p, const float *restrict v, int64_t ldv, int64_t count, int64_t width,
                             float *restrict out) {
    for (int64_t c = 0; c < width; c += 32) {
        const int64_t left = width - c;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t j = 0; j < count; j++) {
            const __m256 pj = _mm256_set1_ps(p[j]);
            const float *row = v + j * ldv + c;
            a0 = _mm256_fmadd_ps(pj, load(row, left), a0);
            if (left > 8) a1 = _mm256_fmadd_ps(pj, load(row + 8, left - 8), a1);
            if (left > 16) a2 = _mm256_fmadd_ps(pj, load(row + 16, left - 16), a2);
            if (left > 24) a3 = _mm256_fmadd_ps(pj, load(row + 24, left - 24), a3);
        }
        store(out + c, left, a0);
        store(out + c + 8, left - 8, a1);
        store(out + c + 16, left - 16, a2);
        store(out + c + 24, left - 24, a3);
    }
}

/* one query (one row of weights) at a time */
static void scores_avx2(const float *restrict q, int64_t ldq, int nq, const float *restrict kt, int64_t ldk, int64_t width,
                        int64_t count, float *restrict out, int64_t ldo) {
    for (int r = 0; r < nq; r++) scores_row_avx2(q + r * ldq, kt, ldk, width, count, out + r * ldo);
}

static void combine_avx2(const float *restrict p, int64_t ldp, int nq, const int64_t *restrict counts,
                         const float *restrict v, int64_t ldv, int64_t width, float *restrict out, int64_t ldo) {
    for (int r = 0; r < nq; r++) combine_row_avx2(p + r * ldp, v, ldv, counts[r], width, out + r * ldo);
}

/* two halves of 8 rows */
static void dequantize_avx2(const int32_t *restrict acc, int rows, int nr, uint32_t step, const uint32_t *restrict corr,
                            const float *restrict xs, const float *restrict ws, const float *restrict base,
                            float *restrict y, int64_t ldy) {
    const __m256i st = _mm256_set1_epi32((int)step);
    for (int h = 0; h < rows; h += 8) {
        const int left = rows - h;
        const __m256i m = tail_mask(left);
        const __m256 w = load(ws + h, left), b = base ? load(base + h, left) : _mm256_setzero_ps();
        for (int i = 0; i < nr; i++) {
            const int32_t *a32 = acc + i * LOWBIT_PANEL_ROWS + h;
            __m256i a = left >= 8 ? _mm256_loadu_si256((const __m256i *)a32) : _mm256_maskload_epi32(a32, m);
            if (step != 1) a = _mm256_mullo_epi32(st, a);
            a = _mm256_sub_epi32(a, _mm256_set1_epi32((int)corr[i]));
            const __m256 prod = _mm256_mul_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(_mm256_set1_ps(xs[i]), w));
            float *row = y + i * ldy + h;
            store(row, left, _mm256_add_ps(base ? b : load(row, left), prod));
        }
    }
}

LOWBIT_DEFINE_ADAMW(adamw_avx2, 8)

/* 8 rows x 8 columns, transposed in registers: row i of the result is column i of r */
INLINE void transpose8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Blocks of 8 rows x 16 columns (both halves of a 16-row strip in turn, so that each line of
 * x is used whole once loaded and each line of out is written whole at once); the columns
 * past the last 16, and the rows past the last 8, go through the scalar twin. Exact
 * products: the same bits as the twin. */
void lowbit_transpose_scaled_avx2(const float *restrict x, int64_t ldx, int rows, int64_t cols, const float *restrict s,
                                  float *restrict out, int64_t ldo) {
    const int full = rows / 8 * 8;
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16)
        for (int h = 0; h < full; h += 8) {
            __m256 lo[8], hi[8];
            for (int i = 0; i < 8; i++) {
                const float *row = x + (h + i) * ldx + c;
                const __m256 si = _mm256_set1_ps(s[h + i]);
                lo[i] = _mm256_mul_ps(_mm256_loadu_ps(row), si);
                hi[i] = _mm256_mul_ps(_mm256_loadu_ps(row + 8), si);
            }
            transpose8(lo), transpose8(hi);
            for (int i = 0; i < 8; i++) {
                _mm256_storeu_ps(out + (c + i) * ldo + h, lo[i]);
                _mm256_storeu_ps(out + (c + 8 + i) * ldo + h, hi[i]);
            }
        }
    if (full > 0 && c < cols) lowbit_transpose_scaled_scalar(x + c, ldx, full, cols - c, s, out + c * ldo, ldo);
    if (full < rows) lowbit_transpose_scaled_scalar(x + full * ldx, ldx, rows - full, cols, s + full, out + full, ldo);
}

/* The low 64 bits of z * c, lane by lane: AVX2 multiplies 32 x 32 -> 64 bits only, so
 * zl * cl + ((zh * cl + zl * ch) << 32), three multiplies. */
INLINE __m256i mul64(__m256i z, uint64_t c) {
    const __m256i cl = _mm256_set1_epi64x((long long)(c & 0xffffffffu)), ch = _mm256_set1_epi64x((long long)(c >> 32));
    const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(z, 32), cl), _mm256_mul_epu32(z, ch));
    return _mm256_add_epi64(_mm256_mul_epu32(z, cl), _mm256_slli_epi64(cross, 32));
}

/* The top 24 bits of SplitMix64's output for the states z (4 lanes), in the low half of each
 * lane (its last step, z ^ (z >> 31), leaves bits 40..63 as they are). */
INLINE __m256i splitmix_top24(__m256i z) {
    z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), 0xBF58476D1CE4E5B9ull);
    z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), 0x94D049BB133111EBull);
    return _mm256_srli_epi64(z, 40);
}

/* Eight draws a step: the states of the even draws in z0, of the odd ones in z1, so that
 * one blend puts the eight 24-bit integers in order; each state steps by an add. The scalar
 * loop spent a tenth of an int8 QT training step here (two 64-bit multiplies and a floorf
 * call a draw). */
static void quantize_stochastic_avx2(const float *restrict x, int64_t n, float inv, uint64_t state, int64_t first,
                                     int8_t *restrict q) {
    const __m256 iv = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const __m256 unit = _mm256_set1_ps(0x1p-24f);
    const __m256i step = _mm256_set1_epi64x((long long)(8 * LOWBIT_SPLITMIX_INCREMENT));
    uint64_t even[4], odd[4];
    for (int l = 0; l < 4; l++) {
        even[l] = state + (uint64_t)(first + 2 * l + 1) * LOWBIT_SPLITMIX_INCREMENT;
        odd[l] = state + (uint64_t)(first + 2 * l + 2) * LOWBIT_SPLITMIX_INCREMENT;
    }
    __m256i z0 = _mm256_loadu_si256((const __m256i *)even), z1 = _mm256_loadu_si256((const __m256i *)odd);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i bits = _mm256_blend_epi32(splitmix_top24(z0), _mm256_slli_epi64(splitmix_top24(z1), 32), 0xAA);
        z0 = _mm256_add_epi64(z0, step), z1 = _mm256_add_epi64(z1, step);
        const __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(bits), unit);
        __m256 r = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), iv), u);
        r = _mm256_round_ps(r, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        const __m256i v = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
        const __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packs_epi16(h, h));
    }
    lowbit_quantize_stochastic_scalar(x + i, n - i, inv, state, first + i, q + i);
}

#pragma clang attribute pop

void lowbit_table_init_layers_avx2(lowbit_kernel_table *t) {
#define SET(name)            \
    t->name = name##_avx2;   \
    t->name##_isa = LOWBIT_ISA_AVX2;
    SET(softmax) SET(silu) SET(silu_backward) SET(layernorm) SET(scores) SET(quantize_stochastic) SET(combine) SET(dequantize) SET(adamw)
#undef SET
    t->transpose_scaled = lowbit_transpose_scaled_avx2;
    t->transpose_scaled_isa = LOWBIT_ISA_AVX2;
}
#endif
