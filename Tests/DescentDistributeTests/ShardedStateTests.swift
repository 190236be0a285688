import DescentAutodiff
@testable import DescentDistribute
@_spi(DescentInternals) import DescentTensor
import DescentOptimizers
import Foundation
import Testing

// Sharded optimizer state (ZeRO stage 1, issue 11 item 6) inside one process: the partition, the
// chunking of the collectives, and a sharded optimizer on "rank 0 of 2" of a simulated job whose peer
// sends the same gradients (so every sum is twice this rank's) and zeros for everything it owns. The
// real multi-process runs are in Tests/DescentCLITests/ShardedOptimizerTests.swift.

/// Rank 0 of a two-rank job whose other rank sends the same numbers to sums and zero bytes to gathers.
final class SimulatedPeerCommunicator: Communicator, @unchecked Sendable {
    // @unchecked Sendable invariant: `byteGathers` is written on the strategy's collective queue inside
    // `sync` and read by the test after that `sync` returned.
    /// The number of byte all-gathers so far.
    var byteGathers = 0
    var rank: Int { 0 }
    var size: Int { 2 }
    func allReduceSum(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int, dtype: DType) {
        reduceScatterSum(send, into: receive, counts: [count, 0], dtype: dtype)
    }
    func reduceScatterSum(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, counts: [Int], dtype: DType) {
        for i in 0..<counts[0] {
            if dtype == .float32 {
                receive.storeBytes(of: 2 * send.load(fromByteOffset: i * 4, as: Float.self), toByteOffset: i * 4, as: Float.self)
            } else {
                receive.storeBytes(of: 2 * send.load(fromByteOffset: i * 8, as: Double.self), toByteOffset: i * 8, as: Double.self)
            }
        }
    }
    func allGather(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, byteCounts counts: [Int]) {
        byteGathers += 1
        receive.copyMemory(from: send, byteCount: counts[0])
        (receive + counts[0]).initializeMemory(as: UInt8.self, repeating: 0, count: counts[1])
    }
    func allGather(_ value: Int) -> [Int] { [value, value] }
    func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) {}
    func allReduce(_ values: [Double], max: Bool) -> [Double] { max ? values : values.map { $0 * 2 } }
    func barrier() {}
    func abort(code: Int32) -> Never { exit(code) }
}

struct LearningRateUnavailable: Error {}

/// Counts a constraint's calls (from the optimizer's thread).
final class ConstraintCalls: @unchecked Sendable {
    // @unchecked Sendable invariant: only touched by the test's thread, which runs the optimizer step.
    private(set) var count = 0
    func add() { count += 1 }
}

@Suite struct ShardedStateTests {
    @Test func chunksSplitEveryRegionIntoBoundedCalls() {
        let chunks = ShardChunks(lengths: [10, 3, 0], maxUnitsPerCall: 6)
        #expect(chunks.perCall == 2 && chunks.callCount == 5)
        #expect(chunks.counts(call: 0) == [2, 2, 0])
        #expect(chunks.counts(call: 1) == [2, 1, 0])
        #expect(chunks.counts(call: 2) == [2, 0, 0])
        #expect(chunks.counts(call: 4) == [2, 0, 0])
        #expect(ShardChunks(lengths: [0, 0], maxUnitsPerCall: 6).callCount == 0)
        #expect(ShardChunks(lengths: [5, 5], maxUnitsPerCall: 1).perCall == 1)  // at least one unit each
    }

    @Test func greedyPartitionIsPyTorchs() {
        // Largest first, ties in list order, each to the least-loaded replica (ties to the lowest rank).
        let (owners, loads) = ShardPartition.greedy(sizes: [5, 9, 9, 2], loads: [0, 0])
        #expect(owners == [0, 0, 1, 1] && loads == [14, 11])
        let more = ShardPartition.greedy(sizes: [4, 4], loads: loads)
        #expect(more.owners == [1, 0] && more.loads == [18, 15])
        let three = ShardPartition.greedy(sizes: [1800, 300, 1500, 5], loads: [0, 0, 0])
        #expect(three.loads == [1800, 1500, 305])
        // The large MLP 784→1024→1024→10: the 1024×1024 kernel alone is more than the others together.
        let mlp = [784 * 1024, 1024, 1024 * 1024, 1024, 1024 * 10, 10]
        #expect(ShardPartition.greedy(sizes: mlp, loads: [0, 0]).loads == [1_048_576, 815_114])
    }

    @Test func regionCollectivesCopyAcrossSpansAndCalls() throws {
        let strategy = Strategy(communicator: LocalCommunicator())
        strategy.gradientBucketByteCount = 12  // three floats per call
        let a = Tensor((0..<5).map { Float($0) }), b = Tensor((5..<8).map { Float($0) })
        let c = try Tensor.zeros(shape: [2]), d = try Tensor.zeros(shape: [6])
        let staging = CollectiveStaging()
        withExtendedLifetime([a, b, c, d]) {
            strategy.reduceScatter(
                regions: [[MemorySpan(reading: a.unsafeStorage.base, byteCount: 20), MemorySpan(reading: b.unsafeStorage.base, byteCount: 12)]],
                into: [MemorySpan(base: c.unsafeStorage.base, byteCount: 8), MemorySpan(base: d.unsafeStorage.base, byteCount: 24)],
                dtype: .float32, staging: staging)
        }
        #expect(c.doubles + d.doubles == (0..<8).map { Double($0) })
    }

    /// SGD with momentum over variables of 4, 3 and 2 elements, sharded across the simulated two ranks:
    /// rank 0 owns the first (4 elements; the other two go to rank 1).
    private func shardedSGD() throws -> (Strategy, SGD, [Variable]) {
        let strategy = Strategy(communicator: SimulatedPeerCommunicator())
        let variables = [Variable(Tensor([1, 2, 3, 4] as [Float]), name: "a"), Variable(Tensor([5, 6, 7] as [Float]), name: "b"),
                         Variable(Tensor([8, 9] as [Float]), name: "c")]
        let optimizer = try strategy.scope { try SGD(learningRate: 0.1, momentum: 0.9) }
        try optimizer.setShardsStateAcrossReplicas(true)
        return (strategy, optimizer, variables)
    }

    @Test func aShardedStepUpdatesOwnedVariablesAndGathersTheOthers() throws {
        let (strategy, optimizer, variables) = try shardedSGD()
        let grads = variables.map { Gradient.dense(try! Tensor.ones(shape: $0.shape)) }
        try strategy.run { _ = try optimizer.applyGradients(grads, to: variables) }
        #expect(optimizer.owningReplica(of: variables[0]) == 0 && optimizer.owningReplica(of: variables[1]) == 1
                && optimizer.owningReplica(of: variables[2]) == 1)
        // The same update as one replica applying the summed (doubled) gradient.
        let reference = try SGD(learningRate: 0.1, momentum: 0.9), alone = Variable(Tensor([1, 2, 3, 4] as [Float]), name: "a")
        try reference.applyGradients([Gradient.dense(try Tensor(repeating: 2, shape: [4], dtype: .float32))], to: [alone])
        #expect(variables[0].untrackedValue.doubles == alone.untrackedValue.doubles)
        // The others are rank 1's bytes (the simulated peer sends zeros).
        #expect(variables[1].untrackedValue.doubles == [0, 0, 0] && variables[2].untrackedValue.doubles == [0, 0])
        // Memory: only the owned slot is here; the full state still lists every slot, in TF's order.
        #expect(optimizer.heldSlotElementCount == 4)
        #expect(optimizer.localWeights.map(\.name) == ["SGD/iter", "SGD/a/momentum"])
        #expect(optimizer.weights.map(\.name) == ["SGD/iter", "SGD/a/momentum", "SGD/b/momentum", "SGD/c/momentum"])
        let full = optimizer.getWeights()
        #expect(full.map(\.shape) == [[], [4], [3], [2]])
        #expect(full[1].doubles == (try reference.slot(for: alone, named: "momentum")).untrackedValue.doubles)
        #expect(try optimizer.slot(for: variables[0], named: "momentum").shape == [4])
        // A slot held elsewhere: the copy of the last gather while it is current (as file writers read
        // slots right after `weights`), an error once a step changed the state.
        #expect(try optimizer.slot(for: variables[1], named: "momentum").untrackedValue.doubles == [0, 0, 0])
        try strategy.run { _ = try optimizer.applyGradients(grads, to: variables) }
        #expect(throws: OptimizerError.self) { try optimizer.slot(for: variables[1], named: "momentum") }
    }

    @Test func preSummedGradientsAndCustomAggregatorsSkipTheReduceScatter() throws {
        // `experimentalAggregateGradients: false`: the gradients are already summed (as after an
        // overlapped all-reduce); a custom aggregator sees the whole list. Either way only owned
        // variables are updated, and the others are gathered.
        let tripled: GradientAggregator = { pairs in try pairs.map { g, v in (try g.map { .dense(try $0.denseValue * 3) }, v) } }
        for (aggregator, aggregate, factor) in [(nil, false, 1.0), (tripled, true, 3.0)] as [(GradientAggregator?, Bool, Double)] {
            let strategy = Strategy(communicator: SimulatedPeerCommunicator())
            let variables = [Variable(Tensor([1, 2, 3, 4] as [Float]), name: "a"), Variable(Tensor([5, 6, 7] as [Float]), name: "b")]
            let optimizer = try strategy.scope { try SGD(learningRate: 0.1, gradientAggregator: aggregator) }
            try optimizer.setShardsStateAcrossReplicas(true)
            let pairs: [(Gradient?, Variable)] = variables.map { (Gradient.dense(try! Tensor.ones(shape: $0.shape)), $0) }
            try strategy.run { _ = try optimizer.applyGradients(pairs, experimentalAggregateGradients: aggregate) }
            let expected = [1, 2, 3, 4].map { Double(Float($0) - Float(0.1) * Float(factor)) }
            #expect(variables[0].untrackedValue.doubles == expected, "factor \(factor)")
            #expect(variables[1].untrackedValue.doubles == [0, 0, 0])
        }
    }

    @Test func float32AndFloat64VariablesShareOnePartition() throws {
        // Two cases: rank 0 owns the float64 variable, or the float32 one (the largest goes first).
        for (size64, size32) in [(5, 3), (2, 4)] {
            let strategy = Strategy(communicator: SimulatedPeerCommunicator())
            let wide = Variable(try Tensor(repeating: 1, shape: [size64], dtype: .float64), name: "wide")
            let narrow = Variable(try Tensor(repeating: 1, shape: [size32], dtype: .float32), name: "narrow")
            let optimizer = try strategy.scope { try SGD(learningRate: 0.25) }
            try optimizer.setShardsStateAcrossReplicas(true)
            let grads = [Gradient.dense(try Tensor(repeating: 1, shape: [size64], dtype: .float64)),
                         Gradient.dense(try Tensor(repeating: 1, shape: [size32], dtype: .float32))]
            try strategy.run { _ = try optimizer.applyGradients(grads, to: [wide, narrow]) }
            let (owned, other) = size64 > size32 ? (wide, narrow) : (narrow, wide)
            #expect(optimizer.owningReplica(of: owned) == 0 && optimizer.owningReplica(of: other) == 1)
            #expect(owned.untrackedValue.doubles == Array(repeating: 0.5, count: owned.scalarCount))  // 1 - 0.25 · 2
            #expect(other.untrackedValue.doubles == Array(repeating: 0, count: other.scalarCount))
        }
    }

    @Test func aReplicaThatRecordedOnlyRemoteSlotsBuildsAgainAfterAFailedStep() throws {
        // The failing step adds a variable owned by rank 1, so rank 0 records only a slot held there (no
        // weight of its own): the retried step must still build the list again, or the variable would
        // have no owner.
        let (strategy, optimizer, variables) = try shardedSGD()
        let grads = variables.map { Gradient.dense(try! Tensor.ones(shape: $0.shape)) }
        try strategy.run { _ = try optimizer.applyGradients(Array(grads.prefix(1)), to: Array(variables.prefix(1))) }
        let extra = Variable(Tensor([1, 1, 1, 1, 1] as [Float]), name: "extra")  // goes to rank 1 (load 0 < 4)
        optimizer.learningRate = .closure { throw LearningRateUnavailable() }
        #expect(throws: LearningRateUnavailable.self) {
            try strategy.run { _ = try optimizer.applyGradients([grads[0], .dense(try Tensor.ones(shape: [5]))], to: [variables[0], extra]) }
        }
        #expect(optimizer.owningReplica(of: extra) == nil)
        optimizer.learningRate = .number(0.1)
        try strategy.run { _ = try optimizer.applyGradients([grads[0], .dense(try Tensor.ones(shape: [5]))], to: [variables[0], extra]) }
        #expect(optimizer.owningReplica(of: extra) == 1 && extra.untrackedValue.doubles == [0, 0, 0, 0, 0])
    }

    @Test func constraintsRunOnTheOwnerAndIterationsCountEveryStep() throws {
        let (strategy, optimizer, variables) = try shardedSGD()
        let calls = ConstraintCalls()
        for v in variables {
            v.constraint = ClosureConstraint { value in calls.add(); return try value.minimum(0.5) }
        }
        let grads = variables.map { Gradient.dense(try! Tensor.ones(shape: $0.shape)) }
        try strategy.run { _ = try optimizer.applyGradients(grads, to: variables) }
        #expect(variables[0].untrackedValue.doubles == [0.5, 0.5, 0.5, 0.5])  // [0.8, 1.8, 2.8, 3.8], constrained
        #expect(variables[1].untrackedValue.doubles == [0, 0, 0])  // rank 1's bytes
        try strategy.run { _ = try optimizer.applyGradients(grads, to: variables) }
        #expect(optimizer.iterationCount == 2)
        #expect(calls.count == 2, "only the owned variable's constraint runs here, once per step")
    }

    @Test func theFullStateIsGatheredOnceUntilItChanges() throws {
        let (strategy, optimizer, variables) = try shardedSGD()
        let peer = try #require(strategy.communicator as? SimulatedPeerCommunicator)
        try optimizer.build(variables)
        let before = peer.byteGathers
        #expect(optimizer.weights.count == 4 && optimizer.getWeights().count == 4 && optimizer.weights.count == 4)
        #expect(peer.byteGathers == before + 1, "three reads, one gather")
        let grads = variables.map { Gradient.dense(try! Tensor.ones(shape: $0.shape)) }
        try strategy.run { _ = try optimizer.applyGradients(grads, to: variables) }
        let afterStep = peer.byteGathers  // the step gathers the variables
        _ = optimizer.weights
        #expect(peer.byteGathers == afterStep + 1, "a step changes the slots: gathered again")
        try optimizer.setWeights(optimizer.getWeights())
        _ = optimizer.getWeights()
        #expect(peer.byteGathers == afterStep + 2, "setWeights changes them too")
    }

    @Test func setWeightsTakesTheFullListAndKeepsTheOwnedPart() throws {
        let (_, optimizer, variables) = try shardedSGD()
        try optimizer.build(variables)
        #expect(optimizer.weights.count == 4 && optimizer.localWeights.count == 2)
        let values = [Tensor(Int64(5)), try Tensor(repeating: 1, shape: [4], dtype: .float32),
                      try Tensor(repeating: 2, shape: [3], dtype: .float32), try Tensor(repeating: 3, shape: [2], dtype: .float32)]
        try optimizer.setWeights(values)
        #expect(optimizer.iterationCount == 5)
        #expect(try optimizer.slot(for: variables[0], named: "momentum").untrackedValue.doubles == [1, 1, 1, 1])
        // The list is checked against the full layout: a wrong count or shape changes nothing.
        #expect(throws: OptimizerError.self) { try optimizer.setWeights(Array(values.prefix(2))) }
        var wrong = values
        wrong[2] = try Tensor.zeros(shape: [4])
        #expect(throws: OptimizerError.self) { try optimizer.setWeights(wrong) }
        #expect(optimizer.iterationCount == 5)
    }

    @Test func aFailedStepRollsThePartitionBack() throws {
        let (strategy, optimizer, variables) = try shardedSGD()
        optimizer.learningRate = .closure { throw LearningRateUnavailable() }
        let grads = variables.map { Gradient.dense(try! Tensor.ones(shape: $0.shape)) }
        #expect(throws: LearningRateUnavailable.self) { try strategy.run { _ = try optimizer.applyGradients(grads, to: variables) } }
        #expect(optimizer.owningReplica(of: variables[0]) == nil && optimizer.weights.isEmpty && optimizer.heldSlotElementCount == 0)
        optimizer.learningRate = .number(0.1)
        try strategy.run { _ = try optimizer.applyGradients(grads, to: variables) }
        #expect(optimizer.weights.count == 4 && optimizer.heldSlotElementCount == 4)
    }

    @Test func shardingAnOptimizerThatHasSlotsFreesTheOthers() throws {
        let strategy = Strategy(communicator: SimulatedPeerCommunicator())
        let variables = [Variable(Tensor([1, 2, 3, 4] as [Float]), name: "a"), Variable(Tensor([5, 6, 7] as [Float]), name: "b")]
        let optimizer = try strategy.scope { try SGD(learningRate: 0.1, momentum: 0.9) }
        try optimizer.build(variables)
        #expect(optimizer.heldSlotElementCount == 7)
        try optimizer.setShardsStateAcrossReplicas(true)
        #expect(optimizer.heldSlotElementCount == 4 && optimizer.weights.count == 3 && optimizer.localWeights.count == 2)
        #expect(throws: OptimizerError.self) { try optimizer.setShardsStateAcrossReplicas(false) }
    }

    @Test func oneReplicaOrTransformersLeaveNothingSharded() throws {
        let optimizer = try SGD(momentum: 0.9)
        try optimizer.setShardsStateAcrossReplicas(true)  // the default strategy: one replica
        #expect(optimizer.shardsStateAcrossReplicas)
        let v = Variable(Tensor([1, 2] as [Float]), name: "v")
        try optimizer.applyGradients([Gradient.dense(Tensor([1, 1] as [Float]))], to: [v])
        #expect(optimizer.heldSlotElementCount == 2 && optimizer.owningReplica(of: v) == nil)
        let transformed = try SGD(gradientTransformers: [{ $0 }])
        #expect(throws: OptimizerError.self) { try transformed.setShardsStateAcrossReplicas(true) }
    }
}
