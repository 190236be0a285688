@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor
import DescentDistribute

/// What ``Optimizer`` found when it checked a list of (gradient, variable) pairs.
struct PairsSummary {
    /// Some dense pair's variable has a constraint.
    var hasConstraint = false
    /// Some variable is float32 / float64.
    var hasFloat32 = false, hasFloat64 = false
    /// Some sparse gradient is float32 / float64.
    var hasSparseFloat32 = false, hasSparseFloat64 = false
}

/// The fused kernels of one step and how to find each variable's kernel slots.
struct ApplyPlan {
    var kernel32: DenseKernel?
    var kernel64: DenseKernel?
    /// The number of kernel slots of every dense job.
    var slotCount = 0
    /// Kernel slots are read from `positionalKernelSlots` (the list is the last list).
    var positional = false
    /// `nil`: every variable occurs once; else the waves to run in order (see `lastListWaves`).
    var waves: [[Int]]?

    func kernel(for dtype: DType) -> DenseKernel? { dtype == .float32 ? kernel32 : kernel64 }
}

extension Optimizer {
    // MARK: - Applying gradients

    /// Applies gradients to variables (Keras' `apply_gradients`) and returns the new `iterations`.
    ///
    /// Pairs whose gradient is `nil` are skipped with a warning. Gradients are aggregated
    /// (`experimentalAggregateGradients`), clipped, then applied in list order; `iterations` is
    /// incremented once (it wraps around after `Int64.max`, as TensorFlow's int64 addition does).
    ///
    /// **All or nothing**: everything that can fail is checked before the first write — gradient shapes
    /// and dtypes, sparse indices, constraints against sparse gradients and against their variable's
    /// shape, slot creation, the coefficients (``prepare(_:)``), clipping, the aggregator and the
    /// transformers, the fused kernels and their slots, ``validateSparseUpdates(_:)``. A call that throws
    /// leaves every variable, slot, ``weights`` and `iterations` as they were. The built-in update rules
    /// and constraints cannot fail after that; a custom ``resourceApplyDense(_:_:_:)``,
    /// ``resourceApplySparse(_:_:_:_:)``, ``willApply(coefficients:variables:)`` or constraint that
    /// throws may leave the step partly applied.
    ///
    /// **The same variable more than once** (tied weights) gets every update, in list order, each
    /// reading the variable and slots as the previous one left them, with this step's coefficients (as
    /// TensorFlow does); its constraint runs after each of its dense updates.
    ///
    /// **NaN and ±Inf gradients** are not checked: they flow into the update (and through clipping, as
    /// in TensorFlow) and `iterations` still counts the step.
    /// - Throws: ``OptimizerError/noGradients(variables:)`` when no pair has a gradient,
    ///   ``OptimizerError/gradientMismatch(variable:message:)`` for a gradient whose shape, dtype or
    ///   indices do not fit its variable, ``OptimizerError/constraintWithSparseGradient(variable:)``,
    ///   ``OptimizerError/invalidConstraint(variable:message:)``, and what the hooks throw.
    @discardableResult
    public func applyGradients(_ gradsAndVars: [(Gradient?, Variable)],
                               experimentalAggregateGradients: Bool = true) throws -> Int64 {
        if let keras3 = self as? Keras3.Optimizer {
            return try keras3.applyKeras3(gradsAndVars, aggregate: experimentalAggregateGradients)
        }
        if gradsAndVars.isEmpty { return iterationCount }
        // One pass splits the pairs into parallel arrays (copying a (Gradient, Variable) tuple is costly:
        // the hot path below touches no tuples).
        var grads: [Gradient] = [], variables: [Variable] = []
        grads.reserveCapacity(gradsAndVars.count)
        variables.reserveCapacity(gradsAndVars.count)
        var missing: [String] = []
        for (g, v) in gradsAndVars {
            guard let g else { missing.append(v.name); continue }
            grads.append(g)
            variables.append(v)
        }
        if grads.isEmpty { throw OptimizerError.noGradients(variables: gradsAndVars.map { $0.1.name }) }
        if !missing.isEmpty {
            Optimizer.warn("Gradients do not exist for variables [\(missing.map { "'\($0)'" }.joined(separator: ", "))] when minimizing the loss.")
        }
        return try applyGradients(splitGradients: grads, variables: variables,
                                  experimentalAggregateGradients: experimentalAggregateGradients)
    }

    /// Applies gradients to variables (Keras' `apply_gradients`) when every pair has a gradient, as a
    /// ``GradientTransformer`` returns them; see ``applyGradients(_:experimentalAggregateGradients:)-([(Gradient?,Variable)],_)``
    /// for the semantics (all or nothing, tied variables, NaN gradients) and the errors.
    @discardableResult
    public func applyGradients(_ gradsAndVars: [(Gradient, Variable)],
                               experimentalAggregateGradients: Bool = true) throws -> Int64 {
        if gradsAndVars.isEmpty { return iterationCount }
        // Split into parallel arrays in one pass, as the optional form does (no array of tuples made).
        var grads: [Gradient] = [], variables: [Variable] = []
        grads.reserveCapacity(gradsAndVars.count)
        variables.reserveCapacity(gradsAndVars.count)
        for (g, v) in gradsAndVars {
            grads.append(g)
            variables.append(v)
        }
        return try applyGradients(splitGradients: grads, variables: variables,
                                  experimentalAggregateGradients: experimentalAggregateGradients)
    }

    /// The step on parallel, non-empty arrays of gradients and their variables.
    func applyGradients(splitGradients: [Gradient], variables: [Variable],
                        experimentalAggregateGradients: Bool) throws -> Int64 {
        if let keras3 = self as? Keras3.Optimizer {
            // Keras 3's lifecycle (the optional form dispatches before splitting, to keep `nil` gradients).
            return try keras3.applyKeras3(zip(splitGradients, variables).map { ($0, $1) }, aggregate: experimentalAggregateGradients)
        }
        var grads = splitGradients, variables = variables

        // 1. Check every pair (no write yet).
        var summary = try validatePairs(grads, variables)
        if !Optimizer.sameVariables(variables, lastListIDs) {
            lastListIDs = variables.map { $0.id }
            lastListWaves = Optimizer.waves(of: variables)
            positionalKernelSlots.removeAll()
            positionalKernelSlotsComplete = false
            lastListBuilt = false
            sharding?.ownedPositionsValid = false
        }

        // 2. Create the weights, prepare, transform and plan; on any error remove the weights created.
        let mark = weightsMark
        let coefficients: [DType: Coefficients], plan: ApplyPlan
        var shardedList: (ShardedState, [Variable])?
        do {
            if !fusesDenseUpdates || !lastListBuilt {
                // Built-ins create their slots deterministically from the list: build it once.
                try buildUnchecked(variables)
                lastListBuilt = true
            }
            var prepared: [DType: Coefficients] = [:]
            for (dtype, present) in [(DType.float32, summary.hasFloat32), (.float64, summary.hasFloat64)] where present {
                var c = Coefficients(dtype: dtype, iteration: iterationCount)
                try prepare(&c)
                prepared[dtype] = c
            }
            coefficients = prepared
            var isLastList = true
            // Keras' `_aggregate_gradients`: the strategy's cross-replica sum, or the given aggregator.
            let strategy = Strategy.currentScope ?? distributionStrategy
            let sumsAcrossReplicas = experimentalAggregateGradients && aggregatesByIdentity && strategy.numReplicasInSync > 1
            let aggregates = experimentalAggregateGradients && !aggregatesByIdentity
            if let sharding = try activeSharding(strategy) {
                // Sharded state: this replica sums, clips and updates only the variables it owns.
                sharding.invalidateGathered()
                let step = try shardedStep(grads, variables, sharding, sums: experimentalAggregateGradients && aggregatesByIdentity,
                                           aggregates: aggregates)
                grads = step.grads
                variables = step.variables
                isLastList = step.isLastList
                if let checked = step.summary { summary = checked }
                shardedList = (sharding, step.fullList)
            } else if sumsAcrossReplicas {
                grads = try strategy.sumGradients(grads, for: variables).map { $0! }
            }
            if shardedList == nil,
               aggregates || clipvalue != nil || clipnorm != nil || globalClipnorm != nil || !gradientTransformers.isEmpty {
                let given = variables
                var pairs = Array(zip(grads, variables))
                if aggregates {
                    pairs = try gradientAggregator(pairs).compactMap { g, v in g.map { ($0, v) } }
                }
                pairs = try transformGradients(pairs)
                for t in gradientTransformers { pairs = try t(pairs) }
                grads = pairs.map { $0.0 }
                variables = pairs.map { $0.1 }
                if aggregates || !gradientTransformers.isEmpty {
                    // User code may return other gradients or variables: check them again.
                    summary = try validatePairs(grads, variables)
                    isLastList = Optimizer.sameVariables(variables, lastListIDs)
                    if !isLastList { try checkTransformedVariables(variables, given: given) }
                }
            }
            plan = try makePlan(grads, variables, coefficients, isLastList: isLastList)
            if summary.hasSparseFloat32, let c = coefficients[.float32] { try validateSparseUpdates(c) }
            if summary.hasSparseFloat64, let c = coefficients[.float64] { try validateSparseUpdates(c) }
        } catch {
            rollBackWeights(to: mark)
            throw error
        }

        // 3. Write: built-ins cannot fail from here on.
        try willApply(coefficients: coefficients, variables: variables)
        // Updates run with denormals flushed to zero, as TensorFlow's CPU kernels do (see DenormalFlushing).
        try DenormalFlushing.run {
            if let waves = plan.waves {
                for wave in waves {
                    try applyPositions(wave, grads, variables, coefficients, plan, hasConstraint: summary.hasConstraint)
                }
            } else {
                try applyPositions(grads.indices, grads, variables, coefficients, plan, hasConstraint: summary.hasConstraint)
            }
        }
        if let (sharding, list) = shardedList { gatherShardedVariables(list, sharding) }
        try iterations.assignAdd(Tensor(Int64(1)))
        return iterationCount
    }

    /// Whether `variables` are, in order, the variables with these ids.
    static func sameVariables(_ variables: [Variable], _ ids: [Int]) -> Bool {
        guard variables.count == ids.count else { return false }
        for i in variables.indices where variables[i].id != ids[i] { return false }
        return true
    }

    /// The waves of a list in which some variable occurs more than once, or `nil` if none does: wave
    /// `k` holds the positions of the `k`-th occurrence of each variable, in list order. Running the
    /// waves one after the other applies every variable's updates in list order, while each wave still
    /// updates all its variables in one parallel pass.
    static func waves(of variables: [Variable]) -> [[Int]]? {
        var occurrences: [Int: Int] = [:]
        occurrences.reserveCapacity(variables.count)
        var waveOf = [Int](repeating: 0, count: variables.count)
        var waveCount = 1
        for i in variables.indices {
            let k = occurrences[variables[i].id, default: 0]
            occurrences[variables[i].id] = k + 1
            waveOf[i] = k
            waveCount = max(waveCount, k + 1)
        }
        guard waveCount > 1 else { return nil }
        var waves = [[Int]](repeating: [], count: waveCount)
        for i in variables.indices { waves[waveOf[i]].append(i) }
        return waves
    }

    /// Applies gradients given beside their variables.
    @discardableResult
    public func applyGradients(_ gradients: [Gradient?], to variables: [Variable]) throws -> Int64 {
        guard gradients.count == variables.count else {
            throw OptimizerError.invalidArgument(field: "gradients", message: "\(gradients.count) gradients for \(variables.count) variables")
        }
        return try applyGradients(Array(zip(gradients, variables)))
    }

    /// Applies dense gradients given as tensors.
    @discardableResult
    public func applyGradients(_ gradsAndVars: [(Tensor, Variable)]) throws -> Int64 {
        if gradsAndVars.isEmpty { return iterationCount }
        var grads: [Gradient] = [], variables: [Variable] = []
        grads.reserveCapacity(gradsAndVars.count)
        variables.reserveCapacity(gradsAndVars.count)
        for (t, v) in gradsAndVars {
            grads.append(.dense(t))
            variables.append(v)
        }
        return try applyGradients(splitGradients: grads, variables: variables, experimentalAggregateGradients: true)
    }

    // MARK: - Checks before any write

    /// Checks every pair: dtypes and shapes, sparse gradients' values and indices, and constraints
    /// (none with a sparse gradient; each valid for its variable's shape).
    func validatePairs(_ grads: [Gradient], _ variables: [Variable]) throws -> PairsSummary {
        var summary = PairsSummary()
        for i in grads.indices {
            let g = grads[i], v = variables[i]
            try checkGradient(g, for: v)
            if v.dtype == .float32 { summary.hasFloat32 = true } else { summary.hasFloat64 = true }
            let constraint = v.constraint
            switch g {
            case .dense:
                guard let constraint else { continue }
                summary.hasConstraint = true
                do {
                    try constraint.validate(for: v.shape)
                } catch {
                    throw OptimizerError.invalidConstraint(variable: v.name, message: "\(error)")
                }
            case .sparse(let slices):
                if constraint != nil { throw OptimizerError.constraintWithSparseGradient(variable: v.name) }
                try checkSparseGradient(slices, for: v)
                if v.dtype == .float32 { summary.hasSparseFloat32 = true } else { summary.hasSparseFloat64 = true }
            }
        }
        return summary
    }

    func checkGradient(_ g: Gradient, for v: Variable) throws {
        guard v.dtype.isFloatingPoint else {
            throw OptimizerError.gradientMismatch(variable: v.name, message: "cannot update a variable of dtype \(v.dtype)")
        }
        guard g.dtype == v.dtype else {
            throw OptimizerError.gradientMismatch(variable: v.name, message: "gradient dtype \(g.dtype) does not match the variable's \(v.dtype)")
        }
        guard g.shape == v.shape else {
            throw OptimizerError.gradientMismatch(variable: v.name, message: "gradient shape \(g.shape) does not match the variable's \(v.shape)")
        }
    }

    /// A sparse gradient's values must have one row per index, with the variable's row shape. The
    /// indices need no scan here: `IndexedSlices` is immutable and its throwing init checked them against
    /// its `denseShape`, which ``checkGradient(_:for:)`` has just compared with the variable's shape.
    func checkSparseGradient(_ s: IndexedSlices, for v: Variable) throws {
        let shape = s.values.shape
        guard !v.shape.isEmpty, shape.count == v.shape.count, shape[0] == s.indices.count,
              shape.dropFirst() == v.shape.dropFirst() else {
            throw OptimizerError.gradientMismatch(
                variable: v.name, message: "sparse gradient values of shape \(shape) for \(s.indices.count) indices into shape \(v.shape)")
        }
    }

    /// After an aggregator or transformer: every variable must be one given to `applyGradients` (only
    /// those were built).
    func checkTransformedVariables(_ variables: [Variable], given: [Variable]) throws {
        let known = Set(given.map { $0.id })
        if let stranger = variables.first(where: { !known.contains($0.id) }) {
            throw OptimizerError.invalidArgument(
                field: "gradientTransformers",
                message: "the gradient aggregator or a transformer returned a gradient for variable '\(stranger.name)', which was not passed to applyGradients")
        }
    }

    /// Keras' `_transform_gradients`: clipvalue, then clipnorm, then global clipnorm.
    func transformGradients(_ pairs: [(Gradient, Variable)]) throws -> [(Gradient, Variable)] {
        if clipvalue == nil && clipnorm == nil && globalClipnorm == nil { return pairs }
        var pairs = pairs
        if let c = clipvalue { pairs = try pairs.map { (try GradientClipping.clipByValue($0.0, c), $0.1) } }
        if let c = clipnorm { pairs = try pairs.map { (try GradientClipping.clipByNorm($0.0, c), $0.1) } }
        if let c = globalClipnorm {
            let clipped = try GradientClipping.clipByGlobalNorm(pairs.map { $0.0 }, c)
            pairs = Array(zip(clipped, pairs.map { $0.1 }))
        }
        return pairs
    }

    /// Builds the fused kernels and finds the kernel slots of every dense variable (both can fail), so
    /// that the updates themselves cannot.
    private func makePlan(_ grads: [Gradient], _ variables: [Variable], _ coefficients: [DType: Coefficients],
                          isLastList: Bool) throws -> ApplyPlan {
        var plan = ApplyPlan()
        plan.waves = isLastList ? lastListWaves : Optimizer.waves(of: variables)
        if fusesDenseUpdates {
            if let c = coefficients[.float32] { plan.kernel32 = try denseKernel(for: c) }
            if let c = coefficients[.float64] { plan.kernel64 = try denseKernel(for: c) }
        }
        guard plan.kernel32 != nil || plan.kernel64 != nil else { return plan }
        let slotNames = denseKernelSlotNames
        useKernelSlotNames(slotNames)
        plan.slotCount = slotNames.count
        plan.positional = isLastList
        guard isLastList else {
            for i in variables.indices where plan.kernel(for: variables[i].dtype) != nil {
                if case .dense = grads[i] { _ = try kernelSlots(of: variables[i]) }
            }
            return plan
        }
        // The usual training loop (the same list every step): slots by position, all found once.
        if positionalKernelSlots.count != variables.count {
            positionalKernelSlots = Array(repeating: nil, count: variables.count)
            positionalKernelSlotsComplete = false
        }
        guard !positionalKernelSlotsComplete else { return plan }
        var complete = true
        for i in variables.indices where positionalKernelSlots[i] == nil {
            let v = variables[i]
            if case .dense = grads[i], plan.kernel(for: v.dtype) != nil {
                positionalKernelSlots[i] = try kernelSlots(of: v)
            } else if let found = try? kernelSlots(of: v) {
                positionalKernelSlots[i] = found  // needed when this position gets a dense gradient
            } else {
                complete = false
            }
        }
        positionalKernelSlotsComplete = complete
        return plan
    }

    // MARK: - Updates

    /// Updates the variables at `positions` (each variable at most once): dense ones through the fused
    /// kernel in one parallel pass (or one by one), sparse ones one by one; then their constraints.
    private func applyPositions<Positions: Collection<Int>>(
        _ positions: Positions, _ grads: [Gradient], _ variables: [Variable], _ coefficients: [DType: Coefficients],
        _ plan: ApplyPlan, hasConstraint: Bool
    ) throws {
        let kernel32 = plan.kernel32, kernel64 = plan.kernel64
        var batch32 = DenseJobBatch(capacity: kernel32 == nil ? 0 : positions.count, slotCount: plan.slotCount)
        var batch64 = DenseJobBatch(capacity: kernel64 == nil ? 0 : positions.count, slotCount: plan.slotCount)
        for i in positions {
            let v = variables[i]
            switch grads[i] {
            case .sparse(let slices):
                try resourceApplySparseDuplicateIndices(slices.values, v, slices.indices, coefficients[v.dtype]!)
            case .dense(let t):
                func slots() throws -> [Variable] {
                    // Found by makePlan: neither look-up fails here. The bound is checked because a custom
                    // `resourceApplySparse` earlier in this loop may add a slot, which empties the cache.
                    if plan.positional, i < positionalKernelSlots.count, let cached = positionalKernelSlots[i] {
                        return cached
                    }
                    return try kernelSlots(of: v)
                }
                if v.dtype == .float32, kernel32 != nil {
                    batch32.append(gradient: t.unsafeStorage, variable: v, slots: try slots())
                } else if v.dtype == .float64, kernel64 != nil {
                    batch64.append(gradient: t.unsafeStorage, variable: v, slots: try slots())
                } else {
                    try resourceApplyDense(t.untracked, v, coefficients[v.dtype]!)
                }
            }
        }
        withExtendedLifetime(grads) {
            if let kernel32, !batch32.isEmpty { batch32.run(kernel32) }
            if let kernel64, !batch64.isEmpty { batch64.run(kernel64) }
        }
        guard hasConstraint else { return }
        for i in positions {
            if case .dense = grads[i], let constraint = variables[i].constraint {
                try variables[i].assign(try constraint.apply(to: variables[i].untrackedValue).untracked)
            }
        }
    }

    /// Makes the kernel-slot caches hold the slots named `slotNames` (emptied when the names change).
    func useKernelSlotNames(_ slotNames: [String]) {
        guard slotNames != kernelSlotCacheNames else { return }
        kernelSlotCache.removeAll()
        positionalKernelSlots.removeAll()
        positionalKernelSlotsComplete = false
        kernelSlotCacheNames = slotNames
    }

    /// The kernel slots of `variable` (named as set by ``useKernelSlotNames(_:)``), looked up once per
    /// variable, then cached.
    func kernelSlots(of variable: Variable) throws -> [Variable] {
        if let cached = kernelSlotCache[variable.id] { return cached }
        let slotNames = kernelSlotCacheNames
        guard slotNames.count <= DenseJobBatch.maxSlots else {
            throw OptimizerError.invalidArgument(
                field: "denseKernelSlotNames",
                message: "\(name): a dense kernel takes at most \(DenseJobBatch.maxSlots) slots, got \(slotNames.count) (\(slotNames))")
        }
        let slots = try slotNames.map { try slot(for: variable, named: $0) }
        kernelSlotCache[variable.id] = slots
        return slots
    }
}
