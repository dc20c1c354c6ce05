/* The adamw contract (lowbit_kernels.def) written once over clang's vector extensions, LANES
 * floats at a time; each ISA's layer-kernel file expands it under its own target attribute
 * (and `fp contract(off)`, so that nothing is fused), and the compiler emits that ISA's
 * vdivps and vsqrtps. The last n % LANES parameters go to the scalar twin, which performs the
 * same operations, so every width gives the same bits. */
#define LOWBIT_DEFINE_ADAMW(NAME, LANES)                                                                   \
    static void NAME(float *restrict w, float *restrict m, float *restrict v, const float *restrict g,     \
                     int64_t n, const lowbit_adamw_step *restrict h) {                                     \
        typedef float lanes __attribute__((ext_vector_type(LANES)));                                       \
        const float b1 = h->beta1, b2 = h->beta2, a1 = 1.0f - b1, a2 = 1.0f - b2;                          \
        int64_t i = 0;                                                                                     \
        for (; i + (LANES) <= n; i += (LANES)) {                                                           \
            lanes gi, wi, mi, vi;                                                                          \
            __builtin_memcpy(&gi, g + i, sizeof gi), __builtin_memcpy(&wi, w + i, sizeof wi);              \
            __builtin_memcpy(&mi, m + i, sizeof mi), __builtin_memcpy(&vi, v + i, sizeof vi);              \
            mi = b1 * mi + a1 * gi;                                                                        \
            vi = b2 * vi + (a2 * gi) * gi;                                                                 \
            const lanes s = (mi / h->c1) / (__builtin_elementwise_sqrt(vi / h->c2) + h->epsilon) + h->decay * wi; \
            wi = wi - h->learning_rate * s;                                                                \
            __builtin_memcpy(m + i, &mi, sizeof mi), __builtin_memcpy(v + i, &vi, sizeof vi);              \
            __builtin_memcpy(w + i, &wi, sizeof wi);                                                       \
        }                                                                                                  \
        if (i < n) lowbit_adamw_scalar(w + i, m + i, v + i, g + i, n - i, h);                              \
    }
