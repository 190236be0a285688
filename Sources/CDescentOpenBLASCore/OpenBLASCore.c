// OpenBLAS kernels for CPUs that the installed OpenBLAS does not know.
//
// Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels from the CPU's family and model. A model it
// does not list (here: Xeon family 6 model 207, Emerald Rapids, in a KVM guest) falls back to "Prescott",
// its SSE3 kernels: a 1024×1024 SGEMM took 53 ms there (40 GFLOP/s) against 9.7 ms with the SkylakeX
// kernels (222 GFLOP/s) on the same 2 cores. Newer OpenBLAS releases choose by CPUID features instead;
// this does the same for the old ones, once, before any Swift code runs:
//
// - only when OpenBLAS chose Prescott and the user did not set OPENBLAS_CORETYPE (which OpenBLAS itself
//   honours), and only with OpenBLAS' dynamic-arch entry points present (weak symbols: a single-arch
//   OpenBLAS is left alone);
// - the core follows the CPUID features and the operating system's saved vector state (XGETBV), as
//   OpenBLAS' own feature checks do: AVX-512 F/DQ/CD/BW/VL with BF16 → COOPERLAKE, without BF16 →
//   SKYLAKEX, AVX2 with FMA → HASWELL, AVX → SANDYBRIDGE;
// - it stops OpenBLAS' worker threads (blas_thread_shutdown_, as OpenBLAS' fork handler does; the next
//   threaded product restarts them), sets OPENBLAS_CORETYPE for the moment of OpenBLAS'
//   re-initialisation (gotoblas_dynamic_quit, then gotoblas_dynamic_init, which reads it and initialises
//   the new core's parameters) and removes it again.
//
// A constructor of this object file: shared libraries (OpenBLAS) are initialised before it, and it runs
// before `main`, while the process has no thread of its own but this one (OpenBLAS' workers are stopped
// before anything changes), so the environment is not changed under another thread. No product has run
// yet, and OpenBLAS' work buffers are of one size for every core.

#include "CDescentOpenBLASCore.h"

#include <cpuid.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char *openblas_get_corename(void) __attribute__((weak));
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));
extern int blas_thread_shutdown_(void) __attribute__((weak));

static const char *override_core = NULL;

const char *descent_openblas_core_override(void) { return override_core; }

const char *descent_openblas_core_for_cpu(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return NULL;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return NULL;
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    if ((xcr0_lo & 0x6) != 0x6) return NULL;  // the OS saves neither XMM nor YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return "SANDYBRIDGE";
    int avx2 = (b >> 5) & 1, f = (b >> 16) & 1, dq = (b >> 17) & 1, cd = (b >> 28) & 1;
    int bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    if (f && dq && cd && bw && vl && (xcr0_lo & 0xe6) == 0xe6) {  // opmask, ZMM upper halves, ZMM16-31
        unsigned a1, b1, c1, d1;
        int bf16 = __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1);
        return bf16 ? "COOPERLAKE" : "SKYLAKEX";
    }
    if (avx2 && fma) return "HASWELL";
    return "SANDYBRIDGE";
#else
    return NULL;
#endif
}

__attribute__((constructor)) static void descent_openblas_core_check(void) {
    if (!openblas_get_corename || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
    if (getenv("OPENBLAS_CORETYPE") != NULL) return;
    const char *chosen = openblas_get_corename();
    if (chosen == NULL || strcasecmp(chosen, "Prescott") != 0) return;
    const char *better = descent_openblas_core_for_cpu();
    if (better == NULL) return;
    // OpenBLAS' workers (started by its own constructor) initialise the kernel table themselves when
    // they find it empty (their first blas_memory_alloc), so they must not run between the quit and the
    // init: they are stopped first, as its fork handler stops them, and the first threaded product
    // starts them again. (Seen without this: a worker's init racing this one left the table empty and
    // the process crashed in gotoblas_dynamic_init, on a loaded machine.)
    if (blas_thread_shutdown_) blas_thread_shutdown_();
    setenv("OPENBLAS_CORETYPE", better, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
    override_core = better;
}
