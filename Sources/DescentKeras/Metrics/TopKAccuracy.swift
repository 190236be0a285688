import DescentOptimizers
import DescentTensor

/// How often the one-hot label's class is among the `k` highest predictions
/// (`tf.keras.metrics.TopKCategoricalAccuracy`): the mean of ``Metrics/topKCategoricalAccuracy(_:_:k:)``.
public final class TopKCategoricalAccuracy: MeanMetricWrapper {
    /// The number of top predictions a label may be among.
    public let k: Int

    /// Creates the metric (`k` 5, name `"top_k_categorical_accuracy"` by default).
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` when `k < 1` or `dtype` is not floating point.
    public init(k: Int = 5, name: String = "top_k_categorical_accuracy", dtype: DType = .float32) throws {
        try checkK(k, name)
        self.k = k
        try super.init(name: name, dtype: dtype) { try Metrics.topKCategoricalAccuracy($0, $1, k: k) }
    }

    /// `"TopKCategoricalAccuracy"`.
    public override class var kerasClassName: String { "TopKCategoricalAccuracy" }

    /// `{"name", "dtype", "k"}`.
    public override var config: JSONObject {
        var c = super.config
        c["k"] = .int(k)
        return c
    }
}

/// How often the integer label is among the `k` highest predictions
/// (`tf.keras.metrics.SparseTopKCategoricalAccuracy`): the mean of
/// ``Metrics/sparseTopKCategoricalAccuracy(_:_:k:)``.
public final class SparseTopKCategoricalAccuracy: MeanMetricWrapper {
    /// The number of top predictions a label may be among.
    public let k: Int

    /// Creates the metric (`k` 5, name `"sparse_top_k_categorical_accuracy"` by default).
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` when `k < 1` or `dtype` is not floating point.
    public init(k: Int = 5, name: String = "sparse_top_k_categorical_accuracy", dtype: DType = .float32) throws {
        try checkK(k, name)
        self.k = k
        try super.init(name: name, dtype: dtype) { try Metrics.sparseTopKCategoricalAccuracy($0, $1, k: k) }
    }

    /// `"SparseTopKCategoricalAccuracy"`.
    public override class var kerasClassName: String { "SparseTopKCategoricalAccuracy" }

    /// `{"name", "dtype", "k"}`.
    public override var config: JSONObject {
        var c = super.config
        c["k"] = .int(k)
        return c
    }
}

private func checkK(_ k: Int, _ name: String) throws {
    guard k >= 1 else { throw KerasError.invalidArgument(field: "k", message: "\(name): k must be at least 1, got \(k)") }
}

extension Metrics {
    /// Whether each integer label is among the `k` highest predictions, as 1/0 `float32` (Keras'
    /// `metrics_utils.sparse_top_k_categorical_matches`, TensorFlow's `in_top_k`).
    ///
    /// Predictions of rank above 2 are flattened to `[rows, classes]` and labels to `[rows]` (the matches
    /// then take the labels' shape). A label is truncated toward zero to an integer. A row matches when the
    /// label is a class index and fewer than `k` predictions of the row are strictly greater than the
    /// label's: predictions tied at the boundary all count as in the top `k`. A row with a non-finite
    /// prediction, or a label outside `0..<classes`, never matches.
    /// - Throws: `TensorError` naming both shapes when `yPred` has rank below 2 or the labels are not one per row.
    public static func sparseTopKCategoricalMatches(_ yTrue: Tensor, _ yPred: Tensor, k: Int = 5) throws -> Tensor {
        guard yPred.rank >= 2, let classes = yPred.shape.last else {
            throw TensorError.incompatibleShapes(
                operation: "sparse_top_k_categorical_matches", lhs: yTrue.shape, rhs: yPred.shape,
                reason: "y_pred (second) needs rank 2 or more [..., classes]")
        }
        let rows = classes == 0 ? yPred.shape.dropLast().reduce(1, *) : yPred.scalarCount / classes
        guard yTrue.scalarCount == rows else {
            throw TensorError.incompatibleShapes(
                operation: "sparse_top_k_categorical_matches", lhs: yTrue.shape, rhs: yPred.shape,
                reason: "y_true (first) needs one label per row of y_pred (second) without its class axis")
        }
        let labels = yTrue.doubles, predictions = yPred.doubles
        var matches = [Float](repeating: 0, count: rows)
        for row in 0..<rows {
            let label = labels[row].rounded(.towardZero)
            guard label >= 0, label < Double(classes) else { continue }
            let base = row * classes
            let target = predictions[base + Int(label)]
            var greater = 0, finite = true
            for i in 0..<classes {
                let p = predictions[base + i]
                if !p.isFinite { finite = false; break }
                if p > target { greater += 1 }
            }
            if finite && greater < k { matches[row] = 1 }
        }
        let shape = yTrue.rank > 1 ? yTrue.shape : [rows]
        return try Tensor(shape: shape, scalars: matches)
    }

    /// `sparseTopKCategoricalMatches(yTrue, yPred, k)` (`tf.keras.metrics.sparse_top_k_categorical_accuracy`).
    public static func sparseTopKCategoricalAccuracy(_ yTrue: Tensor, _ yPred: Tensor, k: Int = 5) throws -> Tensor {
        try sparseTopKCategoricalMatches(yTrue, yPred, k: k)
    }

    /// Whether each one-hot label's class (its arg-max, the first on ties) is among the `k` highest
    /// predictions (`tf.keras.metrics.top_k_categorical_accuracy`): ``sparseTopKCategoricalMatches(_:_:k:)`` of
    /// `argmax(yTrue, -1)`.
    public static func topKCategoricalAccuracy(_ yTrue: Tensor, _ yPred: Tensor, k: Int = 5) throws -> Tensor {
        guard yTrue.rank >= 1 else {
            throw TensorError.incompatibleShapes(
                operation: "top_k_categorical_accuracy", lhs: yTrue.shape, rhs: yPred.shape,
                reason: "one-hot y_true (first) needs a class axis")
        }
        return try sparseTopKCategoricalMatches(yTrue.argmax(axis: -1), yPred, k: k)
    }
}
