/* Scalar kernels: the reference twins every ISA is checked against. Plain C, no intrinsics. */
#include "lowbit_internal.h"
#include <float.h>
#include <math.h>

int lowbit_absmax_scalar(const float *restrict x, int64_t n, float *restrict out) {
    float m = 0.0f;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        bad |= !(a <= FLT_MAX);
        m = a > m ? a : m;
    }
    *out = m;
    return bad;
}

int lowbit_sums_scalar(const float *restrict x, int64_t n, double *restrict sum, double *restrict abssum) {
    lowbit_sums_state st = {0};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) lowbit_sums_block(&st, x + i);
    if (i < n) lowbit_sums_tail(&st, x + i, n - i);
    /* NaN or Inf input, or a float partial past FLT_MAX (|x| near it), make it non-finite */
    return lowbit_sums_finish(&st, sum, abssum);
}

void lowbit_quantize_scalar(const float *restrict x, int64_t n, float inv, int qmax, int8_t *restrict q) {
    const float hi = (float)qmax, lo = -(float)qmax;
    for (int64_t i = 0; i < n; i++) {
        float v = rintf(x[i] * inv);
        v = v < lo ? lo : (v > hi ? hi : v);
        q[i] = (int8_t)v;
    }
}

void lowbit_sign_scalar(const float *restrict x, int64_t n, float threshold, int8_t *restrict q) {
    for (int64_t i = 0; i < n; i++) q[i] = x[i] >= threshold ? 1 : -1;
}

LOWBIT_DEFINE_FUSED_BY_PARTS(, lowbit_, _scalar)

/* Code kk of a chunk's row of 4 bytes at wc: in byte kk % 4, at bit (kk / 4) * bits (the
 * layout of lowbit_code_offset). */
static inline int chunk_code(const uint8_t *restrict wc, int bits, int kk) {
    return (wc[kk % 4] >> ((kk / 4) * bits)) & ((1 << bits) - 1);
}

/* sum of (code - offset) * x: offset 0 for dot_bB, 128 for dot_s8 */
static inline void dot_scalar(int bits, int offset, int64_t chunks, const uint8_t *restrict w, const int8_t *restrict x,
                              int64_t ldx, int nr, int32_t *restrict acc) {
    const int chunk_k = 32 / bits;
    for (int j = 0; j < nr; j++)
        for (int r = 0; r < LOWBIT_PANEL_ROWS; r++) {
            int32_t s = 0;
            for (int64_t c = 0; c < chunks; c++) {
                const int8_t *xc = x + j * ldx + c * chunk_k;
                for (int kk = 0; kk < chunk_k; kk++)
                    s += (chunk_code(w + c * LOWBIT_CHUNK_BYTES + r * 4, bits, kk) - offset) * xc[kk];
            }
            acc[j * LOWBIT_PANEL_ROWS + r] = s;
        }
}

#define DEFINE_DOT(B)                                                                                    \
    void lowbit_dot_b##B##_scalar(int64_t chunks, const uint8_t *restrict w, int64_t panel_stride, int np, \
                                  const int8_t *restrict x, int64_t ldx, int nr, int32_t *restrict acc) {  \
        for (int q = 0; q < np; q++)                                                                     \
            dot_scalar(B, 0, chunks, w + q * panel_stride, x, ldx, nr, acc + q * LOWBIT_MAX_NR * LOWBIT_PANEL_ROWS); \
    }
DEFINE_DOT(1)
DEFINE_DOT(2)
DEFINE_DOT(4)
DEFINE_DOT(8)

void lowbit_dot_s8_scalar(int64_t chunks, const uint8_t *restrict w, int64_t panel_stride, int np,
                          const int8_t *restrict x, int64_t ldx, int nr, int32_t *restrict acc) {
    for (int q = 0; q < np; q++)
        dot_scalar(8, 128, chunks, w + q * panel_stride, x, ldx, nr, acc + q * LOWBIT_MAX_NR * LOWBIT_PANEL_ROWS);
}

void lowbit_dot_wide_scalar(int bits, int64_t chunks, const uint8_t *restrict w, const int8_t *restrict xi, int nr,
                            int32_t *restrict acc) {
    const int chunk_k = 32 / bits;
    const int64_t cols = chunks * chunk_k;
    for (int j = 0; j < nr; j++)
        for (int r = 0; r < LOWBIT_PANEL_ROWS; r++) {
            int32_t s = 0;
            for (int64_t col = 0; col < cols; col++)
                s += chunk_code(w + col / chunk_k * LOWBIT_CHUNK_BYTES + r * 4, bits, (int)(col % chunk_k)) *
                     xi[((col / 4) * nr + j) * 4 + col % 4];
            acc[j * LOWBIT_PANEL_ROWS + r] = s;
        }
}

void lowbit_table_init_scalar(lowbit_kernel_table *t) {
#define LOWBIT_KERNEL(name, ret, params) \
    t->name = lowbit_##name##_scalar;    \
    t->name##_isa = LOWBIT_ISA_SCALAR;
#include "lowbit_kernels.def"
#undef LOWBIT_KERNEL
}
