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
#endif
