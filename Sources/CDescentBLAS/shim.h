#ifndef CDESCENT_BLAS_SHIM_H
#define CDESCENT_BLAS_SHIM_H
// OpenBLAS' CBLAS interface (Debian: libopenblas-dev). Declares cblas_sgemm/cblas_dgemm and
// openblas_set_num_threads/openblas_get_num_threads.
#include <cblas.h>
#endif
