/* The optimizer's update on the ISA's adamw kernel, threaded over blocks of parameters: it is
 * element by element, so every split gives the same bits. Memory-bound (seven float streams),
 * which is why it is not left to a scalar loop: a design-size model's update is 3 M parameters
 * and 88 MB of traffic per step. */
#include "lowbit_internal.h"

#define ADAMW_BLOCK 4096 /* parameters per unit of work */
#define ADAMW_GRAIN ((int64_t)1 << 16)

typedef struct {
    const lowbit_kernel_table *t;
    float *w, *m, *v;
    const float *g;
    int64_t n;
    const lowbit_adamw_step *h;
} adamw_job;

static void adamw_blocks(void *p, int64_t begin, int64_t end) {
    const adamw_job *j = p;
    for (int64_t b = begin; b < end; b++) {
        const int64_t at = b * ADAMW_BLOCK, len = j->n - at < ADAMW_BLOCK ? j->n - at : ADAMW_BLOCK;
        j->t->adamw(j->w + at, j->m + at, j->v + at, j->g + at, len, j->h);
    }
}

lowbit_status lowbit_adamw_update(const lowbit_context *ctx, float *w, float *m, float *v, const float *g, int64_t n,
                                  const lowbit_adamw_step *h) {
    if (!ctx || !w || !m || !v || !g || !h) return LOWBIT_ERR_ARGUMENT;
    if (n <= 0) return LOWBIT_ERR_SHAPE;
    adamw_job j = {ctx->table, w, m, v, g, n, h};
    const int64_t blocks = (n + ADAMW_BLOCK - 1) / ADAMW_BLOCK;
    lowbit_parallel_for(lowbit_threads_for_work(ctx->threads, n, ADAMW_GRAIN), blocks, adamw_blocks, &j);
    return LOWBIT_OK;
}
