import DescentTensor

/// How a slot (or weight) starts.
public enum SlotInitializer: Sendable {
    /// All zeros.
    case zeros
    /// All ones.
    case ones
    /// Every element `value`.
    case constant(Double)
    /// A given value (its shape wins over the requested one).
    case value(Tensor)

    func makeValue(shape: [Int], dtype: DType) throws -> Tensor {
        switch self {
        case .zeros: return try Tensor.zeros(shape: shape, dtype: dtype)
        case .ones: return try Tensor.ones(shape: shape, dtype: dtype)
        case .constant(let c): return try Tensor(repeating: c, shape: shape, dtype: dtype)
        case .value(let t): return t.cast(to: dtype).untracked
        }
    }
}
