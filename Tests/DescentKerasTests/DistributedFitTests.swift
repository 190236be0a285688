import DescentAutodiff
import DescentDistribute
@testable import DescentKeras
import DescentMPI
import DescentOptimizers
import DescentTensor
import Foundation
import Synchronization
import Testing

// Issue 11, items 3 and 4, in one process: `fit`/`evaluate`/`predict` under a strategy with one replica
// are exactly the one-process loops; the replica loss scaling; the default-reduction rule. Several
// processes are tested under mpirun in Tests/DescentCLITests/DistributedTrainTests.swift.

@Suite struct DistributedFitTests {
    /// A small classification set: 70 samples (not a multiple of the batch), 5 features, 3 classes.
    static func data(seed: UInt64 = 4) throws -> (Tensor, Tensor) {
        var g = SeededGenerator(seed: seed)
        let x = try Tensor.randomNormal(shape: [70, 5], using: &g)
        let y = Tensor((0..<70).map { _ in Int64(g.next() % 3) })
        return (x, y)
    }

    /// The same model and optimizer every time: Dense with an L2 penalty, Dropout, Dense, every generator
    /// seeded here (other suites use GlobalRandom in parallel).
    static func makeModel() throws -> Sequential {
        let model = try Sequential([try Dense(12, activation: .relu, kernelInitializer: .glorotUniform(seed: 1), kernelRegularizer: .l2(0.01)),
                                try Dropout(0.25, seed: 2), try Dense(3, kernelInitializer: .glorotUniform(seed: 3))])
        model.compile(optimizer: try Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [try SparseCategoricalAccuracy(name: "accuracy")])
        return model
    }

    struct Run: Equatable {
        var history: [String: [Double]]
        var weights: [[Float]]
        var optimizerWeights: [[Double]]
        var scores: [Double]
        var predictions: [Float]
        var batchLosses: [Double]
    }

    static func train(_ model: Sequential) throws -> Run {
        let (x, y) = try data()
        var batchLosses: [Double] = []
        let logger = LambdaCallback(onTrainBatchEnd: { _, logs, _ in batchLosses.append(logs["loss"] ?? .nan) })
        let history = try model.fit(x, y, batchSize: 16, epochs: 3, verbose: .silent, callbacks: [logger],
                                    validationSplit: 0.2, seed: 9)
        let scoreLogs = try model.evaluate(x, y, batchSize: 16, verbose: .silent)
        let scores = model.metricsNames.map { scoreLogs[$0] ?? .nan }
        let predictions = try model.predict(x, batchSize: 16).scalars(as: Float.self)
        return Run(history: history.history, weights: try model.weights.map { try $0.untrackedValue.scalars(as: Float.self) },
                   optimizerWeights: (model.optimizer?.weights ?? []).map { $0.untrackedValue.doubles },
                   scores: scores, predictions: predictions, batchLosses: batchLosses)
    }

    @Test func oneReplicaMultiWorkerFitIsExactlyTheOneProcessFit() throws {
        let plain = try Self.train(try Self.makeModel())
        let strategy = MultiWorkerMirroredStrategy()
        #expect(strategy.numReplicasInSync == 1, "run without mpirun: one replica")
        let model = try strategy.scope { try Self.makeModel() }
        #expect(model.distributionStrategy === strategy)
        let distributed = try Self.train(model)
        #expect(distributed == plain, "fit, evaluate and predict under a one-replica strategy differ from the plain loops")
        #expect(plain.history["val_loss"]?.count == 3 && plain.batchLosses.count == 12)
    }

    @Test func oneReplicaStrategyCalledInScopeIsExactlyTheOneProcessFitToo() throws {
        // A model created outside every scope runs under the strategy of the scope it is trained in (Keras'
        // `distribute_strategy`), and gives the same numbers.
        let plain = try Self.train(try Self.makeModel())
        let model = try Self.makeModel()
        #expect(model.distributionStrategy === Strategy.default)
        let strategy = MultiWorkerMirroredStrategy()
        let inScope = try strategy.scope { () throws -> Run in
            #expect(model.distributionStrategy === strategy)
            return try Self.train(model)
        }
        #expect(inScope == plain)
    }

    @Test func aOneReplicaBackupHasTheOneProcessLayout() throws {
        // Under a one-replica strategy a backup is the one-process file (no per-replica random states).
        // (Resuming is not run here: restoring sets GlobalRandom, which other suites use in parallel; the
        // one-process resume is BackupAndRestoreTests', the multi-worker one DistributedTrainTests'.)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("descent-distfit-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (x, y) = try Self.data()
        struct Stop: Error {}
        let model = try MultiWorkerMirroredStrategy().scope { try Self.makeModel() }
        var batches = 0
        let stopper = LambdaCallback(onTrainBatchEnd: { _, _, _ in batches += 1; if batches == 7 { throw Stop() } })
        #expect(throws: Stop.self) {
            try model.fit(x, y, batchSize: 16, epochs: 3, verbose: .silent,
                          callbacks: [try BackupAndRestore(backupDir: dir, saveFreq: .steps(3)), stopper], seed: 2)
        }
        let file = try Data(contentsOf: URL(fileURLWithPath: dir + "/backup.h5"))
        #expect(file.range(of: Data("descent_training_state".utf8)) != nil)
        #expect(file.range(of: Data("replica_random".utf8)) == nil, "a one-replica backup has the one-process layout")
    }

    // MARK: The replica loss

    /// Two replicas' parts of one global batch (one of them possibly empty): the sum of their gradients of
    /// `replicaLoss` (+ penalties / 2) equals the gradient of the one-process loss on the whole batch.
    @Test(arguments: [(24, 13), (24, 24), (7, 0), (1, 1)])
    func replicaLossesSumToTheGlobalBatchGradient(_ rows: Int, _ split: Int) throws {
        var g = SeededGenerator(seed: 5)
        let x = try Tensor.randomNormal(shape: [rows, 4], using: &g)
        let y = Tensor((0..<rows).map { _ in Int64(g.next() % 3) })
        let model = try Sequential([try Dense(6, activation: .tanh, kernelInitializer: .glorotUniform(seed: 4), kernelRegularizer: .l2(0.1)),
                                try Dense(3, kernelInitializer: .glorotUniform(seed: 5))])
        try model.build(inputShape: [1, 4])
        let loss = SparseCategoricalCrossentropy(fromLogits: true)
        func gradients(_ body: () throws -> Tensor) throws -> [[Double]] {
            let tape = GradientTape()
            let value = try tape.record(body)
            let grads = try tape.gradient(of: value, wrt: model.trainableWeights)
            #expect(grads.allSatisfy { $0 != nil }, "every replica must report every gradient")
            return try grads.map { try ($0?.denseValue ?? Tensor.zeros(shape: [1])).doubles }
        }
        let global = try gradients {
            var v = try loss(y, try model(x))
            for p in try model.regularizationLosses() { v = try v + p }
            return v
        }
        var summed: [[Double]]?
        for part in [0..<split, split..<rows] {
            let xs = try x.slice(rows: part), ys = try y.slice(rows: part)
            let local = try gradients {
                var v = try Model.replicaLoss(loss, ys, try model(xs), sampleWeight: nil, localRows: part.count, globalRows: rows)
                for p in try model.regularizationLosses() { v = try v + p * 0.5 }
                return v
            }
            summed = summed.map { zip($0, local).map { zip($0, $1).map { $0 + $1 } } } ?? local
        }
        for (a, b) in zip(global, try #require(summed)) {
            for (u, v) in zip(a, b) { #expect(abs(u - v) <= 1e-6 * max(1, abs(u)), "\(u) vs \(v)") }
        }
    }

    @Test func shardsSplitEveryBatchNearEquallyInOrder() {
        #expect((0..<3).map { Sequential.shardRows(10..<20, replicas: 3, replica: $0) } == [10..<14, 14..<17, 17..<20])
        #expect((0..<3).map { Sequential.shardRows(5..<7, replicas: 3, replica: $0) } == [5..<6, 6..<7, 7..<7])
    }

    // MARK: The default-reduction rule (tf-keras `Loss._get_reduction`)

    @Test func aDefaultReductionLossInAStrategyScopeOutsideFitIsAnError() throws {
        let y = Tensor([0, 2] as [Int64])
        let logits = try Tensor(shape: [2, 3], scalars: [0.1, 0.2, 0.3, 0.3, 0.2, 0.1] as [Float])
        let auto = SparseCategoricalCrossentropy(fromLogits: true)
        // Outside every scope, and in the default strategy's, the default reduction is fine.
        _ = try auto(y, logits)
        _ = try Strategy.default.scope { try auto(y, logits) }
        // In a strategy's scope, even with one replica (Keras' `has_strategy()`), it is an error naming the fix.
        for strategy in [MultiWorkerMirroredStrategy(), Strategy(communicator: LocalCommunicator())] {
            do {
                _ = try strategy.scope { try auto(y, logits) }
                Issue.record("a default-reduction loss in a custom loop under a strategy must throw")
            } catch let error as KerasError {
                let message = "\(error)"
                #expect(message.contains("LossReduction.sum") && message.contains("LossReduction.none")
                            && message.contains("computeAverageLoss") && message.contains("sparse_categorical_crossentropy"), "\(message)")
            }
            let wrapped = LossFunctionWrapper(name: "my_loss") { t, p in try Losses.meanSquaredError(t, p) }
            #expect(throws: KerasError.self) { try strategy.scope { try wrapped(logits, logits) } }
            // SUM and NONE (with computeAverageLoss) are the way.
            let sum = try strategy.scope { try SparseCategoricalCrossentropy(fromLogits: true, reduction: .sum)(y, logits) }
            let none = try strategy.scope { () throws -> Tensor in
                try computeAverageLoss(try SparseCategoricalCrossentropy(fromLogits: true, reduction: .none)(y, logits), globalBatchSize: 2)
            }
            #expect(abs(try sum.item() / 2 - none.item()) < 1e-6)
            #expect(abs(try none.item() - auto(y, logits).item()) < 1e-6)
        }
    }

    @Test func theBuiltInLoopsAllowTheDefaultReductionInAScope() throws {
        let strategy = Strategy(communicator: LocalCommunicator())
        let (x, y) = try Self.data()
        let model = try strategy.scope { try Self.makeModel() }
        // fit, evaluate and trainStep use the compiled loss on its default reduction, also when called in
        // the scope.
        try model.fit(x, y, batchSize: 32, epochs: 1, verbose: .silent)
        try strategy.scope {
            _ = try model.evaluate(x, y, verbose: .silent)
            _ = try model.trainStep(Batch(x: try x.slice(rows: 0..<8), y: try y.slice(rows: 0..<8)))
        }
        // ...but the same loss object called by hand in the scope is not allowed.
        let loss = try #require(model.loss)
        #expect(throws: KerasError.self) { try strategy.scope { try loss(y, try model(x)) } }
    }
}

// MARK: Several replicas in one process

/// Where in-process replicas meet: every collective is one exchange of each replica's bytes.
final class Rendezvous: @unchecked Sendable {
    // @unchecked Sendable invariant: every mutable property is read and written under `condition`.
    let size: Int
    private let condition = NSCondition()
    private var generation = 0
    private var arrived = 0
    private var payloads: [[UInt8]]
    private var result: [[UInt8]] = []

    init(size: Int) {
        self.size = size
        payloads = Array(repeating: [], count: size)
    }

    /// Every replica's `payload`, in rank order, once all of them have called (at most 60 s).
    func exchange(_ rank: Int, _ payload: [UInt8]) -> [[UInt8]] {
        condition.lock()
        defer { condition.unlock() }
        let mine = generation
        payloads[rank] = payload
        arrived += 1
        if arrived == size {
            result = payloads
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            let deadline = Date().addingTimeInterval(60)
            while generation == mine {
                precondition(condition.wait(until: deadline), "replica \(rank) waited 60 s in a collective: the replicas diverged")
            }
        }
        return result
    }
}

/// A ``Communicator`` between threads of one process (for tests): sums in rank order, as MPI's gives
/// every rank the same bytes.
final class ThreadCommunicator: Communicator, @unchecked Sendable {
    // @unchecked Sendable: immutable; the rendezvous synchronizes.
    let rank: Int
    let rendezvous: Rendezvous
    var size: Int { rendezvous.size }

    init(rank: Int, _ rendezvous: Rendezvous) {
        self.rank = rank
        self.rendezvous = rendezvous
    }

    private func sums(_ send: UnsafeRawPointer, _ count: Int, _ dtype: DType) -> [UInt8] {
        let all = rendezvous.exchange(rank, Array(UnsafeRawBufferPointer(start: send, count: count * dtype.byteSize)))
        var out = all[0]
        out.withUnsafeMutableBytes { o in
            for part in all.dropFirst() {
                part.withUnsafeBytes { p in
                    for i in 0..<count {
                        switch dtype {
                        case .float32: o.storeBytes(of: o.load(fromByteOffset: 4 * i, as: Float.self) + p.load(fromByteOffset: 4 * i, as: Float.self), toByteOffset: 4 * i, as: Float.self)
                        case .float64: o.storeBytes(of: o.load(fromByteOffset: 8 * i, as: Double.self) + p.load(fromByteOffset: 8 * i, as: Double.self), toByteOffset: 8 * i, as: Double.self)
                        case .int64: o.storeBytes(of: o.load(fromByteOffset: 8 * i, as: Int64.self) &+ p.load(fromByteOffset: 8 * i, as: Int64.self), toByteOffset: 8 * i, as: Int64.self)
                        }
                    }
                }
            }
        }
        return out
    }

    func allReduceSum(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int, dtype: DType) {
        let out = sums(send, count, dtype)
        out.withUnsafeBytes { receive.copyMemory(from: $0.baseAddress!, byteCount: out.count) }
    }

    func reduceScatterSum(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, counts: [Int], dtype: DType) {
        let out = sums(send, counts.reduce(0, +), dtype)
        let start = counts[0..<rank].reduce(0, +) * dtype.byteSize
        out.withUnsafeBytes { receive.copyMemory(from: $0.baseAddress! + start, byteCount: counts[rank] * dtype.byteSize) }
    }

    func allGather(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, byteCounts counts: [Int]) {
        let joined = rendezvous.exchange(rank, Array(UnsafeRawBufferPointer(start: send, count: counts[rank]))).flatMap { $0 }
        joined.withUnsafeBytes { if !joined.isEmpty { receive.copyMemory(from: $0.baseAddress!, byteCount: joined.count) } }
    }

    func allGather(_ value: Int) -> [Int] {
        rendezvous.exchange(rank, withUnsafeBytes(of: value) { Array($0) }).map { $0.withUnsafeBytes { $0.load(as: Int.self) } }
    }

    func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) {
        let mine = rank == root ? Array(UnsafeRawBufferPointer(start: buffer, count: byteCount)) : []
        let all = rendezvous.exchange(rank, mine)
        if rank != root { all[root].withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: byteCount) } }
    }

    func allReduce(_ values: [Double], max: Bool) -> [Double] {
        let all = rendezvous.exchange(rank, values.withUnsafeBytes { Array($0) }).map { $0.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) } }
        return all.dropFirst().reduce(all[0]) { acc, v in zip(acc, v).map { max ? Swift.max($0, $1) : $0 + $1 } }
    }

    func barrier() { _ = rendezvous.exchange(rank, []) }

    func abort(code: Int32) -> Never { fatalError("replica \(rank) aborted the job with status \(code)") }
}

/// Runs `body` on `count` replicas, one thread each, and returns their results in rank order.
func onReplicas<R: Sendable>(_ count: Int, _ body: @escaping @Sendable (Strategy) throws -> R) throws -> [R] {
    let rendezvous = Rendezvous(size: count)
    let results = Mutex<[Result<R, any Error>?]>(Array(repeating: nil, count: count))
    let group = DispatchGroup()
    for rank in 0..<count {
        group.enter()
        let thread = Thread {
            let strategy = Strategy(communicator: ThreadCommunicator(rank: rank, rendezvous))
            let result = Result { try body(strategy) }
            results.withLock { $0[rank] = result }
            group.leave()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
    group.wait()
    return try results.withLock { $0 }.map { try $0!.get() }
}

@Suite struct InProcessReplicaTests {
    /// What one replica (or one process) ends with.
    struct Outcome: Sendable, Equatable {
        var weights: [[Float]]
        var history: [String: [Double]]
        var scores: [Double]
        var predictions: [Float]
        /// The model's own forward pass on every sample, outside the loops.
        var forward: [Float]
    }

    /// The models trained: an MLP with an L2 penalty (Adam), the same with a global-norm clip (applied
    /// to the summed gradients), an Embedding model (sparse gradients, all-gathered).
    enum Variant: String, Sendable, CaseIterable {
        case dense, clipped, embedding
    }

    static func model(_ variant: Variant = .dense) throws -> Sequential {
        let first: Layer = variant == .embedding
            ? try Embedding(inputDim: 20, outputDim: 4, embeddingsInitializer: .randomUniform(seed: 13))
            : try Dense(10, activation: .relu, kernelInitializer: .glorotUniform(seed: 11), kernelRegularizer: .l2(0.01))
        let model = try Sequential([first] + (variant == .embedding ? [Flatten()] : []) + [try Dense(3, kernelInitializer: .glorotUniform(seed: 12))])
        let optimizer = variant == .clipped ? try Adam(learningRate: 0.02, globalClipnorm: 0.05) : try Adam(learningRate: 0.02)
        model.compile(optimizer: optimizer, loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [try SparseCategoricalAccuracy(name: "accuracy")])
        return model
    }

    /// 70 samples (5 features, or 3 indices below 20 for the Embedding model).
    static func data(_ variant: Variant) throws -> (Tensor, Tensor) {
        let (x, y) = try DistributedFitTests.data(seed: 8)
        guard variant == .embedding else { return (x, y) }
        var g = SeededGenerator(seed: 6)
        return (try Tensor((0..<210).map { _ in Int64(g.next() % 20) }).reshaped(to: [70, 3]), y)
    }

    /// 70 samples, 14 held out for validation: 56 trained in batches of `batch`, and evaluated and
    /// predicted in batches of `evaluationBatch`.
    static func run(_ model: Sequential, _ variant: Variant = .dense, batch: Int, evaluationBatch: Int) throws -> Outcome {
        let (x, y) = try Self.data(variant)
        let history = try model.fit(x, y, batchSize: batch, epochs: 3, verbose: .silent, validationSplit: 0.2, seed: 5)
        let scoreLogs = try model.evaluate(x, y, batchSize: evaluationBatch, verbose: .silent)
        let scores = model.metricsNames.map { scoreLogs[$0] ?? .nan }
        let predictions = try model.predict(x, batchSize: evaluationBatch).scalars(as: Float.self)
        return Outcome(weights: try model.weights.map { try $0.untrackedValue.scalars(as: Float.self) }, history: history.history,
                       scores: scores, predictions: predictions, forward: try model(x).scalars(as: Float.self))
    }

    static func close(_ a: [Float], _ b: [Float], _ tolerance: Float) -> Bool {
        let scale = a.map { abs($0) }.max() ?? 0
        return a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * Swift.max(1, scale) }
    }

    /// (replicas, batch, evaluation batch): last batches of 8 (3/3/2) and 7; with 11 and 23, last
    /// batches of 1 row, of which two of three replicas have no part.
    @Test(arguments: Variant.allCases, [(2, 12, 9), (3, 12, 9), (3, 11, 23)])
    func replicasInOneProcessEqualOneProcessAndEachOther(_ variant: Variant, _ sizes: (Int, Int, Int)) throws {
        let (count, batch, evaluationBatch) = sizes
        let single = try Self.run(try Self.model(variant), variant, batch: batch, evaluationBatch: evaluationBatch)
        let replicas = try onReplicas(count) { strategy in
            try strategy.scope { try Self.run(try Self.model(variant), variant, batch: batch, evaluationBatch: evaluationBatch) }
        }
        for r in replicas.dropFirst() { #expect(r == replicas[0], "every replica ends with the same weights, logs and outputs") }
        let multi = replicas[0]
        for (a, b) in zip(single.weights, multi.weights) { #expect(Self.close(a, b, 1e-5), "weights") }
        for (key, values) in single.history {
            let other = multi.history[key] ?? []
            #expect(values.count == other.count && zip(values, other).allSatisfy { abs($0 - $1) <= 1e-5 }, "\(key): \(values) vs \(other)")
        }
        #expect(zip(single.scores, multi.scores).allSatisfy { abs($0 - $1) <= 1e-5 }, "\(single.scores) vs \(multi.scores)")
        // predict puts every replica's parts back in sample order: the model's own forward pass.
        #expect(Self.close(multi.forward, multi.predictions, 1e-6), "predict's rows are not in sample order")
    }

    @Test func aCallbackStoppingOneReplicaStopsThemAll() throws {
        // Replica 1 alone sets stopTraining after its third batch (a callback that decides differently on
        // one replica): every replica ends the epoch there, with the same weights, instead of the others
        // waiting for it in the next step's collectives.
        let outcomes = try onReplicas(2) { strategy -> ([Int], [[Float]]) in
            try strategy.scope {
                let model = try Self.model()
                let (x, y) = try DistributedFitTests.data(seed: 8)
                var batches = 0
                let stopper = LambdaCallback(onTrainBatchEnd: { _, _, model in
                    batches += 1
                    if strategy.replicaID == 1 && batches == 3 { model.stopTraining = true }
                })
                let history = try model.fit(x, y, batchSize: 10, epochs: 4, verbose: .silent, callbacks: [stopper], seed: 1)
                return ([batches] + history.epochs, try model.weights.map { try $0.untrackedValue.scalars(as: Float.self) })
            }
        }
        #expect(outcomes[0].0 == [3, 0] && outcomes[1].0 == [3, 0], "\(outcomes.map(\.0))")
        #expect(outcomes[0].1 == outcomes[1].1)
    }

    @Test func onlyTheChiefPrintsAndWritesCheckpoints() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("descent-replicas-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // Each replica is given its own file names and output, so that a write by replica 1 would show.
        let outcomes = try onReplicas(2) { strategy -> (String, [String]) in
            try strategy.scope {
                let model = try Self.model()
                let (x, y) = try DistributedFitTests.data(seed: 8)
                let printed = Mutex("")
                let checkpoint = ModelCheckpoint(filePath: dir.appendingPathComponent("r\(strategy.replicaID)-{epoch:02d}.h5").path,
                                                 monitor: "loss", saveWeightsOnly: true)
                try model.fit(x, y, batchSize: 10, epochs: 2, callbacks: [checkpoint], seed: 1,
                              output: { text in printed.withLock { $0 += text } })
                return (printed.withLock { $0 }, checkpoint.savedFiles)
            }
        }
        #expect(outcomes[0].0.contains("Epoch 2/2") && outcomes[0].0.contains("loss:"), "\(outcomes[0].0)")
        #expect(outcomes[1].0.isEmpty, "replica 1 printed: \(outcomes[1].0)")
        #expect(outcomes[0].1.count == 2 && outcomes[1].1.count == 2)
        for path in outcomes[0].1 { #expect(FileManager.default.fileExists(atPath: path), "\(path)") }
        for path in outcomes[1].1 { #expect(!FileManager.default.fileExists(atPath: path), "replica 1 wrote \(path)") }
    }
}
