@_spi(DescentInternals) import DescentTensor
import DescentOptimizers

/// Keras' loss functions (`tf.keras.losses.mean_squared_error`, ...) and loss lookup
/// (`tf.keras.losses.get`, `deserialize`).
///
/// The functions return the **per-sample** loss: every one reduces the last axis, so inputs
/// `[batch, d0, ..., dN]` give `[batch, d0, ..., dN-1]`. Unlike the loss classes they do not squeeze a
/// trailing axis of size 1 first (Keras' functions do not either), and they neither weight nor reduce.
/// `yTrue` is cast to `yPred`'s dtype, which must be `float32` or `float64`. The formulas are tf-keras
/// 2.21's, constant for constant: `ε = 1e-7` (`backend.epsilon()`) and the clip bound `1 - ε` are
/// computed in `yPred`'s precision (`1 - ε` is 0.99999988 in float32).
public enum Losses {
    // MARK: - Regression

    /// `mean((yPred - yTrue)², axis: -1)` (Keras' `mean_squared_error`, alias `mse`).
    /// - Throws: `TensorError` naming both shapes when they do not broadcast.
    public static func meanSquaredError(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        try requireFloatingPrediction(yPred, "mean_squared_error")
        let yTrue = yTrue.cast(to: yPred.dtype)
        try requireBroadcastable(yTrue, yPred, "mean_squared_error")
        return try (yPred - yTrue).squared().mean(axes: [-1])
    }

    /// `mean(|yPred - yTrue|, axis: -1)` (Keras' `mean_absolute_error`, alias `mae`). The gradient of
    /// `|x|` at 0 is 0.
    /// - Throws: `TensorError` naming both shapes when they do not broadcast.
    public static func meanAbsoluteError(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        try requireFloatingPrediction(yPred, "mean_absolute_error")
        let yTrue = yTrue.cast(to: yPred.dtype)
        try requireBroadcastable(yTrue, yPred, "mean_absolute_error")
        return try (yPred - yTrue).abs().mean(axes: [-1])
    }

    /// Keras' alias `mse`: ``meanSquaredError(_:_:)``.
    public static func mse(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor { try meanSquaredError(yTrue, yPred) }
    /// Keras' alias `mae`: ``meanAbsoluteError(_:_:)``.
    public static func mae(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor { try meanAbsoluteError(yTrue, yPred) }

    // MARK: - Crossentropies

    /// Binary crossentropy, averaged over the last axis (Keras' `binary_crossentropy`, alias `bce`).
    ///
    /// With `s = labelSmoothing`, labels are first smoothed when `s ≠ 0`: `y = yTrue · (1 - s) + 0.5 · s`.
    /// Then, element-wise, with `x = yPred`:
    /// - from logits (`tf.nn.sigmoid_cross_entropy_with_logits`):
    ///   `max(x, 0) - x · y + log1p(exp(-|x|))`, where `max(x, 0)` and `-|x|` are TensorFlow's
    ///   `where(x >= 0, x, 0)` and `where(x >= 0, -x, x)`, so the gradient at `x = 0` is `0.5 - y`;
    /// - from probabilities: `p = clip(x, ε, 1 - ε)`, then
    ///   `-(y · log(p + ε) + (1 - y) · log((1 - p) + ε))` — ε is both the clip bound **and** added inside
    ///   the logarithms, as in `backend.binary_crossentropy`.
    ///
    /// The result is `mean(bce, axis: -1)`: a `[batch]` input gives a scalar.
    /// - Throws: `TensorError` naming both shapes when they differ (from logits) or do not broadcast
    ///   (from probabilities).
    public static func binaryCrossentropy(
        _ yTrue: Tensor, _ yPred: Tensor, fromLogits: Bool = false, labelSmoothing: Double = 0
    ) throws -> Tensor {
        try requireFloatingPrediction(yPred, "binary_crossentropy")
        let dtype = yPred.dtype
        var y = yTrue.cast(to: dtype)
        if labelSmoothing != 0 {
            y = try y * difference(1, labelSmoothing, in: dtype) + product(0.5, labelSmoothing, in: dtype)
        }
        let elementwise: Tensor
        if fromLogits {
            elementwise = try sigmoidCrossEntropyWithLogits(labels: y, logits: yPred)
        } else {
            try requireBroadcastable(y, yPred, "binary_crossentropy")
            let p = try yPred.clipped(min: kerasEpsilon, max: difference(1, kerasEpsilon, in: dtype))
            let positive = try y * (p + kerasEpsilon).log()
            let negative = try (1 - y) * ((1 - p) + kerasEpsilon).log()
            elementwise = try -(positive + negative)
        }
        return try elementwise.mean(axes: [-1])
    }

    /// Keras' alias `bce`: ``binaryCrossentropy(_:_:fromLogits:labelSmoothing:)``.
    public static func bce(_ yTrue: Tensor, _ yPred: Tensor, fromLogits: Bool = false, labelSmoothing: Double = 0)
        throws -> Tensor
    {
        try binaryCrossentropy(yTrue, yPred, fromLogits: fromLogits, labelSmoothing: labelSmoothing)
    }

    /// Categorical crossentropy over the last axis (Keras' `categorical_crossentropy`).
    ///
    /// With `s = labelSmoothing` and `C` classes, labels are first smoothed when `s ≠ 0`:
    /// `y = yTrue · (1 - s) + s / C`. Then, per row:
    /// - from logits (`tf.nn.softmax_cross_entropy_with_logits`, fused):
    ///   `Σ_c y_c · (log Σ_k exp(x_k - m) - (x_c - m))` with `m = max_k x_k`; its gradient with respect to
    ///   the logits is `softmax(x) - y` (TensorFlow's, which is the exact gradient only when `Σ y = 1`);
    /// - from probabilities: `p = x / Σ_k x_k` (the rows are renormalised), then
    ///   `-Σ_c y_c · log(clip(p_c, ε, 1 - ε))`.
    ///
    /// - Throws: `TensorError` naming both shapes unless `yTrue` and `yPred` have the same shape.
    public static func categoricalCrossentropy(
        _ yTrue: Tensor, _ yPred: Tensor, fromLogits: Bool = false, labelSmoothing: Double = 0
    ) throws -> Tensor {
        try requireFloatingPrediction(yPred, "categorical_crossentropy")
        let dtype = yPred.dtype
        var y = yTrue.cast(to: dtype)
        if labelSmoothing != 0 {
            let classes = Double(y.shape.last ?? 1)
            y = try y * difference(1, labelSmoothing, in: dtype) + quotient(labelSmoothing, classes, in: dtype)
        }
        try requireSameShape(y, yPred, "categorical_crossentropy")
        guard yPred.rank >= 1 else {
            throw TensorError.invalidShape(operation: "categorical_crossentropy", shape: yPred.shape,
                                           reason: "y_pred needs a class axis")
        }
        if fromLogits { return try softmaxCrossEntropyWithLogits(labels: y, logits: yPred) }
        let normalized = try yPred / yPred.sum(axes: [-1], keepDims: true)
        let p = try normalized.clipped(min: kerasEpsilon, max: difference(1, kerasEpsilon, in: dtype))
        return try -(y * p.log()).sum(axes: [-1])
    }

    /// Sparse categorical crossentropy: integer class labels against per-class predictions (Keras'
    /// `sparse_categorical_crossentropy`).
    ///
    /// Labels are cast to `int64` (float labels are truncated) and must lie in `0..<C`. From
    /// probabilities, the logits are `log(clip(yPred, ε, 1 - ε))` (no renormalisation: the softmax
    /// below normalises). Then TensorFlow's fused `sparse_softmax_cross_entropy_with_logits`, per row:
    /// `log Σ_k exp(x_k - m) - (x_label - m)` with `m = max_k x_k`; its gradient with respect to the
    /// logits is `softmax(x) - onehot(label)`.
    ///
    /// Shapes: labels `[d0, ..., dN-1]` against predictions `[d0, ..., dN-1, C]` give losses of the
    /// labels' shape. Labels of any other rank (e.g. `[batch, 1]`) are flattened, the predictions
    /// viewed as `[-1, C]`, and, when the predictions have rank ≥ 3, the losses reshaped to the
    /// predictions' shape without the class axis.
    /// - Throws: `TensorError` naming both shapes when the label count does not match the predictions'
    ///   rows; `TensorError.invalidArgument` for a label outside `0..<C`.
    public static func sparseCategoricalCrossentropy(_ yTrue: Tensor, _ yPred: Tensor, fromLogits: Bool = false)
        throws -> Tensor
    {
        let op = "sparse_categorical_crossentropy"
        try requireFloatingPrediction(yPred, op)
        guard let classes = yPred.shape.last else {
            throw TensorError.invalidShape(operation: op, shape: yPred.shape, reason: "y_pred needs a class axis")
        }
        if classes > 1, yPred.rank >= 2, yTrue.shape == yPred.shape {
            // The common mix-up: one-hot labels given to the sparse loss.
            throw TensorError.incompatibleShapes(
                operation: op, lhs: yTrue.shape, rhs: yPred.shape,
                reason: "sparse labels need shape \(Array(yPred.shape.dropLast())), got one-hot \(yTrue.shape); "
                    + "use CategoricalCrossentropy for one-hot labels")
        }
        var labels = yTrue.cast(to: .int64)
        var logits = fromLogits
            ? yPred
            : try yPred.clipped(min: kerasEpsilon, max: difference(1, kerasEpsilon, in: yPred.dtype)).log()
        let outputShape = yPred.shape
        let updateShape = labels.rank != yPred.rank - 1
        if updateShape {
            labels = try labels.reshaped(to: [labels.scalarCount])
            guard classes > 0, yPred.scalarCount % classes == 0, yPred.scalarCount / classes == labels.scalarCount
            else {
                throw TensorError.incompatibleShapes(
                    operation: op, lhs: yTrue.shape, rhs: yPred.shape,
                    reason: "y_true (first) must hold one label per row of y_pred (second), which has "
                        + "\(classes > 0 ? yPred.scalarCount / classes : 0) rows of \(classes) classes")
            }
            logits = try logits.reshaped(to: [labels.scalarCount, classes])
        } else if labels.shape != Array(yPred.shape.dropLast()) {
            throw TensorError.incompatibleShapes(
                operation: op, lhs: yTrue.shape, rhs: yPred.shape,
                reason: "y_true (first) must equal y_pred's shape (second) without its last axis")
        }
        var result = try sparseSoftmaxCrossEntropyWithLogits(labels: labels, logits: logits, operation: op)
        if updateShape && outputShape.count >= 3 { result = try result.reshaped(to: Array(outputShape.dropLast())) }
        return result
    }

    // MARK: - TensorFlow's nn ops

    /// `tf.nn.sigmoid_cross_entropy_with_logits`: `max(x, 0) - x · z + log1p(exp(-|x|))`, element-wise,
    /// with TensorFlow's `where`-based `max` and `-|x|` (gradient `0.5 - z` at `x = 0`).
    /// - Throws: `TensorError` naming both shapes unless `labels` and `logits` have the same shape.
    public static func sigmoidCrossEntropyWithLogits(labels: Tensor, logits: Tensor) throws -> Tensor {
        let z = labels.cast(to: logits.dtype)
        guard z.shape == logits.shape else {
            throw TensorError.incompatibleShapes(
                operation: "sigmoid_cross_entropy_with_logits", lhs: labels.shape, rhs: logits.shape,
                reason: "labels (first) and logits (second) must have the same shape")
        }
        // `maximum` and `minimum` send the gradient to `self` on ties, like TensorFlow's `where(x >= 0, ...)`.
        let reluLogits = try logits.maximum(scalarTensor(0, logits.dtype))
        let negAbsLogits = try (-logits).minimum(logits)
        return try (reluLogits - logits * z) + negAbsLogits.exp().log1p()
    }

    /// `tf.nn.softmax_cross_entropy_with_logits` over the last axis, as TensorFlow's fused kernel: per row,
    /// `Σ_c y_c · (log Σ_k exp(x_k - m) - (x_c - m))`, `m = max_k x_k`. The gradient is
    /// `g · (softmax(x) - y)` for the logits and `g · -log_softmax(x)` for the labels.
    /// - Throws: `TensorError` naming both shapes unless they are equal.
    public static func softmaxCrossEntropyWithLogits(labels: Tensor, logits: Tensor) throws -> Tensor {
        let op = "softmax_cross_entropy_with_logits"
        try requireFloatingPrediction(logits, op)
        let labels = labels.cast(to: logits.dtype)
        guard labels.shape == logits.shape, let classes = logits.shape.last else {
            throw TensorError.incompatibleShapes(operation: op, lhs: labels.shape, rhs: logits.shape,
                                                 reason: "labels (first) and logits (second) must have the same shape")
        }
        let rows = classes == 0 ? 0 : logits.scalarCount / classes
        let outShape = Array(logits.shape.dropLast())
        let tracked = logits.tapeNode != 0
        let (losses, backprop): (Tensor, Tensor?)
        switch logits.dtype {
        case .float32:
            (losses, backprop) = try xentLosses(Float.self, logits, rows, classes, dense: labels, sparse: nil, outShape,
                                                backprop: tracked)
        case .float64:
            (losses, backprop) = try xentLosses(Double.self, logits, rows, classes, dense: labels, sparse: nil, outShape,
                                                backprop: tracked)
        case .int64: preconditionFailure("checked above")
        }
        return Autodiff.recordBinary(op, logits, labels, losses, backward: { g in
            let upstream = try g.expandingDims(at: -1)
            // `backprop` exists whenever the logits are tracked; untracked logits get no gradient.
            return [try backprop.map { .dense(try upstream * Losses.differentiableBackprop($0, logits: logits)) },
                    .dense(try upstream * -logits.logSoftmax(axis: -1))]
        })
    }

    /// `tf.nn.sparse_softmax_cross_entropy_with_logits`: labels `[d0, ..., dN-1]` (`int64`, or integral
    /// floats) against logits `[d0, ..., dN-1, C]`; per row `log Σ_k exp(x_k - m) - (x_label - m)`,
    /// `m = max_k x_k`. The gradient with respect to the logits is `g · (softmax(x) - onehot(label))`.
    /// - Throws: `TensorError` naming both shapes when they do not match; `TensorError.invalidArgument`
    ///   for a label outside `0..<C` (TensorFlow's CPU kernel raises too).
    public static func sparseSoftmaxCrossEntropyWithLogits(labels: Tensor, logits: Tensor) throws -> Tensor {
        try sparseSoftmaxCrossEntropyWithLogits(labels: labels, logits: logits,
                                                operation: "sparse_softmax_cross_entropy_with_logits")
    }

    static func sparseSoftmaxCrossEntropyWithLogits(labels: Tensor, logits: Tensor, operation op: String) throws
        -> Tensor
    {
        try requireFloatingPrediction(logits, op)
        guard let classes = logits.shape.last, labels.shape == Array(logits.shape.dropLast()) else {
            throw TensorError.incompatibleShapes(
                operation: op, lhs: labels.shape, rhs: logits.shape,
                reason: "labels (first) must have the logits' shape (second) without its last axis")
        }
        var indices = [Int]()
        indices.reserveCapacity(labels.scalarCount)
        for value in labels.doubles {
            guard let k = Int(exactly: value.rounded(.towardZero)), k >= 0, k < classes else {
                throw TensorError.invalidArgument(
                    operation: op,
                    reason: "Received a label value of \(value) which is outside the valid range of [0, \(classes))")
            }
            indices.append(k)
        }
        let outShape = labels.shape
        let tracked = logits.tapeNode != 0
        let (losses, backprop): (Tensor, Tensor?)
        switch logits.dtype {
        case .float32:
            (losses, backprop) = try xentLosses(Float.self, logits, indices.count, classes, dense: nil, sparse: indices,
                                                outShape, backprop: tracked)
        case .float64:
            (losses, backprop) = try xentLosses(Double.self, logits, indices.count, classes, dense: nil, sparse: indices,
                                                outShape, backprop: tracked)
        case .int64: preconditionFailure("checked above")
        }
        // Recorded only when the logits are tracked, and then `backprop` was computed.
        return Autodiff.recordUnary(op, logits, losses, backward: { g in
            [try backprop.map { .dense(try g.expandingDims(at: -1) * Losses.differentiableBackprop($0, logits: logits)) }]
        })
    }

    /// The crossentropy kernels' `backprop` output (`softmax(logits) − labels`, computed in the forward
    /// pass) as a function of the logits: its value is always the kernel's, and a tape recording while the
    /// gradient is computed (a second derivative) records it with the softmax Jacobian, as TensorFlow's
    /// `_SoftmaxCrossEntropyWithLogitsGrad` differentiates through its `backprop` output.
    static func differentiableBackprop(_ backprop: Tensor, logits: Tensor) -> Tensor {
        Autodiff.recordUnary("softmax_crossentropy_backprop", logits, backprop, backward: { u in
            let softmax = try logits.softmax(axis: -1)
            return [.dense(try softmax * (u - (u * softmax).sum(axes: [-1], keepDims: true)))]
        })
    }

    /// The per-row losses of TensorFlow's softmax crossentropy kernels (no recording): for each row,
    /// `m = max x`, `lse = log Σ exp(x - m)`, then `Σ_c y_c · (lse - (x_c - m))` (dense labels) or
    /// `lse - (x_label - m)` (sparse labels). With `backprop`, also the kernels' second output, the
    /// gradient of the loss with respect to the logits, from the same pass and with TensorFlow's
    /// arithmetic: `exp(x - m) / Σ exp(x - m) − y` (`y` one-hot for sparse labels).
    private static func xentLosses<T: FloatingElement>(
        _: T.Type, _ logits: Tensor, _ rows: Int, _ classes: Int, dense: Tensor?, sparse: [Int]?, _ shape: [Int],
        backprop withBackprop: Bool
    ) throws -> (Tensor, Tensor?) {
        let x = try logits.scalars(as: T.self)
        let y = try dense?.scalars(as: T.self)
        var out = [T](repeating: 0, count: rows)
        var backprop = [T](repeating: 0, count: withBackprop ? rows * classes : 0)
        for r in 0..<rows {
            let base = r * classes
            var m = -T.infinity
            for c in 0..<classes where x[base + c] > m { m = x[base + c] }
            var sumExp: T = 0
            for c in 0..<classes {
                let e = T.exp(x[base + c] - m)
                if withBackprop { backprop[base + c] = e }
                sumExp += e
            }
            let lse = T.log(sumExp)
            if let sparse {
                out[r] = lse - (x[base + sparse[r]] - m)
                if withBackprop {
                    for c in 0..<classes { backprop[base + c] = backprop[base + c] / sumExp }
                    backprop[base + sparse[r]] -= 1
                }
            } else if let y {
                var loss: T = 0
                for c in 0..<classes { loss += y[base + c] * (lse - (x[base + c] - m)) }
                out[r] = loss
                if withBackprop {
                    for c in 0..<classes { backprop[base + c] = backprop[base + c] / sumExp - y[base + c] }
                }
            }
        }
        return (try Tensor(shape: shape, scalars: out),
                withBackprop ? try Tensor(shape: logits.shape, scalars: backprop) : nil)
    }
}
