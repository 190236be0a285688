@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// The Keras 3 optimizer family (`keras.optimizers` in Keras 3.15.1, which is `tf.keras.optimizers` in
/// TensorFlow 2.21), beside the seed's OptimizerV2 classes.
///
/// The seed's classes (``DescentOptimizers/Adam``, ``DescentOptimizers/SGD``, ...) are Keras 2's
/// `tf.keras.optimizers.legacy` and stay as they are. The classes here are Keras 3's, with its defaults,
/// config keys, variable names and numbers: `Keras3.Adam`, `Keras3.AdamW`, `Keras3.Lion`, `Keras3.Muon`,
/// ... Both families are ``DescentOptimizers/Optimizer``s, so `compile(optimizer:)`, `fit`, a strategy
/// and the model files take either. ``Optimizer/deserialize(_:customObjects:)`` routes a document with
/// `"module": "keras.optimizers"` here, and `"keras.optimizers.legacy"` or no module to the seed's.
public enum Keras3 {
    /// The `module` Keras 3 writes for its optimizers.
    public static let module = "keras.optimizers"
}

extension Keras3 {
    /// The options every Keras 3 optimizer takes besides its learning rate and its own hyperparameters
    /// (the keyword arguments of Keras 3's `BaseOptimizer`). Numbers keep whether they were integers, so
    /// configs round-trip exactly.
    public struct Options: Sendable {
        /// Decoupled weight decay: `var ← var − var·wd·lr` before each update (`weight_decay`).
        public var weightDecay: ConfigNumber?
        /// Per-gradient norm clipping (`clipnorm`; 0 or less: none, as in Keras).
        public var clipnorm: ConfigNumber?
        /// Value clipping to `[-clipvalue, clipvalue]` (`clipvalue`; 0 or less: none).
        public var clipvalue: ConfigNumber?
        /// Clipping by the global norm of all gradients (`global_clipnorm`; 0 or less: none).
        public var globalClipnorm: ConfigNumber?
        /// Keep an exponential moving average of the trained variables (`use_ema`).
        public var useEMA: Bool
        /// The average's momentum, in [0, 1] (`ema_momentum`).
        public var emaMomentum: ConfigNumber
        /// Overwrite the variables with their average every this many steps (`ema_overwrite_frequency`).
        public var emaOverwriteFrequency: Int?
        /// The loss is multiplied by this and the gradients divided by it (`loss_scale_factor`).
        public var lossScaleFactor: ConfigNumber?
        /// Accumulate gradients over this many calls (≥ 2) and update with their mean
        /// (`gradient_accumulation_steps`).
        public var gradientAccumulationSteps: Int?

        /// Options with Keras 3's defaults unless given.
        public init(weightDecay: ConfigNumber? = nil, clipnorm: ConfigNumber? = nil, clipvalue: ConfigNumber? = nil,
                    globalClipnorm: ConfigNumber? = nil, useEMA: Bool = false, emaMomentum: ConfigNumber = 0.99,
                    emaOverwriteFrequency: Int? = nil, lossScaleFactor: ConfigNumber? = nil,
                    gradientAccumulationSteps: Int? = nil) {
            self.weightDecay = weightDecay
            self.clipnorm = clipnorm
            self.clipvalue = clipvalue
            self.globalClipnorm = globalClipnorm
            self.useEMA = useEMA
            self.emaMomentum = emaMomentum
            self.emaOverwriteFrequency = emaOverwriteFrequency
            self.lossScaleFactor = lossScaleFactor
            self.gradientAccumulationSteps = gradientAccumulationSteps
        }

        /// Keras 3's defaults.
        public static let defaults = Options()
    }

    /// The base of the Keras 3 family: Keras 3's `BaseOptimizer` lifecycle (TensorFlow backend).
    ///
    /// One ``applyGradients(_:experimentalAggregateGradients:)`` call:
    /// 1. builds the optimizer on the first call's variables (``build(_:)``: `iteration` and
    ///    `learning_rate` exist from the start; then the EMA averages, the gradient accumulators and the
    ///    class's own variables, from ``buildVariables(_:)``); a later call may pass a subset of them but
    ///    no other variable;
    /// 2. drops pairs without a gradient (warning), divides the gradients by `loss_scale_factor`;
    /// 3. with `gradient_accumulation_steps` = n: on calls whose `iterations + 1` is not a multiple of n,
    ///    adds the gradients to the accumulators and stops there (no update); otherwise uses
    ///    `(g + accumulated) / n` and clears the accumulators;
    /// 4. clips (`clipnorm`, else `global_clipnorm`, else `clipvalue`), applies the decoupled weight decay
    ///    `var ← var − var·wd·lr` to the variables not excluded (``excludeFromWeightDecay(variables:names:)``),
    ///    sums across replicas under a strategy, and runs each variable's update: dense gradients through
    ///    the class's fused kernel (``denseKernel(for:)``, all variables in one parallel pass), others
    ///    through ``updateStep(_:_:_:)``;
    /// 5. updates the EMA of every variable and, every `ema_overwrite_frequency` steps, overwrites the
    ///    variables with it; applies constraints; increments `iteration`.
    ///
    /// ``iterations`` is the raw call count (`optimizer._iterations`); Keras' public `iterations`, floor
    /// divided by `gradient_accumulation_steps`, is ``kerasIterations``. Schedules see the raw count.
    ///
    /// Subclasses state their rule: ``buildVariables(_:)``, ``prepare(_:)`` for the step's scalars,
    /// ``updateStep(_:_:_:)`` (the readable reference path, also used for sparse gradients), optionally a
    /// fused ``denseKernel(for:)`` with ``denseKernelSlotNames``, ``ownConfig`` and `init(config:)`.
    open class Optimizer: DescentOptimizers.Optimizer {
        /// The base options (weight decay, clipping, EMA, loss scale, accumulation). A wrapper sets its
        /// inner optimizers' `lossScaleFactor` (LossScaleOptimizer clears it, MultiOptimizer sets its own).
        public internal(set) var options: Options
        /// The learning rate: a float32 variable (`learning_rate`, second in ``weights``), a schedule
        /// called with the raw iteration count, or a closure.
        var learningRateStorage: LearningRateStorage
        /// Runs one `applyGradients` call (Keras 3's `apply`): the base lifecycle, or a wrapper's own.
        func applyKeras3(_ gradsAndVars: [(Gradient?, Variable)], aggregate: Bool) throws -> Int64 {
            try keras3Apply(gradsAndVars, aggregate: aggregate)
        }

        /// The name scope the variables made by ``build(_:)`` are created in (`"lso/"` for the inner
        /// optimizer of a LossScaleOptimizer named `lso`, which builds it inside its own scope, as Keras
        /// does); empty otherwise.
        var buildScope = ""

        /// Whether ``build(_:)`` ran.
        public private(set) var isBuilt = false
        /// The variables the optimizer was built with, in order (Keras' `_trainable_variables`).
        public private(set) var trainableVariables: [Variable] = []
        /// Position of each built variable (by id) in ``trainableVariables``.
        var variableIndex: [Int: Int] = [:]
        /// EMA averages (by position in ``trainableVariables``), when `use_ema`.
        public private(set) var averages: [Variable] = []
        /// Gradient accumulators (by position), when `gradient_accumulation_steps` is set.
        public private(set) var accumulators: [Variable] = []
        var weightDecayExcludedIDs: Set<Int> = []
        var weightDecayExcludedNames: [String] = []
        var weightDecayCache: [Int: Bool] = [:]
        /// The fused-kernel slots and folded weight decay of each position of the last list (the usual
        /// loop passes the same list every step), found once; emptied when the list changes or the build
        /// is undone. `nil` at a position not seen yet.
        var lastListJobs: [(slots: [Variable], weightDecay: Double?)?] = []

        enum LearningRateStorage {
            case variable(Variable)
            case schedule(any LearningRateSchedule)
            case closure(@Sendable () throws -> Double)
        }

        /// Creates the state every Keras 3 optimizer shares.
        ///
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for more than one clip option, a
        ///   negative one, `gradient_accumulation_steps` below 2, `ema_momentum` outside [0, 1],
        ///   `ema_overwrite_frequency` below 1, a learning rate or option float32 cannot hold, or a
        ///   malformed name (as Keras' `ValueError`s).
        public init(learningRate: Hyperparameter, name: String, options: Options) throws {
            let clips = [options.clipnorm, options.clipvalue, options.globalClipnorm].compactMap { $0 }
            if clips.count > 1 {
                throw OptimizerError.invalidArgument(
                    field: "clipnorm", message: "only one of clipnorm, clipvalue and global_clipnorm can be set (received clipnorm=\(options.clipnorm?.description ?? "None"), clipvalue=\(options.clipvalue?.description ?? "None"), global_clipnorm=\(options.globalClipnorm?.description ?? "None"))")
            }
            if let steps = options.gradientAccumulationSteps, steps < 2 {
                throw OptimizerError.invalidArgument(
                    field: "gradient_accumulation_steps", message: "must be an integer >= 2, received: \(steps)")
            }
            if options.useEMA {
                let m = options.emaMomentum.value
                if !(m >= 0 && m <= 1) {
                    throw OptimizerError.invalidArgument(field: "ema_momentum", message: "must be in the range [0, 1], received: \(options.emaMomentum)")
                }
                if let f = options.emaOverwriteFrequency, f < 1 {
                    throw OptimizerError.invalidArgument(
                        field: "ema_overwrite_frequency", message: "must be an integer >= 1 or None, received: \(f)")
                }
            }
            for (field, number) in [("weight_decay", options.weightDecay), ("ema_momentum", options.emaMomentum),
                                    ("loss_scale_factor", options.lossScaleFactor)] {
                if let number { try Float32Field.checkHyperparameter(number.value, field: field, owner: "optimizer") }
            }
            if let f = options.lossScaleFactor, f.value == 0 {
                throw OptimizerError.invalidArgument(field: "loss_scale_factor", message: "must not be 0 (the gradients are divided by it)")
            }
            self.options = options
            switch learningRate {
            case .schedule(let s): learningRateStorage = .schedule(s)
            case .closure(let f): learningRateStorage = .closure(f)
            default:
                // Replaced below, once `name` is known.
                learningRateStorage = .closure({ 0 })
            }
            // Keras 3 ignores a clip option of 0 or less; the legacy base rejects negative ones, which
            // only means something absurd here too.
            try super.init(name: name, clipnorm: options.clipnorm?.value, clipvalue: options.clipvalue?.value,
                           globalClipnorm: options.globalClipnorm?.value)
            try setIterations(Variable(Tensor(Int64(0)), name: "\(self.name)/iteration", trainable: false))
            let number: Double?
            switch learningRate {
            case .number(let d): number = d
            case .integer(let i): number = Double(i)
            case .tensor(let t): number = try t.item()
            default: number = nil
            }
            if let number {
                try Float32Field.checkHyperparameter(number, field: "learning_rate", owner: "\(Self.kerasClassName)")
                let v = try addWeight(name: "learning_rate", shape: [], dtype: .float32)
                try v.assign(Tensor(Float(number)))
                learningRateStorage = .variable(v)
            }
        }

        // MARK: - Learning rate

        /// The float32 variable behind a numeric learning rate (Keras: `optimizer.learning_rate`, which
        /// one assigns with `opt.learning_rate.assign(3.0)`), or `nil` for a schedule or closure.
        open override var learningRateVariable: Variable? {
            if case .variable(let v) = learningRateStorage { return v }
            return nil
        }

        /// The learning rate: its variable's value as a number, the schedule, or the closure. Setting a
        /// number assigns the variable; setting a schedule or closure replaces it (the variable leaves
        /// ``weights``, as in Keras). Setting a number on an optimizer created with a schedule is an
        /// error in Keras: use ``setLearningRate(_:)`` to get it thrown; the setter warns and keeps the
        /// schedule.
        open override var learningRate: Hyperparameter {
            get {
                switch learningRateStorage {
                case .variable(let v): return .number((try? v.untrackedValue.item() as Double) ?? .nan)
                case .schedule(let s): return .schedule(s)
                case .closure(let f): return .closure(f)
                }
            }
            set {
                do { try setLearningRate(newValue) } catch { DescentOptimizers.Optimizer.warn("\(error)") }
            }
        }

        /// Sets the learning rate (Keras' `learning_rate` setter).
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a number when the optimizer
        ///   was created with a schedule, or one float32 cannot hold.
        public func setLearningRate(_ value: Hyperparameter) throws {
            let number: Double?
            switch value {
            case .number(let d): number = d
            case .integer(let i): number = Double(i)
            case .tensor(let t): number = try t.item()
            case .schedule(let s):
                untrackLearningRateVariable()
                learningRateStorage = .schedule(s)
                return
            case .closure(let f):
                untrackLearningRateVariable()
                learningRateStorage = .closure(f)
                return
            }
            guard let number else { return }
            guard case .variable(let v) = learningRateStorage else {
                throw OptimizerError.invalidArgument(
                    field: "learning_rate", message: "\(name) was created with a LearningRateSchedule as its learning rate, so its learning rate is not settable; create the optimizer with a number to set it")
            }
            try Float32Field.checkHyperparameter(number, field: "learning_rate", owner: name)
            try v.assign(Tensor(Float(number)))
        }

        private func untrackLearningRateVariable() {
            if case .variable(let v) = learningRateStorage { removeHeldWeight(v) }
        }

        /// The learning rate of the coming step as a float32 value (Keras' `learning_rate` property):
        /// the schedule at the raw iteration count, the closure's result, or the variable.
        public func currentLearningRate() throws -> Float {
            switch learningRateStorage {
            case .variable(let v): return Float(try v.untrackedValue.item() as Double)
            case .schedule(let s): return Float(try s(Double(iterationCount)))
            case .closure(let f): return Float(try f())
            }
        }

        /// Multiplies a loss by `loss_scale_factor` (Keras' `scale_loss`), before taking gradients; a
        /// LossScaleOptimizer multiplies by its dynamic scale.
        open func scaleLoss(_ loss: Tensor) throws -> Tensor {
            guard let f = options.lossScaleFactor else { return loss }
            return try loss * TypedScalar(f.value, loss.dtype).value
        }

        /// Replaces the variables the optimizer was built with by their moving averages (Keras'
        /// `finalize_variable_values`; `fit` calls it after the last epoch). Does nothing without `use_ema`.
        open func finalizeVariableValues() throws {
            guard options.useEMA else { return }
            for (v, average) in zip(trainableVariables, averages) { try v.assign(average.untrackedValue) }
        }

        // MARK: - Iterations

        /// Keras' public `iterations`: the raw count floor-divided by `gradient_accumulation_steps` (the
        /// number of updates made), or the raw count.
        open var kerasIterations: Int64 {
            let raw = iterationCount
            guard let steps = options.gradientAccumulationSteps else { return raw }
            return raw >= 0 ? raw / Int64(steps) : (raw - Int64(steps) + 1) / Int64(steps)
        }

        // MARK: - Weight decay

        /// Excludes variables from weight decay (Keras' `exclude_from_weight_decay`): the given variables,
        /// and every variable whose TensorFlow name (its path and `":0"`, `"dense/bias:0"`: what Keras 3's
        /// TensorFlow backend searches) contains a match of one of the regular expressions in `names`.
        /// Only before the optimizer is built.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` after the build or for a pattern
        ///   that is not a regular expression.
        public func excludeFromWeightDecay(variables: [Variable] = [], names: [String] = []) throws {
            guard !isBuilt else {
                throw OptimizerError.invalidArgument(
                    field: "exclude_from_weight_decay", message: "\(name): can only be configured before the optimizer is built")
            }
            for pattern in names {
                do { _ = try Regex(pattern) } catch {
                    throw OptimizerError.invalidArgument(field: "exclude_from_weight_decay", message: "'\(pattern)' is not a regular expression: \(error)")
                }
            }
            weightDecayExcludedIDs = Set(variables.map(\.id))
            weightDecayExcludedNames = names
            weightDecayCache = [:]
        }

        /// Whether weight decay applies to `variable` (Keras' `_use_weight_decay`).
        public func usesWeightDecay(_ variable: Variable) -> Bool {
            if let cached = weightDecayCache[variable.id] { return cached }
            var use = !weightDecayExcludedIDs.contains(variable.id)
            if use, !weightDecayExcludedNames.isEmpty {
                // The TensorFlow backend searches the `tf.Variable`'s name: the path and ":0".
                let tfName = variable.name + ":0"
                for pattern in weightDecayExcludedNames {
                    // Checked in `excludeFromWeightDecay`.
                    if let regex = try? Regex(pattern), tfName.contains(regex) { use = false; break }
                }
            }
            weightDecayCache[variable.id] = use
            return use
        }

        /// The decoupled weight decay rate for `variable` this step, or `nil` for none (Keras'
        /// `_apply_weight_decay`: `weight_decay` for every variable ``usesWeightDecay(_:)`` keeps).
        /// Override for a class with its own rule (``Keras3/Muon``: `adam_weight_decay` for the
        /// variables it updates with AdamW); keep it O(1) (it runs once per variable per step).
        open func weightDecayRate(for variable: Variable) -> Double? {
            usesWeightDecay(variable) ? options.weightDecay?.value : nil
        }

        /// Whether ``weightDecayRate(for:)`` can give a rate for some variable (the step skips the
        /// weight decay loop when not).
        open var appliesWeightDecay: Bool { options.weightDecay != nil }

        // MARK: - Building

        /// Creates the optimizer's variables for `variables` (Keras' `build`): the EMA averages
        /// (`use_ema`), the gradient accumulators, then the class's own (``buildVariables(_:)``). Only the
        /// first call builds; later ones do nothing, as in Keras.
        /// - Throws: ``OptimizerError/gradientMismatch(variable:message:)`` for a variable that is not
        ///   floating-point, or what ``buildVariables(_:)`` throws (the variables made are then removed).
        open override func build(_ variables: [Variable]) throws {
            guard !isBuilt else { return }
            for v in variables where !v.dtype.isFloatingPoint {
                throw OptimizerError.gradientMismatch(variable: v.name, message: "cannot update a variable of dtype \(v.dtype)")
            }
            let mark = weightsMark
            buildMark = mark
            do {
                if options.useEMA { averages = try variables.map { try addVariable(from: $0, name: "average") } }
                var index: [Int: Int] = [:]
                for (i, v) in variables.enumerated() where index[v.id] == nil { index[v.id] = i }
                if options.gradientAccumulationSteps != nil {
                    accumulators = try variables.map { try addVariable(from: $0, name: "gradient_accumulator") }
                }
                try buildVariables(variables)
                variableIndex = index
                trainableVariables = variables
                isBuilt = true
            } catch {
                averages = []
                accumulators = []
                resetClassBuild()
                rollBackWeights(to: mark)
                throw error
            }
        }

        /// How far ``weights`` reached before the build.
        var buildMark: WeightsMark?

        /// Undoes the build: removes the variables it made and forgets them.
        func resetBuild() {
            if let buildMark { rollBackWeights(to: buildMark) }
            buildMark = nil
            isBuilt = false
            trainableVariables = []
            variableIndex = [:]
            averages = []
            accumulators = []
            lastListIDs = []
            lastListWaves = nil
            lastListJobs = []
            resetClassBuild()
        }

        /// Forgets the class's own references to variables made by ``buildVariables(_:)`` (a build that
        /// failed later in the same call is undone). Override when ``buildVariables(_:)`` stores them.
        open func resetClassBuild() {}

        /// Creates the class's variables for `variables`, in Keras' order (override; the default makes
        /// none). Use ``addVariables(from:names:)`` for per-variable state.
        open func buildVariables(_ variables: [Variable]) throws {}

        /// Adds one optimizer variable shaped like `reference` (Keras' `add_variable_from_reference`),
        /// named `"<optimizer>/<reference path with / as _>_<name>"`, and records it as `reference`'s
        /// slot `name` (``slot(for:named:)``).
        @discardableResult
        public func addVariable(from reference: Variable, name slotName: String, initializer: SlotInitializer = .zeros,
                                shape: [Int]? = nil, dtype: DType? = nil) throws -> Variable {
            let path = reference.name.replacingOccurrences(of: "/", with: "_")
            return try addSlot(reference, slotName, initializer: initializer, shape: shape,
                               fullName: "\(buildScope)\(name)/\(path)_\(slotName)", dtype: dtype)
        }

        /// Adds, for each variable in turn, one optimizer variable per name (Keras'
        /// `add_optimizer_variables`, which interleaves them: `var0_momentum`, `var0_velocity`,
        /// `var1_momentum`, ...). Returns the lists by name.
        @discardableResult
        public func addVariables(from variables: [Variable], names: [String],
                                 initializer: SlotInitializer = .zeros) throws -> [[Variable]] {
            var lists = [[Variable]](repeating: [], count: names.count)
            for v in variables {
                for (i, n) in names.enumerated() { lists[i].append(try addVariable(from: v, name: n, initializer: initializer)) }
            }
            return lists
        }

        /// Adds one optimizer variable that belongs to no model variable (Keras' `add_variable`), named
        /// `"<optimizer>/<name>"` (inside the build scope, see ``addVariable(from:name:initializer:shape:dtype:)``).
        @discardableResult
        public func addVariable(name variableName: String, shape: [Int], dtype: DType = .float32,
                                initializer: SlotInitializer = .zeros) throws -> Variable {
            try addWeight(fullName: "\(buildScope)\(name)/\(variableName)", shape: shape, dtype: dtype,
                          initializer: initializer, trainable: false)
        }

        /// The position of `variable` among the variables the optimizer was built with.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for an unknown variable.
        public func index(of variable: Variable) throws -> Int {
            guard let i = variableIndex[variable.id] else {
                throw OptimizerError.invalidArgument(
                    field: "variables", message: "\(name): unknown variable '\(variable.name)'. This optimizer can only be called for the variables it was originally built with; when working with a new set of variables, create a new optimizer")
            }
            return i
        }

        // MARK: - Subclass hooks

        /// The step's scalars for one dtype. The base sets `"lr"` (the learning rate cast to the dtype)
        /// and `"local_step"` (`iterations + 1`, Keras' `ops.cast(self.iterations + 1, dtype)`, with
        /// Keras' floor-divided ``kerasIterations``); override, call `super`, add yours.
        open override func prepare(_ c: inout Coefficients) throws {
            c.set("lr", TypedScalar(Double(try currentLearningRate()), c.dtype))
            c.set("local_step", c.scalar(Double(c.iteration &+ 1)))
        }

        /// Applies one gradient to one variable: Keras' `update_step`, the readable reference path. It runs
        /// for sparse gradients (``IndexedSlices``, with repeated indices as given: use ``densified(_:)`` and
        /// ``densifiedSquares(_:)`` where Keras' operations densify them) and for dense ones of classes
        /// without a fused kernel. The default throws ``OptimizerError/notImplemented(optimizer:method:)``.
        open func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            throw OptimizerError.notImplemented(optimizer: name, method: "updateStep")
        }

        /// Runs once per update, after clipping and just before the variables' updates (Keras'
        /// `_backend_update_step`, which Nadam overrides to advance its `u_product`); not on the calls that
        /// only accumulate gradients. The weight decay of the variables a fused kernel updates runs in
        /// that kernel, so after this hook: read no model variable here. The default does nothing.
        open func willApplyUpdates(_ coefficients: [DType: Coefficients]) throws {}

        /// Whether the class's fused ``denseKernel(for:)`` serves dense gradients (exact built-in types
        /// only, so a subclass overriding ``updateStep(_:_:_:)`` is called).
        open override var fusesDenseUpdates: Bool { false }

        /// Whether the class's ``denseKernel(for:)`` decays each job's elements itself, reading
        /// ``DenseJob/weightDecay`` in its own pass (Keras 3's Adam and AdamW); otherwise a folded weight
        /// decay runs block by block in front of the kernel.
        var denseKernelAppliesWeightDecay: Bool { false }

        /// Whether ``updateStep(_:_:_:)`` may run for several variables of a step at once, each on its own
        /// thread (false by default). True only for a class whose update of one variable reads and writes
        /// nothing but that variable, its own slots and the step's coefficients, and which gains from it:
        /// Muon, whose Newton–Schulz products are too small for OpenBLAS to split well.
        open var updatesVariablesIndependently: Bool { false }

        /// Keras 3 optimizers read no slots by name in the legacy way.
        open override func createSlots(for variables: [Variable]) throws {}

        /// Keras 3's `update_step` for the legacy per-variable hook: forwards to ``updateStep(_:_:_:)``.
        open override func resourceApplyDense(_ gradient: Tensor, _ variable: Variable, _ c: Coefficients) throws {
            try updateStep(.dense(gradient), variable, c)
        }

        // MARK: - Config

        /// The class's own config keys, after the base ones (override).
        open var ownConfig: JSONObject {
            get throws { JSONObject() }
        }

        /// Keras 3's `get_config`: `name`, `learning_rate`, the base options (in Keras' order), then
        /// ``ownConfig``.
        open override var config: JSONObject {
            get throws {
                var c = JSONObject()
                c["name"] = .string(name)
                switch learningRateStorage {
                case .variable(let v): c["learning_rate"] = .double(Double(Float(try v.untrackedValue.item() as Double)))
                case .schedule(let s): c["learning_rate"] = .object(try serializeSchedule(s))
                case .closure(let f): c["learning_rate"] = .double(try f())
                }
                func number(_ n: ConfigNumber?) -> JSONValue { n?.json ?? .null }
                c["weight_decay"] = number(options.weightDecay)
                c["clipnorm"] = number(options.clipnorm)
                c["global_clipnorm"] = number(options.globalClipnorm)
                c["clipvalue"] = number(options.clipvalue)
                c["use_ema"] = .bool(options.useEMA)
                c["ema_momentum"] = options.emaMomentum.json
                c["ema_overwrite_frequency"] = options.emaOverwriteFrequency.map { .int($0) } ?? .null
                c["loss_scale_factor"] = number(options.lossScaleFactor)
                c["gradient_accumulation_steps"] = options.gradientAccumulationSteps.map { .int($0) } ?? .null
                for (k, v) in try ownConfig { c[k] = v }
                return c
            }
        }

        /// Keras 3 clips each replica's gradients, then sums them (in `_backend_update_step`).
        override var clipsBeforeSumming: Bool {
            clipnorm.map { $0 > 0 } == true || globalClipnorm.map { $0 > 0 } == true || clipvalue.map { $0 > 0 } == true
                || childOptimizers.contains { $0.clipsBeforeSumming }
        }

        /// Sharded optimizer state is not available for the Keras 3 family yet.
        open override var supportsShardedState: Bool { false }
    }
}

extension Keras3.Optimizer {
    // MARK: - Sparse helpers for update rules

    /// A gradient as a dense tensor: itself, or the sum of its rows at their indices (TensorFlow's
    /// `convert_to_tensor(IndexedSlices)`, which Keras 3's `add`/`subtract` with a dense operand do).
    public func densified(_ g: Gradient) throws -> Tensor {
        switch g {
        case .dense(let t): return t.untracked
        case .sparse(let s): return try s.toDense()
        }
    }

    /// `square(g)` made dense: for sparse gradients each row is squared first, then the rows are summed
    /// at their indices (Keras 3's `square` keeps `IndexedSlices`, so repeated indices add squares).
    public func densifiedSquares(_ g: Gradient) throws -> Tensor {
        switch g {
        case .dense(let t): return try t.untracked.squared().untracked
        case .sparse(let s):
            return try IndexedSlices(values: try s.values.untracked.squared().untracked, indices: s.indices,
                                     denseShape: s.denseShape).toDense()
        }
    }
}
