import DescentAutodiff
@testable import DescentDistribute
import DescentMPI
import DescentOptimizers
import DescentTensor
import Testing

// The single-process side of distribution (issue 11): the default strategy, scopes, sharding of global
// batches, computeAverageLoss, and the tape's gradient-ready hook that the bucketed all-reduce uses.
// Multi-process behaviour is tested under mpirun in Tests/DescentCLITests/DistributedTests.swift.
@Suite struct StrategyTests {
    @Test func defaultStrategyHasOneReplicaAndIsCurrentOutsideScopes() throws {
        #expect(Strategy.current === Strategy.default)
        #expect(Strategy.default.numReplicasInSync == 1)
        #expect(!Strategy.hasStrategy)
        let strategy = MultiWorkerMirroredStrategy()  // not under mpirun: one replica, no MPI call
        #expect(strategy.numReplicasInSync == 1 && strategy.replicaID == 0 && strategy.isChief)
        try strategy.scope {
            #expect(Strategy.current === strategy)
            #expect(Strategy.hasStrategy)
            let optimizer = try SGD()
            #expect(optimizer.distributionStrategy === strategy)
            // A deserialized optimizer (no constructor argument) gets the strategy the same way.
            let restored = try Optimizer.deserialize(json: #"{"class_name": "Adam", "config": {}}"#)
            #expect(restored.distributionStrategy === strategy)
        }
        #expect(Strategy.current === Strategy.default)
        #expect(try SGD().distributionStrategy === Strategy.default)
    }

    @Test func mixingStrategiesIsAnError() throws {
        let a = Strategy(communicator: LocalCommunicator()), b = Strategy(communicator: LocalCommunicator())
        #expect(throws: DistributionError.self) { try a.scope { try b.scope {} } }
        try a.scope { try a.scope {} }  // the same strategy nests
    }

    @Test func shardsOfAGlobalBatchCoverItOnceInOrder() throws {
        let x = try Tensor.randomNormal(shape: [10, 2], seed: 1), y = Tensor((0..<10).map { Int64($0) })
        let data = try Strategy.default.distribute(x, y, globalBatchSize: 4)
        #expect(data.stepCount == 3)
        let three = DistributedDataset(x: x, y: y, globalBatchSize: 4, replicas: 3, replica: 0, order: Array(0..<10))
        // 4 rows over 3 replicas: 2, 1, 1; the last batch (2 rows): 1, 1, 0.
        #expect((0..<3).map { three.shardRows(step: 0, replica: $0) } == [0..<2, 2..<3, 3..<4])
        #expect((0..<3).map { three.shardRows(step: 2, replica: $0) } == [8..<9, 9..<10, 10..<10])
        let last = try data.batch(2)
        #expect(last.x.shape == [2, 2] && last.globalBatchSize == 2)
        #expect(throws: DistributionError.self) { try Strategy.default.distribute(x, y, globalBatchSize: 0) }
        #expect(throws: DistributionError.self) { try Strategy.default.distribute(x, try y.slice(rows: 0..<3), globalBatchSize: 2) }
    }

    @Test func shuffledShardsAreTheSameOnEveryReplicaForOneSeed() throws {
        let x = try Tensor.randomNormal(shape: [12, 1], seed: 2), y = Tensor((0..<12).map { Int64($0) })
        let a = try Strategy.default.distribute(x, y, globalBatchSize: 4, shuffle: true, seed: 5)
        let b = try Strategy.default.distribute(x, y, globalBatchSize: 4, shuffle: true, seed: 5)
        #expect(a.order == b.order && a.order != Array(0..<12) && a.order.sorted() == Array(0..<12))
    }

    @Test func computeAverageLossDividesBySumByTheGlobalBatch() throws {
        let losses = Tensor([1, 2, 3, 4] as [Float])
        #expect(try computeAverageLoss(losses).item() == 2.5)
        #expect(try computeAverageLoss(losses, globalBatchSize: 8).item() == 1.25)
        #expect(try computeAverageLoss(losses, sampleWeight: Tensor([1, 0, 1, 0] as [Float]), globalBatchSize: 8).item() == 0.5)
        #expect(throws: DistributionError.self) { try computeAverageLoss(losses, globalBatchSize: 0) }
        #expect(throws: DistributionError.self) { try computeAverageLoss(Tensor([1, 2] as [Int64])) }
    }

    @Test func tapeAnnouncesEachGradientWhenItIsFinalLastLayerFirst() throws {
        let w1 = Variable(try Tensor.randomNormal(shape: [3, 4], seed: 1), name: "w1")
        let w2 = Variable(try Tensor.randomNormal(shape: [4, 2], seed: 2), name: "w2")
        let x = try Tensor.randomNormal(shape: [5, 3], seed: 3)
        let tape = GradientTape()
        let loss = try tape.record { try (try (try x.matmul(w1.value)).relu().matmul(w2.value)).sum() }
        var order: [Int] = [], announced: [Int: Tensor] = [:]
        let grads = try tape.gradient(of: loss, wrt: [w1, w2, w1]) { i, g in
            order.append(i)
            announced[i] = try g.denseValue
        }
        #expect(order == [1, 0, 2])  // w2 is final first; w1 listed twice is announced for both positions
        for i in 0..<3 { #expect(try announced[i]!.doubles == grads[i]!.denseValue.doubles) }
    }

    @Test func sumGradientsIsTheIdentityOnOneReplica() throws {
        let v = Variable(Tensor([1, 2] as [Float]), name: "v")
        let g = Gradient.dense(Tensor([0.5, 0.25] as [Float]))
        let summed = try Strategy.default.sumGradients([g], for: [v])
        #expect(try summed[0]!.denseValue.doubles == [0.5, 0.25])
    }
}
