@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// Adamax, the infinity-norm variant of Adam (Kingma & Ba §7.1), as TensorFlow computes it (Keras'
/// `Adamax`).
///
/// With `T = iterations + 1` and `β₁ᵀ = pow(β₁, T)`:
/// ```
/// m   ← m + (g − m)·(1 − β₁)
/// v   ← max(β₂·v, |g|)
/// var ← var − (lr / (1 − β₁ᵀ)) · (m / (v + ε))
/// ```
/// Slots, in this order: `m` for every variable, then `v`, all starting at zero. The dense `max` keeps
/// `β₂·v` when `|g|` is NaN (Eigen's `cwiseMax`).
///
/// Sparse gradients are **lazy** (unlike the dense rule, where a zero-gradient row still decays `m` and
/// `v` and moves the variable): repeated indices are summed first, then only the touched rows change,
/// computed as Keras' Python ops do:
/// ```
/// m[i] ← m[i]·β₁ + g·(1 − β₁)
/// v[i] ← maximum(v[i]·β₂, |g|)                  (NaN-propagating, as tf.maximum)
/// var[i] ← var[i] + (−lr / (1 − β₁ᵀ)) · (m[i] / (v[i] + ε))
/// ```
open class Adamax: Optimizer {
    /// ε, added to the infinity norm `v`.
    public let epsilon: Double

    /// Creates an Adamax optimizer with Keras' defaults. `epsilon` 0 becomes 1e-7, as in Keras.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for the base class's invalid options.
    public init(learningRate: Hyperparameter = 0.001, beta1: Hyperparameter = 0.9, beta2: Hyperparameter = 0.999,
                epsilon: Double = 1e-7, name: String = "Adamax", clipnorm: Double? = nil, clipvalue: Double? = nil,
                globalClipnorm: Double? = nil, decay: Double = 0, lr: Hyperparameter? = nil,
                gradientAggregator: GradientAggregator? = nil, gradientTransformers: [GradientTransformer] = []) throws {
        self.epsilon = epsilon == 0 ? 1e-7 : epsilon
        try super.init(name: name, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                       decay: decay, gradientAggregator: gradientAggregator, gradientTransformers: gradientTransformers)
        setHyper("learning_rate", lr ?? learningRate)
        setHyper("decay", .number(decay))
        setHyper("beta_1", beta1)
        setHyper("beta_2", beta2)
    }

    open override class var kerasClassName: String { "Adamax" }

    open override func createSlots(for variables: [Variable]) throws {
        for v in variables { try addSlot(v, "m") }
        for v in variables { try addSlot(v, "v") }
    }

    open override func prepare(_ c: inout Coefficients) throws {
        try super.prepare(&c)
        let step = c.scalar(Double(c.iteration &+ 1))
        let beta1 = try hyperScalar("beta_1", c.dtype), beta2 = try hyperScalar("beta_2", c.dtype)
        let beta1Power = beta1.pow(step)
        c.set("neg_scaled_lr", try -c["lr_t"] / (1 - beta1Power))
        c.set("epsilon", c.scalar(epsilon))
        c.set("beta_1_t", beta1)
        c.set("beta_1_power", beta1Power)
        c.set("one_minus_beta_1_t", 1 - beta1)
        c.set("beta_2_t", beta2)
    }

    open override var denseKernelSlotNames: [String] { ["m", "v"] }

    open override var fusesDenseUpdates: Bool { type(of: self) == Adamax.self }

    open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
        return try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
    }

    private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
        // lr/(1 − β₁ᵀ) and 1 − β₁, computed in T as the kernel does.
        let scaledLR = try (c["lr_t"] / (1 - c["beta_1_power"])).value(as: T.self)
        let oneMinusBeta1 = try (1 - c["beta_1_t"]).value(as: T.self)
        let beta2 = try c["beta_2_t"].value(as: T.self), eps = try c["epsilon"].value(as: T.self)
        return { job, range in
            adamaxKernel(job.variablePointer(T.self), job.gradientPointer(T.self), job.slotPointer(0, T.self),
                         job.slotPointer(1, T.self), range, scaledLR: scaledLR, oneMinusBeta1: oneMinusBeta1,
                         beta2: beta2, epsilon: eps)
        }
    }

    open override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                           _ c: Coefficients) throws {
        let row = variable.shape.dropFirst().reduce(1, *)
        let w = variable.uniqueStorageForUpdate()
        let m = try slot(for: variable, named: "m").uniqueStorageForUpdate()
        let v = try slot(for: variable, named: "v").uniqueStorageForUpdate()
        func run<T: FloatingElement>(_: T.Type) throws {
            let beta1 = try c["beta_1_t"].value(as: T.self), omb1 = try c["one_minus_beta_1_t"].value(as: T.self)
            let beta2 = try c["beta_2_t"].value(as: T.self), eps = try c["epsilon"].value(as: T.self)
            let negScaledLR = try c["neg_scaled_lr"].value(as: T.self)
            let pw = w.base.assumingMemoryBound(to: T.self), pm = m.base.assumingMemoryBound(to: T.self)
            let pv = v.base.assumingMemoryBound(to: T.self), g = values.unsafeStorage.base.assumingMemoryBound(to: T.self)
            for (r, index) in indices.enumerated() {
                for j in 0..<row {
                    let at = index * row + j, gj = g[r * row + j]
                    let mj = pm[at] * beta1 + gj * omb1
                    let a = pv[at] * beta2, b = Swift.abs(gj)
                    let vj = a.isNaN || b.isNaN ? T.nan : Swift.max(a, b)
                    pm[at] = mj
                    pv[at] = vj
                    pw[at] += negScaledLR * (mj / (vj + eps))
                }
            }
        }
        try withExtendedLifetime((values, w, m, v)) {
            if variable.dtype == .float32 { try run(Float.self) } else { try run(Double.self) }
        }
    }

    open override var config: JSONObject {
        get throws {
            var c = try configWithLearningRate()
            c["beta_1"] = try serializedHyper("beta_1")
            c["beta_2"] = try serializedHyper("beta_2")
            c["epsilon"] = .double(epsilon)
            return c
        }
    }

    /// Rebuilds an Adamax optimizer from a Keras config (`Adamax.from_config`).
    public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
        var r = ConfigReader(config, className: "Adamax", customObjects: customObjects)
        let common = try r.common()
        let learningRate = try r.learningRate() ?? 0.001
        let beta1 = try r.hyper("beta_1") ?? 0.9, beta2 = try r.hyper("beta_2") ?? 0.999
        let epsilon = try r.double("epsilon") ?? 1e-7
        try r.finish(allowed: ConfigReader.commonKeys + ["learning_rate", "beta_1", "beta_2", "epsilon"])
        try self.init(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                      name: common.name ?? "Adamax", clipnorm: common.clipnorm, clipvalue: common.clipvalue,
                      globalClipnorm: common.globalClipnorm, decay: common.decay ?? 0)
    }
}

/// One fused Adamax pass over `range` (TensorFlow's `ApplyAdaMax`), with `scaledLR = lr/(1 − β₁ᵀ)`.
/// The max is Eigen's `cwiseMax(β₂·v, |g|)`: `β₂·v` unless it is less than `|g|`.
@inline(__always)
func adamaxKernel<T: FloatingElement>(
    _ w: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ m: UnsafeMutablePointer<T>, _ v: UnsafeMutablePointer<T>,
    _ range: Range<Int>, scaledLR: T, oneMinusBeta1: T, beta2: T, epsilon: T
) {
    let width = T.Vector.scalarCount
    let vlr = T.Vector(repeating: scaledLR), vb1 = T.Vector(repeating: oneMinusBeta1)
    let vb2 = T.Vector(repeating: beta2), veps = T.Vector(repeating: epsilon)
    var i = range.lowerBound
    let end = range.upperBound
    while i + width <= end {
        let gi = loadVector(g + i)
        var mi = loadVector(UnsafePointer(m + i))
        mi = mi + (gi - mi) * vb1
        let decayed = vb2 * loadVector(UnsafePointer(v + i))
        let absG = T.vectorSelectLess(gi, T.Vector(repeating: 0), -gi, gi)
        let vi = T.vectorSelectLess(decayed, absG, absG, decayed)
        storeVector(mi, m + i)
        storeVector(vi, v + i)
        storeVector(loadVector(UnsafePointer(w + i)) - vlr * (mi / (vi + veps)), w + i)
        i += width
    }
    while i < end {
        m[i] = m[i] + (g[i] - m[i]) * oneMinusBeta1
        let decayed = beta2 * v[i], absG = Swift.abs(g[i])
        v[i] = decayed < absG ? absG : decayed
        w[i] -= scaledLR * (m[i] / (v[i] + epsilon))
        i += 1
    }
}
