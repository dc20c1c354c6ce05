// Open MPI's handles are macros over its globals, which Swift does not import: these
// functions hand them over.
#include <mpi.h>

static inline MPI_Comm lowbit_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype lowbit_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype lowbit_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op lowbit_mpi_sum(void) { return MPI_SUM; }
static inline void *lowbit_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Info lowbit_mpi_info_null(void) { return MPI_INFO_NULL; }
