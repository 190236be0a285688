@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// RMSprop (Hinton, 2012), as Keras 3's `RMSprop.update_step` computes it, operation by operation.
    ///
    /// ρ, 1 − ρ, ε and the momentum μ are Python numbers (computed in double, rounded once to the dtype):
    /// ```
    /// v   ← ρ·v + (1 − ρ)·g²
    /// a   ← ρ·a + (1 − ρ)·g                      (centered)
    /// d   = (v − a²) + ε   (centered)   or   v + ε
    /// inc = (lr·g) / sqrt(d)
    /// m   ← μ·m + inc;  var ← var − m            (μ > 0)
    /// var ← var − inc                             (μ = 0)
    /// ```
    /// Variables, each list interleaved per variable: `<var>_velocity`; then `<var>_momentum` (μ > 0); then
    /// `<var>_average_gradient` (centered). Sparse gradients: `(1 − ρ)·g²` and `(1 − ρ)·g` keep their rows
    /// (each repeated row squared and scaled) and are summed at their indices when added to the dense
    /// state; `inc` keeps the rows (`lr·gᵢ / sqrt(d[index])`), which are subtracted one after the other
    /// without momentum and summed into the momentum with it. (Keras takes another path when `d` has a
    /// zero or NaN in some row, adding those rows to the increment; Descent keeps the gradient's rows.)
    open class RMSprop: Optimizer {
        /// ρ, the decay of the moving averages.
        public let rho: ConfigNumber
        /// μ, the momentum (0: none).
        public let momentum: ConfigNumber
        /// ε, added to the second moment before its square root.
        public let epsilon: ConfigNumber
        /// Normalize by the estimated variance (the second moment minus the squared mean gradient).
        public let centered: Bool
        /// The moving averages of g², by position of the variables built with.
        public private(set) var velocities: [Variable] = []
        /// The momentums (μ > 0).
        public private(set) var momentums: [Variable] = []
        /// The moving averages of g (centered).
        public private(set) var averageGradients: [Variable] = []

        /// Creates Keras 3's RMSprop with its defaults.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a hyperparameter float32 cannot
        ///   hold and the base's errors (see ``Keras3/Optimizer/init(learningRate:name:options:)``).
        public init(learningRate: Hyperparameter = 0.001, rho: ConfigNumber = 0.9, momentum: ConfigNumber = 0.0,
                    epsilon: ConfigNumber = 1e-7, centered: Bool = false, name: String = "",
                    options: Options = .defaults) throws {
            for (field, n) in [("rho", rho), ("momentum", momentum), ("epsilon", epsilon)] {
                try Float32Field.checkHyperparameter(n.value, field: field, owner: Self.kerasClassName)
            }
            self.rho = rho
            self.momentum = momentum
            self.epsilon = epsilon
            self.centered = centered
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "RMSprop" }

        /// Whether the optimizer keeps momentums (Keras: `self.momentum > 0`).
        var hasMomentum: Bool { momentum.value > 0 }

        open override func buildVariables(_ variables: [Variable]) throws {
            velocities = try addVariables(from: variables, names: ["velocity"])[0]
            if hasMomentum { momentums = try addVariables(from: variables, names: ["momentum"])[0] }
            if centered { averageGradients = try addVariables(from: variables, names: ["average_gradient"])[0] }
        }

        open override func resetClassBuild() {
            velocities = []
            momentums = []
            averageGradients = []
        }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            c.set("rho", c.scalar(rho.value))
            c.set("one_minus_rho", c.scalar(1 - rho.value))
            c.set("momentum", c.scalar(momentum.value))
            c.set("epsilon", c.scalar(epsilon.value))
        }

        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.RMSprop.self }
        open override var denseKernelSlotNames: [String] {
            ["velocity"] + (hasMomentum ? ["momentum"] : []) + (centered ? ["average_gradient"] : [])
        }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
            try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
        }

        private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
            let lr = try c["lr"].value(as: T.self), rho = try c["rho"].value(as: T.self)
            let omr = try c["one_minus_rho"].value(as: T.self), mu = try c["momentum"].value(as: T.self)
            let eps = try c["epsilon"].value(as: T.self)
            let hasMomentum = self.hasMomentum, centered = self.centered
            return { job, range in
                // The same operations in the same order as Keras 3's update_step (see the doc comment).
                let w = job.variablePointer(T.self), g = job.gradientPointer(T.self), v = job.slotPointer(0, T.self)
                let m: UnsafeMutablePointer<T>? = hasMomentum ? job.slotPointer(1, T.self) : nil
                let a: UnsafeMutablePointer<T>? = centered ? job.slotPointer(hasMomentum ? 2 : 1, T.self) : nil
                let width = T.Vector.scalarCount
                let vlr = T.Vector(repeating: lr), vrho = T.Vector(repeating: rho), vomr = T.Vector(repeating: omr)
                let vmu = T.Vector(repeating: mu), veps = T.Vector(repeating: eps)
                var i = range.lowerBound
                while i + width <= range.upperBound {
                    let gi = loadVector(g + i)
                    let vi = vrho * loadVector(UnsafePointer(v + i)) + vomr * (gi * gi)
                    storeVector(vi, v + i)
                    let denominator: T.Vector
                    if let a {
                        let ai = vrho * loadVector(UnsafePointer(a + i)) + vomr * gi
                        storeVector(ai, a + i)
                        denominator = (vi - ai * ai) + veps
                    } else {
                        denominator = vi + veps
                    }
                    let increment = (vlr * gi) / T.vectorSquareRoot(denominator)
                    if let m {
                        let mi = vmu * loadVector(UnsafePointer(m + i)) + increment
                        storeVector(mi, m + i)
                        storeVector(loadVector(UnsafePointer(w + i)) - mi, w + i)
                    } else {
                        storeVector(loadVector(UnsafePointer(w + i)) - increment, w + i)
                    }
                    i += width
                }
                while i < range.upperBound {
                    let gi = g[i]
                    v[i] = rho * v[i] + omr * (gi * gi)
                    let denominator: T
                    if let a {
                        a[i] = rho * a[i] + omr * gi
                        denominator = (v[i] - a[i] * a[i]) + eps
                    } else {
                        denominator = v[i] + eps
                    }
                    let increment = (lr * gi) / T.scalarSquareRoot(denominator)
                    if let m {
                        m[i] = mu * m[i] + increment
                        w[i] = w[i] - m[i]
                    } else {
                        w[i] = w[i] - increment
                    }
                    i += 1
                }
            }
        }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            let lr = try c["lr"].value, rho = try c["rho"].value, omr = try c["one_minus_rho"].value
            let mu = try c["momentum"].value, eps = try c["epsilon"].value
            let velocity = velocities[i]
            // `ops.multiply(1 - rho, ops.square(gradient))`: sparse rows squared and scaled, then summed.
            let scaledSquares = try densified(try GradientClipping.mapValues(gradient) { try ($0.untracked.squared() * omr).untracked })
            try velocity.assign(((velocity.untrackedValue * rho).untracked + scaledSquares).untracked)
            let denominator: Tensor
            if centered {
                let average = averageGradients[i]
                let scaled = try densified(try GradientClipping.mapValues(gradient) { try ($0.untracked * omr).untracked })
                try average.assign(((average.untrackedValue * rho).untracked + scaled).untracked)
                denominator = try ((velocity.untrackedValue - average.untrackedValue.squared()).untracked + eps).untracked
            } else {
                denominator = try (velocity.untrackedValue + eps).untracked
            }
            let root = try denominator.sqrt().untracked
            let increment: Gradient
            switch gradient {
            case .dense(let g): increment = .dense(try ((g.untracked * lr).untracked / root).untracked)
            case .sparse(let s):
                // `divide(IndexedSlices, dense)`: each row divided by the divisor's row at its index.
                let scaled = try (s.values.untracked * lr).untracked
                increment = .sparse(try IndexedSlices(values: try keras3DivideRows(scaled, by: root, at: s.indices),
                                                      indices: s.indices, denseShape: s.denseShape))
            }
            if hasMomentum {
                let m = momentums[i]
                try m.assign(((m.untrackedValue * mu).untracked + (try densified(increment))).untracked)
                try variable.assign((variable.untrackedValue - m.untrackedValue).untracked)
            } else {
                switch increment {
                case .dense(let t): try variable.assign((variable.untrackedValue - t).untracked)
                case .sparse(let s): try keras3ScatterSubtract(s, from: variable)
                }
            }
        }

        open override var ownConfig: JSONObject {
            get throws {
                ["rho": rho.json, "momentum": momentum.json, "epsilon": epsilon.json, "centered": .bool(centered)]
            }
        }

        /// Rebuilds Keras 3's RMSprop from its config (`RMSprop.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "RMSprop", customObjects: customObjects)
            let base = try r.base()
            let rho = try r.number("rho") ?? 0.9, momentum = try r.number("momentum") ?? 0.0
            let epsilon = try r.number("epsilon") ?? 1e-7
            let centered = try r.bool("centered") ?? false
            try r.finish(allowed: ["rho", "momentum", "epsilon", "centered"])
            try self.init(learningRate: base.learningRate ?? 0.001, rho: rho, momentum: momentum, epsilon: epsilon,
                          centered: centered, name: base.name ?? "", options: base.options)
        }
    }
}

/// `rows[r] / divisor[indices[r]]` for each row (TensorFlow's `gather` then `divide`), in the rows' dtype.
func keras3DivideRows(_ rows: Tensor, by divisor: Tensor, at indices: [Int]) throws -> Tensor {
    let rowSize = indices.isEmpty ? 0 : rows.scalarCount / indices.count
    func run<T: FloatingElement>(_: T.Type) throws -> Tensor {
        var out = [T](repeating: 0, count: rows.scalarCount)
        withExtendedLifetime((rows, divisor)) {
            let src = rows.unsafeStorage.base.assumingMemoryBound(to: T.self)
            let d = divisor.unsafeStorage.base.assumingMemoryBound(to: T.self)
            for (r, index) in indices.enumerated() {
                for j in 0..<rowSize { out[r * rowSize + j] = src[r * rowSize + j] / d[index * rowSize + j] }
            }
        }
        return try Tensor(shape: rows.shape, scalars: out)
    }
    return rows.dtype == .float32 ? try run(Float.self) : try run(Double.self)
}

/// `tf.Variable.scatter_sub`: each row subtracted in turn, repeated indices included.
func keras3ScatterSubtract(_ s: IndexedSlices, from variable: Variable) throws {
    let storage = variable.uniqueStorageForUpdate()
    let row = s.rowSize
    func run<T: FloatingElement>(_: T.Type) {
        let w = storage.base.assumingMemoryBound(to: T.self), src = s.values.unsafeStorage.base.assumingMemoryBound(to: T.self)
        for (r, index) in s.indices.enumerated() {
            for j in 0..<row { w[index * row + j] -= src[r * row + j] }
        }
    }
    withExtendedLifetime((storage, s)) {
        if variable.dtype == .float32 { run(Float.self) } else { run(Double.self) }
    }
}
