import DescentAutodiff
import DescentDistribute
import DescentOptimizers
import DescentTensor

// `compile` as Keras takes it: each of optimizer, loss and metrics given by object or by Keras string,
// mixed freely (`compile(optimizer: "adam", loss: SparseCategoricalCrossentropy(fromLogits: true),
// metrics: ["accuracy", SparseTopKCategoricalAccuracy(k: 3)])`); and the pieces a custom `trainStep`
// uses (Keras 3's `compute_loss`, `compiled_metrics.update_state`, `get_metrics_result`).

/// An optimizer or its Keras identifier (`"adam"`, `"sgd"`, a serialized config): what `compile`'s
/// `optimizer:` takes.
public protocol OptimizerIdentifier {
    /// The optimizer it names.
    func makeOptimizer() throws -> Optimizer
}

extension Optimizer: OptimizerIdentifier {
    /// The optimizer itself.
    public func makeOptimizer() throws -> Optimizer { self }
}

extension String: OptimizerIdentifier {
    /// Keras' `tf.keras.optimizers.get`: a name (`"adam"`, `"rmsprop"`, ...) or a serialized config.
    /// - Throws: ``KerasError`` for an unknown name or a bad config.
    public func makeOptimizer() throws -> Optimizer { try Optimizer.deserialize(json: self) }
}

/// A loss or its Keras name (`"sparse_categorical_crossentropy"`, `"mse"`): what `compile`'s `loss:`
/// takes.
public protocol LossIdentifier {
    /// The loss it names.
    func makeLoss() throws -> any Loss
}

extension String: LossIdentifier {
    /// Keras' `tf.keras.losses.get` (``Losses/get(_:)``).
    /// - Throws: ``KerasError`` for an unknown name.
    public func makeLoss() throws -> any Loss { try Losses.get(self) }
}

/// A metric or its Keras name (`"accuracy"`, `"mae"`, `"AUC"`): what `compile`'s `metrics:` holds.
public protocol MetricIdentifier {
    /// The compiled metric slot: the metric, or the name to resolve against the first batch's shapes.
    var metricSlot: MetricSlot { get }
}

extension TrainingMetric {
    /// The metric itself.
    public var metricSlot: MetricSlot { .metric(self) }
}

extension String: MetricIdentifier {
    /// The name, resolved at the first batch (``Metrics/compiled(_:yTrueShape:yPredShape:)``, so that
    /// `"accuracy"` becomes binary, sparse or categorical accuracy from the shapes, as Keras does).
    public var metricSlot: MetricSlot { .name(self) }
}

/// One of `compile`'s metrics: a metric object, or a Keras name waiting for the first batch's shapes.
public enum MetricSlot {
    case metric(any TrainingMetric)
    case name(String)
}

extension Model {
    /// Sets the optimizer, loss and metrics for `fit` and `evaluate` (Keras' `compile`).
    public func compile(optimizer: Optimizer, loss: any Loss, metrics: [any TrainingMetric] = []) {
        setCompiled(optimizer: optimizer, loss: loss, slots: metrics.map { .metric($0) })
    }

    /// Keras' `compile` with objects and Keras strings mixed freely:
    /// `compile(optimizer: "adam", loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])`.
    /// Metric names are resolved at the first batch; `"accuracy"` becomes binary, sparse or categorical
    /// accuracy from the shapes, as Keras does.
    /// - Throws: ``KerasError`` for an unknown optimizer, loss or metric name (metrics: checked here,
    ///   before training).
    public func compile(optimizer: any OptimizerIdentifier, loss: any LossIdentifier, metrics: [any MetricIdentifier] = []) throws {
        let slots = metrics.map(\.metricSlot)
        for case .name(let n) in slots where !["accuracy", "acc"].contains(n.lowercased()) { _ = try Metrics.get(n) }
        setCompiled(optimizer: try optimizer.makeOptimizer(), loss: try loss.makeLoss(), slots: slots)
    }

    /// Keras' string form: `compile(optimizer: "adam", loss: "sparse_categorical_crossentropy",
    /// metrics: ["accuracy"])`.
    /// - Throws: for an unknown optimizer, loss or metric name.
    public func compile(optimizer: String, loss: String, metrics: [String] = []) throws {
        try compile(optimizer: optimizer as any OptimizerIdentifier, loss: loss as any LossIdentifier,
                    metrics: metrics.map { $0 as any MetricIdentifier })
    }

    func setCompiled(optimizer: Optimizer, loss: any Loss, slots: [MetricSlot]) {
        self.optimizer = optimizer
        self.loss = loss
        self.metricSlots = slots
        self.metrics = slots.allSatisfy({ if case .metric = $0 { return true } else { return false } })
            ? slots.compactMap { if case .metric(let m) = $0 { return m } else { return nil } } : []
    }

    /// Whether some compiled metric is still a name.
    var hasUnresolvedMetrics: Bool {
        metricSlots.contains { if case .name = $0 { return true } else { return false } }
    }

    /// The metric names of `compile` resolved against the first batch's shapes.
    func resolveMetricNames(_ x: Tensor, _ y: Tensor) throws {
        guard hasUnresolvedMetrics, x.rank >= 1, x.shape[0] > 0 else { return }
        try resolveMetricSlots(yTrueShape: [1] + y.shape.dropFirst(), yPredShape: try self(x.slice(rows: 0..<1)).shape)
    }

    /// Turns every metric name of `compile` into its metric for targets and predictions of these shapes
    /// (``Metrics/compiled(_:yTrueShape:yPredShape:)``); the slots then hold only metrics.
    private func resolveMetricSlots(yTrueShape: [Int], yPredShape: [Int]) throws {
        metrics = try metricSlots.map { slot in
            switch slot {
            case .metric(let m): return m
            case .name(let n): return try Metrics.compiled(n, yTrueShape: yTrueShape, yPredShape: yPredShape)
            }
        }
        metricSlots = metrics.map { .metric($0) }
    }

    func compiled() throws -> (Optimizer, any Loss) {
        guard let optimizer, let loss else {
            throw TrainingError.notCompiled("model '\(name)' must be compiled (compile(optimizer:loss:metrics:)) before fit or evaluate")
        }
        return (optimizer, loss)
    }

    /// The names of the logs `fit` and `evaluate` report, in order (Keras' `metrics_names`): `"loss"`,
    /// then each compiled metric's name.
    public var metricsNames: [String] {
        ["loss"] + metricSlots.map { slot in
            switch slot {
            case .metric(let m): return m.name
            case .name(let n): return n
            }
        }
    }

    // MARK: The pieces of a custom trainStep

    /// The compiled loss of a batch plus the layers' regularization penalties (Keras 3's `compute_loss`),
    /// recorded on active tapes; it also feeds the running loss that ``metricResults()`` reports as
    /// `"loss"`. Under a strategy with several replicas it is scaled for the global batch (divided by the
    /// number of replicas), so that the gradients summed across replicas are the global batch's.
    /// - Throws: ``TrainingError`` when the model is not compiled; the loss' errors (shapes).
    public func computeLoss(x: Tensor? = nil, y: Tensor, yPred: Tensor, sampleWeight: Tensor? = nil) throws -> Tensor {
        let (_, loss) = try compiled()
        var value = try BuiltInTrainingLoop.run { try loss(y, yPred, sampleWeight: sampleWeight) }
        for penalty in try regularizationLosses() { value = try value + penalty }
        let rows = yPred.rank == 0 ? 1 : yPred.shape[0]
        trainLoss.add(try value.untracked.item(), rows: rows)
        let replicas = distributionStrategy.numReplicasInSync
        return replicas > 1 ? try value * (1 / Double(replicas)) : value
    }

    /// Updates every compiled metric with a batch (Keras' `compiled_metrics.update_state`; names in
    /// `compile` are resolved from these shapes on the first call).
    public func updateMetrics(yTrue: Tensor, yPred: Tensor, sampleWeight: Tensor? = nil) throws {
        if hasUnresolvedMetrics { try resolveMetricSlots(yTrueShape: yTrue.shape, yPredShape: yPred.shape) }
        for m in metrics { try m.update(yTrue: yTrue, yPred: yPred.untracked, sampleWeight: sampleWeight) }
    }

    /// The running loss (fed by ``computeLoss(x:y:yPred:sampleWeight:)``) and every compiled metric's
    /// result (Keras' `get_metrics_result`).
    public func metricResults() -> Logs { Logs(uniqueKeysWithValues: currentLogs(loss: trainLoss.mean)) }

    /// Clears the running loss and every metric (Keras' `reset_metrics`).
    public func resetMetrics() {
        trainLoss.reset()
        testLoss.reset()
        for m in metrics { m.reset() }
    }

    func currentLogs(loss: Double) -> [(String, Double)] {
        [("loss", loss)] + metrics.map { ($0.name, $0.resultValue()) }
    }

    /// Logs in ``metricsNames`` order, then any other key in sorted order (for the progress bar).
    func orderedLogs(_ logs: Logs) -> [(String, Double)] {
        let known = metricsNames
        var out: [(String, Double)] = known.compactMap { k in logs[k].map { (k, $0) } }
        let validation = known.map { "val_" + $0 }
        out += validation.compactMap { k in logs[k].map { (k, $0) } }
        let shown = Set(known + validation)
        out += logs.keys.filter { !shown.contains($0) }.sorted().map { ($0, logs[$0]!) }
        return out
    }

    // MARK: One step

    /// One step of the default ``trainStep(_:)`` on one replica: forward on a tape, the loss plus
    /// penalties, gradients, `applyGradients`. Returns the batch loss and the predictions.
    func localTrainStep(_ x: Tensor, _ y: Tensor, sampleWeight: Tensor?) throws -> (loss: Double, predictions: Tensor) {
        let (optimizer, loss) = try compiled()
        let tape = GradientTape()
        let (value, scaled, predictions) = try tape.record { () throws -> (Tensor, Tensor, Tensor) in
            let predictions = try self(x, training: true)
            var value = try loss(y, predictions, sampleWeight: sampleWeight)
            for penalty in try regularizationLosses() { value = try value + penalty }
            return (value, try Model.scaledForGradients(value, optimizer), predictions)
        }
        let variables = trainableWeights
        let grads = try tape.gradient(of: scaled, wrt: variables)
        try optimizer.applyGradients(Array(zip(grads, variables)))
        return (try value.item(), predictions.untracked)
    }

    /// The loss the gradients are taken of: a Keras 3 optimizer's `scale_loss` (its `loss_scale_factor`,
    /// or a LossScaleOptimizer's dynamic scale), the loss itself otherwise. Recorded on the tape; the
    /// reported loss stays unscaled, as in Keras 3's `train_step`.
    static func scaledForGradients(_ loss: Tensor, _ optimizer: Optimizer) throws -> Tensor {
        guard let keras3 = optimizer as? Keras3.Optimizer else { return loss }
        return try keras3.scaleLoss(loss)
    }

    /// Keras' `train_on_batch`: the metrics reset, then one ``trainStep(_:)`` on `x` and `y` (weighted by
    /// `sampleWeight` and `classWeight` as in `fit`); returns that batch's logs.
    @discardableResult
    public func trainOnBatch(_ x: Tensor, _ y: Tensor, sampleWeight: Tensor? = nil, classWeight: [Int: Double]? = nil) throws -> Logs {
        try inDistributionScope { _ in
            _ = try compiled()
            try checkData(x, y, "trainOnBatch")
            try resolveMetricNames(x, y)
            let weights = try Model.sampleWeights(sampleWeight, classWeight: classWeight, y: y, rows: x.shape[0], what: "trainOnBatch")
            resetMetrics()
            return try trainStep(Batch(x: x, y: y, sampleWeight: weights))
        }
    }

    /// Keras' `test_on_batch`: the metrics reset, then one ``testStep(_:)``; returns that batch's logs.
    public func testOnBatch(_ x: Tensor, _ y: Tensor, sampleWeight: Tensor? = nil) throws -> Logs {
        try inDistributionScope { _ in
            _ = try compiled()
            try checkData(x, y, "testOnBatch")
            try resolveMetricNames(x, y)
            let weights = try Model.sampleWeights(sampleWeight, classWeight: nil, y: y, rows: x.shape[0], what: "testOnBatch")
            resetMetrics()
            return try testStep(Batch(x: x, y: y, sampleWeight: weights))
        }
    }

    func checkData(_ x: Tensor, _ y: Tensor, _ what: String) throws {
        guard x.rank >= 1, y.rank >= 1, x.shape[0] == y.shape[0] else {
            throw TrainingError.invalidArgument(
                "\(what): x has shape \(x.shape) and y has shape \(y.shape); they need the same number of samples (first dimension)")
        }
    }

    /// `fit`'s per-sample weights: `sampleWeight` (`[rows]`), times `classWeight[class of each row]`
    /// when class weights are given (Keras' `class_weight`: the class is the label for sparse labels
    /// `[rows]` or `[rows, 1]`, the argmax of one-hot labels `[rows, classes]`). Keras' checks: the class
    /// weights' keys must be 0 ..< count, labels of rank 3 or more are refused, and every label must
    /// have a weight.
    static func sampleWeights(_ sampleWeight: Tensor?, classWeight: [Int: Double]?, y: Tensor, rows: Int, what: String) throws -> Tensor? {
        var weights: [Float]?
        if let sampleWeight {
            guard sampleWeight.shape == [rows] || sampleWeight.shape == [rows, 1] else {
                throw TrainingError.invalidArgument("\(what): sampleWeight has shape \(sampleWeight.shape), expected [\(rows)] (one weight per sample)")
            }
            weights = try sampleWeight.untracked.cast(to: .float32).withUnsafeBufferPointer(as: Float.self) { Array($0) }
        }
        if let classWeight {
            let keys = classWeight.keys.sorted()
            guard keys == Array(0..<keys.count) else {
                throw TrainingError.invalidArgument(
                    "\(what): classWeight must have the keys 0 to one less than the number of classes, got \(keys)")
            }
            guard y.rank <= 2 else {
                throw TrainingError.invalidArgument("\(what): classWeight is not supported for labels of rank 3 or more (y has shape \(y.shape))")
            }
            let oneHot = y.rank == 2 && y.shape[1] > 1
            let classes: [Int]
            if oneHot {
                let cols = y.shape[1]
                let values = try y.untracked.cast(to: .float64).withUnsafeBufferPointer(as: Double.self) { Array($0) }
                classes = (0..<rows).map { r in
                    var best = 0
                    for c in 1..<cols where values[r * cols + c] > values[r * cols + best] { best = c }
                    return best
                }
            } else {
                let values = try y.untracked.cast(to: .float64).withUnsafeBufferPointer(as: Double.self) { Array($0) }
                guard values.count == rows else {
                    throw TrainingError.invalidArgument("\(what): classWeight needs one label per sample, y has shape \(y.shape)")
                }
                classes = try values.map { v in
                    guard v.isFinite, v == v.rounded() else {
                        throw TrainingError.invalidArgument("\(what): classWeight needs integer class labels, got \(v)")
                    }
                    return Int(v)
                }
            }
            var w = weights ?? [Float](repeating: 1, count: rows)
            for (r, c) in classes.enumerated() {
                guard let cw = classWeight[c] else {
                    throw TrainingError.invalidArgument("\(what): label \(c) of sample \(r) has no class weight (classWeight has classes 0..<\(keys.count))")
                }
                w[r] *= Float(cw)
            }
            weights = w
        }
        return try weights.map { try Tensor(shape: [rows], scalars: $0) }
    }
}
