import DescentAutodiff
import DescentDistribute
import DescentOptimizers
import DescentTensor
import Foundation

/// A stack of layers (Keras' `Sequential`), with Keras' training loop (``Model``).
///
/// ```swift
/// let model = try Sequential([Input(shape: [784]), Dense(128, activation: .relu), Dense(10)])
/// try model.compile(optimizer: "adam", loss: SparseCategoricalCrossentropy(fromLogits: true),
///                   metrics: ["accuracy"])
/// let history = try model.fit(x, y, batchSize: 32, epochs: 20)
/// ```
///
/// Given an input shape (an ``Input`` first, or `inputShape:`), the model builds at once and
/// ``Model/summary()`` shows its shapes; otherwise layers create their weights at the first call, so
/// ``Layer/trainableWeights`` is empty until then (pass it to an optimizer as a closure,
/// `varList: { model.trainableWeights }`). A `Sequential` is a layer: it can be one of another model's
/// layers.
public final class Sequential: Model {
    /// The layers, in order (an ``Input`` given at creation is not one of them, as in Keras).
    private var stack: [Layer]

    /// A model of `layers`; a `nil` name becomes `"sequential"`, `"sequential_1"`, ... An ``Input`` as
    /// the first layer, or `inputShape` (without the batch dimension, Keras' `input_shape`), builds the
    /// model at once. Created inside a strategy's scope, the model keeps that strategy
    /// (``Model/distributionStrategy``).
    /// - Throws: when the layers cannot be built for the input shape (a layer's error, naming it), or an
    ///   ``Input`` is not the first layer.
    public init(_ layers: [Layer] = [], inputShape: [Int]? = nil, name: String? = nil) throws {
        var layers = layers
        var shape = inputShape.map { [1] + $0 }
        if let input = layers.first as? Input {
            shape = [input.batchSize ?? 1] + input.shape
            layers.removeFirst()
        }
        if let misplaced = layers.first(where: { $0 is Input }) {
            throw TrainingError.invalidArgument("Sequential: Input '\(misplaced.name)' must be the first layer")
        }
        self.stack = layers
        super.init(name: name ?? KerasNaming.uniqueName("sequential"))
        if let shape { try buildIfNeeded(inputShape: shape) }
    }

    /// `"Sequential"`.
    public override class var kerasClassName: String { "Sequential" }

    public override var layers: [Layer] { stack }
    public override var sublayers: [Layer] { stack }

    /// Appends a layer (built at once when the model is).
    /// - Throws: when the model is built and the layer cannot be built for the last layer's output.
    public func add(_ layer: Layer) throws {
        if let shape = builtInputShape {
            try layer.buildIfNeeded(inputShape: outputShape(forInputShape: shape))
        }
        stack.append(layer)
    }

    /// Creates every layer's weights for inputs of `inputShape` (batch dimension included, any size):
    /// each layer is built for the previous one's output shape.
    public override func build(inputShape: [Int]) throws {
        var shape = inputShape
        for layer in stack {
            try layer.buildIfNeeded(inputShape: shape)
            shape = layer.outputShape(forInputShape: shape)
        }
        markBuilt(inputShape: inputShape)
    }

    /// Runs the layers in order (building them on the first call).
    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        var x = input
        for layer in stack { x = try layer(x, training: training) }
        return x
    }

    /// The last layer's output shape, through every layer.
    public override func outputShape(forInputShape shape: [Int]) -> [Int] {
        stack.reduce(shape) { $1.outputShape(forInputShape: $0) }
    }
}

/// The input of a model (Keras' `keras.Input` / `InputLayer`): put first in a ``Sequential``, it gives
/// the input shape (without the batch dimension) so the model builds at once.
public final class Input: Layer {
    /// The shape of one sample (Keras' `shape`).
    public let shape: [Int]
    /// A fixed batch size, if any (Keras' `batch_size`).
    public let batchSize: Int?

    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming `Input.shape` for a dimension
    ///   that is not positive, or `Input.batchSize` for a batch size that is not.
    public init(shape: [Int], batchSize: Int? = nil, name: String? = nil) throws {
        let layer = LayerArguments.layer("Input", name)
        for d in shape where d <= 0 {
            throw KerasError.invalidArgument(field: "\(layer).shape", message: "expected positive dimensions, got \(shape)")
        }
        if let batchSize { try LayerArguments.requirePositive(batchSize, layer, "batchSize") }
        self.shape = shape
        self.batchSize = batchSize
        super.init(name: name ?? KerasNaming.uniqueName("input_layer"))
    }

    /// `"InputLayer"`.
    public override class var kerasClassName: String { "InputLayer" }
}
