/*
 * LowBit kernels: the one public header.
 *
 * Low-bit weights (binary, ternary, int4, int8) times int8 activations with int32
 * accumulation, on the CPU. Scalar C is the reference; AVX2, AVX-512 (with and without
 * VNNI) and NEON (with and without SDOT) versions are picked at run time, and every one
 * of them can be asked for by name so that tests run them all.
 *
 * Conventions
 *  - Matrices are row-major. Weights are [M, K] (M output channels, K inputs);
 *    activations are [N, K] (N tokens). A matmul writes Y[N, M] = X * W^T.
 *  - No function allocates. Where scratch memory is needed the caller passes it; the
 *    matching *_size function says how much.
 *  - Every function that can fail returns a lowbit_status and leaves its outputs
 *    unspecified on failure. Non-finite input (NaN, +-Inf) is refused with
 *    LOWBIT_ERR_NONFINITE, never quantized into garbage.
 *  - K is at most LOWBIT_MAX_K, so that every int32 accumulation is exact
 *    (255 * 128 * 65536 < 2^31).
 *
 * Packed weight layout (one layout for every ISA)
 *  Rows are grouped into panels of 16 (LOWBIT_PANEL_ROWS); the last panel is padded
 *  with zero codes. K is padded to a multiple of 32 (lowbit_padded_k). A panel is a
 *  sequence of 64-byte chunks along K; a chunk holds 16 rows x chunk_k columns,
 *  chunk_k = 32 / bits. Inside a chunk, byte b (0..63) belongs to row b / 4 and
 *  column offset (b % 4); its 8 / bits bit-fields ("planes") hold the codes of the
 *  columns 4 * plane + (b % 4), lowest bits first:
 *
 *      chunk (64 bytes)  byte:  0  1  2  3 |  4  5  6  7 | ... | 60 61 62 63
 *                        row:   0  0  0  0 |  1  1  1  1 | ... | 15 15 15 15
 *      plane p of byte b  ->  column 4p + b%4 of the chunk
 *
 *  So shifting a loaded chunk right by p*bits and masking yields, in register order,
 *  16 rows x 4 consecutive columns: exactly the operand of a 4-way byte dot product
 *  (x86 vpdpbusd / vpmaddubsw, ARM sdot) against 4 activation bytes broadcast to every
 *  lane. Any vector width reads a prefix of rows: 16 bytes = 4 rows, 32 = 8, 64 = 16.
 *
 *  Codes are unsigned: value = step * code - zero_point (see lowbit_format_traits):
 *      binary  {-1,+1}      code {0,1}     value = 2*code - 1
 *      ternary {-1,0,+1}    code {0,1,2}   value = code - 1
 *      int4    [-8, 7]      code 0..15     value = code - 8
 *      int8    [-128, 127]  code 0..255    value = code - 128
 *  so the unsigned-times-signed dot product needs one correction per token,
 *  zero_point * sum(x), computed once per token and group rather than per weight.
 */
#ifndef LOWBIT_H
#define LOWBIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOWBIT_PANEL_ROWS 16
#define LOWBIT_CHUNK_BYTES 64
#define LOWBIT_K_ALIGN 32
#define LOWBIT_MAX_K 65536
/** Tokens one microkernel call handles at most (AVX-512: 2 panels x 12 tokens = 24 of the 32
 *  vector registers as accumulators). */
#define LOWBIT_MAX_NR 12
/** Panels one microkernel call handles at most. */
#define LOWBIT_MAX_NP 2

typedef enum lowbit_status {
    LOWBIT_OK = 0,
    LOWBIT_ERR_NONFINITE = 1,      /* NaN or infinity in a float input */
    LOWBIT_ERR_SHAPE = 2,          /* a size is zero, negative, too large or inconsistent */
    LOWBIT_ERR_ARGUMENT = 3,       /* a value out of its domain (e.g. a code out of range) */
    LOWBIT_ERR_UNSUPPORTED_ISA = 4 /* the CPU (or this build) cannot run the ISA asked for */
} lowbit_status;

/** A readable name for a status ("ok", "non-finite input", ...). */
const char *lowbit_status_string(lowbit_status status);

typedef enum lowbit_isa {
    LOWBIT_ISA_SCALAR = 0,
    LOWBIT_ISA_AVX2,        /* AVX2 + FMA: vpmaddubsw */
    LOWBIT_ISA_AVX512,      /* AVX-512 F/BW/VL without VNNI: vpmaddubsw on zmm */
    LOWBIT_ISA_AVX512VNNI,  /* AVX-512 with VNNI: vpdpbusd */
    LOWBIT_ISA_NEON,        /* aarch64 Advanced SIMD: widening multiplies */
    LOWBIT_ISA_NEONDOT,     /* aarch64 with the dot-product extension: sdot */
    LOWBIT_ISA_COUNT
} lowbit_isa;

/** "scalar", "avx2", "avx512", "avx512vnni", "neon", "neondot". */
const char *lowbit_isa_name(lowbit_isa isa);
/** The ISA called `name`, or LOWBIT_ISA_COUNT if there is none. */
lowbit_isa lowbit_isa_from_name(const char *name);
/** 1 if this build has code for `isa` and this CPU can run it. */
int lowbit_isa_supported(lowbit_isa isa);
/** The fastest supported ISA. */
lowbit_isa lowbit_isa_best(void);
/** CPU features seen at run time, as a space-separated list ("avx2 fma avx512f ..."). */
const char *lowbit_cpu_features(void);

typedef enum lowbit_format {
    LOWBIT_FORMAT_BINARY = 0,
    LOWBIT_FORMAT_TERNARY,
    LOWBIT_FORMAT_INT4,
    LOWBIT_FORMAT_INT8,
    LOWBIT_FORMAT_COUNT
} lowbit_format;

/** Everything that differs between formats, in one place. */
typedef struct lowbit_format_traits {
    const char *name;  /* "binary", "ternary", "int4", "int8" */
    int bits;          /* bits per stored code: 1, 2, 4, 8 */
    int qmin, qmax;    /* range of the signed values */
    int step;          /* value = step * code - zero_point */
    int zero_point;
    int chunk_k;       /* columns per 64-byte chunk: 32 / bits */
} lowbit_format_traits;

/** Traits of `format`, or NULL if it is not a format. */
const lowbit_format_traits *lowbit_format_get(lowbit_format format);

/** K rounded up to LOWBIT_K_ALIGN: the row stride that activations must have. */
int64_t lowbit_padded_k(int64_t k);
/** Bytes of packed weights for an [m, k] matrix in `format`. */
size_t lowbit_packed_size(lowbit_format format, int64_t m, int64_t k);

/** Which kernels run, and on how many threads. Plain data: copy it freely. */
typedef struct lowbit_context {
    lowbit_isa isa;
    int threads;         /* >= 1 */
    const void *table;   /* the ISA's kernel table (internal) */
} lowbit_context;

/**
 * Fill `ctx` for `isa` and `threads` (0 = one per online CPU). Fails with
 * LOWBIT_ERR_UNSUPPORTED_ISA if the CPU cannot run `isa`.
 */
lowbit_status lowbit_context_init(lowbit_context *ctx, lowbit_isa isa, int threads);
/**
 * Makes glibc's malloc keep freed memory (blocks up to 32 MB, and up to 256 MB at the top of
 * the heap) instead of returning it to the OS on every free: the model's per-pass buffers
 * then come back without page faults. Process-wide; returns 1 if set (glibc), else 0.
 */
int lowbit_retain_freed_memory(void);
/**
 * This machine's limits (lowbit bench peak): lowbit_peak_int8 runs `iterations` rounds of 12
 * independent int8 dot-product accumulations in the instructions of `isa`'s matmul kernels
 * (vpdpbusd; or vpmaddubsw, vpmaddwd, vpaddd), lowbit_peak_fp32 of 12 independent FMAs, and
 * lowbit_read_bytes reads `bytes` of `buffer` `passes` times. Each returns the operations or
 * bytes done (time the call), or 0 where this build or CPU lacks the ISA (and on aarch64).
 */
int64_t lowbit_peak_int8(lowbit_isa isa, int64_t iterations);
int64_t lowbit_peak_fp32(lowbit_isa isa, int64_t iterations);
int64_t lowbit_read_bytes(const void *buffer, int64_t bytes, int64_t passes);
/** The number of online CPUs. */
int lowbit_cpu_count(void);
/** 1 if a parallel runtime (OpenMP) is linked, else 0 and everything runs serially. */
int lowbit_threading_available(void);

/** The kernels every ISA provides (the one list in lowbit_kernels.def). */
int lowbit_kernel_count(void);
const char *lowbit_kernel_name(int index);
/** The ISA whose code runs kernel `index` in `ctx` (an ISA may leave a kernel to a lower one). */
lowbit_isa lowbit_kernel_isa(const lowbit_context *ctx, int index);

/* ---------------------------------------------------------------- quantize
 * Weights [rows, cols] are quantized per scope: `group` = 0 means one scope for the
 * whole tensor (one scale), otherwise each row is cut into ceil(cols / group) scopes
 * of `group` columns (the last may be shorter) with one scale each, stored
 * [rows][groups]; group = cols is per row. q receives the signed values.
 * Sums behind a mean are taken in a fixed order (blocks of 64 summed four by four into 16
 * float partials, added to 16 double partials every 1024 elements, then a pairwise tree),
 * so every ISA returns the same bits. Weights so large (|w| near FLT_MAX) that a float
 * partial (64 elements) overflows are refused as non-finite.
 */

/** Binary: q = +1 where w >= mean(w) else -1 (sign(w - mean), with sign(0) = +1); scale = mean|w|. */
lowbit_status lowbit_quantize_sign(const lowbit_context *ctx, const float *w, int64_t rows,
                                   int64_t cols, int64_t group, int8_t *q, float *scales);

/** Ternary: scale = mean|w|; q = clamp(rint(w * (1/scale)), -1, 1); a zero scope gives q = 0. */
lowbit_status lowbit_quantize_ternary(const lowbit_context *ctx, const float *w, int64_t rows,
                                      int64_t cols, int64_t group, int8_t *q, float *scales);

/**
 * Symmetric absmax: scale = absmax / bound; q = clamp(rint(w * (bound / absmax)), -qmax, qmax),
 * rounding half to even. bound = qmax (127 as in BitNet) or qmax + 0.5 (as in Qwix).
 * A zero scope has scale 0 and q = 0. 1 <= qmax <= 127, bound > 0.
 */
lowbit_status lowbit_quantize_absmax(const lowbit_context *ctx, const float *w, int64_t rows,
                                     int64_t cols, int64_t group, int qmax, float bound, int8_t *q,
                                     float *scales);

/**
 * Activations: int8 absmax per token (row), bound = qmax = 127. Writes q with row
 * stride ldq >= k and zeros in columns k..ldq-1, so ldq = lowbit_padded_k(k) gives
 * the operand the matmuls want.
 */
lowbit_status lowbit_quantize_activations(const lowbit_context *ctx, const float *x, int64_t n,
                                          int64_t k, int8_t *q, int64_t ldq, float *scales);

/* ---------------------------------------------------------------- pack */

/** Packs signed values q [m, k] (in the format's range) into `out` (lowbit_packed_size bytes). */
lowbit_status lowbit_pack(lowbit_format format, const int8_t *q, int64_t m, int64_t k, uint8_t *out);
/** The inverse of lowbit_pack. */
lowbit_status lowbit_unpack(lowbit_format format, const uint8_t *packed, int64_t m, int64_t k, int8_t *q);

/** Packed weights as the matmuls read them. The memory belongs to the caller. */
typedef struct lowbit_packed_weights {
    lowbit_format format;
    int64_t m, k;
    int64_t group;          /* scale group along k: 0 or >= k = one scale per row */
    const uint8_t *data;    /* lowbit_packed_size(format, m, k) bytes */
    const float *scales;    /* [m][ceil(k / group)] (one per row when group is 0 or >= k) */
} lowbit_packed_weights;

/* ---------------------------------------------------------------- matmul
 * x is symmetric int8 [n, k], values in [-127, 127] as lowbit_quantize_activations writes
 * them, with row stride ldx >= lowbit_padded_k(k) and zeros in the padding. Other x
 * (a -128, a non-zero pad) is refused with LOWBIT_ERR_ARGUMENT.
 */

/** y[i, j] = sum_k x[i, k] * value(w)[j, k], exact, int32; ldy >= m. Scales are not used. */
lowbit_status lowbit_matmul_s32(const lowbit_context *ctx, const lowbit_packed_weights *w,
                                const int8_t *x, int64_t n, int64_t ldx, int32_t *y, int64_t ldy);

/**
 * Fused dequantize: y[i, j] = sum over groups g of (float)dot_g(i, j) * (x_scales[i] * w.scales[j, g])
 * + bias[j] (bias may be NULL). Groups of w must be a multiple of the format's chunk_k.
 */
lowbit_status lowbit_matmul_f32(const lowbit_context *ctx, const lowbit_packed_weights *w,
                                const int8_t *x, int64_t n, int64_t ldx, const float *x_scales,
                                const float *bias, float *y, int64_t ldy);

/**
 * What lowbit_matmul_f32_epilogue applies to each token's row of the fused dequantize's
 * result r (bias included) while it is still in cache: y = act(r) + residual, act the SiLU
 * (lowbit_silu_forward's bits) when `silu` is non-zero, else the identity; residual
 * [n, m] with row stride ldr >= m, or NULL. The results are bit for bit those of the
 * separate passes (a SiLU pass, then residual + y), which read and write the whole output
 * again: a transformer block's FFN up projection (SiLU) and its two residual sums.
 */
typedef struct lowbit_epilogue {
    int silu;
    const float *residual;
    int64_t ldr;
} lowbit_epilogue;

/** lowbit_matmul_f32, then `epilogue` (NULL: none). residual may not overlap y. */
lowbit_status lowbit_matmul_f32_epilogue(const lowbit_context *ctx, const lowbit_packed_weights *w,
                                         const int8_t *x, int64_t n, int64_t ldx, const float *x_scales,
                                         const float *bias, const lowbit_epilogue *epilogue, float *y,
                                         int64_t ldy);

/**
 * lowbit_matmul_f32_epilogue whose result r [n, m] is not written but quantized per token as
 * lowbit_quantize_activations(r, n, m, q, ldq, q_scales) quantizes it: the int8 operand of the
 * next matmul, with zeros in columns m..ldq-1, bit for bit the two calls'. The float rows live
 * only in `workspace`, a tile of tokens per thread at a time (a transformer block's FFN up
 * projection: SiLU, then its int8 rows for the down projection, without writing and reading
 * back the float hidden layer, four times the block's width). LOWBIT_ERR_NONFINITE if a row of
 * r is not finite, as the quantizer would say.
 */
lowbit_status lowbit_matmul_quantized(const lowbit_context *ctx, const lowbit_packed_weights *w,
                                      const int8_t *x, int64_t n, int64_t ldx, const float *x_scales,
                                      const float *bias, const lowbit_epilogue *epilogue, int8_t *q,
                                      int64_t ldq, float *q_scales, void *workspace);
/** Scratch bytes lowbit_matmul_quantized needs for w and n tokens on ctx's threads: a tile's rows
 *  per thread, or the whole float output when w is too large for a tile to hold all its rows. */
size_t lowbit_matmul_quantized_workspace_size(const lowbit_context *ctx, const lowbit_packed_weights *w, int64_t n);

/** Scratch bytes lowbit_linear_f32 needs for n tokens of length k. */
size_t lowbit_linear_workspace_size(int64_t n, int64_t k);
/** Quantizes float activations x [n, k] per token, then lowbit_matmul_f32. */
lowbit_status lowbit_linear_f32(const lowbit_context *ctx, const lowbit_packed_weights *w,
                                const float *x, int64_t n, const float *bias, float *y,
                                void *workspace);

/** Scratch bytes lowbit_gemm_s8 needs. */
size_t lowbit_gemm_s8_workspace_size(int64_t m, int64_t n, int64_t k);
/**
 * General int8 GEMM, int32 result: C[m, n] = op(A)[m, k] * op(B)[k, n], where op(A) = A or
 * A^T (A stored [k, m]) when trans_a is set, and likewise for B. Row-major, leading
 * dimensions lda, ldb, ldc. B takes the full int8 range; A, the activation side, is
 * symmetric: [-127, 127], and a -128 in A is refused with LOWBIT_ERR_ARGUMENT.
 */
lowbit_status lowbit_gemm_s8(const lowbit_context *ctx, int trans_a, int trans_b, int64_t m,
                             int64_t n, int64_t k, const int8_t *a, int64_t lda, const int8_t *b,
                             int64_t ldb, int32_t *c, int64_t ldc, void *workspace);

/** Scratch bytes lowbit_gemm_s8_f32 needs. */
size_t lowbit_gemm_s8_f32_workspace_size(int64_t m, int64_t n, int64_t k);
/**
 * lowbit_gemm_s8 with each row of the int32 result scaled into float in the same pass:
 * C[i, j] = (float)sum * a_scales[i] (a_scales: m finite values, else LOWBIT_ERR_NONFINITE).
 * For the int8 backward, whose products are dequantized per row at once: it saves writing
 * and reading the int32 result.
 */
lowbit_status lowbit_gemm_s8_f32(const lowbit_context *ctx, int trans_a, int trans_b, int64_t m,
                                 int64_t n, int64_t k, const int8_t *a, int64_t lda,
                                 const float *a_scales, const int8_t *b, int64_t ldb, float *c,
                                 int64_t ldc, void *workspace);

/** out[r] = max |x[r, c]| over the row, for rows of cols floats; LOWBIT_ERR_NONFINITE for NaN or infinity. */
lowbit_status lowbit_absmax_rows(const lowbit_context *ctx, const float *x, int64_t rows, int64_t cols, float *out);

/**
 * Int8 absmax per row with stochastic rounding, for gradients: scale = absmax / 127 and
 * q = clamp(floor(x * (127 / absmax) + u), -127, 127), u uniform in [0, 1) from SplitMix64
 * seeded with `seed`, one draw per value of each non-zero row in row order (the sequence of
 * LowBit's Swift SeededGenerator); a zero row gives zeros. Rows of q are ldq apart, the
 * padding past cols zeroed. Fails with LOWBIT_ERR_NONFINITE for NaN or infinity in x.
 */
lowbit_status lowbit_quantize_stochastic(const lowbit_context *ctx, const float *x, int64_t rows, int64_t cols,
                                         uint64_t seed, int8_t *q, int64_t ldq, float *scales);

/**
 * lowbit_quantize_stochastic of the [m, n] transpose of x [n, m] with row i scaled by s[i]
 * (lowbit_transpose_scaled's output), bit for bit, without that transpose in memory: q has
 * m rows of n codes, ldq apart, one scale per row (a column of x). QT's weight gradient
 * quantizes its output gradient so, per output channel.
 */
lowbit_status lowbit_quantize_stochastic_transposed(const lowbit_context *ctx, const float *x, int64_t n, int64_t m,
                                                    const float *s, uint64_t seed, int8_t *q, int64_t ldq,
                                                    float *scales);

/* ---------------------------------------------------------------- float layers
 * The model's passes besides its matmuls, on the ISA's float kernels (whose contracts are in
 * lowbit_kernels.def): every ISA gives the same bits, and so does every thread count (the
 * work splits by rows, or by sequence and head, never inside a sum). All float inputs must be
 * finite; these do not check (the callers' inputs come out of checked layers).
 */

/** Layer norm of n rows of d: y = (x - mean) / sqrt(var + eps) * gamma + beta per row, with
 *  xhat (NULL: not kept) the normalized rows and rstd[n] the reciprocal deviations. */
lowbit_status lowbit_layernorm_forward(const lowbit_context *ctx, const float *x, int64_t n, int64_t d,
                                       const float *gamma, const float *beta, float eps, float *y,
                                       float *xhat, float *rstd);

/** a = u * sigmoid(u), n values. */
lowbit_status lowbit_silu_forward(const lowbit_context *ctx, const float *u, int64_t n, float *a);
/** g *= silu'(u), n values: the gradient of the SiLU's output becomes its input's. */
lowbit_status lowbit_silu_backward(const lowbit_context *ctx, const float *u, int64_t n, float *g);

/** The constants of one AdamW step: Adam's decay rates, step size and epsilon, this parameter's
 *  decoupled weight decay (0 for one that does not decay), and the bias corrections
 *  c1 = 1 - beta1^t and c2 = 1 - beta2^t of step t. */
typedef struct lowbit_adamw_step {
    float beta1, beta2, learning_rate, epsilon, decay, c1, c2;
} lowbit_adamw_step;

/**
 * One AdamW update of n parameters w from their gradients g, with their first and second
 * moments m and v updated in place (the formula is the adamw contract of lowbit_kernels.def).
 * Element by element, so every ISA and thread count gives the same bits.
 */
lowbit_status lowbit_adamw_update(const lowbit_context *ctx, float *w, float *m, float *v, const float *g, int64_t n,
                                  const lowbit_adamw_step *h);

/** out[j * n + i] = x[i * m + j] * s[i]: x [n, m] with row i scaled by s[i], transposed to
 *  [m, n]; exact products, so every ISA and thread count gives the same bits. */
lowbit_status lowbit_transpose_scaled(const lowbit_context *ctx, const float *x, int64_t n, int64_t m, const float *s,
                                      float *out);

/** Scratch bytes either attention pass needs for `batch` sequences of `steps` rows of `hidden` in `heads` heads (as many floats as the rows plus a row of scores per sequence and head). */
size_t lowbit_attention_workspace_size(int64_t batch, int64_t steps, int64_t hidden, int64_t heads);

/**
 * Causal self-attention over qkv [batch * steps, 3 * hidden] (each row Q, K, V side by side;
 * head h owns columns h*hd..(h+1)*hd of each, hd = hidden / heads): for each sequence b, head
 * h and step i, p = softmax(scale * (q_i . k_j) for j <= min(i, lengths[b] - 1)), and
 * att[b, i, head h] = sum_j p_j v_j (in order of j, each an fma). probs (NULL: not kept)
 * receives p as [batch, heads, steps, steps], zero past the visible keys. lengths in 1..steps.
 */
lowbit_status lowbit_attention_forward(const lowbit_context *ctx, const float *qkv, int64_t batch, int64_t steps,
                                       int64_t hidden, int64_t heads, const int64_t *lengths, float scale,
                                       float *att, float *probs, void *workspace);

/**
 * Row lengths[b] - 1 of lowbit_attention_forward's att for each sequence b, into att [batch,
 * hidden], bit for bit: what a model that keeps each sequence's last real step needs of its
 * last block (every key and value, one query per sequence). probs (NULL: not kept) receives
 * those rows' p as [batch, heads, steps]. The same workspace.
 */
lowbit_status lowbit_attention_forward_last(const lowbit_context *ctx, const float *qkv, int64_t batch, int64_t steps,
                                            int64_t hidden, int64_t heads, const int64_t *lengths, float scale, float *att,
                                            float *probs, void *workspace);

/**
 * The gradient of lowbit_attention_forward: from the forward's qkv and probs and datt (the
 * gradient of att), writes dqkv [batch * steps, 3 * hidden]:
 * dv_j += p_ij do_i; ds_ij = p_ij (do_i . v_j - sum_j' p_ij' do_i . v_j') scale;
 * dk_j += ds_ij q_i, for each i in order, then j in order; dq_i = sum_j ds_ij k_j.
 */
lowbit_status lowbit_attention_backward(const lowbit_context *ctx, const float *qkv, const float *probs,
                                        const float *datt, int64_t batch, int64_t steps, int64_t hidden,
                                        int64_t heads, const int64_t *lengths, float scale, float *dqkv,
                                        void *workspace);

/**
 * The gradient of lowbit_attention_forward_last: from qkv, its probs [batch, heads, steps] and
 * datt [batch, hidden], all of dqkv [batch * steps, 3 * hidden], bit for bit what
 * lowbit_attention_backward gives with the full pass's probs and a datt that is zero but at
 * each sequence's last real step. The same workspace.
 */
lowbit_status lowbit_attention_backward_last(const lowbit_context *ctx, const float *qkv, const float *probs,
                                             const float *datt, int64_t batch, int64_t steps, int64_t hidden,
                                             int64_t heads, const int64_t *lengths, float scale, float *dqkv,
                                             void *workspace);

#ifdef __cplusplus
}
#endif
#endif /* LOWBIT_H */
