@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// RMSprop (Hinton), optionally centered and with momentum (Keras' `RMSprop`).
///
/// With learning rate `lr`, decay `ρ`, momentum `μ`, gradient `g`, mean square `ms`, mean gradient `mg`:
/// ```
/// μ = 0 (Keras' Python path, ε outside the root):
///     ms  ← ρ·ms + (1 − ρ)·g²
///     mg  ← ρ·mg + (1 − ρ)·g                       (centered only)
///     var ← var − lr·g / (sqrt(ms [− mg²]) + ε)
/// μ > 0 (TensorFlow's fused kernel, ε inside the root):
///     ms  ← ms + (g² − ms)·(1 − ρ)
///     mg  ← mg + (g − mg)·(1 − ρ)                   (centered only)
///     mom ← mom·μ + g·lr / sqrt(ms [− mg²] + ε)
///     var ← var − mom
/// ```
/// Slots, in this order: `rms` for every variable, then `momentum` (only when momentum is used), then
/// `mg` (centered only); all start at zero.
///
/// Sparse gradients are summed per index. Without momentum the update is half-lazy: `ms` (and `mg`)
/// decay on **all** rows while the variable moves only at the touched rows. With momentum it is fully
/// lazy: the rule `ms ← ms·ρ + g²·(1 − ρ)`, `mg ← mg·ρ + g·(1 − ρ)`,
/// `mom ← mom·μ + rsqrt(ms + ε [− mg²])·lr·g`, `var ← var − mom` touches only the indexed rows of every
/// slot. Both match TensorFlow (and contradict Keras' docstring, which calls both lazy).
///
/// Whether momentum is used is decided at construction (a number > 0, a tensor or a closure); assigning
/// `momentum` later changes its value but not that choice (as in Keras). Also available as ``RMSProp``.
open class RMSprop: Optimizer {
    /// ε: outside the square root without momentum, inside it with momentum.
    public let epsilon: Double
    /// Normalise by the estimated variance (`ms − mg²`) instead of the second moment.
    public let centered: Bool
    /// Whether the momentum rule and slot are used (fixed at construction).
    public let usesMomentum: Bool

    /// Creates an RMSprop optimizer with Keras' defaults. `epsilon` 0 becomes 1e-7, as in Keras.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a momentum outside [0, 1] and for
    ///   the base class's invalid options.
    public init(learningRate: Hyperparameter = 0.001, rho: Hyperparameter = 0.9, momentum: Hyperparameter = 0.0,
                epsilon: Double = 1e-7, centered: Bool = false, name: String = "RMSprop", clipnorm: Double? = nil,
                clipvalue: Double? = nil, globalClipnorm: Double? = nil, decay: Double = 0, lr: Hyperparameter? = nil,
                gradientAggregator: GradientAggregator? = nil, gradientTransformers: [GradientTransformer] = []) throws {
        self.epsilon = epsilon == 0 ? 1e-7 : epsilon
        self.centered = centered
        self.usesMomentum = momentum.numericValue.map { $0 > 0 } ?? true
        try super.init(name: name, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                       decay: decay, gradientAggregator: gradientAggregator, gradientTransformers: gradientTransformers)
        if let m = momentum.numericValue, m < 0 || m > 1 || m.isNaN {
            throw OptimizerError.invalidArgument(field: "momentum", message: "`momentum` must be between [0, 1]. Received: momentum=\(m)")
        }
        setHyper("learning_rate", lr ?? learningRate)
        setHyper("decay", .number(decay))
        setHyper("rho", rho)
        setHyper("momentum", momentum)
    }

    /// The discounting factor ρ of the moving averages.
    public var rho: Hyperparameter {
        get { (try? hyper("rho")) ?? .number(.nan) }
        set { setHyper("rho", newValue) }
    }

    /// The momentum hyperparameter.
    public var momentum: Hyperparameter {
        get { (try? hyper("momentum")) ?? .number(.nan) }
        set { setHyper("momentum", newValue) }
    }

    open override class var kerasClassName: String { "RMSprop" }

    open override func createSlots(for variables: [Variable]) throws {
        for v in variables { try addSlot(v, "rms") }
        if usesMomentum { for v in variables { try addSlot(v, "momentum") } }
        if centered { for v in variables { try addSlot(v, "mg") } }
    }

    open override func prepare(_ c: inout Coefficients) throws {
        try super.prepare(&c)
        let rho = try hyperScalar("rho", c.dtype)
        c.set("neg_lr_t", try -c["lr_t"])
        c.set("epsilon", c.scalar(epsilon))
        c.set("rho", rho)
        c.set("momentum", try hyperScalar("momentum", c.dtype))
        c.set("one_minus_rho", 1 - rho)
    }

    /// Keras-1 compatibility: a list without the iteration count (one value fewer than ``weights``) gets
    /// a zero iteration count prepended, as Keras does.
    open override func setWeights(_ values: [Tensor]) throws {
        if weights.count == values.count + 1 {
            return try super.setWeights([Tensor(Int64(0))] + values)
        }
        try super.setWeights(values)
    }

    open override var denseKernelSlotNames: [String] {
        ["rms"] + (usesMomentum ? ["momentum"] : []) + (centered ? ["mg"] : [])
    }

    open override var fusesDenseUpdates: Bool { type(of: self) == RMSprop.self }

    open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
        try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
    }

    private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
        let p = try RMSpropParameters<T>(c)
        let centered = self.centered
        if usesMomentum {
            return { job, range in
                rmspropMomentumKernel(job.variablePointer(T.self), job.gradientPointer(T.self), job.slotPointer(0, T.self),
                                      job.slotPointer(1, T.self), centered ? job.slotPointer(2, T.self) : nil, range, p)
            }
        }
        return { job, range in
            rmspropKernel(job.variablePointer(T.self), job.gradientPointer(T.self), job.slotPointer(0, T.self),
                          centered ? job.slotPointer(1, T.self) : nil, range, p)
        }
    }

    open override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                           _ c: Coefficients) throws {
        let row = variable.shape.dropFirst().reduce(1, *), count = variable.scalarCount
        let w = variable.uniqueStorageForUpdate()
        let ms = try slot(for: variable, named: "rms").uniqueStorageForUpdate()
        let mom = usesMomentum ? try slot(for: variable, named: "momentum").uniqueStorageForUpdate() : nil
        let mg = centered ? try slot(for: variable, named: "mg").uniqueStorageForUpdate() : nil
        func run<T: FloatingElement>(_: T.Type) throws {
            let p = try RMSpropParameters<T>(c)
            let pw = w.base.assumingMemoryBound(to: T.self), pms = ms.base.assumingMemoryBound(to: T.self)
            let pmg = mg?.base.assumingMemoryBound(to: T.self)
            let g = values.unsafeStorage.base.assumingMemoryBound(to: T.self)
            if let mom {
                // Fully lazy (SparseApply[Centered]RMSProp): only the indexed rows of every slot change.
                let pmom = mom.base.assumingMemoryBound(to: T.self)
                for (r, index) in indices.enumerated() {
                    for j in 0..<row {
                        let gj = g[r * row + j], k = index * row + j
                        pms[k] = pms[k] * p.rho + (gj * gj) * p.oneMinusRho
                        var denominator = pms[k] + p.epsilon
                        if let pmg {
                            pmg[k] = pmg[k] * p.rho + gj * p.oneMinusRho
                            denominator = denominator - pmg[k] * pmg[k]
                        }
                        pmom[k] = pmom[k] * p.momentum + (1 / T.scalarSquareRoot(denominator)) * p.lr * gj
                        pw[k] -= pmom[k]
                    }
                }
                return
            }
            // Half-lazy (Keras' Python path): ms and mg decay on all rows, the variable moves at touched rows.
            for i in 0..<count { pms[i] = pms[i] * p.rho }
            if let pmg { for i in 0..<count { pmg[i] = pmg[i] * p.rho } }
            for (r, index) in indices.enumerated() {
                for j in 0..<row {
                    let gj = g[r * row + j], k = index * row + j
                    pms[k] += (gj * gj) * p.oneMinusRho
                    var denominator = pms[k]
                    if let pmg {
                        pmg[k] += gj * p.oneMinusRho
                        denominator = denominator - pmg[k] * pmg[k]
                    }
                    pw[k] += p.negLr * gj / (T.scalarSquareRoot(denominator) + p.epsilon)
                }
            }
        }
        try withExtendedLifetime((values, w, ms, mom, mg)) {
            if variable.dtype == .float32 { try run(Float.self) } else { try run(Double.self) }
        }
    }

    open override var config: JSONObject {
        get throws {
            var c = try configWithLearningRate()
            c["rho"] = try serializedHyper("rho")
            c["momentum"] = try serializedHyper("momentum")
            c["epsilon"] = .double(epsilon)
            c["centered"] = .bool(centered)
            return c
        }
    }

    /// Rebuilds an RMSprop optimizer from a Keras config (`RMSprop.from_config`).
    public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
        var r = ConfigReader(config, className: "RMSprop", customObjects: customObjects)
        let common = try r.common()
        let learningRate = try r.learningRate() ?? 0.001
        let rho = try r.hyper("rho") ?? 0.9
        let momentum = try r.hyper("momentum") ?? 0.0
        let epsilon = try r.double("epsilon") ?? 1e-7
        let centered = try r.bool("centered") ?? false
        try r.finish(allowed: ConfigReader.commonKeys + ["learning_rate", "rho", "momentum", "epsilon", "centered"])
        try self.init(learningRate: learningRate, rho: rho, momentum: momentum, epsilon: epsilon, centered: centered,
                      name: common.name ?? "RMSprop", clipnorm: common.clipnorm, clipvalue: common.clipvalue,
                      globalClipnorm: common.globalClipnorm, decay: common.decay ?? 0)
    }
}

/// Keras' alias `tf.keras.optimizers.RMSProp`.
public typealias RMSProp = RMSprop

/// One step's RMSprop constants in the kernel's element type.
struct RMSpropParameters<T: FloatingElement>: Sendable {
    let lr: T, negLr: T, epsilon: T, rho: T, oneMinusRho: T, momentum: T

    init(_ c: Coefficients) throws {
        lr = try c["lr_t"].value(as: T.self)
        negLr = try c["neg_lr_t"].value(as: T.self)
        epsilon = try c["epsilon"].value(as: T.self)
        rho = try c["rho"].value(as: T.self)
        oneMinusRho = try c["one_minus_rho"].value(as: T.self)
        momentum = try c["momentum"].value(as: T.self)
    }
}

/// One dense RMSprop pass without momentum over `range`, in the operation order of Keras' Python path:
/// `ms ← ρ·ms + (1−ρ)·g²; [mg ← ρ·mg + (1−ρ)·g]; var ← var − lr·g / (sqrt(ms [− mg²]) + ε)`.
@inline(__always)
func rmspropKernel<T: FloatingElement>(
    _ w: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ ms: UnsafeMutablePointer<T>, _ mg: UnsafeMutablePointer<T>?,
    _ range: Range<Int>, _ p: RMSpropParameters<T>
) {
    let width = T.Vector.scalarCount
    let vlr = T.Vector(repeating: p.lr), veps = T.Vector(repeating: p.epsilon)
    let vrho = T.Vector(repeating: p.rho), vomr = T.Vector(repeating: p.oneMinusRho)
    var i = range.lowerBound
    let end = range.upperBound
    while i + width <= end {
        let gi = loadVector(g + i)
        let msi = vrho * loadVector(UnsafePointer(ms + i)) + vomr * (gi * gi)
        storeVector(msi, ms + i)
        var denominator = msi
        if let mg {
            let mgi = vrho * loadVector(UnsafePointer(mg + i)) + vomr * gi
            storeVector(mgi, mg + i)
            denominator = msi - mgi * mgi
        }
        storeVector(loadVector(UnsafePointer(w + i)) - vlr * gi / (T.vectorSquareRoot(denominator) + veps), w + i)
        i += width
    }
    while i < end {
        let gi = g[i]
        ms[i] = p.rho * ms[i] + p.oneMinusRho * (gi * gi)
        var denominator = ms[i]
        if let mg {
            mg[i] = p.rho * mg[i] + p.oneMinusRho * gi
            denominator = ms[i] - mg[i] * mg[i]
        }
        w[i] = w[i] - p.lr * gi / (T.scalarSquareRoot(denominator) + p.epsilon)
        i += 1
    }
}

/// One fused dense RMSprop pass with momentum over `range` (TensorFlow's `ApplyRMSProp` /
/// `ApplyCenteredRMSProp`): `ms += (g² − ms)·(1−ρ); [mg += (g − mg)·(1−ρ)];
/// mom ← mom·μ + g·lr / sqrt(ms [− mg²] + ε); var −= mom`.
@inline(__always)
func rmspropMomentumKernel<T: FloatingElement>(
    _ w: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ ms: UnsafeMutablePointer<T>, _ mom: UnsafeMutablePointer<T>,
    _ mg: UnsafeMutablePointer<T>?, _ range: Range<Int>, _ p: RMSpropParameters<T>
) {
    let width = T.Vector.scalarCount
    let vlr = T.Vector(repeating: p.lr), veps = T.Vector(repeating: p.epsilon)
    let vomr = T.Vector(repeating: p.oneMinusRho), vmu = T.Vector(repeating: p.momentum)
    var i = range.lowerBound
    let end = range.upperBound
    while i + width <= end {
        let gi = loadVector(g + i)
        var msi = loadVector(UnsafePointer(ms + i))
        msi = msi + (gi * gi - msi) * vomr
        storeVector(msi, ms + i)
        var denominator = msi + veps
        if let mg {
            var mgi = loadVector(UnsafePointer(mg + i))
            mgi = mgi + (gi - mgi) * vomr
            storeVector(mgi, mg + i)
            denominator = (msi - mgi * mgi) + veps
        }
        let momi = loadVector(UnsafePointer(mom + i)) * vmu + (gi * vlr) / T.vectorSquareRoot(denominator)
        storeVector(momi, mom + i)
        storeVector(loadVector(UnsafePointer(w + i)) - momi, w + i)
        i += width
    }
    while i < end {
        let gi = g[i]
        ms[i] = ms[i] + (gi * gi - ms[i]) * p.oneMinusRho
        var denominator = ms[i] + p.epsilon
        if let mg {
            mg[i] = mg[i] + (gi - mg[i]) * p.oneMinusRho
            denominator = (ms[i] - mg[i] * mg[i]) + p.epsilon
        }
        mom[i] = mom[i] * p.momentum + (gi * p.lr) / T.scalarSquareRoot(denominator)
        w[i] = w[i] - mom[i]
        i += 1
    }
}
