@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// FTRL-Proximal (McMahan et al., 2013), as Keras 3's `Ftrl.update_step` computes it, operation by
    /// operation (its formulas are not the legacy TensorFlow kernel's of ``DescentOptimizers/Ftrl``).
    ///
    /// With `p = learning_rate_power`:
    /// ```
    /// l2ᵣ     = l2 + β / (2·lr)
    /// g̃       = g + (2·l2_shrinkage)·var
    /// n'      = n + g²
    /// z       ← z + (g̃ − ((pow(n', −p) − pow(n, −p)) / lr)·var)
    /// q       = pow(n', −p) / lr + 2·l2ᵣ
    /// var     ← (clip(z, −l1, l1) − z) / q
    /// n       ← n'
    /// ```
    /// `l2`, β, `2·l2_shrinkage` (computed in double), `−p`, `±l1` are Python numbers, each rounded once to
    /// the dtype; `pow` is `powf` for float32. The accumulators `n` start at `initial_accumulator_value`
    /// (as float32, cast to the dtype). Variables, interleaved per variable: `<var>_accumulator`,
    /// `<var>_linear`. Sparse gradients are made dense (g, and g² with each repeated row squared before
    /// the sum), as Keras' `add` with a dense operand does.
    ///
    /// Against Keras 3.15.1 (TensorFlow 2.21 CPU): bit-exact on tensors of fewer than 8 elements. On larger
    /// ones TensorFlow's `pow` is Eigen's vectorized pow, which is not correctly rounded (about a quarter of
    /// float32 `pow(x, 0.5)` results differ from `powf` by an ulp), so results can differ by an ulp per
    /// `pow` (measured worst relative error: 3.8e-7 float32, 1.1e-16 float64).
    open class Ftrl: Optimizer {
        /// The learning rate's power `p` (`learning_rate_power`, ≤ 0).
        public let learningRatePower: ConfigNumber
        /// The accumulators' starting value (`initial_accumulator_value`, ≥ 0).
        public let initialAccumulatorValue: ConfigNumber
        /// L1 regularization strength (`l1_regularization_strength`, ≥ 0).
        public let l1: ConfigNumber
        /// L2 regularization strength (`l2_regularization_strength`, ≥ 0).
        public let l2: ConfigNumber
        /// L2 shrinkage strength, applied to the gradient (`l2_shrinkage_regularization_strength`, ≥ 0).
        public let l2Shrinkage: ConfigNumber
        /// β (`beta`), added as `β / (2·lr)` to the L2 strength.
        public let beta: ConfigNumber
        /// The squared-gradient accumulators `n`, by position of the variables built with.
        public private(set) var squareAccumulators: [Variable] = []
        /// The linear terms `z`.
        public private(set) var linears: [Variable] = []

        /// Creates Keras 3's Ftrl with its defaults.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a negative
        ///   `initial_accumulator_value`, l1, l2 or l2 shrinkage, a positive `learning_rate_power` (Keras'
        ///   `ValueError`s), a hyperparameter float32 cannot hold, and the base's errors.
        public init(learningRate: Hyperparameter = 0.001, learningRatePower: ConfigNumber = -0.5,
                    initialAccumulatorValue: ConfigNumber = 0.1, l1: ConfigNumber = 0.0, l2: ConfigNumber = 0.0,
                    l2Shrinkage: ConfigNumber = 0.0, beta: ConfigNumber = 0.0, name: String = "",
                    options: Options = .defaults) throws {
            if initialAccumulatorValue.value < 0 {
                throw OptimizerError.invalidArgument(
                    field: "initial_accumulator_value", message: "`initial_accumulator_value` needs to be positive or zero. Received: initial_accumulator_value=\(initialAccumulatorValue).")
            }
            if learningRatePower.value > 0 {
                throw OptimizerError.invalidArgument(
                    field: "learning_rate_power", message: "`learning_rate_power` needs to be negative or zero. Received: learning_rate_power=\(learningRatePower).")
            }
            for (field, n) in [("l1_regularization_strength", l1), ("l2_regularization_strength", l2),
                               ("l2_shrinkage_regularization_strength", l2Shrinkage)] where n.value < 0 {
                throw OptimizerError.invalidArgument(
                    field: field, message: "`\(field)` needs to be positive or zero. Received: \(field)=\(n).")
            }
            for (field, n) in [("learning_rate_power", learningRatePower), ("initial_accumulator_value", initialAccumulatorValue),
                               ("l1_regularization_strength", l1), ("l2_regularization_strength", l2),
                               ("l2_shrinkage_regularization_strength", l2Shrinkage), ("beta", beta)] {
                try Float32Field.checkHyperparameter(n.value, field: field, owner: Self.kerasClassName)
            }
            self.learningRatePower = learningRatePower
            self.initialAccumulatorValue = initialAccumulatorValue
            self.l1 = l1
            self.l2 = l2
            self.l2Shrinkage = l2Shrinkage
            self.beta = beta
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "Ftrl" }

        open override func buildVariables(_ variables: [Variable]) throws {
            // Keras: initializers `Constant(initial_accumulator_value)` (a float32 constant cast to the
            // dtype) for the accumulator, zeros for the linear term, interleaved per variable.
            var accumulators: [Variable] = [], linears: [Variable] = []
            let initial = Double(Float(initialAccumulatorValue.value))
            for v in variables {
                accumulators.append(try addVariable(from: v, name: "accumulator", initializer: .constant(initial)))
                linears.append(try addVariable(from: v, name: "linear"))
            }
            squareAccumulators = accumulators
            self.linears = linears
        }

        open override func resetClassBuild() {
            squareAccumulators = []
            linears = []
        }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            let lr = try c["lr"]
            let l2Regularization = c.scalar(l2.value) + c.scalar(beta.value) / (c.scalar(2) * lr)
            c.set("two_l2_reg", l2Regularization * c.scalar(2))
            c.set("two_l2_shrinkage", c.scalar(2 * l2Shrinkage.value))
            c.set("power", c.scalar(-learningRatePower.value))
            c.set("l1", c.scalar(l1.value))
        }

        open override var fusesDenseUpdates: Bool { type(of: self) == Keras3.Ftrl.self }
        open override var denseKernelSlotNames: [String] { ["accumulator", "linear"] }

        open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
            try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
        }

        private func makeKernel<T: FloatingElement>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
            let lr = try c["lr"].value(as: T.self), twoL2 = try c["two_l2_reg"].value(as: T.self)
            let shrink = try c["two_l2_shrinkage"].value(as: T.self), power = try c["power"].value(as: T.self)
            let l1 = try c["l1"].value(as: T.self)
            return { job, range in
                let w = job.variablePointer(T.self), g = job.gradientPointer(T.self)
                let n = job.slotPointer(0, T.self), z = job.slotPointer(1, T.self)
                // The same operations in the same order as Keras 3's update_step (see the doc comment);
                // `pow` has no vector form here, so the loop is scalar.
                for i in range {
                    let gi = g[i], wi = w[i], ni = n[i]
                    let gradToUse = gi + shrink * wi
                    let newN = ni + gi * gi
                    let newPower = T.power(newN, power)
                    z[i] = z[i] + (gradToUse - ((newPower - T.power(ni, power)) / lr) * wi)
                    let quadratic = newPower / lr + twoL2
                    let zi = z[i]
                    // tf.clip_by_value: minimum(z, l1), then maximum(·, −l1).
                    let upper = l1 < zi ? l1 : zi
                    let clipped = upper < -l1 ? -l1 : upper
                    w[i] = (clipped - zi) / quadratic
                    n[i] = newN
                }
            }
        }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            let n = squareAccumulators[i], z = linears[i]
            let lr = try c["lr"].value, twoL2 = try c["two_l2_reg"].value
            let shrink = try c["two_l2_shrinkage"].value, power = try c["power"].value, l1 = try c["l1"].value
            let g = try densified(gradient), g2 = try densifiedSquares(gradient)
            let x = variable.untrackedValue, accumulator = n.untrackedValue
            let gradToUse = try (g + (try x * shrink).untracked).untracked
            let newAccumulator = try (accumulator + g2).untracked
            let newPower = try newAccumulator.pow(power).untracked
            let change = try (try (newPower - (try accumulator.pow(power)).untracked).untracked / lr).untracked
            try z.assign(try (z.untrackedValue + (try gradToUse - (try change * x).untracked).untracked).untracked)
            let quadratic = try (try (newPower / lr).untracked + twoL2).untracked
            let linear = z.untrackedValue
            let clipped = try (try linear.minimum(l1)).untracked.maximum(-l1).untracked
            try variable.assign(try (try (clipped - linear).untracked / quadratic).untracked)
            try n.assign(newAccumulator)
        }

        open override var ownConfig: JSONObject {
            get throws {
                ["learning_rate_power": learningRatePower.json, "initial_accumulator_value": initialAccumulatorValue.json,
                 "l1_regularization_strength": l1.json, "l2_regularization_strength": l2.json,
                 "l2_shrinkage_regularization_strength": l2Shrinkage.json, "beta": beta.json]
            }
        }

        /// Rebuilds Keras 3's Ftrl from its config (`Ftrl.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "Ftrl", customObjects: customObjects)
            let base = try r.base()
            let power = try r.number("learning_rate_power") ?? -0.5
            let initial = try r.number("initial_accumulator_value") ?? 0.1
            let l1 = try r.number("l1_regularization_strength") ?? 0.0
            let l2 = try r.number("l2_regularization_strength") ?? 0.0
            let shrinkage = try r.number("l2_shrinkage_regularization_strength") ?? 0.0
            let beta = try r.number("beta") ?? 0.0
            try r.finish(allowed: ["learning_rate_power", "initial_accumulator_value", "l1_regularization_strength",
                                   "l2_regularization_strength", "l2_shrinkage_regularization_strength", "beta"])
            try self.init(learningRate: base.learningRate ?? 0.001, learningRatePower: power,
                          initialAccumulatorValue: initial, l1: l1, l2: l2, l2Shrinkage: shrinkage, beta: beta,
                          name: base.name ?? "", options: base.options)
        }
    }
}
