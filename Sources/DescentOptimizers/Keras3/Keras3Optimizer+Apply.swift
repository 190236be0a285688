@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor
import DescentDistribute

extension Keras3.Optimizer {
    /// Keras 3's `apply` (see ``Keras3/Optimizer`` for the order of the steps).
    ///
    /// **All or nothing**: the pairs are checked (dtypes, shapes, sparse indices, constraints, known
    /// variables) and the build and the step's scalars are done before the first write; a call that
    /// throws there changes nothing (a build it did is undone). A custom ``updateStep(_:_:_:)`` or
    /// constraint that throws may leave the step partly applied.
    func keras3Apply(_ gradsAndVars: [(Gradient?, Variable)], aggregate: Bool) throws -> Int64 {
        // Keras: an empty list is a no-op (no build, no step).
        if gradsAndVars.isEmpty { return iterationCount }
        var grads: [Gradient] = [], variables: [Variable] = []
        grads.reserveCapacity(gradsAndVars.count)
        variables.reserveCapacity(gradsAndVars.count)
        var missing: [String] = []
        var all: [Variable] = []
        all.reserveCapacity(gradsAndVars.count)
        for (g, v) in gradsAndVars {
            all.append(v)
            guard let g else { missing.append(v.name); continue }
            grads.append(g)
            variables.append(v)
        }
        // 1. Check everything (no write yet).
        var hasFloat32 = false, hasFloat64 = false, hasConstraint = false
        for i in grads.indices {
            let g = grads[i], v = variables[i]
            try checkGradient(g, for: v)
            if case .sparse(let s) = g { try checkSparseGradient(s, for: v) }
            if v.dtype == .float32 { hasFloat32 = true } else { hasFloat64 = true }
            if let constraint = v.constraint {
                hasConstraint = true
                do { try constraint.validate(for: v.shape) } catch {
                    throw OptimizerError.invalidConstraint(variable: v.name, message: "\(error)")
                }
            }
        }
        let wasBuilt = isBuilt
        let mark = weightsMark
        if wasBuilt {
            // The last list that was updated is known to hold only built variables.
            if !(missing.isEmpty && DescentOptimizers.Optimizer.sameVariables(all, lastListIDs)) {
                for v in all { _ = try index(of: v) }
            }
        } else {
            try build(all)
        }
        let coefficients: [DType: Coefficients]
        do {
            if grads.isEmpty { throw OptimizerError.noGradients(variables: all.map(\.name)) }
            var prepared: [DType: Coefficients] = [:]
            for (dtype, present) in [(DType.float32, hasFloat32), (.float64, hasFloat64)] where present {
                var c = Coefficients(dtype: dtype, iteration: kerasIterations)
                try prepare(&c)
                prepared[dtype] = c
            }
            coefficients = prepared
        } catch {
            if !wasBuilt { unbuild(to: mark) }
            throw error
        }
        if !missing.isEmpty {
            DescentOptimizers.Optimizer.warn(
                "Gradients do not exist for variables [\(missing.reversed().map { "'\($0)'" }.joined(separator: ", "))] when minimizing the loss. If using `model.compile()`, did you forget to provide a `loss` argument?")
        }

        // 2. Unscale.
        if let scale = options.lossScaleFactor {
            grads = try grads.map { g in
                try GradientClipping.mapValues(g) { try ($0.untracked / TypedScalar(scale.value, $0.dtype).value).untracked }
            }
        }
        try DenormalFlushing.run {
            // 3. Accumulate, or update.
            var updates = true
            if let steps = options.gradientAccumulationSteps {
                updates = (iterationCount &+ 1) % Int64(steps) == 0
                let acc = try variables.map { accumulators[try index(of: $0)] }
                if updates {
                    let n = Double(steps)
                    grads = try zip(grads, acc).map { g, a in
                        .dense(try ((try densified(g) + a.untrackedValue).untracked / n).untracked)
                    }
                    for a in accumulators { try a.assign(Tensor.zeros(shape: a.shape, dtype: a.dtype)) }
                } else {
                    for (g, a) in zip(grads, acc) { try a.assign((a.untrackedValue + (try densified(g))).untracked) }
                }
            }
            if updates {
                grads = try clipGradients(grads)
                // Keras decays the variables before the cross-replica sum; the two commute (the sum reads
                // only gradients, the decay only variables), and summing first means a failed sum
                // changes no variable.
                let strategy = Strategy.currentScope ?? distributionStrategy
                if aggregate && strategy.numReplicasInSync > 1 {
                    grads = try strategy.sumGradients(grads, for: variables).map { $0! }
                }
                let plan = try updatePlan(grads, variables, coefficients)
                try applyWeightDecay(grads, variables, coefficients, plan)
                try willApplyUpdates(coefficients)
                try runUpdates(grads, variables, coefficients, plan)
            }
            // 5. EMA, constraints.
            if options.useEMA { try updateAverages() }
            if hasConstraint {
                for v in variables {
                    if let constraint = v.constraint { try v.assign(try constraint.apply(to: v.untrackedValue).untracked) }
                }
            }
        }
        try iterations.assignAdd(Tensor(Int64(1)))
        return iterationCount
    }

    /// Removes what a ``build(_:)`` made, for a first call that throws before any write.
    func unbuild(to mark: WeightsMark) {
        rollBackWeights(to: mark)
        resetBuild()
    }

    /// Keras 3's `_clip_gradients`: `clipnorm` (each gradient, `tf.clip_by_norm`), else
    /// `global_clipnorm` (Keras 3's own `clip_by_global_norm`), else `clipvalue`; options of 0 or less
    /// do nothing.
    func clipGradients(_ grads: [Gradient]) throws -> [Gradient] {
        if let c = clipnorm, c > 0 { return try grads.map { try GradientClipping.clipByNorm($0, c) } }
        if let c = globalClipnorm, c > 0 { return try Self.clipByGlobalNorm(grads, c) }
        if let c = clipvalue, c > 0 { return try grads.map { try GradientClipping.clipByValue($0, c) } }
        return grads
    }

    /// Keras 3's `clip_by_global_norm`: `G = sqrt(Σ sum(g²))` (the squares of a sparse gradient's rows
    /// as given), each gradient times `c · min(1/G, 1/c) + (G − G)` (`1/c` is a Python division, rounded
    /// once); a sparse gradient comes out dense.
    static func clipByGlobalNorm(_ grads: [Gradient], _ c: Double) throws -> [Gradient] {
        let values = grads.map(GradientClipping.values(of:))
        guard let dtype = values.first?.dtype else { return grads }
        if let other = values.first(where: { $0.dtype != dtype }) {
            throw OptimizerError.invalidArgument(
                field: "global_clipnorm", message: "all gradients must have one dtype to compute the global norm (found \(dtype) and \(other.dtype))")
        }
        let sums: [Double] = try values.map { try $0.untracked.squared().sum().item() }
        let stacked = dtype == .float32 ? Tensor(sums.map { Float($0) }) : Tensor(sums)
        let norm = TypedScalar(try stacked.sum().item(), dtype).squareRoot()
        let inverseNorm = 1 / norm, inverseClip = TypedScalar(1 / c, dtype)
        let smaller = inverseNorm.value.isNaN || inverseClip.value.isNaN ? TypedScalar(.nan, dtype)
            : (inverseNorm.value < inverseClip.value ? inverseNorm : inverseClip)
        let scale = TypedScalar(c, dtype) * smaller + (norm - norm)
        // `v * scale` with an `IndexedSlices` goes through TensorFlow's operator, which makes it dense
        // (repeated rows summed) first.
        return try grads.map { g in
            switch g {
            case .dense(let t): return .dense(try t.untracked * scale.value)
            case .sparse(let s): return .dense(try s.toDense() * scale.value)
            }
        }
    }

    /// Keras 3's `_update_model_variables_moving_average` for every built variable, then (every
    /// `ema_overwrite_frequency` steps) `_overwrite_model_variables_with_average_value`.
    func updateAverages() throws {
        let k = kerasIterations
        for (v, average) in zip(trainableVariables, averages) {
            let momentum = TypedScalar(k != 0 ? 1 : 0, v.dtype) * TypedScalar(options.emaMomentum.value, v.dtype)
            let oneMinus = 1 - momentum
            let a = average.untrackedValue, x = v.untrackedValue
            try average.assign(((a * momentum.value).untracked + (x * oneMinus.value).untracked).untracked)
        }
        if let f = options.emaOverwriteFrequency, (k &+ 1) % Int64(f) == 0 {
            for (v, average) in zip(trainableVariables, averages) { try v.assign(average.untrackedValue) }
        }
    }


}
