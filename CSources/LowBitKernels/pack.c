/* Packing: signed values to the panel/chunk layout of lowbit.h, and back. Written once, in C,
 * for every ISA: a training step packs every weight (and QT's int8 products their operands),
 * so whole chunks go through SSE2 where the target has it (every x86-64). */
#include "lowbit_internal.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Row r's 4 bytes in chunk 0 of its panel; chunk ch's are LOWBIT_CHUNK_BYTES * ch further. */
static uint8_t *panel_row(uint8_t *out, int64_t chunks, int64_t r) {
    return out + (r / LOWBIT_PANEL_ROWS) * chunks * LOWBIT_CHUNK_BYTES + (r % LOWBIT_PANEL_ROWS) * 4;
}

/* Four source rows of 16 bytes, interleaved into one chunk of a panel: dst[4i + j] = s_j[i]
 * as an unsigned code (v + 128). SSE2 (every x86-64) does it in byte and word unpacks. */
static void interleave4(const int8_t *restrict s0, const int8_t *restrict s1, const int8_t *restrict s2,
                        const int8_t *restrict s3, uint8_t *restrict dst) {
#if defined(__SSE2__)
    const __m128i flip = _mm_set1_epi8((char)0x80);
    const __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)s0), flip);
    const __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)s1), flip);
    const __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)s2), flip);
    const __m128i d = _mm_xor_si128(_mm_loadu_si128((const __m128i *)s3), flip);
    const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
    const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
    _mm_storeu_si128((__m128i *)dst, _mm_unpacklo_epi16(ab_lo, cd_lo));
    _mm_storeu_si128((__m128i *)(dst + 16), _mm_unpackhi_epi16(ab_lo, cd_lo));
    _mm_storeu_si128((__m128i *)(dst + 32), _mm_unpacklo_epi16(ab_hi, cd_hi));
    _mm_storeu_si128((__m128i *)(dst + 48), _mm_unpackhi_epi16(ab_hi, cd_hi));
#else
    for (int i = 0; i < LOWBIT_PANEL_ROWS; i++) {
        dst[i * 4 + 0] = (uint8_t)(s0[i] ^ 0x80);
        dst[i * 4 + 1] = (uint8_t)(s1[i] ^ 0x80);
        dst[i * 4 + 2] = (uint8_t)(s2[i] ^ 0x80);
        dst[i * 4 + 3] = (uint8_t)(s3[i] ^ 0x80);
    }
#endif
}

#if defined(__SSE2__)
/* One whole chunk of contiguous values in SSE2: the codes (v + zp) >> halve of 16 values per
 * register, then byte b of the chunk = OR over planes p of code[b + 4p] << (p * bits), which
 * is dword p of the codes shifted left by p * bits (a code stays inside its byte). Lanes
 * whose value is not a code of the format are set in *bad. */
static inline __attribute__((always_inline)) __m128i chunk_codes(__m128i v, const lowbit_format_traits *f, __m128i *bad) {
    const __m128i z = _mm_add_epi8(v, _mm_set1_epi8((char)f->zero_point));
    *bad = _mm_or_si128(*bad, _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8((char)f->qmin)),
                                           _mm_cmpgt_epi8(v, _mm_set1_epi8((char)f->qmax))));
    if (f->step == 1) return z;
    *bad = _mm_or_si128(*bad, _mm_cmpeq_epi8(_mm_and_si128(z, _mm_set1_epi8(1)), _mm_set1_epi8(1)));
    return _mm_and_si128(_mm_srli_epi16(z, 1), _mm_set1_epi8(0x7f));
}

#define PLANE(c, p, shift) _mm_slli_epi32(_mm_srli_si128((c), 4 * (p)), (shift))

static inline __attribute__((always_inline)) uint32_t pack_chunk(const int8_t *src, const lowbit_format_traits *f,
                                                                  const int bits, __m128i *bad) {
    __m128i r;
    if (bits == 1) {
        const __m128i a = chunk_codes(_mm_loadu_si128((const __m128i *)src), f, bad);
        const __m128i b = chunk_codes(_mm_loadu_si128((const __m128i *)(src + 16)), f, bad);
        r = _mm_or_si128(_mm_or_si128(_mm_or_si128(a, PLANE(a, 1, 1)), _mm_or_si128(PLANE(a, 2, 2), PLANE(a, 3, 3))),
                         _mm_or_si128(_mm_or_si128(PLANE(b, 0, 4), PLANE(b, 1, 5)), _mm_or_si128(PLANE(b, 2, 6), PLANE(b, 3, 7))));
    } else if (bits == 2) {
        const __m128i a = chunk_codes(_mm_loadu_si128((const __m128i *)src), f, bad);
        r = _mm_or_si128(_mm_or_si128(a, PLANE(a, 1, 2)), _mm_or_si128(PLANE(a, 2, 4), PLANE(a, 3, 6)));
    } else {
        /* 8 values: the upper half of the register is zeros, which are codes of no lane */
        const __m128i v = _mm_loadl_epi64((const __m128i *)src);
        __m128i lanes = _mm_setzero_si128();
        const __m128i a = chunk_codes(v, f, &lanes);
        *bad = _mm_or_si128(*bad, _mm_move_epi64(lanes));
        r = _mm_or_si128(a, PLANE(a, 1, 4));
    }
    return (uint32_t)_mm_cvtsi128_si32(r);
}
#undef PLANE
#endif

/* The low-bit formats, rows outer (they come from weights, rows contiguous). `bits` is a
 * constant at each call. Whole chunks of a contiguous row go through SSE2 (x86-64), the rest
 * value by value. Returns whether every value was a code of the format (steps are 1 or 2:
 * a mask checks them, not a division). */
static inline __attribute__((always_inline)) int pack_lowbit(const lowbit_format_traits *f, const int8_t *q, int64_t m,
                                                             int64_t k, int64_t rs, int64_t cs, uint8_t *out,
                                                             const int bits) {
    const int chunk_k = 32 / bits, halve = f->step == 2, odd = f->step - 1;
    const int qmin = f->qmin, qmax = f->qmax, zp = f->zero_point;
    const int64_t chunks = lowbit_padded_k(k) / chunk_k;
    int bad = 0;
#if defined(__SSE2__)
    __m128i bad_lanes = _mm_setzero_si128();
#endif
    for (int64_t r = 0; r < m; r++) {
        uint8_t *row = panel_row(out, chunks, r);
        int64_t ch = 0;
#if defined(__SSE2__)
        if (cs == 1)
            for (; (ch + 1) * chunk_k <= k; ch++) {
                const uint32_t word = pack_chunk(q + r * rs + ch * chunk_k, f, bits, &bad_lanes);
                memcpy(row + ch * LOWBIT_CHUNK_BYTES, &word, 4);
            }
#endif
        for (; ch * chunk_k < k; ch++) {
            const int64_t c0 = ch * chunk_k;
            const int8_t *src = q + r * rs + c0 * cs;
            uint8_t bytes[4] = {0, 0, 0, 0};
            for (int64_t kk = 0; kk < chunk_k && c0 + kk < k; kk++) {
                const int v = src[kk * cs];
                bad |= v < qmin || v > qmax || ((v + zp) & odd);
                bytes[kk % 4] |= (uint8_t)(((unsigned)(v + zp) >> halve) << ((kk / 4) * bits));
            }
            memcpy(row + ch * LOWBIT_CHUNK_BYTES, bytes, 4);
        }
    }
#if defined(__SSE2__)
    bad |= _mm_movemask_epi8(bad_lanes) != 0;
#endif
    return !bad;
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
    const int bits = f->bits, chunk_k = 32 / bits;
    const int64_t chunks = kpad / chunk_k;
    memset(out, 0, lowbit_packed_size(format, m, k));
    if (bits == 8 && cs == 1) { /* every int8 is a code: code = v + 128, four to a chunk's row */
        /* rows outer, as the source lies: a chunk's four bytes flipped at once */
        for (int64_t r = 0; r < m; r++) {
            uint8_t *row = panel_row(out, chunks, r);
            const int8_t *src = q + r * rs;
            int64_t ch = 0;
            for (; ch * 4 + 4 <= k; ch++) {
                uint32_t word;
                memcpy(&word, src + ch * 4, 4);
                word ^= 0x80808080u;
                memcpy(row + ch * LOWBIT_CHUNK_BYTES, &word, 4);
            }
            for (int64_t c = ch * 4; c < k; c++) row[ch * LOWBIT_CHUNK_BYTES + c - ch * 4] = (uint8_t)(src[c] ^ 0x80);
        }
        return LOWBIT_OK;
    }
    if (bits == 8) {
        /* chunks outer: a transposed source (the int8 GEMM's B) is then read along its rows */
        for (int64_t ch = 0; ch * 4 < k; ch++) {
            const int64_t c0 = ch * 4, n = k - c0 < 4 ? k - c0 : 4;
            int64_t r = 0;
            if (rs == 1 && n == 4) {
                /* a transposed source, whole panels: the chunk is four source rows of 16 bytes
                 * interleaved */
                for (; r + LOWBIT_PANEL_ROWS <= m; r += LOWBIT_PANEL_ROWS) {
                    const int8_t *s0 = q + r + c0 * cs;
                    interleave4(s0, s0 + cs, s0 + 2 * cs, s0 + 3 * cs,
                                panel_row(out, chunks, r) + ch * LOWBIT_CHUNK_BYTES);
                }
            }
            for (; r < m; r++) {
                uint8_t *dst = panel_row(out, chunks, r) + ch * LOWBIT_CHUNK_BYTES;
                const int8_t *src = q + r * rs + c0 * cs;
                for (int64_t kk = 0; kk < n; kk++) dst[kk] = (uint8_t)(src[kk * cs] ^ 0x80);
            }
        }
        return LOWBIT_OK;
    }
    const int ok = bits == 1 ? pack_lowbit(f, q, m, k, rs, cs, out, 1)
                 : bits == 2 ? pack_lowbit(f, q, m, k, rs, cs, out, 2)
                             : pack_lowbit(f, q, m, k, rs, cs, out, 4);
    return ok ? LOWBIT_OK : LOWBIT_ERR_ARGUMENT;
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
