/* Scalar twins of the float kernels (softmax, SiLU, layer norm, attention scores and sums, the matmul epilogue): the
 * operations of the contracts in lowbit_kernels.def, one lane at a time. */
#include "lowbit_internal.h"

/* Only what the contracts fuse is fused (fmaf): a multiply and an add stay two roundings. */
#pragma clang fp contract(off)

void lowbit_softmax_scalar(float *restrict x, int64_t n, float scale) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        x[i] = x[i] * scale;
        m = x[i] > m ? x[i] : m;
    }
    for (int64_t i = 0; i < n; i++) x[i] = lowbit_expf(x[i] - m);
    const float total = lowbit_sum16(x, n);
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / total;
}

static inline float sigmoid(float u) { return 1.0f / (1.0f + lowbit_expf(-u)); }

void lowbit_silu_scalar(const float *restrict u, int64_t n, float *restrict a) {
    for (int64_t i = 0; i < n; i++) a[i] = u[i] * sigmoid(u[i]);
}

void lowbit_silu_backward_scalar(const float *restrict u, int64_t n, float *restrict g) {
    for (int64_t i = 0; i < n; i++) {
        const float s = sigmoid(u[i]);
        const float f = s * (1.0f + u[i] * (1.0f - s));
        g[i] = g[i] * f;
    }
}

void lowbit_layernorm_scalar(const float *restrict x, int64_t d, const float *restrict gamma, const float *restrict beta,
                             float eps, float *restrict y, float *restrict xhat, float *restrict rstd) {
    const float mean = lowbit_sum16(x, d) / (float)d;
    float lane[16] = {0};
    for (int64_t i = 0; i < d; i++) {
        const float t = x[i] - mean;
        lane[i % 16] = lane[i % 16] + t * t;
    }
    /* the padded tail adds +0.0 to the lanes past d % 16, as the vector code does */
    for (int64_t i = d; i % 16; i++) lane[i % 16] = lane[i % 16] + 0.0f;
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) lane[l] = lane[l] + lane[l + w];
    const float r = 1.0f / sqrtf(lane[0] / (float)d + eps);
    for (int64_t i = 0; i < d; i++) {
        const float h = (x[i] - mean) * r;
        if (xhat) xhat[i] = h;
        y[i] = fmaf(h, gamma[i], beta[i]);
    }
    *rstd = r;
}

void lowbit_scores_scalar(const float *restrict q, int64_t ldq, int nq, const float *restrict kt, int64_t ldk,
                          int64_t width, int64_t count, float *restrict out, int64_t ldo) {
    for (int r = 0; r < nq; r++)
        for (int64_t j = 0; j < count; j++) {
            float acc = 0.0f;
            for (int64_t c = 0; c < width; c++) acc = fmaf(q[r * ldq + c], kt[c * ldk + j], acc);
            out[r * ldo + j] = acc;
        }
}

void lowbit_quantize_stochastic_scalar(const float *restrict x, int64_t n, float inv, uint64_t state, int64_t first,
                                       int8_t *restrict q) {
    for (int64_t i = 0; i < n; i++) {
        const uint64_t bits = lowbit_splitmix(state + (uint64_t)(first + i + 1) * LOWBIT_SPLITMIX_INCREMENT);
        const float u = (float)(bits >> 40) * 0x1p-24f;
        float r = floorf(x[i] * inv + u);
        r = r < -127.0f ? -127.0f : (r > 127.0f ? 127.0f : r);
        q[i] = (int8_t)r;
    }
}

void lowbit_combine_scalar(const float *restrict p, int64_t ldp, int nq, const int64_t *restrict counts,
                           const float *restrict v, int64_t ldv, int64_t width, float *restrict out, int64_t ldo) {
    for (int r = 0; r < nq; r++)
        for (int64_t c = 0; c < width; c++) {
            float acc = 0.0f;
            for (int64_t j = 0; j < counts[r]; j++) acc = fmaf(p[r * ldp + j], v[j * ldv + c], acc);
            out[r * ldo + c] = acc;
        }
}

void lowbit_dequantize_scalar(const int32_t *restrict acc, int rows, int nr, uint32_t step, const uint32_t *restrict corr,
                              const float *restrict xs, const float *restrict ws, const float *restrict base,
                              float *restrict y, int64_t ldy) {
    for (int i = 0; i < nr; i++) {
        float *restrict row = y + i * ldy;
        for (int r = 0; r < rows; r++) {
            const float sum = (float)(int32_t)(step * (uint32_t)acc[i * LOWBIT_PANEL_ROWS + r] - corr[i]);
            row[r] = (base ? base[r] : row[r]) + sum * (xs[i] * ws[r]);
        }
    }
}

void lowbit_adamw_scalar(float *restrict w, float *restrict m, float *restrict v, const float *restrict g, int64_t n,
                         const lowbit_adamw_step *restrict h) {
    const float b1 = h->beta1, b2 = h->beta2, a1 = 1.0f - b1, a2 = 1.0f - b2;
    for (int64_t i = 0; i < n; i++) {
        const float mi = b1 * m[i] + a1 * g[i], vi = b2 * v[i] + (a2 * g[i]) * g[i];
        const float s = (mi / h->c1) / (sqrtf(vi / h->c2) + h->epsilon) + h->decay * w[i];
        m[i] = mi, v[i] = vi;
        w[i] = w[i] - h->learning_rate * s;
    }
}

void lowbit_transpose_scaled_scalar(const float *restrict x, int64_t ldx, int rows, int64_t cols, const float *restrict s,
                                    float *restrict out, int64_t ldo) {
    for (int64_t c = 0; c < cols; c++)
        for (int r = 0; r < rows; r++) out[c * ldo + r] = x[r * ldx + c] * s[r];
}
