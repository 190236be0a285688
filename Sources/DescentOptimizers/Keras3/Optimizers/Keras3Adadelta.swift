@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Adadelta (Zeiler, 2012), as Keras 3's `Adadelta.update_step` computes it, operation by operation.
    ///
    /// With `rms(x) = sqrt(x + ε)`:
    /// ```
    /// Eg  ← ρ·Eg + (1 − ρ)·g²
    /// Δ   = −((rms(EΔ)·g) / rms(Eg))
    /// EΔ  ← ρ·EΔ + (1 − ρ)·Δ²
    /// var ← var + lr·Δ
    /// ```
    /// ρ, `1 − ρ` (computed in double) and ε are Python numbers, each rounded once to the dtype. Variables,
    /// interleaved per variable: `<var>_accumulated_grad`, `<var>_accumulated_delta_var`. Sparse
    /// gradients: Δ keeps the rows (each row's `rms(EΔ)` row times it, over its `rms(Eg)` row); the sums
    /// `(1 − ρ)·g²` and `(1 − ρ)·Δ²` are made dense (repeated rows added), and the rows `lr·Δ` are added
    /// one after the other.
    open class Adadelta: Optimizer {
        /// ρ, the decay of both averages.
        public let rho: ConfigNumber
        /// ε, added under both square roots.
        public let epsilon: ConfigNumber
        /// The averages of the squared gradients, by position of the variables built with.
        public private(set) var accumulatedGradients: [Variable] = []
        /// The averages of the squared updates.
        public private(set) var accumulatedDeltas: [Variable] = []

        /// Creates Keras 3's Adadelta with its defaults.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a hyperparameter float32 cannot
        ///   hold, and the base's errors.
        public init(learningRate: Hyperparameter = 0.001, rho: ConfigNumber = 0.95, epsilon: ConfigNumber = 1e-7,
                    name: String = "", options: Options = .defaults) throws {
            for (field, n) in [("rho", rho), ("epsilon", epsilon)] {
                try Float32Field.checkHyperparameter(n.value, field: field, owner: Self.kerasClassName)
            }
            self.rho = rho
            self.epsilon = epsilon
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "Adadelta" }

        open override func buildVariables(_ variables: [Variable]) throws {
            let lists = try addVariables(from: variables, names: ["accumulated_grad", "accumulated_delta_var"])
            accumulatedGradients = lists[0]
            accumulatedDeltas = lists[1]
        }

        open override func resetClassBuild() {
            accumulatedGradients = []
            accumulatedDeltas = []
        }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            c.set("rho", c.scalar(rho.value))
            c.set("one_minus_rho", c.scalar(1 - rho.value))
            c.set("epsilon", c.scalar(epsilon.value))
        }

        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.Adadelta.self }
        open override var denseKernelSlotNames: [String] { ["accumulated_grad", "accumulated_delta_var"] }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
            try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
        }

        private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
            let lr = try c["lr"].value(as: T.self), rho = try c["rho"].value(as: T.self)
            let omr = try c["one_minus_rho"].value(as: T.self), eps = try c["epsilon"].value(as: T.self)
            return { job, range in
                let w = job.variablePointer(T.self), g = job.gradientPointer(T.self)
                let eg = job.slotPointer(0, T.self), ed = job.slotPointer(1, T.self)
                let width = T.Vector.scalarCount
                let vlr = T.Vector(repeating: lr), vrho = T.Vector(repeating: rho)
                let vomr = T.Vector(repeating: omr), veps = T.Vector(repeating: eps)
                var i = range.lowerBound
                // The same operations in the same order as Keras 3's update_step (see the doc comment).
                while i + width <= range.upperBound {
                    let gi = loadVector(g + i)
                    let egi = vrho * loadVector(UnsafePointer(eg + i)) + vomr * (gi * gi)
                    storeVector(egi, eg + i)
                    let edi = loadVector(UnsafePointer(ed + i))
                    let delta = -((T.vectorSquareRoot(edi + veps) * gi) / T.vectorSquareRoot(egi + veps))
                    storeVector(vrho * edi + vomr * (delta * delta), ed + i)
                    storeVector(loadVector(UnsafePointer(w + i)) + vlr * delta, w + i)
                    i += width
                }
                while i < range.upperBound {
                    let gi = g[i]
                    eg[i] = rho * eg[i] + omr * (gi * gi)
                    let delta = -((T.scalarSquareRoot(ed[i] + eps) * gi) / T.scalarSquareRoot(eg[i] + eps))
                    ed[i] = rho * ed[i] + omr * (delta * delta)
                    w[i] = w[i] + lr * delta
                    i += 1
                }
            }
        }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            let eg = accumulatedGradients[i], ed = accumulatedDeltas[i]
            let lr = try c["lr"].value, rho = try c["rho"].value
            let omr = try c["one_minus_rho"].value, eps = try c["epsilon"].value
            func rms(_ x: Tensor) throws -> Tensor { try (x + eps).untracked.sqrt().untracked }
            switch gradient {
            case .dense(let t):
                let g = t.untracked
                try eg.assign(try (try eg.untrackedValue * rho).untracked + (try g.squared().untracked * omr).untracked)
                let delta = (-(try (try rms(ed.untrackedValue) * g).untracked / (try rms(eg.untrackedValue))).untracked).untracked
                try ed.assign(try (try ed.untrackedValue * rho).untracked + (try delta.squared().untracked * omr).untracked)
                try variable.assign(try (variable.untrackedValue + (try delta * lr).untracked).untracked)
            case .sparse(let s):
                let g = Keras3SparseRows(s)
                let squares = try g.mapValues { try $0.squared().untracked * omr }.densified()
                try eg.assign(try ((try eg.untrackedValue * rho).untracked + squares).untracked)
                let delta = try g.multipliedByRows(of: try rms(ed.untrackedValue)).divided(by: try rms(eg.untrackedValue))
                    .mapValues { -$0 }
                let deltaSquares = try delta.mapValues { try $0.squared().untracked * omr }.densified()
                try ed.assign(try ((try ed.untrackedValue * rho).untracked + deltaSquares).untracked)
                try delta.mapValues { try $0 * lr }.scatter(into: variable, subtract: false)
            }
        }

        open override var ownConfig: JSONObject {
            get throws { ["rho": rho.json, "epsilon": epsilon.json] }
        }

        /// Rebuilds Keras 3's Adadelta from its config (`Adadelta.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "Adadelta", customObjects: customObjects)
            let base = try r.base()
            let rho = try r.number("rho") ?? 0.95
            let epsilon = try r.number("epsilon") ?? 1e-7
            try r.finish(allowed: ["rho", "epsilon"])
            try self.init(learningRate: base.learningRate ?? 0.001, rho: rho, epsilon: epsilon, name: base.name ?? "",
                          options: base.options)
        }
    }
}
