@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// Adam with Nesterov momentum (Dozat, 2015), as Keras' `Nadam` computes it.
///
/// With `T = iterations + 1`, `d = scheduleDecay`, the momentum cache `S` (starting at 1):
/// ```
/// μ_t   = β₁·(1 − 0.5·0.96^(d·T))          μ_t1 = β₁·(1 − 0.5·0.96^(d·(T+1)))
/// S_new = S·μ_t  (stored back into S once per apply)      S_next = S_new·μ_t1
/// g'  = g / (1 − S_new)
/// m  ← β₁·m + (1 − β₁)·g                    m' = m / (1 − S_next)
/// v  ← β₂·v + (1 − β₂)·g²                   v' = v / (1 − β₂ᵀ)
/// m̄  = (1 − μ_t)·g' + μ_t1·m'
/// var ← var − lr·m̄ / (sqrt(v') + ε)
/// ```
/// ε is added after the bias correction of `v` (unlike Adam). There is **no** learning-rate decay: Keras'
/// `decay` is the momentum-schedule decay `scheduleDecay` here, and learning-rate schedules are rejected
/// (a closure is allowed).
///
/// Weights, in order: `iterations`, the non-slot `momentum_cache` (a scalar of the dtype of the first
/// variable of the first update), then `m` for every variable, then `v`. The cache is advanced once per
/// ``Optimizer/applyGradients(_:)`` before any variable moves, and only when that update contains a
/// variable of the cache's dtype: an update with only variables of the other dtype reads it but leaves it
/// stale (TensorFlow's behaviour, kept).
///
/// Sparse gradients are summed per index; then `m` and `v` decay on **all** rows (the gradient rows are
/// added at the touched ones) while the variable moves only at the touched rows (half-lazy, as Keras'
/// sparse path).
open class Nadam: Optimizer {
    /// ε, added to the square root of the bias-corrected second moment.
    public let epsilon: Double
    /// The scalar `momentum_cache` weight, created by the first ``createSlots(for:)`` with variables.
    public private(set) var momentumCache: Variable?

    /// Creates a Nadam optimizer with Keras' defaults. `epsilon` 0 becomes 1e-7, as in Keras.
    ///
    /// `scheduleDecay` becomes ``Optimizer/decay`` (Keras' `schedule_decay`). The `decay` argument is
    /// accepted for source compatibility and **ignored** with a warning, because Keras silently overwrites
    /// it with `schedule_decay`.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a learning-rate schedule (as
    ///   `learningRate` or `lr`), a negative `scheduleDecay`, and the base class's invalid options.
    public init(learningRate: Hyperparameter = 0.001, beta1: Hyperparameter = 0.9, beta2: Hyperparameter = 0.999,
                epsilon: Double = 1e-7, scheduleDecay: Double = 0.004, name: String = "Nadam", clipnorm: Double? = nil,
                clipvalue: Double? = nil, globalClipnorm: Double? = nil, decay: Double? = nil, lr: Hyperparameter? = nil,
                gradientAggregator: GradientAggregator? = nil, gradientTransformers: [GradientTransformer] = []) throws {
        let learningRate = lr ?? learningRate
        if learningRate.scheduleValue != nil {
            throw OptimizerError.invalidArgument(
                field: "learning_rate",
                message: "The Nadam optimizer does not support LearningRateSchedules as the learning rate; use a number, a tensor or a closure.")
        }
        if scheduleDecay < 0 || scheduleDecay.isNaN {
            throw OptimizerError.invalidArgument(field: "schedule_decay", message: "expected schedule_decay >= 0, received: \(scheduleDecay)")
        }
        if let decay, decay != scheduleDecay {
            Optimizer.warn("Nadam ignores `decay` (\(decay)), as Keras does: its decay is `scheduleDecay` (\(scheduleDecay)), the momentum-schedule decay.")
        }
        self.epsilon = epsilon == 0 ? 1e-7 : epsilon
        try super.init(name: name, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                       decay: scheduleDecay, gradientAggregator: gradientAggregator,
                       gradientTransformers: gradientTransformers)
        setHyper("learning_rate", learningRate)
        setHyper("decay", .number(scheduleDecay))
        setHyper("beta_1", beta1)
        setHyper("beta_2", beta2)
    }

    /// The momentum-schedule decay (Keras' `schedule_decay`, stored as `decay`).
    public var scheduleDecay: Double { decay }

    open override class var kerasClassName: String { "Nadam" }

    open override func createSlots(for variables: [Variable]) throws {
        guard let first = variables.first else { return }  // Keras raises IndexError here; nothing to create.
        // Also when a failed applyGradients removed the cache it created (see Optimizer.applyGradients).
        if momentumCache.map({ cache in !weights.contains { $0 === cache } }) ?? true {
            momentumCache = try addWeight(name: "momentum_cache", shape: [], dtype: first.dtype, initializer: .ones)
        }
        for v in variables { try addSlot(v, "m") }
        for v in variables { try addSlot(v, "v") }
    }

    /// Nadam's coefficients (it does not call `super`: no `decay` or schedule is applied to `lr`).
    open override func prepare(_ c: inout Coefficients) throws {
        let lr: TypedScalar
        do {
            lr = try hyperScalar("learning_rate", c.dtype)
        } catch OptimizerError.invalidHyperparameter(name: "learning_rate", _) {
            // A schedule assigned after construction (Keras crashes at this point).
            throw OptimizerError.invalidArgument(
                field: "learning_rate", message: "The Nadam optimizer does not support LearningRateSchedules as the learning rate.")
        }
        let beta1 = try hyperScalar("beta_1", c.dtype), beta2 = try hyperScalar("beta_2", c.dtype)
        let step = c.scalar(Double(c.iteration &+ 1)), nextStep = c.scalar(Double(c.iteration &+ 2))
        let decayBase = TypedScalar.castFromFloat32(0.96, c.dtype)
        let d = c.scalar(decay)  // a Python float times a tensor of the dtype: exact in the dtype
        let muT = beta1 * (1 - 0.5 * decayBase.pow(d * step))
        let muT1 = beta1 * (1 - 0.5 * decayBase.pow(d * nextStep))
        // The cache as read before this apply (willApply stores the new value after every dtype is prepared).
        let cacheRead = try momentumCache.map { try $0.untrackedValue.item() } ?? 1
        let scheduleNew = c.scalar(cacheRead) * muT
        let scheduleNext = scheduleNew * muT1
        c.set("lr_t", lr)
        c.set("neg_lr_t", -lr)
        c.set("epsilon", c.scalar(epsilon))
        c.set("beta_1_t", beta1)
        c.set("beta_2_t", beta2)
        c.set("m_t", muT)
        c.set("m_t_1", muT1)
        c.set("m_schedule_new", scheduleNew)
        c.set("one_minus_beta_1_t", 1 - beta1)
        c.set("one_minus_beta_2_t", 1 - beta2)
        c.set("one_minus_m_t", 1 - muT)
        c.set("one_minus_m_schedule_new", 1 - scheduleNew)
        c.set("one_minus_m_schedule_next", 1 - scheduleNext)
        c.set("v_t_prime_denominator", 1 - beta2.pow(step))
    }

    /// Advances `momentum_cache` once, before any update, if this apply has variables of its dtype.
    open override func willApply(coefficients: [DType: Coefficients], variables: [Variable]) throws {
        guard let cache = momentumCache, let c = coefficients[cache.dtype] else { return }
        try cache.assign(Tensor(c["m_schedule_new"].value).cast(to: cache.dtype))
    }

    open override var denseKernelSlotNames: [String] { ["m", "v"] }

    open override var fusesDenseUpdates: Bool { type(of: self) == Nadam.self }

    open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
        try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
    }

    private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
        let p = try NadamParameters<T>(c)
        return { job, range in
            nadamKernel(job.variablePointer(T.self), job.gradientPointer(T.self), job.slotPointer(0, T.self),
                        job.slotPointer(1, T.self), range, p)
        }
    }

    open override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                           _ c: Coefficients) throws {
        let row = variable.shape.dropFirst().reduce(1, *), count = variable.scalarCount
        let w = variable.uniqueStorageForUpdate()
        let m = try slot(for: variable, named: "m").uniqueStorageForUpdate()
        let v = try slot(for: variable, named: "v").uniqueStorageForUpdate()
        func run<T: FloatingElement>(_: T.Type) throws {
            let p = try NadamParameters<T>(c)
            let negLr = try c["neg_lr_t"].value(as: T.self)
            let pw = w.base.assumingMemoryBound(to: T.self), pm = m.base.assumingMemoryBound(to: T.self)
            let pv = v.base.assumingMemoryBound(to: T.self), g = values.unsafeStorage.base.assumingMemoryBound(to: T.self)
            // m ← m·β₁ and v ← v·β₂ on all rows, then the scaled gradient rows are added.
            for i in 0..<count { pm[i] = pm[i] * p.beta1; pv[i] = pv[i] * p.beta2 }
            for (r, index) in indices.enumerated() {
                for j in 0..<row {
                    let gj = g[r * row + j]
                    pm[index * row + j] += gj * p.oneMinusBeta1
                    pv[index * row + j] += (gj * gj) * p.oneMinusBeta2
                }
            }
            // The variable moves at the touched rows only.
            for (r, index) in indices.enumerated() {
                for j in 0..<row {
                    let gj = g[r * row + j], k = index * row + j
                    let gPrime = gj / p.oneMinusScheduleNew
                    let mBar = p.oneMinusMuT * gPrime + p.muT1 * (pm[k] / p.oneMinusScheduleNext)
                    let vPrime = pv[k] / p.vDenominator
                    pw[k] += negLr * mBar / (T.scalarSquareRoot(vPrime) + p.epsilon)
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

    /// Rebuilds a Nadam optimizer from a Keras config (`Nadam.from_config`).
    ///
    /// `schedule_decay` is read if present; otherwise `decay`, which is what `get_config` writes, is taken
    /// as the schedule decay. (Keras itself loses a non-default `schedule_decay` on this round trip,
    /// resetting it to 0.004; Descent keeps it, so a saved Nadam replays the same trajectory.)
    public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
        var r = ConfigReader(config, className: "Nadam", customObjects: customObjects)
        let common = try r.common()
        let scheduleDecay = try r.double("schedule_decay") ?? common.decay ?? 0.004
        let learningRate = try r.learningRate() ?? 0.001
        let beta1 = try r.hyper("beta_1") ?? 0.9, beta2 = try r.hyper("beta_2") ?? 0.999
        let epsilon = try r.double("epsilon") ?? 1e-7
        try r.finish(allowed: ConfigReader.commonKeys + ["learning_rate", "beta_1", "beta_2", "epsilon", "schedule_decay"])
        try self.init(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, scheduleDecay: scheduleDecay,
                      name: common.name ?? "Nadam", clipnorm: common.clipnorm, clipvalue: common.clipvalue,
                      globalClipnorm: common.globalClipnorm)
    }
}

/// One step's Nadam constants in the kernel's element type.
struct NadamParameters<T: FloatingElement>: Sendable {
    let lr: T, epsilon: T, beta1: T, beta2: T, oneMinusBeta1: T, oneMinusBeta2: T
    let muT1: T, oneMinusMuT: T, oneMinusScheduleNew: T, oneMinusScheduleNext: T, vDenominator: T

    init(_ c: Coefficients) throws {
        lr = try c["lr_t"].value(as: T.self)
        epsilon = try c["epsilon"].value(as: T.self)
        beta1 = try c["beta_1_t"].value(as: T.self)
        beta2 = try c["beta_2_t"].value(as: T.self)
        oneMinusBeta1 = try c["one_minus_beta_1_t"].value(as: T.self)
        oneMinusBeta2 = try c["one_minus_beta_2_t"].value(as: T.self)
        muT1 = try c["m_t_1"].value(as: T.self)
        oneMinusMuT = try c["one_minus_m_t"].value(as: T.self)
        oneMinusScheduleNew = try c["one_minus_m_schedule_new"].value(as: T.self)
        oneMinusScheduleNext = try c["one_minus_m_schedule_next"].value(as: T.self)
        vDenominator = try c["v_t_prime_denominator"].value(as: T.self)
    }
}

/// One fused dense Nadam pass over `range`, in the operation order of Keras' `_resource_apply_dense`.
@inline(__always)
func nadamKernel<T: FloatingElement>(
    _ w: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ m: UnsafeMutablePointer<T>, _ v: UnsafeMutablePointer<T>,
    _ range: Range<Int>, _ p: NadamParameters<T>
) {
    let width = T.Vector.scalarCount
    let vlr = T.Vector(repeating: p.lr), veps = T.Vector(repeating: p.epsilon)
    let vb1 = T.Vector(repeating: p.beta1), vb2 = T.Vector(repeating: p.beta2)
    let vomb1 = T.Vector(repeating: p.oneMinusBeta1), vomb2 = T.Vector(repeating: p.oneMinusBeta2)
    let vmu1 = T.Vector(repeating: p.muT1), vommu = T.Vector(repeating: p.oneMinusMuT)
    let vsNew = T.Vector(repeating: p.oneMinusScheduleNew), vsNext = T.Vector(repeating: p.oneMinusScheduleNext)
    let vden = T.Vector(repeating: p.vDenominator)
    var i = range.lowerBound
    let end = range.upperBound
    while i + width <= end {
        let gi = loadVector(g + i)
        let mi = vb1 * loadVector(UnsafePointer(m + i)) + vomb1 * gi
        let vi = vb2 * loadVector(UnsafePointer(v + i)) + vomb2 * (gi * gi)
        storeVector(mi, m + i)
        storeVector(vi, v + i)
        let mBar = vommu * (gi / vsNew) + vmu1 * (mi / vsNext)
        storeVector(loadVector(UnsafePointer(w + i)) - vlr * mBar / (T.vectorSquareRoot(vi / vden) + veps), w + i)
        i += width
    }
    while i < end {
        let gi = g[i]
        m[i] = p.beta1 * m[i] + p.oneMinusBeta1 * gi
        v[i] = p.beta2 * v[i] + p.oneMinusBeta2 * (gi * gi)
        let mBar = p.oneMinusMuT * (gi / p.oneMinusScheduleNew) + p.muT1 * (m[i] / p.oneMinusScheduleNext)
        w[i] = w[i] - p.lr * mBar / (T.scalarSquareRoot(v[i] / p.vDenominator) + p.epsilon)
        i += 1
    }
}
