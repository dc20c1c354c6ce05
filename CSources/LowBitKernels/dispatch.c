/* Run-time ISA choice: CPU feature detection, one kernel table per ISA built once
 * (BLIS style: start from the scalar table, let each ISA override what it optimises). */
#include "lowbit_internal.h"
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

static const char *const isa_names[LOWBIT_ISA_COUNT] = {"scalar", "avx2", "avx512", "avx512vnni", "neon", "neondot"};

static lowbit_kernel_table tables[LOWBIT_ISA_COUNT];
static int supported[LOWBIT_ISA_COUNT];
static int has_gfni;
static char features[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void add_feature(const char *name, int present) {
    if (!present) return;
    size_t used = strlen(features);
    snprintf(features + used, sizeof features - used, "%s%s", used ? " " : "", name);
}

static void detect(void) {
    supported[LOWBIT_ISA_SCALAR] = 1;
#if defined(__x86_64__)
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    const int vnni = avx512 && __builtin_cpu_supports("avx512vnni");
    add_feature("avx2", __builtin_cpu_supports("avx2"));
    add_feature("fma", __builtin_cpu_supports("fma"));
    add_feature("avx512f", __builtin_cpu_supports("avx512f"));
    add_feature("avx512bw", __builtin_cpu_supports("avx512bw"));
    add_feature("avx512vl", __builtin_cpu_supports("avx512vl"));
    add_feature("avx512dq", __builtin_cpu_supports("avx512dq"));
    add_feature("avx512vnni", __builtin_cpu_supports("avx512vnni"));
    supported[LOWBIT_ISA_AVX2] = avx2;
    supported[LOWBIT_ISA_AVX512] = avx512;
    supported[LOWBIT_ISA_AVX512VNNI] = vnni;
    has_gfni = __builtin_cpu_supports("gfni");
    add_feature("gfni", has_gfni);
#elif defined(__aarch64__) && defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP);
    add_feature("asimd", (hw & HWCAP_ASIMD) != 0);
    add_feature("asimddp", (hw & HWCAP_ASIMDDP) != 0);
    supported[LOWBIT_ISA_NEON] = 1; /* Advanced SIMD is mandatory on aarch64 */
#if defined(__clang__)
    supported[LOWBIT_ISA_NEONDOT] = (hw & HWCAP_ASIMDDP) != 0;
#endif
#elif defined(__aarch64__)
    supported[LOWBIT_ISA_NEON] = 1;
#endif
    if (!features[0]) snprintf(features, sizeof features, "(none)");

    for (int i = 0; i < LOWBIT_ISA_COUNT; i++) lowbit_table_build(&tables[i], (lowbit_isa)i, has_gfni);
}

void lowbit_table_build(lowbit_kernel_table *t, lowbit_isa isa, int gfni) {
    lowbit_table_init_scalar(t);
#if defined(__x86_64__)
    if (isa == LOWBIT_ISA_AVX2) {
        lowbit_table_init_avx2(t);
        lowbit_table_init_layers_avx2(t);
    } else if (isa == LOWBIT_ISA_AVX512 || isa == LOWBIT_ISA_AVX512VNNI) {
        lowbit_table_init_avx512(t);
        if (isa == LOWBIT_ISA_AVX512VNNI) lowbit_table_init_avx512vnni(t);
        if (isa == LOWBIT_ISA_AVX512VNNI && gfni) lowbit_table_init_avx512gfni(t);
        lowbit_table_init_layers_avx2(t);
        lowbit_table_init_layers_avx512(t);
    }
#elif defined(__aarch64__)
    if (isa == LOWBIT_ISA_NEON) lowbit_table_init_neon(t);
#if defined(__clang__)
    if (isa == LOWBIT_ISA_NEONDOT) {
        lowbit_table_init_neon(t);
        lowbit_table_init_neondot(t);
    }
#endif
#endif
    (void)isa, (void)gfni;
}

static void ensure_detected(void) { pthread_once(&once, detect); }

const char *lowbit_isa_name(lowbit_isa isa) {
    return (unsigned)isa < LOWBIT_ISA_COUNT ? isa_names[isa] : "unknown";
}

lowbit_isa lowbit_isa_from_name(const char *name) {
    for (int i = 0; name && i < LOWBIT_ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0) return (lowbit_isa)i;
    return LOWBIT_ISA_COUNT;
}

int lowbit_cpu_has_gfni(void) {
    ensure_detected();
    return has_gfni;
}

int lowbit_isa_supported(lowbit_isa isa) {
    ensure_detected();
    return (unsigned)isa < LOWBIT_ISA_COUNT && supported[isa];
}

lowbit_isa lowbit_isa_best(void) {
    static const lowbit_isa order[] = {LOWBIT_ISA_AVX512VNNI, LOWBIT_ISA_AVX512, LOWBIT_ISA_AVX2,
                                       LOWBIT_ISA_NEONDOT, LOWBIT_ISA_NEON};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (lowbit_isa_supported(order[i])) return order[i];
    return LOWBIT_ISA_SCALAR;
}

const char *lowbit_cpu_features(void) {
    ensure_detected();
    return features;
}

int lowbit_cpu_count(void) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* glibc reads it from CPUID on x86; elsewhere (aarch64) it may say 0, and sysfs says it. */
static int64_t detect_l2_bytes(void) {
    const long n = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (n > 0) return n;
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index2/size", "r");
    long size = 0;
    char unit = 0;
    if (f) {
        if (fscanf(f, "%ld%c", &size, &unit) < 1) size = 0;
        fclose(f);
    }
    const int64_t bytes = unit == 'K' ? (int64_t)size << 10 : unit == 'M' ? (int64_t)size << 20 : size;
    return bytes > 0 ? bytes : 1 << 20;
}

int64_t lowbit_l2_bytes(void) {
    static int64_t bytes; /* 0 until detected; every thread detects the same value */
    int64_t b = __atomic_load_n(&bytes, __ATOMIC_RELAXED);
    if (!b) {
        b = detect_l2_bytes();
        __atomic_store_n(&bytes, b, __ATOMIC_RELAXED);
    }
    return b;
}

lowbit_status lowbit_context_init(lowbit_context *ctx, lowbit_isa isa, int threads) {
    if (!ctx || threads < 0) return LOWBIT_ERR_ARGUMENT;
    if (!lowbit_isa_supported(isa)) return LOWBIT_ERR_UNSUPPORTED_ISA;
    ctx->isa = isa;
    ctx->threads = threads == 0 ? lowbit_cpu_count() : threads;
    ctx->table = &tables[isa];
    return LOWBIT_OK;
}

static const char *const kernel_names[] = {
#define LOWBIT_KERNEL(name, ret, params) #name,
#include "lowbit_kernels.def"
#undef LOWBIT_KERNEL
};

int lowbit_kernel_count(void) { return (int)(sizeof kernel_names / sizeof kernel_names[0]); }

const char *lowbit_kernel_name(int index) {
    return index >= 0 && index < lowbit_kernel_count() ? kernel_names[index] : NULL;
}

lowbit_isa lowbit_kernel_isa(const lowbit_context *ctx, int index) {
    const lowbit_kernel_table *t = ctx->table;
    int i = 0;
#define LOWBIT_KERNEL(name, ret, params) \
    if (i++ == index) return t->name##_isa;
#include "lowbit_kernels.def"
#undef LOWBIT_KERNEL
    return LOWBIT_ISA_COUNT;
}

const char *lowbit_status_string(lowbit_status status) {
    switch (status) {
    case LOWBIT_OK: return "ok";
    case LOWBIT_ERR_NONFINITE: return "non-finite input (NaN or infinity)";
    case LOWBIT_ERR_SHAPE: return "invalid shape";
    case LOWBIT_ERR_ARGUMENT: return "invalid argument";
    case LOWBIT_ERR_UNSUPPORTED_ISA: return "ISA not supported on this CPU or build";
    }
    return "unknown status";
}
