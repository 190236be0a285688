import DescentAutodiff
import DescentOptimizers
import DescentTensor

/// Applies an activation function (Keras' `Activation` layer, e.g. `Activation("relu")`).
///
/// Swift name: `ActivationLayer`, because ``Activation`` is the enum of activation functions that
/// `Dense(activation:)` takes; the Keras class name (``Layer/kerasClassName``) is `"Activation"` and
/// the default layer name `"activation"`, as in Keras.
public final class ActivationLayer: Layer {
    /// Keras 3 builds it at creation: its model config has no `build_config`.
    public override class var recordsKerasBuildConfig: Bool { false }
    /// The function applied to the input.
    public let activation: Activation

    /// Creates an Activation layer: `ActivationLayer(.relu)` is Keras' `Activation("relu")`.
    public init(_ activation: Activation, name: String? = nil) {
        self.activation = activation
        super.init(name: name ?? KerasNaming.uniqueName("activation"))
    }

    /// Creates an Activation layer from a Keras activation name (`"relu"`, `"softmax"`, ...).
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer for an unknown name.
    public convenience init(_ kerasName: String, name: String? = nil) throws {
        guard let activation = Activation(kerasName: kerasName) else {
            throw KerasError.invalidArgument(
                field: "\(LayerArguments.layer("Activation", name)).activation",
                message: "unknown activation '\(kerasName)' (Descent has \(Activation.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.init(activation, name: name)
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor { try activation(input) }

    /// `"Activation"`.
    public override class var kerasClassName: String { "Activation" }
}

/// Softmax along an axis (Keras' `Softmax`): `exp(x) / Σ exp(x)` over `axis`, computed stably.
public final class Softmax: Layer {
    /// Keras 3 builds it at creation: its model config has no `build_config`.
    public override class var recordsKerasBuildConfig: Bool { false }
    /// The axis the softmax normalizes (negative counts from the end).
    public let axis: Int

    /// Creates a Softmax layer over `axis` (Keras' default `-1`, the last axis). The axis is checked
    /// against the input's rank at the first call.
    public init(axis: Int = -1, name: String? = nil) {
        self.axis = axis
        super.init(name: name)
    }

    public override func build(inputShape: [Int]) throws {
        guard axis >= -inputShape.count && axis < inputShape.count else {
            throw KerasError.invalidArgument(field: "Softmax '\(name)'.axis",
                                             message: "axis \(axis) is out of range for inputs of rank \(inputShape.count) (shape \(inputShape))")
        }
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        guard axis >= -input.rank && axis < input.rank else {
            throw KerasError.invalidArgument(field: "Softmax '\(name)'.axis",
                                             message: "axis \(axis) is out of range for inputs of rank \(input.rank) (shape \(input.shape))")
        }
        return try input.softmax(axis: axis)
    }
}

/// The rectified linear unit with Keras' options (Keras' `ReLU` layer):
///
///     f(x) = maxValue            for x >= maxValue
///     f(x) = x                   for threshold <= x < maxValue  (x > threshold when threshold ≠ 0)
///     f(x) = negativeSlope · (x − threshold)   otherwise
///
/// computed as tf_keras' `backend.relu` does (`tf.nn.leaky_relu`, `tf.nn.relu6`, or ReLU, clipping
/// and the negative part), with its gradients: where two pieces meet the gradient is TensorFlow's.
/// The three numbers act as float32 values; tf_keras' config holds them rounded to float32
/// (`cast_to_floatx`), Keras 3's as given.
public final class ReLU: Layer {
    /// Keras 3 builds it at creation: its model config has no `build_config`.
    public override class var recordsKerasBuildConfig: Bool { false }
    /// The largest output, or `nil` for none.
    public let maxValue: Double?
    /// The slope below the threshold (0: plain ReLU).
    public let negativeSlope: Double
    /// The input below which the output is the negative part.
    public let threshold: Double

    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer and the argument when
    ///   a value is negative or not finite (Keras refuses negative values).
    public init(maxValue: Double? = nil, negativeSlope: Double = 0, threshold: Double = 0, name: String? = nil) throws {
        let layer = LayerArguments.layer("ReLU", name)
        for (argument, value) in [("maxValue", maxValue), ("negativeSlope", negativeSlope), ("threshold", threshold)] {
            guard let value else { continue }
            guard value.isFinite && value >= 0 else {
                throw KerasError.invalidArgument(field: "\(layer).\(argument)", message: "expected a finite number >= 0, got \(value)")
            }
        }
        self.maxValue = maxValue
        self.negativeSlope = negativeSlope
        self.threshold = threshold
        super.init(name: name ?? KerasNaming.uniqueName("re_lu"))
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        let x = input
        if maxValue == nil && threshold == 0 {
            if negativeSlope == 0 { return try x.relu() }
            // tf.nn.leaky_relu: x where x > 0, else slope · x (gradient 1 or slope).
            let positive = try x.greater(scalar(x, 0))
            return try x * positive + (x * negativeSlope) * (1 - positive)
        }
        var y: Tensor
        if threshold != 0 {
            y = try x * x.greater(scalar(x, threshold))
        } else if maxValue == 6 {
            // tf.nn.relu6: gradient 1 where 0 < x < 6 only.
            let inside = try x.greater(scalar(x, 0)) * x.less(scalar(x, 6))
            y = try x * inside + x.greaterEqual(scalar(x, 6)) * 6
        } else {
            y = try x.relu()
        }
        if let maxValue, !(threshold == 0 && maxValue == 6) { y = try y.clipped(min: 0, max: maxValue) }
        if negativeSlope != 0 {
            let negativePart = try (threshold != 0 ? -x + threshold : -x).relu()
            y = try y - negativePart * negativeSlope
        }
        return y
    }

    /// `"ReLU"`.
    public override class var kerasClassName: String { "ReLU" }
}

/// Reshapes every sample to `targetShape` (Keras' `Reshape`); the batch dimension is kept. One
/// dimension may be `-1`, inferred from the sample's size.
public final class Reshape: Layer {
    /// Keras 3 builds it at creation: its model config has no `build_config`.
    public override class var recordsKerasBuildConfig: Bool { false }
    /// The shape of one sample after the layer (without the batch dimension); at most one `-1`.
    public let targetShape: [Int]

    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer when `targetShape`
    ///   has a dimension that is neither positive nor `-1`, or more than one `-1`.
    public init(targetShape: [Int], name: String? = nil) throws {
        let field = "\(LayerArguments.layer("Reshape", name)).targetShape"
        if let bad = targetShape.first(where: { $0 <= 0 && $0 != -1 }) {
            throw KerasError.invalidArgument(field: field, message: "dimensions must be positive or -1 (inferred), got \(bad) in \(targetShape)")
        }
        guard targetShape.filter({ $0 == -1 }).count <= 1 else {
            throw KerasError.invalidArgument(field: field, message: "there must be at most one unknown (-1) dimension, got \(targetShape)")
        }
        self.targetShape = targetShape
        super.init(name: name)
    }

    /// The sample shape for samples of `sampleShape`, with the `-1` filled in.
    /// - Throws: ``TensorError/incompatibleShapes(operation:lhs:rhs:reason:)`` naming the layer when the
    ///   sample's element count does not fit the target shape.
    func resolvedTargetShape(for inputShape: [Int]) throws -> [Int] {
        let sample = Array(inputShape.dropFirst())
        let original = try Shape.elementCount(sample, operation: "Reshape '\(name)'")
        let known = try Shape.elementCount(targetShape.filter { $0 != -1 }, operation: "Reshape '\(name)'")
        var resolved = targetShape
        if let unknown = targetShape.firstIndex(of: -1), known > 0, original % known == 0 {
            resolved[unknown] = original / known
            return resolved
        }
        guard targetShape.contains(-1) || known != original else { return resolved }
        throw TensorError.incompatibleShapes(
            operation: "Reshape '\(name)'", lhs: inputShape, rhs: targetShape,
            reason: "a sample of shape \(sample) has \(original) elements, which cannot fill the target shape \(targetShape)")
    }

    public override func build(inputShape: [Int]) throws {
        guard !inputShape.isEmpty else {
            throw TensorError.invalidShape(operation: "Reshape '\(name)'", shape: inputShape, reason: "expects inputs with a batch dimension")
        }
        _ = try resolvedTargetShape(for: inputShape)
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        guard input.rank >= 1 else {
            throw TensorError.invalidShape(operation: "Reshape '\(name)'", shape: input.shape, reason: "expects inputs with a batch dimension")
        }
        return try input.reshaped(to: [input.shape[0]] + resolvedTargetShape(for: input.shape))
    }

    /// `[batch] + targetShape` with the `-1` inferred (left `-1` when the input shape does not fit).
    public override func outputShape(forInputShape shape: [Int]) -> [Int] {
        [shape.first ?? -1] + ((try? resolvedTargetShape(for: shape)) ?? targetShape)
    }
}

/// A rank-0 tensor of `value` in `x`'s dtype.
private func scalar(_ x: Tensor, _ value: Double) throws -> Tensor {
    try Tensor.zeros(shape: [], dtype: x.dtype) + value
}
