@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// LAMB (You et al., layer-wise adaptive moments), as Keras 3's `Lamb.update_step` computes it,
    /// operation by operation.
    ///
    /// With `t = iterations + 1`, `β₁ᵗ = pow(β₁, t)`, `β₂ᵗ = pow(β₂, t)` (β cast to the dtype); `1 − β₁`,
    /// `1 − β₂` and ε are Python numbers (computed in double, rounded once to the dtype):
    /// ```
    /// m     ← m + (g − m)·(1 − β₁)
    /// v     ← v + (g² − v)·(1 − β₂)
    /// u     = (m/(1 − β₁ᵗ)) / (sqrt(v/(1 − β₂ᵗ)) + ε)
    /// ‖w‖   = sqrt(sum(var²)),  ‖u‖ = sqrt(sum(u²))               (whole variable, after weight decay)
    /// ratio = ‖w‖/‖u‖ if ‖w‖ > 0 and ‖u‖ > 0, else 1
    /// var   ← var − (ratio·lr)·u
    /// ```
    /// The sums are the tensor reductions ``DescentTensor/Tensor/sum(axes:keepDims:)`` uses (the order of
    /// TensorFlow's `reduce_sum` that the legacy clip-by-norm matches). Variables, interleaved per
    /// variable: `<var>_momentum`, `<var>_velocity`. Sparse gradients are made dense (g, and g² with each
    /// repeated row squared before the sum). Dense gradients go through a fused two-pass loop inside
    /// ``updateStep(_:_:_:)`` (the norms need the whole variable, so there is no per-range kernel); a
    /// subclass (``fusesDenseUpdates`` false) gets the operation-by-operation path.
    open class Lamb: Optimizer {
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

        /// Creates Keras 3's Lamb with its defaults.
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

        open override class var kerasClassName: String { "Lamb" }

        open override func buildVariables(_ variables: [Variable]) throws {
            let lists = try addVariables(from: variables, names: ["momentum", "velocity"])
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
            c.set("one_minus_beta_1", c.scalar(1 - beta1.value))
            c.set("one_minus_beta_2", c.scalar(1 - beta2.value))
            c.set("one_minus_beta_1_power", 1 - TypedScalar.castFromFloat32(beta1.value, c.dtype).pow(t))
            c.set("one_minus_beta_2_power", 1 - TypedScalar.castFromFloat32(beta2.value, c.dtype).pow(t))
            c.set("epsilon", c.scalar(epsilon.value))
        }

        /// True for the exact type: dense gradients then take the fused two-pass loop in
        /// ``updateStep(_:_:_:)``. ``denseKernel(for:)`` is `nil` (no per-range kernel can know the norms),
        /// so the lifecycle calls ``updateStep(_:_:_:)`` for every variable.
        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.Lamb.self }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? { nil }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            if fusesDenseUpdates, case .dense(let g) = gradient {
                if variable.dtype == .float32 {
                    try fusedStep(Float.self, g.untracked, variable, momentums[i], velocities[i], c)
                } else {
                    try fusedStep(Double.self, g.untracked, variable, momentums[i], velocities[i], c)
                }
                return
            }
            let m = momentums[i], v = velocities[i]
            let lr = try c["lr"], eps = try c["epsilon"].value
            let omb1 = try c["one_minus_beta_1"].value, omb2 = try c["one_minus_beta_2"].value
            let omb1p = try c["one_minus_beta_1_power"].value, omb2p = try c["one_minus_beta_2_power"].value
            let g = try densified(gradient), g2 = try densifiedSquares(gradient)
            try m.assign((m.untrackedValue + ((g - m.untrackedValue).untracked * omb1).untracked).untracked)
            try v.assign((v.untrackedValue + ((g2 - v.untrackedValue).untracked * omb2).untracked).untracked)
            let mHat = try (m.untrackedValue / omb1p).untracked
            let vSqrt = try ((v.untrackedValue / omb2p).untracked.sqrt().untracked + eps).untracked
            let update = try (mHat / vSqrt).untracked
            let scale = Self.ratio(weightNorm: try Self.norm(variable.untrackedValue), updateNorm: try Self.norm(update)) * lr
            try variable.assign((variable.untrackedValue - (update * scale.value).untracked).untracked)
        }

        /// `sqrt(sum(x²))` in `x`'s dtype.
        static func norm(_ x: Tensor) throws -> TypedScalar {
            TypedScalar(try x.squared().sum().item(), x.dtype).squareRoot()
        }

        /// Keras' `where(w_norm > 0, where(g_norm > 0, w_norm / g_norm, 1.0), 1.0)`.
        static func ratio(weightNorm w: TypedScalar, updateNorm u: TypedScalar) -> TypedScalar {
            w.value > 0 && u.value > 0 ? w / u : TypedScalar(1, w.dtype)
        }

        /// The dense update in two passes: moments and the update direction (into a scratch tensor), the
        /// norms, then the variable. The same operations in the same order as the reference path.
        private func fusedStep<T: FloatingElement>(_: T.Type, _ gradient: Tensor, _ variable: Variable, _ m: Variable,
                                                   _ v: Variable, _ c: Coefficients) throws {
            let lr = try c["lr"], eps = try c["epsilon"].value(as: T.self)
            let omb1 = try c["one_minus_beta_1"].value(as: T.self), omb2 = try c["one_minus_beta_2"].value(as: T.self)
            let omb1p = try c["one_minus_beta_1_power"].value(as: T.self)
            let omb2p = try c["one_minus_beta_2_power"].value(as: T.self)
            let count = variable.scalarCount
            var update = [T](repeating: 0, count: count)
            let mStorage = m.uniqueStorageForUpdate(), vStorage = v.uniqueStorageForUpdate()
            withExtendedLifetime((gradient, mStorage, vStorage)) {
                let g = gradient.unsafeStorage.base.assumingMemoryBound(to: T.self)
                let mp = mStorage.base.assumingMemoryBound(to: T.self), vp = vStorage.base.assumingMemoryBound(to: T.self)
                update.withUnsafeMutableBufferPointer { buffer in
                    let u = buffer.baseAddress!
                    let width = T.Vector.scalarCount
                    let vomb1 = T.Vector(repeating: omb1), vomb2 = T.Vector(repeating: omb2)
                    let vomb1p = T.Vector(repeating: omb1p), vomb2p = T.Vector(repeating: omb2p), veps = T.Vector(repeating: eps)
                    var i = 0
                    while i + width <= count {
                        let gi = loadVector(UnsafePointer(g + i))
                        var mi = loadVector(UnsafePointer(mp + i)), vi = loadVector(UnsafePointer(vp + i))
                        mi = mi + (gi - mi) * vomb1
                        vi = vi + (gi * gi - vi) * vomb2
                        storeVector(mi, mp + i)
                        storeVector(vi, vp + i)
                        storeVector((mi / vomb1p) / (T.vectorSquareRoot(vi / vomb2p) + veps), u + i)
                        i += width
                    }
                    while i < count {
                        let gi = g[i]
                        mp[i] = mp[i] + (gi - mp[i]) * omb1
                        vp[i] = vp[i] + (gi * gi - vp[i]) * omb2
                        u[i] = (mp[i] / omb1p) / (T.scalarSquareRoot(vp[i] / omb2p) + eps)
                        i += 1
                    }
                }
            }
            let updateTensor = try Tensor(shape: variable.shape, scalars: update)
            let scale = Self.ratio(weightNorm: try Self.norm(variable.untrackedValue), updateNorm: try Self.norm(updateTensor)) * lr
            let s = scale.value(as: T.self)
            let wStorage = variable.uniqueStorageForUpdate()
            withExtendedLifetime(wStorage) {
                let w = wStorage.base.assumingMemoryBound(to: T.self)
                update.withUnsafeBufferPointer { buffer in
                    let u = buffer.baseAddress!
                    let width = T.Vector.scalarCount, vs = T.Vector(repeating: s)
                    var i = 0
                    while i + width <= count {
                        storeVector(loadVector(UnsafePointer(w + i)) - loadVector(u + i) * vs, w + i)
                        i += width
                    }
                    while i < count { w[i] = w[i] - u[i] * s; i += 1 }
                }
            }
        }

        open override var ownConfig: JSONObject {
            get throws { ["beta_1": beta1.json, "beta_2": beta2.json, "epsilon": epsilon.json] }
        }

        /// Rebuilds Keras 3's Lamb from its config (`Lamb.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "Lamb", customObjects: customObjects)
            let base = try r.base()
            let beta1 = try r.number("beta_1") ?? 0.9, beta2 = try r.number("beta_2") ?? 0.999
            let epsilon = try r.number("epsilon") ?? 1e-7
            try r.finish(allowed: ["beta_1", "beta_2", "epsilon"])
            try self.init(learningRate: base.learningRate ?? 0.001, beta1: beta1, beta2: beta2, epsilon: epsilon,
                          name: base.name ?? "", options: base.options)
        }
    }
}
