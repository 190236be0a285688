import DescentTensor

// Shape rules and constants shared by the losses and metrics: Keras' `squeeze_or_expand_dimensions`,
// broadcasting checks, and constants computed in a tensor's precision as TensorFlow computes them.

/// Keras' `backend.epsilon()`: the fuzz factor of the crossentropies.
let kerasEpsilon = 1e-7

/// A rank-0 tensor holding `value` in `dtype` (rounded to `Float` for `float32`).
func scalarTensor(_ value: Double, _ dtype: DType) -> Tensor {
    switch dtype {
    case .float32: return Tensor(Float(value))
    case .float64: return Tensor(value)
    case .int64: return Tensor(Int64(fromDouble: value))
    }
}

/// `a - b` evaluated in `dtype`'s precision, as TensorFlow evaluates `1.0 - epsilon_` on a float32
/// tensor (`Float(1) - Float(1e-7)` is 0.99999988, not the double 0.9999999).
func difference(_ a: Double, _ b: Double, in dtype: DType) -> Double {
    dtype == .float32 ? Double(Float(a) - Float(b)) : a - b
}

/// `a * b` evaluated in `dtype`'s precision.
func product(_ a: Double, _ b: Double, in dtype: DType) -> Double {
    dtype == .float32 ? Double(Float(a) * Float(b)) : a * b
}

/// `a / b` evaluated in `dtype`'s precision.
func quotient(_ a: Double, _ b: Double, in dtype: DType) -> Double {
    dtype == .float32 ? Double(Float(a) / Float(b)) : a / b
}

/// Whether two shapes broadcast against each other (NumPy rules).
func broadcastable(_ a: [Int], _ b: [Int]) -> Bool {
    for (x, y) in zip(a.reversed(), b.reversed()) where x != y && x != 1 && y != 1 { return false }
    return true
}

/// Throws unless `yTrue` and `yPred` broadcast (TensorFlow's element-wise ops accept broadcastable shapes).
func requireBroadcastable(_ yTrue: Tensor, _ yPred: Tensor, _ operation: String) throws {
    guard broadcastable(yTrue.shape, yPred.shape) else {
        throw TensorError.incompatibleShapes(
            operation: operation, lhs: yTrue.shape, rhs: yPred.shape,
            reason: "y_true (first) and y_pred (second) do not broadcast")
    }
}

/// Throws unless `yTrue` and `yPred` have the same shape (TensorFlow's `assert_is_compatible_with`).
func requireSameShape(_ yTrue: Tensor, _ yPred: Tensor, _ operation: String) throws {
    guard yTrue.shape == yPred.shape else {
        throw TensorError.incompatibleShapes(
            operation: operation, lhs: yTrue.shape, rhs: yPred.shape,
            reason: "y_true (first) and y_pred (second) must have the same shape")
    }
}

/// Throws unless `yPred` is floating point.
func requireFloatingPrediction(_ yPred: Tensor, _ operation: String) throws {
    guard yPred.dtype.isFloatingPoint else {
        throw TensorError.unsupportedDType(operation: "\(operation) (y_pred)", dtype: yPred.dtype)
    }
}

/// Keras' `squeeze_or_expand_dimensions(y_pred, y_true)` followed by `remove_squeezable_dimensions`:
/// when the ranks differ by one and the larger tensor's last dimension is 1, that dimension is squeezed.
///
/// Exactly as Keras: if `rank(y_pred) - rank(y_true) != 1` or `y_pred`'s last dimension is 1, then
/// `y_pred` loses its last axis when it has one more dimension than `y_true` and that axis is 1, and
/// `y_true` loses its last axis when it has one more dimension than `y_pred` and that axis is 1. A sparse
/// label tensor `[batch]` against predictions `[batch, classes]` is left alone.
func squeezeOrExpand(yPred: Tensor, yTrue: Tensor) throws -> (yPred: Tensor, yTrue: Tensor) {
    var yPred = yPred, yTrue = yTrue
    let diff = yPred.rank - yTrue.rank
    if diff != 1 || yPred.shape.last == 1 {
        if diff == 1, yPred.shape.last == 1 {
            yPred = try yPred.squeezing(axes: [-1])
        } else if diff == -1, yTrue.shape.last == 1 {
            yTrue = try yTrue.squeezing(axes: [-1])
        }
    }
    return (yPred, yTrue)
}

/// Keras' `squeeze_or_expand_dimensions(values, sample_weight=w)`: a scalar weight is kept; a weight with
/// one more dimension than `values` loses its last axis (which must be 1); a weight with one dimension
/// fewer gains a trailing axis of 1.
func alignWeights(_ weights: Tensor, to values: Tensor, operation: String) throws -> Tensor {
    if weights.rank == 0 { return weights }
    if weights.rank - values.rank == 1 {
        guard weights.shape.last == 1 else {
            throw TensorError.incompatibleShapes(
                operation: operation, lhs: values.shape, rhs: weights.shape,
                reason: "sample_weight (second) has one more dimension than the values (first), "
                    + "so its last dimension must be 1 to be squeezed")
        }
        return try weights.squeezing(axes: [-1])
    }
    if values.rank - weights.rank == 1 { return try weights.expandingDims(at: -1) }
    return weights
}
