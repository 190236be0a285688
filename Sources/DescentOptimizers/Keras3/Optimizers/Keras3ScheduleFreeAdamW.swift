@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Schedule-Free AdamW (Defazio et al., 2024), as Keras 3.15.1's `ScheduleFreeAdamW.update_step`
    /// computes it with the TensorFlow backend, operation by operation.
    ///
    /// The variable holds y (the interpolation the model is evaluated at); the slot `momentum` holds z (the
    /// sequence the steps are applied to; it starts as a copy of the variable), `velocity` the second moment.
    /// With `t = iterations + 1`, β₁, β₂, ε cast to the dtype (float32 first), `lr` times
    /// `min(t / warmup_steps, 1)` when `warmup_steps` > 0, and every operation rounded to the dtype:
    /// ```
    /// v  ← v + (g² − v)·(1 − β₂)
    /// z  ← z − (lr·g) / (sqrt(v / (1 − pow(β₂, t))) + ε)
    /// x  = (y − (1 − β₁)·z) / β₁
    /// x' = (1 − 1/t)·x + (1/t)·z
    /// y  ← (1 − β₁)·z + β₁·x'
    /// ```
    /// The z in the third line is the **new** one: Keras reads `momentum_old = momentum.value`, which with
    /// the TensorFlow backend is the `tf.Variable` itself, so it sees the `assign_sub` just made (checked
    /// against Keras 3.15.1: bit for bit with the new z, 2e-2 away with the old one). `1 − β₁`, `1 − β₂`,
    /// `1 − 1/t` are computed in the dtype (β are tensors there, unlike Adam's Python `1 - beta`).
    ///
    /// Variables, interleaved per variable: `<var>_momentum`, `<var>_velocity`. Sparse gradients: `g²` squares
    /// each repeated row before the sum; `lr·g / denom` divides each row by its row of the denominator and
    /// is subtracted from z row by row, repeated indices included (Keras' `IndexedSlices` division and
    /// `scatter_sub`); rows outside the indices whose denominator holds a zero or NaN get `0 / denom`
    /// subtracted, as Keras' union of indices does.
    open class ScheduleFreeAdamW: Optimizer {
        /// β₁: the interpolation between z and the average x.
        public let beta1: ConfigNumber
        /// β₂: the second moment's decay.
        public let beta2: ConfigNumber
        /// ε, added to the denominator.
        public let epsilon: ConfigNumber
        /// The learning rate rises linearly over this many steps (0 or less: no warmup).
        public let warmupSteps: ConfigNumber
        /// z, by position of the variables built with.
        public private(set) var momentums: [Variable] = []
        /// The second moments.
        public private(set) var velocities: [Variable] = []

        /// Creates Keras 3's ScheduleFreeAdamW with its defaults.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a number float32 cannot hold and
        ///   the base's errors (see ``Keras3/Optimizer/init(learningRate:name:options:)``).
        public init(learningRate: Hyperparameter = 0.0025, beta1: ConfigNumber = 0.9, beta2: ConfigNumber = 0.999,
                    epsilon: ConfigNumber = 1e-8, warmupSteps: ConfigNumber = 0, name: String = "",
                    options: Options = .defaults) throws {
            for (field, n) in [("beta_1", beta1), ("beta_2", beta2), ("epsilon", epsilon), ("warmup_steps", warmupSteps)] {
                try Float32Field.checkHyperparameter(n.value, field: field, owner: Self.kerasClassName)
            }
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.warmupSteps = warmupSteps
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "ScheduleFreeAdamW" }

        open override func buildVariables(_ variables: [Variable]) throws {
            let lists = try addVariables(from: variables, names: ["momentum", "velocity"])
            // `self.assign(momentum, ops.copy(var))`.
            for (z, v) in zip(lists[0], variables) { try z.assign(v.untrackedValue) }
            momentums = lists[0]
            velocities = lists[1]
        }

        open override func resetClassBuild() {
            momentums = []
            velocities = []
        }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            let t = try c["local_step"]
            var lr = try c["lr"]
            if warmupSteps.value > 0 {
                // `ops.cast(self.warmup_steps, dtype)`; `ops.minimum(t / warmup, 1.0)`.
                let ratio = t / TypedScalar.castFromFloat32(warmupSteps.value, c.dtype)
                lr = lr * (ratio.value < 1 ? ratio : c.scalar(1))
            }
            let beta1 = TypedScalar.castFromFloat32(self.beta1.value, c.dtype)
            let beta2 = TypedScalar.castFromFloat32(self.beta2.value, c.dtype)
            let weight = 1.0 / t
            c.set("scaled_lr", lr)
            c.set("beta_1", beta1)
            c.set("one_minus_beta_1", 1 - beta1)
            c.set("one_minus_beta_2", 1 - beta2)
            c.set("bias_correction_2", 1 - beta2.pow(t))
            c.set("epsilon", TypedScalar.castFromFloat32(epsilon.value, c.dtype))
            c.set("weight", weight)
            c.set("one_minus_weight", 1 - weight)
        }

        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.ScheduleFreeAdamW.self }
        open override var denseKernelSlotNames: [String] { ["momentum", "velocity"] }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
            try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
        }

        private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
            let lr = try c["scaled_lr"].value(as: T.self), b1 = try c["beta_1"].value(as: T.self)
            let omb1 = try c["one_minus_beta_1"].value(as: T.self), omb2 = try c["one_minus_beta_2"].value(as: T.self)
            let bc2 = try c["bias_correction_2"].value(as: T.self), eps = try c["epsilon"].value(as: T.self)
            let w = try c["weight"].value(as: T.self), omw = try c["one_minus_weight"].value(as: T.self)
            return { job, range in
                // The same operations in the same order as Keras 3's update_step (see the doc comment).
                let y = job.variablePointer(T.self), g = job.gradientPointer(T.self)
                let z = job.slotPointer(0, T.self), v = job.slotPointer(1, T.self)
                let width = T.Vector.scalarCount
                let vlr = T.Vector(repeating: lr), vb1 = T.Vector(repeating: b1), vomb1 = T.Vector(repeating: omb1)
                let vomb2 = T.Vector(repeating: omb2), vbc2 = T.Vector(repeating: bc2), veps = T.Vector(repeating: eps)
                let vw = T.Vector(repeating: w), vomw = T.Vector(repeating: omw)
                var i = range.lowerBound
                while i + width <= range.upperBound {
                    let gi = loadVector(g + i)
                    let vi = loadVector(UnsafePointer(v + i)) + (gi * gi - loadVector(UnsafePointer(v + i))) * vomb2
                    storeVector(vi, v + i)
                    let zi = loadVector(UnsafePointer(z + i)) - (vlr * gi) / (T.vectorSquareRoot(vi / vbc2) + veps)
                    storeVector(zi, z + i)
                    let xOld = (loadVector(UnsafePointer(y + i)) - vomb1 * zi) / vb1
                    let xNew = vomw * xOld + vw * zi
                    storeVector(vomb1 * zi + vb1 * xNew, y + i)
                    i += width
                }
                while i < range.upperBound {
                    v[i] = v[i] + (g[i] * g[i] - v[i]) * omb2
                    z[i] = z[i] - (lr * g[i]) / (T.scalarSquareRoot(v[i] / bc2) + eps)
                    let xOld = (y[i] - omb1 * z[i]) / b1
                    let xNew = omw * xOld + w * z[i]
                    y[i] = omb1 * z[i] + b1 * xNew
                    i += 1
                }
            }
        }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            let z = momentums[i], v = velocities[i]
            let lr = try c["scaled_lr"].value, b1 = try c["beta_1"].value, eps = try c["epsilon"].value
            let omb1 = try c["one_minus_beta_1"].value, omb2 = try c["one_minus_beta_2"].value
            let bc2 = try c["bias_correction_2"].value
            let w = try c["weight"].value, omw = try c["one_minus_weight"].value
            try v.assign(try v.untrackedValue + (try densifiedSquares(gradient) - v.untrackedValue) * omb2)
            let denom = try (v.untrackedValue / bc2).sqrt() + eps
            switch gradient {
            case .dense(let g):
                try z.assign(try z.untrackedValue - (try g.untracked * lr) / denom)
            case .sparse(let s):
                try subtractScaledRows(s, lr: lr, denom: denom, from: z)
            }
            let zNew = z.untrackedValue
            let xOld = try (variable.untrackedValue - zNew * omb1) / b1
            let xNew = try xOld * omw + zNew * w
            try variable.assign(try zNew * omb1 + xNew * b1)
        }

        /// `assign_sub(z, divide(multiply(lr, g), denom))` for `IndexedSlices` g: each row `lr·g_r` divided by
        /// the denominator's row at its index, subtracted in turn; rows outside the indices whose denominator
        /// holds a zero or NaN get `0 / denom` (Keras' union of indices).
        private func subtractScaledRows(_ s: IndexedSlices, lr: Double, denom: Tensor, from z: Variable) throws {
            let scaled = try (s.values.untracked * lr).untracked
            let storage = z.uniqueStorageForUpdate()
            let row = s.rowSize, rows = s.denseShape.first ?? 0
            func run<T: FloatingElement>(_: T.Type) {
                let zp = storage.base.assumingMemoryBound(to: T.self)
                let src = scaled.unsafeStorage.base.assumingMemoryBound(to: T.self)
                let d = denom.unsafeStorage.base.assumingMemoryBound(to: T.self)
                var touched = [Bool](repeating: false, count: rows)
                for (r, index) in s.indices.enumerated() {
                    touched[index] = true
                    for j in 0..<row { zp[index * row + j] -= src[r * row + j] / d[index * row + j] }
                }
                for index in 0..<rows where !touched[index] {
                    let base = index * row
                    guard (0..<row).contains(where: { d[base + $0] == 0 || d[base + $0].isNaN }) else { continue }
                    for j in 0..<row { zp[base + j] -= T(0) / d[base + j] }
                }
            }
            withExtendedLifetime((storage, scaled, denom)) {
                if z.dtype == .float32 { run(Float.self) } else { run(Double.self) }
            }
        }

        open override var ownConfig: JSONObject {
            get throws {
                ["beta_1": beta1.json, "beta_2": beta2.json, "epsilon": epsilon.json, "warmup_steps": warmupSteps.json]
            }
        }

        /// Rebuilds Keras 3's ScheduleFreeAdamW from its config (`ScheduleFreeAdamW.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "ScheduleFreeAdamW", customObjects: customObjects)
            let base = try r.base()
            let beta1 = try r.number("beta_1") ?? 0.9, beta2 = try r.number("beta_2") ?? 0.999
            let epsilon = try r.number("epsilon") ?? 1e-8
            let warmupSteps = try r.number("warmup_steps") ?? 0
            try r.finish(allowed: ["beta_1", "beta_2", "epsilon", "warmup_steps"])
            try self.init(learningRate: base.learningRate ?? 0.0025, beta1: beta1, beta2: beta2, epsilon: epsilon,
                          warmupSteps: warmupSteps, name: base.name ?? "", options: base.options)
        }
    }
}
