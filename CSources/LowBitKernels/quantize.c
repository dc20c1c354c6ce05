/* Quantization drivers: cut a tensor into scopes (whole tensor, rows, or groups along a
 * row), take each scope's statistic, then quantize it. Scope s is quantized in the same
 * pass (one fused kernel) that reads scope s + 1 for its statistic: each scope is then read
 * from memory once and from L1 once, and the two reads overlap. */
#include "lowbit_internal.h"
#include <float.h>

typedef enum { KIND_SIGN, KIND_TERNARY, KIND_ABSMAX } quant_kind;

typedef struct {
    const lowbit_kernel_table *t;
    quant_kind kind;
    const float *x;
    int64_t cols, group, groups; /* groups per row; 0 for one scope over the whole tensor */
    int qmax;
    float bound;
    int8_t *q;
    int64_t ldq;
    float *scales;
    int bad;
} quant_job;

/* A scope's statistic: absmax, or the sums (sum only for sign). */
typedef struct {
    float absmax;
    double sum, abssum;
} scope_stat;

/* 1/scale, kept finite: a tiny but non-zero scale must not turn 0 * inv into NaN. */
static float finite_inverse(float numerator, float denominator) {
    const float inv = numerator / denominator;
    return inv <= FLT_MAX ? inv : FLT_MAX;
}

/* Takes a scope's statistic alone; returns 1 if it is not finite. */
static int take_stat(const quant_job *j, const float *x, int64_t len, scope_stat *st) {
    if (j->kind == KIND_ABSMAX) return j->t->absmax(x, len, &st->absmax);
    return j->t->sums(x, len, j->kind == KIND_SIGN ? &st->sum : NULL, &st->abssum);
}

/*
 * Writes the codes and the scale of scope x (len floats, statistic st) and, if y is not
 * NULL, takes the statistic of the next scope y (y_len floats) into *next: in the same pass
 * (a fused kernel) when the lengths match. Returns 1 if y's statistic is not finite.
 */
static int quantize_then_take(const quant_job *j, const float *x, int64_t len, const scope_stat *st, int8_t *q,
                              float *scale, const float *y, int64_t y_len, scope_stat *next) {
    const lowbit_kernel_table *t = j->t;
    const int fuse = y && y_len == len;
    float inv = 0.0f;
    if (j->kind == KIND_SIGN) {
        *scale = (float)(st->abssum / (double)len);
        const float threshold = (float)(st->sum / (double)len);
        if (fuse) return t->sign_sums(x, len, threshold, q, y, &next->sum, &next->abssum);
        t->sign(x, len, threshold, q);
    } else {
        if (j->kind == KIND_ABSMAX) {
            *scale = st->absmax / j->bound;
            if (st->absmax != 0.0f) inv = finite_inverse(j->bound, st->absmax);
        } else {
            *scale = (float)(st->abssum / (double)len);
            if (*scale != 0.0f) inv = finite_inverse(1.0f, *scale);
        }
        const int qmax = j->kind == KIND_ABSMAX ? j->qmax : 1;
        if (inv == 0.0f) memset(q, 0, (size_t)len); /* an all-zero scope */
        else if (fuse && j->kind == KIND_ABSMAX) return t->quantize_absmax(x, len, inv, qmax, q, y, &next->absmax);
        else if (fuse) return t->quantize_sums(x, len, inv, qmax, q, y, NULL, &next->abssum);
        else t->quantize(x, len, inv, qmax, q);
    }
    return y ? take_stat(j, y, y_len, next) : 0;
}

/* Scopes s = row * groups + group of rows [begin, end), in order: scope s + 1's statistic
 * is taken in scope s's pass. */
static void quantize_rows(void *arg, int64_t begin, int64_t end) {
    quant_job *j = arg;
    const int64_t first = begin * j->groups, last = end * j->groups;
#define SCOPE_X(s) (j->x + (s) / j->groups * j->cols + (s) % j->groups * j->group)
#define SCOPE_LEN(s) (j->cols - (s) % j->groups * j->group < j->group ? j->cols - (s) % j->groups * j->group : j->group)
    scope_stat st, next = {0};
    int bad = take_stat(j, SCOPE_X(first), SCOPE_LEN(first), &st);
    for (int64_t s = first; s < last; s++) {
        const int64_t r = s / j->groups, g = s % j->groups;
        const float *y = s + 1 < last ? SCOPE_X(s + 1) : NULL;
        const int64_t y_len = y ? SCOPE_LEN(s + 1) : 0;
        int next_bad = 0;
        if (bad) { /* not quantized: the call fails */
            __atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
            if (y) next_bad = take_stat(j, y, y_len, &next);
        } else {
            next_bad = quantize_then_take(j, SCOPE_X(s), SCOPE_LEN(s), &st, j->q + r * j->ldq + g * j->group,
                                          j->scales + s, y, y_len, &next);
        }
        if (g == j->groups - 1 && j->ldq > j->cols) memset(j->q + r * j->ldq + j->cols, 0, (size_t)(j->ldq - j->cols));
        st = next;
        bad = next_bad;
    }
#undef SCOPE_X
#undef SCOPE_LEN
}

/* Values per thread below which a call stays on one thread (see lowbit_threads_for_work). */
#define QUANTIZE_GRAIN ((int64_t)1 << 14)

static lowbit_status run(const lowbit_context *ctx, quant_kind kind, const float *x, int64_t rows, int64_t cols,
                         int64_t group, int qmax, float bound, int8_t *q, int64_t ldq, float *scales) {
    if (!ctx || !x || !q || !scales) return LOWBIT_ERR_ARGUMENT;
    if (rows <= 0 || cols <= 0 || group < 0 || ldq < cols) return LOWBIT_ERR_SHAPE;
    if (kind == KIND_ABSMAX && (qmax < 1 || qmax > 127 || !(bound > 0.0f && bound <= FLT_MAX))) return LOWBIT_ERR_ARGUMENT;
    quant_job j = {.t = ctx->table, .kind = kind, .x = x, .cols = cols, .qmax = qmax, .bound = bound,
                   .q = q, .ldq = ldq, .scales = scales};
    if (group == 0) { /* one scope: the whole (contiguous) tensor */
        if (ldq != cols) return LOWBIT_ERR_SHAPE;
        scope_stat st;
        if (take_stat(&j, x, rows * cols, &st)) return LOWBIT_ERR_NONFINITE;
        quantize_then_take(&j, x, rows * cols, &st, q, scales, NULL, 0, NULL);
        return LOWBIT_OK;
    }
    j.group = group < cols ? group : cols;
    j.groups = (cols + j.group - 1) / j.group;
    lowbit_parallel_for(lowbit_threads_for_work(ctx->threads, rows * cols, QUANTIZE_GRAIN), rows, quantize_rows, &j);
    return j.bad ? LOWBIT_ERR_NONFINITE : LOWBIT_OK;
}

lowbit_status lowbit_quantize_sign(const lowbit_context *ctx, const float *w, int64_t rows, int64_t cols,
                                   int64_t group, int8_t *q, float *scales) {
    return run(ctx, KIND_SIGN, w, rows, cols, group, 1, 1.0f, q, cols, scales);
}

lowbit_status lowbit_quantize_ternary(const lowbit_context *ctx, const float *w, int64_t rows, int64_t cols,
                                      int64_t group, int8_t *q, float *scales) {
    return run(ctx, KIND_TERNARY, w, rows, cols, group, 1, 1.0f, q, cols, scales);
}

lowbit_status lowbit_quantize_absmax(const lowbit_context *ctx, const float *w, int64_t rows, int64_t cols,
                                     int64_t group, int qmax, float bound, int8_t *q, float *scales) {
    return run(ctx, KIND_ABSMAX, w, rows, cols, group, qmax, bound, q, cols, scales);
}

lowbit_status lowbit_quantize_activations(const lowbit_context *ctx, const float *x, int64_t n, int64_t k,
                                          int8_t *q, int64_t ldq, float *scales) {
    return run(ctx, KIND_ABSMAX, x, n, k, k, 127, 127.0f, q, ldq, scales);
}

int lowbit_quantize_activation_rows(const lowbit_kernel_table *t, const float *x, int64_t rows, int64_t k, int8_t *q,
                                    int64_t ldq, float *scales) {
    quant_job j = {.t = t, .kind = KIND_ABSMAX, .x = x, .cols = k, .group = k, .groups = 1, .qmax = 127, .bound = 127.0f,
                   .q = q, .ldq = ldq, .scales = scales};
    quantize_rows(&j, 0, rows);
    return j.bad;
}

/* ---- stochastic rounding (the quantized gradients of QT) ---- */

/* Both forms' job: rows of x quantized whole, or (transposed) the columns of x [n, cols]
 * with row i scaled by s[i], `width` columns per unit of the first pass. */
typedef struct {
    const lowbit_kernel_table *t;
    const float *x, *s;
    int64_t n, cols, ldq, width;
    uint64_t state;
    int8_t *q;
    float *scales; /* the absmax of each output row after the first pass, its scale at the end */
    int bad;
} stochastic_job;

static void stochastic_absmax(void *p, int64_t begin, int64_t end) {
    stochastic_job *j = p;
    int bad = 0;
    for (int64_t r = begin; r < end; r++) bad |= j->t->absmax(j->x + r * j->cols, j->cols, j->scales + r);
    if (bad) __atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
}

/* 127 / absmax, kept finite */
static float stochastic_inverse(float absmax) {
    const float inv = 127.0f / absmax;
    return inv <= FLT_MAX ? inv : FLT_MAX;
}

static void stochastic_rows(void *p, int64_t begin, int64_t end) {
    stochastic_job *j = p;
    /* draws are taken in row order, one per value of each non-zero row */
    int64_t first = 0;
    for (int64_t r = 0; r < begin; r++) first += j->scales[r] > 0.0f ? j->cols : 0;
    for (int64_t r = begin; r < end; r++) {
        const float absmax = j->scales[r];   /* read-only here: other threads count from it */
        int8_t *q = j->q + r * j->ldq;
        memset(q + j->cols, 0, (size_t)(j->ldq - j->cols));
        if (!(absmax > 0.0f)) {
            memset(q, 0, (size_t)j->cols);
            continue;
        }
        j->t->quantize_stochastic(j->x + r * j->cols, j->cols, stochastic_inverse(absmax), j->state, first, q);
        first += j->cols;
    }
}

lowbit_status lowbit_quantize_stochastic(const lowbit_context *ctx, const float *x, int64_t rows, int64_t cols,
                                         uint64_t seed, int8_t *q, int64_t ldq, float *scales) {
    if (!ctx || !x || !q || !scales) return LOWBIT_ERR_ARGUMENT;
    if (rows <= 0 || cols <= 0 || ldq < cols) return LOWBIT_ERR_SHAPE;
    stochastic_job j = {.t = ctx->table, .x = x, .cols = cols, .ldq = ldq, .state = seed, .q = q, .scales = scales};
    const int threads = lowbit_threads_for_work(ctx->threads, rows * cols, QUANTIZE_GRAIN);
    lowbit_parallel_for(threads, rows, stochastic_absmax, &j);
    if (j.bad) return LOWBIT_ERR_NONFINITE;
    lowbit_parallel_for(threads, rows, stochastic_rows, &j);
    for (int64_t r = 0; r < rows; r++) scales[r] = scales[r] / 127.0f; /* after every thread has counted */
    return LOWBIT_OK;
}

/* ---- the same of a scaled transpose, without the transpose in memory ---- */

/* Tokens per block of the second pass, and columns per tile: a tile of TILE x TILE floats
 * (16 KB) is transposed from x and quantized from L1. */
enum { TRANSPOSED_TILE = 64 };

/* First pass, over a range of columns: max |x[i, j] * s[i]| over the rows, row by row (a
 * contiguous stream; max is exact, so the order does not matter). */
static void transposed_absmax(void *p, int64_t begin, int64_t end) {
    stochastic_job *j = p;
    const int64_t c0 = begin * j->width, c1 = end * j->width < j->cols ? end * j->width : j->cols;
    float *restrict mx = j->scales + c0;
    const int64_t w = c1 - c0;
    for (int64_t c = 0; c < w; c++) mx[c] = 0.0f;
    int bad = 0;
    for (int64_t i = 0; i < j->n; i++) {
        const float *restrict row = j->x + i * j->cols + c0;
        const float si = j->s[i];
        for (int64_t c = 0; c < w; c++) {
            const float v = fabsf(row[c] * si);
            bad |= !(v <= FLT_MAX);
            mx[c] = v > mx[c] ? v : mx[c];
        }
    }
    if (bad) __atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
}

/* Second pass, over blocks of TILE tokens: each tile of (TILE tokens) x (TILE columns) goes
 * through the ISA's transpose into L1, then each of its rows (a segment of one output row)
 * through the ISA's stochastic rounding, with the draws that segment has in the whole. */
static void transposed_blocks(void *p, int64_t begin, int64_t end) {
    const stochastic_job *j = p;
    float tile[TRANSPOSED_TILE * TRANSPOSED_TILE];
    for (int64_t b = begin; b < end; b++) {
        const int64_t i0 = b * TRANSPOSED_TILE, len = j->n - i0 < TRANSPOSED_TILE ? j->n - i0 : TRANSPOSED_TILE;
        int64_t nonzero = 0; /* non-zero output rows before the current one: each drew n values */
        for (int64_t c0 = 0; c0 < j->cols; c0 += TRANSPOSED_TILE) {
            const int64_t cols = j->cols - c0 < TRANSPOSED_TILE ? j->cols - c0 : TRANSPOSED_TILE;
            for (int64_t r = 0; r < len; r += 16)
                j->t->transpose_scaled(j->x + (i0 + r) * j->cols + c0, j->cols, (int)(len - r < 16 ? len - r : 16), cols,
                                       j->s + i0 + r, tile + r, TRANSPOSED_TILE);
            for (int64_t c = 0; c < cols; c++) {
                const float absmax = j->scales[c0 + c];
                int8_t *q = j->q + (c0 + c) * j->ldq + i0;
                if (i0 + len == j->n) memset(q + len, 0, (size_t)(j->ldq - j->n));
                if (!(absmax > 0.0f)) {
                    memset(q, 0, (size_t)len);
                    continue;
                }
                j->t->quantize_stochastic(tile + c * TRANSPOSED_TILE, len, stochastic_inverse(absmax), j->state,
                                          nonzero * j->n + i0, q);
                nonzero++;
            }
        }
    }
}

lowbit_status lowbit_quantize_stochastic_transposed(const lowbit_context *ctx, const float *x, int64_t n, int64_t m,
                                                    const float *s, uint64_t seed, int8_t *q, int64_t ldq,
                                                    float *scales) {
    if (!ctx || !x || !s || !q || !scales) return LOWBIT_ERR_ARGUMENT;
    if (n <= 0 || m <= 0 || ldq < n) return LOWBIT_ERR_SHAPE;
    const int threads = lowbit_threads_for_work(ctx->threads, n * m, QUANTIZE_GRAIN);
    stochastic_job j = {.t = ctx->table, .x = x, .s = s, .n = n, .cols = m, .ldq = ldq,
                        .width = (m + threads - 1) / threads, .state = seed, .q = q, .scales = scales};
    lowbit_parallel_for(threads, (m + j.width - 1) / j.width, transposed_absmax, &j);
    if (j.bad) return LOWBIT_ERR_NONFINITE;
    lowbit_parallel_for(threads, (n + TRANSPOSED_TILE - 1) / TRANSPOSED_TILE, transposed_blocks, &j);
    for (int64_t c = 0; c < m; c++) scales[c] = scales[c] / 127.0f; /* after every block has read them */
    return LOWBIT_OK;
}

/* ---- max |x| per row (the static-range statistics) ---- */

typedef struct {
    const lowbit_kernel_table *t;
    const float *x;
    int64_t cols;
    float *out;
    int bad;
} absmax_job;

static void absmax_rows(void *p, int64_t begin, int64_t end) {
    absmax_job *j = p;
    int bad = 0;
    for (int64_t r = begin; r < end; r++) bad |= j->t->absmax(j->x + r * j->cols, j->cols, j->out + r);
    if (bad) __atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
}

lowbit_status lowbit_absmax_rows(const lowbit_context *ctx, const float *x, int64_t rows, int64_t cols, float *out) {
    if (!ctx || !x || !out) return LOWBIT_ERR_ARGUMENT;
    if (rows <= 0 || cols <= 0) return LOWBIT_ERR_SHAPE;
    absmax_job j = {.t = ctx->table, .x = x, .cols = cols, .out = out};
    lowbit_parallel_for(lowbit_threads_for_work(ctx->threads, rows * cols, QUANTIZE_GRAIN), rows, absmax_rows, &j);
    return j.bad ? LOWBIT_ERR_NONFINITE : LOWBIT_OK;
}
