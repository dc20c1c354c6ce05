/* The packed matmul, written once for every ISA: tiling, threading, the zero-point
 * correction and the fused dequantize. Only the inner dot (one or two 16-row panels times up
 * to LOWBIT_MAX_NR tokens over a range of K, or one panel times up to LOWBIT_WIDE_NR
 * interleaved tokens) is ISA code.
 *
 * Tiles are (a block of tokens) x (a group of panels of 16 rows). Consecutive tiles share
 * their panel group, so every token block after the first reads the panels the first one
 * brought into cache: with several token blocks a group is half of L2 (BLIS's packed block
 * of B). Where the ISA has a dot_wide kernel, token blocks are copied interleaved for it
 * (BLIS's packed block of A): by each tile, or once per call into a caller's workspace. */
#include "lowbit_internal.h"
#include <float.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { TILE_TOKENS = LOWBIT_MAX_NR, MOST_TOKENS = LOWBIT_WIDE_NR, MAX_TILE_PANELS = 1024 };

/* The columns of one wide tile's interleaved copy, at most: 24 tokens of 4096 (96 KB of
 * stack); a group of more columns keeps the dot_bB tiles. */
#define WIDE_MAX_K 4096

/* Tokens per token block for n tokens and tiles of at most `most`: as few blocks as that
 * allows, of near-equal sizes (64 tokens are 11, 11, 11, 11, 11 and 9, not five 12s and a
 * 4: a tile of few tokens decodes its weights for few dot products). */
static int64_t block_tokens(int64_t n, int64_t most) {
    const int64_t blocks = (n + most - 1) / most;
    return (n + blocks - 1) / blocks;
}

/* Multiply-adds each thread must get before a call splits (see lowbit_threads_for_work).
 * Measured with `lowbit bench kernels` on the classifier's shapes (N = 29): a 64 x 64 layer
 * ran faster on one thread, a 192 x 64 one on two. */
#define MATMUL_GRAIN ((int64_t)1 << 16)

/* The largest panel group, bytes: with one token block (nothing to reuse) a group is as large
 * as this, the fewest tiles; so is the group of a tile that takes its tokens' whole rows. */
#define LOWBIT_TILE_WEIGHT_BYTES (8 << 20)

static int64_t reused_group_override;

void lowbit_set_reused_group_bytes(int64_t bytes) { __atomic_store_n(&reused_group_override, bytes, __ATOMIC_RELAXED); }

/* A panel group that every token block passes over in turn: half of L2 (the rest holds a
 * token block's activations and output). At 8 MiB, which fits L3 only, int8 at N = 128 on
 * 4096 x 4096 ran at 439 GOP/s where 1 MiB (half this Xeon's L2) ran 633: on that machine one
 * core reads L3 at about 26 GB/s, and 8 tokens of int8 dot products consume panels at 64. */
static int64_t reused_group_bytes(void) {
    const int64_t set = __atomic_load_n(&reused_group_override, __ATOMIC_RELAXED);
    return set > 0 ? set : lowbit_l2_bytes() / 2;
}

typedef struct {
    const lowbit_kernel_table *t;
    const lowbit_format_traits *f;
    const lowbit_packed_weights *w;
    lowbit_dot_b1_fn dot;
    int zero_point; /* what the tiles take off per token, zero_point * sum(x): 0 after dot_s8 */
    const int8_t *x;
    int64_t n, ldx, kpad, panels, tile_panels, block_tokens, token_blocks, group, groups;
    int wide;    /* tiles of one panel and up to LOWBIT_WIDE_NR tokens, by t->dot_wide */
    const int8_t *xi; /* with wide: every token block interleaved, block i0.. at xi + i0 * kpad; or
                       * NULL, and each tile interleaves its own */
    const float *x_scales, *bias;
    const lowbit_epilogue *epilogue; /* with yf: applied to a tile's rows after its last group */
    float *yf;   /* fused dequantize output (with q: this thread's rows of the workspace), or */
    int32_t *ys; /* exact int32 output */
    int64_t ldy;
    int8_t *q;        /* with yf: each tile's rows quantized per token into q [n, ldq] and q_scales */
    int64_t ldq;
    float *q_scales;
    int bad;          /* a row to quantize was not finite */
} matmul_job;

/* Where the tile of tokens i0.. writes its float rows: the output, or (when they are to be
 * quantized) the thread's rows of the workspace, reused by each of its tiles. */
static inline float *rows_of(const matmul_job *j, int64_t i0) { return j->q ? j->yf : j->yf + i0 * j->ldy; }

/* The epilogue of one panel: accumulators acc[i * 16 + r] for tokens i0 + i and rows
 * row0 + r become step * acc - zero_point * sum(x_i). The arithmetic wraps modulo 2^32,
 * which is what truncating the exact 64-bit value to int32 gives. Everything a loop needs
 * is copied into restrict locals first, so that the stores into y cannot be taken to
 * change it and the row loops vectorize. */
static inline int32_t corrected(uint32_t step, int32_t acc, uint32_t corr) {
    return (int32_t)(step * (uint32_t)acc - corr);
}

static void store_s32(const matmul_job *j, const int32_t *restrict acc, int64_t row0, int rows, int64_t i0,
                      int nr, const uint32_t *restrict corr) {
    const uint32_t step = (uint32_t)j->f->step;
    int32_t *restrict ys = j->ys;
    const int64_t ldy = j->ldy;
    for (int i = 0; i < nr; i++) {
        const uint32_t c = corr[i];
        const int32_t *restrict a = acc + i * LOWBIT_PANEL_ROWS;
        int32_t *restrict y = ys + (i0 + i) * ldy + row0;
        for (int r = 0; r < rows; r++) y[r] = corrected(step, a[r], c);
    }
}

/* y = (g == 0 ? bias : y) + (float)dot * (x_scale * w_scale), in that order of operations
 * for every group count, so the result does not depend on how the work was split; the ISA's
 * dequantize kernel does the arithmetic. */
static void store_f32(const matmul_job *j, const int32_t *restrict acc, int64_t row0, int rows, int64_t i0,
                      int nr, const uint32_t *restrict corr, int64_t g) {
    static const float zeros[LOWBIT_PANEL_ROWS];
    const int64_t groups = j->groups;
    /* one scale group: the panel's scales and biases are read where they are (with a small K a
     * copy of each per panel and token block cost a tenth of the dot) */
    float ws_copy[LOWBIT_PANEL_ROWS];
    const float *ws = j->w->scales + row0;
    if (groups > 1) {
        for (int r = 0; r < rows; r++) ws_copy[r] = j->w->scales[(row0 + r) * groups + g];
        ws = ws_copy;
    }
    const float *base = g != 0 ? NULL : j->bias ? j->bias + row0 : zeros;
    j->t->dequantize(acc, rows, nr, (uint32_t)j->f->step, corr, j->x_scales + i0, ws, base, rows_of(j, i0) + row0, j->ldy);
}

/* Σ x[c] for c < n. Each tile takes it for each of its tokens, a pass over n bytes next to
 * the tile's 16 · n multiply-adds per panel; SSE2 (every x86-64) sums 16 bytes in two
 * instructions (x + 128 as unsigned, then psadbw), where the compiler's sign extensions took
 * ten. int32 is exact: |sum| <= 127 * LOWBIT_MAX_K. */
static int32_t byte_sum(const int8_t *restrict x, int64_t n) {
    int64_t c = 0;
    int32_t s = 0;
#if defined(__SSE2__)
    const __m128i flip = _mm_set1_epi8((char)0x80), zero = _mm_setzero_si128();
    __m128i acc = zero;
    for (; c + 16 <= n; c += 16)
        acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(x + c)), flip), zero));
    s = (int32_t)(_mm_cvtsi128_si64(acc) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)) - 128 * c);
#endif
    for (; c < n; c++) s += x[c];
    return s;
}

/* The epilogue on rows row0..row1 of tokens i0..i0+nr-1, just written by the tile: the SiLU
 * kernel from a copy on the stack (its operands are restrict), then the residual added. */
static void apply_epilogue(const matmul_job *j, int64_t i0, int nr, int64_t row0, int64_t row1) {
    enum { PIECE = 256 };
    const lowbit_epilogue *e = j->epilogue;
    float copy[PIECE];
    for (int i = 0; i < nr; i++) {
        float *restrict y = rows_of(j, i0) + i * j->ldy;
        if (e->silu)
            for (int64_t r = row0; r < row1; r += PIECE) {
                const int64_t n = row1 - r < PIECE ? row1 - r : PIECE;
                memcpy(copy, y + r, (size_t)n * sizeof *copy);
                j->t->silu(copy, n, y + r);
            }
        if (e->residual) {
            const float *restrict res = e->residual + (i0 + i) * e->ldr;
            for (int64_t r = row0; r < row1; r++) y[r] = res[r] + y[r];
        }
    }
}

/* Columns [0, cols) of nr rows x + j*ldx interleaved by 4 columns, as dot_wide takes them:
 * xi + (g*nr + j)*4 holds row j's columns 4g..4g+3 (cols is a multiple of 8). SSE2 moves
 * 4 rows x 4 groups at a time as a 4 x 4 transpose of int32; a scalar loop, the rest. */
static void interleave_rows(const int8_t *restrict x, int64_t ldx, int nr, int64_t cols, int8_t *restrict xi) {
    const int64_t groups = cols / 4;
    int j = 0;
#if defined(__SSE2__)
    for (; j + 4 <= nr; j += 4) {
        const int8_t *r = x + j * ldx;
        int64_t g = 0;
        for (; g + 4 <= groups; g += 4) {
            const __m128i r0 = _mm_loadu_si128((const __m128i *)(r + 4 * g)),
                          r1 = _mm_loadu_si128((const __m128i *)(r + ldx + 4 * g)),
                          r2 = _mm_loadu_si128((const __m128i *)(r + 2 * ldx + 4 * g)),
                          r3 = _mm_loadu_si128((const __m128i *)(r + 3 * ldx + 4 * g));
            const __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpacklo_epi32(r2, r3),
                          t2 = _mm_unpackhi_epi32(r0, r1), t3 = _mm_unpackhi_epi32(r2, r3);
            _mm_storeu_si128((__m128i *)(xi + (g * nr + j) * 4), _mm_unpacklo_epi64(t0, t1));
            _mm_storeu_si128((__m128i *)(xi + ((g + 1) * nr + j) * 4), _mm_unpackhi_epi64(t0, t1));
            _mm_storeu_si128((__m128i *)(xi + ((g + 2) * nr + j) * 4), _mm_unpacklo_epi64(t2, t3));
            _mm_storeu_si128((__m128i *)(xi + ((g + 3) * nr + j) * 4), _mm_unpackhi_epi64(t2, t3));
        }
        for (; g < groups; g++)
            for (int i = 0; i < 4; i++) memcpy(xi + (g * nr + j + i) * 4, r + i * ldx + 4 * g, 4);
    }
#endif
    for (; j < nr; j++)
        for (int64_t g = 0; g < groups; g++) memcpy(xi + (g * nr + j) * 4, x + j * ldx + 4 * g, 4);
}

/* Tokens whose zero-point corrections a thread keeps across its tiles (16 KB of stack). */
enum { KEPT_CORRECTIONS = 4096 };

static void run_tiles(void *arg, int64_t begin, int64_t end) {
    const matmul_job *j = arg;
    const lowbit_format_traits *f = j->f;
    const int64_t panel_bytes = j->kpad / f->chunk_k * LOWBIT_CHUNK_BYTES;
    int32_t acc[(LOWBIT_MAX_NP * TILE_TOKENS > MOST_TOKENS ? LOWBIT_MAX_NP * TILE_TOKENS : MOST_TOKENS) * LOWBIT_PANEL_ROWS];
    /* A token block's corrections are the same in every panel group, and int8 at 4096 x 4096
     * has 16 groups: with one scale group and few enough tokens, each thread takes them once
     * (they were 5 % of the call) and keeps them here, block b known once kept[b] is set. */
    uint32_t kept_corr[KEPT_CORRECTIONS];
    uint8_t kept[(KEPT_CORRECTIONS + TILE_TOKENS - 1) / TILE_TOKENS]; /* n tokens make ceil(n / 12) blocks at most */
    const int keeps = j->groups == 1 && j->n <= KEPT_CORRECTIONS;
    if (keeps) memset(kept, 0, (size_t)j->token_blocks);
    for (int64_t tile = begin; tile < end; tile++) {
        const int64_t block = tile % j->token_blocks, i0 = block * j->block_tokens;
        const int nr = (int)(j->n - i0 < j->block_tokens ? j->n - i0 : j->block_tokens);
        const int64_t p0 = (tile / j->token_blocks) * j->tile_panels;
        const int64_t p1 = p0 + j->tile_panels < j->panels ? p0 + j->tile_panels : j->panels;
        for (int64_t g = 0; g < j->groups; g++) {
            const int64_t k0 = g * j->group, k1 = k0 + j->group < j->w->k ? k0 + j->group : j->w->k;
            const int64_t c0 = k0 / f->chunk_k, c1 = (k1 + f->chunk_k - 1) / f->chunk_k;
            /* the zero-point correction of each token, zero_point * sum(x), the same for every panel */
            uint32_t own[MOST_TOKENS], *corr = keeps ? kept_corr + i0 : own;
            if (!keeps || !kept[block])
                for (int i = 0; i < nr; i++)
                    corr[i] = j->zero_point ? (uint32_t)j->zero_point * (uint32_t)byte_sum(j->x + (i0 + i) * j->ldx + k0, k1 - k0) : 0;
            if (keeps) kept[block] = 1;
            if (j->wide) {
                const int64_t cols = (c1 - c0) * f->chunk_k;
                int8_t own_xi[j->xi ? 1 : nr * cols]; /* at most MOST_TOKENS x WIDE_MAX_K bytes */
                const int8_t *xi = j->xi ? j->xi + i0 * j->kpad + k0 * nr : own_xi;
                if (!j->xi) interleave_rows(j->x + i0 * j->ldx + k0, j->ldx, nr, cols, own_xi);
                for (int64_t p = p0; p < p1; p++) {
                    j->t->dot_wide(f->bits, c1 - c0, j->w->data + p * panel_bytes + c0 * LOWBIT_CHUNK_BYTES, xi, nr, acc);
                    const int64_t row0 = p * LOWBIT_PANEL_ROWS, left = j->w->m - row0;
                    const int rows = left < LOWBIT_PANEL_ROWS ? (int)left : LOWBIT_PANEL_ROWS;
                    if (j->ys) store_s32(j, acc, row0, rows, i0, nr, corr);
                    else store_f32(j, acc, row0, rows, i0, nr, corr, g);
                }
                continue;
            }
            for (int64_t p = p0; p < p1; p += LOWBIT_MAX_NP) {
                const int np = p1 - p < LOWBIT_MAX_NP ? (int)(p1 - p) : LOWBIT_MAX_NP;
                j->dot(c1 - c0, j->w->data + p * panel_bytes + c0 * LOWBIT_CHUNK_BYTES, panel_bytes, np,
                       j->x + i0 * j->ldx + c0 * f->chunk_k, j->ldx, nr, acc);
                for (int q = 0; q < np; q++) {
                    const int64_t row0 = (p + q) * LOWBIT_PANEL_ROWS, left = j->w->m - row0;
                    const int rows = left < LOWBIT_PANEL_ROWS ? (int)left : LOWBIT_PANEL_ROWS;
                    const int32_t *accq = acc + q * LOWBIT_MAX_NR * LOWBIT_PANEL_ROWS;
                    if (j->ys) store_s32(j, accq, row0, rows, i0, nr, corr);
                    else store_f32(j, accq, row0, rows, i0, nr, corr, g);
                }
            }
        }
        if (j->epilogue) {
            const int64_t row1 = p1 * LOWBIT_PANEL_ROWS < j->w->m ? p1 * LOWBIT_PANEL_ROWS : j->w->m;
            apply_epilogue(j, i0, nr, p0 * LOWBIT_PANEL_ROWS, row1);
        }
        /* a tile holds its tokens' whole rows here (one panel group) */
        if (j->q && lowbit_quantize_activation_rows(j->t, j->yf, nr, j->w->m, j->q + i0 * j->ldq, j->ldq, j->q_scales + i0))
            __atomic_store_n(&((matmul_job *)arg)->bad, 1, __ATOMIC_RELAXED);
    }
}

/* With q: thread u takes the u-th contiguous share of the token blocks (one tile each), its
 * float rows in slot u of the workspace. */
typedef struct {
    matmul_job *j;
    int64_t units;
} quantized_job;

static void run_quantized_units(void *arg, int64_t begin, int64_t end) {
    const quantized_job *qj = arg;
    for (int64_t u = begin; u < end; u++) {
        matmul_job mine = *qj->j;
        mine.yf = qj->j->yf + u * TILE_TOKENS * qj->j->ldy;
        const int64_t t0 = mine.token_blocks * u / qj->units, t1 = mine.token_blocks * (u + 1) / qj->units;
        mine.bad = 0;
        run_tiles(&mine, t0, t1);
        if (mine.bad) __atomic_store_n(&qj->j->bad, 1, __ATOMIC_RELAXED);
    }
}

/* Whether v holds no NaN or infinity, by the ISA's absmax kernel (which says so). A call
 * checks a row of scales and a bias: a scalar loop that stopped at the first bad value took
 * a seventh of a 1024 x 1024 GEMV. */
static int all_finite(const lowbit_kernel_table *t, const float *v, int64_t n) {
    float unused;
    return n <= 0 || t->absmax(v, n, &unused) == 0;
}

/* The activation operand is symmetric int8, [-127, 127] (what every quantizer here
 * writes), with zeros in the padding: kernels may rely on both (AVX2's int8 dot takes
 * -x, which -128 does not have). One pass over n * kpad bytes, next to the n * m * kpad
 * multiply-adds. */
static int activations_valid(const int8_t *x, int64_t n, int64_t k, int64_t kpad, int64_t ldx) {
    /* a -128 is the one byte whose x + 128 (as uint8) is 0: the smallest such byte is a min
     * reduction and the padding an OR, two loops the compiler vectorizes */
    uint8_t low = 0xff, pad = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *restrict row = (const uint8_t *)(x + i * ldx);
        for (int64_t c = 0; c < k; c++) {
            const uint8_t shifted = (uint8_t)(row[c] ^ 0x80);
            low = shifted < low ? shifted : low;
        }
        for (int64_t c = k; c < kpad; c++) pad |= row[c];
    }
    return low != 0 && pad == 0;
}

/* The quantized output's rows per thread, at most: TILE_TOKENS rows of m floats each. */
static int quantized_units(const lowbit_context *ctx, int64_t n, int64_t m, int64_t k) {
    const int64_t tokens = block_tokens(n, TILE_TOKENS), blocks = (n + tokens - 1) / tokens;
    const int threads = lowbit_threads_for_work(ctx->threads, n * m * k, MATMUL_GRAIN);
    return threads < blocks ? threads : (int)blocks;
}

/* The token blocks interleaved for dot_wide, each thread a contiguous share of them. */
typedef struct {
    const matmul_job *j;
    int8_t *xi;
} interleave_job;

static void interleave_blocks(void *arg, int64_t begin, int64_t end) {
    const interleave_job *ij = arg;
    const matmul_job *j = ij->j;
    for (int64_t b = begin; b < end; b++) {
        const int64_t i0 = b * j->block_tokens;
        const int nr = (int)(j->n - i0 < j->block_tokens ? j->n - i0 : j->block_tokens);
        interleave_rows(j->x + i0 * j->ldx, j->ldx, nr, j->kpad, ij->xi + i0 * j->kpad);
    }
}

/* xi: n * kpad bytes for the interleaved copy of every token block, or NULL. */
static lowbit_status run(const lowbit_context *ctx, const lowbit_packed_weights *w, const int8_t *x, int64_t n,
                         int64_t ldx, const float *x_scales, const float *bias, const lowbit_epilogue *epilogue,
                         float *yf, int32_t *ys, int64_t ldy, int8_t *q, int64_t ldq, float *q_scales, int8_t *xi) {
    if (!ctx || !w || !x || !w->data) return LOWBIT_ERR_ARGUMENT;
    const lowbit_format_traits *f = lowbit_format_get(w->format);
    if (!f) return LOWBIT_ERR_ARGUMENT;
    if (w->m <= 0 || w->k <= 0 || w->k > LOWBIT_MAX_K || n <= 0 || ldx < lowbit_padded_k(w->k) || ldy < w->m)
        return LOWBIT_ERR_SHAPE;
    if (!activations_valid(x, n, w->k, lowbit_padded_k(w->k), ldx)) return LOWBIT_ERR_ARGUMENT;
    matmul_job j = {.t = ctx->table, .f = f, .w = w, .dot = lowbit_dot_for_bits(ctx->table, f->bits), .x = x,
                    .n = n, .ldx = ldx, .kpad = lowbit_padded_k(w->k),
                    .panels = (w->m + LOWBIT_PANEL_ROWS - 1) / LOWBIT_PANEL_ROWS,
                    .group = w->k, .groups = 1,
                    .x_scales = x_scales, .bias = bias, .yf = yf, .ys = ys, .ldy = ldy, .q = q, .ldq = ldq,
                    .q_scales = q_scales, .zero_point = f->zero_point};
    /* int8 by dot_s8 (the values' dot products, no zero point to take off) where the ISA whose
     * dot_b8 runs has its own: a table that kept a lower ISA's dot_s8 beside its own dot_b8
     * (VNNI's vpdpbusd) keeps the faster dot_b8 */
    if (f->bits == 8 && j.t->dot_s8_isa == j.t->dot_b8_isa && j.t->dot_s8_isa != LOWBIT_ISA_SCALAR)
        j.dot = j.t->dot_s8, j.zero_point = 0;
    if (epilogue && (epilogue->silu || epilogue->residual)) {
        if (!yf) return LOWBIT_ERR_ARGUMENT;
        if (epilogue->residual && epilogue->ldr < w->m) return LOWBIT_ERR_SHAPE;
        j.epilogue = epilogue;
    }
    if (yf) {
        if (!x_scales || !w->scales) return LOWBIT_ERR_ARGUMENT;
        if (w->group < 0) return LOWBIT_ERR_SHAPE;
        if (w->group > 0 && w->group < w->k) {
            if (w->group % f->chunk_k != 0) return LOWBIT_ERR_SHAPE;
            j.group = w->group;
            j.groups = (w->k + w->group - 1) / w->group;
        }
        if (!all_finite(j.t, x_scales, n) || !all_finite(j.t, w->scales, w->m * j.groups) || (bias && !all_finite(j.t, bias, w->m)))
            return LOWBIT_ERR_NONFINITE;
    }
    /* Wide tiles: with more tokens than a dot_bB tile holds, 1- to 4-bit codes, the ISA's own
     * kernel (the scalar twin gains nothing), and each tile writing rows of its own (q's
     * workspace has TILE_TOKENS rows per thread). A tile's own copy costs it a pass over its
     * tokens' columns per panel group: on 4096 x 4096 (best of 5, 1 thread) binary gained 4 %,
     * ternary 1-2 %, and int4, whose group of 1 MB holds half the rows of ternary's, nothing;
     * so int4 takes wide tiles only with the copy made once per call (a workspace). */
    const int wide_kernel = !q && n > TILE_TOKENS && j.t->dot_wide_isa != LOWBIT_ISA_SCALAR && f->bits < 8;
    j.wide = wide_kernel && (xi || (f->bits <= 2 && j.group <= WIDE_MAX_K));
    j.block_tokens = block_tokens(n, j.wide ? MOST_TOKENS : TILE_TOKENS);
    /* a multiple of 4, all interleaved by interleave_rows' transposes (64 = 24 + 24 + 16) */
    if (j.wide) j.block_tokens = (j.block_tokens + 3) / 4 * 4;
    j.token_blocks = (n + j.block_tokens - 1) / j.block_tokens;
    const int threads = lowbit_threads_for_work(ctx->threads, n * w->m * w->k, MATMUL_GRAIN);
    if (j.wide && xi) {
        interleave_job ij = {&j, xi};
        lowbit_parallel_for(threads < j.token_blocks ? threads : (int)j.token_blocks, j.token_blocks,
                            interleave_blocks, &ij);
        j.xi = xi;
    }
    if (q) { /* every tile takes its tokens' whole rows: one panel group, token blocks over the threads */
        j.tile_panels = j.panels;
        quantized_job qj = {&j, quantized_units(ctx, n, w->m, w->k)};
        lowbit_parallel_for((int)qj.units, qj.units, run_quantized_units, &qj);
        return j.bad ? LOWBIT_ERR_NONFINITE : LOWBIT_OK;
    }
    /* Panel groups: as few as the size cap allows, but a multiple of the thread count, so
     * that the contiguous split of tiles gives every thread the same share of rows (even
     * with a single token block), and of near-equal sizes. */
    const int64_t group_bytes = j.token_blocks > 1 ? reused_group_bytes() : LOWBIT_TILE_WEIGHT_BYTES;
    const int64_t panel_bytes = j.kpad / f->chunk_k * LOWBIT_CHUNK_BYTES, fit = group_bytes / panel_bytes;
    const int64_t cap = fit < 1 ? 1 : fit > MAX_TILE_PANELS ? MAX_TILE_PANELS : fit;
    int64_t groups = (j.panels + cap - 1) / cap;
    groups = (groups + threads - 1) / threads * threads;
    if (groups > j.panels) groups = j.panels;
    j.tile_panels = (j.panels + groups - 1) / groups;
    const int64_t tiles = j.token_blocks * ((j.panels + j.tile_panels - 1) / j.tile_panels);
    lowbit_parallel_for(threads, tiles, run_tiles, &j);
    return LOWBIT_OK;
}

lowbit_status lowbit_matmul_s32(const lowbit_context *ctx, const lowbit_packed_weights *w, const int8_t *x,
                                int64_t n, int64_t ldx, int32_t *y, int64_t ldy) {
    if (!y) return LOWBIT_ERR_ARGUMENT;
    return run(ctx, w, x, n, ldx, NULL, NULL, NULL, NULL, y, ldy, NULL, 0, NULL, NULL);
}

lowbit_status lowbit_matmul_f32(const lowbit_context *ctx, const lowbit_packed_weights *w, const int8_t *x,
                                int64_t n, int64_t ldx, const float *x_scales, const float *bias, float *y,
                                int64_t ldy) {
    if (!y) return LOWBIT_ERR_ARGUMENT;
    return run(ctx, w, x, n, ldx, x_scales, bias, NULL, y, NULL, ldy, NULL, 0, NULL, NULL);
}

lowbit_status lowbit_matmul_f32_epilogue(const lowbit_context *ctx, const lowbit_packed_weights *w, const int8_t *x,
                                         int64_t n, int64_t ldx, const float *x_scales, const float *bias,
                                         const lowbit_epilogue *epilogue, float *y, int64_t ldy) {
    if (!y) return LOWBIT_ERR_ARGUMENT;
    return run(ctx, w, x, n, ldx, x_scales, bias, epilogue, y, NULL, ldy, NULL, 0, NULL, NULL);
}

/* Whether one tile can take its tokens' whole rows as the tiled path takes them: all the panels
 * within the tile size. Larger weights are multiplied by the tiled path into the workspace
 * (the whole output) and quantized from there, so that they are not streamed once per tile. */
static int whole_rows_fit(const lowbit_format_traits *f, const lowbit_packed_weights *w) {
    const int64_t panels = (w->m + LOWBIT_PANEL_ROWS - 1) / LOWBIT_PANEL_ROWS;
    return panels * (lowbit_padded_k(w->k) / f->chunk_k * LOWBIT_CHUNK_BYTES) <= LOWBIT_TILE_WEIGHT_BYTES;
}

size_t lowbit_matmul_quantized_workspace_size(const lowbit_context *ctx, const lowbit_packed_weights *w, int64_t n) {
    const lowbit_format_traits *f = w ? lowbit_format_get(w->format) : NULL;
    if (!ctx || !f || n <= 0 || w->m <= 0 || w->k <= 0) return 0;
    if (!whole_rows_fit(f, w)) return (size_t)n * (size_t)w->m * sizeof(float);
    return (size_t)quantized_units(ctx, n, w->m, w->k) * TILE_TOKENS * (size_t)w->m * sizeof(float);
}

lowbit_status lowbit_matmul_quantized(const lowbit_context *ctx, const lowbit_packed_weights *w, const int8_t *x,
                                      int64_t n, int64_t ldx, const float *x_scales, const float *bias,
                                      const lowbit_epilogue *epilogue, int8_t *q, int64_t ldq, float *q_scales,
                                      void *workspace) {
    if (!ctx || !q || !q_scales || !workspace || !w) return LOWBIT_ERR_ARGUMENT;
    const lowbit_format_traits *f = lowbit_format_get(w->format);
    if (!f) return LOWBIT_ERR_ARGUMENT;
    if (ldq < w->m) return LOWBIT_ERR_SHAPE;
    if (whole_rows_fit(f, w)) return run(ctx, w, x, n, ldx, x_scales, bias, epilogue, workspace, NULL, w->m, q, ldq, q_scales, NULL);
    const lowbit_status s = run(ctx, w, x, n, ldx, x_scales, bias, epilogue, workspace, NULL, w->m, NULL, 0, NULL, NULL);
    return s != LOWBIT_OK ? s : lowbit_quantize_activations(ctx, workspace, n, w->m, q, ldq, q_scales);
}

static size_t align64(size_t v) { return (v + 63) / 64 * 64; }

/* The activations quantized [n, kpad], their scales, and room for the matmul's interleaved copy
 * of them (dot_wide's tiles then take it once per call rather than once per panel group). */
size_t lowbit_linear_workspace_size(int64_t n, int64_t k) {
    if (n <= 0 || k <= 0) return 0;
    const size_t codes = (size_t)(n * lowbit_padded_k(k));
    return align64(codes) + align64((size_t)n * sizeof(float)) + codes;
}

lowbit_status lowbit_linear_f32(const lowbit_context *ctx, const lowbit_packed_weights *w, const float *x,
                                int64_t n, const float *bias, float *y, void *workspace) {
    if (!w || !workspace) return LOWBIT_ERR_ARGUMENT;
    if (w->k <= 0 || w->k > LOWBIT_MAX_K || n <= 0) return LOWBIT_ERR_SHAPE;
    const int64_t kpad = lowbit_padded_k(w->k);
    if (!y) return LOWBIT_ERR_ARGUMENT;
    int8_t *xq = workspace;
    float *xs = (float *)((char *)workspace + align64((size_t)(n * kpad)));
    int8_t *xi = (int8_t *)xs + align64((size_t)n * sizeof(float));
    const lowbit_status st = lowbit_quantize_activations(ctx, x, n, w->k, xq, kpad, xs);
    if (st != LOWBIT_OK) return st;
    return run(ctx, w, xq, n, kpad, xs, bias, NULL, y, NULL, w->m, NULL, 0, NULL, xi);
}

size_t lowbit_gemm_s8_workspace_size(int64_t m, int64_t n, int64_t k) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    return align64(lowbit_packed_size(LOWBIT_FORMAT_INT8, n, k)) + (size_t)(m * lowbit_padded_k(k));
}

/* The operands of an int8 GEMM as the packed matmul takes them: op(B)^T packed as int8
 * "weights" [n, k], op(A) as padded "activation" rows [m, kpad] *ldr apart: A itself when its
 * rows already are (not transposed, lda >= kpad, zeros past k: what LowBit's quantizers
 * write), else a copy in the workspace. */
static lowbit_status gemm_s8_operands(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const int8_t *a,
                                      int64_t lda, const int8_t *b, int64_t ldb, void *workspace,
                                      uint8_t **packed, const int8_t **rows, int64_t *ldr) {
    if (m <= 0 || n <= 0 || k <= 0 || k > LOWBIT_MAX_K) return LOWBIT_ERR_SHAPE;
    if (lda < (trans_a ? m : k) || ldb < (trans_b ? k : n)) return LOWBIT_ERR_SHAPE;
    *packed = workspace;
    lowbit_status st = trans_b ? lowbit_pack_strided(LOWBIT_FORMAT_INT8, b, n, k, ldb, 1, *packed)
                               : lowbit_pack_strided(LOWBIT_FORMAT_INT8, b, n, k, 1, ldb, *packed);
    if (st != LOWBIT_OK) return st;
    /* A is the symmetric operand: the matmul's own scan of its rows refuses a -128. */
    const int64_t kpad = lowbit_padded_k(k);
    if (!trans_a && lda >= kpad) {
        uint8_t pad = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t c = k; c < kpad; c++) pad |= (uint8_t)a[i * lda + c];
        if (pad == 0) {
            *rows = a, *ldr = lda;
            return LOWBIT_OK;
        }
    }
    int8_t *out = (int8_t *)workspace + align64(lowbit_packed_size(LOWBIT_FORMAT_INT8, n, k));
    *rows = out, *ldr = kpad;
    if (trans_a) {
        /* in 32 x 32 blocks, so that both sides stay in cache */
        for (int64_t i0 = 0; i0 < m; i0 += 32) {
            const int64_t i1 = i0 + 32 < m ? i0 + 32 : m;
            for (int64_t k0 = 0; k0 < k; k0 += 32) {
                const int64_t k1 = k0 + 32 < k ? k0 + 32 : k;
                for (int64_t i = i0; i < i1; i++)
                    for (int64_t kk = k0; kk < k1; kk++) out[i * kpad + kk] = a[kk * lda + i];
            }
        }
    } else {
        for (int64_t i = 0; i < m; i++) memcpy(out + i * kpad, a + i * lda, (size_t)k);
    }
    for (int64_t i = 0; i < m; i++) memset(out + i * kpad + k, 0, (size_t)(kpad - k));
    return LOWBIT_OK;
}

lowbit_status lowbit_gemm_s8(const lowbit_context *ctx, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                             const int8_t *a, int64_t lda, const int8_t *b, int64_t ldb, int32_t *c, int64_t ldc,
                             void *workspace) {
    if (!a || !b || !c || !workspace) return LOWBIT_ERR_ARGUMENT;
    if (ldc < n) return LOWBIT_ERR_SHAPE;
    /* C = op(A) op(B) is the packed matmul with op(B)^T as int8 "weights" [n, k] and op(A) as
     * "activations" [m, k]. */
    uint8_t *packed;
    const int8_t *rows;
    int64_t ldr;
    const lowbit_status st = gemm_s8_operands(trans_a, trans_b, m, n, k, a, lda, b, ldb, workspace, &packed, &rows, &ldr);
    if (st != LOWBIT_OK) return st;
    const lowbit_packed_weights w = {.format = LOWBIT_FORMAT_INT8, .m = n, .k = k, .data = packed};
    return lowbit_matmul_s32(ctx, &w, rows, m, ldr, c, ldc);
}

size_t lowbit_gemm_s8_f32_workspace_size(int64_t m, int64_t n, int64_t k) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    return align64(lowbit_gemm_s8_workspace_size(m, n, k)) + (size_t)n * sizeof(float);
}

lowbit_status lowbit_gemm_s8_f32(const lowbit_context *ctx, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                 const int8_t *a, int64_t lda, const float *a_scales, const int8_t *b, int64_t ldb,
                                 float *c, int64_t ldc, void *workspace) {
    if (!a || !a_scales || !b || !c || !workspace) return LOWBIT_ERR_ARGUMENT;
    if (ldc < n) return LOWBIT_ERR_SHAPE;
    uint8_t *packed;
    const int8_t *rows;
    int64_t ldr;
    const lowbit_status st = gemm_s8_operands(trans_a, trans_b, m, n, k, a, lda, b, ldb, workspace, &packed, &rows, &ldr);
    if (st != LOWBIT_OK) return st;
    /* the fused dequantize with a scale of 1 per "weight" row: (float)sum * (a_scale * 1) */
    float *ones = (float *)((char *)workspace + align64(lowbit_gemm_s8_workspace_size(m, n, k)));
    for (int64_t j = 0; j < n; j++) ones[j] = 1.0f;
    const lowbit_packed_weights w = {.format = LOWBIT_FORMAT_INT8, .m = n, .k = k, .data = packed, .scales = ones};
    return lowbit_matmul_f32(ctx, &w, rows, m, ldr, a_scales, NULL, c, ldc);
}
