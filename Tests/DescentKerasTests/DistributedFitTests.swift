import DescentAutodiff
import DescentDistribute
@testable import DescentKeras
import DescentMPI
import DescentOptimizers
import DescentTensor
import Foundation
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
        let model = Sequential([try Dense(12, activation: .relu, kernelInitializer: .glorotUniform(seed: 1), kernelRegularizer: .l2(0.01)),
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
        let scores = try model.evaluate(x, y, batchSize: 16).map(\.1)
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
        let model = Sequential([try Dense(6, activation: .tanh, kernelInitializer: .glorotUniform(seed: 4), kernelRegularizer: .l2(0.1)),
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
                var v = try Sequential.replicaLoss(loss, ys, try model(xs), localRows: part.count, globalRows: rows)
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
            _ = try model.evaluate(x, y)
            _ = try model.trainStep(try x.slice(rows: 0..<8), try y.slice(rows: 0..<8))
        }
        // ...but the same loss object called by hand in the scope is not allowed.
        let loss = try #require(model.loss)
        #expect(throws: KerasError.self) { try strategy.scope { try loss(y, try model(x)) } }
    }
}
