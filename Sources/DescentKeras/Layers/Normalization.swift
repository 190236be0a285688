import DescentAutodiff
import DescentOptimizers
import DescentTensor

extension LayerArguments {
    /// `value` must be finite and in `range`.
    static func requireNumber(_ value: Double, in range: ClosedRange<Double>, _ layer: String, _ argument: String) throws {
        guard value.isFinite && range.contains(value) else {
            throw KerasError.invalidArgument(field: "\(layer).\(argument)", message: "expected a finite number in [\(range.lowerBound), \(range.upperBound)], got \(value)")
        }
    }

    /// `epsilon` must be finite and positive.
    static func requirePositiveEpsilon(_ value: Double, _ layer: String) throws {
        guard value.isFinite && value > 0 else {
            throw KerasError.invalidArgument(field: "\(layer).epsilon", message: "expected a finite number > 0, got \(value)")
        }
    }

    /// The non-negative axis for an input of `shape`, or an error naming the layer.
    static func resolveAxis(_ axis: Int, _ shape: [Int], _ layer: String) throws -> Int {
        guard axis >= -shape.count && axis < shape.count else {
            throw KerasError.invalidArgument(field: "\(layer).axis", message: "axis \(axis) is out of range for inputs of rank \(shape.count) (shape \(shape))")
        }
        return axis < 0 ? axis + shape.count : axis
    }

    /// The error for an input that does not match the shape a normalization layer was built for.
    static func wrongFeatures(_ layer: String, _ input: [Int], built: [Int], axis: Int) -> TensorError {
        .incompatibleShapes(operation: layer, lhs: input, rhs: built,
                            reason: "the layer was built for inputs of rank \(built.count) with \(built[axis]) features on axis \(axis)")
    }
}

/// Normalizes each feature with the batch's statistics in training, and with moving averages of them
/// at inference (Keras' `BatchNormalization`, tf_keras 2.21's numbers).
///
/// With `c` an index of `axis`, over every other axis:
/// - **training** (`training: true` and the layer ``Layer/trainable``): `mean` and the biased variance
///   `var = Σ(x − mean)² / N` of the batch, `y = gamma · (x − mean) / sqrt(var + epsilon) + beta`,
///   and, once per call and outside every gradient tape, the moving statistics are updated as tf_keras
///   does: `moving ← moving − (moving − batch) · (1 − momentum)` with the biased variance for inputs of
///   rank other than 4 and 5; for rank-4 inputs with `axis` 1 or 3 and rank-5 with `axis` 1 or 4
///   (tf_keras' fused kernel) `moving ← momentum · moving + (1 − momentum) · batch` with the unbiased
///   variance `var · N / (N − 1)` (`var` when `N = 1`).
/// - **inference** (`training: false`, or the layer frozen with `trainable = false`, as tf_keras 2
///   does): `y = gamma · (x − movingMean) / sqrt(movingVariance + epsilon) + beta`.
///
/// `gamma` and `beta` are trainable weights; `moving_mean` and `moving_variance` are non-trainable
/// weights (no optimizer sees them; models save them after `gamma` and `beta`, in Keras' order). The
/// training-mode gradient goes through the batch statistics (one fused operation,
/// ``DescentTensor/Tensor/batchNormalized(axis:scale:offset:epsilon:)``).
public final class BatchNormalization: Layer {
    /// The feature axis (negative counts from the end).
    public let axis: Int
    /// The moving averages' momentum, in [0, 1].
    public let momentum: Double
    /// Added to the variance, > 0.
    public let epsilon: Double
    /// Whether the layer has `beta` (an offset).
    public let center: Bool
    /// Whether the layer has `gamma` (a scale).
    public let scale: Bool
    /// How `beta` starts.
    public let betaInitializer: Initializer
    /// How `gamma` starts.
    public let gammaInitializer: Initializer
    /// How `moving_mean` starts.
    public let movingMeanInitializer: Initializer
    /// How `moving_variance` starts.
    public let movingVarianceInitializer: Initializer
    /// `beta`'s penalty, if any.
    public let betaRegularizer: Regularizer?
    /// `gamma`'s penalty, if any.
    public let gammaRegularizer: Regularizer?
    /// Applied to `beta` after each update.
    public let betaConstraint: (any VariableConstraint)?
    /// Applied to `gamma` after each update.
    public let gammaConstraint: (any VariableConstraint)?
    /// The scale, `[features]`, after the first call (when `scale`).
    public private(set) var gamma: Variable?
    /// The offset, `[features]`, after the first call (when `center`).
    public private(set) var beta: Variable?
    /// The moving mean, `[features]`, a non-trainable weight, after the first call.
    public private(set) var movingMean: Variable?
    /// The moving variance, `[features]`, a non-trainable weight, after the first call.
    public private(set) var movingVariance: Variable?
    /// The non-negative feature axis, after the first call (tf_keras writes it as `[axis]` then).
    public private(set) var builtAxis: Int?
    /// Whether tf_keras runs its fused kernel for the built input rank and axis (see the type's
    /// description): the moving variance then takes the unbiased batch variance.
    public private(set) var usesFusedStatistics = false

    /// Creates a BatchNormalization layer; its weights are created at the first call.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer and the argument when
    ///   `momentum` is not in [0, 1], `epsilon` is not a positive finite number, or an initializer or
    ///   regularizer has an invalid parameter.
    public init(axis: Int = -1, momentum: Double = 0.99, epsilon: Double = 0.001, center: Bool = true, scale: Bool = true,
                betaInitializer: Initializer = .zeros, gammaInitializer: Initializer = .ones,
                movingMeanInitializer: Initializer = .zeros, movingVarianceInitializer: Initializer = .ones,
                betaRegularizer: Regularizer? = nil, gammaRegularizer: Regularizer? = nil,
                betaConstraint: (any VariableConstraint)? = nil, gammaConstraint: (any VariableConstraint)? = nil,
                name: String? = nil) throws {
        let layer = LayerArguments.layer("BatchNormalization", name)
        try LayerArguments.requireNumber(momentum, in: 0...1, layer, "momentum")
        try LayerArguments.requirePositiveEpsilon(epsilon, layer)
        try LayerArguments.check(layer, initializers: [("betaInitializer", betaInitializer), ("gammaInitializer", gammaInitializer),
                                                       ("movingMeanInitializer", movingMeanInitializer),
                                                       ("movingVarianceInitializer", movingVarianceInitializer)],
                                 regularizers: [("betaRegularizer", betaRegularizer), ("gammaRegularizer", gammaRegularizer)])
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.betaInitializer = betaInitializer
        self.gammaInitializer = gammaInitializer
        self.movingMeanInitializer = movingMeanInitializer
        self.movingVarianceInitializer = movingVarianceInitializer
        self.betaRegularizer = betaRegularizer
        self.gammaRegularizer = gammaRegularizer
        self.betaConstraint = betaConstraint
        self.gammaConstraint = gammaConstraint
        super.init(name: name)
    }

    private var label: String { "BatchNormalization '\(name)'" }

    public override func build(inputShape: [Int]) throws {
        let a = try LayerArguments.resolveAxis(axis, inputShape, label)
        let rank = inputShape.count
        if rank == 4 && a == 0 && axis == -4 {
            // tf_keras picks its fused kernel for axis -4 of a rank-4 input, which supports axes 1 and 3 only.
            throw KerasError.invalidArgument(field: "\(label).axis", message: "tf_keras' fused batch normalization supports axis 1 or 3 for rank-4 inputs, got \(axis)")
        }
        let features = inputShape[a]
        guard features > 0 else {
            throw KerasError.invalidArgument(field: "\(label).axis", message: "axis \(axis) of the input shape \(inputShape) has no features")
        }
        if scale {
            gamma = try addWeight(name: "gamma", shape: [features], initializer: gammaInitializer, regularizer: gammaRegularizer,
                                  constraint: gammaConstraint)
        }
        if center {
            beta = try addWeight(name: "beta", shape: [features], initializer: betaInitializer, regularizer: betaRegularizer,
                                 constraint: betaConstraint)
        }
        movingMean = try addWeight(name: "moving_mean", shape: [features], initializer: movingMeanInitializer, trainable: false)
        movingVariance = try addWeight(name: "moving_variance", shape: [features], initializer: movingVarianceInitializer, trainable: false)
        builtAxis = a
        usesFusedStatistics = (rank == 4 && (a == 1 || a == 3)) || (rank == 5 && (a == 1 || a == 4))
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        guard let movingMean, let movingVariance, let a = builtAxis, let built = builtInputShape else { throw LayerArguments.notBuilt(self) }
        guard input.rank == built.count, input.shape[a] == built[a] else {
            throw LayerArguments.wrongFeatures(label, input.shape, built: built, axis: a)
        }
        // tf_keras 2: a frozen BatchNormalization runs in inference mode.
        guard training && trainable else {
            return try input.batchNormalized(axis: a, mean: movingMean.untrackedValue, variance: movingVariance.untrackedValue,
                                             scale: gamma?.value, offset: beta?.value, epsilon: epsilon)
        }
        let (output, mean, variance) = try input.batchNormalized(axis: a, scale: gamma?.value, offset: beta?.value, epsilon: epsilon)
        try updateMovingStatistics(mean: mean, variance: variance, count: input.scalarCount / Swift.max(1, input.shape[a]))
        return output
    }

    /// The moving averages' update after a training call (values only: nothing here is on a tape).
    private func updateMovingStatistics(mean: Tensor, variance: Tensor, count: Int) throws {
        guard let movingMean, let movingVariance else { return }
        let factor = Double(Float(1 - momentum))  // tf_keras' `1.0 - momentum`, a float32 attribute or tensor
        let oldMean = movingMean.untrackedValue, oldVariance = movingVariance.untrackedValue
        if usesFusedStatistics {
            // FusedBatchNormV3's `exponential_avg_factor`: (1 − f) · old + f · batch, Bessel-corrected variance.
            let correction = count > 1 ? Double(count) / Double(count - 1) : 1
            let keep = Double(Float(1 - factor))
            try movingMean.assign(oldMean * keep + mean.untracked * factor)
            try movingVariance.assign(oldVariance * keep + (variance.untracked * correction) * factor)
        } else {
            // `_assign_moving_average`: variable.assign_sub((variable − value) · decay).
            try movingMean.assign(oldMean - (oldMean - mean.untracked) * factor)
            try movingVariance.assign(oldVariance - (oldVariance - variance.untracked) * factor)
        }
    }
}

/// Normalizes each sample over its features (Keras' `LayerNormalization`, tf_keras 2.21's numbers):
/// per position of the other axes, `y = gamma · (x − mean) / sqrt(var + epsilon) + beta`, with the
/// mean and biased variance over `axis`; the same in training and inference. `gamma` and `beta`
/// (`[features]`) are trainable. One fused operation with its backward
/// (``DescentTensor/Tensor/layerNormalized(axis:scale:offset:epsilon:)``).
public final class LayerNormalization: Layer {
    /// The normalized axis (negative counts from the end).
    public let axis: Int
    /// Added to the variance, > 0.
    public let epsilon: Double
    /// Whether the layer has `beta` (an offset).
    public let center: Bool
    /// Whether the layer has `gamma` (a scale).
    public let scale: Bool
    /// How `beta` starts.
    public let betaInitializer: Initializer
    /// How `gamma` starts.
    public let gammaInitializer: Initializer
    /// `beta`'s penalty, if any.
    public let betaRegularizer: Regularizer?
    /// `gamma`'s penalty, if any.
    public let gammaRegularizer: Regularizer?
    /// Applied to `beta` after each update.
    public let betaConstraint: (any VariableConstraint)?
    /// Applied to `gamma` after each update.
    public let gammaConstraint: (any VariableConstraint)?
    /// The scale, `[features]`, after the first call (when `scale`).
    public private(set) var gamma: Variable?
    /// The offset, `[features]`, after the first call (when `center`).
    public private(set) var beta: Variable?
    /// The non-negative axis, after the first call (tf_keras writes it as `[axis]` then).
    public private(set) var builtAxis: Int?

    /// Creates a LayerNormalization layer; its weights are created at the first call.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer and the argument when
    ///   `epsilon` is not a positive finite number, or an initializer or regularizer has an invalid
    ///   parameter.
    public init(axis: Int = -1, epsilon: Double = 0.001, center: Bool = true, scale: Bool = true,
                betaInitializer: Initializer = .zeros, gammaInitializer: Initializer = .ones,
                betaRegularizer: Regularizer? = nil, gammaRegularizer: Regularizer? = nil,
                betaConstraint: (any VariableConstraint)? = nil, gammaConstraint: (any VariableConstraint)? = nil,
                name: String? = nil) throws {
        let layer = LayerArguments.layer("LayerNormalization", name)
        try LayerArguments.requirePositiveEpsilon(epsilon, layer)
        try LayerArguments.check(layer, initializers: [("betaInitializer", betaInitializer), ("gammaInitializer", gammaInitializer)],
                                 regularizers: [("betaRegularizer", betaRegularizer), ("gammaRegularizer", gammaRegularizer)])
        self.axis = axis
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.betaInitializer = betaInitializer
        self.gammaInitializer = gammaInitializer
        self.betaRegularizer = betaRegularizer
        self.gammaRegularizer = gammaRegularizer
        self.betaConstraint = betaConstraint
        self.gammaConstraint = gammaConstraint
        super.init(name: name)
    }

    private var label: String { "LayerNormalization '\(name)'" }

    public override func build(inputShape: [Int]) throws {
        let a = try LayerArguments.resolveAxis(axis, inputShape, label)
        let features = inputShape[a]
        guard features > 0 else {
            throw KerasError.invalidArgument(field: "\(label).axis", message: "axis \(axis) of the input shape \(inputShape) has no features")
        }
        if scale {
            gamma = try addWeight(name: "gamma", shape: [features], initializer: gammaInitializer, regularizer: gammaRegularizer,
                                  constraint: gammaConstraint)
        }
        if center {
            beta = try addWeight(name: "beta", shape: [features], initializer: betaInitializer, regularizer: betaRegularizer,
                                 constraint: betaConstraint)
        }
        builtAxis = a
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        guard let a = builtAxis, let built = builtInputShape else { throw LayerArguments.notBuilt(self) }
        guard input.rank == built.count, input.shape[a] == built[a] else {
            throw LayerArguments.wrongFeatures(label, input.shape, built: built, axis: a)
        }
        return try input.layerNormalized(axis: a, scale: gamma?.value, offset: beta?.value, epsilon: epsilon)
    }
}
