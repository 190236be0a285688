@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Adamax (Kingma & Ba, section 7.1: Adam with the infinity norm), as Keras 3's `Adamax.update_step`
    /// computes it, operation by operation.
    ///
    /// With `t = iterations + 1` and `β₁ᵗ = pow(β₁, t)` (β₁ cast to the dtype); `1 − β₁`, β₂ and ε are Python
    /// numbers (computed in double, rounded once to the dtype):
    /// ```
    /// m   ← m + (g − m)·(1 − β₁)
    /// u   ← max(β₂·u, |g|)
    /// var ← var − (lr·m) / ((1 − β₁ᵗ)·(u + ε))
    /// ```
    /// Variables, interleaved per variable: `<var>_momentum`, `<var>_norm`. Sparse gradients: `g − m` is
    /// made dense, and `|g|` keeps its rows, summed at their indices (repeated indices add their absolute
    /// values) before the maximum.
    open class Adamax: Optimizer {
        /// β₁, the first moment's decay.
        public let beta1: ConfigNumber
        /// β₂, the decay of the exponentially weighted infinity norm.
        public let beta2: ConfigNumber
        /// ε, added to the norm.
        public let epsilon: ConfigNumber
        /// The first moments, by position of the variables built with.
        public private(set) var momentums: [Variable] = []
        /// The exponentially weighted infinity norms.
        public private(set) var norms: [Variable] = []

        /// Creates Keras 3's Adamax with its defaults.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a hyperparameter float32 cannot
        ///   hold and the base's errors (see ``Keras3/Optimizer/init(learningRate:name:options:)``).
        public init(learningRate: Hyperparameter = 0.001, beta1: ConfigNumber = 0.9, beta2: ConfigNumber = 0.999,
                    epsilon: ConfigNumber = 1e-7, name: String = "", options: Options = .defaults) throws {
            for (field, n) in [("beta_1", beta1), ("beta_2", beta2), ("epsilon", epsilon)] {
                try Float32Field.checkHyperparameter(n.value, field: field, owner: Self.kerasClassName)
            }
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "Adamax" }

        open override func buildVariables(_ variables: [Variable]) throws {
            let lists = try addVariables(from: variables, names: ["momentum", "norm"])
            momentums = lists[0]
            norms = lists[1]
        }

        open override func resetClassBuild() {
            momentums = []
            norms = []
        }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            let beta1Power = TypedScalar.castFromFloat32(beta1.value, c.dtype).pow(try c["local_step"])
            c.set("one_minus_beta_1", c.scalar(1 - beta1.value))
            c.set("beta_2", c.scalar(beta2.value))
            c.set("one_minus_beta_1_power", 1 - beta1Power)
            c.set("epsilon", c.scalar(epsilon.value))
        }

        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.Adamax.self }
        open override var denseKernelSlotNames: [String] { ["momentum", "norm"] }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
            try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
        }

        private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
            let lr = try c["lr"].value(as: T.self), omb1 = try c["one_minus_beta_1"].value(as: T.self)
            let b2 = try c["beta_2"].value(as: T.self), omb1p = try c["one_minus_beta_1_power"].value(as: T.self)
            let eps = try c["epsilon"].value(as: T.self)
            return { job, range in
                // The same operations in the same order as Keras 3's update_step (see the doc comment).
                let w = job.variablePointer(T.self), g = job.gradientPointer(T.self)
                let m = job.slotPointer(0, T.self), u = job.slotPointer(1, T.self)
                let width = T.Vector.scalarCount
                let vlr = T.Vector(repeating: lr), vomb1 = T.Vector(repeating: omb1), vb2 = T.Vector(repeating: b2)
                let vomb1p = T.Vector(repeating: omb1p), veps = T.Vector(repeating: eps), zero = T.Vector(repeating: 0)
                var i = range.lowerBound
                while i + width <= range.upperBound {
                    let gi = loadVector(g + i)
                    var mi = loadVector(UnsafePointer(m + i))
                    mi = mi + (gi - mi) * vomb1
                    storeVector(mi, m + i)
                    let decayed = vb2 * loadVector(UnsafePointer(u + i))
                    let magnitude = T.vectorSelectLessEqual(gi, zero, zero - gi, gi)
                    // `maximum(a, b)` = `a < b ? b : a`, as TensorFlow's.
                    let ui = T.vectorSelectLess(decayed, magnitude, magnitude, decayed)
                    storeVector(ui, u + i)
                    storeVector(loadVector(UnsafePointer(w + i)) - (vlr * mi) / (vomb1p * (ui + veps)), w + i)
                    i += width
                }
                while i < range.upperBound {
                    let gi = g[i]
                    m[i] = m[i] + (gi - m[i]) * omb1
                    let decayed = b2 * u[i], magnitude = Swift.abs(gi)
                    u[i] = decayed < magnitude ? magnitude : decayed
                    w[i] = w[i] - (lr * m[i]) / (omb1p * (u[i] + eps))
                    i += 1
                }
            }
        }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            let m = momentums[i], u = norms[i]
            let lr = try c["lr"].value, omb1 = try c["one_minus_beta_1"].value, b2 = try c["beta_2"].value
            let omb1p = try c["one_minus_beta_1_power"].value, eps = try c["epsilon"].value
            let g = try densified(gradient)
            // `ops.abs` keeps the rows; `maximum` with a dense operand sums them at their indices.
            let magnitude = try densified(try GradientClipping.mapValues(gradient) { try $0.untracked.abs().untracked })
            try m.assign((m.untrackedValue + ((g - m.untrackedValue).untracked * omb1).untracked).untracked)
            try u.assign(try (u.untrackedValue * b2).untracked.maximum(magnitude).untracked)
            let denominator = try ((u.untrackedValue + eps).untracked * omb1p).untracked
            try variable.assign((variable.untrackedValue - ((m.untrackedValue * lr).untracked / denominator).untracked).untracked)
        }

        open override var ownConfig: JSONObject {
            get throws { ["beta_1": beta1.json, "beta_2": beta2.json, "epsilon": epsilon.json] }
        }

        /// Rebuilds Keras 3's Adamax from its config (`Adamax.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "Adamax", customObjects: customObjects)
            let base = try r.base()
            let beta1 = try r.number("beta_1") ?? 0.9, beta2 = try r.number("beta_2") ?? 0.999
            let epsilon = try r.number("epsilon") ?? 1e-7
            try r.finish(allowed: ["beta_1", "beta_2", "epsilon"])
            try self.init(learningRate: base.learningRate ?? 0.001, beta1: beta1, beta2: beta2, epsilon: epsilon,
                          name: base.name ?? "", options: base.options)
        }
    }
}
