/* Internal: the kernel table, the per-ISA kernels and the shared helpers. Not installed. */
#ifndef LOWBIT_INTERNAL_H
#define LOWBIT_INTERNAL_H

#include "lowbit.h"
#include <float.h>
#include <math.h>
#include <string.h>

#define LOWBIT_KERNEL(name, ret, params) typedef ret(*lowbit_##name##_fn) params;
#include "lowbit_kernels.def"
#undef LOWBIT_KERNEL

/** One function pointer per kernel, and which ISA's code it is. */
typedef struct lowbit_kernel_table {
#define LOWBIT_KERNEL(name, ret, params) \
    lowbit_##name##_fn name;             \
    lowbit_isa name##_isa;
#include "lowbit_kernels.def"
#undef LOWBIT_KERNEL
} lowbit_kernel_table;

/* Scalar twins: always built, the reference every other ISA is tested against. */
#define LOWBIT_KERNEL(name, ret, params) ret lowbit_##name##_scalar params;
#include "lowbit_kernels.def"
#undef LOWBIT_KERNEL

/* Each ISA file overrides the entries it optimises in a table already filled by a lower ISA. */
void lowbit_table_init_layers_avx2(lowbit_kernel_table *t);
/* AVX2 code that the AVX-512 tables keep (lowbit_table_init_layers_avx2 fills them first). */
void lowbit_transpose_scaled_avx2(const float *restrict x, int64_t ldx, int rows, int64_t cols, const float *restrict s,
                                  float *restrict out, int64_t ldo);
void lowbit_table_init_layers_avx512(lowbit_kernel_table *t);
void lowbit_table_init_scalar(lowbit_kernel_table *t);
void lowbit_table_init_avx2(lowbit_kernel_table *t);
void lowbit_table_init_avx512(lowbit_kernel_table *t);
void lowbit_table_init_avx512vnni(lowbit_kernel_table *t);
void lowbit_table_init_avx512gfni(lowbit_kernel_table *t);
void lowbit_table_init_neon(lowbit_kernel_table *t);
void lowbit_table_init_neondot(lowbit_kernel_table *t);

/** Fills `t` with the kernels of `isa` (which the CPU need not have): the scalar table, with
 *  each ISA's own kernels over it. `gfni`: the AVX-512 VNNI dot kernels that decode with GFNI
 *  (what a context gets where the CPU has it); tests build the table without them too. */
void lowbit_table_build(lowbit_kernel_table *t, lowbit_isa isa, int gfni);
/** Whether this CPU has GFNI (with AVX-512 VNNI: whether contexts use its dot kernels). */
int lowbit_cpu_has_gfni(void);

/** Tokens of a dot_wide tile, at most (24 accumulators of AVX-512's 32 registers). */
#define LOWBIT_WIDE_NR 24

/** The dot kernel for `bits` bits per code. */
static inline lowbit_dot_b1_fn lowbit_dot_for_bits(const lowbit_kernel_table *t, int bits) {
    switch (bits) {
    case 1: return t->dot_b1;
    case 2: return t->dot_b2;
    case 4: return t->dot_b4;
    default: return t->dot_b8;
    }
}

/** lowbit_quantize_activations of rows x [rows, k] (row stride k) on the calling thread, with
 *  the same bits: for a matmul's epilogue that quantizes a tile's rows. 1 if a row is not
 *  finite (its codes and scale are then not written). */
int lowbit_quantize_activation_rows(const lowbit_kernel_table *t, const float *x, int64_t rows, int64_t k, int8_t *q,
                                    int64_t ldq, float *scales);

/** Runs fn(arg, begin, end) over [0, n) split into `threads` contiguous ranges. */
typedef void (*lowbit_range_fn)(void *arg, int64_t begin, int64_t end);
void lowbit_parallel_for(int threads, int64_t n, lowbit_range_fn fn, void *arg);

/** How many of `threads` to start for `work` units when each thread should get at least
 *  `grain` of them: waking a thread costs about as much as a few microseconds of work, so
 *  small calls run on the caller's thread alone. At least 1. */
int lowbit_threads_for_work(int threads, int64_t work, int64_t grain);
/* One core's L2 size in bytes (1 MiB when the system does not say). */
int64_t lowbit_l2_bytes(void);
/* Tests: the packed matmul's reused panel group, bytes (0: half of L2), so that small shapes
 * span several groups. */
void lowbit_set_reused_group_bytes(int64_t bytes);

/*
 * For ISA kernels whose register tile holds at most 4 tokens: calls TILE(bits, R, chunks, w,
 * x_j, ldx, acc_j) over groups of R <= 4 tokens, with R a compile-time constant so that the
 * tile's loops over tokens unroll.
 */
#define LOWBIT_TOKENS_BY_4(TILE, bits, chunks, w, x, ldx, nr, acc)                 \
    for (int j_ = 0; j_ < (nr); j_ += 4) {                                          \
        const int8_t *x_j = (x) + j_ * (ldx);                                       \
        int32_t *acc_j = (acc) + LOWBIT_PANEL_ROWS * j_;                            \
        switch ((nr) - j_ >= 4 ? 4 : (nr) - j_) {                                   \
        case 1: TILE(bits, 1, chunks, w, x_j, ldx, acc_j); break;                   \
        case 2: TILE(bits, 2, chunks, w, x_j, ldx, acc_j); break;                   \
        case 3: TILE(bits, 3, chunks, w, x_j, ldx, acc_j); break;                   \
        default: TILE(bits, 4, chunks, w, x_j, ldx, acc_j); break;                  \
        }                                                                           \
    }

/* Defines the dot kernel dot_bB<suffix> of an ISA whose tile function ONE(bits, chunks, w,
 * x, ldx, nr, acc) handles one panel: the contract's np panels, one after the other. */
#define LOWBIT_DEFINE_DOT_BY_PANEL(B, suffix, ONE)                                                   \
    static void dot_b##B##suffix(int64_t chunks, const uint8_t *restrict w, int64_t panel_stride,   \
                                 int np, const int8_t *restrict x, int64_t ldx, int nr,             \
                                 int32_t *restrict acc) {                                           \
        for (int q = 0; q < np; q++)                                                                \
            ONE(B, chunks, w + q * panel_stride, x, ldx, nr, acc + q * LOWBIT_MAX_NR * LOWBIT_PANEL_ROWS); \
    }

/* Defines an ISA's fused quantize-and-statistic kernels (see lowbit_kernels.def) as its own
 * two kernels one after the other: `linkage` is static or empty, the names are
 * prefix##kernel##suffix. */
#define LOWBIT_DEFINE_FUSED_BY_PARTS(linkage, prefix, suffix)                                           \
    linkage int prefix##quantize_absmax##suffix(const float *restrict x, int64_t n, float inv, int qmax,  \
                                                int8_t *restrict q, const float *restrict y,            \
                                                float *restrict out) {                                  \
        prefix##quantize##suffix(x, n, inv, qmax, q);                                                   \
        return prefix##absmax##suffix(y, n, out);                                                       \
    }                                                                                                   \
    linkage int prefix##quantize_sums##suffix(const float *restrict x, int64_t n, float inv, int qmax,    \
                                              int8_t *restrict q, const float *restrict y,              \
                                              double *restrict sum, double *restrict abssum) {          \
        prefix##quantize##suffix(x, n, inv, qmax, q);                                                   \
        return prefix##sums##suffix(y, n, sum, abssum);                                                 \
    }                                                                                                   \
    linkage int prefix##sign_sums##suffix(const float *restrict x, int64_t n, float threshold,           \
                                          int8_t *restrict q, const float *restrict y,                  \
                                          double *restrict sum, double *restrict abssum) {              \
        prefix##sign##suffix(x, n, threshold, q);                                                       \
        return prefix##sums##suffix(y, n, sum, abssum);                                                 \
    }

/* lowbit_pack with element (row, col) at q[row * rs + col * cs]. */
lowbit_status lowbit_pack_strided(lowbit_format format, const int8_t *q, int64_t m, int64_t k, int64_t rs,
                                  int64_t cs, uint8_t *out);

/* Where the code of (row, col) lives in the packed layout, and at which bit. */
static inline size_t lowbit_code_offset(int bits, int64_t kpad, int64_t row, int64_t col, int *shift) {
    const int chunk_k = 32 / bits;
    const int64_t panel = row / LOWBIT_PANEL_ROWS, r = row % LOWBIT_PANEL_ROWS;
    const int64_t chunk = col / chunk_k, kk = col % chunk_k;
    *shift = (int)(kk / 4) * bits;
    return (size_t)((panel * (kpad / chunk_k) + chunk) * LOWBIT_CHUNK_BYTES + r * 4 + kk % 4);
}

static inline int32_t lowbit_load_i32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The pairwise tree that finishes the canonical 16-lane sum. */
static inline double lowbit_reduce16(double lane[16]) {
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) lane[l] += lane[l + w];
    return lane[0];
}

/* The canonical sums (see `sums` in lowbit_kernels.def) as a running state, so that a SIMD
 * kernel can hand its partials over for the last, padded block and the final tree. */
#define LOWBIT_SUMS_SUPERBLOCK 16 /* blocks of 64 summed in float before a double add */
typedef struct {
    float fs[16], fa[16];  /* float partials of the current superblock: x and |x| */
    double s[16], a[16];   /* double partials */
    int blocks;            /* blocks in the current superblock */
} lowbit_sums_state;

static inline void lowbit_sums_flush(lowbit_sums_state *st) {
    for (int l = 0; l < 16; l++) {
        st->s[l] += (double)st->fs[l];
        st->a[l] += (double)st->fa[l];
        st->fs[l] = st->fa[l] = 0.0f;
    }
    st->blocks = 0;
}

/* One block of 64 floats b: lane l of 16 adds (b[l] + b[l+16]) + (b[l+32] + b[l+48]) to its
 * float partial; every LOWBIT_SUMS_SUPERBLOCK blocks the float partials go into the doubles. */
static inline void lowbit_sums_block(lowbit_sums_state *st, const float b[64]) {
    for (int l = 0; l < 16; l++) {
        st->fs[l] += (b[l] + b[l + 16]) + (b[l + 32] + b[l + 48]);
        st->fa[l] += (fabsf(b[l]) + fabsf(b[l + 16])) + (fabsf(b[l + 32]) + fabsf(b[l + 48]));
    }
    if (++st->blocks == LOWBIT_SUMS_SUPERBLOCK) lowbit_sums_flush(st);
}

/* The last, partial block: padded with +0.0. */
static inline void lowbit_sums_tail(lowbit_sums_state *st, const float *x, int64_t n) {
    float b[64] = {0};
    memcpy(b, x, (size_t)n * sizeof *x);
    lowbit_sums_block(st, b);
}

/* Flushes a partial superblock, folds the lanes; returns 1 if the sum of |x| is not finite. */
static inline int lowbit_sums_finish(lowbit_sums_state *st, double *sum, double *abssum) {
    if (st->blocks) lowbit_sums_flush(st);
    if (sum) *sum = lowbit_reduce16(st->s);
    *abssum = lowbit_reduce16(st->a);
    return !(*abssum <= DBL_MAX);
}

/*
 * lowbit_expf: e^x as a fixed sequence of float operations (Cephes' expf: a Cody-Waite
 * reduction by n = rint(x log2 e), a degree-5 polynomial, then a scale by 2^n built in the
 * exponent bits), which every ISA repeats lane by lane, so that the float kernels agree
 * bit for bit. x is clamped to [-87, 88] first: e^-87 (1.6e-38) stands for anything
 * smaller, and nothing here exponentiates more than 88. Within 2 ulp of e^x on that range.
 */
#define LOWBIT_EXP_LO (-87.0f)
#define LOWBIT_EXP_HI 88.0f
#define LOWBIT_EXP_LOG2E 1.44269504088896341f
#define LOWBIT_EXP_C1 0.693359375f
#define LOWBIT_EXP_C2 (-2.12194440e-4f)
#define LOWBIT_EXP_P0 1.9875691500e-4f
#define LOWBIT_EXP_P1 1.3981999507e-3f
#define LOWBIT_EXP_P2 8.3334519073e-3f
#define LOWBIT_EXP_P3 4.1665795894e-2f
#define LOWBIT_EXP_P4 1.6666665459e-1f
#define LOWBIT_EXP_P5 5.0000001201e-1f

static inline float lowbit_expf(float x) {
    x = fmaxf(x, LOWBIT_EXP_LO);
    x = fminf(x, LOWBIT_EXP_HI);
    const float n = rintf(x * LOWBIT_EXP_LOG2E);
    float r = fmaf(n, -LOWBIT_EXP_C1, x);
    r = fmaf(n, -LOWBIT_EXP_C2, r);
    const float z = r * r;
    float p = LOWBIT_EXP_P0;
    p = fmaf(p, r, LOWBIT_EXP_P1);
    p = fmaf(p, r, LOWBIT_EXP_P2);
    p = fmaf(p, r, LOWBIT_EXP_P3);
    p = fmaf(p, r, LOWBIT_EXP_P4);
    p = fmaf(p, r, LOWBIT_EXP_P5);
    float y = fmaf(p, z, r);
    y = y + 1.0f;
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

/* The canonical 16-lane float sum of the float kernels (see lowbit_kernels.def). */
static inline float lowbit_sum16(const float *x, int64_t n) {
    float lane[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lane[l] = lane[l] + x[i + l];
    if (i < n)
        for (int l = 0; l < 16; l++) lane[l] = lane[l] + (i + l < n ? x[i + l] : 0.0f);
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) lane[l] = lane[l] + lane[l + w];
    return lane[0];
}

/* SplitMix64's output function and step: the generator of the stochastic rounding. */
#define LOWBIT_SPLITMIX_INCREMENT 0x9E3779B97F4A7C15ull
static inline uint64_t lowbit_splitmix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif