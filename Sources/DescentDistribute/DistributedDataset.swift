import DescentTensor

/// A data set split into global batches, each of which every replica receives its own shard of
/// (TensorFlow's `strategy.experimental_distribute_dataset`).
///
/// Global batch `k` is rows `k·B ..< (k+1)·B` of the (optionally shuffled) samples, `B` =
/// `globalBatchSize`; replica `r` gets the `r`-th of `numReplicasInSync` near-equal consecutive parts
/// (the first `B mod N` parts one row longer). With `B` a multiple of `N` every shard has `B / N` rows
/// (the per-replica batch). A short last batch is split the same way, so some replica may get no row.
/// Every replica iterates the same number of steps, and with the same `seed` every replica shuffles
/// the same way, so the shards of one step never overlap and together cover the global batch.
public struct DistributedDataset: Sequence, Sendable {
    /// The inputs (first dimension: samples).
    public let x: Tensor
    /// The targets (first dimension: samples).
    public let y: Tensor
    /// Samples per step, over all replicas.
    public let globalBatchSize: Int
    /// The number of replicas sharing each batch.
    public let replicas: Int
    /// This replica's index.
    public let replica: Int
    /// The sample order (shuffled once at creation, or `0..<n`).
    public let order: [Int]

    /// The number of steps (global batches).
    public var stepCount: Int { order.isEmpty ? 0 : (order.count - 1) / globalBatchSize + 1 }

    /// The global batch's sample positions at `step` that belong to `replica`.
    public func shardRows(step: Int, replica r: Int) -> Range<Int> {
        let start = step * globalBatchSize
        return DistributedDataset.part(of: start..<Swift.min(start + globalBatchSize, order.count), replicas: replicas, replica: r)
    }

    /// The part of a global batch's `rows` that belongs to `replica` of `replicas`: near-equal
    /// consecutive parts, the first `rows.count mod replicas` one row longer; a part may be empty when
    /// the batch has fewer rows than replicas. The one split rule of datasets and of `fit`.
    public static func part(of rows: Range<Int>, replicas: Int, replica: Int) -> Range<Int> {
        let (q, rem) = rows.count.quotientAndRemainder(dividingBy: replicas)
        let lo = rows.lowerBound + replica * q + Swift.min(replica, rem)
        return lo..<(lo + q + (replica < rem ? 1 : 0))
    }

    /// One step's shard for this replica.
    public struct Batch: Sendable {
        /// This replica's inputs and targets (possibly no rows).
        public let x: Tensor, y: Tensor
        /// The rows of the whole global batch (all replicas).
        public let globalBatchSize: Int
        /// The step's index.
        public let step: Int
    }

    /// This replica's shard of global batch `step`.
    public func batch(_ step: Int) throws -> Batch {
        let rows = shardRows(step: step, replica: replica)
        let indices = Array(order[rows])
        let start = step * globalBatchSize
        return Batch(x: try x.gather(indices), y: try y.gather(indices),
                     globalBatchSize: Swift.min(globalBatchSize, order.count - start), step: step)
    }

    public func makeIterator() -> AnyIterator<Batch> {
        var step = 0
        return AnyIterator {
            guard step < stepCount, let b = try? batch(step) else { return nil }
            step += 1
            return b
        }
    }
}

extension Strategy {
    /// Splits `(x, y)` into global batches of `globalBatchSize` and gives this replica its shard of each
    /// (see ``DistributedDataset``).
    /// - Parameters:
    ///   - shuffle: shuffle the samples once, with a generator seeded by `seed` (every replica must pass
    ///     the same seed; it defaults to 0 so that replicas agree).
    /// - Throws: ``DistributionError/invalidArgument(_:)`` for a non-positive batch size, mismatched
    ///   sample counts, or no samples.
    public func distribute(_ x: Tensor, _ y: Tensor, globalBatchSize: Int, shuffle: Bool = false,
                           seed: UInt64 = 0) throws -> DistributedDataset {
        guard globalBatchSize > 0 else {
            throw DistributionError.invalidArgument("distribute: globalBatchSize must be positive, got \(globalBatchSize)")
        }
        guard x.rank >= 1, y.rank >= 1, x.shape[0] == y.shape[0] else {
            throw DistributionError.invalidArgument(
                "distribute: x has shape \(x.shape) and y has shape \(y.shape); they need the same number of samples (first dimension)")
        }
        var order = Array(0..<x.shape[0])
        if shuffle {
            var g = SeededGenerator(seed: seed)
            order.shuffle(using: &g)
        }
        return DistributedDataset(x: x, y: y, globalBatchSize: globalBatchSize, replicas: numReplicasInSync,
                                  replica: replicaID, order: order)
    }
}
