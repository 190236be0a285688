@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// Adadelta (Zeiler), as TensorFlow's fused kernel computes it (Keras' `Adadelta`).
///
/// With learning rate `lr` (the paper's rule is `lr = 1`), decay `ρ`, gradient `g`, `A = accum_grad`,
/// `U = accum_var`:
/// ```
/// A   ← A·ρ + g²·(1 − ρ)
/// u   = sqrt(U + ε) · (1 / sqrt(A + ε)) · g       (the new A, the old U)
/// var ← var − u·lr
/// U   ← U·ρ + u²·(1 − ρ)
/// ```
/// ε is inside both square roots. Slots, in this order: `accum_grad` for every variable, then
/// `accum_var`, all starting at zero. Sparse gradients are **lazy**: repeated indices are summed first,
/// then the rule is applied to the touched rows only; the other rows of the variable and of both slots
/// do not change (TensorFlow's `SparseApplyAdadelta`), whereas a dense zero-gradient row decays `A` and
/// `U` by `ρ`.
///
/// `1/sqrt` is computed exactly (correctly rounded square root, then division), which is what
/// TensorFlow's kernel does on elements outside full SIMD packets. On full packets TensorFlow's `float32`
/// kernel uses Eigen's vectorized reciprocal square root, which is not correctly rounded, so `float32`
/// results can differ from TensorFlow's in the last bit (`float64` results are identical).
open class Adadelta: Optimizer {
    /// ε, added inside both square roots.
    public let epsilon: Double

    /// Creates an Adadelta optimizer with Keras' defaults. `epsilon` 0 becomes 1e-7, as in Keras.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for the base class's invalid options.
    public init(learningRate: Hyperparameter = 0.001, rho: Hyperparameter = 0.95, epsilon: Double = 1e-7,
                name: String = "Adadelta", clipnorm: Double? = nil, clipvalue: Double? = nil,
                globalClipnorm: Double? = nil, decay: Double = 0, lr: Hyperparameter? = nil,
                gradientAggregator: GradientAggregator? = nil, gradientTransformers: [GradientTransformer] = []) throws {
        self.epsilon = epsilon == 0 ? 1e-7 : epsilon
        try super.init(name: name, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                       decay: decay, gradientAggregator: gradientAggregator, gradientTransformers: gradientTransformers)
        setHyper("learning_rate", lr ?? learningRate)
        setHyper("decay", .number(decay))
        setHyper("rho", rho)
    }

    /// The decay rate ρ of both accumulators.
    public var rho: Hyperparameter {
        get { (try? hyper("rho")) ?? .number(.nan) }
        set { setHyper("rho", newValue) }
    }

    open override class var kerasClassName: String { "Adadelta" }

    open override func createSlots(for variables: [Variable]) throws {
        for v in variables { try addSlot(v, "accum_grad") }
        for v in variables { try addSlot(v, "accum_var") }
    }

    open override func prepare(_ c: inout Coefficients) throws {
        try super.prepare(&c)
        c.set("epsilon", c.scalar(epsilon))
        c.set("rho", try hyperScalar("rho", c.dtype))
    }

    /// Keras-1 compatibility: a list without the iteration count (one value fewer than ``weights``) gets
    /// an iteration count of 0 prepended, as Keras does.
    open override func setWeights(_ values: [Tensor]) throws {
        if weights.count == values.count + 1 { return try super.setWeights([Tensor(Int64(0))] + values) }
        try super.setWeights(values)
    }

    open override var denseKernelSlotNames: [String] { ["accum_grad", "accum_var"] }

    open override var fusesDenseUpdates: Bool { type(of: self) == Adadelta.self }

    open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
        return try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
    }

    private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
        let lr = try c["lr_t"].value(as: T.self), rho = try c["rho"].value(as: T.self)
        let oneMinusRho = try (1 - c["rho"]).value(as: T.self), eps = try c["epsilon"].value(as: T.self)
        return { job, range in
            adadeltaKernel(job.variablePointer(T.self), job.gradientPointer(T.self), job.slotPointer(0, T.self),
                           job.slotPointer(1, T.self), range, lr: lr, rho: rho, oneMinusRho: oneMinusRho, epsilon: eps)
        }
    }

    /// The dense rule on each touched row (TensorFlow's sparse kernel uses the same expression per row).
    open override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                           _ c: Coefficients) throws {
        let row = variable.shape.dropFirst().reduce(1, *)
        let w = variable.uniqueStorageForUpdate()
        let accumGrad = try slot(for: variable, named: "accum_grad").uniqueStorageForUpdate()
        let accumVar = try slot(for: variable, named: "accum_var").uniqueStorageForUpdate()
        func run<T: FloatingElement>(_: T.Type) throws {
            let lr = try c["lr_t"].value(as: T.self), rho = try c["rho"].value(as: T.self)
            let oneMinusRho = try (1 - c["rho"]).value(as: T.self), eps = try c["epsilon"].value(as: T.self)
            let pw = w.base.assumingMemoryBound(to: T.self)
            let pa = accumGrad.base.assumingMemoryBound(to: T.self), pu = accumVar.base.assumingMemoryBound(to: T.self)
            let g = UnsafePointer(values.unsafeStorage.base.assumingMemoryBound(to: T.self))
            for (r, index) in indices.enumerated() {
                let at = index * row
                adadeltaKernel(pw + at, g + r * row, pa + at, pu + at, 0..<row, lr: lr, rho: rho,
                               oneMinusRho: oneMinusRho, epsilon: eps)
            }
        }
        try withExtendedLifetime((values, w, accumGrad, accumVar)) {
            if variable.dtype == .float32 { try run(Float.self) } else { try run(Double.self) }
        }
    }

    open override var config: JSONObject {
        get throws {
            var c = try configWithLearningRate()
            c["rho"] = try serializedHyper("rho")
            c["epsilon"] = .double(epsilon)
            return c
        }
    }

    /// Rebuilds an Adadelta optimizer from a Keras config (`Adadelta.from_config`).
    public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
        var r = ConfigReader(config, className: "Adadelta", customObjects: customObjects)
        let common = try r.common()
        let learningRate = try r.learningRate() ?? 0.001
        let rho = try r.hyper("rho") ?? 0.95
        let epsilon = try r.double("epsilon") ?? 1e-7
        try r.finish(allowed: ConfigReader.commonKeys + ["learning_rate", "rho", "epsilon"])
        try self.init(learningRate: learningRate, rho: rho, epsilon: epsilon, name: common.name ?? "Adadelta",
                      clipnorm: common.clipnorm, clipvalue: common.clipvalue, globalClipnorm: common.globalClipnorm,
                      decay: common.decay ?? 0)
    }
}

/// One fused Adadelta pass over `range` (TensorFlow's `ApplyAdadelta`).
@inline(__always)
func adadeltaKernel<T: FloatingElement>(
    _ w: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ accumGrad: UnsafeMutablePointer<T>,
    _ accumVar: UnsafeMutablePointer<T>, _ range: Range<Int>, lr: T, rho: T, oneMinusRho: T, epsilon: T
) {
    let width = T.Vector.scalarCount
    let vlr = T.Vector(repeating: lr), vrho = T.Vector(repeating: rho)
    let vomr = T.Vector(repeating: oneMinusRho), veps = T.Vector(repeating: epsilon)
    let one = T.Vector(repeating: 1)
    var i = range.lowerBound
    let end = range.upperBound
    while i + width <= end {
        let gi = loadVector(g + i)
        let ai = loadVector(UnsafePointer(accumGrad + i)) * vrho + (gi * gi) * vomr
        storeVector(ai, accumGrad + i)
        let ui = loadVector(UnsafePointer(accumVar + i))
        let update = T.vectorSquareRoot(ui + veps) * (one / T.vectorSquareRoot(ai + veps)) * gi
        storeVector(loadVector(UnsafePointer(w + i)) - update * vlr, w + i)
        storeVector(ui * vrho + (update * update) * vomr, accumVar + i)
        i += width
    }
    while i < end {
        let gi = g[i]
        accumGrad[i] = accumGrad[i] * rho + (gi * gi) * oneMinusRho
        let update = T.scalarSquareRoot(accumVar[i] + epsilon) * (1 / T.scalarSquareRoot(accumGrad[i] + epsilon)) * gi
        w[i] -= update * lr
        accumVar[i] = accumVar[i] * rho + (update * update) * oneMinusRho
        i += 1
    }
}
