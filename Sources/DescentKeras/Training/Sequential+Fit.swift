import DescentAutodiff
import DescentDistribute
import DescentOptimizers
import DescentTensor
import Foundation

// Keras' built-in loops: `fit`, `evaluate`, `predict`. Each runs in the model's distribution strategy's
// scope (``Sequential/distributionStrategy``); with one replica they are exactly the one-process loops
// (no collective), with more the replica parts live in Sequential+Distributed.swift.

extension Sequential {
    /// Trains for `epochs` epochs (Keras' `fit`).
    ///
    /// - Parameters:
    ///   - batchSize: samples per step; the last batch of an epoch may be smaller. Under a strategy with
    ///     several replicas it is the **global** batch: every replica trains on its near-equal part of
    ///     each batch (the same shuffled order on every replica), the loss on the default reduction is
    ///     divided by the global batch size and regularization penalties by the number of replicas, and
    ///     the gradients are summed across replicas, so that a step equals one process's step on the
    ///     whole batch.
    ///   - validationSplit: the fraction of samples, taken from the end before shuffling, held out for
    ///     validation (as Keras).
    ///   - validationData: explicit validation inputs and labels (wins over `validationSplit`).
    ///   - shuffle: reshuffle the training samples every epoch, with a generator seeded by `seed`
    ///     (or one drawn from ``GlobalRandom``; with several replicas, the chief's).
    ///   - initialEpoch: the epoch to start at (Keras' `initial_epoch`): epochs `initialEpoch..<epochs`
    ///     run, numbered as in the uninterrupted run. A ``BackupAndRestore`` among `callbacks` with a
    ///     backup overrides it: the run resumes at the backup's epoch and batch.
    ///   - output: where the progress bar goes (standard output by default); only the chief replica
    ///     writes.
    /// - Returns: the metrics of every epoch (with several replicas, reduced across them: the same on
    ///   every replica).
    @discardableResult
    public func fit(_ x: Tensor, _ y: Tensor, batchSize: Int = 32, epochs: Int = 1, verbose: Verbosity = .progressBar,
                    callbacks: [Callback] = [], validationSplit: Double = 0, validationData: (Tensor, Tensor)? = nil,
                    shuffle: Bool = true, seed: UInt64? = nil, initialEpoch: Int = 0,
                    output: ((String) -> Void)? = nil) throws -> History {
        try inDistributionScope { replicated in
            try fitInScope(x, y, batchSize: batchSize, epochs: epochs, verbose: verbose, callbacks: callbacks,
                           validationSplit: validationSplit, validationData: validationData, shuffle: shuffle, seed: seed,
                           initialEpoch: initialEpoch, output: output, replicated: replicated)
        }
    }

    // swiftlint:disable:next function_body_length
    private func fitInScope(_ x: Tensor, _ y: Tensor, batchSize: Int, epochs: Int, verbose: Verbosity, callbacks: [Callback],
                            validationSplit: Double, validationData: (Tensor, Tensor)?, shuffle: Bool, seed: UInt64?,
                            initialEpoch: Int, output: ((String) -> Void)?, replicated: Strategy?) throws -> History {
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
        var shuffleSeed = seed ?? GlobalRandom.nextSeed()
        // Every replica shuffles with the chief's seed (GlobalRandom may differ per replica).
        if let replicated { shuffleSeed = Sequential.broadcastWords([shuffleSeed], strategy: replicated)[0] }
        var generator = SeededGenerator(seed: shuffleSeed)
        let chief = replicated?.isChief ?? true
        let write = output ?? { print($0, terminator: "") }
        stopTraining = false
        let backup = callbacks.lazy.compactMap { $0 as? BackupAndRestore }.first
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
        var resume = try backup?.restore(model: self, callbacks: callbacks)
        if let replicated { try Sequential.checkSameResumePoint(resume, backup: backup, strategy: replicated) }
        if let resume { generator = resume.shuffle }
        let firstEpoch = resume?.epoch ?? initialEpoch
        for epoch in firstEpoch..<Swift.max(firstEpoch, epochs) {
            for c in all { try c.onEpochBegin(epoch, model: self) }
            let epochStart = generator
            var order = Array(0..<n)
            if shuffle { order.shuffle(using: &generator) }
            for m in metrics { m.reset() }
            var lossSum = 0.0, seen = 0, firstStep = 0
            // With several replicas: every metric's (total, count) summed over replicas.
            var replicaMetrics = metrics.map { _ in (0.0, 0.0) }
            if let point = resume, point.step > 0 {
                // Resuming inside this epoch: its first `step` batches ran before the backup.
                firstStep = Swift.min(point.step, steps)
                lossSum = point.lossSum
                seen = point.seen
                for (m, (total, count)) in zip(metrics, point.metrics) {
                    // With several replicas the backup holds the sums over replicas: the chief carries them.
                    if chief { m.restoreState(total: total, count: count) } else { m.restoreState(total: 0, count: 0) }
                }
                if replicated != nil { replicaMetrics = point.metrics }
                if let lr = point.learningRate, let optimizer { optimizer.learningRate = .number(lr) }
            }
            resume = nil
            let bar = verbose == .silent || !chief ? nil : ProgressBar(total: steps, interactive: output == nil ? nil : false, write: write)
            if verbose != .silent && chief {
                if bar?.interactive == true { write("Epoch \(epoch + 1)/\(epochs)\n") } else { write("Epoch \(epoch + 1)/\(epochs) - ") }
            }
            for step in firstStep..<steps {
                let rows = Sequential.batchRows(step, n, batchSize)
                let logs: [(String, Double)]
                if let replicated {
                    let indices = Array(order[Sequential.shardRows(rows, replicas: replicated.numReplicasInSync, replica: replicated.replicaID)])
                    let xb = try trainX.gather(indices), yb = try trainY.gather(indices)
                    let (replicaLoss, predictions) = try replicaTrainStep(xb, yb, globalRows: rows.count, strategy: replicated)
                    if !indices.isEmpty { for m in metrics { try m.update(yTrue: yb, yPred: predictions) } }
                    let reduced = try reduceAcrossReplicas(replicaLoss, replicated)
                    lossSum += reduced.batchLoss * Double(rows.count)
                    seen += rows.count
                    replicaMetrics = reduced.metrics
                    logs = replicaLogs(loss: lossSum / Double(seen), metricStates: replicaMetrics)
                } else {
                    let indices = Array(order[rows])
                    let xb = try trainX.gather(indices), yb = try trainY.gather(indices)
                    let (batchLoss, predictions) = try localTrainStep(xb, yb)
                    lossSum += batchLoss * Double(indices.count)
                    seen += indices.count
                    for m in metrics { try m.update(yTrue: yb, yPred: predictions) }
                    logs = currentLogs(loss: lossSum / Double(seen))
                }
                bar?.update(step: step + 1, metrics: logs)
                for c in all { try c.onTrainBatchEnd(step, logs: Logs(uniqueKeysWithValues: logs), model: self) }
                // Every replica saw the same logs; a callback that decides otherwise must not leave the others
                // in a collective: the replicas stop together.
                if let replicated { stopTraining = replicated.any(stopTraining) }
                try backup?.batchEnded(model: self, callbacks: callbacks, epoch: epoch, step: step + 1, steps: steps,
                                       epochStart: epochStart, lossSum: lossSum, seen: seen,
                                       metricStates: replicated == nil ? nil : replicaMetrics)
                // Keras: a callback's `stop_training` ends the epoch after this batch; validation and the
                // epoch-end callbacks still run on the logs so far.
                if stopTraining { break }
            }
            var logs = replicated == nil ? currentLogs(loss: lossSum / Double(seen))
                : replicaLogs(loss: lossSum / Double(seen), metricStates: replicaMetrics)
            if let (vx, vy) = validation {
                let scores = try evaluate(vx, vy, batchSize: batchSize)
                logs += scores.map { ("val_" + $0.0, $0.1) }
            }
            bar?.finish(metrics: logs)
            for c in all { try c.onEpochEnd(epoch, logs: Logs(uniqueKeysWithValues: logs), model: self) }
            if let replicated { stopTraining = replicated.any(stopTraining) }
            try backup?.epochEnded(model: self, callbacks: callbacks, epoch: epoch, generator: generator)
            if stopTraining { break }
        }
        // Keras 3's fit replaces the weights by their moving averages (`use_ema`) at the end.
        if epochs > 0, let keras3 = optimizer as? Keras3.Optimizer { try keras3.finalizeVariableValues() }
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

    func currentLogs(loss: Double) -> [(String, Double)] {
        [("loss", loss)] + metrics.map { ($0.name, (try? $0.result().item()) ?? .nan) }
    }

    /// The loss and metrics over a data set, in batches (Keras' `evaluate`), as ordered pairs
    /// (`"loss"` first). Under a strategy with several replicas every replica evaluates its part of each
    /// batch and the sums are reduced: every replica returns the same scores.
    public func evaluate(_ x: Tensor, _ y: Tensor, batchSize: Int = 32) throws -> [(String, Double)] {
        try inDistributionScope { replicated in
            let (_, loss) = try compiled()
            try checkData(x, y, "evaluate")
            try resolveMetricNames(x, y)
            guard batchSize > 0 else { throw TrainingError.invalidArgument("evaluate: batchSize must be positive, got \(batchSize)") }
            if let replicated { return try replicaEvaluate(x, y, batchSize: batchSize, loss: loss, strategy: replicated) }
            let n = x.shape[0]
            for m in metrics { m.reset() }
            var lossSum = 0.0
            for batch in 0..<Sequential.batchCount(n, batchSize) {
                lossSum += try evaluateBatch(x, y, rows: Sequential.batchRows(batch, n, batchSize), loss: loss)
            }
            let result = [("loss", n > 0 ? lossSum / Double(n) : 0)] + metrics.map { ($0.name, (try? $0.result().item()) ?? .nan) }
            for m in metrics { m.reset() }
            return result
        }
    }

    /// The model's outputs for `x`, computed in batches (Keras' `predict`). Under a strategy with several
    /// replicas every replica computes its part of each batch and every replica returns all the outputs.
    public func predict(_ x: Tensor, batchSize: Int = 32) throws -> Tensor {
        guard batchSize > 0 else { throw TrainingError.invalidArgument("predict: batchSize must be positive, got \(batchSize)") }
        guard x.rank >= 1, x.shape[0] > 0 else { throw TrainingError.invalidArgument("predict: x has no samples (shape \(x.shape))") }
        return try inDistributionScope { replicated in
            if let replicated { return try replicaPredict(x, batchSize: batchSize, strategy: replicated) }
            var outputs: [Tensor] = []
            for batch in 0..<Sequential.batchCount(x.shape[0], batchSize) {
                outputs.append(try self(x.slice(rows: Sequential.batchRows(batch, x.shape[0], batchSize)), training: false).untracked)
            }
            return try Tensor.concat(outputs, axis: 0)
        }
    }
}

extension Sequential {
    /// One batch of `evaluate` (every replica's and the one process's): the loss plus penalties of
    /// `rows` in inference mode, weighted by the row count, with the metrics updated.
    func evaluateBatch(_ x: Tensor, _ y: Tensor, rows: Range<Int>, loss: any Loss) throws -> Double {
        let xb = try x.slice(rows: rows), yb = try y.slice(rows: rows)
        let predictions = try self(xb, training: false)
        var value = try loss(yb, predictions, sampleWeight: nil)
        for penalty in try regularizationLosses() { value = try value + penalty }
        for m in metrics { try m.update(yTrue: yb, yPred: predictions) }
        return try value.item() * Double(rows.count)
    }
}
