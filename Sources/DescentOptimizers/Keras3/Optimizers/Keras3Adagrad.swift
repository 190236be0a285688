@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Adagrad (Duchi et al.), as Keras 3's `Adagrad.update_step` computes it, operation by operation.
    ///
    /// ```
    /// acc ← acc + g²
    /// var ← var − (lr·g) / sqrt(acc + ε)
    /// ```
    /// ε is a Python number (rounded once to the dtype); the accumulators start at
    /// `initial_accumulator_value` (Keras' `Constant` initializer: the number as float32, cast to the
    /// dtype). Variables: `<var>_accumulator` per variable. Sparse gradients: the squared rows are added
    /// one after the other (`scatter_add`), the rows `lr·g` are divided by their rows of `sqrt(acc + ε)`
    /// and subtracted one after the other.
    open class Adagrad: Optimizer {
        /// The accumulators' starting value (`initial_accumulator_value`).
        public let initialAccumulatorValue: ConfigNumber
        /// ε, added to the accumulator under the square root.
        public let epsilon: ConfigNumber
        /// The accumulators, by position of the variables built with.
        public private(set) var squareAccumulators: [Variable] = []

        /// Creates Keras 3's Adagrad with its defaults.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a hyperparameter float32 cannot
        ///   hold, and the base's errors.
        public init(learningRate: Hyperparameter = 0.001, initialAccumulatorValue: ConfigNumber = 0.1,
                    epsilon: ConfigNumber = 1e-7, name: String = "", options: Options = .defaults) throws {
            for (field, n) in [("initial_accumulator_value", initialAccumulatorValue), ("epsilon", epsilon)] {
                try Float32Field.checkHyperparameter(n.value, field: field, owner: Self.kerasClassName)
            }
            self.initialAccumulatorValue = initialAccumulatorValue
            self.epsilon = epsilon
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "Adagrad" }

        open override func buildVariables(_ variables: [Variable]) throws {
            // `initializers.Constant(value)`: `ops.cast(value, dtype) * ones`, the value a float32 constant.
            squareAccumulators = try addVariables(from: variables, names: ["accumulator"],
                                             initializer: .constant(Double(Float(initialAccumulatorValue.value))))[0]
        }

        open override func resetClassBuild() { squareAccumulators = [] }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            c.set("epsilon", c.scalar(epsilon.value))
        }

        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.Adagrad.self }
        open override var denseKernelSlotNames: [String] { ["accumulator"] }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
            try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
        }

        private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
            let lr = try c["lr"].value(as: T.self), eps = try c["epsilon"].value(as: T.self)
            return { job, range in
                let w = job.variablePointer(T.self), g = job.gradientPointer(T.self), a = job.slotPointer(0, T.self)
                let width = T.Vector.scalarCount
                let vlr = T.Vector(repeating: lr), veps = T.Vector(repeating: eps)
                var i = range.lowerBound
                // The same operations in the same order as Keras 3's update_step (see the doc comment).
                while i + width <= range.upperBound {
                    let gi = loadVector(g + i)
                    let acc = loadVector(UnsafePointer(a + i)) + gi * gi
                    storeVector(acc, a + i)
                    storeVector(loadVector(UnsafePointer(w + i)) - (vlr * gi) / T.vectorSquareRoot(acc + veps), w + i)
                    i += width
                }
                while i < range.upperBound {
                    let gi = g[i]
                    a[i] = a[i] + gi * gi
                    w[i] = w[i] - (lr * gi) / T.scalarSquareRoot(a[i] + eps)
                    i += 1
                }
            }
        }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let accumulator = squareAccumulators[try index(of: variable)]
            let lr = try c["lr"].value, eps = try c["epsilon"].value
            switch gradient {
            case .dense(let t):
                let g = t.untracked
                try accumulator.assign(try (accumulator.untrackedValue + (try g.squared()).untracked).untracked)
                let denominator = try (accumulator.untrackedValue + eps).untracked.sqrt().untracked
                try variable.assign(try (variable.untrackedValue - (try (g * lr).untracked / denominator).untracked).untracked)
            case .sparse(let s):
                let rows = Keras3SparseRows(s)
                try rows.mapValues { try $0.squared() }.scatter(into: accumulator, subtract: false)
                let denominator = try (accumulator.untrackedValue + eps).untracked.sqrt().untracked
                try rows.mapValues { try $0 * lr }.divided(by: denominator).scatter(into: variable, subtract: true)
            }
        }

        open override var ownConfig: JSONObject {
            get throws { ["initial_accumulator_value": initialAccumulatorValue.json, "epsilon": epsilon.json] }
        }

        /// Rebuilds Keras 3's Adagrad from its config (`Adagrad.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "Adagrad", customObjects: customObjects)
            let base = try r.base()
            let initial = try r.number("initial_accumulator_value") ?? 0.1
            let epsilon = try r.number("epsilon") ?? 1e-7
            try r.finish(allowed: ["initial_accumulator_value", "epsilon"])
            try self.init(learningRate: base.learningRate ?? 0.001, initialAccumulatorValue: initial, epsilon: epsilon,
                          name: base.name ?? "", options: base.options)
        }
    }
}
