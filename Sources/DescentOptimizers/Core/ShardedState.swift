@_spi(DescentInternals) import DescentAutodiff
import DescentDistribute
@_spi(DescentInternals) import DescentTensor

// Sharded optimizer state (ZeRO stage 1, PyTorch's `ZeroRedundancyOptimizer`): each replica keeps the
// slots of the variables it owns. `Optimizer+ShardedApply.swift` has the step; this file the option,
// the partition and the full (unsharded) view of the state that checkpoints read and write.

/// One of a sharded optimizer's weights, in the order an unsharded optimizer lists them.
struct ShardedWeight {
    let name: String
    let shape: [Int]
    let dtype: DType
    /// The replica that holds it; `nil`: every replica (`iterations`, weights from `addWeight`).
    let owner: Int?
    /// This replica's variable; `nil` for a slot another replica holds.
    let local: Variable?
    /// For a slot: its variable's id and the slot's name.
    let slotOf: (variableID: Int, slotName: String)?

    var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
}

/// What one optimizer on one replica knows about its sharded state: who owns each variable, and the
/// full list of weights (those held here and those held elsewhere) in TensorFlow's order.
final class ShardedState {
    /// The strategy whose replicas share the state.
    let strategy: Strategy
    /// This replica and the number of replicas.
    let rank: Int, replicas: Int
    /// The owning replica of each partitioned variable, by variable id.
    private(set) var owners: [Int: Int] = [:]
    /// Ids in the order they were assigned (for roll-back).
    private var assignedIDs: [Int] = []
    /// The elements assigned to each replica.
    private(set) var loads: [Int]
    /// Every weight in TensorFlow's order.
    private(set) var layout: [ShardedWeight] = [] {
        didSet { lastGather = nil }
    }
    /// The full list of the last gather, kept until the state changes (``invalidateGathered()``), so
    /// that reading ``Optimizer/weights`` several times (a save reads it three times) costs one
    /// collective, and replicas that read it a different number of times still agree.
    private var lastGather: [Variable]?
    /// The number of slots in `layout` (held here or elsewhere): the same on every replica.
    private(set) var slotEntryCount = 0
    /// The owner of each slot held elsewhere: variable id → slot name → replica.
    private var remoteSlots: [Int: [String: Int]] = [:]
    /// Staging memory of the collectives, reused every step.
    let staging = CollectiveStaging()
    /// For the optimizer's last list (`lastListIDs`): the positions of the variables owned here.
    var ownedPositions: [Int] = []
    /// Whether `ownedPositions` belongs to the current last list.
    var ownedPositionsValid = false
    /// What `addSlot` returns for a slot held by another replica (an empty variable).
    let placeholder: Variable

    init(strategy: Strategy) {
        self.strategy = strategy
        rank = strategy.replicaID
        replicas = strategy.numReplicasInSync
        loads = Array(repeating: 0, count: replicas)
        placeholder = Variable(Tensor([] as [Float]), name: "sharded-slot-placeholder", trainable: false, observed: false)
    }

    // Variables made here are created with `observed: false`: a strategy's scope would broadcast every
    // new variable from rank 0, but sharded slots exist on one replica only (and start from their
    // initializer, the same everywhere), and gathered copies are equal on every replica already.
    // (Not through `VariableCreation.$observer.withValue(nil)`: in a release build that crashed in
    // `swift_task_localValuePush` when called outside any task, inside the strategy's own `withValue`.)

    // MARK: Partition

    /// Assigns the variables of `variables` that have no owner yet (PyTorch's greedy partition).
    func assign(_ variables: [Variable]) {
        var seen = Set<Int>(), fresh: [Variable] = []
        for v in variables where owners[v.id] == nil && seen.insert(v.id).inserted { fresh.append(v) }
        assign(ids: fresh.map(\.id), sizes: fresh.map(\.scalarCount))
    }

    func assign(ids: [Int], sizes: [Int]) {
        guard !ids.isEmpty else { return }
        let (assigned, newLoads) = ShardPartition.greedy(sizes: sizes, loads: loads)
        for (id, owner) in zip(ids, assigned) {
            owners[id] = owner
            assignedIDs.append(id)
        }
        loads = newLoads
    }

    /// The owner of `variable`, assigning it now if it has none.
    func owner(of variable: Variable) -> Int {
        if let o = owners[variable.id] { return o }
        assign([variable])
        return owners[variable.id]!
    }

    // MARK: Layout

    /// Appends a weight every replica holds.
    func appendReplicated(_ v: Variable) {
        layout.append(ShardedWeight(name: v.name, shape: v.shape, dtype: v.dtype, owner: nil, local: v, slotOf: nil))
    }

    /// Appends a slot held here.
    func appendHeldSlot(_ slot: Variable, variableID: Int, named slotName: String) {
        appendSlot(ShardedWeight(name: slot.name, shape: slot.shape, dtype: slot.dtype, owner: rank, local: slot,
                                 slotOf: (variableID, slotName)))
    }

    /// Records a slot that `owner` holds, once.
    func appendRemoteSlot(name: String, shape: [Int], dtype: DType, owner: Int, variableID: Int, named slotName: String) {
        guard remoteSlots[variableID]?[slotName] == nil else { return }
        appendSlot(ShardedWeight(name: name, shape: shape, dtype: dtype, owner: owner, local: nil, slotOf: (variableID, slotName)))
    }

    private func appendSlot(_ entry: ShardedWeight) {
        if entry.local == nil, let (id, slotName) = entry.slotOf, let owner = entry.owner {
            remoteSlots[id, default: [:]][slotName] = owner
        }
        layout.append(entry)
        slotEntryCount += 1
    }

    /// The replica holding slot `slotName` of the variable with id `variableID`, when it is not this one.
    func remoteOwner(ofSlot slotName: String, variableID: Int) -> Int? { remoteSlots[variableID]?[slotName] }

    /// The copy of a slot held elsewhere from the last gather, if nothing changed since.
    func gatheredCopy(ofSlot slotName: String, variableID: Int) -> Variable? {
        guard let lastGather else { return nil }
        let i = layout.firstIndex { $0.local == nil && $0.slotOf?.variableID == variableID && $0.slotOf?.slotName == slotName }
        return i.map { lastGather[$0] }
    }

    // MARK: Roll-back

    /// How far the partition and the layout reached.
    struct Mark {
        let layoutCount: Int
        let assignedCount: Int
        let loads: [Int]
    }

    var mark: Mark { Mark(layoutCount: layout.count, assignedCount: assignedIDs.count, loads: loads) }

    /// Forgets the assignments and weights recorded since `mark`; returns whether there were any.
    @discardableResult
    func rollBack(to mark: Mark) -> Bool {
        guard assignedIDs.count > mark.assignedCount || layout.count > mark.layoutCount else { return false }
        for id in assignedIDs[mark.assignedCount...] { owners[id] = nil }
        assignedIDs.removeSubrange(mark.assignedCount...)
        loads = mark.loads
        for entry in layout[mark.layoutCount...] {
            guard let (id, slotName) = entry.slotOf else { continue }
            slotEntryCount -= 1
            if entry.local == nil {
                remoteSlots[id]?[slotName] = nil
                if remoteSlots[id]?.isEmpty == true { remoteSlots[id] = nil }
            }
        }
        layout.removeSubrange(mark.layoutCount...)
        ownedPositionsValid = false
        return true
    }

    // MARK: The full state

    /// Forgets the last gather (the slots are about to change: a step, `setWeights`).
    func invalidateGathered() { lastGather = nil }

    /// Every weight in TensorFlow's order, those held by other replicas gathered from them (a
    /// collective: every replica must call it at the same point), or the last gather's if nothing
    /// changed since.
    func consolidated() throws -> [Variable] {
        if let lastGather { return lastGather }
        var regions = [[MemorySpan]](repeating: [], count: replicas)
        var result: [Variable?] = [], keepAlive: [Tensor] = [], gathered: [(Int, Tensor)] = []
        for entry in layout {
            guard let owner = entry.owner else { result.append(entry.local); continue }
            if let local = entry.local {
                let value = local.untrackedValue
                keepAlive.append(value)
                regions[owner].append(MemorySpan(reading: value.unsafeStorage.base, byteCount: entry.byteCount))
                result.append(local)
            } else {
                let value = try Tensor(shape: entry.shape, dtype: entry.dtype, operation: "gathering the sharded slot \(entry.name)",
                                       fillingBytes: { _ in })
                regions[owner].append(MemorySpan(base: value.unsafeStorage.base, byteCount: entry.byteCount))
                gathered.append((result.count, value))
                result.append(nil)
            }
        }
        withExtendedLifetime(keepAlive) {
            withExtendedLifetime(gathered) { strategy.allGather(regions: regions, staging: staging) }
        }
        for (i, value) in gathered { result[i] = Variable(value, name: layout[i].name, trainable: false, observed: false) }
        let full = result.map { $0! }
        lastGather = full
        return full
    }
}

extension Optimizer {
    // MARK: - Sharded state (ZeRO stage 1)

    /// Whether this optimizer shards its slots across the replicas of its strategy (ZeRO stage 1, as
    /// PyTorch's `ZeroRedundancyOptimizer`); see ``setShardsStateAcrossReplicas(_:)``.
    public var shardsStateAcrossReplicas: Bool { shardingRequested }

    /// Whether `applyGradients` must be given each replica's own gradients, because it sums them itself
    /// in its own way: a custom `gradientAggregator`, or sharded state (which reduce-scatters). A
    /// training loop that would sum gradients during the backward pass (`fit` under a strategy) passes
    /// them unsummed to such an optimizer instead.
    ///
    /// A Keras 3 optimizer with clipping needs them too: Keras 3 clips each replica's gradients before
    /// the sum (its TensorFlow backend sums inside `_backend_update_step`).
    public var needsUnsummedGradients: Bool { shardingRequested || !aggregatesByIdentity || clipsBeforeSumming }

    /// Makes each replica keep the slots of only the variables it owns (about 1/N of the optimizer's
    /// memory with N replicas), with the same numbers as unsharded.
    ///
    /// Under a strategy with more than one replica (the scope's, else ``distributionStrategy``), the
    /// variables are partitioned as PyTorch's `ZeroRedundancyOptimizer` does (whole variables, largest
    /// first, each to the replica with the fewest elements so far). Every `applyGradients` then:
    /// 1. sums dense gradients with a reduce-scatter, so each replica receives only the sums of the
    ///    gradients of the variables it owns (sparse ones are all-gathered, as unsharded);
    /// 2. clips as unsharded: `clipvalue` and `clipnorm` per variable on its owner, `globalClipnorm`
    ///    with the global norm summed across replicas (in list order: the same number everywhere);
    /// 3. updates the owned variables and their slots (the usual fused kernels), with their constraints;
    /// 4. all-gathers the variables from their owners, so every replica ends with the same bytes.
    ///
    /// The full state still reads and writes in the unsharded layout, so checkpoints are the same file
    /// and load on any number of replicas: ``weights`` and ``getWeights()`` return every weight in
    /// TensorFlow's order (those held elsewhere gathered from their owners: **a collective**, which
    /// every replica must call at the same point, e.g. by saving on every replica as Keras does), and
    /// ``setWeights(_:)`` takes the full list and keeps what this replica holds (no communication).
    /// ``localWeights`` is what this replica holds. `slot(for:named:)` of a variable owned elsewhere
    /// throws. With one replica the option changes nothing.
    ///
    /// Call it on every replica at the same point (the partition is computed the same way everywhere
    /// from the order of the variables). Turning it on after slots exist (a model loaded from a file)
    /// keeps the owned slots and frees the others.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` with
    /// `gradientTransformers` (they would see only the owned gradients), or to turn it off once slots
    /// are held elsewhere.
    public func setShardsStateAcrossReplicas(_ enabled: Bool) throws {
        guard enabled != shardingRequested else { return }
        guard enabled else {
            if let sharding, sharding.slotEntryCount > 0 {
                throw OptimizerError.invalidArgument(
                    field: "shardsStateAcrossReplicas",
                    message: "\(name): cannot stop sharding once slots are held by other replicas (save the model and load it into an unsharded optimizer)")
            }
            sharding = nil
            shardingRequested = false
            return
        }
        guard supportsShardedState else {
            throw OptimizerError.invalidArgument(
                field: "shardsStateAcrossReplicas",
                message: "\(name): sharded optimizer state is not available for \(type(of: self).kerasClassName) (\(type(of: self))); it is for the legacy (OptimizerV2) classes")
        }
        guard gradientTransformers.isEmpty else {
            throw OptimizerError.invalidArgument(
                field: "shardsStateAcrossReplicas",
                message: "\(name): sharded optimizer state cannot be used with gradientTransformers (each replica has only the gradients of the variables it owns)")
        }
        shardingRequested = true
        let strategy = Strategy.currentScope ?? distributionStrategy
        guard strategy.numReplicasInSync > 1 else { return }
        let state = ShardedState(strategy: strategy)
        shardHeldWeights(into: state)
        sharding = state
        invalidateSlotCaches()
    }

    /// Moves the current weights into `state`: the variables that have slots are partitioned in the
    /// order their slots were created (the same on every replica), and the slots of variables owned
    /// elsewhere are dropped from this replica.
    private func shardHeldWeights(into state: ShardedState) {
        var slotOf: [ObjectIdentifier: (Int, String)] = [:]
        for (id, slots) in slotStore { for s in slots { slotOf[ObjectIdentifier(s.variable)] = (id, s.name) } }
        var ids: [Int] = [], sizes: [Int] = [], seen = Set<Int>()
        for w in heldWeights {
            if let (id, _) = slotOf[ObjectIdentifier(w)], seen.insert(id).inserted {
                ids.append(id)
                sizes.append(w.scalarCount)
            }
        }
        state.assign(ids: ids, sizes: sizes)
        var kept: [Variable] = []
        for w in heldWeights {
            guard let (id, slotName) = slotOf[ObjectIdentifier(w)] else {
                state.appendReplicated(w)
                kept.append(w)
                continue
            }
            let owner = state.owners[id]!
            if owner == state.rank {
                state.appendHeldSlot(w, variableID: id, named: slotName)
                kept.append(w)
            } else {
                state.appendRemoteSlot(name: w.name, shape: w.shape, dtype: w.dtype, owner: owner, variableID: id, named: slotName)
                slotStore[id]?.removeAll { $0.variable === w }
                if slotStore[id]?.isEmpty == true { slotStore[id] = nil }
            }
        }
        heldWeights = kept
    }

    /// The weights this replica holds: all of ``weights`` unless the state is sharded
    /// (``setShardsStateAcrossReplicas(_:)``), when the slots of variables owned by other replicas are
    /// not here. Never communicates.
    public var localWeights: [Variable] { heldWeights }

    /// The number of slot elements this replica holds (its optimizer memory, in elements): with
    /// sharded state about 1/N of the unsharded count.
    public var heldSlotElementCount: Int {
        slotStore.values.reduce(0) { total, slots in total + slots.reduce(0) { $0 + $1.variable.scalarCount } }
    }

    /// The replica that owns `variable` (updates it and holds its slots) when the state is sharded and
    /// the variable was partitioned; `nil` otherwise.
    public func owningReplica(of variable: Variable) -> Int? { sharding?.owners[variable.id] }

    /// Every weight, in TensorFlow's order, gathered from the replicas that hold them (see
    /// ``setShardsStateAcrossReplicas(_:)``); ``localWeights`` without communication when unsharded.
    func allWeights() -> [Variable] {
        guard let sharding, sharding.slotEntryCount > 0 else {
            let children = childOptimizers
            return children.isEmpty ? heldWeights : heldWeights + children.flatMap { $0.allWeights() }
        }
        do {
            return try sharding.consolidated()
        } catch {
            // Only an allocation of a slot's size (which exists on its owner) can fail here.
            preconditionFailure("\(name): cannot gather the sharded optimizer state: \(error)")
        }
    }

    /// The names, shapes and dtypes of every weight, and this replica's variable for those it holds.
    func weightTargets() -> [(name: String, shape: [Int], dtype: DType, local: Variable?)] {
        if let sharding, sharding.slotEntryCount > 0 {
            return sharding.layout.map { ($0.name, $0.shape, $0.dtype, $0.local) }
        }
        return allWeights().map { ($0.name, $0.shape, $0.dtype, $0) }
    }

    /// `addSlot` for a sharded optimizer: records a slot of a variable owned elsewhere and returns the
    /// placeholder, or returns `nil` when this replica owns the variable.
    func remoteSlot(_ sharding: ShardedState, for variable: Variable, _ slotName: String,
                    initializer: SlotInitializer, shape: [Int]?) -> Variable? {
        let owner = sharding.owner(of: variable)
        guard owner != sharding.rank else { return nil }
        var slotShape = shape ?? variable.shape
        if case .value(let t) = initializer { slotShape = t.shape }
        sharding.appendRemoteSlot(name: "\(name)/\(variable.name)/\(slotName)", shape: slotShape, dtype: variable.dtype,
                                  owner: owner, variableID: variable.id, named: slotName)
        return sharding.placeholder
    }
}
