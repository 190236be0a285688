@_spi(DescentInternals) import DescentAutodiff
import DescentDistribute
@_spi(DescentInternals) import DescentTensor

/// The owned part of one sharded step: what `applyGradients` updates on this replica.
struct ShardedStep {
    /// The owned (gradient, variable) pairs, summed and clipped, in list order.
    var grads: [Gradient]
    var variables: [Variable]
    /// The whole list (after the aggregator): every variable in it is all-gathered after the update.
    var fullList: [Variable]
    /// Whether the owned list is the cached one of the last list (positional slot caches apply).
    var isLastList: Bool
    /// The check of the aggregator's pairs, when a custom aggregator ran.
    var summary: PairsSummary?
}

extension Optimizer {
    /// The sharded state to use under `strategy`, or `nil` when the state is not sharded.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` under a strategy over other replicas
    ///   than the one the state was sharded across.
    func activeSharding(_ strategy: Strategy) throws -> ShardedState? {
        guard let sharding else { return nil }
        guard strategy.communicator === sharding.strategy.communicator else {
            throw OptimizerError.invalidArgument(
                field: "shardsStateAcrossReplicas",
                message: "\(name): the optimizer's state is sharded across the \(sharding.replicas) replicas of another strategy; apply its gradients under that strategy")
        }
        return sharding
    }

    /// Steps 2 and 3 of a sharded `applyGradients`: sums the gradients across replicas (dense ones by
    /// reduce-scatter: this replica receives only those of its variables), runs a custom aggregator on
    /// the whole list, then clips the owned gradients as an unsharded optimizer clips all of them.
    /// - Parameters:
    ///   - sums: sum across replicas (the default aggregation); `aggregates`: run `gradientAggregator`.
    ///     Neither: the gradients are already summed (`experimentalAggregateGradients: false`).
    func shardedStep(_ grads: [Gradient], _ variables: [Variable], _ sharding: ShardedState,
                     sums: Bool, aggregates: Bool) throws -> ShardedStep {
        var grads = grads, variables = variables
        var isLastList = true
        var summary: PairsSummary?
        if aggregates {
            let given = variables
            let pairs = try gradientAggregator(Array(zip(grads, variables))).compactMap { g, v in g.map { ($0, v) } }
            grads = pairs.map { $0.0 }
            variables = pairs.map { $0.1 }
            summary = try validatePairs(grads, variables)
            isLastList = Optimizer.sameVariables(variables, lastListIDs)
            if !isLastList { try checkTransformedVariables(variables, given: given) }
        }
        let owned = ownedPositions(of: variables, sharding, isLastList: isLastList)
        var ownedGrads: [Gradient]
        if sums {
            ownedGrads = try sumOwnedGradients(grads, variables, owned, sharding)
        } else {
            ownedGrads = owned.map { grads[$0] }
        }
        if let c = clipvalue { ownedGrads = try ownedGrads.map { try GradientClipping.clipByValue($0, c) } }
        if let c = clipnorm { ownedGrads = try ownedGrads.map { try GradientClipping.clipByNorm($0, c) } }
        if let c = globalClipnorm {
            ownedGrads = try clipByShardedGlobalNorm(ownedGrads, owned, variables, c, sharding)
        }
        return ShardedStep(grads: ownedGrads, variables: owned.map { variables[$0] }, fullList: variables, isLastList: isLastList,
                           summary: summary)
    }

    /// The positions of `variables` owned here; for the last list, cached with its waves (so the usual
    /// positional slot caches serve the owned list).
    private func ownedPositions(of variables: [Variable], _ sharding: ShardedState, isLastList: Bool) -> [Int] {
        if isLastList && sharding.ownedPositionsValid { return sharding.ownedPositions }
        let owned = variables.indices.filter { sharding.owners[variables[$0].id] == sharding.rank }
        if isLastList {
            sharding.ownedPositions = owned
            sharding.ownedPositionsValid = true
            lastListWaves = Optimizer.waves(of: owned.map { variables[$0] })
            positionalKernelSlots.removeAll()
            positionalKernelSlotsComplete = false
        }
        return owned
    }

    /// The sums across replicas of the gradients at `owned`: dense ones reduce-scattered (one region
    /// per replica, its variables' gradients in list order, per dtype), sparse ones all-gathered by
    /// every replica (as unsharded; the owner applies them).
    private func sumOwnedGradients(_ grads: [Gradient], _ variables: [Variable], _ owned: [Int],
                                   _ sharding: ShardedState) throws -> [Gradient] {
        let strategy = sharding.strategy
        // Sparse gradients, and the check that every replica lists the same shapes (one small collective).
        let sparseOnly: [Gradient?] = grads.map { if case .sparse = $0 { return $0 } else { return nil } }
        let gathered = try strategy.sumGradients(sparseOnly, for: variables)
        var summed: [Int: Tensor] = [:]
        for dtype in [DType.float32, .float64] {
            var regions = [[MemorySpan]](repeating: [], count: sharding.replicas)
            var any = false
            for i in grads.indices where variables[i].dtype == dtype {
                guard case .dense(let t) = grads[i] else { continue }
                regions[sharding.owners[variables[i].id]!].append(
                    MemorySpan(reading: t.unsafeStorage.base, byteCount: t.scalarCount * dtype.byteSize))
                any = true
            }
            guard any else { continue }
            var mine: [MemorySpan] = []
            for i in owned where variables[i].dtype == dtype {
                guard case .dense = grads[i] else { continue }
                let v = variables[i]
                let out = try Tensor(shape: v.shape, dtype: dtype, operation: "sharded gradient reduce-scatter", fillingBytes: { _ in })
                summed[i] = out
                mine.append(MemorySpan(base: out.unsafeStorage.base, byteCount: out.scalarCount * dtype.byteSize))
            }
            withExtendedLifetime(grads) {
                withExtendedLifetime(summed) {
                    strategy.reduceScatter(regions: regions, into: mine, dtype: dtype, staging: sharding.staging)
                }
            }
        }
        return owned.map { i in summed[i].map { Gradient.dense($0) } ?? gathered[i]! }
    }

    /// `tf.clip_by_global_norm` over the whole list, sharded: each replica computes the `l2_loss` of
    /// its gradients, one all-reduce gives every replica every variable's (the others' are 0, so each
    /// sum is exact), and they are added in list order as unsharded: the same norm on every replica.
    private func clipByShardedGlobalNorm(_ ownedGrads: [Gradient], _ owned: [Int], _ variables: [Variable], _ c: Double,
                                         _ sharding: ShardedState) throws -> [Gradient] {
        guard let dtype = variables.first?.dtype else { return ownedGrads }
        if let other = variables.first(where: { $0.dtype != dtype }) {
            throw OptimizerError.invalidArgument(
                field: "global_clipnorm", message: "all gradients must have one dtype to compute the global norm (found \(dtype) and \(other.dtype))")
        }
        var halves = [Double](repeating: 0, count: variables.count)
        for (k, i) in owned.enumerated() {
            let values = GradientClipping.values(of: ownedGrads[k]).untracked
            halves[i] = TypedScalar(try (values.squared() * 0.5).sum().item(), dtype).value
        }
        let all = sharding.strategy.collectives.sync { sharding.strategy.communicator.allReduce(halves, max: false) }
        var half = TypedScalar(0, dtype)
        for h in all { half = half + TypedScalar(h, dtype) }
        let scale = GradientClipping.globalNormScale((half * 2).squareRoot(), c)
        return try ownedGrads.map { g in try GradientClipping.mapValues(g) { try ($0.untracked * scale.value).untracked } }
    }

    /// Step 5 of a sharded `applyGradients`: every variable of `list` is all-gathered from its owner
    /// (one region per replica, its variables in list order), so every replica holds the owner's bytes.
    func gatherShardedVariables(_ list: [Variable], _ sharding: ShardedState) {
        var regions = [[MemorySpan]](repeating: [], count: sharding.replicas)
        var seen = Set<Int>(), readValues: [Tensor] = [], writeStorages: [TensorStorage] = []
        for v in list where seen.insert(v.id).inserted {
            let owner = sharding.owners[v.id]!
            let byteCount = v.scalarCount * v.dtype.byteSize
            if owner == sharding.rank {
                let value = v.untrackedValue
                readValues.append(value)
                regions[owner].append(MemorySpan(reading: value.unsafeStorage.base, byteCount: byteCount))
            } else {
                let storage = v.uniqueStorageForUpdate()
                writeStorages.append(storage)
                regions[owner].append(MemorySpan(base: storage.base, byteCount: byteCount))
            }
        }
        withExtendedLifetime(readValues) {
            withExtendedLifetime(writeStorages) { sharding.strategy.allGather(regions: regions, staging: sharding.staging) }
        }
    }
}
