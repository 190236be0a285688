import DescentTensor
#if canImport(Glibc)
import Glibc
#endif

/// A scalar computed in a tensor dtype's precision.
///
/// OptimizerV2 computes its coefficients (learning rate, bias corrections, ...) as scalar tensors of the
/// variable's dtype. To reproduce its numbers exactly, Descent does the same: every operation on a
/// `TypedScalar` rounds its result to `float32` when the dtype is `float32` (an operation done in
/// `Double` and rounded once equals the `Float` operation for + − × ÷ and √), and `pow` calls `powf`.
public struct TypedScalar: Sendable, CustomStringConvertible {
    /// The value (exactly representable in `dtype`).
    public let value: Double
    /// The precision.
    public let dtype: DType

    /// `value` rounded to `dtype` (TensorFlow's `convert_to_tensor(value, dtype)`).
    public init(_ value: Double, _ dtype: DType) {
        self.value = dtype == .float32 ? Double(Float(value)) : value
        self.dtype = dtype
    }

    /// A Python float made a `float32` constant first, then cast to `dtype` (TensorFlow's
    /// `tf.cast(python_float, dtype)`).
    public static func castFromFloat32(_ value: Double, _ dtype: DType) -> TypedScalar {
        TypedScalar(Double(Float(value)), dtype)
    }

    /// The value in the kernel's element type.
    @inlinable public func value<T: FloatingElement>(as _: T.Type) -> T { T(value) }

    public var description: String { "\(value) (\(dtype))" }

    public static func + (a: TypedScalar, b: TypedScalar) -> TypedScalar { TypedScalar(a.value + b.value, a.dtype) }
    public static func - (a: TypedScalar, b: TypedScalar) -> TypedScalar { TypedScalar(a.value - b.value, a.dtype) }
    public static func * (a: TypedScalar, b: TypedScalar) -> TypedScalar { TypedScalar(a.value * b.value, a.dtype) }
    public static func / (a: TypedScalar, b: TypedScalar) -> TypedScalar { TypedScalar(a.value / b.value, a.dtype) }
    public static func + (a: TypedScalar, b: Double) -> TypedScalar { a + TypedScalar(b, a.dtype) }
    public static func - (a: TypedScalar, b: Double) -> TypedScalar { a - TypedScalar(b, a.dtype) }
    public static func * (a: TypedScalar, b: Double) -> TypedScalar { a * TypedScalar(b, a.dtype) }
    public static func / (a: TypedScalar, b: Double) -> TypedScalar { a / TypedScalar(b, a.dtype) }
    public static func + (a: Double, b: TypedScalar) -> TypedScalar { TypedScalar(a, b.dtype) + b }
    public static func - (a: Double, b: TypedScalar) -> TypedScalar { TypedScalar(a, b.dtype) - b }
    public static func * (a: Double, b: TypedScalar) -> TypedScalar { TypedScalar(a, b.dtype) * b }
    public static func / (a: Double, b: TypedScalar) -> TypedScalar { TypedScalar(a, b.dtype) / b }
    public static prefix func - (a: TypedScalar) -> TypedScalar { TypedScalar(-a.value, a.dtype) }

    /// Square root in the dtype's precision.
    public func squareRoot() -> TypedScalar { TypedScalar(value.squareRoot(), dtype) }

    /// `self` raised to `exponent` (`powf` for float32, `pow` for float64).
    public func pow(_ exponent: TypedScalar) -> TypedScalar {
        switch dtype {
        case .float32: return TypedScalar(Double(powf(Float(value), Float(exponent.value))), dtype)
        default: return TypedScalar(Glibc.pow(value, exponent.value), dtype)
        }
    }
}
