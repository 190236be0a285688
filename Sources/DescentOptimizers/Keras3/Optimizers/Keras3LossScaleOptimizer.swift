@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor
import DescentDistribute

extension Keras3 {
    /// Dynamic loss scaling around another Keras 3 optimizer (Keras 3's `LossScaleOptimizer`), for
    /// mixed-precision training: the loss is multiplied by a scale before the gradients are taken
    /// (``scaleLoss(_:)``), and each step
    /// ```
    /// all gradients finite:  inner.apply(g / scale); then, after dynamic_growth_steps such steps in a
    ///                        row, scale ← scale·2 (and the count restarts)
    /// otherwise:             skip the step (the inner optimizer does not move), scale ← scale·0.5
    /// ```
    /// Variables: its own `iteration`, `learning_rate` (unused: the inner optimizer's rate is the rate),
    /// then at the build `step_counter` (int64) and `dynamic_scale` (float32, `initial_scale`), then the
    /// inner optimizer's, whose per-variable ones are named inside this optimizer's scope
    /// (`"lso/adam/dense_kernel_momentum"`), as Keras builds them. ``kerasIterations`` is the inner
    /// optimizer's. Under a strategy, a step is skipped when the gradients of any replica are not finite
    /// (Keras decides on the first replica's), so the replicas stay identical.
    open class LossScaleOptimizer: Optimizer {
        /// The optimizer that applies the unscaled gradients.
        public let innerOptimizer: Optimizer
        /// The scale before the first step.
        public let initialScale: ConfigNumber
        /// Finite steps in a row after which the scale doubles.
        public let dynamicGrowthSteps: Int
        /// Finite steps since the scale last changed (created at the build).
        public private(set) var stepCounter: Variable?
        /// The current scale (created at the build).
        public private(set) var dynamicScale: Variable?

        /// Wraps `innerOptimizer` (whose own `loss_scale_factor` is cleared, as in Keras).
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a wrapper as the inner
        ///   optimizer, `dynamicGrowthSteps` < 1 or a scale that is not a positive float32.
        public init(innerOptimizer: Optimizer, initialScale: ConfigNumber = 32768.0, dynamicGrowthSteps: Int = 2000,
                    name: String = "") throws {
            if innerOptimizer is LossScaleOptimizer {
                throw OptimizerError.invalidArgument(field: "inner_optimizer", message: "a LossScaleOptimizer cannot wrap another LossScaleOptimizer")
            }
            guard dynamicGrowthSteps >= 1 else {
                throw OptimizerError.invalidArgument(field: "dynamic_growth_steps", message: "must be an integer >= 1, received: \(dynamicGrowthSteps)")
            }
            guard initialScale.value > 0, Float(initialScale.value).isFinite else {
                throw OptimizerError.invalidArgument(field: "initial_scale", message: "must be a positive float32 number, received: \(initialScale)")
            }
            self.innerOptimizer = innerOptimizer
            self.initialScale = initialScale
            self.dynamicGrowthSteps = dynamicGrowthSteps
            try super.init(learningRate: 0.0, name: name, options: .defaults)
            innerOptimizer.options.lossScaleFactor = nil
        }

        open override class var kerasClassName: String { "LossScaleOptimizer" }

        override var childOptimizers: [DescentOptimizers.Optimizer] { [innerOptimizer] }

        open override var kerasIterations: Int64 { innerOptimizer.kerasIterations }

        /// The inner optimizer's learning rate.
        open override var learningRate: Hyperparameter {
            get { innerOptimizer.learningRate }
            set { innerOptimizer.learningRate = newValue }
        }

        open override func buildVariables(_ variables: [Variable]) throws {
            stepCounter = try addVariable(name: "step_counter", shape: [], dtype: .int64)
            let scale = try addVariable(name: "dynamic_scale", shape: [], dtype: .float32)
            try scale.assign(Tensor(Float(initialScale.value)))
            dynamicScale = scale
            innerOptimizer.buildScope = "\(buildScope)\(name)/"
            try innerOptimizer.build(variables)
        }

        open override func resetClassBuild() {
            stepCounter = nil
            dynamicScale = nil
            if innerOptimizer.isBuilt { innerOptimizer.resetBuild() }
        }

        /// The loss times the current scale (`initial_scale` before the build).
        open override func scaleLoss(_ loss: Tensor) throws -> Tensor {
            let scale = try dynamicScale.map { try $0.untrackedValue.item() as Double } ?? initialScale.value
            return try loss * TypedScalar(scale, loss.dtype).value
        }

        open override func finalizeVariableValues() throws { try innerOptimizer.finalizeVariableValues() }

        /// Returns the inner optimizer's ``iterationCount`` (this optimizer's own `iteration` stays 0, as in
        /// Keras), the count that a finite step advances.
        override func applyKeras3(_ gradsAndVars: [(Gradient?, Variable)], aggregate: Bool) throws -> Int64 {
            // Check every pair before the build, so a bad call changes nothing.
            for (g, v) in gradsAndVars {
                guard let g else { continue }
                try checkGradient(g, for: v)
                if case .sparse(let s) = g { try checkSparseGradient(s, for: v) }
            }
            let wasBuilt = isBuilt, mark = weightsMark
            try build(gradsAndVars.map { $0.1 })
            guard let stepCounter, let dynamicScale else { preconditionFailure("built above") }
            var finite = true
            for (g, _) in gradsAndVars {
                guard let g else { continue }
                if !GradientClipping.values(of: g).doubles.allSatisfy(\.isFinite) { finite = false; break }
            }
            let strategy = Strategy.currentScope ?? distributionStrategy
            if aggregate && strategy.numReplicasInSync > 1 { finite = !strategy.any(!finite) }
            let scale = Float(try dynamicScale.untrackedValue.item() as Double)  // a float32 variable: exact
            guard finite else {
                try stepCounter.assign(Tensor(Int64(0)))
                try dynamicScale.assign(Tensor(scale * 0.5))
                return innerOptimizer.iterationCount
            }
            let unscaled: [(Gradient?, Variable)] = try gradsAndVars.map { g, v in
                guard let g else { return (nil, v) }
                let s = TypedScalar(Double(scale), v.dtype).value
                return (try GradientClipping.mapValues(g) { try $0.untracked / s }, v)
            }
            do {
                _ = try innerOptimizer.applyKeras3(unscaled, aggregate: aggregate)
            } catch {
                if !wasBuilt { unbuild(to: mark) }
                throw error
            }
            let count: Int64 = try stepCounter.untrackedValue.withUnsafeBufferPointer(as: Int64.self) { $0[0] }
            if count == Int64(dynamicGrowthSteps - 1) {
                try stepCounter.assign(Tensor(Int64(0)))
                try dynamicScale.assign(Tensor(scale * 2))
            } else {
                try stepCounter.assign(Tensor(count + 1))
            }
            return innerOptimizer.iterationCount
        }

        open override var config: JSONObject {
            get throws {
                var c = JSONObject()
                c["name"] = .string(name)
                c["inner_optimizer"] = .object(try innerOptimizer.serialize())
                c["initial_scale"] = initialScale.json
                c["dynamic_growth_steps"] = .int(dynamicGrowthSteps)
                return c
            }
        }

        /// Rebuilds a LossScaleOptimizer from its config (the inner optimizer deserialized first).
        /// - Throws: for `"dynamic": false` and for a base option other than its default (Keras: "set it
        ///   on the inner_optimizer"), an unknown key, or an inner optimizer that is not a Keras 3 one.
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "LossScaleOptimizer", customObjects: customObjects)
            guard let innerJSON = r.reader.take("inner_optimizer")?.objectValue else {
                throw OptimizerError.invalidArgument(field: "inner_optimizer", message: "LossScaleOptimizer needs a serialized Keras 3 optimizer as 'inner_optimizer'")
            }
            guard let inner = try DescentOptimizers.Optimizer.deserialize(innerJSON, customObjects: customObjects) as? Optimizer else {
                throw OptimizerError.invalidArgument(field: "inner_optimizer", message: "LossScaleOptimizer wraps a Keras 3 optimizer (module keras.optimizers), not a legacy one")
            }
            if let dynamic = try r.bool("dynamic"), !dynamic {
                throw OptimizerError.invalidArgument(field: "dynamic", message: "LossScaleOptimizer no longer supports `dynamic=False`; set `loss_scale_factor` on the inner optimizer instead")
            }
            let defaults = try Optimizer(learningRate: 0.0, name: "defaults", options: .defaults).config
            for key in Keras3.baseConfigKeys where key != "name" && key != "learning_rate" {
                if let v = r.reader.config[key] {
                    if v != defaults[key] {
                        throw OptimizerError.invalidArgument(field: key, message: "LossScaleOptimizer does not support `\(key)`; set it on the inner_optimizer")
                    }
                    _ = r.reader.take(key)
                }
            }
            let name = try r.string("name")
            let initialScale = try r.number("initial_scale") ?? 32768.0
            let growth = try r.int("dynamic_growth_steps") ?? 2000
            try r.reader.finish(allowed: ["name", "inner_optimizer", "initial_scale", "dynamic_growth_steps"])
            try self.init(innerOptimizer: inner, initialScale: initialScale, dynamicGrowthSteps: growth, name: name ?? "")
        }
    }
}
