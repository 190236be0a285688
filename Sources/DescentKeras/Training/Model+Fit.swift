import DescentAutodiff
import DescentDistribute
import DescentOptimizers
import DescentTensor
import Foundation

// Keras' built-in loops: `fit`, `evaluate`, `predict`. Each runs in the model's distribution strategy's
// scope (``Model/distributionStrategy``); with one replica they are exactly the one-process loops
// (no collective), with more the replica parts live in Model+Distributed.swift. Every batch goes through
// the overridable steps (``Model/trainStep(_:)``, ``Model/testStep(_:)``, ``Model/predictStep(_:)``).

/// The batches of in-memory data as tf_keras' data adapter for arrays makes them: one stream of passes
/// over the data, each pass a new permutation (when shuffling) cut into batches of `batchSize` (the last
/// one smaller). Without `stepsPerEpoch` every epoch is one whole pass; with it, every epoch takes the
/// next `stepsPerEpoch` batches of the stream, which holds `epochs − initialEpoch` passes (as tf_keras
/// repeats the data that many times), so an epoch may end inside a pass and the next continue it.
struct BatchStream {
    let count: Int
    let batchSize: Int
    let shuffle: Bool
    /// The generator the current pass's permutation was (or will be) drawn from.
    private(set) var pending: SeededGenerator
    /// The generator after the current pass's draw.
    private var generator: SeededGenerator
    /// Batches taken from the current pass (`batchesPerPass` once it is used up).
    private(set) var offset: Int
    /// Passes finished.
    private(set) var passes: Int
    private var order: [Int] = []
    private var drawn = false
    let batchesPerPass: Int

    init(count: Int, batchSize: Int, shuffle: Bool, generator: SeededGenerator, offset: Int = 0, passes: Int = 0) {
        self.count = count
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.pending = generator
        self.generator = generator
        self.batchesPerPass = Model.batchCount(count, batchSize)
        self.offset = Swift.min(offset, batchesPerPass)
        self.passes = passes
    }

    /// Where the stream is, to back up and resume from: the pending generator, the offset and the passes.
    var position: (generator: SeededGenerator, offset: Int, passes: Int) { (pending, offset, passes) }

    /// Ends the current pass if it was begun (an epoch without `stepsPerEpoch` starts a new pass).
    mutating func finishPassIfBegun() {
        guard offset > 0 else { return }
        offset = batchesPerPass
        advancePass()
    }

    private mutating func advancePass() {
        guard offset >= batchesPerPass else { return }
        if !drawn { draw() }
        passes += 1
        pending = generator
        offset = 0
        drawn = false
    }

    private mutating func draw() {
        generator = pending
        order = Array(0..<count)
        if shuffle { order.shuffle(using: &generator) }
        drawn = true
    }

    /// Whether `limit` passes are used up.
    func isExhausted(passLimit limit: Int?) -> Bool {
        guard let limit else { return false }
        return passes >= limit || (passes == limit - 1 && offset >= batchesPerPass)
    }

    /// The sample indices of the next batch and its position in its pass, or `nil` when `passLimit`
    /// passes are used up.
    mutating func next(passLimit: Int?) -> (indices: ArraySlice<Int>, rows: Range<Int>)? {
        if offset >= batchesPerPass { advancePass() }
        if let passLimit, passes >= passLimit { return nil }
        if !drawn { draw() }
        let rows = Model.batchRows(offset, count, batchSize)
        offset += 1
        return (order[rows], rows)
    }
}

extension Model {
    /// Trains for `epochs` epochs (Keras' `fit`).
    ///
    /// - Parameters:
    ///   - batchSize: samples per step; the last batch of a pass may be smaller. Under a strategy with
    ///     several replicas it is the **global** batch: every replica trains on its near-equal part of
    ///     each batch (the same shuffled order on every replica), the loss on the default reduction is
    ///     divided by the global batch size and regularization penalties by the number of replicas, and
    ///     the gradients are summed across replicas, so that a step equals one process's step on the
    ///     whole batch.
    ///   - sampleWeight: a weight per sample (`[samples]`), applied to the loss (not to the metrics, as
    ///     Keras' `metrics`).
    ///   - classWeight: a weight per class (keys `0 ..< classes`), multiplied into each sample's weight
    ///     by its label (sparse labels, or the argmax of one-hot labels), as Keras' `class_weight`.
    ///   - stepsPerEpoch: batches per epoch (Keras' `steps_per_epoch`); by default one pass over the
    ///     data. Given, the epochs take consecutive batches of `epochs − initialEpoch` passes over the
    ///     data (tf_keras' rule for arrays); when they run out, training stops after that epoch with
    ///     tf_keras' warning.
    ///   - validationSplit: the fraction of samples, taken from the end before shuffling, held out for
    ///     validation (as Keras; their `sampleWeight`s weight the validation loss, as in Keras).
    ///   - validationData: explicit validation inputs and labels (wins over `validationSplit`).
    ///   - validationFreq: validate after every `validationFreq`-th epoch (Keras' `validation_freq`).
    ///   - shuffle: reshuffle the training samples for every pass, with a generator seeded by `seed`
    ///     (or one drawn from ``GlobalRandom``; with several replicas, the chief's).
    ///   - initialEpoch: the epoch to start at (Keras' `initial_epoch`): epochs `initialEpoch..<epochs`
    ///     run, numbered as in the uninterrupted run. A ``BackupAndRestore`` among `callbacks` with a
    ///     backup overrides it: the run resumes at the backup's epoch and batch.
    ///   - output: where the progress bar goes (standard output by default); only the chief replica
    ///     writes.
    /// - Returns: the logs of every epoch (with several replicas, reduced across them: the same on
    ///   every replica).
    /// - Throws: ``TrainingError`` naming the argument for data whose sample counts differ, weights of
    ///   the wrong shape, class weights that do not cover the labels, or an out-of-range option.
    @discardableResult
    public func fit(_ x: Tensor, _ y: Tensor, batchSize: Int = 32, epochs: Int = 1, verbose: Verbosity = .progressBar,
                    callbacks: [Callback] = [], validationSplit: Double = 0, validationData: (Tensor, Tensor)? = nil,
                    shuffle: Bool = true, sampleWeight: Tensor? = nil, classWeight: [Int: Double]? = nil,
                    stepsPerEpoch: Int? = nil, validationFreq: Int = 1, seed: UInt64? = nil, initialEpoch: Int = 0,
                    output: ((String) -> Void)? = nil) throws -> History {
        try inDistributionScope { replicated in
            try fitInScope(FitArguments(x: x, y: y, batchSize: batchSize, epochs: epochs, verbose: verbose, callbacks: callbacks,
                                        validationSplit: validationSplit, validationData: validationData, shuffle: shuffle,
                                        sampleWeight: sampleWeight, classWeight: classWeight, stepsPerEpoch: stepsPerEpoch,
                                        validationFreq: validationFreq, seed: seed, initialEpoch: initialEpoch, output: output),
                           replicated: replicated)
        }
    }

    /// `fit`'s arguments, as given.
    struct FitArguments {
        var x: Tensor, y: Tensor, batchSize: Int, epochs: Int, verbose: Verbosity, callbacks: [Callback]
        var validationSplit: Double, validationData: (Tensor, Tensor)?, shuffle: Bool
        var sampleWeight: Tensor?, classWeight: [Int: Double]?, stepsPerEpoch: Int?, validationFreq: Int
        var seed: UInt64?, initialEpoch: Int, output: ((String) -> Void)?
    }

    private func checkFitArguments(_ a: FitArguments) throws {
        guard a.batchSize > 0 else { throw TrainingError.invalidArgument("fit: batchSize must be positive, got \(a.batchSize)") }
        guard a.epochs >= 0 else { throw TrainingError.invalidArgument("fit: epochs must be >= 0, got \(a.epochs)") }
        guard a.initialEpoch >= 0 else { throw TrainingError.invalidArgument("fit: initialEpoch must be >= 0, got \(a.initialEpoch)") }
        guard a.validationSplit >= 0 && a.validationSplit < 1 else {
            throw TrainingError.invalidArgument("fit: validationSplit must be in [0, 1), got \(a.validationSplit)")
        }
        if let s = a.stepsPerEpoch, s <= 0 { throw TrainingError.invalidArgument("fit: stepsPerEpoch must be positive, got \(s)") }
        guard a.validationFreq > 0 else { throw TrainingError.invalidArgument("fit: validationFreq must be positive, got \(a.validationFreq)") }
    }

    // swiftlint:disable:next function_body_length
    private func fitInScope(_ a: FitArguments, replicated: Strategy?) throws -> History {
        _ = try compiled()
        try checkData(a.x, a.y, "fit")
        try checkFitArguments(a)
        try resolveMetricNames(a.x, a.y)
        let allWeights = try Model.sampleWeights(a.sampleWeight, classWeight: a.classWeight, y: a.y, rows: a.x.shape[0], what: "fit")
        var trainX = a.x, trainY = a.y, trainWeights = allWeights
        var validation = a.validationData
        // Keras weights the held-out samples' loss by their sample weights (class weights train only).
        var validationWeights: Tensor?
        if let v = validation { try checkData(v.0, v.1, "fit validationData") }
        if validation == nil && a.validationSplit > 0 {
            let n = a.x.shape[0], split = Int(Double(n) * (1 - a.validationSplit))
            guard split > 0 && split < n else {
                throw TrainingError.invalidArgument("fit: validationSplit \(a.validationSplit) leaves no training or no validation samples of \(n)")
            }
            trainX = try a.x.slice(rows: 0..<split)
            trainY = try a.y.slice(rows: 0..<split)
            trainWeights = try allWeights?.slice(rows: 0..<split)
            validation = (try a.x.slice(rows: split..<n), try a.y.slice(rows: split..<n))
            if let sw = a.sampleWeight { validationWeights = try sw.slice(rows: split..<n) }
        }
        let n = trainX.shape[0]
        guard n > 0 else { throw TrainingError.invalidArgument("fit: no training samples") }
        // Overflow-free for any positive batch size: a batch larger than the data is one batch (as Keras).
        let steps = a.stepsPerEpoch ?? Model.batchCount(n, a.batchSize)
        let passLimit = a.stepsPerEpoch == nil ? nil : Swift.max(0, a.epochs - a.initialEpoch)
        let history = History()
        let all: [Callback] = a.callbacks + [history]
        var shuffleSeed = a.seed ?? GlobalRandom.nextSeed()
        // Every replica shuffles with the chief's seed (GlobalRandom may differ per replica).
        if let replicated { shuffleSeed = Model.broadcastWords([shuffleSeed], strategy: replicated)[0] }
        var stream = BatchStream(count: n, batchSize: a.batchSize, shuffle: a.shuffle, generator: SeededGenerator(seed: shuffleSeed))
        let chief = replicated?.isChief ?? true
        let write = a.output ?? { print($0, terminator: "") }
        stopTraining = false
        let backup = a.callbacks.lazy.compactMap { $0 as? BackupAndRestore }.first
        if (backup != nil || replicated != nil) && builtInputShape == nil {
            // A backup and the initial broadcast need the weights to exist (the first batch would create
            // them, in inference mode here).
            _ = try self(trainX.slice(rows: 0..<1))
        }
        if let replicated {
            // All replicas start from the chief's weights and optimizer state, wherever they were created.
            try replicated.broadcast(weights + (optimizer?.weights ?? []))
        }
        for c in all { try c.onTrainBegin(model: self) }
        var resume = try backup?.restore(model: self, callbacks: a.callbacks)
        if let replicated { try Model.checkSameResumePoint(resume, backup: backup, strategy: replicated) }
        if let resume {
            stream = BatchStream(count: n, batchSize: a.batchSize, shuffle: a.shuffle, generator: resume.shuffle,
                                 offset: resume.streamOffset, passes: resume.streamPasses)
        }
        let firstEpoch = resume?.epoch ?? a.initialEpoch
        for epoch in firstEpoch..<Swift.max(firstEpoch, a.epochs) {
            if a.stepsPerEpoch == nil { stream.finishPassIfBegun() }
            if stream.isExhausted(passLimit: passLimit) { break }
            for c in all { try c.onEpochBegin(epoch, model: self) }
            let epochStart = stream.position
            for m in metrics { m.reset() }
            trainLoss.reset()
            replicaMetricStates = metrics.map { $0.stateValues.map { _ in 0 } }
            var firstStep = 0
            if let point = resume, point.step > 0 {
                // Resuming inside this epoch: its first `step` batches ran before the backup.
                firstStep = Swift.min(point.step, steps)
                for _ in 0..<firstStep { _ = stream.next(passLimit: passLimit) }
                trainLoss = LossTracker(sum: point.lossSum, seen: point.seen)
                for (m, state) in zip(metrics, point.metrics) {
                    // With several replicas the backup holds the sums over replicas: the chief carries them.
                    try m.restoreState(chief ? state : state.map { _ in 0 })
                }
                if replicated != nil { replicaMetricStates = point.metrics }
                if let lr = point.learningRate, let optimizer { optimizer.learningRate = .number(lr) }
            }
            resume = nil
            let bar = a.verbose == .silent || !chief ? nil : ProgressBar(total: steps, interactive: a.output == nil ? nil : false, write: write)
            if a.verbose != .silent && chief {
                if bar?.interactive == true { write("Epoch \(epoch + 1)/\(a.epochs)\n") } else { write("Epoch \(epoch + 1)/\(a.epochs) - ") }
            }
            var logs: Logs?
            var ranOut = false
            for step in firstStep..<steps {
                guard let (order, rows) = stream.next(passLimit: passLimit) else {
                    ranOut = true
                    break
                }
                for c in all { try c.onTrainBatchBegin(step, model: self) }
                let batch: Batch
                if let replicated {
                    // `order` is the pass' slice for `rows` (its indices are the pass' positions).
                    let indices = Array(order[Model.shardRows(rows, replicas: replicated.numReplicasInSync, replica: replicated.replicaID)])
                    batch = Batch(x: try trainX.gather(indices), y: try trainY.gather(indices),
                                  sampleWeight: try trainWeights?.gather(indices), globalRows: rows.count)
                } else {
                    let indices = Array(order)
                    batch = Batch(x: try trainX.gather(indices), y: try trainY.gather(indices), sampleWeight: try trainWeights?.gather(indices))
                }
                let stepLogs = try trainStep(batch)
                logs = stepLogs
                bar?.update(step: step + 1, metrics: orderedLogs(stepLogs))
                for c in all { try c.onTrainBatchEnd(step, logs: stepLogs, model: self) }
                // Every replica saw the same logs; a callback that decides otherwise must not leave the others
                // in a collective: the replicas stop together.
                if let replicated { stopTraining = replicated.any(stopTraining) }
                try backup?.batchEnded(model: self, callbacks: a.callbacks, epoch: epoch, step: step + 1, steps: steps,
                                       epochStart: epochStart, lossSum: trainLoss.sum, seen: trainLoss.seen,
                                       metricStates: replicated == nil ? nil : replicaMetricStates)
                // Keras: a callback's `stop_training` ends the epoch after this batch; validation and the
                // epoch-end callbacks still run on the logs so far.
                if stopTraining { break }
            }
            var epochLogs = logs ?? Logs(uniqueKeysWithValues: replicated == nil ? currentLogs(loss: trainLoss.mean)
                                                : replicaLogs(loss: trainLoss.mean, metricStates: replicaMetricStates))
            if let (vx, vy) = validation, (epoch + 1) % a.validationFreq == 0 {
                let scores = try evaluateInScope(vx, vy, batchSize: a.batchSize, sampleWeight: validationWeights, verbose: .silent,
                                                 callbacks: all, output: nil, replicated: replicated)
                for (k, v) in scores { epochLogs["val_" + k] = v }
            }
            bar?.finish(metrics: orderedLogs(epochLogs))
            for c in all { try c.onEpochEnd(epoch, logs: epochLogs, model: self) }
            if let replicated { stopTraining = replicated.any(stopTraining) }
            if a.stepsPerEpoch == nil { stream.finishPassIfBegun() }
            try backup?.epochEnded(model: self, callbacks: a.callbacks, epoch: epoch, stream: stream.position)
            if ranOut || (a.stepsPerEpoch != nil && stream.isExhausted(passLimit: passLimit) && epoch + 1 < a.epochs) {
                if chief && a.verbose != .silent {
                    write("WARNING: Your input ran out of data; interrupting training. Make sure that your dataset or generator can "
                          + "generate at least `steps_per_epoch * epochs` batches (in this case, \((a.epochs - a.initialEpoch) * steps) batches).\n")
                }
                break
            }
            if stopTraining { break }
        }
        // Keras 3's fit replaces the weights by their moving averages (`use_ema`) at the end.
        if a.epochs > 0, let keras3 = optimizer as? Keras3.Optimizer { try keras3.finalizeVariableValues() }
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

    /// The loss and metrics over a data set, in batches (Keras' `evaluate(return_dict=True)`), keyed by
    /// name (``metricsNames`` gives Keras' order). Each batch goes through ``testStep(_:)``; callbacks
    /// get the test hooks. Under a strategy with several replicas every replica evaluates its part of
    /// each batch and the sums are reduced: every replica returns the same scores.
    /// - Parameters:
    ///   - sampleWeight: a weight per sample (`[samples]`) for the loss.
    ///   - verbose: a progress bar (Keras' default `verbose=1`), or nothing.
    ///   - output: where the progress bar goes (standard output by default).
    @discardableResult
    public func evaluate(_ x: Tensor, _ y: Tensor, batchSize: Int = 32, sampleWeight: Tensor? = nil, verbose: Verbosity = .progressBar,
                         callbacks: [Callback] = [], output: ((String) -> Void)? = nil) throws -> Logs {
        try inDistributionScope { replicated in
            try evaluateInScope(x, y, batchSize: batchSize, sampleWeight: sampleWeight, verbose: verbose, callbacks: callbacks,
                                output: output, replicated: replicated)
        }
    }

    func evaluateInScope(_ x: Tensor, _ y: Tensor, batchSize: Int, sampleWeight: Tensor?, verbose: Verbosity, callbacks: [Callback],
                         output: ((String) -> Void)?, replicated: Strategy?) throws -> Logs {
        _ = try compiled()
        try checkData(x, y, "evaluate")
        try resolveMetricNames(x, y)
        guard batchSize > 0 else { throw TrainingError.invalidArgument("evaluate: batchSize must be positive, got \(batchSize)") }
        let weights = try Model.sampleWeights(sampleWeight, classWeight: nil, y: y, rows: x.shape[0], what: "evaluate")
        if let replicated { try buildForReplicas(x) }
        let n = x.shape[0], batches = Model.batchCount(n, batchSize)
        let chief = replicated?.isChief ?? true
        let write = output ?? { print($0, terminator: "") }
        let bar = verbose == .silent || !chief ? nil : ProgressBar(total: batches, interactive: output == nil ? nil : false, write: write)
        for m in metrics { m.reset() }
        testLoss.reset()
        for c in callbacks { try c.onTestBegin(model: self) }
        var logs = Logs(uniqueKeysWithValues: currentLogs(loss: 0))
        for batch in 0..<batches {
            var rows = Model.batchRows(batch, n, batchSize)
            if let replicated {
                rows = Model.shardRows(rows, replicas: replicated.numReplicasInSync, replica: replicated.replicaID)
            }
            for c in callbacks { try c.onTestBatchBegin(batch, model: self) }
            if !rows.isEmpty {
                logs = try testStep(Batch(x: try x.slice(rows: rows), y: try y.slice(rows: rows), sampleWeight: try weights?.slice(rows: rows)))
            }
            bar?.update(step: batch + 1, metrics: orderedLogs(logs))
            for c in callbacks { try c.onTestBatchEnd(batch, logs: logs, model: self) }
        }
        if let replicated {
            // This replica's sums, reduced once at the end.
            let (sum, states) = try reduceAcrossReplicas(testLoss.sum, replicated)
            logs = Logs(uniqueKeysWithValues: replicaLogs(loss: n > 0 ? sum / Double(n) : 0, metricStates: states))
        }
        bar?.finish(metrics: orderedLogs(logs))
        for c in callbacks { try c.onTestEnd(logs: logs, model: self) }
        for m in metrics { m.reset() }
        testLoss.reset()
        return logs
    }

    /// The model's outputs for `x`, computed in batches by ``predictStep(_:)`` (Keras' `predict`). Under
    /// a strategy with several replicas every replica computes its part of each batch and every replica
    /// returns all the outputs.
    public func predict(_ x: Tensor, batchSize: Int = 32, callbacks: [Callback] = []) throws -> Tensor {
        guard batchSize > 0 else { throw TrainingError.invalidArgument("predict: batchSize must be positive, got \(batchSize)") }
        guard x.rank >= 1, x.shape[0] > 0 else { throw TrainingError.invalidArgument("predict: x has no samples (shape \(x.shape))") }
        return try inDistributionScope { replicated in
            if let replicated { return try replicaPredict(x, batchSize: batchSize, strategy: replicated) }
            for c in callbacks { try c.onPredictBegin(model: self) }
            var outputs: [Tensor] = []
            for batch in 0..<Model.batchCount(x.shape[0], batchSize) {
                for c in callbacks { try c.onPredictBatchBegin(batch, model: self) }
                outputs.append(try predictStep(x.slice(rows: Model.batchRows(batch, x.shape[0], batchSize))))
                for c in callbacks { try c.onPredictBatchEnd(batch, model: self) }
            }
            for c in callbacks { try c.onPredictEnd(model: self) }
            return try Tensor.concat(outputs, axis: 0)
        }
    }
}
