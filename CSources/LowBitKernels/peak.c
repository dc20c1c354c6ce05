/* This machine's limits, for `lowbit bench peak` and the roofline of `lowbit bench kernels`:
 * loops that keep 12 independent register accumulators busy with the instructions the
 * kernels' inner loops use (so latency never binds), and a streaming read. Each returns the
 * operations (or bytes) it did, 0 where this build or CPU lacks the ISA; the caller times it. */
#include "lowbit_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define CHAINS 12
#define WIDE_CHAINS 16

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static int64_t int8_vnni(int64_t iterations, int32_t *sink) {
    __m512i a[CHAINS];
    for (int c = 0; c < CHAINS; c++) a[c] = _mm512_set1_epi32(c);
    const __m512i x = _mm512_set1_epi8(1), w = _mm512_set1_epi8(3);
    for (int64_t i = 0; i < iterations; i++)
        for (int c = 0; c < CHAINS; c++) a[c] = _mm512_dpbusd_epi32(a[c], x, w);
    __m512i s = a[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_xor_si512(s, a[c]);
    *sink = _mm512_reduce_add_epi32(s);
    return iterations * CHAINS * 64 * 2;
}

/* maddubs (u8 x s8 pairs to s16), madd with ones (to s32), add: 64 multiply-adds per zmm */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static int64_t int8_avx512(int64_t iterations, int32_t *sink) {
    __m512i a[WIDE_CHAINS];
    for (int c = 0; c < WIDE_CHAINS; c++) a[c] = _mm512_set1_epi32(c);
    const __m512i w = _mm512_set1_epi8(3), ones = _mm512_set1_epi16(1);
    /* each chain feeds its own accumulator's bytes to the multiply (distinct, not hoistable);
     * 16 chains cover the three instructions' latency */
    for (int64_t i = 0; i < iterations; i++)
        for (int c = 0; c < WIDE_CHAINS; c++) a[c] = _mm512_add_epi32(a[c], _mm512_madd_epi16(_mm512_maddubs_epi16(a[c], w), ones));
    __m512i s = a[0];
    for (int c = 1; c < WIDE_CHAINS; c++) s = _mm512_xor_si512(s, a[c]);
    *sink = _mm512_reduce_add_epi32(s);
    return iterations * WIDE_CHAINS * 64 * 2;
}

__attribute__((target("avx2,fma"))) static int64_t int8_avx2(int64_t iterations, int32_t *sink) {
    __m256i a[WIDE_CHAINS];
    for (int c = 0; c < WIDE_CHAINS; c++) a[c] = _mm256_set1_epi32(c);
    const __m256i w = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    /* each chain feeds its own accumulator's bytes to the multiply (distinct, not hoistable);
     * 16 chains cover the three instructions' latency */
    for (int64_t i = 0; i < iterations; i++)
        for (int c = 0; c < WIDE_CHAINS; c++) a[c] = _mm256_add_epi32(a[c], _mm256_madd_epi16(_mm256_maddubs_epi16(a[c], w), ones));
    __m256i s = a[0];
    for (int c = 1; c < WIDE_CHAINS; c++) s = _mm256_xor_si256(s, a[c]);
    *sink = _mm256_extract_epi32(s, 0) ^ _mm256_extract_epi32(s, 7);
    return iterations * WIDE_CHAINS * 32 * 2;
}

__attribute__((target("avx512f"))) static int64_t fp32_avx512(int64_t iterations, float *sink) {
    __m512 a[CHAINS];
    for (int c = 0; c < CHAINS; c++) a[c] = _mm512_set1_ps((float)c);
    const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-3f);
    for (int64_t i = 0; i < iterations; i++)
        for (int c = 0; c < CHAINS; c++) a[c] = _mm512_fmadd_ps(a[c], x, y);
    __m512 s = a[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, a[c]);
    *sink = _mm512_reduce_add_ps(s);
    return iterations * CHAINS * 16 * 2;
}

__attribute__((target("avx2,fma"))) static int64_t fp32_avx2(int64_t iterations, float *sink) {
    __m256 a[CHAINS];
    for (int c = 0; c < CHAINS; c++) a[c] = _mm256_set1_ps((float)c);
    const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-3f);
    for (int64_t i = 0; i < iterations; i++)
        for (int c = 0; c < CHAINS; c++) a[c] = _mm256_fmadd_ps(a[c], x, y);
    __m256 s = a[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_ps(s, a[c]);
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    *sink = lanes[0] + lanes[7];
    return iterations * CHAINS * 8 * 2;
}

__attribute__((target("avx2"))) static int64_t read_avx2(const uint8_t *p, int64_t bytes, int64_t passes, int64_t *sink) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const int64_t n = bytes / 128 * 128;
    for (int64_t pass = 0; pass < passes; pass++)
        for (int64_t i = 0; i < n; i += 128) {
            a0 = _mm256_add_epi64(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
            a1 = _mm256_add_epi64(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
            a2 = _mm256_add_epi64(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
            a3 = _mm256_add_epi64(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
        }
    const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    *sink = _mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 3);
    return n * passes;
}
#endif

static volatile int64_t peak_sink;

int64_t lowbit_peak_int8(lowbit_isa isa, int64_t iterations) {
    if (!lowbit_isa_supported(isa) || iterations <= 0) return 0;
    int32_t s = 0;
    int64_t ops = 0;
#if defined(__x86_64__)
    switch (isa) {
    case LOWBIT_ISA_AVX512VNNI: ops = int8_vnni(iterations, &s); break;
    case LOWBIT_ISA_AVX512: ops = int8_avx512(iterations, &s); break;
    case LOWBIT_ISA_AVX2: ops = int8_avx2(iterations, &s); break;
    default: break;
    }
#endif
    peak_sink = s;
    return ops;
}

int64_t lowbit_peak_fp32(lowbit_isa isa, int64_t iterations) {
    if (!lowbit_isa_supported(isa) || iterations <= 0) return 0;
    float s = 0;
    int64_t ops = 0;
#if defined(__x86_64__)
    switch (isa) {
    case LOWBIT_ISA_AVX512VNNI:
    case LOWBIT_ISA_AVX512: ops = fp32_avx512(iterations, &s); break;
    case LOWBIT_ISA_AVX2: ops = fp32_avx2(iterations, &s); break;
    default: break;
    }
#endif
    peak_sink = (int64_t)s;
    return ops;
}

int64_t lowbit_read_bytes(const void *buffer, int64_t bytes, int64_t passes) {
    if (!buffer || bytes < 128 || passes <= 0) return 0;
    int64_t s = 0, done = 0;
#if defined(__x86_64__)
    if (lowbit_isa_supported(LOWBIT_ISA_AVX2)) done = read_avx2(buffer, bytes, passes, &s);
#endif
    if (!done) { /* 64-bit loads */
        const uint64_t *p = buffer;
        const int64_t n = bytes / 8;
        uint64_t a = 0, b = 0;
        for (int64_t pass = 0; pass < passes; pass++)
            for (int64_t i = 0; i + 1 < n; i += 2) a += p[i], b += p[i + 1];
        s = (int64_t)(a + b);
        done = n / 2 * 16 * passes;
    }
    peak_sink = s;
    return done;
}
