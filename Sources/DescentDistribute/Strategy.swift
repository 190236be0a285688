@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor
import Foundation

/// A distribution strategy (TensorFlow's `tf.distribute.Strategy`): how many replicas train in sync,
/// and the collectives between them. One replica per process.
///
/// This base class is the **default strategy** (``Strategy/default``, TensorFlow's
/// `tf.distribute.get_strategy()` outside any scope): one replica and no communication at all.
/// `MultiWorkerMirroredStrategy` (module `DescentMPI`) is the multi-process one; at world size 1 it
/// behaves exactly as this one, so one program runs with or without `mpirun`.
///
/// ```swift
/// let strategy = try MultiWorkerMirroredStrategy()
/// let model = try strategy.scope {            // variables created here are mirrored
///     let model = try Sequential([Dense(128, activation: .relu), Dense(10)])
///     model.compile(optimizer: try Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
///     return model
/// }
/// try model.fit(x, y, batchSize: 256)           // 256 = the global batch, split across replicas
/// ```
///
/// Inside ``scope(_:)`` (and ``run(_:)``):
/// - every variable created is **mirrored**: its initial value is rank 0's (broadcast at creation), so
///   all replicas start equal; optimizers' slots too;
/// - an optimizer's `applyGradients` **sums gradients across replicas** before clipping (Keras'
///   `_aggregate_gradients`); an optimizer created in the scope keeps using this strategy outside it;
/// - Keras losses left on the default reduction are an error outside `fit` (divide by the global batch
///   size yourself, or use ``computeAverageLoss(_:sampleWeight:globalBatchSize:)``).
///
/// Every collective goes through one ``CollectiveQueue``, so each rank issues them in the same order.
open class Strategy: @unchecked Sendable {
    // @unchecked Sendable invariant: every stored property is immutable after init except
    // `gradientBucketByteCount`, `overlapsGradientSummation` and `lastCheckedShapes`, which are read
    // and written on the training task only.

    /// The collectives; ``LocalCommunicator`` for the default strategy.
    public let communicator: any Communicator
    /// The serial queue every collective of this strategy runs on.
    public let collectives: CollectiveQueue
    /// The approximate size of one gradient all-reduce (default 2 MiB; `DESCENT_BUCKET_BYTES`). Open
    /// MPI's shared-memory path moves 6–8 GB/s in calls of 1–4 MB and about 1 GB/s at 16 MB.
    public var gradientBucketByteCount: Int
    /// Whether gradient buckets are summed while the backward pass goes on (default; set
    /// `DESCENT_GRADIENT_OVERLAP=0` for all sums after it, to measure what the overlap saves).
    public var overlapsGradientSummation: Bool
    /// The fingerprint of the last variable list whose shapes every replica was found to share (see
    /// `checkSameShapes(_:_:onceForTheSameShapes:)`).
    var lastCheckedShapes: UInt64?

    /// The strategy used outside any scope: one replica, no communication.
    public static let `default` = Strategy(communicator: LocalCommunicator())

    /// The strategy of the innermost enclosing ``scope(_:)`` on this task.
    @TaskLocal static var scoped: Strategy?

    /// The strategy of the innermost enclosing ``scope(_:)``, or ``default`` (TensorFlow's
    /// `tf.distribute.get_strategy()`).
    public static var current: Strategy { scoped ?? .default }

    /// The strategy of the innermost enclosing ``scope(_:)`` on this task, or `nil` outside every scope.
    public static var currentScope: Strategy? { scoped }

    /// Whether code runs inside some strategy's scope other than the default (TensorFlow's
    /// `tf.distribute.has_strategy()`).
    public static var hasStrategy: Bool { scoped.map { $0 !== Strategy.default } ?? false }

    /// Creates a strategy over `communicator`, whose collectives run on `collectives` (strategies over
    /// one communicator must share one queue, so that their collectives keep one order).
    public init(communicator: any Communicator, collectives: CollectiveQueue? = nil) {
        self.communicator = communicator
        self.collectives = collectives ?? CollectiveQueue(label: "descent.collectives")
        let env = ProcessInfo.processInfo.environment["DESCENT_BUCKET_BYTES"].flatMap { Int($0) }
        self.gradientBucketByteCount = env.map { Swift.max(4096, $0) } ?? 2 << 20
        self.overlapsGradientSummation = ProcessInfo.processInfo.environment["DESCENT_GRADIENT_OVERLAP"] != "0"
    }

    /// The number of replicas whose gradients are summed (Keras' `num_replicas_in_sync`).
    public var numReplicasInSync: Int { communicator.size }
    /// This replica's index, `0..<numReplicasInSync` (Keras' `replica_id_in_sync_group`).
    public var replicaID: Int { communicator.rank }
    /// Whether this is replica 0: the one that prints and writes files (Keras' chief worker).
    public var isChief: Bool { communicator.rank == 0 }

    // MARK: Scope

    /// Runs `body` with this strategy as ``current``: variables created inside are mirrored, and
    /// optimizers created inside sum gradients across replicas.
    /// - Throws: ``DistributionError/invalidArgument(_:)`` inside the scope of a different strategy
    ///   (as TensorFlow: "Mixing different tf.distribute.Strategy objects"), and what `body` throws.
    public func scope<R>(_ body: () throws -> R) throws -> R {
        if let outer = Strategy.scoped, outer !== self, outer !== Strategy.default {
            throw DistributionError.invalidArgument(
                "Mixing different distribution strategies: this code is already in the scope of another strategy")
        }
        if numReplicasInSync == 1 { return try Strategy.$scoped.withValue(self, operation: body) }
        let mirror: @Sendable (Variable) -> Void = { [self] v in broadcastUnchecked(v) }
        return try Strategy.$scoped.withValue(self) {
            try VariableCreation.$observer.withValue(mirror, operation: body)
        }
    }

    /// Runs `body` on this replica inside the scope (TensorFlow's `strategy.run(fn)`: with one replica
    /// per process, the per-replica value is this process's).
    public func run<R>(_ body: () throws -> R) throws -> R { try scope(body) }

    // MARK: Reductions

    /// The sum or mean over replicas of `value` (TensorFlow's `strategy.reduce(op, value, axis=None)`):
    /// every replica receives the same result.
    /// - Throws: ``DistributionError/communication(_:)`` when replicas give different shapes or dtypes.
    public func reduce(_ op: ReduceOp, _ value: Tensor) throws -> Tensor {
        guard numReplicasInSync > 1 else { return value.untracked }
        guard value.dtype != .int64 else {
            let summed = try reduce(op == .sum ? .sum : .mean, value.cast(to: .float64))
            return op == .sum ? try summed.cast(to: .int64) : summed
        }
        try checkSameShape(value.shape, value.dtype, "reduce")
        var result = value.untracked
        let storage = result.uniqueStorage()
        collectives.sync {
            communicator.allReduceSum(storage.base, into: storage.base, count: value.scalarCount, dtype: value.dtype)
        }
        return op == .sum ? result : try result / Double(numReplicasInSync)
    }

    /// The sum or mean over replicas of each number (metric totals and counts): every replica receives
    /// the same numbers, summed in rank order.
    public func reduce(_ op: ReduceOp, _ values: [Double]) -> [Double] {
        guard numReplicasInSync > 1 else { return values }
        let sums = collectives.sync { communicator.allReduce(values, max: false) }
        return op == .sum ? sums : sums.map { $0 / Double(numReplicasInSync) }
    }

    /// Whether `flag` is true on any replica (for decisions every replica must take together, such as
    /// stopping early).
    public func any(_ flag: Bool) -> Bool {
        guard numReplicasInSync > 1 else { return flag }
        return collectives.sync { communicator.allReduce([flag ? 1 : 0], max: true) }[0] > 0
    }

    /// Waits until every replica gets here.
    public func barrier() {
        guard numReplicasInSync > 1 else { return }
        collectives.sync { communicator.barrier() }
    }

    /// Copies `root`'s values of `variables` into every replica's (Horovod's
    /// `broadcast_variables`), in list order.
    /// - Throws: ``DistributionError/communication(_:)`` when replicas list different shapes or dtypes.
    public func broadcast(_ variables: [Variable], root: Int = 0) throws {
        guard numReplicasInSync > 1 else { return }
        guard (0..<numReplicasInSync).contains(root) else {
            throw DistributionError.invalidArgument("broadcast: root \(root) is not a replica (0..<\(numReplicasInSync))")
        }
        try checkSameShapes(variables.map { ($0.shape, $0.dtype) }, "broadcast of \(variables.count) variables")
        for v in variables { broadcastUnchecked(v, root: root) }
    }

    func broadcastUnchecked(_ variable: Variable, root: Int = 0) {
        variable.withUniqueStorage { storage in
            collectives.sync {
                communicator.broadcast(storage.base, byteCount: variable.scalarCount * variable.dtype.byteSize, root: root)
            }
        }
    }

    /// Ends every process of the job (MPI_Abort) after printing `message` to standard error: for an
    /// error on one replica, so that the others do not wait in a collective.
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("error (replica \(replicaID) of \(numReplicasInSync)): \(message)\n".utf8))
        if numReplicasInSync > 1 { communicator.abort(code: code) }
        exit(code)
    }

    // MARK: Consistency checks

    /// Throws unless every replica gives the same shape and dtype: a collective over different sizes
    /// would read or write out of bounds.
    func checkSameShape(_ shape: [Int], _ dtype: DType, _ what: String) throws {
        try checkSameShapes([(shape, dtype)], what)
    }

    func checkSameShapes(_ shapes: [([Int], DType)], _ what: String, onceForTheSameShapes: Bool = false) throws {
        guard numReplicasInSync > 1 else { return }
        var hasher = FNV1a()
        for (shape, dtype) in shapes {
            hasher.add(UInt64(shape.count))
            for d in shape { hasher.add(UInt64(bitPattern: Int64(d))) }
            hasher.add(UInt64(dtype.byteSize) &* 31 &+ (dtype == .int64 ? 1 : 0))
        }
        if onceForTheSameShapes && lastCheckedShapes == hasher.value { return }
        let mine = Int(bitPattern: UInt(truncatingIfNeeded: hasher.value))
        let all = collectives.sync { communicator.allGather(mine) }
        if let other = all.firstIndex(where: { $0 != mine }) {
            throw DistributionError.communication(
                "\(what): replica \(replicaID) and replica \(other) have different shapes or dtypes")
        }
        if onceForTheSameShapes { lastCheckedShapes = hasher.value }
    }
}

/// FNV-1a over 64-bit words: a cheap fingerprint of shapes that every rank computes the same way.
struct FNV1a {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ word: UInt64) {
        var w = word
        for _ in 0..<8 {
            value = (value ^ (w & 0xff)) &* 0x100_0000_01b3
            w >>= 8
        }
    }
}
