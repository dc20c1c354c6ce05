/* Packing: signed values to the panel/chunk layout of lowbit.h, and back. Runs once per
 * model, so it is written once, in plain C, for every ISA. */
#include "lowbit_internal.h"

static int value_ok(const lowbit_format_traits *f, int v) {
    return v >= f->qmin && v <= f->qmax && (f->step == 1 || (v + f->zero_point) % f->step == 0);
}

/* Element (row, col) of the source is q[row * rs + col * cs]. Each row's codes are gathered
 * a chunk (4 bytes: chunk_k codes) at a time and stored once; the layout is that of
 * lowbit_code_offset: code kk of a chunk in byte kk % 4 at bit (kk / 4) * bits. */
lowbit_status lowbit_pack_strided(lowbit_format format, const int8_t *q, int64_t m, int64_t k, int64_t rs,
                                  int64_t cs, uint8_t *out) {
    const lowbit_format_traits *f = lowbit_format_get(format);
    if (!f || !q || !out) return LOWBIT_ERR_ARGUMENT;
    if (m <= 0 || k <= 0) return LOWBIT_ERR_SHAPE;
    const int64_t kpad = lowbit_padded_k(k);
    const int bits = f->bits, chunk_k = 32 / bits, halve = f->step == 2;
    const int64_t chunks = kpad / chunk_k;
    memset(out, 0, lowbit_packed_size(format, m, k));
    if (bits == 8) { /* every int8 is a code: code = v + 128, four to a chunk's row */
        /* chunks outer: a transposed source (the int8 GEMM's B) is then read along its rows */
        for (int64_t ch = 0; ch * 4 < k; ch++) {
            const int64_t c0 = ch * 4, n = k - c0 < 4 ? k - c0 : 4;
            int64_t r = 0;
            if (rs == 1 && n == 4) {
                /* a transposed source, whole panels: the chunk is four source rows of 16 bytes
                 * interleaved, a fixed-size loop the compiler turns into shuffles */
                for (; r + LOWBIT_PANEL_ROWS <= m; r += LOWBIT_PANEL_ROWS) {
                    uint8_t *restrict dst = out + ((r / LOWBIT_PANEL_ROWS) * chunks + ch) * LOWBIT_CHUNK_BYTES;
                    const int8_t *restrict s0 = q + r + c0 * cs, *restrict s1 = s0 + cs, *restrict s2 = s1 + cs,
                                           *restrict s3 = s2 + cs;
                    for (int i = 0; i < LOWBIT_PANEL_ROWS; i++) {
                        dst[i * 4 + 0] = (uint8_t)(s0[i] ^ 0x80);
                        dst[i * 4 + 1] = (uint8_t)(s1[i] ^ 0x80);
                        dst[i * 4 + 2] = (uint8_t)(s2[i] ^ 0x80);
                        dst[i * 4 + 3] = (uint8_t)(s3[i] ^ 0x80);
                    }
                }
            }
            for (; r < m; r++) {
                uint8_t *dst = out + ((r / LOWBIT_PANEL_ROWS) * chunks + ch) * LOWBIT_CHUNK_BYTES + (r % LOWBIT_PANEL_ROWS) * 4;
                const int8_t *src = q + r * rs + c0 * cs;
                for (int64_t kk = 0; kk < n; kk++) dst[kk] = (uint8_t)(src[kk * cs] ^ 0x80);
            }
        }
        return LOWBIT_OK;
    }
    /* the low-bit formats come from weights, rows contiguous: rows outer */
    for (int64_t r = 0; r < m; r++) {
        for (int64_t ch = 0; ch * chunk_k < k; ch++) {
            const int64_t c0 = ch * chunk_k, n = k - c0 < chunk_k ? k - c0 : chunk_k;
            const int8_t *src = q + r * rs + c0 * cs;
            uint8_t bytes[4] = {0, 0, 0, 0};
            for (int64_t kk = 0; kk < n; kk++) {
                const int v = src[kk * cs];
                if (!value_ok(f, v)) return LOWBIT_ERR_ARGUMENT;
                bytes[kk % 4] |= (uint8_t)(((v + f->zero_point) >> halve) << ((kk / 4) * bits));
            }
            memcpy(out + ((r / LOWBIT_PANEL_ROWS) * chunks + ch) * LOWBIT_CHUNK_BYTES + (r % LOWBIT_PANEL_ROWS) * 4, bytes, 4);
        }
    }
    return LOWBIT_OK;
}

lowbit_status lowbit_pack(lowbit_format format, const int8_t *q, int64_t m, int64_t k, uint8_t *out) {
    return lowbit_pack_strided(format, q, m, k, k, 1, out);
}

lowbit_status lowbit_unpack(lowbit_format format, const uint8_t *packed, int64_t m, int64_t k, int8_t *q) {
    const lowbit_format_traits *f = lowbit_format_get(format);
    if (!f || !packed || !q) return LOWBIT_ERR_ARGUMENT;
    if (m <= 0 || k <= 0) return LOWBIT_ERR_SHAPE;
    const int64_t kpad = lowbit_padded_k(k);
    const int mask = (1 << f->bits) - 1;
    for (int64_t r = 0; r < m; r++) {
        for (int64_t c = 0; c < k; c++) {
            int shift;
            const size_t at = lowbit_code_offset(f->bits, kpad, r, c, &shift);
            const int code = (packed[at] >> shift) & mask;
            q[r * k + c] = (int8_t)(f->step * code - f->zero_point);
        }
    }
    return LOWBIT_OK;
}
