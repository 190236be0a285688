import DescentAutodiff
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

    /// A model of `layers`; a `nil` name becomes `"sequential"`, `"sequential_1"`, ...
    public init(_ layers: [Layer] = [], name: String? = nil) {
        self.layers = layers
        self.name = name ?? KerasNaming.uniqueName("sequential")
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

    private func resolveMetricNames(_ x: Tensor, _ y: Tensor) throws {
        guard !metricNames.isEmpty, x.rank >= 1, x.shape[0] > 0 else { return }
        let outputShape = try self(x.slice(rows: 0..<1)).shape
        metrics = try metricNames.map { try Metrics.compiled($0, yTrueShape: [1] + y.shape.dropFirst(), yPredShape: outputShape) }
        metricNames = []
    }

    private func compiled() throws -> (Optimizer, any Loss) {
        guard let optimizer, let loss else {
            throw TrainingError.notCompiled("model '\(name)' must be compiled (compile(optimizer:loss:metrics:)) before fit or evaluate")
        }
        return (optimizer, loss)
    }

    private func checkData(_ x: Tensor, _ y: Tensor, _ what: String) throws {
        guard x.rank >= 1, y.rank >= 1, x.shape[0] == y.shape[0] else {
            throw TrainingError.invalidArgument(
                "\(what): x has shape \(x.shape) and y has shape \(y.shape); they need the same number of samples (first dimension)")
        }
    }

    /// One optimization step on a batch (Keras' `train_step`): forward in training mode on a tape, the
    /// loss plus regularization, gradients, `applyGradients`. Returns the batch loss.
    @discardableResult
    public func trainStep(_ x: Tensor, _ y: Tensor) throws -> (loss: Double, predictions: Tensor) {
        let (optimizer, loss) = try compiled()
        let tape = GradientTape()
        let (value, predictions) = try tape.record { () throws -> (Tensor, Tensor) in
            let predictions = try self(x, training: true)
            var value = try loss(y, predictions, sampleWeight: nil)
            for penalty in try regularizationLosses() { value = try value + penalty }
            return (value, predictions)
        }
        let variables = trainableWeights
        let grads = try tape.gradient(of: value, wrt: variables)
        try optimizer.applyGradients(Array(zip(grads, variables)))
        return (try value.item(), predictions.untracked)
    }

    /// Trains for `epochs` epochs (Keras' `fit`).
    ///
    /// - Parameters:
    ///   - batchSize: samples per step; the last batch of an epoch may be smaller.
    ///   - validationSplit: the fraction of samples, taken from the end before shuffling, held out for
    ///     validation (as Keras).
    ///   - validationData: explicit validation inputs and labels (wins over `validationSplit`).
    ///   - shuffle: reshuffle the training samples every epoch, with a generator seeded by `seed`
    ///     (or one drawn from ``GlobalRandom``).
    ///   - initialEpoch: the epoch to start at (Keras' `initial_epoch`): epochs `initialEpoch..<epochs`
    ///     run, numbered as in the uninterrupted run. A ``BackupAndRestore`` among `callbacks` with a
    ///     backup overrides it: the run resumes at the backup's epoch and batch.
    /// - Returns: the metrics of every epoch.
    @discardableResult
    public func fit(_ x: Tensor, _ y: Tensor, batchSize: Int = 32, epochs: Int = 1, verbose: Verbosity = .progressBar,
                    callbacks: [Callback] = [], validationSplit: Double = 0, validationData: (Tensor, Tensor)? = nil,
                    shuffle: Bool = true, seed: UInt64? = nil, initialEpoch: Int = 0,
                    output: ((String) -> Void)? = nil) throws -> History {
        _ = try compiled()
        try checkData(x, y, "fit")
        try resolveMetricNames(x, y)
        guard batchSize > 0 else { throw TrainingError.invalidArgument("fit: batchSize must be positive, got \(batchSize)") }
        guard epochs >= 0 else { throw TrainingError.invalidArgument("fit: epochs must be >= 0, got \(epochs)") }
        guard initialEpoch >= 0 else { throw TrainingError.invalidArgument("fit: initialEpoch must be >= 0, got \(initialEpoch)") }
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw TrainingError.invalidArgument("fit: validationSplit must be in [0, 1), got \(validationSplit)")
        }
        var trainX = x, trainY = y
        var validation = validationData
        if let v = validation { try checkData(v.0, v.1, "fit validationData") }
        if validation == nil && validationSplit > 0 {
            let n = x.shape[0], split = Int(Double(n) * (1 - validationSplit))
            guard split > 0 && split < n else {
                throw TrainingError.invalidArgument("fit: validationSplit \(validationSplit) leaves no training or no validation samples of \(n)")
            }
            trainX = try x.slice(rows: 0..<split)
            trainY = try y.slice(rows: 0..<split)
            validation = (try x.slice(rows: split..<n), try y.slice(rows: split..<n))
        }
        let n = trainX.shape[0]
        guard n > 0 else { throw TrainingError.invalidArgument("fit: no training samples") }
        // Overflow-free for any positive batch size: a batch larger than the data is one batch (as Keras).
        let steps = Sequential.batchCount(n, batchSize)
        let history = History()
        let all: [Callback] = callbacks + [history]
        var generator = SeededGenerator(seed: seed ?? GlobalRandom.nextSeed())
        let write = output ?? { print($0, terminator: "") }
        stopTraining = false
        let backup = callbacks.lazy.compactMap { $0 as? BackupAndRestore }.first
        if backup != nil && builtInputShape == nil {
            // A backup needs the weights to exist (the first batch would create them, in inference mode here).
            _ = try self(trainX.slice(rows: 0..<1))
        }
        for c in all { try c.onTrainBegin(model: self) }
        var resume = try backup?.restore(model: self, callbacks: callbacks)
        if let resume { generator = resume.shuffle }
        let firstEpoch = resume?.epoch ?? initialEpoch
        for epoch in firstEpoch..<Swift.max(firstEpoch, epochs) {
            for c in all { try c.onEpochBegin(epoch, model: self) }
            let epochStart = generator
            var order = Array(0..<n)
            if shuffle { order.shuffle(using: &generator) }
            for m in metrics { m.reset() }
            var lossSum = 0.0, seen = 0, firstStep = 0
            if let point = resume, point.step > 0 {
                // Resuming inside this epoch: its first `step` batches ran before the backup.
                firstStep = Swift.min(point.step, steps)
                lossSum = point.lossSum
                seen = point.seen
                for (m, (total, count)) in zip(metrics, point.metrics) { m.restoreState(total: total, count: count) }
                if let lr = point.learningRate, let optimizer { optimizer.learningRate = .number(lr) }
            }
            resume = nil
            let bar = verbose == .silent ? nil : ProgressBar(total: steps, interactive: output == nil ? nil : false, write: write)
            if verbose != .silent {
                if bar?.interactive == true { write("Epoch \(epoch + 1)/\(epochs)\n") } else { write("Epoch \(epoch + 1)/\(epochs) - ") }
            }
            for step in firstStep..<steps {
                let indices = Array(order[Sequential.batchRows(step, n, batchSize)])
                let xb = try trainX.gather(indices), yb = try trainY.gather(indices)
                let (batchLoss, predictions) = try trainStep(xb, yb)
                lossSum += batchLoss * Double(indices.count)
                seen += indices.count
                for m in metrics { try m.update(yTrue: yb, yPred: predictions) }
                let logs = currentLogs(loss: lossSum / Double(seen))
                bar?.update(step: step + 1, metrics: logs)
                for c in all { try c.onTrainBatchEnd(step, logs: Logs(uniqueKeysWithValues: logs), model: self) }
                try backup?.batchEnded(model: self, callbacks: callbacks, epoch: epoch, step: step + 1, steps: steps,
                                       epochStart: epochStart, lossSum: lossSum, seen: seen)
                // Keras: a callback's `stop_training` ends the epoch after this batch; validation and the
                // epoch-end callbacks still run on the logs so far.
                if stopTraining { break }
            }
            var logs = currentLogs(loss: lossSum / Double(seen))
            if let (vx, vy) = validation {
                let scores = try evaluate(vx, vy, batchSize: batchSize)
                logs += scores.map { ("val_" + $0.0, $0.1) }
            }
            bar?.finish(metrics: logs)
            for c in all { try c.onEpochEnd(epoch, logs: Logs(uniqueKeysWithValues: logs), model: self) }
            try backup?.epochEnded(model: self, callbacks: callbacks, epoch: epoch, generator: generator)
            if stopTraining { break }
        }
        for c in all { try c.onTrainEnd(model: self) }
        return history
    }

    /// The number of batches of at most `batchSize` (> 0) rows in `count` rows, without overflow for any
    /// `batchSize` (`(count + batchSize - 1) / batchSize` overflows for a huge one).
    static func batchCount(_ count: Int, _ batchSize: Int) -> Int {
        count / batchSize + (count % batchSize == 0 ? 0 : 1)
    }

    /// The rows of batch `batch` (< ``batchCount(_:_:)``): never computes `start + batchSize`, which
    /// overflows for a huge batch size.
    static func batchRows(_ batch: Int, _ count: Int, _ batchSize: Int) -> Range<Int> {
        let start = batch * batchSize  // < count, since batch < batchCount
        return start..<(start + Swift.min(batchSize, count - start))
    }

    private func currentLogs(loss: Double) -> [(String, Double)] {
        [("loss", loss)] + metrics.map { ($0.name, (try? $0.result().item()) ?? .nan) }
    }

    /// The loss and metrics over a data set, in batches (Keras' `evaluate`), as ordered pairs
    /// (`"loss"` first).
    public func evaluate(_ x: Tensor, _ y: Tensor, batchSize: Int = 32) throws -> [(String, Double)] {
        let (_, loss) = try compiled()
        try checkData(x, y, "evaluate")
        try resolveMetricNames(x, y)
        guard batchSize > 0 else { throw TrainingError.invalidArgument("evaluate: batchSize must be positive, got \(batchSize)") }
        let n = x.shape[0]
        for m in metrics { m.reset() }
        var lossSum = 0.0
        for batch in 0..<Sequential.batchCount(n, batchSize) {
            let rows = Sequential.batchRows(batch, n, batchSize)
            let xb = try x.slice(rows: rows), yb = try y.slice(rows: rows)
            let predictions = try self(xb, training: false)
            var value = try loss(yb, predictions, sampleWeight: nil)
            for penalty in try regularizationLosses() { value = try value + penalty }
            lossSum += try value.item() * Double(rows.count)
            for m in metrics { try m.update(yTrue: yb, yPred: predictions) }
        }
        let result = [("loss", n > 0 ? lossSum / Double(n) : 0)] + metrics.map { ($0.name, (try? $0.result().item()) ?? .nan) }
        for m in metrics { m.reset() }
        return result
    }

    /// The model's outputs for `x`, computed in batches (Keras' `predict`).
    public func predict(_ x: Tensor, batchSize: Int = 32) throws -> Tensor {
        guard batchSize > 0 else { throw TrainingError.invalidArgument("predict: batchSize must be positive, got \(batchSize)") }
        guard x.rank >= 1, x.shape[0] > 0 else { throw TrainingError.invalidArgument("predict: x has no samples (shape \(x.shape))") }
        var outputs: [Tensor] = []
        for batch in 0..<Sequential.batchCount(x.shape[0], batchSize) {
            outputs.append(try self(x.slice(rows: Sequential.batchRows(batch, x.shape[0], batchSize)), training: false).untracked)
        }
        return try Tensor.concat(outputs, axis: 0)
    }
}
