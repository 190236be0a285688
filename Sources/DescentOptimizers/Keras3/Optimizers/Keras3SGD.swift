@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Gradient descent with momentum (Keras 3's `SGD`).
    ///
    /// ```
    /// momentum = 0:  var ← var − g·lr
    /// otherwise:     m ← m·momentum − g·lr
    ///                var ← var + m                          (plain)
    ///                var ← var + m·momentum − g·lr          (nesterov, with the new m)
    /// ```
    /// Variables: `<var>_momentum` per variable, only when momentum ≠ 0. Sparse gradients: `g·lr` keeps
    /// its rows, which are subtracted one after the other (repeated indices included) without momentum,
    /// and summed into a dense tensor with it.
    open class SGD: Optimizer {
        /// The momentum, in [0, 1].
        public let momentum: ConfigNumber
        /// Nesterov momentum.
        public let nesterov: Bool
        /// The momentum variables, by position of the variables built with (empty when momentum is 0).
        public private(set) var momentums: [Variable] = []

        /// Creates Keras 3's SGD with its defaults.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a momentum outside [0, 1] and the
        ///   base's errors (see ``Keras3/Optimizer/init(learningRate:name:options:)``).
        public init(learningRate: Hyperparameter = 0.01, momentum: ConfigNumber = 0.0, nesterov: Bool = false,
                    name: String = "", options: Options = .defaults) throws {
            guard momentum.value >= 0 && momentum.value <= 1 else {
                throw OptimizerError.invalidArgument(field: "momentum", message: "`momentum` must be a float between [0, 1], received: \(momentum)")
            }
            self.momentum = momentum
            self.nesterov = nesterov
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "SGD" }

        open override func buildVariables(_ variables: [Variable]) throws {
            if momentum.value != 0 { momentums = try addVariables(from: variables, names: ["momentum"])[0] }
        }

        open override func resetClassBuild() { momentums = [] }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            c.set("momentum", TypedScalar.castFromFloat32(momentum.value, c.dtype))
        }

        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.SGD.self }
        open override var denseKernelSlotNames: [String] { momentum.value != 0 ? ["momentum"] : [] }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
            try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
        }

        private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
            let lr = try c["lr"].value(as: T.self), mu = try c["momentum"].value(as: T.self)
            let hasMomentum = momentum.value != 0, nesterov = self.nesterov
            return { job, range in
                let w = job.variablePointer(T.self), g = job.gradientPointer(T.self)
                let width = T.Vector.scalarCount
                let vlr = T.Vector(repeating: lr), vmu = T.Vector(repeating: mu)
                var i = range.lowerBound
                guard hasMomentum else {
                    while i + width <= range.upperBound {
                        storeVector(loadVector(UnsafePointer(w + i)) - loadVector(g + i) * vlr, w + i)
                        i += width
                    }
                    while i < range.upperBound { w[i] -= g[i] * lr; i += 1 }
                    return
                }
                let m = job.slotPointer(0, T.self)
                while i + width <= range.upperBound {
                    let gl = loadVector(g + i) * vlr
                    let mi = loadVector(UnsafePointer(m + i)) * vmu - gl
                    storeVector(mi, m + i)
                    let step = nesterov ? mi * vmu - gl : mi
                    storeVector(loadVector(UnsafePointer(w + i)) + step, w + i)
                    i += width
                }
                while i < range.upperBound {
                    let gl = g[i] * lr
                    m[i] = m[i] * mu - gl
                    w[i] += nesterov ? m[i] * mu - gl : m[i]
                    i += 1
                }
            }
        }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let lr = try c["lr"].value, mu = try c["momentum"].value
            // `ops.multiply(gradient, learning_rate)`: sparse rows stay rows.
            let scaled = try GradientClipping.mapValues(gradient) { try ($0.untracked * lr).untracked }
            guard momentum.value != 0 else {
                switch scaled {
                case .dense(let t): try variable.assign((variable.untrackedValue - t).untracked)
                case .sparse(let s): try scatterSubtract(s, from: variable)
                }
                return
            }
            let m = momentums[try index(of: variable)]
            let gl = try densified(scaled)
            try m.assign(((m.untrackedValue * mu).untracked - gl).untracked)
            if nesterov {
                try variable.assign((variable.untrackedValue + ((m.untrackedValue * mu).untracked - gl).untracked).untracked)
            } else {
                try variable.assign((variable.untrackedValue + m.untrackedValue).untracked)
            }
        }

        /// `tf.Variable.scatter_sub`: each row subtracted in turn, repeated indices included.
        private func scatterSubtract(_ s: IndexedSlices, from variable: Variable) throws {
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

        open override var ownConfig: JSONObject {
            get throws { ["momentum": momentum.json, "nesterov": .bool(nesterov)] }
        }

        /// Rebuilds Keras 3's SGD from its config (`SGD.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "SGD", customObjects: customObjects)
            let base = try r.base()
            let momentum = try r.number("momentum") ?? 0.0
            let nesterov = try r.bool("nesterov") ?? false
            try r.finish(allowed: ["momentum", "nesterov"])
            try self.init(learningRate: base.learningRate ?? 0.01, momentum: momentum, nesterov: nesterov,
                          name: base.name ?? "", options: base.options)
        }
    }
}
