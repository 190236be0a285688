@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Nadam (Dozat, 2015: Adam with Nesterov momentum), as Keras 3's `Nadam` computes it, operation by
    /// operation.
    ///
    /// Once per update, before the variables' updates (Keras' `_backend_update_step`), in the dtype of the
    /// first variable built with, with `k` = ``Keras3/Optimizer/kerasIterations``:
    /// ```
    /// u_product ← (u_product·β₁) · (1 − 0.5·pow(0.96, k + 1))          (β₁, 0.96 Python numbers)
    /// ```
    /// Then for each variable, in its dtype, with `t = k + 1`, β₁, β₂ and 0.96 cast through float32
    /// (`ops.cast`) and every `1 − x` computed in the dtype:
    /// ```
    /// uₜ   = β₁·(1 − 0.5·pow(0.96, t)),   uₜ₊₁ = β₁·(1 − 0.5·pow(0.96, t + 1))
    /// Πₜ   = u_product,                   Πₜ₊₁ = Πₜ·uₜ₊₁
    /// m    ← m + (g − m)·(1 − β₁)
    /// v    ← v + (g² − v)·(1 − β₂)
    /// m̂    = (uₜ₊₁·m)/(1 − Πₜ₊₁) + ((1 − uₜ)·g)/(1 − Πₜ)
    /// v̂    = v/(1 − pow(β₂, t))
    /// var  ← var − (m̂·lr)/(sqrt(v̂) + ε)                                  (ε a Python number)
    /// ```
    /// Variables: `<var>_momentum`, `<var>_velocity` interleaved per variable, then the scalar
    /// `u_product`, which Keras creates as an unnamed `keras.Variable` (so it is named `variable`,
    /// `variable_1`, ... in the order such variables are made in the process). Calls that only
    /// accumulate gradients leave `u_product` as it is. Sparse gradients: `g − m` and `g²` are made dense
    /// (each repeated row squared before the sum); `((1 − uₜ)·g)/(1 − Πₜ)` keeps the rows, summed at their
    /// indices when added to the dense first term.
    open class Nadam: Optimizer {
        /// β₁, the first moment's decay.
        public let beta1: ConfigNumber
        /// β₂, the second moment's decay.
        public let beta2: ConfigNumber
        /// ε, added to the square root of the corrected second moment.
        public let epsilon: ConfigNumber
        /// The first moments, by position of the variables built with.
        public private(set) var momentums: [Variable] = []
        /// The second moments.
        public private(set) var velocities: [Variable] = []
        /// The product of the momentum schedule `uₜ` so far (Keras' `_u_product`), once built.
        public private(set) var uProduct: Variable?

        /// Creates Keras 3's Nadam with its defaults.
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

        open override class var kerasClassName: String { "Nadam" }

        open override func buildVariables(_ variables: [Variable]) throws {
            let lists = try addVariables(from: variables, names: ["momentum", "velocity"])
            momentums = lists[0]
            velocities = lists[1]
            uProduct = try addVariable(name: KerasNaming.uniqueName("variable"), shape: [],
                                       dtype: variables.first?.dtype ?? .float32, initializer: .ones)
        }

        open override func resetClassBuild() {
            momentums = []
            velocities = []
            uProduct = nil
        }

        /// The value `u_product` takes at this update, in its dtype (Keras' `_backend_update_step`).
        func nextUProduct() throws -> TypedScalar {
            guard let uProduct else { throw OptimizerError.invalidArgument(field: "u_product", message: "\(name) is not built") }
            let u = TypedScalar(try uProduct.untrackedValue.item() as Double, uProduct.dtype)
            let dtype = u.dtype
            let step = TypedScalar(Double(kerasIterations &+ 1), dtype)
            let schedule = 1 - 0.5 * TypedScalar(0.96, dtype).pow(step)
            return (u * TypedScalar(beta1.value, dtype)) * schedule
        }

        open override func willApplyUpdates(_ coefficients: [DType: Coefficients]) throws {
            guard let uProduct else { return }
            try uProduct.assign(Tensor(repeating: try nextUProduct().value, shape: [], dtype: uProduct.dtype))
        }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            let d = c.dtype
            let localStep = try c["local_step"], nextStep = c.scalar(Double(c.iteration &+ 2))
            let decay = TypedScalar.castFromFloat32(0.96, d)
            let b1 = TypedScalar.castFromFloat32(beta1.value, d), b2 = TypedScalar.castFromFloat32(beta2.value, d)
            let ut = b1 * (1 - 0.5 * decay.pow(localStep))
            let ut1 = b1 * (1 - 0.5 * decay.pow(nextStep))
            let productT = TypedScalar(try nextUProduct().value, d)
            let productT1 = productT * ut1
            c.set("one_minus_beta_1", 1 - b1)
            c.set("one_minus_beta_2", 1 - b2)
            c.set("u_t_1", ut1)
            c.set("one_minus_u_product_t_1", 1 - productT1)
            c.set("one_minus_u_t", 1 - ut)
            c.set("one_minus_u_product_t", 1 - productT)
            c.set("one_minus_beta_2_power", 1 - b2.pow(localStep))
            c.set("epsilon", c.scalar(epsilon.value))
        }

        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.Nadam.self }
        open override var denseKernelSlotNames: [String] { ["momentum", "velocity"] }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
            try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
        }

        private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
            let lr = try c["lr"].value(as: T.self), eps = try c["epsilon"].value(as: T.self)
            let omb1 = try c["one_minus_beta_1"].value(as: T.self), omb2 = try c["one_minus_beta_2"].value(as: T.self)
            let ut1 = try c["u_t_1"].value(as: T.self), den1 = try c["one_minus_u_product_t_1"].value(as: T.self)
            let omut = try c["one_minus_u_t"].value(as: T.self), den2 = try c["one_minus_u_product_t"].value(as: T.self)
            let denV = try c["one_minus_beta_2_power"].value(as: T.self)
            return { job, range in
                // The same operations in the same order as Keras 3's update_step (see the doc comment).
                let w = job.variablePointer(T.self), g = job.gradientPointer(T.self)
                let m = job.slotPointer(0, T.self), v = job.slotPointer(1, T.self)
                let width = T.Vector.scalarCount
                let vlr = T.Vector(repeating: lr), veps = T.Vector(repeating: eps)
                let vomb1 = T.Vector(repeating: omb1), vomb2 = T.Vector(repeating: omb2)
                let vut1 = T.Vector(repeating: ut1), vden1 = T.Vector(repeating: den1)
                let vomut = T.Vector(repeating: omut), vden2 = T.Vector(repeating: den2), vdenV = T.Vector(repeating: denV)
                var i = range.lowerBound
                while i + width <= range.upperBound {
                    let gi = loadVector(g + i)
                    var mi = loadVector(UnsafePointer(m + i)), vi = loadVector(UnsafePointer(v + i))
                    mi = mi + (gi - mi) * vomb1
                    vi = vi + (gi * gi - vi) * vomb2
                    storeVector(mi, m + i)
                    storeVector(vi, v + i)
                    let mHat = (vut1 * mi) / vden1 + (vomut * gi) / vden2
                    let vHat = vi / vdenV
                    storeVector(loadVector(UnsafePointer(w + i)) - (mHat * vlr) / (T.vectorSquareRoot(vHat) + veps), w + i)
                    i += width
                }
                while i < range.upperBound {
                    let gi = g[i]
                    m[i] = m[i] + (gi - m[i]) * omb1
                    v[i] = v[i] + (gi * gi - v[i]) * omb2
                    let mHat = (ut1 * m[i]) / den1 + (omut * gi) / den2
                    let vHat = v[i] / denV
                    w[i] = w[i] - (mHat * lr) / (T.scalarSquareRoot(vHat) + eps)
                    i += 1
                }
            }
        }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            let m = momentums[i], v = velocities[i]
            let lr = try c["lr"].value, eps = try c["epsilon"].value
            let omb1 = try c["one_minus_beta_1"].value, omb2 = try c["one_minus_beta_2"].value
            let ut1 = try c["u_t_1"].value, den1 = try c["one_minus_u_product_t_1"].value
            let omut = try c["one_minus_u_t"].value, den2 = try c["one_minus_u_product_t"].value
            let denV = try c["one_minus_beta_2_power"].value
            let g = try densified(gradient), g2 = try densifiedSquares(gradient)
            try m.assign((m.untrackedValue + ((g - m.untrackedValue).untracked * omb1).untracked).untracked)
            try v.assign((v.untrackedValue + ((g2 - v.untrackedValue).untracked * omb2).untracked).untracked)
            // `divide(multiply(1 - u_t, gradient), 1 - u_product_t)`: sparse rows stay rows until the add.
            let second = try densified(try GradientClipping.mapValues(gradient) { try (($0.untracked * omut).untracked / den2).untracked })
            let mHat = try (((m.untrackedValue * ut1).untracked / den1).untracked + second).untracked
            let vHat = try (v.untrackedValue / denV).untracked
            let step = try ((mHat * lr).untracked / (vHat.sqrt().untracked + eps).untracked).untracked
            try variable.assign((variable.untrackedValue - step).untracked)
        }

        open override var ownConfig: JSONObject {
            get throws { ["beta_1": beta1.json, "beta_2": beta2.json, "epsilon": epsilon.json] }
        }

        /// Rebuilds Keras 3's Nadam from its config (`Nadam.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "Nadam", customObjects: customObjects)
            let base = try r.base()
            let beta1 = try r.number("beta_1") ?? 0.9, beta2 = try r.number("beta_2") ?? 0.999
            let epsilon = try r.number("epsilon") ?? 1e-7
            try r.finish(allowed: ["beta_1", "beta_2", "epsilon"])
            try self.init(learningRate: base.learningRate ?? 0.001, beta1: beta1, beta2: beta2, epsilon: epsilon,
                          name: base.name ?? "", options: base.options)
        }
    }
}
