/* The allocator policy the kernels backend sets: the model's per-pass buffers are megabytes
 * each, which glibc's malloc would hand back to the OS on every free (by munmap, or by trimming
 * the heap) and fault back in as zeroed pages on the next pass: at the design's size that was
 * a third of a forward pass. Keeping freed memory in the process removes it. The trim threshold
 * is 1 GB: a training step of the design's model frees ~260 MB at once at its end, and at 256 MB
 * glibc trimmed that and faulted it back in at the next step (6 % of a QT step in clear_page). */
#include "lowbit.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int lowbit_retain_freed_memory(void) {
#if defined(__GLIBC__)
    /* 32 MB: glibc's largest mmap threshold on 64-bit; larger blocks still map and unmap */
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) && mallopt(M_TRIM_THRESHOLD, 1 << 30);
#else
    return 0;
#endif
}
