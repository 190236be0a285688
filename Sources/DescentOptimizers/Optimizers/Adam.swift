@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// Adam (Kingma & Ba), as TensorFlow's fused kernel computes it (Keras' `Adam`).
///
/// With `T = iterations + 1`, `β₁ᵀ = pow(β₁, T)`, `β₂ᵀ = pow(β₂, T)`:
/// ```
/// α   = lr · sqrt(1 − β₂ᵀ) / (1 − β₁ᵀ)
/// m   ← m + (g − m)·(1 − β₁)
/// v   ← v + (g² − v)·(1 − β₂)
/// v̂   ← max(v̂, v)                            (amsgrad only)
/// var ← var − (m·α) / (sqrt(v or v̂) + ε)
/// ```
/// ε is "ε-hat" (added after the bias correction is folded into α). Slots, in this order: `m` for every
/// variable, then `v`, then `vhat` (amsgrad). Sparse gradients update **every** row: `m` and `v` decay
/// everywhere and the variable moves everywhere, as Keras' sparse path does (it equals the dense rule
/// with zero gradient in untouched rows).
open class Adam: Optimizer {
    /// ε, added to the square root of the second moment.
    public let epsilon: Double
    /// Use the maximum of past second moments (Reddi et al.), keeping TensorFlow's bias correction.
    public let amsgrad: Bool

    /// Creates an Adam optimizer with Keras' defaults. `epsilon` 0 becomes 1e-7, as in Keras.
    public init(learningRate: Hyperparameter = 0.001, beta1: Hyperparameter = 0.9, beta2: Hyperparameter = 0.999,
                epsilon: Double = 1e-7, amsgrad: Bool = false, name: String = "Adam", clipnorm: Double? = nil,
                clipvalue: Double? = nil, globalClipnorm: Double? = nil, decay: Double = 0, lr: Hyperparameter? = nil,
                gradientAggregator: GradientAggregator? = nil, gradientTransformers: [GradientTransformer] = []) throws {
        self.epsilon = epsilon == 0 ? 1e-7 : epsilon
        self.amsgrad = amsgrad
        try super.init(name: name, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                       decay: decay, gradientAggregator: gradientAggregator, gradientTransformers: gradientTransformers)
        setHyper("learning_rate", lr ?? learningRate)
        setHyper("decay", .number(decay))
        setHyper("beta_1", beta1)
        setHyper("beta_2", beta2)
    }

    open override class var kerasClassName: String { "Adam" }

    open override func createSlots(for variables: [Variable]) throws {
        for v in variables { try addSlot(v, "m") }
        for v in variables { try addSlot(v, "v") }
        if amsgrad { for v in variables { try addSlot(v, "vhat") } }
    }

    open override func prepare(_ c: inout Coefficients) throws {
        try super.prepare(&c)
        let step = c.scalar(Double(c.iteration &+ 1))
        let beta1 = try hyperScalar("beta_1", c.dtype), beta2 = try hyperScalar("beta_2", c.dtype)
        let beta1Power = beta1.pow(step), beta2Power = beta2.pow(step)
        c.set("beta_1_t", beta1)
        c.set("beta_2_t", beta2)
        c.set("beta_1_power", beta1Power)
        c.set("beta_2_power", beta2Power)
        c.set("lr", try c["lr_t"] * ((1 - beta2Power).squareRoot() / (1 - beta1Power)))
        c.set("epsilon", c.scalar(epsilon))
        c.set("one_minus_beta_1_t", 1 - beta1)
        c.set("one_minus_beta_2_t", 1 - beta2)
    }

    /// Keras-1 compatibility: a list with one `vhat` per variable extra is truncated (as Keras does).
    /// Unlike Keras, a one-element list given before the optimizer is built is an error, not ignored.
    open override func setWeights(_ values: [Tensor]) throws {
        let n = (weights.count - 1) / 2
        if n > 0 && values.count == 3 * n + 1 && values.count > weights.count {
            return try super.setWeights(Array(values.prefix(weights.count)))
        }
        try super.setWeights(values)
    }

    open override var denseKernelSlotNames: [String] { amsgrad ? ["m", "v", "vhat"] : ["m", "v"] }

    open override var fusesDenseUpdates: Bool { type(of: self) == Adam.self }

    open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
        return try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
    }

    private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
        // α = lr·sqrt(1 − β₂ᵀ)/(1 − β₁ᵀ), computed in T as the kernel does.
        let alpha = try (c["lr_t"] * (1 - c["beta_2_power"]).squareRoot() / (1 - c["beta_1_power"])).value(as: T.self)
        let oneMinusBeta1 = try c["one_minus_beta_1_t"].value(as: T.self)
        let oneMinusBeta2 = try c["one_minus_beta_2_t"].value(as: T.self)
        let eps = try c["epsilon"].value(as: T.self)
        let amsgrad = self.amsgrad
        return { job, range in
            adamKernel(job.variablePointer(T.self), job.gradientPointer(T.self), job.slotPointer(0, T.self),
                       job.slotPointer(1, T.self), amsgrad ? job.slotPointer(2, T.self) : nil, range,
                       alpha: alpha, oneMinusBeta1: oneMinusBeta1, oneMinusBeta2: oneMinusBeta2, epsilon: eps)
        }
    }

    open override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                           _ c: Coefficients) throws {
        let row = variable.shape.dropFirst().reduce(1, *), n = variable.scalarCount
        let w = variable.uniqueStorageForUpdate()
        let m = try slot(for: variable, named: "m").uniqueStorageForUpdate()
        let v = try slot(for: variable, named: "v").uniqueStorageForUpdate()
        let vhat = amsgrad ? try slot(for: variable, named: "vhat").uniqueStorageForUpdate() : nil
        // Keras' sparse path is m ← m·β₁, then m[rows] += g·(1 − β₁) (likewise v with g²), then
        // var ← var − lr·m / (sqrt(v or v̂) + ε) on every row. One pass over the table does all three with
        // the same operations per element, row by row: 24 bytes per element moved instead of 32.
        // Rows ascending; a row given twice (only if an override skipped the deduplication) keeps its
        // occurrences in list order, and each adds its gradient in turn, as TensorFlow's scatter-add does.
        let order = indices.indices.sorted { (indices[$0], $0) < (indices[$1], $1) }
        let sortedRows = order.map { indices[$0] }
        let rows = variable.shape.first ?? 1
        func run<T: FloatingElement>(_: T.Type) throws {
            let beta1 = try c["beta_1_t"].value(as: T.self), beta2 = try c["beta_2_t"].value(as: T.self)
            let omb1 = try c["one_minus_beta_1_t"].value(as: T.self), omb2 = try c["one_minus_beta_2_t"].value(as: T.self)
            let lr = try c["lr"].value(as: T.self), eps = try c["epsilon"].value(as: T.self)
            let table = SparseAdamTable<T>(
                w: w.base.assumingMemoryBound(to: T.self), m: m.base.assumingMemoryBound(to: T.self),
                v: v.base.assumingMemoryBound(to: T.self), vhat: vhat?.base.assumingMemoryBound(to: T.self),
                g: values.unsafeStorage.base.assumingMemoryBound(to: T.self),
                beta1: beta1, beta2: beta2, oneMinusBeta1: omb1, oneMinusBeta2: omb2, lr: lr, epsilon: eps)
            ThreadPool.parallelFor(rows, grain: max(1, (1 << 15) / max(row, 1)), alignment: 1) { rowRange in
                // From the first gradient row at or after this chunk's start.
                var k = sortedRows.lowerBound(of: rowRange.lowerBound), r = rowRange.lowerBound
                while r < rowRange.upperBound {
                    let next = k < sortedRows.count ? Swift.min(sortedRows[k], rowRange.upperBound) : rowRange.upperBound
                    if next > r {
                        table.decayAndStep(r * row..<next * row)
                        r = next
                    } else {
                        var last = k + 1
                        while last < sortedRows.count && sortedRows[last] == r { last += 1 }
                        table.addAndStep(r * row..<(r + 1) * row, gradientRows: order[k..<last], rowSize: row)
                        k = last
                        r += 1
                    }
                }
            }
        }
        try withExtendedLifetime((values, w, m, v, vhat)) {
            if variable.dtype == .float32 { try run(Float.self) } else { try run(Double.self) }
        }
    }

    open override var config: JSONObject {
        get throws {
            var c = try configWithLearningRate()
            c["beta_1"] = try serializedHyper("beta_1")
            c["beta_2"] = try serializedHyper("beta_2")
            c["epsilon"] = .double(epsilon)
            c["amsgrad"] = .bool(amsgrad)
            return c
        }
    }

    /// Rebuilds an Adam optimizer from a Keras config (`Adam.from_config`).
    public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
        var r = ConfigReader(config, className: "Adam", customObjects: customObjects)
        let common = try r.common()
        let learningRate = try r.learningRate() ?? 0.001
        let beta1 = try r.hyper("beta_1") ?? 0.9, beta2 = try r.hyper("beta_2") ?? 0.999
        let epsilon = try r.double("epsilon") ?? 1e-7
        let amsgrad = try r.bool("amsgrad") ?? false
        try r.finish(allowed: ConfigReader.commonKeys + ["learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"])
        try self.init(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad,
                      name: common.name ?? "Adam", clipnorm: common.clipnorm, clipvalue: common.clipvalue,
                      globalClipnorm: common.globalClipnorm, decay: common.decay ?? 0)
    }
}

/// One fused Adam pass over `range` (TensorFlow's `ApplyAdamNonCuda` / `ApplyAdamWithAmsgrad`).
///
/// With `decay` (Keras 3's AdamW: the rate and the learning rate), each element is first decayed,
/// `w ← w − (w·rate)·lr`, in the same pass: the same operations, in the same order, as a whole-tensor
/// decay before the update, without a second trip through memory.
@inline(__always)
func adamKernel<T: FloatingElement>(
    _ w: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ m: UnsafeMutablePointer<T>, _ v: UnsafeMutablePointer<T>,
    _ vhat: UnsafeMutablePointer<T>?, _ range: Range<Int>, alpha: T, oneMinusBeta1: T, oneMinusBeta2: T, epsilon: T,
    decay: (rate: T, learningRate: T)? = nil
) {
    let width = T.Vector.scalarCount
    let va = T.Vector(repeating: alpha), vb1 = T.Vector(repeating: oneMinusBeta1)
    let vb2 = T.Vector(repeating: oneMinusBeta2), veps = T.Vector(repeating: epsilon)
    let decays = decay != nil
    let rate = decay?.rate ?? 0, lr = decay?.learningRate ?? 0
    let vrate = T.Vector(repeating: rate), vlr = T.Vector(repeating: lr)
    var i = range.lowerBound
    let end = range.upperBound
    if let vhat {
        while i + width <= end {
            let gi = loadVector(g + i)
            var wi = loadVector(UnsafePointer(w + i))
            if decays { wi = wi - (wi * vrate) * vlr }
            var mi = loadVector(UnsafePointer(m + i)), vi = loadVector(UnsafePointer(v + i))
            mi = mi + (gi - mi) * vb1
            vi = vi + (gi * gi - vi) * vb2
            var hi = loadVector(UnsafePointer(vhat + i))
            hi = T.vectorSelectLess(hi, vi, vi, hi)
            storeVector(mi, m + i)
            storeVector(vi, v + i)
            storeVector(hi, vhat + i)
            storeVector(wi - (mi * va) / (T.vectorSquareRoot(hi) + veps), w + i)
            i += width
        }
        while i < end {
            if decays { w[i] = w[i] - (w[i] * rate) * lr }
            m[i] = m[i] + (g[i] - m[i]) * oneMinusBeta1
            v[i] = v[i] + (g[i] * g[i] - v[i]) * oneMinusBeta2
            vhat[i] = Swift.max(vhat[i], v[i])
            w[i] -= (m[i] * alpha) / (T.scalarSquareRoot(vhat[i]) + epsilon)
            i += 1
        }
        return
    }
    @inline(__always) func step(_ i: Int) {
        let gi = loadVector(g + i)
        var wi = loadVector(UnsafePointer(w + i))
        if decays { wi = wi - (wi * vrate) * vlr }
        var mi = loadVector(UnsafePointer(m + i)), vi = loadVector(UnsafePointer(v + i))
        mi = mi + (gi - mi) * vb1
        vi = vi + (gi * gi - vi) * vb2
        storeVector(mi, m + i)
        storeVector(vi, v + i)
        storeVector(wi - (mi * va) / (T.vectorSquareRoot(vi) + veps), w + i)
    }
    if end - i >= streamingPrefetchMinimumCount {
        // Memory-bound: each of the four streams is prefetched a fixed distance ahead (one line per
        // vector of 16 floats; for doubles every other vector lands in the same line, which is harmless).
        let ahead = streamingPrefetchBytes / MemoryLayout<T>.stride
        while i + width <= end {
            prefetch(g + i + ahead)
            prefetch(UnsafePointer(w + i + ahead))
            prefetch(UnsafePointer(m + i + ahead))
            prefetch(UnsafePointer(v + i + ahead))
            step(i)
            i += width
        }
    }
    while i + width <= end {
        step(i)
        i += width
    }
    while i < end {
        if decays { w[i] = w[i] - (w[i] * rate) * lr }
        m[i] = m[i] + (g[i] - m[i]) * oneMinusBeta1
        v[i] = v[i] + (g[i] * g[i] - v[i]) * oneMinusBeta2
        w[i] -= (m[i] * alpha) / (T.scalarSquareRoot(v[i]) + epsilon)
        i += 1
    }
}

/// The buffers and coefficients of one sparse Adam update (see ``Adam/resourceApplySparse(_:_:_:_:)``),
/// shared by the parallel chunks, which touch disjoint rows.
struct SparseAdamTable<T: FloatingElement>: @unchecked Sendable {
    // @unchecked Sendable invariant: chunks write disjoint element ranges; `g` is only read.
    let w: UnsafeMutablePointer<T>, m: UnsafeMutablePointer<T>, v: UnsafeMutablePointer<T>
    let vhat: UnsafeMutablePointer<T>?
    let g: UnsafeMutablePointer<T>
    let beta1: T, beta2: T, oneMinusBeta1: T, oneMinusBeta2: T, lr: T, epsilon: T

    /// Rows without a gradient: `m ← m·β₁`, `v ← v·β₂`, then the step.
    func decayAndStep(_ range: Range<Int>) {
        if let vhat {
            for i in range {
                m[i] = m[i] * beta1
                v[i] = v[i] * beta2
                vhat[i] = Swift.max(vhat[i], v[i])
                w[i] -= lr * m[i] / (T.scalarSquareRoot(vhat[i]) + epsilon)
            }
            return
        }
        let width = T.Vector.scalarCount
        let vb1 = T.Vector(repeating: beta1), vb2 = T.Vector(repeating: beta2)
        let vlr = T.Vector(repeating: lr), veps = T.Vector(repeating: epsilon)
        var i = range.lowerBound
        while i + width <= range.upperBound {
            let mi = loadVector(UnsafePointer(m + i)) * vb1, vi = loadVector(UnsafePointer(v + i)) * vb2
            storeVector(mi, m + i)
            storeVector(vi, v + i)
            storeVector(loadVector(UnsafePointer(w + i)) - vlr * mi / (T.vectorSquareRoot(vi) + veps), w + i)
            i += width
        }
        while i < range.upperBound {
            m[i] = m[i] * beta1
            v[i] = v[i] * beta2
            w[i] -= lr * m[i] / (T.scalarSquareRoot(v[i]) + epsilon)
            i += 1
        }
    }

    /// One row with the gradient rows `gradientRows` of `g` (one, unless an index was repeated):
    /// `m ← m·β₁ + g·(1 − β₁)`, `v ← v·β₂ + g²·(1 − β₂)` (each repeat added in turn), then the step.
    func addAndStep(_ range: Range<Int>, gradientRows: ArraySlice<Int>, rowSize: Int) {
        for (j, i) in range.enumerated() {
            var mi = m[i] * beta1, vi = v[i] * beta2
            for gradientRow in gradientRows {
                let gj = g[gradientRow * rowSize + j]
                mi += gj * oneMinusBeta1
                vi += (gj * gj) * oneMinusBeta2
            }
            m[i] = mi
            v[i] = vi
            if let vhat {
                vhat[i] = Swift.max(vhat[i], v[i])
                w[i] -= lr * m[i] / (T.scalarSquareRoot(vhat[i]) + epsilon)
            } else {
                w[i] -= lr * m[i] / (T.scalarSquareRoot(v[i]) + epsilon)
            }
        }
    }
}
