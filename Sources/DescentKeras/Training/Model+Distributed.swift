import DescentAutodiff
import DescentDistribute
import DescentOptimizers
import DescentTensor
import Foundation

// The replica side of the built-in loops under a strategy with several replicas (Keras' behaviour under
// `MultiWorkerMirroredStrategy`): each replica takes its near-equal part of every global batch, scales
// its loss for the global batch, sums gradients across replicas while the backward pass runs, and
// reduces its metrics with the others. Every collective here is issued by every replica in the same
// order (the loops run the same steps on every replica, including a replica whose part is empty).

extension Model {
    /// Runs `body` in ``distributionStrategy``'s scope, as a built-in loop (a loss on the default
    /// reduction is allowed); `body` gets the strategy when it has more than one replica, else `nil`
    /// (then everything is exactly the one-process code, with no collective).
    func inDistributionScope<R>(_ body: (Strategy?) throws -> R) throws -> R {
        let strategy = distributionStrategy
        // The default strategy: no scope to enter, and the default reduction is allowed anyway (no
        // `hasStrategy`); nothing is added to the one-process loops.
        if strategy === Strategy.default { return try body(nil) }
        let replicated = strategy.numReplicasInSync > 1 ? strategy : nil
        if Strategy.currentScope === strategy {
            if BuiltInTrainingLoop.isActive { return try body(replicated) }
            return try BuiltInTrainingLoop.run { try body(replicated) }
        }
        return try strategy.scope { try BuiltInTrainingLoop.run { try body(replicated) } }
    }

    /// The part of a global batch's `rows` that belongs to `replica` of `replicas`
    /// (``DistributedDataset/part(of:replicas:replica:)``, the rule datasets use too).
    static func shardRows(_ rows: Range<Int>, replicas: Int, replica: Int) -> Range<Int> {
        DistributedDataset.part(of: rows, replicas: replicas, replica: replica)
    }

    /// The chief's `words` on every replica.
    static func broadcastWords(_ words: [UInt64], strategy: Strategy) -> [UInt64] {
        var result = words
        guard !result.isEmpty else { return result }
        result.withUnsafeMutableBytes { buffer in
            strategy.collectives.sync {
                strategy.communicator.broadcast(buffer.baseAddress!, byteCount: buffer.count, root: 0)
            }
        }
        return result
    }

    /// One replica's part of a training step on a global batch of `globalRows` rows, of which `x` and
    /// `y` are this replica's (possibly none): forward on a tape, the loss scaled for the global batch
    /// (``replicaLoss(_:_:_:localRows:globalRows:)``) plus the regularization penalties divided by the
    /// number of replicas (Keras' `scale_loss_for_distribution`), the gradients summed across replicas
    /// by a ``GradientSynchronizer`` as the tape finishes them, then `applyGradients` without a second
    /// sum (the optimizer still clips the summed gradients); an optimizer that sums them itself
    /// (`needsUnsummedGradients`: sharded state, a custom aggregator) gets them unsummed. Returns this replica's (scaled) loss: the
    /// sum over replicas is the global batch's loss.
    func replicaTrainStep(_ x: Tensor, _ y: Tensor, sampleWeight: Tensor?, globalRows: Int, strategy: Strategy) throws -> (loss: Double, predictions: Tensor) {
        let (optimizer, loss) = try compiled()
        let localRows = x.rank == 0 ? 1 : x.shape[0]
        let scale = 1.0 / Double(strategy.numReplicasInSync)
        let tape = GradientTape()
        let (value, scaled, predictions) = try tape.record { () throws -> (Tensor, Tensor, Tensor) in
            let predictions = try self(x, training: true)
            var value = try Model.replicaLoss(loss, y, predictions, sampleWeight: sampleWeight, localRows: localRows, globalRows: globalRows)
            for penalty in try regularizationLosses() { value = try value + penalty * scale }
            return (value, try Model.scaledForGradients(value, optimizer), predictions)
        }
        let variables = trainableWeights
        if optimizer.needsUnsummedGradients {
            // The optimizer sums them itself (sharded state: a reduce-scatter; or a custom aggregator).
            let local = try tape.gradient(of: scaled, wrt: variables)
            try optimizer.applyGradients(Array(zip(local, variables)))
        } else {
            let synchronizer = try GradientSynchronizer(strategy: strategy, variables: variables)
            let local = try tape.gradient(of: scaled, wrt: variables, onReady: synchronizer.gradientReady)
            let summed = try synchronizer.finish(local)
            try optimizer.applyGradients(Array(zip(summed, variables)), experimentalAggregateGradients: false)
        }
        return (try value.item(), predictions.untracked)
    }

    /// This replica's loss for its `localRows` rows of a global batch of `globalRows`:
    /// - the default reduction (``LossReduction/sumOverBatchSize``): `Σ losses / (size(losses) ·
    ///   globalRows / localRows)`, i.e. the sum over this replica's examples divided by the global
    ///   batch's element count, so that the sum over replicas is the mean over the global batch (Keras
    ///   divides the local mean by the number of replicas, which is the same with equal parts);
    /// - ``LossReduction/sum`` and ``LossReduction/none``: the loss as it is (sums add up across replicas).
    ///
    /// An empty part gives `0 · Σ predictions`: zero, but on the tape, so that this replica reports the
    /// same gradients (zeros) as the others and takes part in every collective.
    ///
    /// With sample weights, the default reduction is the weighted local loss times `localRows /
    /// globalRows` (the same sum over the global batch's element count).
    static func replicaLoss(_ loss: any Loss, _ y: Tensor, _ predictions: Tensor, sampleWeight: Tensor?, localRows: Int,
                            globalRows: Int) throws -> Tensor {
        guard localRows > 0 else { return try predictions.sum() * 0.0 }
        if let sampleWeight {
            let value = try loss(y, predictions, sampleWeight: sampleWeight)
            return loss.reduction == .sumOverBatchSize ? try value * (Double(localRows) / Double(globalRows)) : value
        }
        switch loss.reduction {
        case .sumOverBatchSize:
            let losses = try loss.call(y, predictions)
            let count = losses.scalarCount
            guard count > 0 else { return try predictions.sum() * 0.0 }
            return try losses.sum() / (Double(count) * Double(globalRows) / Double(localRows))
        case .sum, .none:
            return try loss(y, predictions, sampleWeight: nil)
        }
    }

    /// Every metric's state on this replica (``TrainingMetric/stateValues``), after its loss:
    /// `[loss, state₀..., state₁..., ...]`.
    private func replicaState(_ loss: Double) throws -> [Double] {
        [loss] + metrics.flatMap(\.stateValues)
    }

    /// The step's loss summed over replicas (the global batch's loss) and every metric's `(total,
    /// count)` summed over replicas (in rank order: the same numbers on every replica).
    func reduceAcrossReplicas(_ replicaLoss: Double, _ strategy: Strategy) throws -> (batchLoss: Double, metrics: [[Double]]) {
        let sums = strategy.reduce(.sum, try replicaState(replicaLoss))
        var states: [[Double]] = []
        var offset = 1
        for m in metrics {
            let count = m.stateValues.count
            states.append(Array(sums[offset..<(offset + count)]))
            offset += count
        }
        return (sums[0], states)
    }

    /// The logs from reduced metric states (``TrainingMetric/resultValue(forState:)``, in the metric's
    /// dtype: `total / count` for a mean, 0 for no samples).
    func replicaLogs(loss: Double, metricStates: [[Double]]) -> [(String, Double)] {
        [("loss", loss)] + zip(metrics, metricStates).map { m, state in
            (m.name, (try? m.resultValue(forState: state)) ?? .nan)
        }
    }

    /// Throws unless every replica resumes at the same point: a backup folder that is not shared would
    /// make the replicas run different steps (and wait for each other in different collectives).
    static func checkSameResumePoint(_ point: FitResumePoint?, backup: BackupAndRestore?, strategy: Strategy) throws {
        guard let backup else { return }
        let mine: [Double] = point.map { [1, Double($0.epoch), Double($0.step)] } ?? [0, 0, 0]
        let extremes = strategy.collectives.sync { strategy.communicator.allReduce(mine + mine.map { -$0 }, max: true) }
        guard (0..<3).allSatisfy({ extremes[$0] == -extremes[$0 + 3] }) else {
            let here = point.map { "epoch \($0.epoch), batch \($0.step)" } ?? "no backup"
            throw TrainingError.invalidArgument(
                "BackupAndRestore: the replicas found different backups in \(backup.backupDir) (replica \(strategy.replicaID): \(here)); "
                    + "every worker must see the same folder (one host or a shared filesystem)")
        }
    }

    /// The model is built the same way on every replica before a loop in which some replica may have no
    /// rows (creating weights in a strategy's scope is a collective).
    func buildForReplicas(_ x: Tensor) throws {
        if builtInputShape == nil && x.rank >= 1 && x.shape[0] > 0 { _ = try self(x.slice(rows: 0..<1)) }
    }

    /// `predict` on this replica's part of every batch; the parts are all-gathered and put back in order,
    /// so every replica returns every output.
    func replicaPredict(_ x: Tensor, batchSize: Int, strategy: Strategy) throws -> Tensor {
        try buildForReplicas(x)
        let n = x.shape[0], replicas = strategy.numReplicasInSync
        let batches = Model.batchCount(n, batchSize)
        func part(_ batch: Int, _ replica: Int) -> Range<Int> {
            Model.shardRows(Model.batchRows(batch, n, batchSize), replicas: replicas, replica: replica)
        }
        var outputs: [Tensor] = []
        for batch in 0..<batches where !part(batch, strategy.replicaID).isEmpty {
            outputs.append(try self(x.slice(rows: part(batch, strategy.replicaID)), training: false).untracked)
        }
        // A replica with no rows at all still needs the shape and dtype of one output row.
        let sample = try outputs.first ?? self(x.slice(rows: 0..<1), training: false).untracked
        let rowShape = Array(sample.shape.dropFirst()), dtype = sample.dtype
        let rowBytes = rowShape.reduce(1, *) * dtype.byteSize
        var bytes: [UInt8] = []
        if !outputs.isEmpty {
            let local = try Tensor.concat(outputs, axis: 0)
            bytes = try Model.rawBytes(of: local)
        }
        let parts = strategy.collectives.sync { strategy.communicator.allGather(bytes: bytes) }
        guard parts.reduce(0, { $0 + $1.count }) == n * rowBytes else {
            throw DistributionError.communication("predict: the replicas' outputs do not add up to \(n) rows of shape \(rowShape) (\(dtype))")
        }
        var joined: [UInt8] = []
        joined.reserveCapacity(n * rowBytes)
        var cursor = [Int](repeating: 0, count: replicas)
        for batch in 0..<batches {
            for r in 0..<replicas {
                let count = part(batch, r).count * rowBytes
                joined.append(contentsOf: parts[r][cursor[r]..<(cursor[r] + count)])
                cursor[r] += count
            }
        }
        return try Model.tensor(fromBytes: joined, shape: [n] + rowShape, dtype: dtype)
    }

    /// A tensor's elements as bytes, row-major.
    static func rawBytes(of t: Tensor) throws -> [UInt8] {
        switch t.dtype {
        case .float32: return try t.withUnsafeBufferPointer(as: Float.self) { Array(UnsafeRawBufferPointer($0)) }
        case .float64: return try t.withUnsafeBufferPointer(as: Double.self) { Array(UnsafeRawBufferPointer($0)) }
        case .int64: return try t.withUnsafeBufferPointer(as: Int64.self) { Array(UnsafeRawBufferPointer($0)) }
        }
    }

    /// The tensor whose elements are `bytes` (row-major).
    static func tensor(fromBytes bytes: [UInt8], shape: [Int], dtype: DType) throws -> Tensor {
        func load<T: TensorElement>(_: T.Type) throws -> Tensor {
            let count = bytes.count / MemoryLayout<T>.stride
            let scalars = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<(count * MemoryLayout<T>.stride)])) }
                initialized = count
            }
            return try Tensor(shape: shape, scalars: scalars)
        }
        switch dtype {
        case .float32: return try load(Float.self)
        case .float64: return try load(Double.self)
        case .int64: return try load(Int64.self)
        }
    }
}
