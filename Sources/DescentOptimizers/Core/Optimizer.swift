@_spi(DescentInternals) import DescentAutodiff
import DescentDistribute
@_spi(DescentInternals) import DescentTensor
import Synchronization

/// A transformation of the (gradient, variable) list, run inside ``Optimizer/applyGradients(_:)``.
public typealias GradientTransformer = ([(Gradient, Variable)]) throws -> [(Gradient, Variable)]
/// Cross-replica gradient aggregation (Keras' `gradient_aggregator`): sums gradients over replicas.
public typealias GradientAggregator = ([(Gradient?, Variable)]) throws -> [(Gradient?, Variable)]

/// The base class of every optimizer: Keras' `OptimizerV2`.
///
/// It owns the lifecycle of an update, so that subclasses only state their rule:
/// 1. check every (gradient, variable) pair: dtypes, shapes, sparse indices, constraints;
/// 2. `build(_:)` — create `iterations`, the hyperparameter variables and the slots
///    (``createSlots(for:)``), in TensorFlow's order;
/// 3. ``prepare(_:)`` — compute the step's coefficients once per dtype, before any update, from the
///    learning rate after its schedule and `decay`;
/// 4. aggregate (``experimentalAggregateGradients``), then clip: `clipvalue` → `clipnorm` →
///    `globalClipnorm` → `gradientTransformers`; build the fused kernels (``denseKernel(for:)``) and
///    run ``validateSparseUpdates(_:)``. Nothing has been written yet: if any of steps 1–4 throws, the
///    weights created in step 2 are removed and the call changes nothing;
/// 5. ``willApply(coefficients:variables:)``, then update each variable: dense gradients go to the
///    fused kernel, all variables in one parallel pass, or to ``resourceApplyDense(_:_:_:)``; sparse
///    gradients (``IndexedSlices``) to ``resourceApplySparseDuplicateIndices(_:_:_:_:)``. A variable
///    listed more than once is updated once per occurrence, in list order;
/// 6. apply each variable's constraint after its dense update; then increment `iterations`.
///
/// With sharded state (``setShardsStateAcrossReplicas(_:)``, ZeRO stage 1) each replica sums, clips and
/// updates only the variables it owns, then gathers the others from their owners.
///
/// **Thread safety**: an optimizer is thread-compatible, not thread-safe (as in TensorFlow): use one
/// optimizer from one thread at a time. Its kernels use all cores internally.
///
/// To write an optimizer, subclass and override ``createSlots(for:)``, ``prepare(_:)`` (optional),
/// ``resourceApplyDense(_:_:_:)``, ``resourceApplySparse(_:_:_:_:)`` and ``config``; register the
/// class for deserialization with ``Optimizer/register(className:factory:)``. Its
/// `init(config:customObjects:)` reads the config with ``ConfigReader``; a sparse rule updates the
/// touched rows in place with `Variable.withMutableRows(_:as:_:)` or `scatterAdd`/`scatterSub`/`scatterUpdate`.
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
    let aggregatesByIdentity: Bool
    /// Functions applied to the gradients after clipping, in order.
    public let gradientTransformers: [GradientTransformer]
    /// The distribution strategy whose scope this optimizer was created in (``Strategy/default``
    /// outside every scope). `applyGradients` sums gradients across its replicas (or those of the
    /// scope it is called in); a deserialized optimizer gets it the same way.
    public let distributionStrategy: Strategy

    /// The hyperparameters in the order they were set (see ``setHyper(_:_:)``).
    var hypers: [(name: String, storage: HyperStorage)] = []
    /// Numbers of the config this optimizer was deserialized from, to write them back in their form.
    var configNumbers: [String: JSONValue] = [:]
    private var hypersCreated = false
    private var iterationsVariable: Variable?
    var slotStore: [Int: [(name: String, variable: Variable)]] = [:]
    /// The sharded state (``setShardsStateAcrossReplicas(_:)``) under a strategy of several replicas.
    var sharding: ShardedState?
    /// Whether ``setShardsStateAcrossReplicas(_:)`` turned sharding on.
    var shardingRequested = false
    /// The kernel slots of each variable (by id) in `kernelSlotCacheNames` order, so a fused update does
    /// not look slots up by name every step. Cleared whenever a slot is created.
    var kernelSlotCache: [Int: [Variable]] = [:]
    var kernelSlotCacheNames: [String] = []
    /// The kernel slots of the variables of the last list (`lastListIDs`), by position: the common case
    /// of the same list every step needs no dictionary look-up. Cleared whenever a slot is created.
    var positionalKernelSlots: [[Variable]?] = []
    /// Whether every position of `positionalKernelSlots` is filled (no per-step look-up needed).
    var positionalKernelSlotsComplete = false
    /// The ids of the variables of the last `applyGradients` list, in order: the key of the per-list
    /// caches below and of `positionalKernelSlots`.
    var lastListIDs: [Int] = []
    /// For the last list: `nil` when no variable occurs twice, else the positions of each "wave" (the
    /// first occurrence of every variable in wave 0, the second in wave 1, ...), each in list order.
    var lastListWaves: [[Int]]?
    /// Whether the last list was built and no slot was created since: a built-in (deterministic
    /// `createSlots`) skips re-building the same list.
    var lastListBuilt = false
    /// The optimizer's variables held by this replica, in creation order: `iterations` first, then
    /// slots (all of them unless the state is sharded).
    var heldWeights: [Variable] = []
    /// The optimizer's variables in creation order (TensorFlow's): `iterations` first, then slots.
    ///
    /// With sharded state (``setShardsStateAcrossReplicas(_:)``) the slots held by other replicas are
    /// gathered from them, as fresh variables holding their current values: reading it is then a
    /// collective that every replica must do at the same point (see ``localWeights``); the gathered list
    /// is kept until the next step, `build` or `setWeights`, so repeated reads cost one collective.
    public var weights: [Variable] { allWeights() }
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
        self.distributionStrategy = Strategy.current
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
    open var learningRate: Hyperparameter {
        get { (try? hyper("learning_rate")) ?? .number(.nan) }
        set { setHyper("learning_rate", newValue) }
    }

    /// Keras' backward-compatible alias of ``learningRate``.
    public var lr: Hyperparameter {
        get { learningRate }
        set { learningRate = newValue }
    }

    /// The `float32` variable behind a numeric learning rate (Keras' `opt.lr` once built, as in
    /// `opt.lr.assign(3.0)`); `nil` when the learning rate is a schedule, closure or tensor (or a number
    /// assigned after one of those replaced the variable: it stays a plain number, as in Keras), or when
    /// this optimizer has no `learning_rate` hyperparameter. Assigning the variable sets the rate of
    /// the following steps.
    ///
    /// Before the first step this creates the hyperparameter variables (all numeric ones, once), as
    /// Keras' `_get_hyper` does; they are what the first and every later step read, and what
    /// ``setHyper(_:_:)`` with a number assigns from then on (so the variable returned here stays the
    /// one in use until a schedule, closure or tensor replaces it). They are not in ``weights`` (as in
    /// Keras). Inside a distribution strategy's scope, creating them is the same collective as the
    /// first step's `build`: read it on every replica. An override should return the variable its
    /// update rule reads.
    open var learningRateVariable: Variable? {
        (try? hyperparameterVariable(named: "learning_rate")) ?? nil
    }

    /// Replaces numeric hyperparameters by `float32` variables (Keras' `_create_hypers`), once.
    func createHypersIfNeeded() {
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
        heldWeights.append(v)
        sharding?.appendReplicated(v)
        return v
    }

    /// Replaces `iterations` with a given `int64` scalar variable; only before it was created.
    public func setIterations(_ variable: Variable) throws {
        guard iterationsVariable == nil else { throw OptimizerError.iterationsAlreadyCreated(optimizer: name) }
        guard variable.dtype == .int64, variable.shape.isEmpty else {
            throw OptimizerError.invalidArgument(field: "iterations", message: "expected an int64 scalar variable, got \(variable.dtype) \(variable.shape)")
        }
        iterationsVariable = variable
        heldWeights.append(variable)
        sharding?.appendReplicated(variable)
    }

    /// The current value of `iterations`, read as the `int64` it is (exact for every count, including
    /// `Int64.max` and the wrapped-around values after it).
    public var iterationCount: Int64 {
        // `iterations` is an int64 scalar by construction (`setIterations` checks it).
        (try? iterations.untrackedValue.withUnsafeBufferPointer(as: Int64.self) { $0.first ?? 0 }) ?? 0
    }

    /// The optimizer's variables (Keras' `variables()`): the same list as ``weights``.
    public func variables() -> [Variable] { weights }

    /// The values of ``weights``, in order (Keras' `get_weights`): a collective with sharded state.
    public func getWeights() -> [Tensor] { allWeights().map(\.untrackedValue) }

    /// Assigns values to ``weights`` in order (Keras' `set_weights`). The optimizer must be built first
    /// (``build(_:)`` or one ``applyGradients(_:)``). The whole list is checked before any weight is
    /// assigned: a call that throws changes nothing. With sharded state the list is still the full one
    /// (as ``weights``); this replica keeps the values of the weights it holds.
    /// - Throws: ``OptimizerError/weightCountMismatch(optimizer:expected:given:)``,
    ///   ``OptimizerError/weightShapeMismatch(weight:expected:given:)`` or
    ///   ``OptimizerError/invalidWeightValue(weight:message:)`` (a floating-point value for the `int64`
    ///   iteration count that is not a whole number in its range) naming the weight.
    open func setWeights(_ values: [Tensor]) throws {
        let targets = weightTargets()
        guard values.count == targets.count else {
            throw OptimizerError.weightCountMismatch(optimizer: name, expected: targets.count, given: values.count)
        }
        for (w, v) in zip(targets, values) {
            guard w.shape == v.shape else {
                throw OptimizerError.weightShapeMismatch(weight: w.name, expected: w.shape, given: v.shape)
            }
            if w.dtype == .int64 && v.dtype != .int64 {
                // Exactly representable: whole numbers in [-2^63, 2^63).
                if let bad = v.doubles.first(where: { !($0.rounded(.towardZero) == $0 && $0 >= -0x1p63 && $0 < 0x1p63) }) {
                    throw OptimizerError.invalidWeightValue(
                        weight: w.name, message: "\(bad) is not an int64 value (expected a whole number in [-2^63, 2^63); pass an int64 tensor for large counts)")
                }
            }
        }
        // Cannot fail: shapes were checked and the cast gives the weight's dtype.
        for (w, v) in zip(targets, values) { try w.local?.assign(v.cast(to: w.dtype)) }
        sharding?.invalidateGathered()
    }

    /// Adds a non-slot variable to ``weights`` (Keras' `add_weight`).
    ///
    /// Weights and slots created during an ``applyGradients(_:)`` or ``build(_:)`` call that throws are
    /// removed from ``weights`` again: a subclass that keeps a reference to one (as Nadam keeps its
    /// momentum cache) re-creates it in ``createSlots(for:)`` when it is no longer in ``weights``.
    @discardableResult
    public func addWeight(name: String, shape: [Int], dtype: DType = .float32, initializer: SlotInitializer = .zeros,
                          trainable: Bool = false) throws -> Variable {
        try addWeight(fullName: "\(self.name)/\(name)", shape: shape, dtype: dtype, initializer: initializer, trainable: trainable)
    }

    /// ``addWeight(name:shape:dtype:initializer:trainable:)`` with the variable's full name given.
    func addWeight(fullName: String, shape: [Int], dtype: DType, initializer: SlotInitializer,
                   trainable: Bool) throws -> Variable {
        let v = Variable(try initializer.makeValue(shape: shape, dtype: dtype), name: fullName, trainable: trainable)
        heldWeights.append(v)
        sharding?.appendReplicated(v)
        return v
    }

    // MARK: - Slots

    /// Creates (or returns the existing) slot `slotName` for `variable` (Keras' `add_slot`); new slots are
    /// appended to ``weights``. With sharded state, a slot of a variable owned by another replica is only
    /// recorded (it lives there) and an empty placeholder variable is returned.
    @discardableResult
    public func addSlot(_ variable: Variable, _ slotName: String, initializer: SlotInitializer = .zeros,
                        shape: [Int]? = nil) throws -> Variable {
        try addSlot(variable, slotName, initializer: initializer, shape: shape, fullName: nil, dtype: nil)
    }

    /// ``addSlot(_:_:initializer:shape:)`` with the variable's full name (default
    /// `"<optimizer>/<variable>/<slot>"`) and dtype (default the variable's) given.
    func addSlot(_ variable: Variable, _ slotName: String, initializer: SlotInitializer, shape: [Int]?,
                 fullName givenName: String?, dtype: DType?) throws -> Variable {
        if !slotNames.contains(slotName) { slotNames.append(slotName) }
        if let existing = slotStore[variable.id]?.first(where: { $0.name == slotName }) { return existing.variable }
        if let sharding, let placeholder = remoteSlot(sharding, for: variable, slotName, initializer: initializer, shape: shape) {
            return placeholder
        }
        let value = try initializer.makeValue(shape: shape ?? variable.shape, dtype: dtype ?? variable.dtype)
        let fullName = givenName ?? "\(name)/\(variable.name)/\(slotName)"
        // A sharded slot exists on one replica only: it must not be mirrored (a collective).
        let slot = Variable(value, name: fullName, trainable: false, observed: sharding == nil)
        slotStore[variable.id, default: []].append((slotName, slot))
        invalidateSlotCaches()
        heldWeights.append(slot)
        sharding?.appendHeldSlot(slot, variableID: variable.id, named: slotName)
        return slot
    }

    /// Removes `weight` from ``weights`` (Keras 3 untracks its learning-rate variable when a schedule
    /// replaces it).
    func removeHeldWeight(_ weight: Variable) {
        heldWeights.removeAll { $0 === weight }
    }

    /// Forgets the cached slot look-ups (after a slot was created or removed).
    func invalidateSlotCaches() {
        kernelSlotCache.removeAll()
        positionalKernelSlots.removeAll()
        positionalKernelSlotsComplete = false
        lastListBuilt = false
    }

    /// How far ``weights`` reached before a call that may create weights (see ``rollBackWeights(to:)``).
    struct WeightsMark {
        let weightCount: Int
        let slotNameCount: Int
        let hadIterations: Bool
        let shard: ShardedState.Mark?
    }

    /// The current extent of ``weights``, `iterations` and ``slotNames``.
    var weightsMark: WeightsMark {
        WeightsMark(weightCount: heldWeights.count, slotNameCount: slotNames.count, hadIterations: iterationsVariable != nil,
                    shard: sharding?.mark)
    }

    /// Removes the weights, slots, slot names and `iterations` created since `mark`, so that a call that
    /// throws leaves the optimizer as it found it.
    func rollBackWeights(to mark: WeightsMark) {
        // A replica may have recorded only slots held elsewhere: the list must still be built again.
        if let shard = mark.shard, sharding?.rollBack(to: shard) == true { invalidateSlotCaches() }
        guard heldWeights.count > mark.weightCount || slotNames.count > mark.slotNameCount
            || (!mark.hadIterations && iterationsVariable != nil) else { return }
        let removed = Set(heldWeights[mark.weightCount...].map(ObjectIdentifier.init))
        heldWeights.removeSubrange(mark.weightCount...)
        slotNames.removeSubrange(mark.slotNameCount...)
        if !mark.hadIterations { iterationsVariable = nil }
        if !removed.isEmpty {
            for (id, slots) in slotStore {
                let kept = slots.filter { !removed.contains(ObjectIdentifier($0.variable)) }
                if kept.count != slots.count { slotStore[id] = kept.isEmpty ? nil : kept }
            }
        }
        invalidateSlotCaches()
    }

    /// The slot `slotName` of `variable` (Keras' `get_slot`).
    ///
    /// With sharded state, a slot held by another replica is the copy gathered by the last read of
    /// ``weights`` (valid until the next step, `build` or `setWeights`; assigning it changes only the
    /// copy), as a model file's writer reads it right after reading ``weights``.
    /// - Throws: ``OptimizerError/slotNotFound(variable:slot:available:)``;
    ///   ``OptimizerError/invalidArgument(field:message:)`` for a slot held by another replica when no
    ///   such copy is current.
    public func slot(for variable: Variable, named slotName: String) throws -> Variable {
        let slots = slotStore[variable.id] ?? []
        guard let s = slots.first(where: { $0.name == slotName }) else {
            if let sharding, let copy = sharding.gatheredCopy(ofSlot: slotName, variableID: variable.id) { return copy }
            if let owner = sharding?.remoteOwner(ofSlot: slotName, variableID: variable.id) {
                throw OptimizerError.invalidArgument(
                    field: "slot", message: "\(name): slot '\(slotName)' of variable '\(variable.name)' is held by replica \(owner) (the optimizer's state is sharded across replicas; read weights first, on every replica, to gather it)")
            }
            throw OptimizerError.slotNotFound(variable: variable.name, slot: slotName, available: slots.map(\.name))
        }
        return s.variable
    }

    /// Whether `variable` has slots yet.
    func hasSlots(_ variable: Variable) -> Bool { slotStore[variable.id] != nil }

    /// Creates `iterations`, the hyperparameter variables and the slots of `variables` (Keras'
    /// `_create_all_weights`), so that ``setWeights(_:)`` can load a saved state before training.
    ///
    /// The variables are checked first; if ``createSlots(for:)`` throws, the weights it created are
    /// removed again, so a call that throws leaves ``weights`` unchanged.
    /// - Throws: ``OptimizerError/gradientMismatch(variable:message:)`` for a variable that is not
    ///   floating-point, or what ``createSlots(for:)`` throws.
    open func build(_ variables: [Variable]) throws {
        for v in variables where !v.dtype.isFloatingPoint {
            throw OptimizerError.gradientMismatch(variable: v.name, message: "cannot update a variable of dtype \(v.dtype)")
        }
        let mark = weightsMark
        do {
            try buildUnchecked(variables)
        } catch {
            rollBackWeights(to: mark)
            throw error
        }
    }

    /// ``build(_:)`` for variables already checked, without the roll-back (the caller's).
    func buildUnchecked(_ variables: [Variable]) throws {
        _ = iterations
        createHypersIfNeeded()
        sharding?.assign(variables)
        try createSlots(for: variables)
    }

    // MARK: - Subclass hooks

    /// Creates the slots of `variables`, in TensorFlow's order (override; the default creates none).
    open func createSlots(for variables: [Variable]) throws {}

    /// Adds the step's coefficients for one dtype (override and call `super`, which sets `"lr_t"`).
    /// Runs once per dtype per ``applyGradients(_:)``, before any update.
    open func prepare(_ coefficients: inout Coefficients) throws {
        if hypers.contains(where: { $0.name == "learning_rate" }) {
            coefficients.set("lr_t", try decayedLearningRate(coefficients.dtype))
        }
    }

    /// Called once per ``applyGradients(_:)`` after the coefficients of every dtype are prepared and before
    /// any update (Nadam advances its momentum cache here).
    open func willApply(coefficients: [DType: Coefficients], variables: [Variable]) throws {}

    /// A fused kernel for dense updates with these coefficients (built-ins), or `nil`. Read every
    /// coefficient here, before returning the closure: ``applyGradients(_:)`` builds the kernels before
    /// any variable is written, so a missing coefficient fails the call without a partial update.
    open func denseKernel(for coefficients: Coefficients) throws -> DenseKernel? { nil }

    /// Checks, before any variable is written, that this step's sparse updates can run with these
    /// coefficients (called once per dtype that has a sparse gradient, after ``prepare(_:)``). Throw here
    /// rather than in ``resourceApplySparse(_:_:_:_:)``, so that a failing step changes nothing. Ftrl
    /// checks its kernel's argument ranges here. The default checks nothing.
    open func validateSparseUpdates(_ coefficients: Coefficients) throws {}

    /// Whether ``applyGradients(_:)`` sends all dense variables through ``denseKernel(for:)`` in one
    /// parallel pass instead of calling ``resourceApplyDense(_:_:_:)`` per variable. Built-ins return
    /// `true` only when the dynamic type is exactly theirs, so a subclass that overrides
    /// `resourceApplyDense` is always called; a subclass that keeps the built-in rule may return `true`.
    open var fusesDenseUpdates: Bool { false }

    /// The slots a dense kernel reads and writes, in order (for the variable of each job).
    open var denseKernelSlotNames: [String] { [] }

    /// Applies a dense gradient to one variable (Keras' `_resource_apply_dense`).
    open func resourceApplyDense(_ gradient: Tensor, _ variable: Variable, _ coefficients: Coefficients) throws {
        guard let kernel = try denseKernel(for: coefficients) else {
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

    // MARK: - Distribution

    /// The default `gradientAggregator` as a function of pairs: the identity. The sum across replicas
    /// (Keras' `all_reduce_sum_gradients`) is done by the optimizer's strategy
    /// (``distributionStrategy``, ``Strategy/sumGradients(_:for:)``) when no aggregator is given.
    public static func allReduceSumGradients(_ gradsAndVars: [(Gradient?, Variable)]) -> [(Gradient?, Variable)] {
        gradsAndVars
    }

    /// Optimizers whose variables follow this one's in ``weights`` (Keras 3's `LossScaleOptimizer` and
    /// `MultiOptimizer` list their inner optimizers' variables after their own).
    var childOptimizers: [Optimizer] { [] }

    /// Whether clipping applies to each replica's gradients before they are summed (Keras 3), so that a
    /// training loop must not sum them first.
    var clipsBeforeSumming: Bool { false }

    /// Whether ``setShardsStateAcrossReplicas(_:)`` may turn sharded state on for this class.
    open var supportsShardedState: Bool { true }

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

    private static let warningSink = SanitizerVisibleMutex<(@Sendable (String) -> Void)?>(nil)

    /// Where warnings (e.g. missing gradients) go; standard error by default.
    public static func setWarningHandler(_ handler: (@Sendable (String) -> Void)?) {
        warningSink.withLock { $0 = handler }
    }

    static func warn(_ message: String) {
        if let handler = warningSink.withLock({ $0 }) { handler(message) } else { printToStandardError("WARNING: " + message) }
    }
}
