// Open MPI (Debian: libopenmpi-dev, pkg-config `ompi-c`) for multi-worker training.
//
// Open MPI's predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, ...) are macros that
// cast the addresses of library globals, which Swift cannot import: these accessors return them.
#ifndef CDESCENT_MPI_SHIM_H
#define CDESCENT_MPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm descent_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype descent_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype descent_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype descent_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype descent_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype descent_mpi_int(void) { return MPI_INT; }
static inline MPI_Op descent_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op descent_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op descent_mpi_min(void) { return MPI_MIN; }
static inline void *descent_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler descent_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
#endif
