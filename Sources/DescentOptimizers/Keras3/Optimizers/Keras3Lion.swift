@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Lion (Chen et al., 2023, "EvoLved Sign Momentum"), as Keras 3's `Lion.update_step` computes it,
    /// operation by operation.
    ///
    /// With β₁, β₂ cast to the variable's dtype (`ops.cast`, through float32) and `1 − β` computed in that
    /// dtype:
    /// ```
    /// var ← var − lr · sign(m·β₁ + g·(1 − β₁))
    /// m   ← m·β₂ + g·(1 − β₂)
    /// ```
    /// The update has the size of the learning rate in every element, so Lion wants a learning rate 3–10
    /// times smaller than AdamW's and a weight decay 3–10 times larger. Variables: `<var>_momentum` per
    /// variable. Sparse gradients: `g·(1 − β)` keeps its rows, which are summed at their indices (repeated
    /// indices add) when added to the dense `m·β`.
    open class Lion: Optimizer {
        /// β₁, the weight of the momentum in the sign's argument, in (0, 1].
        public let beta1: ConfigNumber
        /// β₂, the momentum's decay.
        public let beta2: ConfigNumber
        /// The momentums, by position of the variables built with.
        public private(set) var momentums: [Variable] = []

        /// Creates Keras 3's Lion with its defaults.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for β₁ outside (0, 1] (Keras:
        ///   "Otherwise, the optimizer degenerates to SignSGD"), a β float32 cannot hold, and the base's
        ///   errors (see ``Keras3/Optimizer/init(learningRate:name:options:)``).
        public init(learningRate: Hyperparameter = 0.001, beta1: ConfigNumber = 0.9, beta2: ConfigNumber = 0.99,
                    name: String = "", options: Options = .defaults) throws {
            guard beta1.value > 0 && beta1.value <= 1 else {
                throw OptimizerError.invalidArgument(
                    field: "beta_1", message: "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates to SignSGD. Received: beta_1=\(beta1).")
            }
            for (field, n) in [("beta_1", beta1), ("beta_2", beta2)] {
                try Float32Field.checkHyperparameter(n.value, field: field, owner: Self.kerasClassName)
            }
            self.beta1 = beta1
            self.beta2 = beta2
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "Lion" }

        open override func buildVariables(_ variables: [Variable]) throws {
            momentums = try addVariables(from: variables, names: ["momentum"])[0]
        }

        open override func resetClassBuild() { momentums = [] }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            let b1 = TypedScalar.castFromFloat32(beta1.value, c.dtype), b2 = TypedScalar.castFromFloat32(beta2.value, c.dtype)
            c.set("beta_1", b1)
            c.set("beta_2", b2)
            // `1.0 - beta_1` with beta_1 a tensor: computed in the dtype.
            c.set("one_minus_beta_1", 1 - b1)
            c.set("one_minus_beta_2", 1 - b2)
        }

        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.Lion.self }
        open override var denseKernelSlotNames: [String] { ["momentum"] }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
            try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
        }

        private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
            let lr = try c["lr"].value(as: T.self)
            let b1 = try c["beta_1"].value(as: T.self), b2 = try c["beta_2"].value(as: T.self)
            let omb1 = try c["one_minus_beta_1"].value(as: T.self), omb2 = try c["one_minus_beta_2"].value(as: T.self)
            return { job, range in
                // The same operations in the same order as Keras 3's update_step (see the doc comment).
                let w = job.variablePointer(T.self), g = job.gradientPointer(T.self), m = job.slotPointer(0, T.self)
                let width = T.Vector.scalarCount
                let vlr = T.Vector(repeating: lr), vb1 = T.Vector(repeating: b1), vb2 = T.Vector(repeating: b2)
                let vomb1 = T.Vector(repeating: omb1), vomb2 = T.Vector(repeating: omb2)
                var i = range.lowerBound
                while i + width <= range.upperBound {
                    let gi = loadVector(g + i), mi = loadVector(UnsafePointer(m + i))
                    let direction = lionSign(T.self, mi * vb1 + gi * vomb1)
                    storeVector(loadVector(UnsafePointer(w + i)) - vlr * direction, w + i)
                    storeVector(mi * vb2 + gi * vomb2, m + i)
                    i += width
                }
                while i < range.upperBound {
                    let direction = lionSign(m[i] * b1 + g[i] * omb1)
                    w[i] = w[i] - lr * direction
                    m[i] = m[i] * b2 + g[i] * omb2
                    i += 1
                }
            }
        }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let m = momentums[try index(of: variable)]
            let lr = try c["lr"].value, b1 = try c["beta_1"].value, b2 = try c["beta_2"].value
            let omb1 = try c["one_minus_beta_1"].value, omb2 = try c["one_minus_beta_2"].value
            // `ops.multiply(gradient, 1 - beta)`: sparse rows stay rows until added to the dense `m·beta`.
            let g1 = try densified(try GradientClipping.mapValues(gradient) { try ($0.untracked * omb1).untracked })
            let g2 = try densified(try GradientClipping.mapValues(gradient) { try ($0.untracked * omb2).untracked })
            let direction = try ((m.untrackedValue * b1).untracked + g1).untracked.sign().untracked
            try variable.assign((variable.untrackedValue - (direction * lr).untracked).untracked)
            try m.assign(((m.untrackedValue * b2).untracked + g2).untracked)
        }

        open override var ownConfig: JSONObject {
            get throws { ["beta_1": beta1.json, "beta_2": beta2.json] }
        }

        /// Rebuilds Keras 3's Lion from its config (`Lion.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "Lion", customObjects: customObjects)
            let base = try r.base()
            let beta1 = try r.number("beta_1") ?? 0.9, beta2 = try r.number("beta_2") ?? 0.99
            try r.finish(allowed: ["beta_1", "beta_2"])
            try self.init(learningRate: base.learningRate ?? 0.001, beta1: beta1, beta2: beta2,
                          name: base.name ?? "", options: base.options)
        }
    }
}

/// TensorFlow's `sign` on one vector: −1, 0 or 1 (NaN stays NaN).
@inline(__always)
func lionSign<T: FloatingElement>(_: T.Type, _ x: T.Vector) -> T.Vector {
    let zero = T.Vector(repeating: 0), one = T.Vector(repeating: 1)
    let s = T.vectorSelectLess(x, zero, zero - one, T.vectorSelectLess(zero, x, one, zero))
    return T.vectorSelectEqual(x, x, s, x)
}

/// TensorFlow's `sign` on one scalar: −1, 0 or 1 (NaN stays NaN).
@inline(__always)
func lionSign<T: FloatingElement>(_ x: T) -> T {
    x > 0 ? 1 : (x < 0 ? -1 : (x.isNaN ? x : 0))
}
