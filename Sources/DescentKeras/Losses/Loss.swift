import DescentDistribute
import DescentOptimizers
import DescentTensor

/// How a ``Loss`` reduces its weighted per-sample losses (Keras' `tf.keras.losses.Reduction`).
///
/// Keras' default, `"auto"`, means `"sum_over_batch_size"` outside a distribution strategy; a config with
/// `"reduction": "auto"` is read as ``sumOverBatchSize``. Inside a strategy's scope (`Strategy.scope`),
/// a loss on that default reduction may only be used by the built-in loops (`Sequential.fit`,
/// `evaluate`, `trainStep`, which divide by the global batch size); called elsewhere it throws, as
/// Keras raises: use ``sum`` or ``none`` with `computeAverageLoss` there.
public enum LossReduction: String, Sendable, CaseIterable, CustomStringConvertible {
    /// `sum(w · loss) / size(w · loss)`: the sum divided by the number of elements of the weighted
    /// losses (not by the sum of the weights, and zero-weight elements are counted), 0 when there are none
    /// (Keras' `SUM_OVER_BATCH_SIZE`, `divide_no_nan`).
    case sumOverBatchSize = "sum_over_batch_size"
    /// `sum(w · loss)`: the scalar sum of the weighted losses (Keras' `SUM`).
    case sum = "sum"
    /// `w · loss`: the weighted per-sample losses, unreduced (Keras' `NONE`).
    case none = "none"

    /// Parses Keras' string names: `"sum_over_batch_size"`, `"sum"`, `"none"`, and `"auto"` (read as
    /// ``sumOverBatchSize``).
    public init?(kerasName: String) {
        if kerasName == "auto" { self = .sumOverBatchSize; return }
        self.init(rawValue: kerasName)
    }

    /// Keras' string name (the raw value).
    public var kerasName: String { rawValue }

    /// Keras' string name.
    public var description: String { rawValue }
}

/// A Keras loss (`tf.keras.losses.Loss`): a per-sample loss function plus a reduction.
///
/// Calling a loss runs, as Keras' `Loss.__call__`:
/// 1. `losses = call(yTrue, yPred)`, the per-sample losses (every built-in reduces the last axis, so
///    `[batch, d0, ..., dN]` inputs give `[batch, d0, ..., dN-1]` losses);
/// 2. ``Losses/computeWeightedLoss(_:sampleWeight:reduction:)``: the sample weight is aligned with the
///    losses (squeezed or expanded by one trailing axis), multiplied in (broadcasting), and the product is
///    reduced by ``reduction``.
///
/// Every operation is a public tensor operation, so a loss evaluated inside `tape.record { }` is
/// differentiable with respect to `yPred` (and to a floating-point `yTrue`).
///
/// To write a custom loss, implement ``call(_:_:)``, ``name``, ``reduction`` and ``config``; the
/// default ``callAsFunction(_:_:sampleWeight:)`` applies the weights and the reduction.
public protocol Loss: Sendable, LossIdentifier {
    /// The loss' name (Keras' `name`, e.g. `"mean_squared_error"`).
    var name: String { get }
    /// How the weighted per-sample losses are reduced.
    var reduction: LossReduction { get }
    /// The constructor arguments as Keras' `get_config()` writes them, in Keras' key order.
    var config: JSONObject { get }
    /// The class name used in serialized configs (Keras' class name, e.g. `"MeanSquaredError"`).
    static var kerasClassName: String { get }
    /// The per-sample losses, before weighting and reduction (Keras' `Loss.call`).
    func call(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor
    /// The weighted, reduced loss (Keras' `Loss.__call__`): see ``Loss``.
    ///
    /// - Parameters:
    ///   - yTrue: the targets, `[batch, d0, ..., dN]` (sparse losses: `[batch, d0, ..., dN-1]`).
    ///   - yPred: the predictions, `[batch, d0, ..., dN]`.
    ///   - sampleWeight: a scalar, a `[batch]` vector, or a tensor broadcastable to the per-sample losses.
    /// - Returns: a scalar, or the per-sample losses for ``LossReduction/none``.
    func callAsFunction(_ yTrue: Tensor, _ yPred: Tensor, sampleWeight: Tensor?) throws -> Tensor
}

extension Loss {
    /// The loss itself (what `compile`'s `loss:` takes: a loss or its Keras name).
    public func makeLoss() throws -> any Loss { self }

    /// The weighted, reduced loss: `computeWeightedLoss(call(yTrue, yPred), sampleWeight, reduction)`.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` for a loss on the default reduction
    ///   (``LossReduction/sumOverBatchSize``, Keras' `AUTO`) called inside a distribution strategy's scope
    ///   outside the built-in loops (see ``LossReduction/checkAllowedUnderStrategy(_:)``).
    public func callAsFunction(_ yTrue: Tensor, _ yPred: Tensor, sampleWeight: Tensor?) throws -> Tensor {
        if reduction == .sumOverBatchSize { try LossReduction.checkAllowedUnderStrategy(name) }
        return try Losses.computeWeightedLoss(call(yTrue, yPred), sampleWeight: sampleWeight, reduction: reduction)
    }

    /// The reduced loss without sample weights.
    public func callAsFunction(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        try callAsFunction(yTrue, yPred, sampleWeight: nil)
    }

    /// Keras' serialization (`tf.keras.losses.serialize`):
    /// `{"module": "keras.losses", "class_name": ..., "config": {...}, "registered_name": null}`.
    public func serialize() -> JSONObject {
        ["module": "keras.losses", "class_name": .string(type(of: self).kerasClassName), "config": .object(config),
         "registered_name": .null]
    }
}

/// Whether code runs inside Keras' built-in loops (`fit`, `evaluate`, `trainStep`), which scale a loss
/// on the default reduction for the strategy themselves (tf-keras' `_allow_sum_over_batch_size`, which
/// `compile` sets on the loss objects it wraps).
enum BuiltInTrainingLoop {
    /// True inside ``run(_:)`` on this task.
    @TaskLocal static var isActive = false

    /// Runs `body` as part of a built-in loop.
    static func run<R>(_ body: () throws -> R) rethrows -> R {
        try $isActive.withValue(true, operation: body)
    }
}

extension LossReduction {
    /// tf-keras' `Loss._get_reduction` rule: inside a distribution strategy's scope
    /// (`Strategy.hasStrategy`, also with one replica), a loss on the default reduction
    /// (``sumOverBatchSize``; Keras' `AUTO` reads as it) divides by the **local** batch size, which
    /// scales the cross-replica sum of gradients by the number of replicas: it is an error outside the
    /// built-in loops, which divide by the global batch size themselves.
    ///
    /// tf-keras 2.21 (`tf_keras/src/losses.py`, `Loss._get_reduction`) raises `ValueError` when
    /// `not self._allow_sum_over_batch_size and tf.distribute.has_strategy()` and the reduction is
    /// `AUTO` or `SUM_OVER_BATCH_SIZE`; `compile` (`compile_utils.LossesContainer`) sets
    /// `_allow_sum_over_batch_size = True` on its losses. The message below is Keras' with Swift names.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the loss.
    static func checkAllowedUnderStrategy(_ lossName: String) throws {
        guard Strategy.hasStrategy, !BuiltInTrainingLoop.isActive else { return }
        throw KerasError.invalidArgument(
            field: "reduction",
            message: "loss '\(lossName)' uses the default reduction (sum_over_batch_size / auto) inside a distribution "
                + "strategy's scope. Please use `LossReduction.sum` or `LossReduction.none` for loss reduction when "
                + "losses are used with a distribution strategy (divide a `.none` loss by the global batch size with "
                + "`computeAverageLoss(_:sampleWeight:globalBatchSize:)`), except for losses given to "
                + "`Sequential.compile` for use by the built-in training loop `Sequential.fit`.")
    }
}

extension Losses {
    /// Weights and reduces per-sample losses (Keras' `losses_utils.compute_weighted_loss`).
    ///
    /// With `w` the sample weight cast to the losses' dtype and aligned with them (a scalar stays a
    /// scalar; one extra trailing axis of size 1 is squeezed; one missing trailing axis is added), and
    /// `l = losses · w` (broadcasting; `l = losses` without weights):
    /// - ``LossReduction/none``: `l`;
    /// - ``LossReduction/sum``: `Σ l`;
    /// - ``LossReduction/sumOverBatchSize``: `Σ l / size(l)`, or 0 when `l` is empty.
    ///
    /// - Throws: `TensorError.incompatibleShapes` naming the losses' and the weight's shapes when they
    ///   cannot be aligned or broadcast.
    public static func computeWeightedLoss(
        _ losses: Tensor, sampleWeight: Tensor? = nil, reduction: LossReduction = .sumOverBatchSize
    ) throws -> Tensor {
        var weighted = losses
        if let sampleWeight {
            let w = try alignWeights(sampleWeight.cast(to: losses.dtype), to: losses, operation: "sample_weight")
            guard broadcastable(losses.shape, w.shape) else {
                throw TensorError.incompatibleShapes(
                    operation: "sample_weight", lhs: losses.shape, rhs: sampleWeight.shape,
                    reason: "the sample weight (second) does not broadcast to the per-sample losses (first)")
            }
            weighted = try losses * w
        }
        switch reduction {
        case .none:
            return weighted
        case .sum:
            return try weighted.sum()
        case .sumOverBatchSize:
            let count = weighted.scalarCount
            if count == 0 { return scalarTensor(0, weighted.dtype) }
            return try weighted.sum() / Double(count)
        }
    }
}

/// A loss built from a per-sample function (Keras' `LossFunctionWrapper`), e.g. a custom loss:
///
/// ```swift
/// let huberish = LossFunctionWrapper(name: "my_loss") { yTrue, yPred in
///     try (yPred - yTrue).abs().mean(axes: [-1])
/// }
/// ```
///
/// Before calling the function, `yTrue` and `yPred` go through Keras' `squeeze_or_expand_dimensions`
/// (a trailing axis of size 1 is dropped from the tensor with one dimension more).
public final class LossFunctionWrapper: Loss {
    /// The loss' name.
    public let name: String
    /// How the weighted per-sample losses are reduced.
    public let reduction: LossReduction
    /// The per-sample function `(yTrue, yPred) -> losses`.
    public let function: @Sendable (Tensor, Tensor) throws -> Tensor

    /// Wraps `function`; `reduction` defaults to ``LossReduction/sumOverBatchSize``.
    public init(name: String, reduction: LossReduction = .sumOverBatchSize,
                _ function: @escaping @Sendable (Tensor, Tensor) throws -> Tensor) {
        self.name = name
        self.reduction = reduction
        self.function = function
    }

    /// `"LossFunctionWrapper"`.
    public static var kerasClassName: String { "LossFunctionWrapper" }

    /// `{"reduction": ..., "name": ...}` (the function itself is not serializable).
    public var config: JSONObject { ["reduction": .string(reduction.rawValue), "name": .string(name)] }

    /// `function(yTrue', yPred')` after `squeeze_or_expand_dimensions`.
    public func call(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        let (p, t) = try squeezeOrExpand(yPred: yPred, yTrue: yTrue)
        return try function(t, p)
    }
}
