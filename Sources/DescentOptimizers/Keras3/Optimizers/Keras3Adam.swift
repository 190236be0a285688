@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Adam (Kingma & Ba), as Keras 3's `Adam.update_step` computes it, operation by operation.
    ///
    /// With `t = iterations + 1`, `β₁ᵗ = pow(β₁, t)`, `β₂ᵗ = pow(β₂, t)` (β cast to the variable's dtype):
    /// ```
    /// α   = lr · sqrt(1 − β₂ᵗ) / (1 − β₁ᵗ)
    /// m   ← m + (g − m)·(1 − β₁)
    /// v   ← v + (g² − v)·(1 − β₂)
    /// v̂   ← max(v̂, v)                            (amsgrad; v̂ replaces v below)
    /// var ← var − (m·α) / (sqrt(v) + ε)
    /// ```
    /// `1 − β₁`, `1 − β₂` and ε are Python numbers (computed in double, rounded once to the dtype), which
    /// is where these numbers differ from the legacy ``DescentOptimizers/Adam``'s. Variables, interleaved
    /// per variable: `<var>_momentum`, `<var>_velocity`; then `<var>_velocity_hat` (amsgrad). Sparse
    /// gradients are made dense (g, and g² with each repeated row squared before the sum).
    open class Adam: Optimizer {
        /// β₁, the first moment's decay.
        public let beta1: ConfigNumber
        /// β₂, the second moment's decay.
        public let beta2: ConfigNumber
        /// ε, added to the square root of the second moment.
        public let epsilon: ConfigNumber
        /// Use the maximum of past second moments (Reddi et al.).
        public let amsgrad: Bool
        /// The first moments, by position of the variables built with.
        public private(set) var momentums: [Variable] = []
        /// The second moments.
        public private(set) var velocities: [Variable] = []
        /// The maxima of the second moments (amsgrad).
        public private(set) var velocityHats: [Variable] = []

        /// Creates Keras 3's Adam with its defaults.
        public init(learningRate: Hyperparameter = 0.001, beta1: ConfigNumber = 0.9, beta2: ConfigNumber = 0.999,
                    epsilon: ConfigNumber = 1e-7, amsgrad: Bool = false, name: String = "",
                    options: Options = .defaults) throws {
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.amsgrad = amsgrad
            for (field, n) in [("beta_1", beta1), ("beta_2", beta2), ("epsilon", epsilon)] {
                try Float32Field.checkHyperparameter(n.value, field: field, owner: Self.kerasClassName)
            }
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "Adam" }

        open override func buildVariables(_ variables: [Variable]) throws {
            let lists = try addVariables(from: variables, names: ["momentum", "velocity"])
            momentums = lists[0]
            velocities = lists[1]
            if amsgrad { velocityHats = try addVariables(from: variables, names: ["velocity_hat"])[0] }
        }

        open override func resetClassBuild() {
            momentums = []
            velocities = []
            velocityHats = []
        }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            let t = try c["local_step"]
            let beta1Power = TypedScalar.castFromFloat32(beta1.value, c.dtype).pow(t)
            let beta2Power = TypedScalar.castFromFloat32(beta2.value, c.dtype).pow(t)
            c.set("alpha", try c["lr"] * (1 - beta2Power).squareRoot() / (1 - beta1Power))
            c.set("one_minus_beta_1", c.scalar(1 - beta1.value))
            c.set("one_minus_beta_2", c.scalar(1 - beta2.value))
            c.set("epsilon", c.scalar(epsilon.value))
        }

        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.Adam.self || type(of: self) == Keras3.AdamW.self }
        open override var denseKernelSlotNames: [String] { amsgrad ? ["momentum", "velocity", "velocity_hat"] : ["momentum", "velocity"] }
        override var denseKernelAppliesWeightDecay: Bool { true }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
            try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
        }

        private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
            let alpha = try c["alpha"].value(as: T.self)
            let omb1 = try c["one_minus_beta_1"].value(as: T.self), omb2 = try c["one_minus_beta_2"].value(as: T.self)
            let eps = try c["epsilon"].value(as: T.self), lr = try c["lr"].value(as: T.self)
            let amsgrad = self.amsgrad
            return { job, range in
                // The same operations in the same order as Keras 3's update_step (see the doc comment),
                // after the job's weight decay (AdamW's), element by element.
                adamKernel(job.variablePointer(T.self), job.gradientPointer(T.self), job.slotPointer(0, T.self),
                           job.slotPointer(1, T.self), amsgrad ? job.slotPointer(2, T.self) : nil, range,
                           alpha: alpha, oneMinusBeta1: omb1, oneMinusBeta2: omb2, epsilon: eps,
                           decay: job.weightDecay.map { (T($0), lr) })
            }
        }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            let m = momentums[i], v = velocities[i]
            let alpha = try c["alpha"].value, eps = try c["epsilon"].value
            let omb1 = try c["one_minus_beta_1"].value, omb2 = try c["one_minus_beta_2"].value
            let g = try densified(gradient), g2 = try densifiedSquares(gradient)
            try m.assign(try m.untrackedValue + (g - m.untrackedValue) * omb1)
            try v.assign(try v.untrackedValue + (g2 - v.untrackedValue) * omb2)
            var second = v.untrackedValue
            if amsgrad {
                let hat = velocityHats[i]
                try hat.assign(try hat.untrackedValue.maximum(second))
                second = hat.untrackedValue
            }
            try variable.assign(try variable.untrackedValue - (m.untrackedValue * alpha) / (second.sqrt() + eps))
        }

        open override var ownConfig: JSONObject {
            get throws {
                ["beta_1": beta1.json, "beta_2": beta2.json, "epsilon": epsilon.json, "amsgrad": .bool(amsgrad)]
            }
        }

        /// Rebuilds Keras 3's Adam from its config (`Adam.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "Adam", customObjects: customObjects)
            let base = try r.base()
            let beta1 = try r.number("beta_1") ?? 0.9, beta2 = try r.number("beta_2") ?? 0.999
            let epsilon = try r.number("epsilon") ?? 1e-7
            let amsgrad = try r.bool("amsgrad") ?? false
            try r.finish(allowed: ["beta_1", "beta_2", "epsilon", "amsgrad"])
            try self.init(learningRate: base.learningRate ?? 0.001, beta1: beta1, beta2: beta2, epsilon: epsilon,
                          amsgrad: amsgrad, name: base.name ?? "", options: base.options)
        }
    }

    /// AdamW (Loshchilov & Hutter): Keras 3's `Adam` with decoupled weight decay, required (default
    /// 0.004): before each update `var ← var − (var·wd)·lr`, then the Adam step of ``Keras3/Adam``.
    /// Exclude variables (biases, norms) with ``Keras3/Optimizer/excludeFromWeightDecay(variables:names:)``.
    open class AdamW: Adam {
        /// Creates Keras 3's AdamW with its defaults (`weightDecay` 0.004).
        /// - Throws: the errors of ``Keras3/Adam``; `options.weightDecay` is replaced by `weightDecay`.
        public init(learningRate: Hyperparameter = 0.001, weightDecay: ConfigNumber = 0.004, beta1: ConfigNumber = 0.9,
                    beta2: ConfigNumber = 0.999, epsilon: ConfigNumber = 1e-7, amsgrad: Bool = false,
                    name: String = "", options: Options = .defaults) throws {
            var options = options
            options.weightDecay = weightDecay
            try super.init(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad,
                           name: name, options: options)
        }

        open override class var kerasClassName: String { "AdamW" }

        /// Rebuilds Keras 3's AdamW from its config.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for `"weight_decay": null` (Keras:
        ///   "Argument `weight_decay` must be a float").
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "AdamW", customObjects: customObjects)
            let base = try r.base(defaultWeightDecay: 0.004)
            guard let weightDecay = base.options.weightDecay else {
                throw OptimizerError.invalidArgument(field: "weight_decay", message: "AdamW: Argument `weight_decay` must be a float, received: None")
            }
            let beta1 = try r.number("beta_1") ?? 0.9, beta2 = try r.number("beta_2") ?? 0.999
            let epsilon = try r.number("epsilon") ?? 1e-7
            let amsgrad = try r.bool("amsgrad") ?? false
            try r.finish(allowed: ["beta_1", "beta_2", "epsilon", "amsgrad"])
            try self.init(learningRate: base.learningRate ?? 0.001, weightDecay: weightDecay, beta1: beta1, beta2: beta2,
                          epsilon: epsilon, amsgrad: amsgrad, name: base.name ?? "", options: base.options)
        }
    }
}
