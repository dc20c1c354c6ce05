/* The AVX-512 dot microkernel, written once and compiled twice: by kernels_avx512.c with
 * vpmaddubsw + vpmaddwd (AVX512BW), and by kernels_avx512vnni.c with vpdpbusd (VNNI).
 * The includer sets LOWBIT_DOT_SUFFIX, LOWBIT_DOT_VNNI, LOWBIT_DOT_GFNI and the target attribute
 * (kernels_avx512gfni.c compiles it a third time, VNNI with GFNI).
 * One panel is one zmm (16 rows x 4 columns of codes per plane); up to 12 tokens at once. */

#ifndef INLINE
#define INLINE static inline __attribute__((always_inline))
#endif
/* An int32 at any address: the asm operand of a broadcast from an activation row. */
typedef int32_t lowbit_unaligned_i32 __attribute__((aligned(1), may_alias));
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

/* Plane p of bits-bit codes moved to the low bits of each byte, the rest zero. A shift and a
 * mask are two vector operations, and on Intel cores they take the two ports vpdpbusd needs
 * (0 and 5): with 8 tokens per decoded vector, ternary and binary ran at 82 % of the dot
 * peak. With GFNI it is one operation, an affine transform over GF(2) whose matrix picks the
 * plane's bits (bit i of the result is the parity of matrix byte 7 - i AND the source byte):
 * 88-89 %. */
#define PLANE_MATRIX(bits, p)                                                                           \
    ((1ull << ((p) * (bits))) << 56 | ((bits) > 1 ? (1ull << ((p) * (bits) + 1)) << 48 : 0) |            \
     ((bits) > 2 ? (1ull << ((p) * (bits) + 2)) << 40 : 0) | ((bits) > 3 ? (1ull << ((p) * (bits) + 3)) << 32 : 0))
INLINE __m512i CAT(plane, LOWBIT_DOT_SUFFIX)(__m512i v, const int bits, const int p, __m512i mask) {
    if (p == 0) return _mm512_and_si512(v, mask);
#if LOWBIT_DOT_GFNI
    (void)mask;
    return _mm512_gf2p8affine_epi64_epi8(v, _mm512_set1_epi64((long long)PLANE_MATRIX(bits, p)), 0);
#else
    return _mm512_and_si512(_mm512_srli_epi16(v, p * bits), mask);
#endif
}

/* With 9 to 12 tokens clang could hoist every activation broadcast of a chunk above the dot
 * products and spill them (two panels, ternary at 11 tokens: 501 GOP/s against 674 at 10), so
 * there a broadcast and the two dot products that use it are one asm statement (VNNI, clang or
 * gcc). With 8 tokens or fewer clang's own schedule is 1-2 % faster. On one panel its schedule
 * is the better one but for int8 at 12 tokens (461 against 628 at 11), where a vpdpbusd with
 * an embedded broadcast gives 520. */
#if LOWBIT_DOT_VNNI && (defined(__clang__) || defined(__GNUC__))
#define LOWBIT_DOT_ASM 1
#define DP_BROADCAST(acc, u, xp)                                                                        \
    __asm__("vpdpbusd %[x]%{1to16%}, %[uu], %[a]"                                                      \
            : [a] "+v"(acc)                                                                             \
            : [uu] "v"(u), [x] "m"(*(const lowbit_unaligned_i32 *)(xp)))
#define DP2_BROADCAST(acc0, acc1, u0, u1, xp)                                                           \
    do {                                                                                                \
        __m512i t_;                                                                                     \
        __asm__("vpbroadcastd %[x], %[t]\n\t"                                                          \
                "vpdpbusd %[t], %[v0], %[a0]\n\t"                                                      \
                "vpdpbusd %[t], %[v1], %[a1]"                                                           \
                : [a0] "+v"(acc0), [a1] "+v"(acc1), [t] "=&v"(t_)                                       \
                : [v0] "v"(u0), [v1] "v"(u1), [x] "m"(*(const lowbit_unaligned_i32 *)(xp)));            \
    } while (0)
#else
#define LOWBIT_DOT_ASM 0
#define DP_BROADCAST(acc, u, xp) ((void)0)
#define DP2_BROADCAST(acc0, acc1, u0, u1, xp) ((void)0)
#endif

/* acc += 4-way dot of unsigned codes u and signed bytes s; `full` = codes may exceed 15. */
INLINE __m512i CAT(dp4, LOWBIT_DOT_SUFFIX)(__m512i acc, __m512i u, __m512i s, const int full) {
#if LOWBIT_DOT_VNNI
    (void)full;
    return _mm512_dpbusd_epi32(acc, u, s);
#else
    if (!full)
        return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
    /* split into nibbles so that vpmaddubsw cannot saturate */
    const __m512i m = _mm512_set1_epi8(0x0f);
    const __m512i lo = _mm512_and_si512(u, m), hi = _mm512_and_si512(_mm512_srli_epi16(u, 4), m);
    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(lo, s), _mm512_set1_epi16(1)));
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(hi, s), _mm512_set1_epi16(16)));
#endif
}

/* With one or two tokens, consecutive dot products into one accumulator would wait on each
 * other's latency (vpdpbusd: about 4 cycles, 2 per cycle), so the (chunk, plane) steps of a
 * group of 8 chunks rotate over NB accumulator banks: 8 for one token, 4 for two. With more
 * tokens the tokens themselves give enough independent chains.
 *
 * With VNNI and banks that each hold one plane only (`planes` divides NB: one token, or two
 * with 2 or 4 planes), a plane is decoded by a mask alone, without the shift: bank b then
 * sums code * 2^(bits * plane) * x, which fits in vpdpbusd's unsigned byte (<= 128 or 240)
 * and in int32 (at most 2^28 for K = LOWBIT_MAX_K), and is shifted back exactly once at the
 * end. That is one vector operation per plane fewer, and GEMV is bound by exactly those.
 *
 * PN = 2 panels share each activation broadcast (one token or two), which a GEMV otherwise
 * repeats for every panel: half the broadcasts per dot product. */
INLINE void CAT(dot_tile, LOWBIT_DOT_SUFFIX)(const int bits, const int NR, const int PN, int64_t chunks,
                                              const uint8_t *restrict w, int64_t panel_stride,
                                              const int8_t *restrict x, int64_t ldx, int32_t *restrict acc) {
    const int planes = 8 / bits, chunk_k = 32 / bits;
    const __m512i mask = _mm512_set1_epi8((char)((1 << bits) - 1));
    enum { G = 8 };
    const int NB = NR == 1 ? 8 : NR == 2 ? 4 : 1;
    const int in_place = LOWBIT_DOT_VNNI && bits < 8 && NB % planes == 0;
    __m512i a[2][8][LOWBIT_MAX_NR];
    for (int q = 0; q < PN; q++)
        for (int b = 0; b < NB; b++)
            for (int j = 0; j < NR; j++) a[q][b][j] = _mm512_setzero_si512();
    /* one step: chunk c, the i-th of its group; plane p goes to bank (i·planes + p) mod NB */
#define CODES(v, p)                                                                                     \
    (bits == 8  ? (v)                                                                                   \
     : in_place ? _mm512_and_si512((v), _mm512_set1_epi8((char)(((1 << bits) - 1) << ((p) * bits))))    \
                : CAT(plane, LOWBIT_DOT_SUFFIX)((v), bits, (p), mask))
#define STEP(c, i)                                                                                      \
    do {                                                                                                \
        const __m512i v0 = _mm512_loadu_si512((const void *)(w + (c) * 64));                           \
        const __m512i v1 = PN > 1 ? _mm512_loadu_si512((const void *)(w + panel_stride + (c) * 64)) : v0; \
        _Pragma("clang loop unroll(full)")                                                              \
        for (int p = 0; p < planes; p++) {                                                              \
            const __m512i codes0 = CODES(v0, p), codes1 = CODES(v1, p);                                 \
            const int8_t *xp = x + (c) * chunk_k + 4 * p;                                               \
            const int b = ((i) * planes + p) % NB;                                                      \
            _Pragma("clang loop unroll(full)")                                                          \
            for (int j = 0; j < NR; j++) {                                                              \
                if (LOWBIT_DOT_ASM && bits == 8 && NR == 12) { /* one panel: see DP_BROADCAST */        \
                    DP_BROADCAST(a[0][b][j], codes0, xp + j * ldx);                                     \
                    continue;                                                                           \
                }                                                                                       \
                const __m512i xb = _mm512_set1_epi32(lowbit_load_i32(xp + j * ldx));                    \
                a[0][b][j] = CAT(dp4, LOWBIT_DOT_SUFFIX)(a[0][b][j], codes0, xb, bits == 8);             \
                if (PN > 1) a[1][b][j] = CAT(dp4, LOWBIT_DOT_SUFFIX)(a[1][b][j], codes1, xb, bits == 8); \
            }                                                                                           \
        }                                                                                               \
    } while (0)
    int64_t c = 0;
    /* spelled out: the bank of every step must be a constant, or the banks live in memory */
    for (; c + G <= chunks; c += G) {
        STEP(c, 0); STEP(c + 1, 1); STEP(c + 2, 2); STEP(c + 3, 3);
        STEP(c + 4, 4); STEP(c + 5, 5); STEP(c + 6, 6); STEP(c + 7, 7);
    }
    for (; c < chunks; c++) STEP(c, 0);
#undef STEP
#undef CODES
    for (int q = 0; q < PN; q++)
        for (int j = 0; j < NR; j++) {
            __m512i s = a[q][0][j];
            for (int b = 1; b < NB; b++)
                s = _mm512_add_epi32(s, in_place ? _mm512_srai_epi32(a[q][b][j], (b % planes) * bits) : a[q][b][j]);
            _mm512_storeu_si512((void *)(acc + 16 * (q * LOWBIT_MAX_NR + j)), s);
        }
}

/* Two panels at once for three tokens or more: each activation broadcast feeds two dot
 * products, so a step loads 2 + NR operands for 2 * NR of them instead of 1 + NR for NR.
 * Up to 12 tokens: 24 accumulators of the 32 registers, and each decoded plane feeds 12 dot
 * products where 8 gave it 8 (with GFNI's one decode per plane, the dot went from 88 % to
 * 91 % of the peak on an Intel core whose decode shares vpdpbusd's ports). Every loop over
 * the tokens is unrolled by name: left to clang's heuristics at 12, the accumulators went to
 * memory; and from 9 tokens on, the broadcasts go through DP2_BROADCAST. */
INLINE void CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(const int bits, const int NR, int64_t chunks,
                                               const uint8_t *restrict w, int64_t panel_stride,
                                               const int8_t *restrict x, int64_t ldx, int32_t *restrict acc) {
    const int planes = 8 / bits, chunk_k = 32 / bits;
    const __m512i mask = _mm512_set1_epi8((char)((1 << bits) - 1));
    __m512i a0[LOWBIT_MAX_NR], a1[LOWBIT_MAX_NR];
    for (int j = 0; j < NR; j++) a0[j] = a1[j] = _mm512_setzero_si512();
    for (int64_t c = 0; c < chunks; c++) {
        const __m512i v0 = _mm512_loadu_si512((const void *)(w + c * 64));
        const __m512i v1 = _mm512_loadu_si512((const void *)(w + panel_stride + c * 64));
        /* spelled out, so that every shift count is a constant: left a loop, binary's 8 planes
         * took a shift by a register and the loop's own counting (16 % slower than ternary) */
        _Pragma("clang loop unroll(full)")
        for (int p = 0; p < planes; p++) {
            const __m512i c0 = bits < 8 ? CAT(plane, LOWBIT_DOT_SUFFIX)(v0, bits, p, mask) : v0;
            const __m512i c1 = bits < 8 ? CAT(plane, LOWBIT_DOT_SUFFIX)(v1, bits, p, mask) : v1;
            const int8_t *xp = x + c * chunk_k + 4 * p;
            _Pragma("clang loop unroll(full)")
            for (int j = 0; j < NR; j++) {
                if (LOWBIT_DOT_ASM && NR > 8) {
                    DP2_BROADCAST(a0[j], a1[j], c0, c1, xp + j * ldx);
                    continue;
                }
                const __m512i xb = _mm512_set1_epi32(lowbit_load_i32(xp + j * ldx));
                a0[j] = CAT(dp4, LOWBIT_DOT_SUFFIX)(a0[j], c0, xb, bits == 8);
                a1[j] = CAT(dp4, LOWBIT_DOT_SUFFIX)(a1[j], c1, xb, bits == 8);
            }
        }
    }
    for (int j = 0; j < NR; j++) {
        _mm512_storeu_si512((void *)(acc + 16 * j), a0[j]);
        _mm512_storeu_si512((void *)(acc + 16 * (LOWBIT_MAX_NR + j)), a1[j]);
    }
}

INLINE void CAT(dot_all, LOWBIT_DOT_SUFFIX)(const int bits, int64_t chunks, const uint8_t *restrict w,
                                             const int8_t *restrict x, int64_t ldx, int nr,
                                             int32_t *restrict acc) {
    switch (nr) {
#define CASE(R) \
    case R: CAT(dot_tile, LOWBIT_DOT_SUFFIX)(bits, R, 1, chunks, w, 0, x, ldx, acc); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11)
    default: CAT(dot_tile, LOWBIT_DOT_SUFFIX)(bits, 12, 1, chunks, w, 0, x, ldx, acc); break;
#undef CASE
    }
}

#define DEFINE_DOT(B)                                                                                   \
    static void CAT(CAT(dot_b, B), LOWBIT_DOT_SUFFIX)(int64_t chunks, const uint8_t *restrict w,       \
                                                      int64_t panel_stride, int np,                    \
                                                      const int8_t *restrict x, int64_t ldx, int nr,   \
                                                      int32_t *restrict acc) {                         \
        if (np == 2 && nr >= 3) {                                                                       \
            switch (nr) {                                                                               \
            case 3: CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(B, 3, chunks, w, panel_stride, x, ldx, acc); break; \
            case 4: CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(B, 4, chunks, w, panel_stride, x, ldx, acc); break; \
            case 5: CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(B, 5, chunks, w, panel_stride, x, ldx, acc); break; \
            case 6: CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(B, 6, chunks, w, panel_stride, x, ldx, acc); break; \
            case 7: CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(B, 7, chunks, w, panel_stride, x, ldx, acc); break; \
            case 8: CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(B, 8, chunks, w, panel_stride, x, ldx, acc); break; \
            case 9: CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(B, 9, chunks, w, panel_stride, x, ldx, acc); break; \
            case 10: CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(B, 10, chunks, w, panel_stride, x, ldx, acc); break; \
            case 11: CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(B, 11, chunks, w, panel_stride, x, ldx, acc); break; \
            default: CAT(dot_tile2, LOWBIT_DOT_SUFFIX)(B, 12, chunks, w, panel_stride, x, ldx, acc); break; \
            }                                                                                           \
            return;                                                                                     \
        }                                                                                               \
        if (np == 2 && nr <= 2) {                                                                       \
            if (nr == 1) CAT(dot_tile, LOWBIT_DOT_SUFFIX)(B, 1, 2, chunks, w, panel_stride, x, ldx, acc); \
            else CAT(dot_tile, LOWBIT_DOT_SUFFIX)(B, 2, 2, chunks, w, panel_stride, x, ldx, acc);       \
            return;                                                                                     \
        }                                                                                               \
        for (int q = 0; q < np; q++)                                                                    \
            CAT(dot_all, LOWBIT_DOT_SUFFIX)(B, chunks, w + q * panel_stride, x, ldx, nr,                \
                                            acc + q * LOWBIT_MAX_NR * LOWBIT_PANEL_ROWS);               \
    }
DEFINE_DOT(1)
DEFINE_DOT(2)
DEFINE_DOT(4)
DEFINE_DOT(8)
#undef DEFINE_DOT

#if LOWBIT_DOT_ASM
/* dot_wide: one panel of 1-, 2- or 4-bit codes, NR tokens interleaved by 4 columns (lowbit_kernels.def), each
 * vpdpbusd taking its token's 4 bytes by an embedded broadcast at a constant offset. Up to 24
 * tokens: 24 accumulators, and each decoded plane feeds 24 dot products, so the decode (one
 * operation per plane with GFNI, on the ports vpdpbusd needs) is 1 in 25 of those ports'
 * operations where the 2-panel tile of 12 tokens makes it 1 in 13. From activation rows
 * ldx apart the same tile ran at 60 % of the dot peak: 24 row addresses are more than the
 * registers, clang chained them through adds, and rows 4 KB apart share L1 sets. */
INLINE void CAT(dot_wide_tile, LOWBIT_DOT_SUFFIX)(const int bits, const int NR, int64_t chunks,
                                                   const uint8_t *restrict w, const int8_t *restrict xi,
                                                   int32_t *restrict acc) {
    const int planes = 8 / bits;
    const __m512i mask = _mm512_set1_epi8((char)((1 << bits) - 1));
    __m512i a[LOWBIT_WIDE_NR];
    _Pragma("clang loop unroll(full)")
    for (int j = 0; j < NR; j++) a[j] = _mm512_setzero_si512();
    for (int64_t c = 0; c < chunks; c++) {
        const __m512i v = _mm512_loadu_si512((const void *)(w + c * 64));
        _Pragma("clang loop unroll(full)")
        for (int p = 0; p < planes; p++) {
            const __m512i u = CAT(plane, LOWBIT_DOT_SUFFIX)(v, bits, p, mask);
            const int8_t *xp = xi + (c * planes + p) * NR * 4;
            _Pragma("clang loop unroll(full)")
            for (int j = 0; j < NR; j++) DP_BROADCAST(a[j], u, xp + j * 4);
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int j = 0; j < NR; j++) _mm512_storeu_si512((void *)(acc + 16 * j), a[j]);
}

#define WIDE_CASES(B)                                                                                       switch (nr) {                                                                                           WIDE_CASE(B, 1) WIDE_CASE(B, 2) WIDE_CASE(B, 3) WIDE_CASE(B, 4) WIDE_CASE(B, 5) WIDE_CASE(B, 6)         WIDE_CASE(B, 7) WIDE_CASE(B, 8) WIDE_CASE(B, 9) WIDE_CASE(B, 10) WIDE_CASE(B, 11) WIDE_CASE(B, 12)      WIDE_CASE(B, 13) WIDE_CASE(B, 14) WIDE_CASE(B, 15) WIDE_CASE(B, 16) WIDE_CASE(B, 17)                    WIDE_CASE(B, 18) WIDE_CASE(B, 19) WIDE_CASE(B, 20) WIDE_CASE(B, 21) WIDE_CASE(B, 22)                    WIDE_CASE(B, 23) default: WIDE_CASE(B, 24)                                                              }
#define WIDE_CASE(B, R)                                                                                     case R: CAT(dot_wide_tile, LOWBIT_DOT_SUFFIX)(B, R, chunks, w, xi, acc); break;
static void CAT(dot_wide, LOWBIT_DOT_SUFFIX)(int bits, int64_t chunks, const uint8_t *restrict w,
                                              const int8_t *restrict xi, int nr, int32_t *restrict acc) {
    if (bits == 1) { WIDE_CASES(1) }
    else if (bits == 2) { WIDE_CASES(2) }
    else { WIDE_CASES(4) }
}
#undef WIDE_CASE
#undef WIDE_CASES
#endif
