import DescentAutodiff
import DescentKeras
import DescentOptimizers
import DescentTensor
import Testing

/// The seed's distribution contract: gradients are summed across replicas, so each replica's loss must be
/// scaled by the global batch size (reduction SUM divided by the global batch, or SUM_OVER_BATCH_SIZE
/// over the global batch), not averaged over its local batch.
@Suite struct DistributionTests {
    func makeModel() throws -> Sequential {
        GlobalRandom.setSeed(11)
        let model = try Sequential([Dense(8, activation: .tanh), Dense(3)])
        try model.build(inputShape: [1, 4])
        return model
    }

    @Test func summingReplicaGradientsEqualsOneGlobalBatch() throws {
        let x = try Tensor.randomNormal(shape: [8, 4], seed: 1)
        let y = Tensor([0, 1, 2, 0, 1, 2, 2, 1] as [Int64])
        let globalBatch = 8.0

        // One replica, the whole batch, SUM_OVER_BATCH_SIZE. Both models start from the same weights
        // (copied: the global seed is shared with the suites running beside this one).
        let single = try makeModel()
        let replicated = try makeModel()
        try replicated.setWeights(single.getWeights())
        let singleOptimizer = try SGD(learningRate: 0.5)
        try singleOptimizer.minimize({ try SparseCategoricalCrossentropy(fromLogits: true)(y, try single(x)) },
                                     varList: single.trainableWeights)

        // Two replicas of 4 samples: per-replica loss = SUM / global batch; gradients summed by the aggregator.
        let lossFn = SparseCategoricalCrossentropy(fromLogits: true, reduction: .sum)
        func replicaGradients(_ rows: Range<Int>) throws -> [Gradient?] {
            let tape = GradientTape()
            let loss = try tape.record {
                try lossFn(try y.slice(rows: rows), try replicated(try x.slice(rows: rows))) / globalBatch
            }
            return try tape.gradient(of: loss, wrt: replicated.trainableWeights)
        }
        let other = try replicaGradients(4..<8)
        let allReduceSum: GradientAggregator = { pairs in
            try zip(pairs, other).map { pair, g in (try pair.0.map { try $0 + g! }, pair.1) }
        }
        let replicaOptimizer = try SGD(learningRate: 0.5, gradientAggregator: allReduceSum)
        try replicaOptimizer.applyGradients(Array(zip(try replicaGradients(0..<4), replicated.trainableWeights)))

        for (a, b) in zip(single.trainableWeights, replicated.trainableWeights) {
            for (u, v) in zip(a.untrackedValue.doubles, b.untrackedValue.doubles) { #expect(abs(u - v) < 1e-6) }
        }
    }

    @Test func averagingOverTheLocalBatchWouldScaleTheStepByTheReplicaCount() throws {
        // The caveat of the seed page: with a local-batch mean the summed gradient is `replicas` times too big.
        let x = try Tensor.randomNormal(shape: [8, 4], seed: 3)
        let y = Tensor([0, 1, 2, 0, 1, 2, 2, 1] as [Int64])
        let model = try makeModel()
        let meanLoss = SparseCategoricalCrossentropy(fromLogits: true)
        func grads(_ rows: Range<Int>) throws -> [Tensor] {
            let tape = GradientTape()
            let loss = try tape.record { try meanLoss(try y.slice(rows: rows), try model(try x.slice(rows: rows))) }
            return try tape.gradient(of: loss, wrt: model.trainableWeights).map { try $0!.denseValue }
        }
        let global = try grads(0..<8)
        let summedLocal = try zip(grads(0..<4), grads(4..<8)).map { try $0 + $1 }
        for (g, s) in zip(global, summedLocal) {
            for (u, v) in zip(g.doubles, s.doubles) { #expect(abs(2 * u - v) < 1e-5) }
        }
    }
}
