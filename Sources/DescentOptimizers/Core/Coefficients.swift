import DescentTensor

/// Coefficients of one step for one dtype, computed once before any update (Keras' `apply_state`).
///
/// ``Optimizer/prepare(_:)`` stores them with ``set(_:_:)`` (`c.set("lr_t", lr)`); the update rules read
/// them with `try c["lr_t"]`. Reading a name that was never
/// prepared throws ``OptimizerError/missingCoefficient(name:dtype:available:)`` (Keras raises
/// `KeyError`), so a typo in a custom optimizer fails that `applyGradients` call, before any variable
/// is written, instead of stopping the process.
public struct Coefficients: Sendable {
    /// The dtype the coefficients are computed in.
    public let dtype: DType
    /// `iterations` before this step (`k`).
    public let iteration: Int64
    private var values: [String: TypedScalar] = [:]

    /// Empty coefficients for `dtype` at step `iteration`.
    public init(dtype: DType, iteration: Int64) {
        self.dtype = dtype
        self.iteration = iteration
    }

    /// The coefficient `name`.
    /// - Throws: ``OptimizerError/missingCoefficient(name:dtype:available:)`` if it was not prepared.
    public subscript(name: String) -> TypedScalar {
        get throws {
            guard let v = values[name] else {
                throw OptimizerError.missingCoefficient(name: name, dtype: dtype, available: values.keys.sorted())
            }
            return v
        }
    }

    /// Stores (or replaces) the coefficient `name`.
    public mutating func set(_ name: String, _ value: TypedScalar) { values[name] = value }

    /// Whether a coefficient exists.
    public func contains(_ name: String) -> Bool { values[name] != nil }

    /// The names of the prepared coefficients, sorted.
    public var names: [String] { values.keys.sorted() }

    /// The scalar `value` in this dtype.
    public func scalar(_ value: Double) -> TypedScalar { TypedScalar(value, dtype) }
}
