/* Packing: signed values to the panel/chunk layout of lowbit.h, and back. Runs once per
 * model, so it is written once, in plain C, for every ISA. */
#include "lowbit_internal.h"

static int value_ok(const lowbit_format_traits *f, int v) {
    return v >= f->qmin && v <= f->qmax && (f->step == 1 || (v + f->zero_point) % f->step == 0);
}

/* Element (row, col) of the source is q[row * rs + col * cs]. */
lowbit_status lowbit_pack_strided(lowbit_format format, const int8_t *q, int64_t m, int64_t k, int64_t rs,
                                  int64_t cs, uint8_t *out) {
    const lowbit_format_traits *f = lowbit_format_get(format);
    if (!f || !q || !out) return LOWBIT_ERR_ARGUMENT;
    if (m <= 0 || k <= 0) return LOWBIT_ERR_SHAPE;
    const int64_t kpad = lowbit_padded_k(k);
    memset(out, 0, lowbit_packed_size(format, m, k));
    for (int64_t r = 0; r < m; r++) {
        for (int64_t c = 0; c < k; c++) {
            const int v = q[r * rs + c * cs];
            if (!value_ok(f, v)) return LOWBIT_ERR_ARGUMENT;
            int shift;
            const size_t at = lowbit_code_offset(f->bits, kpad, r, c, &shift);
            out[at] |= (uint8_t)(((v + f->zero_point) / f->step) << shift);
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
