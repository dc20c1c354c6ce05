/* The format table: the one description of binary, ternary, int4 and int8 weights. */
#include "lowbit_internal.h"

static const lowbit_format_traits formats[LOWBIT_FORMAT_COUNT] = {
    [LOWBIT_FORMAT_BINARY] = {.name = "binary", .bits = 1, .qmin = -1, .qmax = 1, .step = 2, .zero_point = 1, .chunk_k = 32},
    [LOWBIT_FORMAT_TERNARY] = {.name = "ternary", .bits = 2, .qmin = -1, .qmax = 1, .step = 1, .zero_point = 1, .chunk_k = 16},
    [LOWBIT_FORMAT_INT4] = {.name = "int4", .bits = 4, .qmin = -8, .qmax = 7, .step = 1, .zero_point = 8, .chunk_k = 8},
    [LOWBIT_FORMAT_INT8] = {.name = "int8", .bits = 8, .qmin = -128, .qmax = 127, .step = 1, .zero_point = 128, .chunk_k = 4},
};

_Static_assert(LOWBIT_CHUNK_BYTES == LOWBIT_PANEL_ROWS * 4, "a chunk is 16 rows of 4 bytes");
_Static_assert(LOWBIT_K_ALIGN == 32, "K is padded to the widest chunk (1-bit: 32 columns)");

const lowbit_format_traits *lowbit_format_get(lowbit_format format) {
    return (unsigned)format < LOWBIT_FORMAT_COUNT ? &formats[format] : NULL;
}

int64_t lowbit_padded_k(int64_t k) { return (k + LOWBIT_K_ALIGN - 1) / LOWBIT_K_ALIGN * LOWBIT_K_ALIGN; }

size_t lowbit_packed_size(lowbit_format format, int64_t m, int64_t k) {
    const lowbit_format_traits *f = lowbit_format_get(format);
    if (!f || m <= 0 || k <= 0) return 0;
    const int64_t panels = (m + LOWBIT_PANEL_ROWS - 1) / LOWBIT_PANEL_ROWS;
    return (size_t)(panels * (lowbit_padded_k(k) / f->chunk_k) * LOWBIT_CHUNK_BYTES);
}
