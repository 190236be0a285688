@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// Gradient descent with optional momentum (Keras' `SGD`).
///
/// With learning rate `lr`, momentum `μ`, gradient `g`:
/// ```
/// μ = 0:          var ← var − lr·g
/// μ > 0:          a ← μ·a − lr·g
///                 var ← var + a                  (nesterov: var ← var + μ·a − lr·g)
/// ```
/// Slot: `momentum` (only when momentum is used). Sparse gradients: without momentum every occurrence of
/// an index is applied (no summing first); with momentum the rule is applied to the touched rows only
/// (lazy: untouched rows' momentum does not decay), as TensorFlow's kernels do.
///
/// Whether momentum is used is decided at construction (a number > 0, a tensor or a closure); assigning
/// `momentum` later changes its value but not that choice (as in Keras).
open class SGD: Optimizer {
    /// Nesterov momentum.
    public let nesterov: Bool
    /// Whether the momentum rule and slot are used (fixed at construction).
    public let usesMomentum: Bool

    /// Creates an SGD optimizer with Keras' defaults.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a momentum outside [0, 1] and for
    ///   the base class's invalid options.
    public init(learningRate: Hyperparameter = 0.01, momentum: Hyperparameter = 0.0, nesterov: Bool = false,
                name: String = "SGD", clipnorm: Double? = nil, clipvalue: Double? = nil, globalClipnorm: Double? = nil,
                decay: Double = 0, lr: Hyperparameter? = nil, gradientAggregator: GradientAggregator? = nil,
                gradientTransformers: [GradientTransformer] = []) throws {
        if let m = momentum.numericValue, m < 0 || m > 1 {
            throw OptimizerError.invalidArgument(field: "momentum", message: "`momentum` must be between [0, 1]. Received: momentum=\(m)")
        }
        self.nesterov = nesterov
        self.usesMomentum = momentum.numericValue.map { $0 > 0 } ?? true
        try super.init(name: name, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                       decay: decay, gradientAggregator: gradientAggregator, gradientTransformers: gradientTransformers)
        setHyper("learning_rate", lr ?? learningRate)
        setHyper("decay", .number(decay))
        setHyper("momentum", momentum)
    }

    /// The momentum hyperparameter.
    public var momentum: Hyperparameter {
        get { (try? hyper("momentum")) ?? .number(.nan) }
        set { setHyper("momentum", newValue) }
    }

    open override class var kerasClassName: String { "SGD" }

    open override func createSlots(for variables: [Variable]) throws {
        guard usesMomentum else { return }
        for v in variables { try addSlot(v, "momentum") }
    }

    open override func prepare(_ c: inout Coefficients) throws {
        try super.prepare(&c)
        c.set("momentum", try hyperScalar("momentum", c.dtype))
    }

    open override var denseKernelSlotNames: [String] { usesMomentum ? ["momentum"] : [] }

    open override var fusesDenseUpdates: Bool { type(of: self) == SGD.self }

    open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
        switch c.dtype {
        case .float32: return try makeKernel(Float.self, c)
        default: return try makeKernel(Double.self, c)
        }
    }

    private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
        let lr = try c["lr_t"].value(as: T.self), mu = try c["momentum"].value(as: T.self)
        if !usesMomentum {
            return { job, range in sgdKernel(job.variablePointer(T.self), job.gradientPointer(T.self), range, lr: lr) }
        }
        let nesterov = self.nesterov
        return { job, range in
            momentumKernel(job.variablePointer(T.self), job.gradientPointer(T.self), job.slotPointer(0, T.self), range,
                           lr: lr, momentum: mu, nesterov: nesterov)
        }
    }

    /// Without momentum, TensorFlow scatter-adds `−g·lr` once per occurrence: repeated indices are not
    /// summed first.
    open override func resourceApplySparseDuplicateIndices(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                                          _ c: Coefficients) throws {
        if usesMomentum { return try super.resourceApplySparseDuplicateIndices(values, variable, indices, c) }
        try resourceApplySparse(values, variable, indices, c)
    }

    open override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                           _ c: Coefficients) throws {
        let row = variable.shape.dropFirst().reduce(1, *)
        let storage = variable.uniqueStorageForUpdate()
        let momentumStorage = usesMomentum ? try slot(for: variable, named: "momentum").uniqueStorageForUpdate() : nil
        func run<T: FloatingElement>(_: T.Type) throws {
            let lr = try c["lr_t"].value(as: T.self), mu = try c["momentum"].value(as: T.self)
            let w = storage.base.assumingMemoryBound(to: T.self)
            let g = values.unsafeStorage.base.assumingMemoryBound(to: T.self)
            for (r, index) in indices.enumerated() {
                let wr = w + index * row, gr = g + r * row
                if let momentumStorage {
                    let a = momentumStorage.base.assumingMemoryBound(to: T.self) + index * row
                    for j in 0..<row {
                        a[j] = a[j] * mu - gr[j] * lr
                        wr[j] += nesterov ? a[j] * mu - gr[j] * lr : a[j]
                    }
                } else {
                    for j in 0..<row { wr[j] += -gr[j] * lr }
                }
            }
        }
        try withExtendedLifetime((values, storage, momentumStorage)) {
            if variable.dtype == .float32 { try run(Float.self) } else { try run(Double.self) }
        }
    }

    open override var config: JSONObject {
        get throws {
            var c = try configWithLearningRate()
            c["momentum"] = try serializedHyper("momentum")
            c["nesterov"] = .bool(nesterov)
            return c
        }
    }

    /// Rebuilds an SGD optimizer from a Keras config (`SGD.from_config`).
    public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
        var r = ConfigReader(config, className: "SGD", customObjects: customObjects)
        let common = try r.common()
        let learningRate = try r.learningRate() ?? 0.01
        let momentum = try r.hyper("momentum") ?? 0.0
        let nesterov = try r.bool("nesterov") ?? false
        try r.finish(allowed: ConfigReader.commonKeys + ["learning_rate", "momentum", "nesterov"])
        try self.init(learningRate: learningRate, momentum: momentum, nesterov: nesterov, name: common.name ?? "SGD",
                      clipnorm: common.clipnorm, clipvalue: common.clipvalue, globalClipnorm: common.globalClipnorm,
                      decay: common.decay ?? 0)
    }
}

/// `var ← var − g·lr` (TensorFlow's `ApplyGradientDescent`).
@inline(__always)
func sgdKernel<T: FloatingElement>(_ w: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ range: Range<Int>, lr: T) {
    let width = T.Vector.scalarCount
    let vlr = T.Vector(repeating: lr)
    var i = range.lowerBound
    while i + width <= range.upperBound {
        storeVector(loadVector(UnsafePointer(w + i)) - loadVector(g + i) * vlr, w + i)
        i += width
    }
    while i < range.upperBound { w[i] -= g[i] * lr; i += 1 }
}

/// `a ← a·μ − g·lr; var ← var + a` (or `+ a·μ − g·lr` with Nesterov) (`ApplyKerasMomentum`).
@inline(__always)
func momentumKernel<T: FloatingElement>(_ w: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ a: UnsafeMutablePointer<T>,
                                        _ range: Range<Int>, lr: T, momentum mu: T, nesterov: Bool) {
    let width = T.Vector.scalarCount
    let vlr = T.Vector(repeating: lr), vmu = T.Vector(repeating: mu)
    var i = range.lowerBound
    while i + width <= range.upperBound {
        let gi = loadVector(g + i)
        let ai = loadVector(UnsafePointer(a + i)) * vmu - gi * vlr
        storeVector(ai, a + i)
        let step = nesterov ? ai * vmu - gi * vlr : ai
        storeVector(loadVector(UnsafePointer(w + i)) + step, w + i)
        i += width
    }
    while i < range.upperBound {
        a[i] = a[i] * mu - g[i] * lr
        w[i] += nesterov ? a[i] * mu - g[i] * lr : a[i]
        i += 1
    }
}
