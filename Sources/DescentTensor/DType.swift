import CDescentBLAS
import CDescentMath
import RealModule
#if canImport(Glibc)
import Glibc
#endif

/// The element type of a ``Tensor``.
///
/// Keras variables are `float32` or `float64`; `int64` holds counters (an optimizer's `iterations`),
/// indices (``Tensor/argmax(axis:)``) and integer labels. Arithmetic and math functions need a
/// floating-point dtype; layout operations (reshape, transpose, concat, slicing, gather) and
/// comparisons work for every dtype.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible, Codable {
    /// 32-bit IEEE float (`Float`), Keras' default.
    case float32
    /// 64-bit IEEE float (`Double`).
    case float64
    /// 64-bit signed integer (`Int64`).
    case int64

    /// Bytes per element.
    @inlinable public var byteSize: Int {
        switch self {
        case .float32: return 4
        case .float64, .int64: return 8
        }
    }

    /// Whether the dtype is `float32` or `float64`.
    @inlinable public var isFloatingPoint: Bool { self != .int64 }

    /// The name TensorFlow and Keras use (`"float32"`, ...).
    public var description: String { rawValue }

    /// Parses a Keras dtype name (`"float32"`, `"float64"`, `"double"`, `"int64"`).
    public init?(kerasName: String) {
        switch kerasName {
        case "float32", "float": self = .float32
        case "float64", "double": self = .float64
        case "int64": self = .int64
        default: return nil
        }
    }
}

/// A Swift type that can be the element of a ``Tensor``: `Float`, `Double` or `Int64`.
public protocol TensorElement: Sendable, Comparable, Numeric, CustomStringConvertible {
    /// The tensor dtype this Swift type stores.
    static var dtype: DType { get }
    /// Converts from `Double` (rounding to nearest for `Float`, truncating for `Int64`).
    init(fromDouble value: Double)
    /// The value as a `Double`.
    var doubleValue: Double { get }
}

/// A floating-point tensor element (`Float` or `Double`) with the SIMD vector type Descent's kernels use.
public protocol FloatingElement: TensorElement, BinaryFloatingPoint, Real, SIMDScalar, Codable
where Vector.Scalar == Self {
    /// The SIMD vector the kernels process at a time (64 bytes: `SIMD16<Float>`, `SIMD8<Double>`).
    associatedtype Vector: SIMD
    /// Element-wise square root that compiles to packed `sqrtps`/`sqrtpd` (see `CDescentMath`).
    static func vectorSquareRoot(_ x: Vector) -> Vector
    /// Scalar square root without errno side effects.
    static func scalarSquareRoot(_ x: Self) -> Self
    /// Per lane `a < b ? x : y` (one packed compare and blend; see `CDescentMath`).
    static func vectorSelectLess(_ a: Vector, _ b: Vector, _ x: Vector, _ y: Vector) -> Vector
    /// Per lane `a <= b ? x : y`.
    static func vectorSelectLessEqual(_ a: Vector, _ b: Vector, _ x: Vector, _ y: Vector) -> Vector
    /// Per lane `a == b ? x : y`.
    static func vectorSelectEqual(_ a: Vector, _ b: Vector, _ x: Vector, _ y: Vector) -> Vector
    /// `x` raised to `y` with C `pow` semantics (a negative base with an integral exponent is defined).
    static func power(_ x: Self, _ y: Self) -> Self
    /// BLAS general matrix multiply, row-major: `C = alpha * op(A) * op(B) + beta * C`.
    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self,
        a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
}

extension Float: TensorElement, FloatingElement {
    public typealias Vector = SIMD16<Float>
    @inlinable public static var dtype: DType { .float32 }
    @inlinable public init(fromDouble value: Double) { self.init(value) }
    @inlinable public var doubleValue: Double { Double(self) }
    @inlinable @inline(__always)
    public static func vectorSquareRoot(_ x: SIMD16<Float>) -> SIMD16<Float> { descent_sqrt_f16v(x) }
    @inlinable @inline(__always)
    public static func scalarSquareRoot(_ x: Float) -> Float { descent_sqrtf(x) }
    @inlinable @inline(__always)
    public static func vectorSelectLess(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> {
        descent_select_lt_f16v(a, b, x, y)
    }
    @inlinable @inline(__always)
    public static func vectorSelectLessEqual(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> {
        descent_select_le_f16v(a, b, x, y)
    }
    @inlinable @inline(__always)
    public static func vectorSelectEqual(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> {
        descent_select_eq_f16v(a, b, x, y)
    }
    @inlinable public static func power(_ x: Float, _ y: Float) -> Float { powf(x, y) }
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        BLASThreading.run(m: m, n: n, k: k) {
            OpenBLASForkGate.call {  // never during a fork (see OpenBLASForkGate)
                cblas_sgemm(
                    CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
            }
        }
    }
}

extension Double: TensorElement, FloatingElement {
    public typealias Vector = SIMD8<Double>
    @inlinable public static var dtype: DType { .float64 }
    @inlinable public init(fromDouble value: Double) { self = value }
    @inlinable public var doubleValue: Double { self }
    @inlinable @inline(__always)
    public static func vectorSquareRoot(_ x: SIMD8<Double>) -> SIMD8<Double> { descent_sqrt_d8v(x) }
    @inlinable @inline(__always)
    public static func scalarSquareRoot(_ x: Double) -> Double { descent_sqrt(x) }
    @inlinable @inline(__always)
    public static func vectorSelectLess(_ a: SIMD8<Double>, _ b: SIMD8<Double>, _ x: SIMD8<Double>, _ y: SIMD8<Double>) -> SIMD8<Double> {
        descent_select_lt_d8v(a, b, x, y)
    }
    @inlinable @inline(__always)
    public static func vectorSelectLessEqual(_ a: SIMD8<Double>, _ b: SIMD8<Double>, _ x: SIMD8<Double>, _ y: SIMD8<Double>) -> SIMD8<Double> {
        descent_select_le_d8v(a, b, x, y)
    }
    @inlinable @inline(__always)
    public static func vectorSelectEqual(_ a: SIMD8<Double>, _ b: SIMD8<Double>, _ x: SIMD8<Double>, _ y: SIMD8<Double>) -> SIMD8<Double> {
        descent_select_eq_d8v(a, b, x, y)
    }
    @inlinable public static func power(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        BLASThreading.run(m: m, n: n, k: k) {
            OpenBLASForkGate.call {  // never during a fork (see OpenBLASForkGate)
                cblas_dgemm(
                    CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
            }
        }
    }
}

extension Int64: TensorElement {
    @inlinable public static var dtype: DType { .int64 }
    @inlinable public init(fromDouble value: Double) {
        if value.isNaN { self = 0 } else if value >= 9.2233720368547758e18 { self = .max }
        else if value <= -9.2233720368547758e18 { self = .min } else { self.init(value) }
    }
    @inlinable public var doubleValue: Double { Double(self) }
}
