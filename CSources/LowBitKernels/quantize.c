/* Quantization drivers: cut a tensor into scopes (whole tensor, rows, or groups along a
 * row), take each scope's statistic with one kernel and quantize it with another. */
#include "lowbit_internal.h"
#include <float.h>

typedef enum { KIND_SIGN, KIND_TERNARY, KIND_ABSMAX } quant_kind;

typedef struct {
    const lowbit_kernel_table *t;
    quant_kind kind;
    const float *x;
    int64_t cols, group, groups; /* groups per row; 0 for one scope over the whole tensor */
    int64_t len;                 /* elements in the whole-tensor scope */
    int qmax;
    float bound;
    int8_t *q;
    int64_t ldq;
    float *scales;
    int bad;
} quant_job;

/* 1/scale, kept finite: a tiny but non-zero scale must not turn 0 * inv into NaN. */
static float finite_inverse(float numerator, float denominator) {
    const float inv = numerator / denominator;
    return inv <= FLT_MAX ? inv : FLT_MAX;
}

static int quantize_scope(const quant_job *j, const float *x, int64_t len, int8_t *q, float *scale) {
    const lowbit_kernel_table *t = j->t;
    if (j->kind == KIND_ABSMAX) {
        float am;
        if (t->absmax(x, len, &am)) return 1;
        *scale = am / j->bound;
        if (am == 0.0f) memset(q, 0, (size_t)len);
        else t->quantize(x, len, finite_inverse(j->bound, am), j->qmax, q);
        return 0;
    }
    double sum, abssum;
    if (t->sums(x, len, &sum, &abssum)) return 1;
    *scale = (float)(abssum / (double)len);
    if (j->kind == KIND_SIGN) t->sign(x, len, (float)(sum / (double)len), q);
    else if (*scale == 0.0f) memset(q, 0, (size_t)len);
    else t->quantize(x, len, finite_inverse(1.0f, *scale), 1, q);
    return 0;
}

static void quantize_rows(void *arg, int64_t begin, int64_t end) {
    quant_job *j = arg;
    for (int64_t r = begin; r < end; r++) {
        for (int64_t g = 0; g < j->groups; g++) {
            const int64_t c0 = g * j->group, len = j->cols - c0 < j->group ? j->cols - c0 : j->group;
            if (quantize_scope(j, j->x + r * j->cols + c0, len, j->q + r * j->ldq + c0, j->scales + r * j->groups + g))
                __atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
        }
        if (j->ldq > j->cols) memset(j->q + r * j->ldq + j->cols, 0, (size_t)(j->ldq - j->cols));
    }
}

static lowbit_status run(const lowbit_context *ctx, quant_kind kind, const float *x, int64_t rows, int64_t cols,
                         int64_t group, int qmax, float bound, int8_t *q, int64_t ldq, float *scales) {
    if (!ctx || !x || !q || !scales) return LOWBIT_ERR_ARGUMENT;
    if (rows <= 0 || cols <= 0 || group < 0 || ldq < cols) return LOWBIT_ERR_SHAPE;
    if (kind == KIND_ABSMAX && (qmax < 1 || qmax > 127 || !(bound > 0.0f && bound <= FLT_MAX))) return LOWBIT_ERR_ARGUMENT;
    quant_job j = {.t = ctx->table, .kind = kind, .x = x, .cols = cols, .qmax = qmax, .bound = bound,
                   .q = q, .ldq = ldq, .scales = scales};
    if (group == 0) { /* one scope: the whole (contiguous) tensor */
        if (ldq != cols) return LOWBIT_ERR_SHAPE;
        return quantize_scope(&j, x, rows * cols, q, scales) ? LOWBIT_ERR_NONFINITE : LOWBIT_OK;
    }
    j.group = group < cols ? group : cols;
    j.groups = (cols + j.group - 1) / j.group;
    lowbit_parallel_for(ctx->threads, rows, quantize_rows, &j);
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
