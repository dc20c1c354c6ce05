/* Threads from the OpenMP runtime without compiling with -fopenmp: the package links
 * libomp (Debian's libomp-dev, as libomp5) and calls its GOMP_parallel entry point, the
 * same call a `#pragma omp parallel` compiles to. So a package that depends on LowBit by
 * version needs no unsafe flags. Work is split statically into contiguous ranges. */
#include "lowbit_internal.h"

#if defined(__linux__) && !defined(LOWBIT_NO_OPENMP)
#define LOWBIT_HAVE_OPENMP 1
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
#else
#define LOWBIT_HAVE_OPENMP 0
#endif

int lowbit_threading_available(void) { return LOWBIT_HAVE_OPENMP; }

#if LOWBIT_HAVE_OPENMP
typedef struct {
    lowbit_range_fn fn;
    void *arg;
    int64_t n;
} job;

static void run_share(void *p) {
    const job *j = p;
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = j->n * t / nt, end = j->n * (t + 1) / nt;
    if (begin < end) j->fn(j->arg, begin, end);
}
#endif

void lowbit_parallel_for(int threads, int64_t n, lowbit_range_fn fn, void *arg) {
    if (n <= 0) return;
#if LOWBIT_HAVE_OPENMP
    if (threads > 1 && n > 1) {
        job j = {fn, arg, n};
        GOMP_parallel(run_share, &j, (unsigned)(threads < n ? threads : n), 0);
        return;
    }
#endif
    (void)threads;
    fn(arg, 0, n);
}

int lowbit_threads_for_work(int threads, int64_t work, int64_t grain) {
    if (threads <= 1 || grain <= 0) return threads < 1 ? 1 : threads;
    const int64_t useful = work / grain;
    return useful < 1 ? 1 : useful < threads ? (int)useful : threads;
}
