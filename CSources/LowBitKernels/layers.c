/* The model's float passes (layer norm, SiLU, causal attention): blocking and threading written
 * once over the ISA's float kernels. Work splits by rows, or by (sequence, head) units whose
 * outputs are disjoint, so every thread count gives the same bits. */
#include "lowbit_internal.h"

#pragma clang fp contract(off)

/* Multiply-adds (or values) each thread must get before a call splits. */
#define LAYER_GRAIN ((int64_t)1 << 15)

/* Attention's queries per call of the scores and combine kernels (a register tile's rows). */
#define QUERY_BLOCK 4

/* ---- layer norm ---- */

typedef struct {
    const lowbit_kernel_table *t;
    const float *x, *gamma, *beta;
    int64_t d;
    float eps;
    float *y, *xhat, *rstd;
} norm_job;

static void norm_rows(void *p, int64_t begin, int64_t end) {
    const norm_job *j = p;
    for (int64_t r = begin; r < end; r++)
        j->t->layernorm(j->x + r * j->d, j->d, j->gamma, j->beta, j->eps, j->y + r * j->d,
                        j->xhat ? j->xhat + r * j->d : NULL, j->rstd + r);
}

lowbit_status lowbit_layernorm_forward(const lowbit_context *ctx, const float *x, int64_t n, int64_t d,
                                       const float *gamma, const float *beta, float eps, float *y, float *xhat,
                                       float *rstd) {
    if (!ctx || !x || !gamma || !beta || !y || !rstd) return LOWBIT_ERR_ARGUMENT;
    if (n <= 0 || d <= 0) return LOWBIT_ERR_SHAPE;
    if (!(eps > 0.0f)) return LOWBIT_ERR_ARGUMENT;
    norm_job j = {ctx->table, x, gamma, beta, d, eps, y, xhat, rstd};
    lowbit_parallel_for(lowbit_threads_for_work(ctx->threads, n * d, LAYER_GRAIN), n, norm_rows, &j);
    return LOWBIT_OK;
}

/* ---- SiLU ---- */

#define SILU_BLOCK 1024 /* values per unit of work */

typedef struct {
    const lowbit_kernel_table *t;
    const float *u;
    int64_t n;
    float *out;
    int backward;
} silu_job;

static void silu_blocks(void *p, int64_t begin, int64_t end) {
    const silu_job *j = p;
    for (int64_t b = begin; b < end; b++) {
        const int64_t at = b * SILU_BLOCK, len = j->n - at < SILU_BLOCK ? j->n - at : SILU_BLOCK;
        if (j->backward) j->t->silu_backward(j->u + at, len, j->out + at);
        else j->t->silu(j->u + at, len, j->out + at);
    }
}

static lowbit_status silu_run(const lowbit_context *ctx, const float *u, int64_t n, float *out, int backward) {
    if (!ctx || !u || !out) return LOWBIT_ERR_ARGUMENT;
    if (n <= 0) return LOWBIT_ERR_SHAPE;
    silu_job j = {ctx->table, u, n, out, backward};
    const int64_t blocks = (n + SILU_BLOCK - 1) / SILU_BLOCK;
    lowbit_parallel_for(lowbit_threads_for_work(ctx->threads, n, LAYER_GRAIN), blocks, silu_blocks, &j);
    return LOWBIT_OK;
}

lowbit_status lowbit_silu_forward(const lowbit_context *ctx, const float *u, int64_t n, float *a) {
    return silu_run(ctx, u, n, a, 0);
}

lowbit_status lowbit_silu_backward(const lowbit_context *ctx, const float *u, int64_t n, float *g) {
    return silu_run(ctx, u, n, g, 1);
}

/* ---- causal self-attention ---- */

size_t lowbit_attention_workspace_size(int64_t batch, int64_t steps, int64_t hidden, int64_t heads) {
    if (batch <= 0 || steps <= 0 || hidden <= 0 || heads <= 0) return 0;
    /* per (sequence, head): hd x steps transposed keys (or values), a steps x steps matrix (the
     * backward's score gradients; the forward uses a block of query rows), then QUERY_BLOCK
     * columns of steps. A thread reuses the slot of its range's first unit for every unit of
     * its range (each unit writes what it reads), so that slot stays in L1 and L2: a slot per
     * unit walked a batch's units through megabytes. The size stays one slot per unit, so
     * that any split of the units over threads fits. */
    return (size_t)(batch * heads) * (size_t)(hidden / heads * steps + steps * steps + QUERY_BLOCK * steps) * sizeof(float);
}

typedef struct {
    const lowbit_kernel_table *t;
    const float *qkv, *probs, *datt;
    const int64_t *lengths;
    int64_t steps, hidden, heads;
    float scale;
    int last_only; /* each sequence's last real step alone: att and datt [batch, hidden] */
    float *att, *probs_out, *dqkv, *workspace;
} attention_job;

/* The unit's keys (offset `part` = hidden) or values (2 * hidden) of its head, transposed:
 * kt[c * steps + j] for the visible rows j, by the ISA's transpose in strips of 16 rows (a
 * product by 1 is exact). A loop of strided stores took a tenth of a forward pass. */
static void transpose_head(const attention_job *j, int64_t b, int64_t h, int64_t part, int64_t len, float *kt) {
    static const float ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const int64_t T = j->steps, H = j->hidden, hd = H / j->heads;
    for (int64_t r = 0; r < len; r += 16)
        j->t->transpose_scaled(j->qkv + (b * T + r) * 3 * H + part + h * hd, 3 * H, (int)(len - r < 16 ? len - r : 16), hd,
                               ones, kt + r, T);
}

/* How many keys query rows i0..i0+nq-1 see: up to themselves, within the real steps. */
static void visible_counts(int64_t i0, int nq, int64_t len, int64_t *counts) {
    for (int r = 0; r < nq; r++) counts[r] = (i0 + r < len - 1 ? i0 + r : len - 1) + 1;
}

static void attention_units(void *p, int64_t begin, int64_t end) {
    const attention_job *j = p;
    const int64_t T = j->steps, H = j->hidden, hd = H / j->heads, ld = 3 * H;
    for (int64_t u = begin; u < end; u++) {
        const int64_t b = u / j->heads, h = u % j->heads, len = j->lengths[b];
        float *kt = j->workspace + begin * (hd * T + T * T + QUERY_BLOCK * T), *s = kt + hd * T;
        transpose_head(j, b, h, H, len, kt);
        /* queries in blocks of QUERY_BLOCK: their scores in rows of s (T apart), each row's
         * softmax over its own visible keys, then their weighted sums of the values */
        const int64_t stop = j->last_only ? len : T;
        for (int64_t i0 = j->last_only ? len - 1 : 0; i0 < stop; i0 += QUERY_BLOCK) {
            const int nq = (int)(stop - i0 < QUERY_BLOCK ? stop - i0 : QUERY_BLOCK);
            int64_t counts[QUERY_BLOCK];
            visible_counts(i0, nq, len, counts);
            const int64_t out = j->last_only ? b : b * T + i0;
            j->t->scores(j->qkv + (b * T + i0) * ld + h * hd, ld, nq, kt, T, hd, counts[nq - 1], s, T);
            for (int r = 0; r < nq; r++) j->t->softmax(s + r * T, counts[r], j->scale);
            j->t->combine(s, T, nq, counts, j->qkv + b * T * ld + 2 * H + h * hd, ld, hd, j->att + out * H + h * hd, H);
            for (int r = 0; j->probs_out && r < nq; r++) {
                float *row = j->probs_out + ((b * j->heads + h) * (j->last_only ? 1 : T) + (j->last_only ? 0 : i0 + r)) * T;
                memcpy(row, s + r * T, (size_t)counts[r] * sizeof *row);
                memset(row + counts[r], 0, (size_t)(T - counts[r]) * sizeof *row);
            }
        }
    }
}

/* Columns r..r+nr-1 of the T x T matrix m, rows r..T-1, as rows of `columns` (T apart), with
 * zeros above the diagonal (row i < r + c of column r + c): one pass down the rows, each
 * giving its nr neighbouring values. */
static void gather_columns(const float *restrict m, int64_t T, int64_t r, int nr, float *restrict columns) {
    for (int64_t i = r; i < T; i++)
        for (int c = 0; c < nr; c++) columns[c * T + i - r] = i < r + c ? 0.0f : m[i * T + r + c];
}

/* Per unit: the rows of dQ as weighted sums of keys, one row at a time; then the rows of dK and
 * dV, each as one weighted sum over the query rows that see it (a column of dS or of P). Every
 * output row is written once from accumulators in registers: adding each term into memory as it
 * came (an axpy per pair of rows) took as long as the rest of the backward. The terms of each sum
 * are added in the same order as those axpys added them, so the result is the same to the bit. */
static void attention_backward_units(void *p, int64_t begin, int64_t end) {
    const attention_job *j = p;
    const int64_t T = j->steps, H = j->hidden, hd = H / j->heads, ld = 3 * H;
    for (int64_t u = begin; u < end; u++) {
        const int64_t b = u / j->heads, h = u % j->heads, len = j->lengths[b];
        float *vt = j->workspace + begin * (hd * T + T * T + QUERY_BLOCK * T), *ds = vt + hd * T, *columns = ds + T * T;
        const float *probs = j->probs + (b * j->heads + h) * T * T;
        float *dq = j->dqkv + b * T * ld + h * hd, *dk = dq + H, *dv = dq + 2 * H;
        const float *q = j->qkv + b * T * ld + h * hd, *k = q + H;
        const float *d_o = j->datt + b * T * H + h * hd;
        transpose_head(j, b, h, 2 * H, len, vt);
        /* query rows in blocks: dP = dO V^T for the block, ds_i row by row, then the block's dQ
         * rows as weighted sums of the keys */
        for (int64_t i0 = 0; i0 < T; i0 += QUERY_BLOCK) {
            const int nq = (int)(T - i0 < QUERY_BLOCK ? T - i0 : QUERY_BLOCK);
            int64_t counts[QUERY_BLOCK];
            visible_counts(i0, nq, len, counts);
            j->t->scores(d_o + i0 * H, H, nq, vt, T, hd, counts[nq - 1], ds + i0 * T, T);
            for (int r = 0; r < nq; r++) {
                const int64_t count = counts[r];
                const float *pr = probs + (i0 + r) * T;
                float *dp = ds + (i0 + r) * T;
                float weighted = 0.0f;
                for (int64_t c = 0; c < count; c++) weighted = weighted + pr[c] * dp[c];
                for (int64_t c = 0; c < count; c++) dp[c] = pr[c] * (dp[c] - weighted) * j->scale;
            }
            j->t->combine(ds + i0 * T, T, nq, counts, k, ld, hd, dq + i0 * ld, ld);
        }
        /* rows r..r+nr-1 of dK and dV together: query rows r+c..T-1 see key r+c (every one of
         * them, as r + c < len), so row c of the block sums over query rows r..T-1 with zero
         * weights before r+c. Those add +0 to sums that start at +0: the same bits as a sum
         * from r+c, and the kernel's rows share each value row they read. */
        for (int64_t r = 0; r < len; r += QUERY_BLOCK) {
            const int nr = (int)(len - r < QUERY_BLOCK ? len - r : QUERY_BLOCK);
            const int64_t visible = T - r;
            int64_t counts[QUERY_BLOCK];
            for (int c = 0; c < nr; c++) counts[c] = visible;
            gather_columns(probs, T, r, nr, columns);
            j->t->combine(columns, T, nr, counts, d_o + r * H, H, hd, dv + r * ld, ld);
            gather_columns(ds, T, r, nr, columns);
            j->t->combine(columns, T, nr, counts, q + r * ld, ld, hd, dk + r * ld, ld);
        }
        for (int64_t r = len; r < T; r++) {
            memset(dk + r * ld, 0, (size_t)hd * sizeof(float));
            memset(dv + r * ld, 0, (size_t)hd * sizeof(float));
        }
    }
}

/* Per unit, the backward of the last real step's query alone (datt [batch, hidden], probs
 * [batch, heads, steps]): the steps of attention_backward_units for that row, the other query
 * rows having a zero gradient. Key and value row j's gradient is then one term, ds_j q and
 * p_j dO, which the combine kernel gives as fma(weight, value, +0) over a single weight, the
 * bits of the full pass's sums whose other terms are +0; every other row is +0. */
enum { ONE_TERM_ROWS = 64 };
static const int64_t one_term[ONE_TERM_ROWS] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

static void attention_backward_last_units(void *p, int64_t begin, int64_t end) {
    const attention_job *j = p;
    const int64_t T = j->steps, H = j->hidden, hd = H / j->heads, ld = 3 * H;
    for (int64_t u = begin; u < end; u++) {
        const int64_t b = u / j->heads, h = u % j->heads, len = j->lengths[b], i = len - 1;
        float *vt = j->workspace + begin * (hd * T + T * T + QUERY_BLOCK * T), *ds = vt + hd * T;
        const float *pr = j->probs + (b * j->heads + h) * T;
        float *dq = j->dqkv + b * T * ld + h * hd, *dk = dq + H, *dv = dq + 2 * H;
        const float *q = j->qkv + b * T * ld + h * hd, *k = q + H;
        const float *d_o = j->datt + b * H + h * hd;
        transpose_head(j, b, h, 2 * H, len, vt);
        j->t->scores(d_o, H, 1, vt, T, hd, len, ds, T);
        float weighted = 0.0f;
        for (int64_t c = 0; c < len; c++) weighted = weighted + pr[c] * ds[c];
        for (int64_t c = 0; c < len; c++) ds[c] = pr[c] * (ds[c] - weighted) * j->scale;
        for (int64_t r = 0; r < T; r++) memset(dq + r * ld, 0, (size_t)hd * sizeof(float));
        j->t->combine(ds, T, 1, &len, k, ld, hd, dq + i * ld, ld);
        for (int64_t r = 0; r < len; r += ONE_TERM_ROWS) {
            const int nr = (int)(len - r < ONE_TERM_ROWS ? len - r : ONE_TERM_ROWS);
            j->t->combine(pr + r, 1, nr, one_term, d_o, H, hd, dv + r * ld, ld);
            j->t->combine(ds + r, 1, nr, one_term, q + i * ld, ld, hd, dk + r * ld, ld);
        }
        for (int64_t r = len; r < T; r++) {
            memset(dk + r * ld, 0, (size_t)hd * sizeof(float));
            memset(dv + r * ld, 0, (size_t)hd * sizeof(float));
        }
    }
}

static lowbit_status attention_check(const lowbit_context *ctx, const float *qkv, int64_t batch, int64_t steps,
                                     int64_t hidden, int64_t heads, const int64_t *lengths, const void *workspace) {
    if (!ctx || !qkv || !lengths || !workspace) return LOWBIT_ERR_ARGUMENT;
    if (batch <= 0 || steps <= 0 || hidden <= 0 || heads <= 0 || hidden % heads) return LOWBIT_ERR_SHAPE;
    for (int64_t b = 0; b < batch; b++)
        if (lengths[b] < 1 || lengths[b] > steps) return LOWBIT_ERR_SHAPE;
    return LOWBIT_OK;
}

/* Both forwards: every query row (att [batch * steps, hidden], probs optional), or each
 * sequence's last real step alone (att [batch, hidden]). */
static lowbit_status attention_forward_run(const lowbit_context *ctx, const float *qkv, int64_t batch, int64_t steps,
                                           int64_t hidden, int64_t heads, const int64_t *lengths, float scale,
                                           int last_only, float *att, float *probs, void *workspace) {
    const lowbit_status st = attention_check(ctx, qkv, batch, steps, hidden, heads, lengths, workspace);
    if (st != LOWBIT_OK) return st;
    if (!att) return LOWBIT_ERR_ARGUMENT;
    attention_job j = {.t = ctx->table, .qkv = qkv, .lengths = lengths, .steps = steps, .hidden = hidden,
                       .heads = heads, .scale = scale, .last_only = last_only, .att = att, .probs_out = probs,
                       .workspace = workspace};
    const int64_t units = batch * heads, queries = last_only ? 1 : steps;
    lowbit_parallel_for(lowbit_threads_for_work(ctx->threads, units * queries * steps * (hidden / heads), LAYER_GRAIN * 4),
                        units, attention_units, &j);
    return LOWBIT_OK;
}

lowbit_status lowbit_attention_forward(const lowbit_context *ctx, const float *qkv, int64_t batch, int64_t steps,
                                       int64_t hidden, int64_t heads, const int64_t *lengths, float scale, float *att,
                                       float *probs, void *workspace) {
    return attention_forward_run(ctx, qkv, batch, steps, hidden, heads, lengths, scale, 0, att, probs, workspace);
}

lowbit_status lowbit_attention_forward_last(const lowbit_context *ctx, const float *qkv, int64_t batch, int64_t steps,
                                            int64_t hidden, int64_t heads, const int64_t *lengths, float scale, float *att,
                                            float *probs, void *workspace) {
    return attention_forward_run(ctx, qkv, batch, steps, hidden, heads, lengths, scale, 1, att, probs, workspace);
}

/* Both backwards: from every query row's gradient (datt [batch * steps, hidden], probs [batch,
 * heads, steps, steps]), or from each sequence's last real step's alone ([batch, hidden] and
 * [batch, heads, steps]). */
static lowbit_status attention_backward_run(const lowbit_context *ctx, const float *qkv, const float *probs,
                                            const float *datt, int64_t batch, int64_t steps, int64_t hidden,
                                            int64_t heads, const int64_t *lengths, float scale, int last_only,
                                            float *dqkv, void *workspace) {
    const lowbit_status st = attention_check(ctx, qkv, batch, steps, hidden, heads, lengths, workspace);
    if (st != LOWBIT_OK) return st;
    if (!probs || !datt || !dqkv) return LOWBIT_ERR_ARGUMENT;
    attention_job j = {.t = ctx->table, .qkv = qkv, .probs = probs, .datt = datt, .lengths = lengths, .steps = steps,
                       .hidden = hidden, .heads = heads, .scale = scale, .last_only = last_only, .dqkv = dqkv,
                       .workspace = workspace};
    /* multiply-adds per unit: about steps x steps x hd, or a few passes of steps x hd for one query */
    const int64_t units = batch * heads, queries = last_only ? 4 : steps;
    lowbit_parallel_for(lowbit_threads_for_work(ctx->threads, units * queries * steps * (hidden / heads), LAYER_GRAIN * 4),
                        units, last_only ? attention_backward_last_units : attention_backward_units, &j);
    return LOWBIT_OK;
}

lowbit_status lowbit_attention_backward(const lowbit_context *ctx, const float *qkv, const float *probs,
                                        const float *datt, int64_t batch, int64_t steps, int64_t hidden, int64_t heads,
                                        const int64_t *lengths, float scale, float *dqkv, void *workspace) {
    return attention_backward_run(ctx, qkv, probs, datt, batch, steps, hidden, heads, lengths, scale, 0, dqkv, workspace);
}

lowbit_status lowbit_attention_backward_last(const lowbit_context *ctx, const float *qkv, const float *probs,
                                             const float *datt, int64_t batch, int64_t steps, int64_t hidden,
                                             int64_t heads, const int64_t *lengths, float scale, float *dqkv,
                                             void *workspace) {
    return attention_backward_run(ctx, qkv, probs, datt, batch, steps, hidden, heads, lengths, scale, 1, dqkv, workspace);
}

/* ---- scaled transpose (the QT backward's weight gradient) ---- */

typedef struct {
    const lowbit_kernel_table *t;
    const float *x, *s;
    int64_t n, m;
    float *out;
} transpose_job;

static void transpose_strips(void *p, int64_t begin, int64_t end) {
    const transpose_job *j = p;
    for (int64_t b = begin; b < end; b++) {
        const int64_t r0 = b * 16, rows = j->n - r0 < 16 ? j->n - r0 : 16;
        j->t->transpose_scaled(j->x + r0 * j->m, j->m, (int)rows, j->m, j->s + r0, j->out + r0, j->n);
    }
}

lowbit_status lowbit_transpose_scaled(const lowbit_context *ctx, const float *x, int64_t n, int64_t m, const float *s,
                                      float *out) {
    if (!ctx || !x || !s || !out) return LOWBIT_ERR_ARGUMENT;
    if (n <= 0 || m <= 0) return LOWBIT_ERR_SHAPE;
    transpose_job j = {ctx->table, x, s, n, m, out};
    lowbit_parallel_for(lowbit_threads_for_work(ctx->threads, n * m, LAYER_GRAIN), (n + 15) / 16, transpose_strips, &j);
    return LOWBIT_OK;
}
