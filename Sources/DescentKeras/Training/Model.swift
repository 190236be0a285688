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

/// How much `fit`, `evaluate` and `predict` print.
public enum Verbosity: Sendable {
    /// Nothing.
    case silent
    /// A progress bar per epoch (one line per epoch when standard output is not a terminal).
    case progressBar
}

/// One batch as the built-in loops hand it to ``Model/trainStep(_:)`` and ``Model/testStep(_:)``
/// (Keras' `data` tuple `(x, y, sample_weight)`).
public struct Batch {
    /// The inputs.
    public var x: Tensor
    /// The targets.
    public var y: Tensor
    /// Per-sample weights (`[rows]`), from `fit`'s `sampleWeight` and `classWeight`, if any.
    public var sampleWeight: Tensor?
    /// Under a strategy with several replicas: the rows of the global batch this batch is one replica's
    /// part of (`nil`: this replica's rows times the number of replicas, equal parts).
    public var globalRows: Int?

    /// A batch of `x` and `y`, optionally weighted.
    public init(x: Tensor, y: Tensor, sampleWeight: Tensor? = nil) {
        self.x = x
        self.y = y
        self.sampleWeight = sampleWeight
    }

    init(x: Tensor, y: Tensor, sampleWeight: Tensor?, globalRows: Int?) {
        self.init(x: x, y: y, sampleWeight: sampleWeight)
        self.globalRows = globalRows
    }

    /// The number of rows (samples).
    public var rows: Int { x.rank == 0 ? 1 : x.shape[0] }
}

/// The running mean of the batch losses of an epoch (Keras' loss tracker): each batch's loss weighted
/// by its rows.
struct LossTracker {
    var sum = 0.0
    var seen = 0
    mutating func add(_ loss: Double, rows: Int) {
        sum += loss * Double(rows)
        seen += rows
    }
    mutating func reset() { self = LossTracker() }
    var mean: Double { seen > 0 ? sum / Double(seen) : 0 }
}

/// A Keras model (`tf.keras.Model`): a layer made of layers, with Keras' training loop (`compile`,
/// `fit`, `evaluate`, `predict`).
///
/// Subclass it as Keras' "subclassed model": keep the layers in stored properties (they are found by
/// reflection, in declaration order, as Keras tracks attributes; also inside arrays and optionals),
/// override ``call(_:training:)``, and, to customize what `fit` does, ``trainStep(_:)`` (Keras'
/// `train_step`) and ``testStep(_:)``:
///
/// ```swift
/// final class TwoLayers: Model {
///     let hidden = try! Dense(64, activation: .relu)
///     let output = try! Dense(10)
///     override func call(_ x: Tensor, training: Bool) throws -> Tensor { try output(hidden(x, training: training)) }
///
///     override func trainStep(_ data: Batch) throws -> Logs {
///         let tape = GradientTape()
///         let (loss, yPred) = try tape.record { () throws -> (Tensor, Tensor) in
///             let yPred = try self(data.x, training: true)
///             return (try computeLoss(x: data.x, y: data.y, yPred: yPred, sampleWeight: data.sampleWeight), yPred)
///         }
///         let grads = try tape.gradient(of: loss, wrt: trainableWeights)
///         try optimizer!.applyGradients(Array(zip(grads, trainableWeights)))
///         try updateMetrics(yTrue: data.y, yPred: yPred)
///         return metricResults()
///     }
/// }
/// ```
///
/// ``Sequential`` is the model of a stack of layers. A model is a layer, so models nest.
open class Model: Layer {
    /// The optimizer set by `compile`.
    public internal(set) var optimizer: Optimizer?
    /// The loss set by `compile`.
    public internal(set) var loss: (any Loss)?
    /// The metrics set by `compile` (those given by name, such as `"accuracy"`, appear once the first
    /// batch's shapes resolved them).
    public internal(set) var metrics: [any TrainingMetric] = []
    /// Set by a callback to end `fit` (Keras' `stop_training`): set in `onTrainBatchEnd` (TerminateOnNaN)
    /// it ends the epoch after that batch, then `fit` runs validation and `onEpochEnd` and stops; set in
    /// `onEpochEnd` (EarlyStopping) it stops after the current epoch.
    public var stopTraining = false

    /// The compiled metrics in order, some still names waiting for the first batch's shapes.
    var metricSlots: [MetricSlot] = []
    /// The running loss of the current `fit` epoch (``trainStep(_:)``'s default) and of `evaluate`.
    var trainLoss = LossTracker()
    var testLoss = LossTracker()
    /// With several replicas: every metric's state summed over replicas after the last training step
    /// (what the logs show and a backup keeps).
    var replicaMetricStates: [[Double]] = []
    /// The layers found by reflection, once the model is built.
    private var discoveredLayers: [Layer]?

    /// The strategy of the scope the model was created in, `nil` outside every scope (or in the default
    /// strategy's).
    private let creationStrategy: Strategy?

    /// The distribution strategy `fit`, `evaluate`, `predict` and ``trainStep(_:)`` run under (Keras'
    /// `model.distribute_strategy`): the strategy whose ``Strategy/scope(_:)`` the model was created in,
    /// or, for a model created outside every scope, ``Strategy/current`` at the time of the call.
    ///
    /// With more than one replica (`MultiWorkerMirroredStrategy` under `mpirun`), `fit`'s `batchSize` is
    /// the **global** batch, split across replicas; gradients are summed across replicas while the
    /// backward pass runs; metrics and logs are reduced across replicas (every replica sees the same);
    /// only the chief replica prints. With one replica everything is exactly as without a strategy.
    public var distributionStrategy: Strategy { creationStrategy ?? Strategy.current }

    /// A model; a `nil` name becomes the snake-cased class name made unique (`"my_model"`,
    /// `"my_model_1"`). Created inside a strategy's scope, the model keeps that strategy
    /// (``distributionStrategy``).
    public override init(name: String? = nil) {
        self.creationStrategy = Strategy.hasStrategy ? Strategy.current : nil
        super.init(name: name)
    }

    /// `"Model"` for a subclass that does not say otherwise (as Keras' summary of a subclassed model
    /// shows its class; override to name it).
    open override class var kerasClassName: String { String(describing: self) }

    // MARK: Layers

    /// The model's layers (Keras' `model.layers`): for a subclass, the ``Layer``-typed stored properties
    /// (alone, in arrays or optionals), in declaration order, base class first.
    open var layers: [Layer] { sublayers }

    open override var sublayers: [Layer] {
        if let discoveredLayers { return discoveredLayers }
        var found: [Layer] = []
        var seen = Set<ObjectIdentifier>()
        func collect(_ value: Any) {
            if let layer = value as? Layer {
                if layer !== self && seen.insert(ObjectIdentifier(layer)).inserted { found.append(layer) }
                return
            }
            let mirror = Mirror(reflecting: value)
            switch mirror.displayStyle {
            case .optional?, .collection?, .tuple?: for child in mirror.children { collect(child.value) }
            default: return
            }
        }
        var levels: [Mirror] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        while let m = mirror {
            levels.append(m)
            mirror = m.superclassMirror
        }
        for level in levels.reversed() { for child in level.children { collect(child.value) } }
        if isBuilt { discoveredLayers = found }
        return found
    }

    /// The model's computation (override in a subclass; ``Sequential`` runs its layers in order).
    /// - Throws: ``TrainingError`` for a subclass that did not override it.
    open override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        throw TrainingError.invalidArgument(
            "model '\(name)' (\(type(of: self))) has no computation: a Model subclass overrides call(_:training:)")
    }

    /// Builds the model for inputs of `inputShape` (batch dimension first, any size): calls it once on
    /// zeros of that shape in inference mode, which creates every layer's weights (Keras' `build` of a
    /// subclassed model).
    open override func build(inputShape: [Int]) throws {
        _ = try call(Tensor.zeros(shape: inputShape), training: false)
        markBuilt(inputShape: inputShape)
    }

    /// The output shape for an input shape: computed by calling the model on zeros (override when a
    /// cheaper rule exists; ``Sequential`` composes its layers').
    open override func outputShape(forInputShape shape: [Int]) -> [Int] {
        guard let zeros = try? Tensor.zeros(shape: shape), let y = try? call(zeros, training: false) else { return shape }
        return y.shape
    }

    /// The input shape the model was built for, batch dimension first (`nil` before the first call or
    /// ``build(inputShape:)``).
    public var inputShape: [Int]? { builtInputShape }

    // MARK: Weights

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

    /// Keras' `model.summary()` table (layer, output shape, parameter count, totals). Each built layer
    /// shows the output shape for the input it was built for; an unbuilt one `(unbuilt)`.
    public func summary() -> String {
        let line = String(repeating: "_", count: 65), double = String(repeating: "=", count: 65)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        var out = "Model: \"\(name)\"\n\(line)\n"
        out += " " + pad("Layer (type)", 28) + pad("Output Shape", 26) + "Param #\n\(double)\n"
        let shown = layers
        for (i, layer) in shown.enumerated() {
            let output = layer.builtInputShape.map { layer.outputShape(forInputShape: $0) }
            let shapeText = output.map { "(None" + $0.dropFirst().map { ", \($0)" }.joined() + ")" } ?? "(unbuilt)"
            out += " " + pad("\(layer.name) (\(type(of: layer).kerasClassName))", 28) + pad(shapeText, 26)
                + "\(layer.parameterCount)\n"
            if i < shown.count - 1 { out += "\n" }
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

    // MARK: Steps (override to customize fit and evaluate)

    /// One optimization step on a batch (Keras' `train_step`), called by `fit` for every batch and by
    /// ``trainOnBatch(_:_:sampleWeight:classWeight:)``; returns the logs the progress bar and callbacks
    /// get (the epoch's running mean loss and the metrics so far).
    ///
    /// The default: forward in training mode on a tape, the compiled loss (weighted by
    /// `data.sampleWeight`) plus the layers' penalties, gradients, `applyGradients`, the metrics updated
    /// with the batch's predictions (unweighted, as Keras' `metrics`). Under a strategy with several
    /// replicas `data` is this replica's part of a global batch of `data.globalRows` rows: the loss is
    /// scaled for the global batch, the gradients are summed across replicas while the backward pass
    /// runs, and the logs are reduced across replicas (the same on every replica).
    ///
    /// Override it to change what `fit` does; use ``computeLoss(x:y:yPred:sampleWeight:)``,
    /// ``updateMetrics(yTrue:yPred:sampleWeight:)`` and ``metricResults()`` as Keras' `compute_loss`,
    /// `compiled_metrics.update_state` and `get_metrics_result`.
    open func trainStep(_ data: Batch) throws -> Logs {
        try inDistributionScope { replicated in
            if let replicated {
                let step = try replicaTrainStep(data.x, data.y, sampleWeight: data.sampleWeight,
                                                globalRows: data.globalRows ?? data.rows * replicated.numReplicasInSync,
                                                strategy: replicated)
                if data.rows > 0 { for m in metrics { try m.update(yTrue: data.y, yPred: step.predictions) } }
                let reduced = try reduceAcrossReplicas(step.loss, replicated)
                trainLoss.add(reduced.batchLoss, rows: data.globalRows ?? data.rows * replicated.numReplicasInSync)
                replicaMetricStates = reduced.metrics
                return Logs(uniqueKeysWithValues: replicaLogs(loss: trainLoss.mean, metricStates: reduced.metrics))
            }
            let (batchLoss, predictions) = try localTrainStep(data.x, data.y, sampleWeight: data.sampleWeight)
            trainLoss.add(batchLoss, rows: data.rows)
            for m in metrics { try m.update(yTrue: data.y, yPred: predictions) }
            return Logs(uniqueKeysWithValues: currentLogs(loss: trainLoss.mean))
        }
    }

    /// One evaluation step on a batch (Keras' `test_step`), called by `evaluate` (and `fit`'s
    /// validation) for every batch: forward in inference mode, the compiled loss plus penalties into the
    /// running test loss, the metrics updated; returns the running logs (this replica's, under a strategy
    /// with several replicas: `evaluate` reduces them at the end).
    open func testStep(_ data: Batch) throws -> Logs {
        let (_, loss) = try compiled()
        let predictions = try self(data.x, training: false)
        var value = try loss(data.y, predictions, sampleWeight: data.sampleWeight)
        for penalty in try regularizationLosses() { value = try value + penalty }
        for m in metrics { try m.update(yTrue: data.y, yPred: predictions) }
        testLoss.add(try value.item(), rows: data.rows)
        return Logs(uniqueKeysWithValues: currentLogs(loss: testLoss.mean))
    }

    /// The outputs for one batch of inputs (Keras' `predict_step`), called by `predict`: the model in
    /// inference mode.
    open func predictStep(_ x: Tensor) throws -> Tensor {
        try self(x, training: false).untracked
    }
}
