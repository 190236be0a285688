import DescentAutodiff
@_spi(DescentInternals) import DescentTensor
import DescentOptimizers

/// The base class of Keras-style layers.
///
/// A layer creates its weights on its first call, from the input's shape (``build(inputShape:)``), so
/// models need no input shape up front: the seed's "variables created when the model is first called".
/// Subclasses override ``build(inputShape:)``, ``call(_:training:)`` and ``outputShape(forInputShape:)``,
/// and create weights with ``addWeight(name:shape:dtype:initializer:regularizer:constraint:trainable:)``.
open class Layer {
    /// The layer's name (`"dense"`, `"dense_1"`, ...), the prefix of its variables' names.
    public let name: String
    /// The variables this layer created itself, in creation order (a model's own weights exclude its
    /// layers').
    public private(set) var ownWeights: [Variable] = []
    /// The layer's variables: its own in creation order, then each of ``sublayers``' (Keras'
    /// `layer.weights`).
    public var weights: [Variable] { ownWeights + sublayers.flatMap(\.weights) }
    /// The layers this layer is made of, in order (a model's layers; none for a plain layer). Their
    /// weights, penalties and `trainable` flags count as this layer's.
    open var sublayers: [Layer] { [] }
    /// Whether the layer's weights are trained (Keras' `layer.trainable`).
    public var trainable = true
    /// Whether the weights exist.
    public private(set) var isBuilt = false
    /// The input shape the layer was built for (batch dimension included).
    public private(set) var builtInputShape: [Int]?
    private var regularized: [(Variable, Regularizer)] = []
    /// Set by the model-file loader before building: ``addWeight(name:shape:dtype:initializer:regularizer:constraint:trainable:)``
    /// then creates zeros instead of drawing initial values (they are overwritten by the file's).
    var weightsWillBeLoaded = false

    /// Creates a layer; a `nil` name becomes a unique snake-cased class name (`"dense"`, `"dense_1"`).
    public init(name: String?) {
        self.name = name ?? KerasNaming.uniqueName(KerasNaming.snakeCase(String(describing: type(of: self))))
    }

    /// Creates the layer's weights for an input of `inputShape` (override).
    open func build(inputShape: [Int]) throws {}

    /// The layer's computation (override). `training` enables training-only behaviour (dropout).
    open func call(_ input: Tensor, training: Bool) throws -> Tensor { input }

    /// The output shape for an input shape (override; used by `summary()`).
    open func outputShape(forInputShape shape: [Int]) -> [Int] { shape }

    /// Builds the layer on first use, then calls it.
    public func callAsFunction(_ input: Tensor, training: Bool = false) throws -> Tensor {
        try buildIfNeeded(inputShape: input.shape)
        return try call(input, training: training)
    }

    /// Builds the layer for `inputShape` unless it is built already.
    public func buildIfNeeded(inputShape: [Int]) throws {
        guard !isBuilt else { return }
        try build(inputShape: inputShape)
        markBuilt(inputShape: inputShape)
    }

    /// Records that the weights exist for `inputShape` (models call it from their public `build`,
    /// which callers may call directly, as in Keras).
    func markBuilt(inputShape: [Int]) {
        builtInputShape = inputShape
        isBuilt = true
    }

    /// Creates a variable named `"<layer>/<name>"` and adds it to ``weights``.
    @discardableResult
    public func addWeight(name: String, shape: [Int], dtype: DType = .float32, initializer: Initializer = .glorotUniform,
                          regularizer: Regularizer? = nil, constraint: (any VariableConstraint)? = nil,
                          trainable: Bool = true) throws -> Variable {
        // A layer whose weights are about to be loaded (loadModel) skips the initializer: the values are
        // replaced before anyone reads them, and random initialization of a large model takes time.
        let value = weightsWillBeLoaded ? try Tensor.zeros(shape: shape, dtype: dtype) : try initializer.makeValue(shape: shape, dtype: dtype)
        let v = Variable(value, name: "\(self.name)/\(name)", trainable: trainable, constraint: constraint)
        ownWeights.append(v)
        if let regularizer { regularized.append((v, regularizer)) }
        return v
    }

    /// The weights a model trains (none when the layer is frozen; a frozen model freezes its layers).
    public var trainableWeights: [Variable] {
        trainable ? ownWeights.filter(\.trainable) + sublayers.flatMap(\.trainableWeights) : []
    }

    /// The weights that are not trained (all of them when the layer is frozen; a BatchNormalization's
    /// moving statistics).
    public var nonTrainableWeights: [Variable] {
        trainable ? ownWeights.filter { !$0.trainable } + sublayers.flatMap(\.nonTrainableWeights) : weights
    }

    /// The regularization penalties of the layer's weights and its sublayers' (Keras' `layer.losses`),
    /// recorded on active tapes.
    public func regularizationLosses() throws -> [Tensor] {
        try regularized.map { v, r in try r.penalty(v.value) } + sublayers.flatMap { try $0.regularizationLosses() }
    }

    /// This layer and every layer inside it, depth first (a model's nested layers included).
    public var flattenedLayers: [Layer] { [self] + sublayers.flatMap(\.flattenedLayers) }

    /// The number of scalars in ``weights``.
    public var parameterCount: Int { weights.reduce(0) { $0 + $1.scalarCount } }

    /// The Keras class name shown by `summary()` (defaults to the Swift class name).
    open class var kerasClassName: String { String(describing: self) }

    /// Whether Keras 3 records a `build_config` (the input shape) for the layer in model configs: false
    /// for layers Keras 3 builds at creation because they have no weights (Dropout, pooling, Activation,
    /// Softmax, ReLU, Reshape override it).
    open class var recordsKerasBuildConfig: Bool { true }
}

/// The checks of layer constructor arguments: each throws a ``KerasError/invalidArgument(field:message:)``
/// whose field names the layer (its class, and its name when one is given) and the argument, e.g.
/// `Dense.units` or `Dense 'hidden'.kernelInitializer.standardDeviation`.
enum LayerArguments {
    /// `"Dense"`, or `"Dense 'hidden'"` when the layer is named.
    static func layer(_ type: String, _ name: String?) -> String { name.map { "\(type) '\($0)'" } ?? type }

    /// `value` must be a positive integer (Keras' `units`, `input_dim`, `output_dim`).
    static func requirePositive(_ value: Int, _ layer: String, _ argument: String) throws {
        guard value > 0 else {
            throw KerasError.invalidArgument(field: "\(layer).\(argument)", message: "expected a positive integer, got \(value)")
        }
    }

    /// The layer's initializer and regularizer arguments.
    static func check(_ layer: String, initializers: [(String, Initializer)], regularizers: [(String, Regularizer?)]) throws {
        for (argument, initializer) in initializers { try initializer.validate(field: "\(layer).\(argument)") }
        for (argument, regularizer) in regularizers { try regularizer?.validate(field: "\(layer).\(argument)") }
    }

    /// The error for a layer called directly through ``Layer/call(_:training:)`` before it was built.
    static func notBuilt(_ layer: Layer) -> KerasError {
        KerasError.invalidArgument(
            field: "\(type(of: layer)) '\(layer.name)'",
            message: "call(_:training:) before the layer was built: call the layer itself (layer(x)) or build(inputShape:) first")
    }
}

/// A densely connected layer: `activation(x · kernel + bias)` (Keras' `Dense`).
public final class Dense: Layer {
    /// Output features.
    public let units: Int
    /// Applied to `x · kernel + bias`.
    public let activation: Activation
    /// Whether the layer has a bias vector.
    public let useBias: Bool
    /// How the kernel starts.
    public let kernelInitializer: Initializer
    /// How the bias starts.
    public let biasInitializer: Initializer
    /// The kernel's penalty, if any.
    public let kernelRegularizer: Regularizer?
    /// The bias' penalty, if any.
    public let biasRegularizer: Regularizer?
    /// Applied to the kernel after each update.
    public let kernelConstraint: (any VariableConstraint)?
    /// Applied to the bias after each update.
    public let biasConstraint: (any VariableConstraint)?
    /// `[inputFeatures, units]`, after the first call.
    public private(set) var kernel: Variable?
    /// `[units]`, after the first call (when `useBias`).
    public private(set) var bias: Variable?

    /// Creates a Dense layer; its kernel is created at the first call from the input's last dimension.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer and the argument when
    ///   `units` is not positive, or an initializer or regularizer has an invalid parameter
    ///   (``Initializer/validate(field:)``, ``Regularizer/validate(field:)``).
    public init(_ units: Int, activation: Activation = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                kernelConstraint: (any VariableConstraint)? = nil, biasConstraint: (any VariableConstraint)? = nil,
                name: String? = nil) throws {
        let layer = LayerArguments.layer("Dense", name)
        try LayerArguments.requirePositive(units, layer, "units")
        try LayerArguments.check(layer, initializers: [("kernelInitializer", kernelInitializer), ("biasInitializer", biasInitializer)],
                                 regularizers: [("kernelRegularizer", kernelRegularizer), ("biasRegularizer", biasRegularizer)])
        self.units = units
        self.activation = activation
        self.useBias = useBias
        self.kernelInitializer = kernelInitializer
        self.biasInitializer = biasInitializer
        self.kernelRegularizer = kernelRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.biasConstraint = biasConstraint
        super.init(name: name)
    }

    public override func build(inputShape: [Int]) throws {
        guard let features = inputShape.last, inputShape.count >= 2 else {
            throw TensorError.invalidShape(operation: "Dense '\(name)'", shape: inputShape,
                                           reason: "expects inputs of rank >= 2 ([batch, features])")
        }
        kernel = try addWeight(name: "kernel", shape: [features, units], initializer: kernelInitializer,
                               regularizer: kernelRegularizer, constraint: kernelConstraint)
        if useBias {
            bias = try addWeight(name: "bias", shape: [units], initializer: biasInitializer,
                                 regularizer: biasRegularizer, constraint: biasConstraint)
        }
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        guard let kernel else { throw LayerArguments.notBuilt(self) }
        guard input.shape.last == kernel.shape[0] else {
            throw TensorError.incompatibleShapes(operation: "Dense '\(name)'", lhs: input.shape, rhs: kernel.shape,
                                                 reason: "the layer was built for \(kernel.shape[0]) input features")
        }
        let y = try input.matmul(kernel.value)
        guard let bias else { return try activation(y) }
        // Bias and ReLU in one pass (same values and gradients as `y + bias`, then ReLU).
        if activation == .relu { return try y.addingBias(bias.value, relu: true) }
        return try activation(y.addingBias(bias.value))
    }

    public override func outputShape(forInputShape shape: [Int]) -> [Int] { Array(shape.dropLast()) + [units] }
}

/// Looks up rows of a `[inputDim, outputDim]` table for integer indices (Keras' `Embedding`). Its
/// gradient is sparse (``IndexedSlices``), so optimizers take their sparse path.
public final class Embedding: Layer {
    /// The number of rows (the vocabulary size).
    public let inputDim: Int
    /// The length of each row.
    public let outputDim: Int
    /// How the table starts.
    public let embeddingsInitializer: Initializer
    /// The table's penalty, if any.
    public let embeddingsRegularizer: Regularizer?
    /// The table, after the first call.
    public private(set) var embeddings: Variable?

    /// Creates an Embedding layer of `inputDim` rows of `outputDim` values; the table is created at the
    /// first call.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer and the argument when a
    ///   dimension is not positive, or the initializer or regularizer has an invalid parameter.
    public init(inputDim: Int, outputDim: Int, embeddingsInitializer: Initializer = .randomUniform(),
                embeddingsRegularizer: Regularizer? = nil, name: String? = nil) throws {
        let layer = LayerArguments.layer("Embedding", name)
        try LayerArguments.requirePositive(inputDim, layer, "inputDim")
        try LayerArguments.requirePositive(outputDim, layer, "outputDim")
        try LayerArguments.check(layer, initializers: [("embeddingsInitializer", embeddingsInitializer)],
                                 regularizers: [("embeddingsRegularizer", embeddingsRegularizer)])
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.embeddingsInitializer = embeddingsInitializer
        self.embeddingsRegularizer = embeddingsRegularizer
        super.init(name: name)
    }

    public override func build(inputShape: [Int]) throws {
        embeddings = try addWeight(name: "embeddings", shape: [inputDim, outputDim], initializer: embeddingsInitializer,
                                   regularizer: embeddingsRegularizer)
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        guard let embeddings else { throw LayerArguments.notBuilt(self) }
        return try embeddings.value.gather(input)
    }

    public override func outputShape(forInputShape shape: [Int]) -> [Int] { shape + [outputDim] }
}

/// Sets a fraction `rate` of inputs to 0 during training and scales the rest by `1 / (1 − rate)`
/// (Keras' `Dropout`); the identity at inference.
public final class Dropout: Layer {
    /// The fraction of inputs dropped during training, in [0, 1).
    public let rate: Double
    /// The seed given at creation (`nil` when the mask generator's seed was drawn from ``GlobalRandom``).
    public let seed: UInt64?
    private let generator: SanitizerVisibleMutex<SeededGenerator>

    /// - Parameter seed: the mask generator's seed; `nil` draws one from ``GlobalRandom``.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer when `rate` is not in
    ///   [0, 1) (NaN included); 1 would drop everything and scale by 1 / 0, as `tf.nn.dropout` refuses too.
    public init(_ rate: Double, seed: UInt64? = nil, name: String? = nil) throws {
        guard rate >= 0 && rate < 1 else {
            throw KerasError.invalidArgument(field: "\(LayerArguments.layer("Dropout", name)).rate",
                                             message: "expected a value in [0, 1), got \(rate)")
        }
        self.rate = rate
        self.seed = seed
        self.generator = SanitizerVisibleMutex(SeededGenerator(seed: seed ?? GlobalRandom.nextSeed()))
        super.init(name: name)
    }

    /// The mask generator's state (``SeededGenerator/state``), saved and restored by
    /// ``BackupAndRestore`` so that a resumed run draws the same masks.
    public var generatorState: [UInt64] { generator.withLock { $0.state } }

    /// Continues the mask generator from a saved ``generatorState``.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` for a list that is not a generator state.
    public func restoreGenerator(state: [UInt64]) throws {
        guard let g = SeededGenerator(state: state) else {
            throw KerasError.invalidArgument(field: "Dropout '\(name)'.generatorState", message: "expected a generator state (6 words)")
        }
        generator.withLock { $0 = g }
    }

    /// Keras 3 builds a Dropout at creation.
    public override class var recordsKerasBuildConfig: Bool { false }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        guard training && rate > 0 else { return input }
        let uniform = try generator.withLock {
            try Tensor.randomUniform(shape: input.shape, dtype: input.dtype, using: &$0)
        }
        let keep = try uniform.greaterEqual(Tensor.zeros(shape: [], dtype: input.dtype) + rate)
        return try input * (keep * (1 / (1 - rate)))
    }
}

/// Flattens every dimension but the batch (Keras' `Flatten`). It has no argument a caller can get
/// wrong: its only one is the name.
public final class Flatten: Layer {
    /// Creates a Flatten layer.
    public override init(name: String? = nil) { super.init(name: name) }
    public override func call(_ input: Tensor, training: Bool) throws -> Tensor { try input.flattenedBatch() }
    /// `[batch, product of the other dimensions]`; the product is `-1` (unknown, Keras' `None`) when
    /// `shape` is not a valid tensor shape (a negative dimension or an overflowing product).
    public override func outputShape(forInputShape shape: [Int]) -> [Int] {
        [shape.first ?? 1, (try? Shape.elementCount(Array(shape.dropFirst()), operation: "Flatten")) ?? -1]
    }
}
