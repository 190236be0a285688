@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3.Optimizer {
    /// How one step's updates run: the fused kernels (when the class has them), the waves of the list
    /// (a variable listed twice gets both updates, in list order), and whether the weight decay of the
    /// variables the kernels update is folded into the kernels' pass.
    struct UpdatePlan {
        var kernel32: DenseKernel?
        var kernel64: DenseKernel?
        /// The learning rate of each dtype present, for the folded weight decay.
        var learningRate32: Float = 0
        var learningRate64: Double = 0
        var waves: [[Int]]
        /// True when the kernels also decay their variables: a weight decay is configured and every
        /// variable is listed once (with duplicates, Keras decays every occurrence before any update).
        var foldsWeightDecay: Bool

        /// Whether the update of `variable` by `gradient` runs in a fused kernel.
        func usesKernel(_ gradient: Gradient, _ variable: Variable) -> Bool {
            guard case .dense = gradient else { return false }
            return variable.dtype == .float32 ? kernel32 != nil : kernel64 != nil
        }
    }

    /// Makes the step's ``UpdatePlan``: the kernels for the dtypes present and the waves of `variables`
    /// (those of the last list are kept, as on the legacy path, so the usual loop over one list builds
    /// no dictionary per step).
    func updatePlan(_ grads: [Gradient], _ variables: [Variable], _ coefficients: [DType: Coefficients]) throws -> UpdatePlan {
        var plan = UpdatePlan(waves: [], foldsWeightDecay: false)
        if fusesDenseUpdates {
            if let c = coefficients[.float32], let k = try denseKernel(for: c) {
                plan.kernel32 = k
                plan.learningRate32 = try c["lr"].value(as: Float.self)
            }
            if let c = coefficients[.float64], let k = try denseKernel(for: c) {
                plan.kernel64 = k
                plan.learningRate64 = try c["lr"].value(as: Double.self)
            }
        }
        if !DescentOptimizers.Optimizer.sameVariables(variables, lastListIDs) {
            lastListIDs = variables.map { $0.id }
            lastListWaves = DescentOptimizers.Optimizer.waves(of: variables)
            lastListJobs = Array(repeating: nil, count: variables.count)
        }
        plan.waves = lastListWaves ?? [Array(variables.indices)]
        plan.foldsWeightDecay = appliesWeightDecay && plan.waves.count == 1
            && (plan.kernel32 != nil || plan.kernel64 != nil)
        return plan
    }

    /// Keras 3's `_apply_weight_decay`: `var ← var − (var·wd)·lr` for every variable with a rate
    /// (``Keras3/Optimizer/weightDecayRate(for:)``: `weight_decay` unless excluded), in place over each
    /// whole variable (`weightDecayKernel`, the fused kernels' decay), except for the variables whose fused
    /// kernel decays them (``UpdatePlan/foldsWeightDecay``).
    func applyWeightDecay(_ grads: [Gradient], _ variables: [Variable], _ coefficients: [DType: Coefficients],
                          _ plan: UpdatePlan) throws {
        guard appliesWeightDecay else { return }
        for (g, v) in zip(grads, variables) {
            if plan.foldsWeightDecay && plan.usesKernel(g, v) { continue }
            guard let wd = weightDecayRate(for: v) else { continue }
            let c = coefficients[v.dtype]!  // prepared for every dtype present
            let lr = try c["lr"].value, decay = TypedScalar.castFromFloat32(wd, v.dtype).value
            v.withUniqueStorage { storage in
                func run<T: FloatingElement>(_: T.Type) {
                    let w = storage.base.assumingMemoryBound(to: T.self)
                    ThreadPool.parallelFor(v.scalarCount) { range in
                        weightDecayKernel(w, range, decay: T(decay), learningRate: T(lr))
                    }
                }
                // Built variables are floating-point (`build` refuses the others).
                if v.dtype == .float32 { run(Float.self) } else { run(Double.self) }
            }
        }
    }

    /// Runs the update of each variable: dense gradients through the fused kernel (one parallel pass over
    /// all of them, with their weight decay when the plan folds it) when the class has one, everything
    /// else through ``updateStep(_:_:_:)``.
    func runUpdates(_ grads: [Gradient], _ variables: [Variable], _ coefficients: [DType: Coefficients],
                    _ plan: UpdatePlan) throws {
        let slotNames = denseKernelSlotNames
        if plan.kernel32 != nil || plan.kernel64 != nil { useKernelSlotNames(slotNames) }
        for wave in plan.waves {
            var batch32 = DenseJobBatch(capacity: plan.kernel32 == nil ? 0 : wave.count, slotCount: slotNames.count)
            var batch64 = DenseJobBatch(capacity: plan.kernel64 == nil ? 0 : wave.count, slotCount: slotNames.count)
            var independent: [Int] = []
            for i in wave {
                let v = variables[i]
                guard plan.usesKernel(grads[i], v), case .dense(let t) = grads[i] else {
                    if updatesVariablesIndependently { independent.append(i) } else { try updateStep(grads[i], v, coefficients[v.dtype]!) }
                    continue
                }
                let job = try kernelJob(at: i, v, plan)
                if v.dtype == .float32 {
                    batch32.append(gradient: t.unsafeStorage, variable: v, slots: job.slots, weightDecay: job.weightDecay)
                } else {
                    batch64.append(gradient: t.unsafeStorage, variable: v, slots: job.slots, weightDecay: job.weightDecay)
                }
            }
            try runIndependently(independent, grads, variables, coefficients)
            withExtendedLifetime(grads) {
                let inKernel = denseKernelAppliesWeightDecay
                if let k = plan.kernel32, !batch32.isEmpty {
                    if inKernel { batch32.run(k) } else { batch32.run(k, decayingWith: plan.learningRate32) }
                }
                if let k = plan.kernel64, !batch64.isEmpty {
                    if inKernel { batch64.run(k) } else { batch64.run(k, decayingWith: plan.learningRate64) }
                }
            }
        }
    }

    /// The ``updateStep(_:_:_:)`` of the variables at `indices` (one wave: distinct variables), for a class
    /// whose ``updatesVariablesIndependently`` is true: side by side, one variable per thread with its work
    /// single-threaded (``DescentTensor/ThreadPool/forEachIndependently(_:_:)``), largest first, when the
    /// largest is at most a thread's share of the elements; otherwise one after the other, each using
    /// every thread. The values are the same either way.
    private func runIndependently(_ indices: [Int], _ grads: [Gradient], _ variables: [Variable],
                                  _ coefficients: [DType: Coefficients]) throws {
        guard !indices.isEmpty else { return }
        let threads = ThreadPool.threadCount
        let sizes = indices.map { variables[$0].scalarCount }
        let total = sizes.reduce(0, +), largest = sizes.max() ?? 0
        // One variable, or one thread, fails this too (then the largest is the total, or the region would
        // run inline anyway).
        guard threads > 1, largest * threads <= total else {
            for i in indices { try updateStep(grads[i], variables[i], coefficients[variables[i].dtype]!) }
            return
        }
        let order = indices.indices.sorted { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : $0 < $1 }.map { indices[$0] }
        try ThreadPool.forEachIndependently(order.count) { k in
            let i = order[k]
            try updateStep(grads[i], variables[i], coefficients[variables[i].dtype]!)
        }
    }

    /// The kernel slots of the variable at position `i` of the list and the weight decay its kernel
    /// applies (the rate in its dtype, or `nil`), cached by position for the last list. Rates are cached
    /// only for built-in kernel classes (``fusesDenseUpdates`` is true for exact types only), whose
    /// ``weightDecayRate(for:)`` does not change once built.
    private func kernelJob(at i: Int, _ v: Variable, _ plan: UpdatePlan) throws -> (slots: [Variable], weightDecay: Double?) {
        if i < lastListJobs.count, let cached = lastListJobs[i] { return cached }
        let decay = plan.foldsWeightDecay
            ? weightDecayRate(for: v).map { TypedScalar.castFromFloat32($0, v.dtype).value } : nil
        let job = (slots: try kernelSlots(of: v), weightDecay: decay)
        // Whether the list folds its decay depends only on the list (duplicates, dtypes), so the cached
        // rate stays right for as long as the list does.
        if i < lastListJobs.count { lastListJobs[i] = job }
        return job
    }
}
