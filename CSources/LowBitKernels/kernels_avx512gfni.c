/* AVX-512 VNNI with GFNI: the 1-, 2- and 4-bit dot kernels decode a plane of codes with one
 * gf2p8affineqb instead of a shift and a mask (see kernels_avx512_dot.h). Not an ISA of its
 * own: the avx512vnni table takes these kernels where the CPU has GFNI (Ice Lake and later,
 * Zen 4), and keeps its own elsewhere (Cascade Lake); lowbit_table_build can leave them out
 * so that tests run both. */
#include "lowbit_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,gfni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,gfni")
#endif

#define LOWBIT_DOT_SUFFIX _avx512gfni
#define LOWBIT_DOT_VNNI 1
#define LOWBIT_DOT_GFNI 1
#include "kernels_avx512_dot.h"

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

void lowbit_table_init_avx512gfni(lowbit_kernel_table *t) {
#define SET(name)                 \
    t->name = name##_avx512gfni;  \
    t->name##_isa = LOWBIT_ISA_AVX512VNNI;
    SET(dot_b1) SET(dot_b2) SET(dot_b4)
#if LOWBIT_DOT_ASM
    SET(dot_wide)
#endif
#undef SET
    (void)dot_b8_avx512gfni; /* no planes to decode: the avx512vnni one is the same code */
}
#endif
