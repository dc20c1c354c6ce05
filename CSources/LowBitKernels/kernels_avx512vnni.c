/* AVX-512 VNNI: only the dot kernels change (vpdpbusd); the rest comes from kernels_avx512.c. */
#include "lowbit_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
#endif

#define LOWBIT_DOT_SUFFIX _avx512vnni
#define LOWBIT_DOT_VNNI 1
#define LOWBIT_DOT_GFNI 0
#include "kernels_avx512_dot.h"

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

void lowbit_table_init_avx512vnni(lowbit_kernel_table *t) {
#define SET(name)                 \
    t->name = name##_avx512vnni;  \
    t->name##_isa = LOWBIT_ISA_AVX512VNNI;
    SET(dot_b1) SET(dot_b2) SET(dot_b4) SET(dot_b8)
#if LOWBIT_DOT_ASM
    SET(dot_wide)
#endif
#undef SET
}
#endif
