/* aarch64 Advanced SIMD kernels. The dot product without SDOT widens to 16 bits
 * (vmull_s8) and pairwise-accumulates into 32 bits (vpadalq_s16). Tested under qemu-aarch64. */
#include "lowbit_internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <float.h>

static int absmax_neon(const float *restrict x, int64_t n, float *restrict out) {
    const float32x4_t big = vdupq_n_f32(FLT_MAX);
    float32x4_t m = vdupq_n_f32(0.0f);
    uint32x4_t ok = vdupq_n_u32(~0u);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t a = vabsq_f32(vld1q_f32(x + i));
        ok = vandq_u32(ok, vcleq_f32(a, big)); /* false for NaN and Inf */
        m = vmaxq_f32(m, a);
    }
    float tail;
    const int bad = lowbit_absmax_scalar(x + i, n - i, &tail) | (vminvq_u32(ok) == 0);
    const float v = vmaxvq_f32(m);
    *out = tail > v ? tail : v;
    return bad;
}

/* The canonical order: lanes 4g .. 4g+3 of a block of 64 come from b[4g + 16q], q = 0..3;
 * float partials fs/fa per group of 4 lanes, flushed into the doubles every 16 blocks. */
static int sums_neon(const float *restrict x, int64_t n, double *restrict sum, double *restrict abssum) {
    float32x4_t fs[4], fa[4];
    float64x2_t s[8], a[8];
    for (int g = 0; g < 4; g++) fs[g] = fa[g] = vdupq_n_f32(0.0f);
    for (int l = 0; l < 8; l++) s[l] = a[l] = vdupq_n_f64(0.0);
    int64_t i = 0;
    int blocks = 0;
    for (; i + 64 <= n; i += 64) {
        for (int g = 0; g < 4; g++) {
            const float32x4_t v0 = vld1q_f32(x + i + 4 * g), v1 = vld1q_f32(x + i + 16 + 4 * g);
            const float32x4_t v2 = vld1q_f32(x + i + 32 + 4 * g), v3 = vld1q_f32(x + i + 48 + 4 * g);
            fs[g] = vaddq_f32(fs[g], vaddq_f32(vaddq_f32(v0, v1), vaddq_f32(v2, v3)));
            fa[g] = vaddq_f32(fa[g], vaddq_f32(vaddq_f32(vabsq_f32(v0), vabsq_f32(v1)), vaddq_f32(vabsq_f32(v2), vabsq_f32(v3))));
        }
        if (++blocks == LOWBIT_SUMS_SUPERBLOCK) {
            for (int g = 0; g < 4; g++) {
                s[2 * g] = vaddq_f64(s[2 * g], vcvt_f64_f32(vget_low_f32(fs[g])));
                s[2 * g + 1] = vaddq_f64(s[2 * g + 1], vcvt_high_f64_f32(fs[g]));
                a[2 * g] = vaddq_f64(a[2 * g], vcvt_f64_f32(vget_low_f32(fa[g])));
                a[2 * g + 1] = vaddq_f64(a[2 * g + 1], vcvt_high_f64_f32(fa[g]));
                fs[g] = fa[g] = vdupq_n_f32(0.0f);
            }
            blocks = 0;
        }
    }
    lowbit_sums_state st = {.blocks = blocks};
    for (int g = 0; g < 4; g++) {
        vst1q_f32(st.fs + 4 * g, fs[g]);
        vst1q_f32(st.fa + 4 * g, fa[g]);
    }
    for (int l = 0; l < 8; l++) {
        vst1q_f64(st.s + 2 * l, s[l]);
        vst1q_f64(st.a + 2 * l, a[l]);
    }
    if (i < n) lowbit_sums_tail(&st, x + i, n - i);
    return lowbit_sums_finish(&st, sum, abssum);
}

static void quantize_neon(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q) {
    const float32x4_t vinv = vdupq_n_f32(inv), hi = vdupq_n_f32((float)qmax), lo = vdupq_n_f32(-(float)qmax);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t v0 = vrndnq_f32(vmulq_f32(vld1q_f32(x + i), vinv));
        float32x4_t v1 = vrndnq_f32(vmulq_f32(vld1q_f32(x + i + 4), vinv));
        v0 = vmaxq_f32(vminq_f32(v0, hi), lo);
        v1 = vmaxq_f32(vminq_f32(v1, hi), lo);
        const int16x8_t h = vcombine_s16(vmovn_s32(vcvtq_s32_f32(v0)), vmovn_s32(vcvtq_s32_f32(v1)));
        vst1_s8(q + i, vmovn_s16(h));
    }
    lowbit_quantize_scalar(x + i, n - i, inv, qmax, q + i);
}

static void sign_neon(const float *restrict x, int64_t n, float threshold, int8_t *restrict q) {
    const float32x4_t t = vdupq_n_f32(threshold);
    const int32x4_t one = vdupq_n_s32(1), minus = vdupq_n_s32(-1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const int32x4_t v0 = vbslq_s32(vcgeq_f32(vld1q_f32(x + i), t), one, minus);
        const int32x4_t v1 = vbslq_s32(vcgeq_f32(vld1q_f32(x + i + 4), t), one, minus);
        vst1_s8(q + i, vmovn_s16(vcombine_s16(vmovn_s32(v0), vmovn_s32(v1))));
    }
    lowbit_sign_scalar(x + i, n - i, threshold, q + i);
}

LOWBIT_DEFINE_FUSED_BY_PARTS(static, , _neon)

#define INLINE static inline __attribute__((always_inline))

/* Codes of plane p as signed bytes; 8-bit codes are flipped to code - 128 (see the caller). */
INLINE int8x16_t neon_codes(uint8x16_t v, const int bits, int p) {
    if (bits == 8) return vreinterpretq_s8_u8(veorq_u8(v, vdupq_n_u8(0x80)));
    const uint8x16_t c = vshlq_u8(v, vdupq_n_s8((int8_t)(-p * bits)));
    return vreinterpretq_s8_u8(vandq_u8(c, vdupq_n_u8((uint8_t)((1 << bits) - 1))));
}

/* 128 * sum of the activations the kernel read: undoes the 8-bit flip to signed codes. */
INLINE int32_t neon_flip_correction(const int bits, int64_t chunks, const int8_t *x) {
    if (bits != 8) return 0;
    int32_t s = 0;
    for (int64_t i = 0; i < chunks * 4; i++) s += x[i];
    return 128 * s;
}

/* Four tokens at most; quarter q of a chunk is rows 4q..4q+3. */
INLINE void dot_tile_neon(const int bits, const int NR, int64_t chunks, const uint8_t *restrict w,
                          const int8_t *restrict x, int64_t ldx, int32_t *restrict acc) {
    const int planes = 8 / bits, chunk_k = 32 / bits;
    int32x4_t lo[4][4], hi[4][4];
    for (int q = 0; q < 4; q++)
        for (int j = 0; j < NR; j++) lo[q][j] = hi[q][j] = vdupq_n_s32(0);
    for (int64_t c = 0; c < chunks; c++) {
        for (int p = 0; p < planes; p++) {
            const int8_t *xp = x + c * chunk_k + 4 * p;
            int8x16_t xb[4];
            for (int j = 0; j < NR; j++) xb[j] = vreinterpretq_s8_s32(vdupq_n_s32(lowbit_load_i32(xp + j * ldx)));
            for (int q = 0; q < 4; q++) {
                const int8x16_t codes = neon_codes(vld1q_u8(w + c * 64 + 16 * q), bits, p);
                for (int j = 0; j < NR; j++) {
                    lo[q][j] = vpadalq_s16(lo[q][j], vmull_s8(vget_low_s8(codes), vget_low_s8(xb[j])));
                    hi[q][j] = vpadalq_s16(hi[q][j], vmull_high_s8(codes, xb[j]));
                }
            }
        }
    }
    for (int j = 0; j < NR; j++) {
        const int32x4_t corr = vdupq_n_s32(neon_flip_correction(bits, chunks, x + j * ldx));
        for (int q = 0; q < 4; q++) vst1q_s32(acc + 16 * j + 4 * q, vaddq_s32(vpaddq_s32(lo[q][j], hi[q][j]), corr));
    }
}

INLINE void dot_neon(const int bits, int64_t chunks, const uint8_t *restrict w, const int8_t *restrict x,
                     int64_t ldx, int nr, int32_t *restrict acc) {
    LOWBIT_TOKENS_BY_4(dot_tile_neon, bits, chunks, w, x, ldx, nr, acc)
}

#define DEFINE_DOT(B) LOWBIT_DEFINE_DOT_BY_PANEL(B, _neon, dot_neon)
DEFINE_DOT(1)
DEFINE_DOT(2)
DEFINE_DOT(4)
DEFINE_DOT(8)

void lowbit_table_init_neon(lowbit_kernel_table *t) {
#define SET(name)              \
    t->name = name##_neon;     \
    t->name##_isa = LOWBIT_ISA_NEON;
    SET(absmax) SET(sums) SET(quantize) SET(sign) SET(quantize_absmax) SET(quantize_sums) SET(sign_sums) SET(dot_b1) SET(dot_b2) SET(dot_b4) SET(dot_b8)
#undef SET
}
#endif
