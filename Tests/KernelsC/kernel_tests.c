/*
 * C-level kernel tests: every ISA this host can run against the scalar twins, kernel by
 * kernel and through the public drivers, on random data with awkward sizes. Built and run
 * by run.sh natively (and under sanitizers) and cross-compiled for aarch64 under qemu,
 * where it checks the NEON kernels. Prints "N passed, N failed" and exits non-zero on failure.
 *
 * Every kernel in lowbit_kernels.def must have a test_kernel_<name> here: the X-macro
 * table below does not compile otherwise.
 */
#include "lowbit_internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int passed, failed;
static const char *current_isa = "";

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) passed++;                                                    \
        else {                                                                 \
            failed++;                                                          \
            fprintf(stderr, "FAIL [%s] %s:%d: ", current_isa, __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* xorshift64*: deterministic, seedable from the command line */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void) {
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static int rand_int(int lo, int hi) { return lo + (int)(next_u64() % (uint64_t)(hi - lo + 1)); }
static float rand_float(void) { return (float)((double)(next_u64() >> 11) / 9007199254740992.0 * 2.0 - 1.0); }
static void fill_floats(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = rand_float() * scale;
}
static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

/* past 1024: the sums flush their float partials every 16 blocks of 64 */
static const int64_t sizes[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 256, 257, 1000, 1024, 1088, 2047, 5000};
#define NSIZES (int)(sizeof sizes / sizeof sizes[0])

static lowbit_context scalar_ctx;

/* ---- kernel by kernel against the scalar twin ---- */

static void test_kernel_absmax(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++) {
        const int64_t n = sizes[s];
        float *x = xmalloc(n * sizeof *x);
        fill_floats(x, n, 3.0f);
        float a, b;
        const int ba = t->absmax(x, n, &a), bb = lowbit_absmax_scalar(x, n, &b);
        CHECK(a == b && ba == 0 && bb == 0, "absmax n=%lld: %g vs %g", (long long)n, a, b);
        x[rand_int(0, (int)n - 1)] = NAN;
        CHECK(t->absmax(x, n, &a) == 1, "absmax misses NaN, n=%lld", (long long)n);
        x[rand_int(0, (int)n - 1)] = -INFINITY;
        CHECK(t->absmax(x, n, &a) == 1, "absmax misses -Inf, n=%lld", (long long)n);
        free(x);
    }
}

static void test_kernel_sums(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++) {
        const int64_t n = sizes[s];
        float *x = xmalloc(n * sizeof *x);
        fill_floats(x, n, 100.0f);
        double s1, a1, s2, a2;
        t->sums(x, n, &s1, &a1);
        lowbit_sums_scalar(x, n, &s2, &a2);
        CHECK(s1 == s2 && a1 == a2, "sums n=%lld not bit-identical: %.17g/%.17g vs %.17g/%.17g", (long long)n, s1, a1,
              s2, a2);
        a1 = -1;
        CHECK(t->sums(x, n, NULL, &a1) == 0 && a1 == a2, "sums without the sum, n=%lld: %.17g vs %.17g", (long long)n,
              a1, a2);
        x[n - 1] = INFINITY;
        CHECK(t->sums(x, n, &s1, &a1) == 1, "sums misses Inf");
        /* 1e38 four times in one lane's block sum passes FLT_MAX: past 48 elements, refused */
        for (int64_t i = 0; i < n; i++) x[i] = i % 2 ? 1e38f : -1e38f;
        CHECK(t->sums(x, n, &s1, &a1) == (n > 48), "sums of 1e38 x %lld: overflow %s", (long long)n,
              n > 48 ? "missed" : "reported");
        free(x);
    }
}

static void test_kernel_quantize(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++) {
        const int64_t n = sizes[s];
        float *x = xmalloc(n * sizeof *x);
        int8_t *q1 = xmalloc(n), *q2 = xmalloc(n);
        fill_floats(x, n, 2.0f);
        for (int64_t i = 0; i < n; i += 3) x[i] = (float)rand_int(-6, 6) * 0.25f; /* exact ties */
        const int qmaxes[] = {1, 7, 127};
        for (int qi = 0; qi < 3; qi++) {
            const float inv = (float)qmaxes[qi] * 0.9f;
            t->quantize(x, n, inv, qmaxes[qi], q1);
            lowbit_quantize_scalar(x, n, inv, qmaxes[qi], q2);
            CHECK(memcmp(q1, q2, n) == 0, "quantize n=%lld qmax=%d differs", (long long)n, qmaxes[qi]);
        }
        /* round half to even, and the clamp */
        const float ties[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 200.0f, -200.0f, 0.0f};
        const int8_t want[] = {0, 2, 2, 0, -2, 7, -7, 0};
        int8_t got[8];
        t->quantize(ties, 8, 1.0f, 7, got);
        CHECK(memcmp(got, want, 8) == 0, "quantize rounding: %d %d %d %d %d %d %d %d", got[0], got[1], got[2], got[3],
              got[4], got[5], got[6], got[7]);
        free(x), free(q1), free(q2);
    }
}

static void test_kernel_sign(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++) {
        const int64_t n = sizes[s];
        float *x = xmalloc(n * sizeof *x);
        int8_t *q1 = xmalloc(n), *q2 = xmalloc(n);
        fill_floats(x, n, 1.0f);
        x[0] = 0.125f; /* equal to the threshold: +1 */
        t->sign(x, n, 0.125f, q1);
        lowbit_sign_scalar(x, n, 0.125f, q2);
        CHECK(memcmp(q1, q2, n) == 0 && q1[0] == 1, "sign n=%lld differs", (long long)n);
        free(x), free(q1), free(q2);
    }
}

/* The fused kernels against the two scalar kernels they stand for: the codes of x, and the
 * statistic of y, finite and not (a NaN, an Inf or an overflowing block in y). */
enum { Y_FINITE, Y_NAN, Y_INF, Y_HUGE, Y_CASES };
static void fill_fused_case(float *x, float *y, int64_t n, int y_case) {
    fill_floats(x, n, 2.0f);
    for (int64_t i = 0; i < n; i += 3) x[i] = (float)rand_int(-6, 6) * 0.25f; /* exact ties */
    x[0] = 0.125f; /* the sign threshold used below: +1 */
    fill_floats(y, n, 100.0f);
    if (y_case == Y_NAN) y[rand_int(0, (int)n - 1)] = NAN;
    if (y_case == Y_INF) y[n - 1] = -INFINITY;
    if (y_case == Y_HUGE)
        for (int64_t i = 0; i < n; i++) y[i] = i % 2 ? 1e38f : -1e38f;
}

static void test_kernel_quantize_absmax(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++)
        for (int c = 0; c < Y_CASES; c++) {
            const int64_t n = sizes[s];
            /* y at any offset from a cache line: the kernels may stream it by whole lines */
            float *x = xmalloc(n * sizeof *x), *y_buf = xmalloc((n + 16) * sizeof *y_buf), *y = y_buf + rand_int(0, 15);
            int8_t *q1 = xmalloc(n), *q2 = xmalloc(n);
            fill_fused_case(x, y, n, c);
            const int qmax = c % 2 ? 7 : 127;
            float a = -1, b = -2;
            const int ra = t->quantize_absmax(x, n, (float)qmax * 0.9f, qmax, q1, y, &a);
            lowbit_quantize_scalar(x, n, (float)qmax * 0.9f, qmax, q2);
            const int rb = lowbit_absmax_scalar(y, n, &b);
            CHECK(memcmp(q1, q2, n) == 0, "quantize_absmax n=%lld case %d: codes differ", (long long)n, c);
            CHECK(ra == rb && ra == (c == Y_NAN || c == Y_INF) && (ra || a == b),
                  "quantize_absmax n=%lld case %d: %d %g vs %d %g", (long long)n, c, ra, a, rb, b);
            free(x), free(y_buf), free(q1), free(q2);
        }
}

static void test_kernel_quantize_sums(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++)
        for (int c = 0; c < Y_CASES; c++)
            for (int with_sum = 0; with_sum < 2; with_sum++) {
                const int64_t n = sizes[s];
                /* y at any offset from a cache line: the kernels may stream it by whole lines */
            float *x = xmalloc(n * sizeof *x), *y_buf = xmalloc((n + 16) * sizeof *y_buf), *y = y_buf + rand_int(0, 15);
                int8_t *q1 = xmalloc(n), *q2 = xmalloc(n);
                fill_fused_case(x, y, n, c);
                double s1 = -1, a1 = -1, s2 = -2, a2 = -2;
                const int ra = t->quantize_sums(x, n, 0.9f, 1, q1, y, with_sum ? &s1 : NULL, &a1);
                lowbit_quantize_scalar(x, n, 0.9f, 1, q2);
                const int rb = lowbit_sums_scalar(y, n, &s2, &a2);
                const int overflow = c == Y_NAN || c == Y_INF || (c == Y_HUGE && n > 48);
                CHECK(memcmp(q1, q2, n) == 0, "quantize_sums n=%lld case %d: codes differ", (long long)n, c);
                CHECK(ra == rb && ra == overflow && (ra || (a1 == a2 && (with_sum ? s1 == s2 : s1 == -1))),
                      "quantize_sums n=%lld case %d sum %d: %d %.17g/%.17g vs %d %.17g/%.17g", (long long)n, c,
                      with_sum, ra, s1, a1, rb, s2, a2);
                free(x), free(y_buf), free(q1), free(q2);
            }
}

static void test_kernel_sign_sums(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++)
        for (int c = 0; c < Y_CASES; c++) {
            const int64_t n = sizes[s];
            /* y at any offset from a cache line: the kernels may stream it by whole lines */
            float *x = xmalloc(n * sizeof *x), *y_buf = xmalloc((n + 16) * sizeof *y_buf), *y = y_buf + rand_int(0, 15);
            int8_t *q1 = xmalloc(n), *q2 = xmalloc(n);
            fill_fused_case(x, y, n, c);
            double s1 = -1, a1 = -1, s2 = -2, a2 = -2;
            const int ra = t->sign_sums(x, n, 0.125f, q1, y, &s1, &a1);
            lowbit_sign_scalar(x, n, 0.125f, q2);
            const int rb = lowbit_sums_scalar(y, n, &s2, &a2);
            CHECK(memcmp(q1, q2, n) == 0 && q1[0] == 1, "sign_sums n=%lld case %d: codes differ", (long long)n, c);
            CHECK(ra == rb && (ra || (s1 == s2 && a1 == a2)), "sign_sums n=%lld case %d: %d %.17g/%.17g vs %d %.17g/%.17g",
                  (long long)n, c, ra, s1, a1, rb, s2, a2);
            free(x), free(y_buf), free(q1), free(q2);
        }
}

/* dot against ref (named `name` in failures) on random panels and activations, every np and nr */
static void test_dot_against(lowbit_dot_b1_fn dot, lowbit_dot_b1_fn ref, int bits, const char *name) {
    const int chunk_k = 32 / bits, mask = (1 << bits) - 1;
    /* 8 and more: the unrolled groups of 8 chunks of the AVX-512 kernels, with and without a remainder */
    static const int64_t chunk_counts[] = {1, 3, 5, 7, 8, 9, 16, 23};
    for (size_t ci = 0; ci < sizeof chunk_counts / sizeof chunk_counts[0]; ci++) {
        const int64_t chunks = chunk_counts[ci];
        for (int np = 1; np <= LOWBIT_MAX_NP; np++)
            for (int nr = 1; nr <= LOWBIT_MAX_NR; nr++) {
                const int64_t ldx = chunks * chunk_k + rand_int(0, 5);
                const int64_t stride = chunks * 64 + 64 * rand_int(0, 2); /* panels apart, maybe with a gap */
                uint8_t *w = xmalloc(LOWBIT_MAX_NP * stride);
                int8_t *x = xmalloc(nr * ldx);
                for (int64_t i = 0; i < LOWBIT_MAX_NP * stride; i++) w[i] = (uint8_t)next_u64();
                /* the first chunk extreme: all-max codes (int8: codes 0 and 255, values -128 and 127,
                 * pairs of which would saturate a 16-bit pair sum taken carelessly) */
                for (int64_t i = 0; i < 64; i++)
                    w[i] = bits == 8 ? (uint8_t)((i & 2) ? 0 : 255) : (uint8_t)(bits == 2 ? 0xAA : 0xFF) & (uint8_t)(mask * 0x55 | 0xFF);
                /* activations are symmetric, [-127, 127]; the ends often, to find saturation */
                for (int64_t i = 0; i < nr * ldx; i++)
                    x[i] = (int8_t)(rand_int(0, 3) == 0 ? (rand_int(0, 1) ? 127 : -127) : rand_int(-127, 127));
                int32_t a[LOWBIT_MAX_NP * LOWBIT_MAX_NR * 16], b[LOWBIT_MAX_NP * LOWBIT_MAX_NR * 16];
                dot(chunks, w, stride, np, x, ldx, nr, a);
                ref(chunks, w, stride, np, x, ldx, nr, b);
                int same = 1;
                for (int q = 0; q < np; q++)
                    same &= memcmp(a + q * LOWBIT_MAX_NR * 16, b + q * LOWBIT_MAX_NR * 16, nr * 16 * sizeof(int32_t)) == 0;
                CHECK(same, "%s chunks=%lld np=%d nr=%d differs", name, (long long)chunks, np, nr);
                free(w), free(x);
            }
    }
}
/* dot_wide against its scalar twin, and the twin against dot_bB's on the same rows (the
 * contract: what dot_bB gives for one panel). */
static void test_kernel_dot_wide(const lowbit_kernel_table *t) {
    static const int64_t chunk_counts[] = {1, 2, 3, 7, 8, 9, 17};
    for (int bits = 1; bits <= 4; bits *= 2)
        for (size_t ci = 0; ci < sizeof chunk_counts / sizeof chunk_counts[0]; ci++)
            for (int nr = 1; nr <= LOWBIT_WIDE_NR; nr++) {
                const int64_t chunks = chunk_counts[ci], cols = chunks * (32 / bits), ldx = cols + rand_int(0, 9);
                uint8_t *w = xmalloc((size_t)chunks * 64);
                int8_t *x = xmalloc((size_t)(nr * ldx)), *xi = xmalloc((size_t)(nr * cols));
                for (int64_t i = 0; i < chunks * 64; i++) w[i] = i < 64 ? 0xFF : (uint8_t)next_u64();
                for (int64_t i = 0; i < nr * ldx; i++)
                    x[i] = (int8_t)(rand_int(0, 3) == 0 ? (rand_int(0, 1) ? 127 : -127) : rand_int(-127, 127));
                for (int j = 0; j < nr; j++)
                    for (int64_t c = 0; c < cols; c++) xi[((c / 4) * nr + j) * 4 + c % 4] = x[j * ldx + c];
                int32_t a[LOWBIT_WIDE_NR * 16], b[LOWBIT_WIDE_NR * 16], rows[LOWBIT_MAX_NR * 16];
                t->dot_wide(bits, chunks, w, xi, nr, a);
                lowbit_dot_wide_scalar(bits, chunks, w, xi, nr, b);
                CHECK(memcmp(a, b, (size_t)nr * 16 * sizeof(int32_t)) == 0, "dot_wide bits=%d chunks=%lld nr=%d differs",
                      bits, (long long)chunks, nr);
                const lowbit_dot_b1_fn ref = bits == 1 ? lowbit_dot_b1_scalar : bits == 2 ? lowbit_dot_b2_scalar : lowbit_dot_b4_scalar;
                for (int j0 = 0; j0 < nr; j0 += LOWBIT_MAX_NR) {
                    const int part = nr - j0 < LOWBIT_MAX_NR ? nr - j0 : LOWBIT_MAX_NR;
                    ref(chunks, w, 0, 1, x + j0 * ldx, ldx, part, rows);
                    CHECK(memcmp(b + j0 * 16, rows, (size_t)part * 16 * sizeof(int32_t)) == 0,
                          "dot_wide_scalar bits=%d chunks=%lld nr=%d differs from dot_b%d", bits, (long long)chunks, nr, bits);
                }
                free(w), free(x), free(xi);
            }
}
static void test_dot(const lowbit_kernel_table *t, int bits) {
    static const char *names[] = {[1] = "dot_b1", [2] = "dot_b2", [4] = "dot_b4", [8] = "dot_b8"};
    test_dot_against(lowbit_dot_for_bits(t, bits), lowbit_dot_for_bits(&(lowbit_kernel_table){
        .dot_b1 = lowbit_dot_b1_scalar, .dot_b2 = lowbit_dot_b2_scalar, .dot_b4 = lowbit_dot_b4_scalar,
        .dot_b8 = lowbit_dot_b8_scalar}, bits), bits, names[bits]);
}

/* The twin against the contract, dot_b8 less 128 * sum(x) per token (exact in int32 here),
 * then the table's dot_s8 against the twin. */
static void lowbit_dot_b8_less_zero_point(int64_t chunks, const uint8_t *restrict w, int64_t panel_stride, int np,
                                          const int8_t *restrict x, int64_t ldx, int nr, int32_t *restrict acc) {
    lowbit_dot_b8_scalar(chunks, w, panel_stride, np, x, ldx, nr, acc);
    for (int j = 0; j < nr; j++) {
        int32_t sum = 0;
        for (int64_t c = 0; c < chunks * 4; c++) sum += x[j * ldx + c];
        for (int q = 0; q < np; q++)
            for (int r = 0; r < 16; r++) acc[(q * LOWBIT_MAX_NR + j) * 16 + r] -= 128 * sum;
    }
}
static void test_kernel_dot_s8(const lowbit_kernel_table *t) {
    test_dot_against(lowbit_dot_s8_scalar, lowbit_dot_b8_less_zero_point, 8, "dot_s8_scalar vs dot_b8 - 128 sum(x)");
    test_dot_against(t->dot_s8, lowbit_dot_s8_scalar, 8, "dot_s8");
}
static void test_kernel_dot_b1(const lowbit_kernel_table *t) { test_dot(t, 1); }
static void test_kernel_dot_b2(const lowbit_kernel_table *t) { test_dot(t, 2); }
static void test_kernel_dot_b4(const lowbit_kernel_table *t) { test_dot(t, 4); }
static void test_kernel_dot_b8(const lowbit_kernel_table *t) { test_dot(t, 8); }


/* ---- the float kernels: bit for bit the scalar twin's ---- */

static int same_floats(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

static void test_kernel_softmax(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++) {
        const int64_t n = sizes[s];
        float *a = xmalloc(n * sizeof *a), *b = xmalloc(n * sizeof *b);
        fill_floats(a, n, 30.0f);
        a[rand_int(0, (int)n - 1)] = 200.0f; /* one score far above: the others underflow towards 0 */
        memcpy(b, a, n * sizeof *a);
        t->softmax(a, n, 0.125f);
        lowbit_softmax_scalar(b, n, 0.125f);
        double total = 0;
        for (int64_t i = 0; i < n; i++) total += a[i];
        CHECK(same_floats(a, b, n), "softmax n=%lld differs", (long long)n);
        CHECK(fabs(total - 1) < 1e-5, "softmax n=%lld sums to %.9g", (long long)n, total);
        free(a), free(b);
    }
}

static void test_kernel_silu(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++) {
        const int64_t n = sizes[s];
        float *u = xmalloc(n * sizeof *u), *a = xmalloc(n * sizeof *a), *b = xmalloc(n * sizeof *b);
        fill_floats(u, n, 12.0f);
        u[0] = 0.0f, u[n - 1] = n > 1 ? -100.0f : u[n - 1];
        t->silu(u, n, a);
        lowbit_silu_scalar(u, n, b);
        CHECK(same_floats(a, b, n), "silu n=%lld differs", (long long)n);
        free(u), free(a), free(b);
    }
}

static void test_kernel_silu_backward(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++) {
        const int64_t n = sizes[s];
        float *u = xmalloc(n * sizeof *u), *a = xmalloc(n * sizeof *a), *b = xmalloc(n * sizeof *b);
        fill_floats(u, n, 12.0f);
        fill_floats(a, n, 2.0f);
        memcpy(b, a, n * sizeof *a);
        t->silu_backward(u, n, a);
        lowbit_silu_backward_scalar(u, n, b);
        CHECK(same_floats(a, b, n), "silu_backward n=%lld differs", (long long)n);
        free(u), free(a), free(b);
    }
}

static void test_kernel_layernorm(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++) {
        const int64_t d = sizes[s];
        float *x = xmalloc(d * sizeof *x), *g = xmalloc(d * sizeof *g), *be = xmalloc(d * sizeof *be);
        float *y1 = xmalloc(d * sizeof *y1), *y2 = xmalloc(d * sizeof *y2), *h1 = xmalloc(d * sizeof *h1),
              *h2 = xmalloc(d * sizeof *h2);
        fill_floats(x, d, 5.0f), fill_floats(g, d, 1.5f), fill_floats(be, d, 0.5f);
        for (int64_t i = 0; i < d; i++) x[i] += 3.0f; /* a mean away from 0 */
        float r1 = -1, r2 = -2;
        t->layernorm(x, d, g, be, 1e-5f, y1, h1, &r1);
        lowbit_layernorm_scalar(x, d, g, be, 1e-5f, y2, h2, &r2);
        CHECK(same_floats(y1, y2, d) && same_floats(h1, h2, d) && r1 == r2, "layernorm d=%lld differs", (long long)d);
        t->layernorm(x, d, g, be, 1e-5f, y1, NULL, &r1);
        CHECK(same_floats(y1, y2, d) && r1 == r2, "layernorm d=%lld without xhat differs", (long long)d);
        free(x), free(g), free(be), free(y1), free(y2), free(h1), free(h2);
    }
}

static void test_kernel_scores(const lowbit_kernel_table *t) {
    static const int64_t widths[] = {1, 7, 16, 33, 64};
    static const int queries[] = {1, 2, 4, 5, 9};
    for (int s = 0; s < NSIZES && sizes[s] <= 257; s++)
        for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
            const int nq = queries[(s + w) % 5];
            const int64_t count = sizes[s], width = widths[w], ldk = count + rand_int(0, 5);
            const int64_t ldq = width + rand_int(0, 3), ldo = count + rand_int(0, 3);
            float *q = xmalloc(nq * ldq * sizeof *q), *kt = xmalloc(width * ldk * sizeof *kt);
            float *a = xmalloc(nq * ldo * sizeof *a), *b = xmalloc(nq * ldo * sizeof *b);
            fill_floats(q, nq * ldq, 2.0f), fill_floats(kt, width * ldk, 2.0f);
            fill_floats(a, nq * ldo, 1.0f);
            memcpy(b, a, nq * ldo * sizeof *a);
            t->scores(q, ldq, nq, kt, ldk, width, count, a, ldo);
            lowbit_scores_scalar(q, ldq, nq, kt, ldk, width, count, b, ldo);
            int bad = 0; /* the contract's formula, in the test's own words */
            for (int r = 0; r < nq; r++)
                for (int64_t j = 0; j < count; j++) {
                    float acc = 0.0f;
                    for (int64_t c = 0; c < width; c++) acc = fmaf(q[r * ldq + c], kt[c * ldk + j], acc);
                    bad += memcmp(&acc, &b[r * ldo + j], 4) != 0;
                }
            CHECK(same_floats(a, b, nq * ldo) && bad == 0, "scores nq=%d count=%lld width=%lld differs", nq, (long long)count,
                  (long long)width);
            free(q), free(kt), free(a), free(b);
        }
}

static void test_kernel_dequantize(const lowbit_kernel_table *t) {
    /* every row count of a panel, 1..8 tokens, steps 1 and 2, with and without a base; sums near
     * the int32 limits so that the wrapping is exercised */
    for (int rows = 1; rows <= LOWBIT_PANEL_ROWS; rows++)
        for (int nr = 1; nr <= LOWBIT_MAX_NR; nr++)
            for (int variant = 0; variant < 4; variant++) {
                const uint32_t step = variant & 1 ? 2 : 1;
                const int with_base = variant & 2;
                const int64_t ldy = rows + rand_int(0, 9);
                int32_t acc[LOWBIT_MAX_NR * LOWBIT_PANEL_ROWS];
                uint32_t corr[LOWBIT_MAX_NR];
                float xs[LOWBIT_MAX_NR], ws[LOWBIT_PANEL_ROWS], base[LOWBIT_PANEL_ROWS];
                for (int i = 0; i < LOWBIT_MAX_NR * LOWBIT_PANEL_ROWS; i++)
                    acc[i] = rand_int(0, 9) == 0 ? INT32_MAX - rand_int(0, 5) : rand_int(-5000000, 5000000);
                for (int i = 0; i < LOWBIT_MAX_NR; i++) corr[i] = (uint32_t)rand_int(-100000, 100000);
                fill_floats(xs, LOWBIT_MAX_NR, 0.01f), fill_floats(ws, LOWBIT_PANEL_ROWS, 0.02f);
                fill_floats(base, LOWBIT_PANEL_ROWS, 3.0f);
                float *a = xmalloc(nr * ldy * sizeof *a), *b = xmalloc(nr * ldy * sizeof *b);
                fill_floats(a, nr * ldy, 2.0f);
                memcpy(b, a, nr * ldy * sizeof *a);
                t->dequantize(acc, rows, nr, step, corr, xs, ws, with_base ? base : NULL, a, ldy);
                lowbit_dequantize_scalar(acc, rows, nr, step, corr, xs, ws, with_base ? base : NULL, b, ldy);
                /* the whole buffer: the entries past `rows` in each row stay as they were */
                CHECK(same_floats(a, b, nr * ldy), "dequantize rows=%d nr=%d step=%u base=%d differs", rows, nr,
                      (unsigned)step, with_base != 0);
                int bad = 0; /* the contract's formula, in the test's own words */
                for (int i = 0; i < nr; i++)
                    for (int r = 0; r < rows; r++) {
                        const uint32_t u = step * (uint32_t)acc[i * LOWBIT_PANEL_ROWS + r] - corr[i];
                        const float sum = (float)(int32_t)u, scale = xs[i] * ws[r];
                        const float prod = sum * scale;
                        if (with_base) bad |= b[i * ldy + r] != base[r] + prod;
                    }
                CHECK(!bad, "dequantize_scalar rows=%d nr=%d is not the contract", rows, nr);
                free(a), free(b);
            }
}

static void test_kernel_combine(const lowbit_kernel_table *t) {
    static const int64_t counts[] = {1, 2, 7, 60, 61};
    static const int queries[] = {1, 3, 4, 6};
    for (int s = 0; s < NSIZES && sizes[s] <= 257; s++)
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            const int nq = queries[(s + ci) % 4];
            const int64_t width = sizes[s], most = counts[ci], ldv = width + rand_int(0, 5), ldp = most + rand_int(0, 3);
            const int64_t ldo = width + rand_int(0, 3);
            int64_t cnt[8];
            for (int r = 0; r < nq; r++) cnt[r] = r == nq - 1 ? most : rand_int(1, (int)most); /* causal rows, or any */
            float *p = xmalloc(nq * ldp * sizeof *p), *v = xmalloc(most * ldv * sizeof *v);
            float *a = xmalloc(nq * ldo * sizeof *a), *b = xmalloc(nq * ldo * sizeof *b), *c = xmalloc(nq * ldo * sizeof *c);
            fill_floats(p, nq * ldp, 1.0f), fill_floats(v, most * ldv, 2.0f);
            for (int r = 0; r < nq; r++) /* weights past a row's count must not be read: NaN there */
                for (int64_t j = cnt[r]; j < ldp; j++) p[r * ldp + j] = NAN;
            fill_floats(a, nq * ldo, 1.0f);
            memcpy(b, a, nq * ldo * sizeof *a), memcpy(c, a, nq * ldo * sizeof *a);
            t->combine(p, ldp, nq, cnt, v, ldv, width, a, ldo);
            lowbit_combine_scalar(p, ldp, nq, cnt, v, ldv, width, b, ldo);
            for (int r = 0; r < nq; r++) {
                for (int64_t x = 0; x < width; x++) c[r * ldo + x] = 0.0f;
                for (int64_t j = 0; j < cnt[r]; j++)
                    for (int64_t x = 0; x < width; x++) c[r * ldo + x] = fmaf(p[r * ldp + j], v[j * ldv + x], c[r * ldo + x]);
            }
            CHECK(same_floats(a, b, nq * ldo) && same_floats(a, c, nq * ldo), "combine nq=%d width=%lld count=%lld differs", nq,
                  (long long)width, (long long)most);
            free(p), free(v), free(a), free(b), free(c);
        }
}

static void test_kernel_adamw(const lowbit_kernel_table *t) {
    /* the first step (c1 = 0.1, tiny c2) and a late one, with and without decay; gradients
     * that are zero, tiny or large next to the moments */
    const lowbit_adamw_step steps[] = {{0.9f, 0.999f, 1e-3f, 1e-8f, 0.01f, 1.0f - 0.9f, 1.0f - 0.999f},
                                       {0.8f, 0.99f, 3e-4f, 1e-6f, 0.0f, 0.9997f, 0.63f}};
    for (int s = 0; s < NSIZES; s++)
        for (int hi = 0; hi < 2; hi++) {
            const int64_t n = sizes[s];
            const lowbit_adamw_step *h = &steps[hi];
            float *g = xmalloc(n * sizeof *g), *w[3], *m[3], *v[3];
            for (int c = 0; c < 3; c++) w[c] = xmalloc(n * sizeof **w), m[c] = xmalloc(n * sizeof **m), v[c] = xmalloc(n * sizeof **v);
            fill_floats(g, n, 1.0f), fill_floats(w[0], n, 0.5f), fill_floats(m[0], n, 0.1f), fill_floats(v[0], n, 0.01f);
            for (int64_t i = 0; i < n; i++) {
                v[0][i] = fabsf(v[0][i]);
                if (i % 5 == 1) g[i] = 0.0f;
                if (i % 7 == 2) g[i] *= 1e-20f;
                if (i % 11 == 3) g[i] *= 1e4f;
            }
            for (int c = 1; c < 3; c++) {
                memcpy(w[c], w[0], n * sizeof **w), memcpy(m[c], m[0], n * sizeof **m), memcpy(v[c], v[0], n * sizeof **v);
            }
            t->adamw(w[1], m[1], v[1], g, n, h);
            lowbit_adamw_scalar(w[2], m[2], v[2], g, n, h);
            CHECK(same_floats(w[1], w[2], n) && same_floats(m[1], m[2], n) && same_floats(v[1], v[2], n),
                  "adamw n=%lld step %d differs from the scalar twin", (long long)n, hi);
            int bad = 0; /* the contract's formula, in the test's own words */
            for (int64_t i = 0; i < n; i++) {
                volatile float b1m = h->beta1 * m[0][i], a1g = (1.0f - h->beta1) * g[i];
                const float mi = b1m + a1g;
                volatile float b2v = h->beta2 * v[0][i], a2g = (1.0f - h->beta2) * g[i], a2gg = a2g * g[i];
                const float vi = b2v + a2gg;
                volatile float num = mi / h->c1, den = sqrtf(vi / h->c2) + h->epsilon, dw = h->decay * w[0][i];
                volatile float step = num / den + dw, delta = h->learning_rate * step;
                const float wi = w[0][i] - delta;
                bad += memcmp(&mi, &m[2][i], 4) != 0 || memcmp(&vi, &v[2][i], 4) != 0 || memcmp(&wi, &w[2][i], 4) != 0;
            }
            CHECK(bad == 0, "adamw n=%lld step %d: %d values differ from the contract", (long long)n, hi, bad);
            free(g);
            for (int c = 0; c < 3; c++) free(w[c]), free(m[c]), free(v[c]);
        }
}

static void test_kernel_transpose_scaled(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES && sizes[s] <= 1088; s++)
        for (int ri = 0; ri < 6; ri++) {
            const int rows = (const int[]){1, 4, 8, 12, 15, 16}[ri];
            const int64_t cols = sizes[s], ldx = cols + rand_int(0, 3), ldo = rows + rand_int(0, 20);
            float *x = xmalloc(rows * ldx * sizeof *x), *sc = xmalloc(rows * sizeof *sc);
            float *a = xmalloc(cols * ldo * sizeof *a), *b = xmalloc(cols * ldo * sizeof *b);
            fill_floats(x, rows * ldx, 3.0f), fill_floats(sc, rows, 0.5f);
            fill_floats(a, cols * ldo, 1.0f);
            memcpy(b, a, cols * ldo * sizeof *a);
            t->transpose_scaled(x, ldx, rows, cols, sc, a, ldo);
            lowbit_transpose_scaled_scalar(x, ldx, rows, cols, sc, b, ldo);
            int bad = 0; /* the formula, and the entries past `rows` of each row of out untouched */
            for (int64_t c = 0; c < cols; c++)
                for (int r = 0; r < rows; r++) {
                    const float want = x[r * ldx + c] * sc[r];
                    bad += memcmp(&want, &b[c * ldo + r], 4) != 0;
                }
            CHECK(same_floats(a, b, cols * ldo) && bad == 0, "transpose_scaled rows=%d cols=%lld differs (%d from the formula)",
                  rows, (long long)cols, bad);
            free(x), free(sc), free(a), free(b);
        }
}

static void test_kernel_quantize_stochastic(const lowbit_kernel_table *t) {
    for (int s = 0; s < NSIZES; s++) {
        const int64_t n = sizes[s], first = rand_int(0, 1000);
        float *x = xmalloc(n * sizeof *x);
        int8_t *a = xmalloc(n), *b = xmalloc(n);
        fill_floats(x, n, 1.0f);
        x[0] = 1.0f, x[n - 1] = -1.0f; /* the ends of the range */
        const uint64_t state = next_u64();
        t->quantize_stochastic(x, n, 127.0f, state, first, a);
        lowbit_quantize_stochastic_scalar(x, n, 127.0f, state, first, b);
        CHECK(memcmp(a, b, n) == 0, "quantize_stochastic n=%lld differs", (long long)n);
        /* past the range: both clamps */
        t->quantize_stochastic(x, n, 300.0f, state, first, a);
        lowbit_quantize_stochastic_scalar(x, n, 300.0f, state, first, b);
        CHECK(memcmp(a, b, n) == 0 && (n == 1 || a[0] == 127) && a[n - 1] == -127, "quantize_stochastic n=%lld past the range differs",
              (long long)n);
        /* the first draw of SplitMix64 seeded 0 is 0xE220A8397B1DCDAF: u = 0xE220A8 / 2^24 */
        float half = 0.5f;
        int8_t q;
        t->quantize_stochastic(&half, 1, 1.0f, 0, 0, &q);
        CHECK(q == (0.5f + (float)0xE220A8 * 0x1p-24f >= 1.0f ? 1 : 0), "quantize_stochastic's first draw");
        free(x), free(a), free(b);
    }
}

/* lowbit_expf against the C library's, and its clamps */
static void test_expf(void) {
    double worst = 0;
    for (int i = 0; i <= 200000; i++) {
        const float x = -87.0f + 175.0f * (float)i / 200000.0f;
        const double want = exp((double)x), got = lowbit_expf(x);
        const double err = fabs(got - want) / want;
        worst = err > worst ? err : worst;
    }
    CHECK(worst < 2.5e-7, "lowbit_expf relative error %.3g (2 ulp is 2.4e-7)", worst);
    CHECK(lowbit_expf(0.0f) == 1.0f && lowbit_expf(-1000.0f) == lowbit_expf(-87.0f) && lowbit_expf(1000.0f) == lowbit_expf(88.0f),
          "lowbit_expf at 0 and past its clamps");
}

typedef void (*kernel_test)(const lowbit_kernel_table *);
static const kernel_test kernel_tests[] = {
#define LOWBIT_KERNEL(name, ret, params) test_kernel_##name,
#include "lowbit_kernels.def"
#undef LOWBIT_KERNEL
};

/* ---- through the public drivers ---- */

static void test_quantizers(const lowbit_context *ctx) {
    /* scopes of equal length (fused with the next one) and not (a shorter last group) */
    const int64_t shapes[][3] = {{1, 1, 0}, {3, 17, 17}, {5, 63, 0}, {4, 65, 32}, {17, 257, 64}, {2, 100, 7},
                                 {6, 200, 200}, {5, 130, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], cols = shapes[s][1], group = shapes[s][2];
        const int64_t nscales = group == 0 ? 1 : rows * ((cols + group - 1) / group);
        float *w = xmalloc(rows * cols * sizeof *w), *s1 = xmalloc(nscales * 4), *s2 = xmalloc(nscales * 4);
        int8_t *q1 = xmalloc(rows * cols), *q2 = xmalloc(rows * cols);
        fill_floats(w, rows * cols, 0.7f);
        if (rows > 2) memset(w + cols, 0, cols * sizeof *w); /* an all-zero row between two others */
        for (int kind = 0; kind < 4; kind++) {
            lowbit_status a, b;
            switch (kind) {
            case 0: a = lowbit_quantize_sign(ctx, w, rows, cols, group, q1, s1);
                    b = lowbit_quantize_sign(&scalar_ctx, w, rows, cols, group, q2, s2); break;
            case 1: a = lowbit_quantize_ternary(ctx, w, rows, cols, group, q1, s1);
                    b = lowbit_quantize_ternary(&scalar_ctx, w, rows, cols, group, q2, s2); break;
            case 2: a = lowbit_quantize_absmax(ctx, w, rows, cols, group, 7, 7.5f, q1, s1);
                    b = lowbit_quantize_absmax(&scalar_ctx, w, rows, cols, group, 7, 7.5f, q2, s2); break;
            default: a = lowbit_quantize_absmax(ctx, w, rows, cols, group, 127, 127.0f, q1, s1);
                     b = lowbit_quantize_absmax(&scalar_ctx, w, rows, cols, group, 127, 127.0f, q2, s2); break;
            }
            CHECK(a == LOWBIT_OK && b == LOWBIT_OK, "quantizer %d status %d/%d", kind, a, b);
            CHECK(memcmp(q1, q2, rows * cols) == 0 && memcmp(s1, s2, nscales * 4) == 0,
                  "quantizer %d on %lldx%lld group %lld differs from scalar", kind, (long long)rows, (long long)cols,
                  (long long)group);
        }
        /* the defining formula, from first principles, for ternary per row */
        if (group == cols) {
            lowbit_quantize_ternary(ctx, w, rows, cols, group, q1, s1);
            for (int64_t r = 0; r < rows; r++) {
                double m = 0;
                for (int64_t c = 0; c < cols; c++) m += fabs(w[r * cols + c]);
                m /= (double)cols;
                CHECK(fabs(s1[r] - m) <= 1e-6 * m, "ternary scale %g vs %g", s1[r], m);
                for (int64_t c = 0; c < cols; c++) {
                    const double v = w[r * cols + c] / m;
                    const int want = v > 0.5 + 1e-5 ? 1 : (v < -0.5 - 1e-5 ? -1 : (fabs(v) < 0.5 - 1e-5 ? 0 : q1[r * cols + c]));
                    CHECK(q1[r * cols + c] == want, "ternary value %d, want %d (w/scale = %g)", q1[r * cols + c], want, v);
                }
            }
        }
        /* a NaN in the first, a middle or the last scope (the last is read only by a fused pass) */
        const int64_t at[] = {0, rows * cols / 2, rows * cols - 1};
        for (int a = 0; a < 3; a++) {
            const float keep = w[at[a]];
            w[at[a]] = NAN;
            CHECK(lowbit_quantize_absmax(ctx, w, rows, cols, group, 127, 127.0f, q1, s1) == LOWBIT_ERR_NONFINITE,
                  "absmax accepts NaN at %lld", (long long)at[a]);
            CHECK(lowbit_quantize_ternary(ctx, w, rows, cols, group, q1, s1) == LOWBIT_ERR_NONFINITE,
                  "ternary accepts NaN at %lld", (long long)at[a]);
            CHECK(lowbit_quantize_sign(ctx, w, rows, cols, group, q1, s1) == LOWBIT_ERR_NONFINITE,
                  "sign accepts NaN at %lld", (long long)at[a]);
            w[at[a]] = keep;
        }
        free(w), free(s1), free(s2), free(q1), free(q2);
    }
    float z[4] = {0, 0, 0, 0}, sc;
    int8_t q[4];
    CHECK(lowbit_quantize_absmax(ctx, z, 1, 4, 4, 127, 127.0f, q, &sc) == LOWBIT_OK && sc == 0 && q[0] == 0 && q[3] == 0,
          "zero row");
    CHECK(lowbit_quantize_absmax(ctx, z, 0, 4, 4, 127, 127.0f, q, &sc) == LOWBIT_ERR_SHAPE, "zero rows accepted");
    CHECK(lowbit_quantize_absmax(ctx, z, 1, 4, 4, 0, 127.0f, q, &sc) == LOWBIT_ERR_ARGUMENT, "qmax 0 accepted");
}

static void naive_matmul(const int8_t *wv, int64_t m, int64_t k, const int8_t *x, int64_t n, int64_t ldx, int32_t *y) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < m; r++) {
            int32_t s = 0;
            for (int64_t c = 0; c < k; c++) s += wv[r * k + c] * x[i * ldx + c];
            y[i * m + r] = s;
        }
}

static void random_values(lowbit_format format, int8_t *v, int64_t n) {
    const lowbit_format_traits *f = lowbit_format_get(format);
    for (int64_t i = 0; i < n; i++) {
        int x = rand_int(f->qmin, f->qmax);
        if (format == LOWBIT_FORMAT_BINARY) x = x >= 0 ? 1 : -1;
        v[i] = (int8_t)x;
    }
}

static void test_pack_and_matmul(const lowbit_context *ctx) {
    const int64_t ms[] = {1, 3, 16, 17, 65}, ks[] = {1, 3, 17, 32, 63, 65, 257}, ns[] = {1, 2, 8, 9, 17};
    for (int fmt = 0; fmt < LOWBIT_FORMAT_COUNT; fmt++) {
        const lowbit_format_traits *f = lowbit_format_get(fmt);
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 7; b++) {
                const int64_t m = ms[a], k = ks[b], n = ns[(a + b) % 5], kpad = lowbit_padded_k(k);
                int8_t *wv = xmalloc(m * k), *back = xmalloc(m * k), *x = xmalloc(n * kpad);
                uint8_t *packed = xmalloc(lowbit_packed_size(fmt, m, k));
                random_values(fmt, wv, m * k);
                for (int64_t i = 0; i < n * kpad; i++) x[i] = (i % kpad) < k ? (int8_t)rand_int(-127, 127) : 0;
                CHECK(lowbit_pack(fmt, wv, m, k, packed) == LOWBIT_OK, "pack");
                lowbit_unpack(fmt, packed, m, k, back);
                CHECK(memcmp(wv, back, m * k) == 0, "%s pack/unpack round trip %lldx%lld", f->name, (long long)m,
                      (long long)k);
                int32_t *y = xmalloc(n * m * 4), *want = xmalloc(n * m * 4);
                naive_matmul(wv, m, k, x, n, kpad, want);
                const lowbit_packed_weights pw = {.format = fmt, .m = m, .k = k, .data = packed};
                CHECK(lowbit_matmul_s32(ctx, &pw, x, n, kpad, y, m) == LOWBIT_OK, "matmul_s32 status");
                CHECK(memcmp(y, want, n * m * 4) == 0, "%s matmul_s32 m=%lld k=%lld n=%lld differs", f->name,
                      (long long)m, (long long)k, (long long)n);
                /* fused dequantize, with per-row or (int4) per-group scales */
                const int64_t group = (fmt == LOWBIT_FORMAT_INT4 && k > 16) ? 16 : 0;
                const int64_t groups = group ? (k + group - 1) / group : 1;
                float *ws = xmalloc(m * groups * 4), *xs = xmalloc(n * 4), *bias = xmalloc(m * 4), *yf = xmalloc(n * m * 4);
                fill_floats(ws, m * groups, 0.1f), fill_floats(xs, n, 0.05f), fill_floats(bias, m, 1.0f);
                const lowbit_packed_weights pg = {.format = fmt, .m = m, .k = k, .group = group, .data = packed, .scales = ws};
                CHECK(lowbit_matmul_f32(ctx, &pg, x, n, kpad, xs, bias, yf, m) == LOWBIT_OK, "matmul_f32 status");
                int worst = 0;
                for (int64_t i = 0; i < n; i++)
                    for (int64_t r = 0; r < m; r++) {
                        double ref = bias[r], mag = fabs(bias[r]);
                        for (int64_t g = 0; g < groups; g++) {
                            int64_t d = 0;
                            const int64_t c1 = group ? ((g + 1) * group < k ? (g + 1) * group : k) : k;
                            for (int64_t c = group ? g * group : 0; c < c1; c++) d += wv[r * k + c] * x[i * kpad + c];
                            ref += (double)d * xs[i] * ws[r * groups + g];
                            mag += fabs((double)d * xs[i] * ws[r * groups + g]);
                        }
                        /* float32 rounding of a few products and sums: a few ulps of the magnitude */
                        if (fabs(yf[i * m + r] - ref) > 1e-6 * (mag + 1e-30) * (groups + 2)) worst = 1;
                    }
                CHECK(!worst, "%s matmul_f32 m=%lld k=%lld n=%lld off", f->name, (long long)m, (long long)k, (long long)n);
                if (fmt != LOWBIT_FORMAT_INT8) {
                    wv[0] = (int8_t)(fmt == LOWBIT_FORMAT_BINARY ? 0 : f->qmax + 1);
                    CHECK(lowbit_pack(fmt, wv, m, k, packed) == LOWBIT_ERR_ARGUMENT, "%s pack accepts %d", f->name, wv[0]);
                    wv[0] = (int8_t)f->qmax, wv[m * k - 1] = (int8_t)(fmt == LOWBIT_FORMAT_BINARY ? 0 : f->qmin - 1);
                    CHECK(lowbit_pack(fmt, wv, m, k, packed) == LOWBIT_ERR_ARGUMENT, "%s pack accepts a last %d", f->name,
                          wv[m * k - 1]);
                }
                /* a NaN or infinity in any scale or bias, first or last, is refused */
                const float keep_xs = xs[n - 1], keep_ws = ws[m * groups - 1], keep_bias = bias[0];
                xs[n - 1] = NAN;
                CHECK(lowbit_matmul_f32(ctx, &pg, x, n, kpad, xs, bias, yf, m) == LOWBIT_ERR_NONFINITE, "NaN x scale");
                xs[n - 1] = keep_xs, ws[m * groups - 1] = -INFINITY;
                CHECK(lowbit_matmul_f32(ctx, &pg, x, n, kpad, xs, bias, yf, m) == LOWBIT_ERR_NONFINITE, "-Inf weight scale");
                ws[m * groups - 1] = keep_ws, bias[0] = NAN;
                CHECK(lowbit_matmul_f32(ctx, &pg, x, n, kpad, xs, bias, yf, m) == LOWBIT_ERR_NONFINITE, "NaN bias");
                bias[0] = keep_bias;
                CHECK(lowbit_matmul_f32(ctx, &pg, x, n, kpad, xs, bias, yf, m) == LOWBIT_OK, "finite again");
                xs[0] = NAN;
                CHECK(lowbit_matmul_f32(ctx, &pg, x, n, kpad, xs, bias, yf, m) == LOWBIT_ERR_NONFINITE, "NaN scale");
                CHECK(lowbit_matmul_s32(ctx, &pw, x, n, kpad - 1 < k ? k - 1 : kpad - 1, y, m) == LOWBIT_ERR_SHAPE,
                      "short ldx accepted");
                /* activations outside the symmetric range, or with a non-zero pad, are refused */
                const int64_t at = (n - 1) * kpad + rand_int(0, (int)k - 1);
                const int8_t keep = x[at];
                x[at] = INT8_MIN;
                CHECK(lowbit_matmul_s32(ctx, &pw, x, n, kpad, y, m) == LOWBIT_ERR_ARGUMENT, "x = -128 accepted");
                x[at] = keep;
                if (kpad > k) {
                    x[kpad - 1] = 1;
                    CHECK(lowbit_matmul_s32(ctx, &pw, x, n, kpad, y, m) == LOWBIT_ERR_ARGUMENT,
                          "non-zero padding accepted");
                }
                free(wv), free(back), free(x), free(packed), free(y), free(want), free(ws), free(xs), free(bias), free(yf);
            }
    }
}

/* Several token blocks over weights larger than one reused panel group (shrunk here to a few
 * panels, an odd number so that groups and threads do not divide evenly): every group and
 * token block, with tail rows and a tail token block, on 1 and 2 threads, against the naive
 * product. */
static void test_matmul_panel_groups_of(const lowbit_context *ctx, int64_t m, int64_t k, int64_t n) {
    const int64_t kpad = lowbit_padded_k(k);
    int8_t *wv = xmalloc(m * k), *x = xmalloc(n * kpad);
    int32_t *y = xmalloc(n * m * 4), *want = xmalloc(n * m * 4);
    for (int64_t i = 0; i < n * kpad; i++) x[i] = (i % kpad) < k ? (int8_t)rand_int(-127, 127) : 0;
    for (int fmt = 0; fmt < LOWBIT_FORMAT_COUNT; fmt++) {
        const lowbit_format_traits *f = lowbit_format_get(fmt);
        uint8_t *packed = xmalloc(lowbit_packed_size(fmt, m, k));
        random_values(fmt, wv, m * k);
        CHECK(lowbit_pack(fmt, wv, m, k, packed) == LOWBIT_OK, "pack");
        naive_matmul(wv, m, k, x, n, kpad, want);
        const lowbit_packed_weights pw = {.format = fmt, .m = m, .k = k, .data = packed};
        const int64_t panel_bytes = kpad / f->chunk_k * LOWBIT_CHUNK_BYTES;
        for (int panels = 1; panels <= 3; panels += 2)
            for (int threads = 1; threads <= 2; threads++) {
                lowbit_context c = *ctx;
                c.threads = threads;
                lowbit_set_reused_group_bytes(panels * panel_bytes);
                memset(y, 0, n * m * 4);
                CHECK(lowbit_matmul_s32(&c, &pw, x, n, kpad, y, m) == LOWBIT_OK, "matmul_s32 status");
                CHECK(memcmp(y, want, n * m * 4) == 0, "%s: %lld tokens, groups of %d panels, %d threads differ", f->name,
                      (long long)n, panels, threads);
            }
        lowbit_set_reused_group_bytes(0);
        free(packed);
    }
    free(wv), free(x), free(y), free(want);
}

/* A thread keeps each token's zero-point correction across the panel groups it passes over
 * (up to 4096 tokens, in as many token blocks as that takes; past that it takes them again in
 * every group): both ways and at the limit, with groups of one and three panels. */
static void test_matmul_panel_groups(const lowbit_context *ctx) {
    test_matmul_panel_groups_of(ctx, 7 * LOWBIT_PANEL_ROWS + 5, 257, 3 * LOWBIT_MAX_NR + 3);
    test_matmul_panel_groups_of(ctx, 3 * LOWBIT_PANEL_ROWS + 1, 33, 4096);
    test_matmul_panel_groups_of(ctx, 3 * LOWBIT_PANEL_ROWS + 1, 33, 4096 + 11);
}

/* Large enough that both the activation quantizer and the matmul pass their work grain
 * and really split across two threads (small calls stay on one), in every format: the
 * threads must agree with one thread bit for bit (and, under ThreadSanitizer, not race). */
static void test_linear_and_threads(const lowbit_context *ctx) {
    const int64_t m = 70, k = 129, n = 301;
    float *x = xmalloc(n * k * 4), *s = xmalloc(m * 4), *y1 = xmalloc(n * m * 4), *y2 = xmalloc(n * m * 4);
    int8_t *q = xmalloc(m * k);
    void *ws = xmalloc(lowbit_linear_workspace_size(n, k));
    for (int f = 0; f < LOWBIT_FORMAT_COUNT; f++) {
        const lowbit_format_traits *tr = lowbit_format_get((lowbit_format)f);
        fill_floats(x, n * k, 4.0f);
        for (int64_t i = 0; i < m * k; i++) q[i] = (int8_t)(f == LOWBIT_FORMAT_BINARY ? (rand_int(0, 1) ? 1 : -1) : rand_int(tr->qmin, tr->qmax));
        for (int64_t i = 0; i < m; i++) s[i] = 0.01f + (float)rand_int(1, 100) / 100.0f;
        uint8_t *packed = xmalloc(lowbit_packed_size((lowbit_format)f, m, k));
        CHECK(lowbit_pack((lowbit_format)f, q, m, k, packed) == LOWBIT_OK, "pack %s", tr->name);
        const lowbit_packed_weights pw = {.format = (lowbit_format)f, .m = m, .k = k, .data = packed, .scales = s};
        lowbit_context one = *ctx, two = *ctx;
        one.threads = 1, two.threads = 2;
        CHECK(lowbit_linear_f32(&one, &pw, x, n, NULL, y1, ws) == LOWBIT_OK, "linear %s", tr->name);
        CHECK(lowbit_linear_f32(&two, &pw, x, n, NULL, y2, ws) == LOWBIT_OK, "linear %s, 2 threads", tr->name);
        CHECK(memcmp(y1, y2, n * m * 4) == 0, "%s: 1 and 2 threads differ", tr->name);
        /* the same as quantizing, then the scalar table's matmul (which interleaves nothing);
         * int4 also with scale groups, whose tiles start inside the interleaved copy */
        for (int64_t group = 0; group <= (f == LOWBIT_FORMAT_INT4 ? 32 : 0); group += 32) {
            lowbit_context scalar;
            CHECK(lowbit_context_init(&scalar, LOWBIT_ISA_SCALAR, 1) == LOWBIT_OK, "scalar context");
            const int64_t kpad = lowbit_padded_k(k), groups = group ? (k + group - 1) / group : 1;
            float *gs = xmalloc(m * groups * 4), *xs = xmalloc(n * 4);
            for (int64_t i = 0; i < m * groups; i++) gs[i] = 0.01f + (float)rand_int(1, 100) / 100.0f;
            int8_t *xq = xmalloc(n * kpad);
            const lowbit_packed_weights gw = {.format = (lowbit_format)f, .m = m, .k = k, .group = group, .data = packed, .scales = gs};
            CHECK(lowbit_linear_f32(ctx, &gw, x, n, NULL, y1, ws) == LOWBIT_OK, "linear %s group %lld", tr->name, (long long)group);
            CHECK(lowbit_quantize_activations(&scalar, x, n, k, xq, kpad, xs) == LOWBIT_OK, "quantize");
            CHECK(lowbit_matmul_f32(&scalar, &gw, xq, n, kpad, xs, NULL, y2, m) == LOWBIT_OK, "scalar matmul");
            CHECK(memcmp(y1, y2, n * m * 4) == 0, "%s group %lld: linear differs from quantize + scalar matmul", tr->name,
                  (long long)group);
            free(gs), free(xs), free(xq);
        }
        x[5] = INFINITY;
        CHECK(lowbit_linear_f32(&two, &pw, x, n, NULL, y1, ws) == LOWBIT_ERR_NONFINITE, "linear %s accepts Inf", tr->name);
        free(packed);
    }
    free(x), free(s), free(y1), free(y2), free(q), free(ws);
}

/* The fused epilogue (SiLU, a residual, both) against the separate passes it replaces:
 * lowbit_matmul_f32, lowbit_silu_forward, then residual + y, bit for bit, in every format,
 * on 1 and 2 threads (2 split the panels of the larger shapes into tiles), with rows past
 * the epilogue's 256-value pieces, a residual stride past m and per-group int4 scales. */
static void test_matmul_epilogue(const lowbit_context *ctx) {
    const int64_t shapes[][3] = {{1, 1, 1}, {17, 33, 9}, {300, 65, 3}, {640, 257, 24}}; /* m, k, n */
    for (int f = 0; f < LOWBIT_FORMAT_COUNT; f++)
        for (int sh = 0; sh < 4; sh++) {
            const lowbit_format_traits *tr = lowbit_format_get((lowbit_format)f);
            const int64_t m = shapes[sh][0], k = shapes[sh][1], n = shapes[sh][2], kpad = lowbit_padded_k(k);
            const int64_t ldr = m + 3, group = (f == LOWBIT_FORMAT_INT4 && k > 32) ? 32 : 0;
            const int64_t groups = group ? (k + group - 1) / group : 1;
            int8_t *q = xmalloc(m * k), *x = xmalloc(n * kpad);
            float *ws = xmalloc(m * groups * 4), *xs = xmalloc(n * 4), *bias = xmalloc(m * 4);
            float *res = xmalloc(n * ldr * 4), *want = xmalloc(n * m * 4), *got = xmalloc(n * m * 4);
            random_values((lowbit_format)f, q, m * k);
            for (int64_t i = 0; i < n * kpad; i++) x[i] = (i % kpad) < k ? (int8_t)rand_int(-127, 127) : 0;
            fill_floats(ws, m * groups, 0.02f), fill_floats(xs, n, 0.05f), fill_floats(bias, m, 1.0f);
            fill_floats(res, n * ldr, 2.0f);
            uint8_t *packed = xmalloc(lowbit_packed_size((lowbit_format)f, m, k));
            CHECK(lowbit_pack((lowbit_format)f, q, m, k, packed) == LOWBIT_OK, "pack %s", tr->name);
            const lowbit_packed_weights pw = {.format = (lowbit_format)f, .m = m, .k = k, .group = group, .data = packed,
                                              .scales = ws};
            for (int threads = 1; threads <= 2; threads++)
                for (int kind = 1; kind < 4; kind++) { /* 1: SiLU, 2: residual, 3: both */
                    lowbit_context c = *ctx;
                    c.threads = threads;
                    const lowbit_epilogue e = {.silu = kind & 1, .residual = kind & 2 ? res : NULL, .ldr = ldr};
                    CHECK(lowbit_matmul_f32(&c, &pw, x, n, kpad, xs, bias, want, m) == LOWBIT_OK, "matmul_f32");
                    if (e.silu) {
                        CHECK(lowbit_silu_forward(&c, want, n * m, got) == LOWBIT_OK, "silu");
                        memcpy(want, got, (size_t)(n * m) * sizeof *want);
                    }
                    if (e.residual)
                        for (int64_t i = 0; i < n; i++)
                            for (int64_t r = 0; r < m; r++) want[i * m + r] = res[i * ldr + r] + want[i * m + r];
                    CHECK(lowbit_matmul_f32_epilogue(&c, &pw, x, n, kpad, xs, bias, &e, got, m) == LOWBIT_OK,
                          "matmul_f32_epilogue");
                    CHECK(same_floats(got, want, n * m), "%s epilogue %d m=%lld k=%lld n=%lld, %d threads: not the separate passes",
                          tr->name, kind, (long long)m, (long long)k, (long long)n, threads);
                }
            const lowbit_epilogue shortr = {.residual = res, .ldr = m - 1};
            CHECK(lowbit_matmul_f32_epilogue(ctx, &pw, x, n, kpad, xs, bias, &shortr, got, m) == LOWBIT_ERR_SHAPE,
                  "a residual stride under m accepted");
            free(q), free(x), free(ws), free(xs), free(bias), free(res), free(want), free(got), free(packed);
        }
}

/* lowbit_matmul_quantized: the bits of lowbit_matmul_f32_epilogue, then
 * lowbit_quantize_activations, in every format, with and without an epilogue, on 1 and 2
 * threads (2 token blocks or more split); a row that overflows is refused as the quantizer
 * refuses it. */
static void test_matmul_quantized(const lowbit_context *ctx) {
    /* m, k, n; the last one's int8 weights (8.5 MB) are over the tile size, multiplied whole first */
    const int64_t shapes[][3] = {{1, 1, 1}, {17, 33, 9}, {300, 65, 3}, {320, 80, 15}, {40, 257, 33}, {2064, 4100, 3}};
    for (int f = 0; f < LOWBIT_FORMAT_COUNT; f++)
        for (int sh = 0; sh < 6; sh++) {
            const lowbit_format_traits *tr = lowbit_format_get((lowbit_format)f);
            const int64_t m = shapes[sh][0], k = shapes[sh][1], n = shapes[sh][2], kpad = lowbit_padded_k(k);
            const int64_t ldq = lowbit_padded_k(m) + (sh & 1), group = (f == LOWBIT_FORMAT_INT4 && k > 32) ? 32 : 0;
            const int64_t groups = group ? (k + group - 1) / group : 1;
            int8_t *w8 = xmalloc(m * k), *x = xmalloc(n * kpad), *want = xmalloc(n * ldq), *got = xmalloc(n * ldq);
            float *ws = xmalloc(m * groups * 4), *xs = xmalloc(n * 4), *bias = xmalloc(m * 4), *res = xmalloc(n * m * 4);
            float *y = xmalloc(n * m * 4), *want_s = xmalloc(n * 4), *got_s = xmalloc(n * 4);
            random_values((lowbit_format)f, w8, m * k);
            for (int64_t i = 0; i < n * kpad; i++) x[i] = (i % kpad) < k ? (int8_t)rand_int(-127, 127) : 0;
            fill_floats(ws, m * groups, 0.02f), fill_floats(xs, n, 0.05f), fill_floats(bias, m, 1.0f), fill_floats(res, n * m, 2.0f);
            uint8_t *packed = xmalloc(lowbit_packed_size((lowbit_format)f, m, k));
            CHECK(lowbit_pack((lowbit_format)f, w8, m, k, packed) == LOWBIT_OK, "pack %s", tr->name);
            const lowbit_packed_weights pw = {.format = (lowbit_format)f, .m = m, .k = k, .group = group, .data = packed,
                                              .scales = ws};
            for (int threads = 1; threads <= 2; threads++)
                for (int kind = 0; kind < 4; kind++) { /* 0: none, 1: SiLU, 2: residual, 3: both */
                    lowbit_context c = *ctx;
                    c.threads = threads;
                    const lowbit_epilogue e = {.silu = kind & 1, .residual = kind & 2 ? res : NULL, .ldr = m};
                    CHECK(lowbit_matmul_f32_epilogue(&c, &pw, x, n, kpad, xs, bias, &e, y, m) == LOWBIT_OK, "matmul_f32_epilogue");
                    CHECK(lowbit_quantize_activations(&c, y, n, m, want, ldq, want_s) == LOWBIT_OK, "quantize_activations");
                    void *work = xmalloc((int64_t)lowbit_matmul_quantized_workspace_size(&c, &pw, n));
                    memset(got, 0x55, (size_t)(n * ldq));
                    CHECK(lowbit_matmul_quantized(&c, &pw, x, n, kpad, xs, bias, &e, got, ldq, got_s, work) == LOWBIT_OK,
                          "matmul_quantized");
                    CHECK(memcmp(got, want, (size_t)(n * ldq)) == 0 && same_floats(got_s, want_s, n),
                          "%s quantized epilogue %d m=%lld k=%lld n=%lld, %d threads: not the separate calls", tr->name, kind,
                          (long long)m, (long long)k, (long long)n, threads);
                    if (kind == 2) { /* a result row that overflows to infinity */
                        const float keep_b = bias[m - 1], keep_r = res[(n - 1) * m + m - 1];
                        bias[m - 1] = FLT_MAX, res[(n - 1) * m + m - 1] = FLT_MAX;
                        CHECK(lowbit_matmul_quantized(&c, &pw, x, n, kpad, xs, bias, &e, got, ldq, got_s, work) ==
                                  LOWBIT_ERR_NONFINITE, "%s: an infinite row quantized", tr->name);
                        bias[m - 1] = keep_b, res[(n - 1) * m + m - 1] = keep_r;
                    }
                    free(work);
                }
            CHECK(lowbit_matmul_quantized(ctx, &pw, x, n, kpad, xs, bias, NULL, got, m - 1, got_s, got) == LOWBIT_ERR_SHAPE,
                  "ldq under m accepted");
            free(w8), free(x), free(want), free(got), free(ws), free(xs), free(bias), free(res), free(y), free(want_s),
                free(got_s), free(packed);
        }
}

static void test_gemm(const lowbit_context *ctx) {
    const int64_t dims[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 9, 65}, {8, 33, 100}};
    for (int d = 0; d < 4; d++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                /* A's rows: short (copied), padded with zeros past k (read in place), or padded
                 * with other bytes past k (copied) */
                for (int lay = 0; lay < (ta ? 1 : 3); lay++) {
                    const int64_t m = dims[d][0], n = dims[d][1], k = dims[d][2];
                    const int64_t lda = ta ? m + 2 : lay ? lowbit_padded_k(k) + 1 : k + 2, ldb = (tb ? k : n) + 1, ldc = n + 3;
                    int8_t *a = xmalloc((ta ? k : m) * lda), *b = xmalloc((tb ? n : k) * ldb);
                    for (int64_t i = 0; i < (ta ? k : m) * lda; i++) a[i] = (int8_t)rand_int(-127, 127);
                    if (lay == 1)
                        for (int64_t i = 0; i < m; i++) memset(a + i * lda + k, 0, (size_t)(lowbit_padded_k(k) - k));
                    for (int64_t i = 0; i < (tb ? n : k) * ldb; i++) b[i] = (int8_t)rand_int(-128, 127);
                    int32_t *c = xmalloc(m * ldc * 4);
                    void *ws = xmalloc(lowbit_gemm_s8_workspace_size(m, n, k));
                    CHECK(lowbit_gemm_s8(ctx, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, ws) == LOWBIT_OK, "gemm status");
                    int bad = 0;
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = 0; j < n; j++) {
                            int32_t s = 0;
                            for (int64_t kk = 0; kk < k; kk++)
                                s += (ta ? a[kk * lda + i] : a[i * lda + kk]) * (tb ? b[j * ldb + kk] : b[kk * ldb + j]);
                            bad |= c[i * ldc + j] != s;
                        }
                    CHECK(!bad, "gemm_s8 %lldx%lldx%lld ta=%d tb=%d", (long long)m, (long long)n, (long long)k, ta, tb);
                    /* the float variant: each row of the exact sums times its scale, in one rounding;
                     * the columns past n in each row of C are left alone */
                    float *scales = xmalloc(m * sizeof *scales), *cf = xmalloc(m * ldc * sizeof *cf);
                    for (int64_t i = 0; i < m; i++) scales[i] = (float)rand_int(1, 1000) / 997.0f;
                    for (int64_t i = 0; i < m * ldc; i++) cf[i] = -7.0f;
                    void *wsf = xmalloc(lowbit_gemm_s8_f32_workspace_size(m, n, k));
                    CHECK(lowbit_gemm_s8_f32(ctx, ta, tb, m, n, k, a, lda, scales, b, ldb, cf, ldc, wsf) == LOWBIT_OK,
                          "gemm_s8_f32 status");
                    bad = 0;
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = 0; j < ldc; j++)
                            bad |= j < n ? cf[i * ldc + j] != (float)c[i * ldc + j] * scales[i] : cf[i * ldc + j] != -7.0f;
                    CHECK(!bad, "gemm_s8_f32 %lldx%lldx%lld ta=%d tb=%d", (long long)m, (long long)n, (long long)k, ta, tb);
                    scales[m - 1] = NAN;
                    CHECK(lowbit_gemm_s8_f32(ctx, ta, tb, m, n, k, a, lda, scales, b, ldb, cf, ldc, wsf) == LOWBIT_ERR_NONFINITE,
                          "gemm_s8_f32 accepts a NaN scale");
                    scales[m - 1] = 1.0f;
                    CHECK(lowbit_gemm_s8_f32(ctx, ta, tb, m, n, k, a, lda, scales, b, ldb, cf, n - 1, wsf) == LOWBIT_ERR_SHAPE,
                          "gemm_s8_f32 accepts ldc < n");
                    a[ta ? (k - 1) * lda + m - 1 : (m - 1) * lda + k - 1] = INT8_MIN; /* A is the symmetric side */
                    CHECK(lowbit_gemm_s8(ctx, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, ws) == LOWBIT_ERR_ARGUMENT,
                          "gemm_s8 accepts -128 in A");
                    CHECK(lowbit_gemm_s8_f32(ctx, ta, tb, m, n, k, a, lda, scales, b, ldb, cf, ldc, wsf) == LOWBIT_ERR_ARGUMENT,
                          "gemm_s8_f32 accepts -128 in A");
                    free(a), free(b), free(c), free(ws), free(scales), free(cf), free(wsf);
                }
}


/* ---- the float layers through their drivers ---- */

/* attention in double, the defining formulas */
static void naive_attention(const float *qkv, int64_t B, int64_t T, int64_t H, int64_t heads, const int64_t *len,
                            float scale, double *att) {
    const int64_t hd = H / heads;
    double *p = xmalloc(T * sizeof *p);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < heads; h++)
            for (int64_t i = 0; i < T; i++) {
                const int64_t count = (i < len[b] - 1 ? i : len[b] - 1) + 1;
                double m = -INFINITY, total = 0;
                for (int64_t j = 0; j < count; j++) {
                    double d = 0;
                    for (int64_t c = 0; c < hd; c++) d += (double)qkv[(b * T + i) * 3 * H + h * hd + c] * qkv[(b * T + j) * 3 * H + H + h * hd + c];
                    p[j] = d * scale;
                    m = p[j] > m ? p[j] : m;
                }
                for (int64_t j = 0; j < count; j++) total += p[j] = exp(p[j] - m);
                for (int64_t c = 0; c < hd; c++) {
                    double o = 0;
                    for (int64_t j = 0; j < count; j++) o += p[j] / total * qkv[(b * T + j) * 3 * H + 2 * H + h * hd + c];
                    att[(b * T + i) * H + h * hd + c] = o;
                }
            }
    free(p);
}

static void test_layers(const lowbit_context *ctx) {
    lowbit_context one;
    lowbit_context_init(&one, ctx->isa, 1);
    /* batch, steps, hidden, heads; lengths drawn in 1..steps */
    static const int64_t shapes[][4] = {{1, 1, 4, 1}, {2, 5, 8, 2}, {3, 17, 48, 3}, {4, 60, 64, 4}, {2, 33, 96, 2}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t B = shapes[s][0], T = shapes[s][1], H = shapes[s][2], heads = shapes[s][3], rows = B * T;
        int64_t len[8];
        for (int64_t b = 0; b < B; b++) len[b] = b == 0 ? T : rand_int(1, (int)T);
        const float scale = 1.0f / sqrtf((float)(H / heads));
        const size_t ws = lowbit_attention_workspace_size(B, T, H, heads);
        float *qkv = xmalloc(rows * 3 * H * sizeof(float)), *datt = xmalloc(rows * H * sizeof(float));
        float *att[3], *probs[3], *dqkv[3];
        void *work = xmalloc(ws);
        fill_floats(qkv, rows * 3 * H, 1.5f), fill_floats(datt, rows * H, 1.0f);
        const lowbit_context *ctxs[3] = {ctx, &one, &scalar_ctx};
        for (int c = 0; c < 3; c++) {
            att[c] = xmalloc(rows * H * sizeof(float)), probs[c] = xmalloc(B * heads * T * T * sizeof(float));
            dqkv[c] = xmalloc(rows * 3 * H * sizeof(float));
            CHECK(lowbit_attention_forward(ctxs[c], qkv, B, T, H, heads, len, scale, att[c], probs[c], work) == LOWBIT_OK,
                  "attention forward status");
            CHECK(lowbit_attention_backward(ctxs[c], qkv, probs[c], datt, B, T, H, heads, len, scale, dqkv[c], work) == LOWBIT_OK,
                  "attention backward status");
        }
        /* the same bits on 2 threads, on 1, and from the scalar twins */
        for (int c = 1; c < 3; c++)
            CHECK(same_floats(att[0], att[c], rows * H) && same_floats(probs[0], probs[c], B * heads * T * T) &&
                      same_floats(dqkv[0], dqkv[c], rows * 3 * H),
                  "attention %lldx%lldx%lld/%lld differs from %s", (long long)B, (long long)T, (long long)H,
                  (long long)heads, c == 1 ? "one thread" : "scalar");
        /* each sequence's last real step alone: those rows of the full pass, bit for bit, and
         * the backward from their gradient alone that of the full pass with zeros elsewhere */
        float *last = xmalloc(B * H * sizeof *last), *last_probs = xmalloc(B * heads * T * sizeof *last_probs);
        float *dlast = xmalloc(B * H * sizeof *dlast), *dfull = xmalloc(rows * H * sizeof *dfull);
        float *want_dqkv = xmalloc(rows * 3 * H * sizeof *want_dqkv), *got_dqkv = xmalloc(rows * 3 * H * sizeof *got_dqkv);
        fill_floats(dlast, B * H, 1.0f);
        memset(dfull, 0, rows * H * sizeof *dfull);
        for (int64_t b = 0; b < B; b++) memcpy(dfull + (b * T + len[b] - 1) * H, dlast + b * H, H * sizeof *dfull);
        CHECK(lowbit_attention_backward(ctx, qkv, probs[0], dfull, B, T, H, heads, len, scale, want_dqkv, work) == LOWBIT_OK,
              "attention backward status");
        for (int c = 0; c < 3; c++) {
            CHECK(lowbit_attention_forward_last(ctxs[c], qkv, B, T, H, heads, len, scale, last, c == 1 ? NULL : last_probs, work)
                      == LOWBIT_OK, "attention forward (last steps) status");
            for (int64_t b = 0; b < B; b++) {
                CHECK(same_floats(last + b * H, att[0] + (b * T + len[b] - 1) * H, H),
                      "attention %lldx%lldx%lld/%lld: sequence %lld's last step differs from the full pass (%d)", (long long)B,
                      (long long)T, (long long)H, (long long)heads, (long long)b, c);
                for (int64_t h = 0; c != 1 && h < heads; h++)
                    CHECK(same_floats(last_probs + (b * heads + h) * T, probs[0] + ((b * heads + h) * T + len[b] - 1) * T, T),
                          "attention %lldx%lldx%lld/%lld: sequence %lld's last-step probabilities differ (%d)", (long long)B,
                          (long long)T, (long long)H, (long long)heads, (long long)b, c);
            }
            fill_floats(got_dqkv, rows * 3 * H, 9.0f); /* every value is written */
            CHECK(lowbit_attention_backward_last(ctxs[c], qkv, last_probs, dlast, B, T, H, heads, len, scale, got_dqkv, work)
                      == LOWBIT_OK, "attention backward (last steps) status");
            CHECK(same_floats(got_dqkv, want_dqkv, rows * 3 * H),
                  "attention %lldx%lldx%lld/%lld: the last steps' backward differs from the full pass's (%d)", (long long)B,
                  (long long)T, (long long)H, (long long)heads, c);
        }
        CHECK(lowbit_attention_backward_last(ctx, qkv, NULL, dlast, B, T, H, heads, len, scale, got_dqkv, work) == LOWBIT_ERR_ARGUMENT,
              "attention backward (last steps) without probabilities");
        free(last), free(last_probs), free(dlast), free(dfull), free(want_dqkv), free(got_dqkv);
        double *want = xmalloc(rows * H * sizeof *want), worst = 0;
        naive_attention(qkv, B, T, H, heads, len, scale, want);
        for (int64_t i = 0; i < rows * H; i++) worst = fmax(worst, fabs(att[0][i] - want[i]));
        CHECK(worst < 1e-5, "attention %lldx%lldx%lld off the formula by %g", (long long)B, (long long)T, (long long)H, worst);
        /* the backward against central differences of sum(att * datt), a few entries */
        for (int probe = 0; probe < 6; probe++) {
            const int64_t at = rand_int(0, (int)(rows * 3 * H - 1));
            const float keep = qkv[at], hstep = 1e-2f;
            double f[2];
            for (int side = 0; side < 2; side++) {
                qkv[at] = keep + (side ? hstep : -hstep);
                naive_attention(qkv, B, T, H, heads, len, scale, want);
                f[side] = 0;
                for (int64_t i = 0; i < rows * H; i++) f[side] += want[i] * datt[i];
            }
            qkv[at] = keep;
            const double numeric = (f[1] - f[0]) / (2 * hstep);
            CHECK(fabs(numeric - dqkv[0][at]) < 2e-3 * (1 + fabs(numeric)), "attention gradient at %lld: %g vs %g",
                  (long long)at, dqkv[0][at], numeric);
        }
        /* layer norm and SiLU over the same rows: thread counts and scalar agree; the formula holds */
        float *y[3], *xhat[3], *rstd[3], *a[3];
        const float *x = qkv;
        float *g = xmalloc(3 * H * sizeof *g), *be = xmalloc(3 * H * sizeof *be);
        fill_floats(g, 3 * H, 1.0f), fill_floats(be, 3 * H, 1.0f);
        for (int c = 0; c < 3; c++) {
            y[c] = xmalloc(rows * 3 * H * sizeof(float)), xhat[c] = xmalloc(rows * 3 * H * sizeof(float));
            rstd[c] = xmalloc(rows * sizeof(float)), a[c] = xmalloc(rows * 3 * H * sizeof(float));
            CHECK(lowbit_layernorm_forward(ctxs[c], x, rows, 3 * H, g, be, 1e-5f, y[c], xhat[c], rstd[c]) == LOWBIT_OK, "layernorm status");
            CHECK(lowbit_silu_forward(ctxs[c], x, rows * 3 * H, a[c]) == LOWBIT_OK, "silu status");
        }
        for (int c = 1; c < 3; c++)
            CHECK(same_floats(y[0], y[c], rows * 3 * H) && same_floats(xhat[0], xhat[c], rows * 3 * H) &&
                      same_floats(rstd[0], rstd[c], rows) && same_floats(a[0], a[c], rows * 3 * H),
                  "layernorm or silu differs from %s", c == 1 ? "one thread" : "scalar");
        for (int64_t r = 0; r < rows; r++) {
            double mean = 0, var = 0;
            for (int64_t i = 0; i < 3 * H; i++) mean += x[r * 3 * H + i];
            mean /= (double)(3 * H);
            for (int64_t i = 0; i < 3 * H; i++) var += (x[r * 3 * H + i] - mean) * (x[r * 3 * H + i] - mean);
            const double rs = 1 / sqrt(var / (double)(3 * H) + 1e-5);
            for (int64_t i = 0; i < 3 * H; i++) {
                const double want_y = (x[r * 3 * H + i] - mean) * rs * g[i] + be[i];
                CHECK(fabs(y[0][r * 3 * H + i] - want_y) < 1e-5 * (1 + fabs(want_y)), "layernorm [%lld,%lld] %g vs %g",
                      (long long)r, (long long)i, y[0][r * 3 * H + i], want_y);
                const double u = x[r * 3 * H + i], want_a = u / (1 + exp(-u));
                CHECK(fabs(a[0][r * 3 * H + i] - want_a) < 1e-6 * (1 + fabs(want_a)), "silu(%g) = %g, want %g", u, a[0][r * 3 * H + i], want_a);
            }
        }
        CHECK(lowbit_attention_forward(ctx, qkv, B, T, H, H + 1, len, scale, att[0], NULL, work) == LOWBIT_ERR_SHAPE,
              "heads not dividing hidden accepted");
        len[0] = T + 1;
        CHECK(lowbit_attention_forward(ctx, qkv, B, T, H, heads, len, scale, att[0], NULL, work) == LOWBIT_ERR_SHAPE,
              "a length past the steps accepted");
        len[0] = 0;
        CHECK(lowbit_attention_forward(ctx, qkv, B, T, H, heads, len, scale, att[0], NULL, work) == LOWBIT_ERR_SHAPE,
              "a zero length accepted");
        for (int c = 0; c < 3; c++) free(att[c]), free(probs[c]), free(dqkv[c]), free(y[c]), free(xhat[c]), free(rstd[c]), free(a[c]);
        free(qkv), free(datt), free(work), free(want), free(g), free(be);
    }
    /* stochastic rounding: the scalar twins' bits on every thread count, unbiased, zero rows */
    {
        const int64_t rows = 37, cols = 70, ldq = 96;
        float *x = xmalloc(rows * cols * sizeof *x), s1[37], s2[37];
        int8_t *q1 = xmalloc(rows * ldq), *q2 = xmalloc(rows * ldq);
        fill_floats(x, rows * cols, 3.0f);
        memset(x + 5 * cols, 0, cols * sizeof *x); /* a zero row takes no draws */
        memset(q1, 7, rows * ldq), memset(q2, 9, rows * ldq);
        CHECK(lowbit_quantize_stochastic(ctx, x, rows, cols, 42, q1, ldq, s1) == LOWBIT_OK &&
                  lowbit_quantize_stochastic(&scalar_ctx, x, rows, cols, 42, q2, ldq, s2) == LOWBIT_OK,
              "quantize_stochastic status");
        CHECK(memcmp(q1, q2, rows * ldq) == 0 && memcmp(s1, s2, sizeof s1) == 0, "quantize_stochastic differs from scalar");
        double bias = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) bias += q1[r * ldq + c] * s1[r] - x[r * cols + c];
        CHECK(fabs(bias / (rows * cols)) < 2e-3, "stochastic rounding biased: %g per value", bias / (rows * cols));
        int zero = s1[5] == 0;
        for (int64_t c = 0; c < ldq; c++) zero &= q1[5 * ldq + c] == 0 && (c < cols || q1[ldq + c] == 0);
        CHECK(zero, "a zero row or the padding is not zero");
        CHECK(lowbit_absmax_rows(ctx, x, rows, cols, s1) == LOWBIT_OK, "absmax_rows status");
        int exact = 1;
        for (int64_t r = 0; r < rows; r++) {
            float m = 0;
            for (int64_t c = 0; c < cols; c++) m = fmaxf(m, fabsf(x[r * cols + c]));
            exact &= s1[r] == m;
        }
        CHECK(exact, "absmax_rows differs from the row maxima");
        x[100] = NAN;
        CHECK(lowbit_quantize_stochastic(ctx, x, rows, cols, 42, q1, ldq, s1) == LOWBIT_ERR_NONFINITE, "NaN accepted");
        CHECK(lowbit_absmax_rows(ctx, x, rows, cols, s1) == LOWBIT_ERR_NONFINITE, "absmax_rows accepts NaN");
        free(x), free(q1), free(q2);
    }
    /* stochastic rounding of a scaled transpose: the bits of the transpose, then the rounding,
     * on awkward shapes (one value, tails of the 16- and 64-wide tiles, a zero column, a
     * product that overflows) */
    {
        const int64_t shapes[][2] = {{1, 1}, {130, 75}, {200, 300}, {64, 64}, {17, 129}};
        for (size_t e = 0; e < sizeof shapes / sizeof shapes[0]; e++) {
            const int64_t n = shapes[e][0], m = shapes[e][1], ldq = n + 13;
            float *x = xmalloc(n * m * sizeof *x), *s = xmalloc(n * sizeof *s), *t = xmalloc(n * m * sizeof *t);
            float *s1 = xmalloc(m * sizeof *s1), *s2 = xmalloc(m * sizeof *s2);
            int8_t *q1 = xmalloc(m * ldq), *q2 = xmalloc(m * ldq);
            fill_floats(x, n * m, 3.0f);
            for (int64_t i = 0; i < n; i++) s[i] = 0.5f + (float)(i % 7);
            if (m > 3)
                for (int64_t i = 0; i < n; i++) x[i * m + 3] = 0.0f; /* a column that takes no draws */
            memset(q1, 7, m * ldq), memset(q2, 9, m * ldq);
            CHECK(lowbit_quantize_stochastic_transposed(ctx, x, n, m, s, 42, q1, ldq, s1) == LOWBIT_OK &&
                      lowbit_transpose_scaled(&scalar_ctx, x, n, m, s, t) == LOWBIT_OK &&
                      lowbit_quantize_stochastic(&scalar_ctx, t, m, n, 42, q2, ldq, s2) == LOWBIT_OK,
                  "quantize_stochastic_transposed status (%lld x %lld)", (long long)n, (long long)m);
            CHECK(memcmp(q1, q2, m * ldq) == 0 && memcmp(s1, s2, m * sizeof *s1) == 0,
                  "quantize_stochastic_transposed differs from transpose + quantize_stochastic (%lld x %lld)",
                  (long long)n, (long long)m);
            s[n - 1] = FLT_MAX, x[(n - 1) * m] = 4.0f;
            CHECK(lowbit_quantize_stochastic_transposed(ctx, x, n, m, s, 42, q1, ldq, s1) == LOWBIT_ERR_NONFINITE,
                  "an infinite product accepted");
            free(x), free(s), free(t), free(s1), free(s2), free(q1), free(q2);
        }
    }
    float one_value = 1.0f, out;
    CHECK(lowbit_layernorm_forward(ctx, &one_value, 0, 1, &one_value, &one_value, 1e-5f, &out, NULL, &out) == LOWBIT_ERR_SHAPE,
          "layernorm of no rows accepted");
    CHECK(lowbit_silu_forward(ctx, &one_value, 0, &out) == LOWBIT_ERR_SHAPE, "silu of nothing accepted");
}

/* Every test, on the kernels of one context. */
static void test_context(const lowbit_context *ctx) {
    const int before = failed;
    for (size_t i = 0; i < sizeof kernel_tests / sizeof kernel_tests[0]; i++) kernel_tests[i](ctx->table);
    test_quantizers(ctx);
    test_pack_and_matmul(ctx);
    test_linear_and_threads(ctx);
    test_matmul_panel_groups(ctx);
    test_matmul_epilogue(ctx);
    test_matmul_quantized(ctx);
    test_gemm(ctx);
    test_layers(ctx);
    printf("%-11s %s\n", current_isa, failed == before ? "ok" : "FAILED");
}

int main(int argc, char **argv) {
    if (argc > 1) rng_state = strtoull(argv[1], NULL, 10) | 1;
    lowbit_context_init(&scalar_ctx, LOWBIT_ISA_SCALAR, 1);
    printf("cpu features: %s; threading: %s\n", lowbit_cpu_features(),
           lowbit_threading_available() ? "OpenMP runtime" : "serial");
    int ran = 0;
    for (int isa = 0; isa < LOWBIT_ISA_COUNT; isa++) {
        lowbit_context ctx;
        if (lowbit_context_init(&ctx, (lowbit_isa)isa, 2) != LOWBIT_OK) {
            printf("%-11s skipped (not supported here)\n", lowbit_isa_name((lowbit_isa)isa));
            continue;
        }
        current_isa = lowbit_isa_name((lowbit_isa)isa);
        test_context(&ctx);
        ran++;
        if (isa == LOWBIT_ISA_AVX512VNNI && lowbit_cpu_has_gfni()) {
            /* the context took the GFNI dot kernels: the table without them too */
            static lowbit_kernel_table plain;
            lowbit_table_build(&plain, LOWBIT_ISA_AVX512VNNI, 0);
            ctx.table = &plain;
            current_isa = "avx512vnni without gfni";
            test_context(&ctx);
        }
    }
    test_expf();
    CHECK(ran >= 1, "no ISA ran");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
