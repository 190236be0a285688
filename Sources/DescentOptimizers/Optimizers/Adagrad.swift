@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// Adagrad (Duchi et al.), as TensorFlow's fused kernel computes it (Keras' `Adagrad`).
///
/// With learning rate `lr` and gradient `g`:
/// ```
/// acc ← acc + g²
/// var ← var − (g·lr) / (sqrt(acc) + ε)          (the new acc)
/// ```
/// Slot: `accumulator`, starting at `initialAccumulatorValue` (in the variable's dtype). Sparse
/// gradients are **lazy**: repeated indices are summed first, then the rule is applied to the touched
/// rows only; the other rows of the variable and of `accumulator` do not change (TensorFlow's
/// `ResourceSparseApplyAdagradV2`). With a zero gradient row the dense rule leaves that row unchanged
/// too, so for Adagrad lazy and dense agree row by row.
open class Adagrad: Optimizer {
    /// The starting value of every `accumulator` element.
    public let initialAccumulatorValue: Double
    /// ε, added to the square root of the accumulator.
    public let epsilon: Double

    /// Creates an Adagrad optimizer with Keras' defaults. `epsilon` 0 becomes 1e-7, as in Keras.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a negative (or NaN)
    ///   `initialAccumulatorValue` (field `initial_accumulator_value`) and for the base class's invalid
    ///   options.
    public init(learningRate: Hyperparameter = 0.001, initialAccumulatorValue: Double = 0.1, epsilon: Double = 1e-7,
                name: String = "Adagrad", clipnorm: Double? = nil, clipvalue: Double? = nil,
                globalClipnorm: Double? = nil, decay: Double = 0, lr: Hyperparameter? = nil,
                gradientAggregator: GradientAggregator? = nil, gradientTransformers: [GradientTransformer] = []) throws {
        // Checked before the base options, as Keras does.
        if initialAccumulatorValue < 0 || initialAccumulatorValue.isNaN {
            throw OptimizerError.invalidArgument(
                field: "initial_accumulator_value",
                message: "initial_accumulator_value must be non-negative: \(initialAccumulatorValue)")
        }
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon == 0 ? 1e-7 : epsilon
        try super.init(name: name, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                       decay: decay, gradientAggregator: gradientAggregator, gradientTransformers: gradientTransformers)
        setHyper("learning_rate", lr ?? learningRate)
        setHyper("decay", .number(decay))
    }

    open override class var kerasClassName: String { "Adagrad" }

    open override func createSlots(for variables: [Variable]) throws {
        for v in variables { try addSlot(v, "accumulator", initializer: .constant(initialAccumulatorValue)) }
    }

    open override func prepare(_ c: inout Coefficients) throws {
        try super.prepare(&c)
        c.set("epsilon", c.scalar(epsilon))
        c.set("neg_lr_t", try -c["lr_t"])
    }

    /// Keras-1 compatibility: a list without the iteration count (one value fewer than ``weights``) gets
    /// an iteration count of 0 prepended, as Keras does.
    open override func setWeights(_ values: [Tensor]) throws {
        if weights.count == values.count + 1 { return try super.setWeights([Tensor(Int64(0))] + values) }
        try super.setWeights(values)
    }

    open override var denseKernelSlotNames: [String] { ["accumulator"] }

    open override var fusesDenseUpdates: Bool { type(of: self) == Adagrad.self }

    open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
        return try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
    }

    private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
        let lr = try c["lr_t"].value(as: T.self), eps = try c["epsilon"].value(as: T.self)
        return { job, range in
            adagradKernel(job.variablePointer(T.self), job.gradientPointer(T.self), job.slotPointer(0, T.self), range,
                          lr: lr, epsilon: eps)
        }
    }

    /// The dense rule on each touched row (TensorFlow's `SparseApplyAdagrad` computes `lr·g`, which
    /// equals the dense kernel's `g·lr`).
    open override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                           _ c: Coefficients) throws {
        let row = variable.shape.dropFirst().reduce(1, *)
        let w = variable.uniqueStorageForUpdate()
        let acc = try slot(for: variable, named: "accumulator").uniqueStorageForUpdate()
        func run<T: FloatingElement>(_: T.Type) throws {
            let lr = try c["lr_t"].value(as: T.self), eps = try c["epsilon"].value(as: T.self)
            let pw = w.base.assumingMemoryBound(to: T.self), pa = acc.base.assumingMemoryBound(to: T.self)
            let g = UnsafePointer(values.unsafeStorage.base.assumingMemoryBound(to: T.self))
            for (r, index) in indices.enumerated() {
                adagradKernel(pw + index * row, g + r * row, pa + index * row, 0..<row, lr: lr, epsilon: eps)
            }
        }
        try withExtendedLifetime((values, w, acc)) {
            if variable.dtype == .float32 { try run(Float.self) } else { try run(Double.self) }
        }
    }

    open override var config: JSONObject {
        get throws {
            var c = try configWithLearningRate()
            c["initial_accumulator_value"] = .double(initialAccumulatorValue)
            c["epsilon"] = .double(epsilon)
            return c
        }
    }

    /// Rebuilds an Adagrad optimizer from a Keras config (`Adagrad.from_config`): a missing
    /// `initial_accumulator_value` is 0.1. Unlike Keras, a serialized schedule as `learning_rate` is
    /// deserialized (Keras' override forgets to, and crashes).
    public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
        var r = ConfigReader(config, className: "Adagrad", customObjects: customObjects)
        let common = try r.common()
        let learningRate = try r.learningRate() ?? 0.001
        let initialAccumulatorValue = try r.double("initial_accumulator_value") ?? 0.1
        let epsilon = try r.double("epsilon") ?? 1e-7
        try r.finish(allowed: ConfigReader.commonKeys + ["learning_rate", "initial_accumulator_value", "epsilon"])
        try self.init(learningRate: learningRate, initialAccumulatorValue: initialAccumulatorValue, epsilon: epsilon,
                      name: common.name ?? "Adagrad", clipnorm: common.clipnorm, clipvalue: common.clipvalue,
                      globalClipnorm: common.globalClipnorm, decay: common.decay ?? 0)
    }
}

/// One fused Adagrad pass over `range` (TensorFlow's `ApplyAdagradV2`):
/// `acc ← acc + g·g; var ← var − (g·lr) / (sqrt(acc) + ε)`.
@inline(__always)
func adagradKernel<T: FloatingElement>(_ w: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ acc: UnsafeMutablePointer<T>,
                                       _ range: Range<Int>, lr: T, epsilon: T) {
    let width = T.Vector.scalarCount
    let vlr = T.Vector(repeating: lr), veps = T.Vector(repeating: epsilon)
    var i = range.lowerBound
    let end = range.upperBound
    while i + width <= end {
        let gi = loadVector(g + i)
        let ai = loadVector(UnsafePointer(acc + i)) + gi * gi
        storeVector(ai, acc + i)
        storeVector(loadVector(UnsafePointer(w + i)) - (gi * vlr) / (T.vectorSquareRoot(ai) + veps), w + i)
        i += width
    }
    while i < end {
        acc[i] += g[i] * g[i]
        w[i] -= (g[i] * lr) / (T.scalarSquareRoot(acc[i]) + epsilon)
        i += 1
    }
}
