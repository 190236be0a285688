#ifndef CDESCENT_OPENBLAS_CORE_H
#define CDESCENT_OPENBLAS_CORE_H
// Picks OpenBLAS' kernels when OpenBLAS does not know the CPU (see OpenBLASCore.c).

/// What the start-up check did: NULL when it left OpenBLAS' choice alone (OpenBLAS knows the CPU, the
/// user set OPENBLAS_CORETYPE, or the CPU has nothing better), else the core it chose instead of
/// OpenBLAS' fallback (for example "COOPERLAKE").
const char *descent_openblas_core_override(void);

/// The OpenBLAS core the start-up check would choose for this CPU from its CPUID features
/// ("COOPERLAKE", "SKYLAKEX", "HASWELL", "SANDYBRIDGE"), or NULL for a CPU without AVX.
const char *descent_openblas_core_for_cpu(void);
#endif
