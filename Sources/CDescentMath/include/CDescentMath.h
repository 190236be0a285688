#ifndef CDESCENT_MATH_H
#define CDESCENT_MATH_H
// Square roots that vectorize.
//
// On Linux, Swift's `Float.squareRoot()` lowers to `sqrtf` with C errno semantics, which blocks
// vectorization: every element becomes a scalar `sqrtss` plus a libm call. `__builtin_elementwise_sqrt`
// has no errno side effect, so these compile to packed `sqrtps`/`sqrtpd`. Clang's ext_vector_type
// vectors are imported by Swift as `SIMD16<Float>` / `SIMD8<Double>`.

typedef float descent_float16v __attribute__((ext_vector_type(16)));
typedef double descent_double8v __attribute__((ext_vector_type(8)));

static inline __attribute__((always_inline)) descent_float16v descent_sqrt_f16v(descent_float16v x) {
    return __builtin_elementwise_sqrt(x);
}
static inline __attribute__((always_inline)) descent_double8v descent_sqrt_d8v(descent_double8v x) {
    return __builtin_elementwise_sqrt(x);
}
static inline __attribute__((always_inline)) float descent_sqrtf(float x) {
    return __builtin_elementwise_sqrt(x);
}
static inline __attribute__((always_inline)) double descent_sqrt(double x) {
    return __builtin_elementwise_sqrt(x);
}
// Per-lane selects: `a OP b ? x : y` (false when a lane is NaN, as Swift's comparisons). Swift's
// `SIMD.replacing(with:where:)` with a comparison mask (`a .< b`) is built lane by lane (16 scalar compares,
// broadcasts and mask inserts per vector: about 7 ns per float); these compile to one packed compare and
// a blend. Selecting is exact, so results are bit-identical.
typedef int descent_int16v __attribute__((ext_vector_type(16)));
typedef long descent_long8v __attribute__((ext_vector_type(8)));

#define DESCENT_SELECT(NAME, OP)                                                                           \
    static inline __attribute__((always_inline)) descent_float16v descent_select_##NAME##_f16v(            \
        descent_float16v a, descent_float16v b, descent_float16v x, descent_float16v y) {                  \
        descent_int16v m = a OP b;                                                                         \
        return (descent_float16v)(((descent_int16v)x & m) | ((descent_int16v)y & ~m));                     \
    }                                                                                                      \
    static inline __attribute__((always_inline)) descent_double8v descent_select_##NAME##_d8v(             \
        descent_double8v a, descent_double8v b, descent_double8v x, descent_double8v y) {                  \
        descent_long8v m = a OP b;                                                                         \
        return (descent_double8v)(((descent_long8v)x & m) | ((descent_long8v)y & ~m));                     \
    }

DESCENT_SELECT(lt, <)
DESCENT_SELECT(le, <=)
DESCENT_SELECT(eq, ==)
#undef DESCENT_SELECT

// Software prefetch into L1 (`prefetcht0` on x86; a no-op where the target has none). Never faults, so it
// may point past the end of a buffer. Memory-bound fused updates prefetch a fixed distance ahead on each
// stream: on the 2-core KVM guests here the hardware prefetchers alone keep too few misses in flight.
static inline __attribute__((always_inline)) void descent_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

// Floating-point environment: flush denormal results to zero and treat denormal inputs as zero (x86 MXCSR
// FTZ and DAZ bits), as TensorFlow's CPU kernels run. Scoped by the caller: save, set, restore.
#if defined(__x86_64__)
static inline __attribute__((always_inline)) unsigned descent_fp_state(void) { return __builtin_ia32_stmxcsr(); }
static inline __attribute__((always_inline)) void descent_set_fp_state(unsigned state) { __builtin_ia32_ldmxcsr(state); }
static inline __attribute__((always_inline)) unsigned descent_fp_state_flushing_denormals(unsigned state) {
    return state | 0x8040u;  // FTZ (bit 15) | DAZ (bit 6)
}
#else
static inline __attribute__((always_inline)) unsigned descent_fp_state(void) { return 0; }
static inline __attribute__((always_inline)) void descent_set_fp_state(unsigned state) { (void)state; }
static inline __attribute__((always_inline)) unsigned descent_fp_state_flushing_denormals(unsigned state) { return state; }
#endif
#endif
