@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor
import Synchronization

/// A transformation of the (gradient, variable) list, run inside ``Optimizer/applyGradients(_:)``.
public typealias GradientTransformer = ([(Gradient, Variable)]) throws -> [(Gradient, Variable)]
/// Cross-replica gradient aggregation (Keras' `gradient_aggregator`): sums gradients over replicas.
public typealias GradientAggregator = ([(Gradient?, Variable)]) throws -> [(Gradient?, Variable)]

/// The base class of every optimizer: Keras' `OptimizerV2`.
///
/// It owns the lifecycle of an update, so that subclasses only state their rule:
/// 1. `build(_:)` — create `iterations`, the hyperparameter variables and the slots
///    (``createSlots(for:)``), in TensorFlow's order;
/// 2. ``prepare(_:)`` — compute the step's coefficients once per dtype, before any update, from the
///    learning rate after its schedule and `decay`;
/// 3. aggregate (``experimentalAggregateGradients``), then clip: `clipvalue` → `clipnorm` →
///    `globalClipnorm` → `gradientTransformers`;
/// 4. update each variable: dense gradients go to the subclass's fused kernel (``denseKernel(for:)``),
///    all variables in one parallel pass, or to ``resourceApplyDense(_:_:_:)``; sparse gradients
///    (``IndexedSlices``) to ``resourceApplySparseDuplicateIndices(_:_:_:_:)``;
/// 5. apply each variable's constraint after its dense update; then increment `iterations`.
///
/// **Thread safety**: an optimizer is thread-compatible, not thread-safe (as in TensorFlow): use one
/// optimizer from one thread at a time. Its kernels use all cores internally.
///
/// To write an optimizer, subclass and override ``createSlots(for:)``, ``prepare(_:)`` (optional),
/// ``resourceApplyDense(_:_:_:)``, ``resourceApplySparse(_:_:_:_:)`` and ``config``; register the
/// class for deserialization with ``Optimizer/register(className:factory:)``.
open class Optimizer {
    /// The name, used as the prefix of the optimizer's variables (`"Adam/iter"`, `"Adam/dense/kernel/m"`).
    public let name: String
    /// Per-gradient norm clipping (`clipnorm`), or `nil`.
    public private(set) var clipnorm: Double?
    /// Value clipping to `[-clipvalue, clipvalue]`, or `nil`.
    public private(set) var clipvalue: Double?
    /// Clipping by the global norm of all gradients, or `nil`.
    public private(set) var globalClipnorm: Double?
    /// Time-inverse learning-rate decay: `lr / (1 + decay * iterations)`.
    public let decay: Double
    /// Sums gradients across replicas before clipping (identity on one replica).
    public let gradientAggregator: GradientAggregator
    /// Whether `gradientAggregator` is the default (the identity on one replica): its call is skipped.
    private let aggregatesByIdentity: Bool
    /// Functions applied to the gradients after clipping, in order.
    public let gradientTransformers: [GradientTransformer]

    private var hypers: [(name: String, storage: HyperStorage)] = []
    /// Numbers of the config this optimizer was deserialized from, to write them back in their form.
    var configNumbers: [String: JSONValue] = [:]
    private var hypersCreated = false
    private var iterationsVariable: Variable?
    private var slotStore: [Int: [(name: String, variable: Variable)]] = [:]
    /// The kernel slots of each variable (by id) in `kernelSlotCacheNames` order, so a fused update does
    /// not look slots up by name every step. Cleared whenever a slot is created.
    private var kernelSlotCache: [Int: [Variable]] = [:]
    private var kernelSlotCacheNames: [String] = []
    /// The kernel slots of the variables of the last list built (`lastBuiltIDs`), by position: the
    /// common case of the same list every step needs no dictionary look-up.
    private var positionalKernelSlots: [[Variable]?] = []
    /// The ids of the variables the last `applyGradients` built, while no slot has been created since:
    /// a built-in (deterministic `createSlots`) skips re-building the same list.
    private var lastBuiltIDs: [Int] = []
    /// The optimizer's variables in creation order: `iterations` first, then slots.
    public private(set) var weights: [Variable] = []
    /// Slot names in the order they were first added.
    public private(set) var slotNames: [String] = []

    enum HyperStorage {
        case raw(Hyperparameter)
        case variable(Variable)
    }

    /// Creates the optimizer state shared by every subclass.
    ///
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a negative `clipnorm`,
    ///   `clipvalue`, `globalClipnorm` or `decay`, for `clipnorm` together with `globalClipnorm`, for a
    ///   clip option together with `gradientTransformers`, and for a malformed `name`.
    public init(
        name: String, clipnorm: Double? = nil, clipvalue: Double? = nil, globalClipnorm: Double? = nil,
        decay: Double = 0, gradientAggregator: GradientAggregator? = nil,
        gradientTransformers: [GradientTransformer] = []
    ) throws {
        if decay < 0 || decay.isNaN {
            throw OptimizerError.invalidArgument(field: "decay", message: "expected decay >= 0, received: \(decay)")
        }
        self.name = try Optimizer.validatedName(name, className: Self.defaultClassName)
        self.decay = decay
        self.gradientAggregator = gradientAggregator ?? Optimizer.allReduceSumGradients
        self.aggregatesByIdentity = gradientAggregator == nil
        self.gradientTransformers = gradientTransformers
        try setClipnorm(clipnorm)
        try setGlobalClipnorm(globalClipnorm)
        try setClipvalue(clipvalue)
    }

    private static var defaultClassName: String { String(describing: self) }

    // MARK: - Clipping options

    /// Sets `clipnorm`. Throws if negative, if `globalClipnorm` is set, or with `gradientTransformers`.
    public func setClipnorm(_ value: Double?) throws {
        try checkClipOption("clipnorm", value)
        if value != nil && globalClipnorm != nil {
            throw OptimizerError.invalidArgument(
                field: "clipnorm", message: "cannot accept both clipnorm and global_clipnorm (clipnorm=\(value!), global_clipnorm=\(globalClipnorm!))")
        }
        clipnorm = value
    }

    /// Sets `globalClipnorm`. Throws if negative, if `clipnorm` is set, or with `gradientTransformers`.
    public func setGlobalClipnorm(_ value: Double?) throws {
        try checkClipOption("global_clipnorm", value)
        if value != nil && clipnorm != nil {
            throw OptimizerError.invalidArgument(
                field: "global_clipnorm", message: "cannot accept both clipnorm and global_clipnorm (clipnorm=\(clipnorm!), global_clipnorm=\(value!))")
        }
        globalClipnorm = value
    }

    /// Sets `clipvalue`. Throws if negative or with `gradientTransformers`.
    public func setClipvalue(_ value: Double?) throws {
        try checkClipOption("clipvalue", value)
        clipvalue = value
    }

    private func checkClipOption(_ field: String, _ value: Double?) throws {
        guard let value else { return }
        if value < 0 || value.isNaN {
            throw OptimizerError.invalidArgument(field: field, message: "expected \(field) >= 0, received: \(value)")
        }
        if !gradientTransformers.isEmpty {
            throw OptimizerError.invalidArgument(
                field: field, message: "\(field) cannot be set when gradient_transformers is set; add a clipping function to gradientTransformers instead")
        }
    }

    /// Keras' name rule: any non-empty name is used as is, but it must be a valid TensorFlow name scope
    /// (letters, digits, `.`, `_`, `-`, `/`, `>`; not starting with `_`, `-` or `/`). An empty name
    /// becomes a unique snake-cased class name (`"adam"`, `"adam_1"`, ...), as Keras'
    /// `unique_object_name`.
    static func validatedName(_ name: String, className: String) throws -> String {
        if name.isEmpty { return KerasNaming.uniqueName(KerasNaming.snakeCase(className)) }
        let allowedFirst = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.")
        let allowed = allowedFirst.union("_-/>")
        guard let first = name.first, allowedFirst.contains(first), name.allSatisfy(allowed.contains) else {
            throw OptimizerError.invalidArgument(
                field: "name", message: "'\(name)' is not a valid optimizer name: use letters, digits and . _ - / > (not starting with _ - or /)")
        }
        return name
    }

    // MARK: - Hyperparameters

    /// Stores a hyperparameter (Keras' `_set_hyper`). Before the first update the raw value is kept;
    /// afterwards a number is assigned to the `float32` hyperparameter variable, while a schedule,
    /// closure or tensor replaces it.
    public func setHyper(_ name: String, _ value: Hyperparameter) {
        if let i = hypers.firstIndex(where: { $0.name == name }) {
            switch (hypers[i].storage, value) {
            case (.variable(let v), .number), (.variable(let v), .integer):
                // Cannot fail: a scalar float32 value for a scalar float32 variable.
                try! v.assign(Tensor(Float(value.numericValue!)))
            default:
                hypers[i].storage = .raw(value)
            }
        } else {
            hypers.append((name, .raw(value)))
        }
    }

    /// A hyperparameter's current value (Keras' `_get_hyper`): numbers after the first update are the
    /// `float32` variable's value; a closure is evaluated; a schedule is returned uncalled.
    public func hyper(_ name: String) throws -> Hyperparameter {
        createHypersIfNeeded()
        guard let entry = hypers.first(where: { $0.name == name }) else {
            throw OptimizerError.invalidHyperparameter(name: name, message: "\(self.name) has no such hyperparameter (it has: \(hypers.map(\.name).joined(separator: ", ")))")
        }
        switch entry.storage {
        case .variable(let v): return .number(try v.untrackedValue.item())
        case .raw(.closure(let f)): return .number(try f())
        case .raw(let h): return h
        }
    }

    /// The names of the hyperparameters, in the order they were set.
    public var hyperparameterNames: [String] { hypers.map(\.name) }

    /// The learning rate (alias `lr`); assign a number, tensor, closure or schedule.
    public var learningRate: Hyperparameter {
        get { (try? hyper("learning_rate")) ?? .number(.nan) }
        set { setHyper("learning_rate", newValue) }
    }

    /// Keras' backward-compatible alias of ``learningRate``.
    public var lr: Hyperparameter {
        get { learningRate }
        set { learningRate = newValue }
    }

    /// Replaces numeric hyperparameters by `float32` variables (Keras' `_create_hypers`), once.
    private func createHypersIfNeeded() {
        guard !hypersCreated else { return }
        hypersCreated = true
        for (i, entry) in hypers.enumerated().sorted(by: { $0.element.name < $1.element.name }) {
            if case .raw(let h) = entry.storage, let number = h.numericValue {
                hypers[i].storage = .variable(Variable(Tensor(Float(number)), name: entry.name, trainable: false))
            }
        }
    }

    /// A hyperparameter as a scalar of `dtype`, as `_get_hyper(name, dtype)` gives it: stored numbers
    /// are `float32`; closures are evaluated and their result made a `float32` constant.
    public func hyperScalar(_ name: String, _ dtype: DType) throws -> TypedScalar {
        createHypersIfNeeded()
        guard let entry = hypers.first(where: { $0.name == name }) else {
            throw OptimizerError.invalidHyperparameter(name: name, message: "\(self.name) has no such hyperparameter")
        }
        switch entry.storage {
        case .variable(let v): return TypedScalar(try v.untrackedValue.item(), dtype)
        case .raw(.number(let d)): return TypedScalar.castFromFloat32(d, dtype)
        case .raw(.integer(let i)): return TypedScalar.castFromFloat32(Double(i), dtype)
        case .raw(.tensor(let t)): return TypedScalar(try t.item(), dtype)
        case .raw(.closure(let f)): return TypedScalar.castFromFloat32(try f(), dtype)
        case .raw(.schedule):
            throw OptimizerError.invalidHyperparameter(name: name, message: "a schedule is only supported as the learning rate")
        }
    }

    /// The learning rate for this step in `dtype`: the schedule at `iterations` if any, then divided by
    /// `1 + decay * iterations` (Keras' `_decayed_lr`).
    public func decayedLearningRate(_ dtype: DType) throws -> TypedScalar {
        createHypersIfNeeded()
        let k = TypedScalar(Double(iterationCount), dtype)
        var lr: TypedScalar
        if case .raw(.schedule(let s))? = hypers.first(where: { $0.name == "learning_rate" })?.storage {
            lr = TypedScalar(try s(k.value), dtype)
        } else {
            lr = try hyperScalar("learning_rate", dtype)
        }
        if decay > 0 {
            lr = lr / (1 + TypedScalar.castFromFloat32(decay, dtype) * k)
        }
        return lr
    }

    // MARK: - Iterations and weights

    /// The number of updates applied so far (an `int64` variable, created on first use, first in
    /// ``weights``).
    public var iterations: Variable {
        if let v = iterationsVariable { return v }
        let v = Variable(Tensor(Int64(0)), name: "\(name)/iter", trainable: false)
        iterationsVariable = v
        weights.append(v)
        return v
    }

    /// Replaces `iterations` with a given `int64` scalar variable; only before it was created.
    public func setIterations(_ variable: Variable) throws {
        guard iterationsVariable == nil else { throw OptimizerError.iterationsAlreadyCreated(optimizer: name) }
        guard variable.dtype == .int64, variable.shape.isEmpty else {
            throw OptimizerError.invalidArgument(field: "iterations", message: "expected an int64 scalar variable, got \(variable.dtype) \(variable.shape)")
        }
        iterationsVariable = variable
        weights.append(variable)
    }

    /// The current value of `iterations`.
    public var iterationCount: Int64 {
        Int64((try? iterations.untrackedValue.item()) ?? 0)
    }

    /// The optimizer's variables (Keras' `variables()`): the same list as ``weights``.
    public func variables() -> [Variable] { weights }

    /// The values of ``weights``, in order (Keras' `get_weights`).
    public func getWeights() -> [Tensor] { weights.map(\.untrackedValue) }

    /// Assigns values to ``weights`` in order (Keras' `set_weights`). The optimizer must be built first
    /// (``build(_:)`` or one ``applyGradients(_:)``).
    /// - Throws: ``OptimizerError/weightCountMismatch(optimizer:expected:given:)`` or
    ///   ``OptimizerError/weightShapeMismatch(weight:expected:given:)`` naming the weight.
    open func setWeights(_ values: [Tensor]) throws {
        guard values.count == weights.count else {
            throw OptimizerError.weightCountMismatch(optimizer: name, expected: weights.count, given: values.count)
        }
        for (w, v) in zip(weights, values) where w.shape != v.shape {
            throw OptimizerError.weightShapeMismatch(weight: w.name, expected: w.shape, given: v.shape)
        }
        for (w, v) in zip(weights, values) { try w.assign(v.cast(to: w.dtype)) }
    }

    /// Adds a non-slot variable to ``weights`` (Keras' `add_weight`).
    @discardableResult
    public func addWeight(name: String, shape: [Int], dtype: DType = .float32, initializer: SlotInitializer = .zeros,
                          trainable: Bool = false) throws -> Variable {
        let v = Variable(try initializer.makeValue(shape: shape, dtype: dtype), name: "\(self.name)/\(name)", trainable: trainable)
        weights.append(v)
        return v
    }

    // MARK: - Slots

    /// Creates (or returns the existing) slot `slotName` for `variable` (Keras' `add_slot`); new slots are
    /// appended to ``weights``.
    @discardableResult
    public func addSlot(_ variable: Variable, _ slotName: String, initializer: SlotInitializer = .zeros,
                        shape: [Int]? = nil) throws -> Variable {
        if !slotNames.contains(slotName) { slotNames.append(slotName) }
        if let existing = slotStore[variable.id]?.first(where: { $0.name == slotName }) { return existing.variable }
        let value = try initializer.makeValue(shape: shape ?? variable.shape, dtype: variable.dtype)
        let slot = Variable(value, name: "\(name)/\(variable.name)/\(slotName)", trainable: false)
        slotStore[variable.id, default: []].append((slotName, slot))
        kernelSlotCache.removeAll()
        positionalKernelSlots.removeAll()
        lastBuiltIDs = []
        weights.append(slot)
        return slot
    }

    /// The slot `slotName` of `variable` (Keras' `get_slot`).
    /// - Throws: ``OptimizerError/slotNotFound(variable:slot:available:)``.
    public func slot(for variable: Variable, named slotName: String) throws -> Variable {
        let slots = slotStore[variable.id] ?? []
        guard let s = slots.first(where: { $0.name == slotName }) else {
            throw OptimizerError.slotNotFound(variable: variable.name, slot: slotName, available: slots.map(\.name))
        }
        return s.variable
    }

    /// Whether `variable` has slots yet.
    func hasSlots(_ variable: Variable) -> Bool { slotStore[variable.id] != nil }

    /// Creates `iterations`, the hyperparameter variables and the slots of `variables` (Keras'
    /// `_create_all_weights`), so that ``setWeights(_:)`` can load a saved state before training.
    public func build(_ variables: [Variable]) throws {
        _ = iterations
        createHypersIfNeeded()
        try createSlots(for: variables)
    }

    // MARK: - Subclass hooks

    /// Creates the slots of `variables`, in TensorFlow's order (override; the default creates none).
    open func createSlots(for variables: [Variable]) throws {}

    /// Adds the step's coefficients for one dtype (override and call `super`, which sets `"lr_t"`).
    /// Runs once per dtype per ``applyGradients(_:)``, before any update.
    open func prepare(_ coefficients: inout Coefficients) throws {
        if hypers.contains(where: { $0.name == "learning_rate" }) {
            coefficients["lr_t"] = try decayedLearningRate(coefficients.dtype)
        }
    }

    /// Called once per ``applyGradients(_:)`` after the coefficients of every dtype are prepared and before
    /// any update (Nadam advances its momentum cache here).
    open func willApply(coefficients: [DType: Coefficients], variables: [Variable]) throws {}

    /// A fused kernel for dense updates with these coefficients (built-ins), or `nil`.
    open func denseKernel(for coefficients: Coefficients) -> DenseKernel? { nil }

    /// Whether ``applyGradients(_:)`` sends all dense variables through ``denseKernel(for:)`` in one
    /// parallel pass instead of calling ``resourceApplyDense(_:_:_:)`` per variable. Built-ins return
    /// `true` only when the dynamic type is exactly theirs, so a subclass that overrides
    /// `resourceApplyDense` is always called; a subclass that keeps the built-in rule may return `true`.
    open var fusesDenseUpdates: Bool { false }

    /// The slots a dense kernel reads and writes, in order (for the variable of each job).
    open var denseKernelSlotNames: [String] { [] }

    /// Applies a dense gradient to one variable (Keras' `_resource_apply_dense`).
    open func resourceApplyDense(_ gradient: Tensor, _ variable: Variable, _ coefficients: Coefficients) throws {
        guard let kernel = denseKernel(for: coefficients) else {
            throw OptimizerError.notImplemented(optimizer: name, method: "resourceApplyDense")
        }
        let slotNames = denseKernelSlotNames
        useKernelSlotNames(slotNames)
        var batch = DenseJobBatch(capacity: 1, slotCount: slotNames.count)
        batch.append(gradient: gradient.unsafeStorage, variable: variable, slots: try kernelSlots(of: variable))
        withExtendedLifetime(gradient) { batch.run(kernel) }
    }

    /// Applies sparse rows with unique `indices` to one variable (Keras' `_resource_apply_sparse`).
    open func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                  _ coefficients: Coefficients) throws {
        throw OptimizerError.notImplemented(optimizer: name, method: "resourceApplySparse")
    }

    /// Applies sparse rows that may repeat indices: sums repeated rows (first-occurrence order), then
    /// calls ``resourceApplySparse(_:_:_:_:)`` (Keras' `_resource_apply_sparse_duplicate_indices`).
    open func resourceApplySparseDuplicateIndices(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                                  _ coefficients: Coefficients) throws {
        let unique = try IndexedSlices(values: values, indices: indices, denseShape: variable.shape).deduplicated()
        try resourceApplySparse(unique.values, variable, unique.indices, coefficients)
    }

    // MARK: - Applying gradients

    /// Applies gradients to variables (Keras' `apply_gradients`) and returns the new `iterations`.
    ///
    /// Pairs whose gradient is `nil` are skipped with a warning. Gradients are aggregated
    /// (`experimentalAggregateGradients`), clipped, then applied; `iterations` is incremented once.
    /// - Throws: ``OptimizerError/noGradients(variables:)`` when no pair has a gradient, and
    ///   ``OptimizerError/gradientMismatch(variable:message:)`` for a gradient whose shape or dtype
    ///   differs from its variable's.
    @discardableResult
    public func applyGradients(_ gradsAndVars: [(Gradient?, Variable)],
                               experimentalAggregateGradients: Bool = true) throws -> Int64 {
        if gradsAndVars.isEmpty { return iterationCount }
        // One pass splits the pairs into parallel arrays (copying a (Gradient, Variable) tuple is costly:
        // the hot path below touches no tuples) and checks every gradient against its variable.
        var grads: [Gradient] = [], variables: [Variable] = []
        grads.reserveCapacity(gradsAndVars.count)
        variables.reserveCapacity(gradsAndVars.count)
        var missing: [String] = []
        var hasFloat32 = false, hasFloat64 = false
        for (g, v) in gradsAndVars {
            guard let g else { missing.append(v.name); continue }
            grads.append(g)
            variables.append(v)
            if v.dtype == .float32 { hasFloat32 = true } else { hasFloat64 = true }
        }
        if grads.isEmpty { throw OptimizerError.noGradients(variables: gradsAndVars.map { $0.1.name }) }
        if !missing.isEmpty {
            Optimizer.warn("Gradients do not exist for variables [\(missing.map { "'\($0)'" }.joined(separator: ", "))] when minimizing the loss.")
        }
        for i in grads.indices { try checkGradient(grads[i], for: variables[i]) }
        if fusesDenseUpdates {
            // Built-ins create their slots deterministically from the list: build it once.
            if !Optimizer.sameVariables(variables, lastBuiltIDs) {
                try build(variables)
                lastBuiltIDs = variables.map { $0.id }
                positionalKernelSlots.removeAll()
            }
        } else {
            try build(variables)
        }

        var coefficients: [DType: Coefficients] = [:]
        for (dtype, present) in [(DType.float32, hasFloat32), (.float64, hasFloat64)] where present {
            var c = Coefficients(dtype: dtype, iteration: iterationCount)
            try prepare(&c)
            coefficients[dtype] = c
        }
        try willApply(coefficients: coefficients, variables: variables)

        let aggregates = experimentalAggregateGradients && !aggregatesByIdentity
        if aggregates || clipvalue != nil || clipnorm != nil || globalClipnorm != nil || !gradientTransformers.isEmpty {
            var pairs = Array(zip(grads, variables))
            if aggregates {
                pairs = try gradientAggregator(pairs).compactMap { g, v in g.map { ($0, v) } }
            }
            pairs = try transformGradients(pairs)
            for t in gradientTransformers { pairs = try t(pairs) }
            grads = pairs.map { $0.0 }
            variables = pairs.map { $0.1 }
        }
        // Updates run with denormals flushed to zero, as TensorFlow's CPU kernels do (see DenormalFlushing).
        try DenormalFlushing.run { try distributedApply(grads, variables, coefficients) }
        try iterations.assignAdd(Tensor(Int64(1)))
        return iterationCount
    }

    /// Whether `variables` are, in order, the variables with these ids.
    private static func sameVariables(_ variables: [Variable], _ ids: [Int]) -> Bool {
        guard variables.count == ids.count else { return false }
        for i in variables.indices where variables[i].id != ids[i] { return false }
        return true
    }

    /// Applies gradients given beside their variables.
    @discardableResult
    public func applyGradients(_ gradients: [Gradient?], to variables: [Variable]) throws -> Int64 {
        guard gradients.count == variables.count else {
            throw OptimizerError.invalidArgument(field: "gradients", message: "\(gradients.count) gradients for \(variables.count) variables")
        }
        return try applyGradients(Array(zip(gradients, variables)))
    }

    /// Applies dense gradients given as tensors.
    @discardableResult
    public func applyGradients(_ gradsAndVars: [(Tensor, Variable)]) throws -> Int64 {
        try applyGradients(gradsAndVars.map { (Gradient.dense($0.0), $0.1) })
    }

    private func checkGradient(_ g: Gradient, for v: Variable) throws {
        guard v.dtype.isFloatingPoint else {
            throw OptimizerError.gradientMismatch(variable: v.name, message: "cannot update a variable of dtype \(v.dtype)")
        }
        guard g.dtype == v.dtype else {
            throw OptimizerError.gradientMismatch(variable: v.name, message: "gradient dtype \(g.dtype) does not match the variable's \(v.dtype)")
        }
        guard g.shape == v.shape else {
            throw OptimizerError.gradientMismatch(variable: v.name, message: "gradient shape \(g.shape) does not match the variable's \(v.shape)")
        }
    }

    /// Keras' `_transform_gradients`: clipvalue, then clipnorm, then global clipnorm.
    func transformGradients(_ pairs: [(Gradient, Variable)]) throws -> [(Gradient, Variable)] {
        if clipvalue == nil && clipnorm == nil && globalClipnorm == nil { return pairs }
        var pairs = pairs
        if let c = clipvalue { pairs = try pairs.map { (try GradientClipping.clipByValue($0.0, c), $0.1) } }
        if let c = clipnorm { pairs = try pairs.map { (try GradientClipping.clipByNorm($0.0, c), $0.1) } }
        if let c = globalClipnorm {
            let clipped = try GradientClipping.clipByGlobalNorm(pairs.map { $0.0 }, c)
            pairs = Array(zip(clipped, pairs.map { $0.1 }))
        }
        return pairs
    }

    /// Updates every variable: dense ones through the fused kernel in one parallel pass (or one by one),
    /// sparse ones one by one; then constraints, in list order.
    private func distributedApply(_ grads: [Gradient], _ variables: [Variable],
                                  _ coefficients: [DType: Coefficients]) throws {
        var kernel32: DenseKernel?, kernel64: DenseKernel?
        if fusesDenseUpdates {
            if let c = coefficients[.float32] { kernel32 = denseKernel(for: c) }
            if let c = coefficients[.float64] { kernel64 = denseKernel(for: c) }
        }
        let slotNames = kernel32 != nil || kernel64 != nil ? denseKernelSlotNames : []
        useKernelSlotNames(slotNames)
        // The list built last, in the same order (the usual training loop): slots by position, filled
        // the first time each position has a dense gradient.
        let positional = kernel32 != nil || kernel64 != nil ? Optimizer.sameVariables(variables, lastBuiltIDs) : false
        if positional && positionalKernelSlots.count != variables.count {
            positionalKernelSlots = Array(repeating: nil, count: variables.count)
        }
        var batch32 = DenseJobBatch(capacity: kernel32 == nil ? 0 : variables.count, slotCount: slotNames.count)
        var batch64 = DenseJobBatch(capacity: kernel64 == nil ? 0 : variables.count, slotCount: slotNames.count)
        var hasConstraint = false
        for i in variables.indices {
            let v = variables[i]
            switch grads[i] {
            case .sparse(let slices):
                if v.constraint != nil { throw OptimizerError.constraintWithSparseGradient(variable: v.name) }
                try resourceApplySparseDuplicateIndices(slices.values, v, slices.indices, coefficients[v.dtype]!)
            case .dense(let t):
                if v.constraint != nil { hasConstraint = true }
                func slots() throws -> [Variable] {
                    guard positional else { return try kernelSlots(of: v) }
                    if let cached = positionalKernelSlots[i] { return cached }
                    let found = try kernelSlots(of: v)
                    positionalKernelSlots[i] = found
                    return found
                }
                if v.dtype == .float32, kernel32 != nil {
                    batch32.append(gradient: t.unsafeStorage, variable: v, slots: try slots())
                } else if v.dtype == .float64, kernel64 != nil {
                    batch64.append(gradient: t.unsafeStorage, variable: v, slots: try slots())
                } else {
                    try resourceApplyDense(t.untracked, v, coefficients[v.dtype]!)
                }
            }
        }
        withExtendedLifetime(grads) {
            if let kernel32, !batch32.isEmpty { batch32.run(kernel32) }
            if let kernel64, !batch64.isEmpty { batch64.run(kernel64) }
        }
        guard hasConstraint else { return }
        for i in variables.indices {
            if case .dense = grads[i], let constraint = variables[i].constraint {
                try variables[i].assign(try constraint.apply(to: variables[i].untrackedValue).untracked)
            }
        }
    }

    /// Makes the kernel-slot caches hold the slots named `slotNames` (emptied when the names change).
    private func useKernelSlotNames(_ slotNames: [String]) {
        guard slotNames != kernelSlotCacheNames else { return }
        kernelSlotCache.removeAll()
        positionalKernelSlots.removeAll()
        kernelSlotCacheNames = slotNames
    }

    /// The kernel slots of `variable` (named as set by ``useKernelSlotNames(_:)``), looked up once per
    /// variable, then cached.
    private func kernelSlots(of variable: Variable) throws -> [Variable] {
        if let cached = kernelSlotCache[variable.id] { return cached }
        let slotNames = kernelSlotCacheNames
        guard slotNames.count <= DenseJobBatch.maxSlots else {
            throw OptimizerError.invalidArgument(
                field: "denseKernelSlotNames",
                message: "\(name): a dense kernel takes at most \(DenseJobBatch.maxSlots) slots, got \(slotNames.count) (\(slotNames))")
        }
        let slots = try slotNames.map { try slot(for: variable, named: $0) }
        kernelSlotCache[variable.id] = slots
        return slots
    }

    /// Runs dense jobs: the elements of all jobs are split into equal contiguous shares, one per thread,
    /// so many small variables cost one parallel region (a multi-tensor apply).
    static func runDenseJobs(_ jobs: [DenseJob], _ kernel: DenseKernel) {
        jobs.withUnsafeBufferPointer { jobs in
            var total = 0
            for job in jobs { total += job.count }
            let threads = ThreadPool.threadCount
            let grain = 1 << 15
            if threads <= 1 || total < 2 * grain {
                for job in jobs { kernel(job, 0..<job.count) }
                return
            }
            let shares = min(threads, total / grain)
            let perShare = (total + shares - 1) / shares
            ThreadPool.forEach(shares) { share in
                var start = share * perShare
                let end = min(total, start + perShare)
                // Find the job containing `start`, then walk forward.
                var offset = 0, j = 0
                while j < jobs.count && offset + jobs[j].count <= start { offset += jobs[j].count; j += 1 }
                while start < end && j < jobs.count {
                    let local = start - offset
                    let upto = min(jobs[j].count, end - offset)
                    if upto > local { kernel(jobs[j], local..<upto) }
                    start = offset + upto
                    offset += jobs[j].count
                    j += 1
                }
            }
        }
    }

    // MARK: - Minimize

    /// Computes the gradients of `loss` with a tape and applies them (Keras' `minimize`).
    ///
    /// - Parameters:
    ///   - loss: a closure returning the value to minimise.
    ///   - varList: the variables to update.
    ///   - gradLoss: the gradient flowing into the loss (multiplies it), or `nil`.
    ///   - tape: a tape to record on, or `nil` for a new one.
    @discardableResult
    public func minimize(_ loss: () throws -> Tensor, varList: [Variable], gradLoss: Tensor? = nil,
                         tape: GradientTape? = nil) throws -> Int64 {
        let grads = try computeGradients(loss, varList: { varList }, watching: varList, gradLoss: gradLoss, tape: tape)
        return try applyGradients(grads)
    }

    /// `minimize` with the variable list given as a closure, evaluated after the loss (for models whose
    /// variables are created when first called).
    @discardableResult
    public func minimize(_ loss: () throws -> Tensor, varList: () throws -> [Variable], gradLoss: Tensor? = nil,
                         tape: GradientTape? = nil) throws -> Int64 {
        let grads = try computeGradients(loss, varList: varList, watching: [], gradLoss: gradLoss, tape: tape)
        return try applyGradients(grads)
    }

    /// `minimize` with a loss already recorded on `tape` (TensorFlow 2.4+).
    @discardableResult
    public func minimize(_ loss: Tensor, varList: [Variable], gradLoss: Tensor? = nil, tape: GradientTape) throws -> Int64 {
        let grads = try tape.gradient(of: loss, wrt: varList, outputGradients: gradLoss)
        return try applyGradients(Array(zip(grads, varList)))
    }

    /// Keras' `_compute_gradients`: watches a given variable list (so non-trainable variables in it get
    /// gradients too), records `loss()` on the tape, evaluates `varList` after the loss (lazily built
    /// models), then differentiates.
    func computeGradients(_ loss: () throws -> Tensor, varList: () throws -> [Variable], watching: [Variable],
                          gradLoss: Tensor?, tape: GradientTape?) throws -> [(Gradient?, Variable)] {
        let tape = tape ?? GradientTape()
        tape.watch(watching)
        let (value, vars) = try tape.record { () throws -> (Tensor, [Variable]) in
            let value = try loss()
            return (value, try varList())
        }
        let grads = try tape.gradient(of: value, wrt: vars, outputGradients: gradLoss)
        return Array(zip(grads, vars))
    }

    /// The gradients of `loss` with respect to `params` (Keras' legacy `get_gradients`).
    /// - Throws: ``OptimizerError/missingGradient(variable:)`` when a variable gets none.
    public func getGradients(_ loss: () throws -> Tensor, params: [Variable]) throws -> [Tensor] {
        let grads = try computeGradients(loss, varList: { params }, watching: params, gradLoss: nil, tape: nil)
        return try grads.map { g, v in
            guard let g else { throw OptimizerError.missingGradient(variable: v.name) }
            return try g.denseValue
        }
    }

    /// A step built once and run many times: computes the gradients of `loss` and applies them (Keras'
    /// graph-mode `minimize` returning an op to `run()`).
    public func minimizeStep(_ loss: @escaping () throws -> Tensor, varList: @escaping () throws -> [Variable],
                             gradLoss: Tensor? = nil) -> TrainingStep {
        TrainingStep { [unowned self] in
            try self.minimize(loss, varList: varList, gradLoss: gradLoss)
        }
    }

    /// Keras' legacy `get_updates`: the list of update operations (one step) for `loss`.
    public func getUpdates(_ loss: @escaping () throws -> Tensor, params: [Variable]) -> [TrainingStep] {
        [TrainingStep { [unowned self] in
            let grads = try self.getGradients(loss, params: params)
            return try self.applyGradients(Array(zip(grads.map { Gradient.dense($0) }, params)))
        }]
    }

    // MARK: - Distribution

    /// Keras' `all_reduce_sum_gradients`: sums each gradient across replicas. With one replica (this
    /// process) it is the identity; a multi-worker strategy replaces it through `gradientAggregator`.
    public static func allReduceSumGradients(_ gradsAndVars: [(Gradient?, Variable)]) -> [(Gradient?, Variable)] {
        gradsAndVars
    }

    /// Keras' `_HAS_AGGREGATE_GRAD`: whether `applyGradients` aggregates before clipping.
    open var hasAggregateGradients: Bool { true }

    // MARK: - Config

    /// The Keras class name used in serialized configs (defaults to the Swift class name).
    open class var kerasClassName: String { String(describing: self) }

    /// The constructor arguments as Keras' `get_config` writes them (override, call `super`, add keys).
    open var config: JSONObject {
        get throws { baseConfig() }
    }

    /// `name` and the clip options that are set: Keras' base `get_config`.
    private func baseConfig() -> JSONObject {
        var c = JSONObject()
        c["name"] = .string(name)
        func number(_ key: String, _ value: Double) -> JSONValue {
            // An integer written in the config it was built from stays an integer (`"clipvalue": 2`).
            if let original = configNumbers[key], original.doubleValue == value { return original }
            return .double(value)
        }
        if let clipnorm { c["clipnorm"] = number("clipnorm", clipnorm) }
        if let clipvalue { c["clipvalue"] = number("clipvalue", clipvalue) }
        if let globalClipnorm { c["global_clipnorm"] = number("global_clipnorm", globalClipnorm) }
        return c
    }

    /// The base config followed by `learning_rate` and `decay`, the keys every built-in writes first (in
    /// Keras' order); built-ins add their own keys after these.
    public func configWithLearningRate() throws -> JSONObject {
        var c = baseConfig()
        c["learning_rate"] = try serializedHyper("learning_rate")
        c["decay"] = .double(decay)
        return c
    }

    /// The serialized hyperparameter `name` (Keras' `_serialize_hyperparameter`).
    public func serializedHyper(_ name: String) throws -> JSONValue {
        guard let entry = hypers.first(where: { $0.name == name }) else {
            throw OptimizerError.invalidHyperparameter(name: name, message: "\(self.name) has no such hyperparameter")
        }
        switch entry.storage {
        case .variable(let v): return .double(Double(Float(try v.untrackedValue.item())))
        case .raw(let h): return try h.serialized()
        }
    }

    // MARK: - Warnings

    private static let warningSink = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// Where warnings (e.g. missing gradients) go; standard error by default.
    public static func setWarningHandler(_ handler: (@Sendable (String) -> Void)?) {
        warningSink.withLock { $0 = handler }
    }

    static func warn(_ message: String) {
        if let handler = warningSink.withLock({ $0 }) { handler(message) } else { printToStandardError("WARNING: " + message) }
    }
}

/// A training step built once and run many times (Keras' graph-mode update op).
public final class TrainingStep {
    private let body: () throws -> Int64
    init(_ body: @escaping () throws -> Int64) { self.body = body }
    /// Runs the step; returns the optimizer's new `iterations`.
    @discardableResult public func run() throws -> Int64 { try body() }
}

/// How a slot (or weight) starts.
public enum SlotInitializer: Sendable {
    /// All zeros.
    case zeros
    /// All ones.
    case ones
    /// Every element `value`.
    case constant(Double)
    /// A given value (its shape wins over the requested one).
    case value(Tensor)

    func makeValue(shape: [Int], dtype: DType) throws -> Tensor {
        switch self {
        case .zeros: return try Tensor.zeros(shape: shape, dtype: dtype)
        case .ones: return try Tensor.ones(shape: shape, dtype: dtype)
        case .constant(let c): return try Tensor(repeating: c, shape: shape, dtype: dtype)
        case .value(let t): return t.cast(to: dtype).untracked
        }
    }
}

/// Coefficients of one step for one dtype, computed once before any update (Keras' `apply_state`).
public struct Coefficients: Sendable {
    /// The dtype the coefficients are computed in.
    public let dtype: DType
    /// `iterations` before this step (`k`).
    public let iteration: Int64
    private var values: [String: TypedScalar] = [:]

    public init(dtype: DType, iteration: Int64) {
        self.dtype = dtype
        self.iteration = iteration
    }

    /// A coefficient by name; reading a missing one is an internal error.
    public subscript(name: String) -> TypedScalar {
        get {
            guard let v = values[name] else { preconditionFailure("coefficient '\(name)' was not prepared") }
            return v
        }
        set { values[name] = newValue }
    }

    /// Whether a coefficient exists.
    public func contains(_ name: String) -> Bool { values[name] != nil }

    /// The scalar `value` in this dtype.
    public func scalar(_ value: Double) -> TypedScalar { TypedScalar(value, dtype) }
}

/// One variable's dense update: raw pointers to the variable, its gradient and its slots.
///
/// A job holds no references (it is trivially copyable, so building and handing out thousands of jobs
/// costs no reference counting); whoever makes jobs keeps their buffers alive in a ``DenseJobBatch``
/// for the duration of the update. The variable and slot buffers are unique to their variables then.
public struct DenseJob: @unchecked Sendable {
    // @unchecked Sendable invariant: the pointers stay valid while the batch that made the job is alive,
    // and concurrent kernels touch disjoint element ranges of these buffers.
    @usableFromInline let variableBase: UnsafeMutableRawPointer
    @usableFromInline let gradientBase: UnsafeRawPointer
    @usableFromInline let slotBase0: UnsafeMutableRawPointer?
    @usableFromInline let slotBase1: UnsafeMutableRawPointer?
    @usableFromInline let slotBase2: UnsafeMutableRawPointer?
    @usableFromInline let slotBase3: UnsafeMutableRawPointer?
    /// The number of elements of the variable (and of the gradient and each slot).
    public let count: Int

    /// Typed pointer to the variable's elements.
    @inlinable public func variablePointer<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        variableBase.assumingMemoryBound(to: T.self)
    }
    /// Typed pointer to the gradient's elements.
    @inlinable public func gradientPointer<T>(_: T.Type) -> UnsafePointer<T> {
        gradientBase.assumingMemoryBound(to: T.self)
    }
    /// Typed pointer to slot `i` (in ``Optimizer/denseKernelSlotNames`` order; at most four).
    @inlinable public func slotPointer<T>(_ i: Int, _: T.Type) -> UnsafeMutablePointer<T> {
        let base: UnsafeMutableRawPointer?
        switch i {
        case 0: base = slotBase0
        case 1: base = slotBase1
        case 2: base = slotBase2
        case 3: base = slotBase3
        default: base = nil
        }
        guard let base else { preconditionFailure("dense job has no slot \(i)") }
        return base.assumingMemoryBound(to: T.self)
    }
}

/// Dense jobs and the buffers they point into: the batch owns one reference to every variable and slot
/// buffer, so the jobs stay valid while the batch is alive; the caller keeps the gradients alive.
struct DenseJobBatch {
    /// The most kernel slots a dense job carries.
    static let maxSlots = 4
    private(set) var jobs: [DenseJob] = []
    private var buffers: [TensorStorage] = []

    /// The number of kernel slots of every job.
    let slotCount: Int

    init(capacity: Int, slotCount: Int) {
        self.slotCount = slotCount
        jobs.reserveCapacity(capacity)
        buffers.reserveCapacity(capacity * (1 + slotCount))
    }

    var isEmpty: Bool { jobs.isEmpty }

    /// Adds the update of `variable` by `gradient` with the given kernel slots (made unique here). The
    /// caller keeps `gradient` alive until the batch has run.
    mutating func append(gradient: TensorStorage, variable: Variable, slots: [Variable]) {
        precondition(slots.count == slotCount, "dense job for '\(variable.name)' with \(slots.count) slots, expected \(slotCount)")
        let v = variable.uniqueStorageForUpdate()
        buffers.append(v)
        var bases: (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                    UnsafeMutableRawPointer?) = (nil, nil, nil, nil)
        for i in slots.indices {
            let storage = slots[i].uniqueStorageForUpdate()
            buffers.append(storage)
            switch i {
            case 0: bases.0 = storage.base
            case 1: bases.1 = storage.base
            case 2: bases.2 = storage.base
            default: bases.3 = storage.base
            }
        }
        jobs.append(DenseJob(variableBase: v.base, gradientBase: UnsafeRawPointer(gradient.base),
                             slotBase0: bases.0, slotBase1: bases.1, slotBase2: bases.2, slotBase3: bases.3,
                             count: variable.scalarCount))
    }

    /// Runs `kernel` over every job (see ``Optimizer/runDenseJobs(_:_:)``), keeping the buffers alive.
    func run(_ kernel: DenseKernel) {
        withExtendedLifetime(buffers) { Optimizer.runDenseJobs(jobs, kernel) }
    }
}

/// A fused dense update over elements `range` of one job. Called concurrently on disjoint ranges.
public typealias DenseKernel = @Sendable (DenseJob, Range<Int>) -> Void

