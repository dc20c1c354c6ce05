// OpenBLAS's CBLAS interface (Debian's libopenblas-dev puts cblas.h on the default include
// path; that header also declares openblas_set_num_threads and openblas_get_config).
#include <cblas.h>
