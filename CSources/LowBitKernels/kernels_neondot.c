/* aarch64 with the dot-product extension: the dot kernels use sdot. Compiled with a
 * per-region target attribute; chosen only when HWCAP_ASIMDDP is set. */
#include "lowbit_internal.h"

#if defined(__aarch64__) && defined(__clang__)
#include <arm_neon.h>

#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)

#define INLINE static inline __attribute__((always_inline))

INLINE void dot_tile_sdot(const int bits, const int NR, int64_t chunks, const uint8_t *restrict w,
                          const int8_t *restrict x, int64_t ldx, int32_t *restrict acc) {
    const int planes = 8 / bits, chunk_k = 32 / bits;
    const uint8x16_t mask = vdupq_n_u8((uint8_t)((1 << bits) - 1));
    int32x4_t a[4][4];
    int32x4_t xsum[4];
    for (int j = 0; j < NR; j++) {
        xsum[j] = vdupq_n_s32(0);
        for (int q = 0; q < 4; q++) a[q][j] = vdupq_n_s32(0);
    }
    for (int64_t c = 0; c < chunks; c++) {
        for (int p = 0; p < planes; p++) {
            const int8_t *xp = x + c * chunk_k + 4 * p;
            int8x16_t xb[4];
            for (int j = 0; j < NR; j++) xb[j] = vreinterpretq_s8_s32(vdupq_n_s32(lowbit_load_i32(xp + j * ldx)));
            if (bits == 8) /* codes are flipped to signed below; keep sum(x) to undo it */
                for (int j = 0; j < NR; j++) xsum[j] = vdotq_s32(xsum[j], vdupq_n_s8(1), xb[j]);
            for (int q = 0; q < 4; q++) {
                const uint8x16_t v = vld1q_u8(w + c * 64 + 16 * q);
                int8x16_t codes;
                if (bits == 8)
                    codes = vreinterpretq_s8_u8(veorq_u8(v, vdupq_n_u8(0x80)));
                else
                    codes = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(v, vdupq_n_s8((int8_t)(-p * bits))), mask));
                for (int j = 0; j < NR; j++) a[q][j] = vdotq_s32(a[q][j], codes, xb[j]);
            }
        }
    }
    for (int j = 0; j < NR; j++) {
        /* each lane of xsum saw the same 4 bytes, so lane 0 is sum(x) over the range */
        const int32x4_t corr = vdupq_n_s32(bits == 8 ? 128 * vgetq_lane_s32(xsum[j], 0) : 0);
        for (int q = 0; q < 4; q++) vst1q_s32(acc + 16 * j + 4 * q, vaddq_s32(a[q][j], corr));
    }
}

INLINE void dot_sdot(const int bits, int64_t chunks, const uint8_t *restrict w, const int8_t *restrict x,
                     int64_t ldx, int nr, int32_t *restrict acc) {
    LOWBIT_TOKENS_BY_4(dot_tile_sdot, bits, chunks, w, x, ldx, nr, acc)
}

#define DEFINE_DOT(B) LOWBIT_DEFINE_DOT_BY_PANEL(B, _neondot, dot_sdot)
DEFINE_DOT(1)
DEFINE_DOT(2)
DEFINE_DOT(4)
DEFINE_DOT(8)

#pragma clang attribute pop

void lowbit_table_init_neondot(lowbit_kernel_table *t) {
#define SET(name)                \
    t->name = name##_neondot;    \
    t->name##_isa = LOWBIT_ISA_NEONDOT;
    SET(dot_b1) SET(dot_b2) SET(dot_b4) SET(dot_b8)
#undef SET
}
#endif
