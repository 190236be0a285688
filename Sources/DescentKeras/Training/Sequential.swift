import DescentAutodiff
import DescentDistribute
import DescentOptimizers
import DescentTensor
import Foundation

/// An error in setting up or running training (bad arguments, mismatched data).
public enum TrainingError: Error, CustomStringConvertible, Sendable {
    case invalidArgument(String)
    case notCompiled(String)
    case badWeightsFile(String)

    public var description: String {
        switch self {
        case .invalidArgument(let m): return m
        case .notCompiled(let m): return m
        case .badWeightsFile(let m): return m
        }
    }
}

/// How much `fit` prints.
public enum Verbosity: Sendable {
    /// Nothing.
    case silent
    /// A progress bar per epoch (one line per epoch when standard output is not a terminal).
    case progressBar
}

/// A stack of layers (Keras' `Sequential`), with Keras' training loop.
///
/// ```swift
/// let model = try Sequential([Dense(128, activation: .relu), Dense(10)])
/// model.compile(optimizer: try Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true),
///               metrics: [SparseCategoricalAccuracy()])
/// let history = try model.fit(x, y, batchSize: 32, epochs: 20)
/// ```
///
/// Layers create their weights at the first call, so ``trainableWeights`` is empty until then; pass it
/// to an optimizer as a closure (`varList: { model.trainableWeights }`).
public final class Sequential {
    /// The model's name.
    public let name: String
    /// The layers, in order.
    public private(set) var layers: [Layer]
    /// The optimizer set by ``compile(optimizer:loss:metrics:)``.
    public private(set) var optimizer: Optimizer?
    /// The loss set by ``compile(optimizer:loss:metrics:)``.
    public private(set) var loss: (any Loss)?
    /// The metrics set by ``compile(optimizer:loss:metrics:)``.
    public private(set) var metrics: [MeanMetricWrapper] = []
    /// Set by a callback to end `fit` (Keras' `stop_training`): set in `onTrainBatchEnd` (TerminateOnNaN)
    /// it ends the epoch after that batch, then `fit` runs validation and `onEpochEnd` and stops; set in
    /// `onEpochEnd` (EarlyStopping) it stops after the current epoch.
    public var stopTraining = false

    /// The strategy of the scope the model was created in, `nil` outside every scope (or in the default
    /// strategy's).
    private let creationStrategy: Strategy?

    /// The distribution strategy `fit`, `evaluate`, `predict` and ``trainStep(_:_:)`` run under (Keras'
    /// `model.distribute_strategy`): the strategy whose ``Strategy/scope(_:)`` the model was created in,
    /// or, for a model created outside every scope, ``Strategy/current`` at the time of the call.
    ///
    /// With more than one replica (`MultiWorkerMirroredStrategy` under `mpirun`), `fit`'s `batchSize` is
    /// the **global** batch, split across replicas; gradients are summed across replicas while the
    /// backward pass runs; metrics and logs are reduced across replicas (every replica sees the same);
    /// only the chief replica prints. With one replica everything is exactly as without a strategy.
    public var distributionStrategy: Strategy { creationStrategy ?? Strategy.current }

    /// A model of `layers`; a `nil` name becomes `"sequential"`, `"sequential_1"`, ... Created inside a
    /// strategy's scope, the model keeps that strategy (``distributionStrategy``).
    public init(_ layers: [Layer] = [], name: String? = nil) {
        self.layers = layers
        self.name = name ?? KerasNaming.uniqueName("sequential")
        self.creationStrategy = Strategy.hasStrategy ? Strategy.current : nil
    }

    /// Appends a layer.
    public func add(_ layer: Layer) { layers.append(layer) }

    /// Creates every layer's weights for inputs of `inputShape` (batch dimension included, any size).
    public func build(inputShape: [Int]) throws {
        var shape = inputShape
        for layer in layers {
            try layer.buildIfNeeded(inputShape: shape)
            shape = layer.outputShape(forInputShape: shape)
        }
    }

    /// Runs the layers in order (building them on the first call).
    public func callAsFunction(_ input: Tensor, training: Bool = false) throws -> Tensor {
        var x = input
        for layer in layers { x = try layer(x, training: training) }
        return x
    }

    /// All variables, layer by layer.
    public var weights: [Variable] { layers.flatMap(\.weights) }
    /// The variables training updates.
    public var trainableWeights: [Variable] { layers.flatMap(\.trainableWeights) }
    /// The variables training leaves alone.
    public var nonTrainableWeights: [Variable] { layers.flatMap(\.nonTrainableWeights) }

    /// The layers' regularization penalties (Keras' `model.losses`).
    public func regularizationLosses() throws -> [Tensor] { try layers.flatMap { try $0.regularizationLosses() } }

    /// The values of ``weights``.
    public func getWeights() -> [Tensor] { weights.map(\.untrackedValue) }

    /// Assigns ``weights`` in order. The whole list is checked first (count, then each value's shape and
    /// dtype), so a list that fails changes no weight.
    /// - Throws: ``TrainingError`` for a wrong count, or naming the first weight (position and variable
    ///   name) whose value has the wrong shape or dtype.
    public func setWeights(_ values: [Tensor]) throws {
        let ws = weights
        guard values.count == ws.count else {
            throw TrainingError.invalidArgument("setWeights on model '\(name)': got \(values.count) values for \(ws.count) weights")
        }
        for (i, (w, v)) in zip(ws, values).enumerated() where v.shape != w.shape || v.dtype != w.dtype {
            throw TrainingError.invalidArgument(
                "setWeights on model '\(name)': value \(i) for weight '\(w.name)' has shape \(v.shape) and dtype "
                    + "\(v.dtype), expected shape \(w.shape) and dtype \(w.dtype)")
        }
        for (w, v) in zip(ws, values) { try w.assign(v) }  // cannot throw: checked above
    }

    // MARK: Summary

    /// Keras' `model.summary()` table (layer, output shape, parameter count, totals).
    public func summary() -> String {
        let line = String(repeating: "_", count: 65), double = String(repeating: "=", count: 65)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        var out = "Model: \"\(name)\"\n\(line)\n"
        out += " " + pad("Layer (type)", 28) + pad("Output Shape", 26) + "Param #\n\(double)\n"
        var shape = layers.first?.builtInputShape
        for (i, layer) in layers.enumerated() {
            let output = shape.map { layer.outputShape(forInputShape: $0) }
            let shapeText = output.map { "(None, " + $0.dropFirst().map(String.init).joined(separator: ", ") + ")" } ?? "(unbuilt)"
            out += " " + pad("\(layer.name) (\(type(of: layer).kerasClassName))", 28) + pad(shapeText, 26)
                + "\(layer.parameterCount)\n"
            if i < layers.count - 1 { out += "\n" }
            shape = output
        }
        let total = weights.reduce(0) { $0 + $1.scalarCount }
        let trainable = trainableWeights.reduce(0) { $0 + $1.scalarCount }
        func bytes(_ n: Int) -> String {
            let b = Double(n * 4)
            return b >= 1024 * 1024 ? cFormat("%.2f MB", b / 1024 / 1024) : b >= 1024 ? cFormat("%.2f KB", b / 1024) : cFormat("%.2f Byte", b)
        }
        out += "\(double)\nTotal params: \(total) (\(bytes(total)))\n"
        out += "Trainable params: \(trainable) (\(bytes(trainable)))\n"
        out += "Non-trainable params: \(total - trainable) (\(bytes(total - trainable)))\n\(line)\n"
        return out
    }

    // MARK: Training

    /// Sets the optimizer, loss and metrics for ``fit(_:_:batchSize:epochs:verbose:callbacks:validationSplit:validationData:shuffle:seed:)``.
    public func compile(optimizer: Optimizer, loss: any Loss, metrics: [MeanMetricWrapper] = []) {
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
        self.metricNames = []
    }

    /// Keras' string form: `compile(optimizer: "adam", loss: "sparse_categorical_crossentropy",
    /// metrics: ["accuracy"])`. `"accuracy"` becomes binary, sparse or categorical accuracy from the
    /// shapes of the first batch, as Keras does.
    /// - Throws: for an unknown optimizer, loss or metric name.
    public func compile(optimizer: String, loss: String, metrics: [String] = []) throws {
        compile(optimizer: try Optimizer.deserialize(json: optimizer), loss: try Losses.get(loss))
        metricNames = metrics
    }

    /// Metric names from the string `compile`, resolved against the first batch's shapes.
    var metricNames: [String] = []

    func resolveMetricNames(_ x: Tensor, _ y: Tensor) throws {
        guard !metricNames.isEmpty, x.rank >= 1, x.shape[0] > 0 else { return }
        let outputShape = try self(x.slice(rows: 0..<1)).shape
        metrics = try metricNames.map { try Metrics.compiled($0, yTrueShape: [1] + y.shape.dropFirst(), yPredShape: outputShape) }
        metricNames = []
    }

    func compiled() throws -> (Optimizer, any Loss) {
        guard let optimizer, let loss else {
            throw TrainingError.notCompiled("model '\(name)' must be compiled (compile(optimizer:loss:metrics:)) before fit or evaluate")
        }
        return (optimizer, loss)
    }

    func checkData(_ x: Tensor, _ y: Tensor, _ what: String) throws {
        guard x.rank >= 1, y.rank >= 1, x.shape[0] == y.shape[0] else {
            throw TrainingError.invalidArgument(
                "\(what): x has shape \(x.shape) and y has shape \(y.shape); they need the same number of samples (first dimension)")
        }
    }

    /// One optimization step on a batch (Keras' `train_step`): forward in training mode on a tape, the
    /// loss plus regularization, gradients, `applyGradients`. Returns the batch loss.
    ///
    /// Under a strategy with more than one replica (``distributionStrategy``), `x` and `y` are this
    /// replica's part of a global batch of `x.shape[0] × numReplicasInSync` rows (equal parts, as
    /// Keras assumes): the loss is scaled for the global batch and the gradients are summed across
    /// replicas (see ``fit(_:_:batchSize:epochs:verbose:callbacks:validationSplit:validationData:shuffle:seed:initialEpoch:output:)``);
    /// the returned loss is this replica's batch loss (its local mean plus regularization).
    @discardableResult
    public func trainStep(_ x: Tensor, _ y: Tensor) throws -> (loss: Double, predictions: Tensor) {
        try inDistributionScope { strategy in
            if let replicated = strategy {
                let rows = x.rank == 0 ? 1 : x.shape[0]
                let step = try replicaTrainStep(x, y, globalRows: rows * replicated.numReplicasInSync, strategy: replicated)
                return (step.loss * Double(replicated.numReplicasInSync), step.predictions)
            }
            return try localTrainStep(x, y)
        }
    }

    /// The loss the gradients are taken of: a Keras 3 optimizer's `scale_loss` (its `loss_scale_factor`,
    /// or a LossScaleOptimizer's dynamic scale), the loss itself otherwise. Recorded on the tape; the
    /// reported loss stays unscaled, as in Keras 3's `train_step`.
    static func scaledForGradients(_ loss: Tensor, _ optimizer: Optimizer) throws -> Tensor {
        guard let keras3 = optimizer as? Keras3.Optimizer else { return loss }
        return try keras3.scaleLoss(loss)
    }

    /// ``trainStep(_:_:)`` on one replica: today's step, with no collective.
    func localTrainStep(_ x: Tensor, _ y: Tensor) throws -> (loss: Double, predictions: Tensor) {
        let (optimizer, loss) = try compiled()
        let tape = GradientTape()
        let (value, scaled, predictions) = try tape.record { () throws -> (Tensor, Tensor, Tensor) in
            let predictions = try self(x, training: true)
            var value = try loss(y, predictions, sampleWeight: nil)
            for penalty in try regularizationLosses() { value = try value + penalty }
            return (value, try Sequential.scaledForGradients(value, optimizer), predictions)
        }
        let variables = trainableWeights
        let grads = try tape.gradient(of: scaled, wrt: variables)
        try optimizer.applyGradients(Array(zip(grads, variables)))
        return (try value.item(), predictions.untracked)
    }
}
