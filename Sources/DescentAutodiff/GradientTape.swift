import Synchronization
@_spi(DescentInternals) import DescentTensor

/// An error in using a gradient tape.
public enum AutodiffError: Error, Equatable, CustomStringConvertible, Sendable {
    /// `gradient` was called a second time on a non-persistent tape.
    case tapeAlreadyUsed
    /// `outputGradients` does not have the target's shape or dtype.
    case outputGradientMismatch(target: [Int], targetDType: DType, given: [Int], givenDType: DType)
    /// The target is not a floating-point tensor.
    case nonDifferentiableTarget(DType)

    public var description: String {
        switch self {
        case .tapeAlreadyUsed:
            return "GradientTape.gradient can only be called once on a non-persistent tape; create the tape with persistent: true to compute several gradients"
        case let .outputGradientMismatch(target, td, given, gd):
            return "GradientTape.gradient: outputGradients has shape \(given) and dtype \(gd), but the target has shape \(target) and dtype \(td)"
        case let .nonDifferentiableTarget(dtype):
            return "GradientTape.gradient: the target has dtype \(dtype); only float32 and float64 targets can be differentiated"
        }
    }
}

/// What ``GradientTape/gradient(of:wrt:outputGradients:unconnected:)`` returns for a source the target
/// does not depend on (TensorFlow's `unconnected_gradients`).
public enum UnconnectedGradients: Sendable {
    /// `nil` (TensorFlow's default).
    case none
    /// Zeros of the source's shape.
    case zero
}

/// Records operations so their gradients can be computed (TensorFlow's `tf.GradientTape`).
///
/// ```swift
/// let v1 = Variable(Tensor(Float(2)), name: "v1"), v2 = Variable(Tensor(Float(3)), name: "v2")
/// let tape = GradientTape()
/// let loss = try tape.record { try 3 * v1 * v1 + 2 * v2 * v2 }
/// let grads = try tape.gradient(of: loss, wrt: [v1, v2])   // [6 * v1, 4 * v2] = [12, 12]
/// ```
///
/// Inside ``record(_:)`` every trainable ``Variable`` that is read is watched automatically (unless
/// `watchAccessedVariables` is false); tensors are watched with ``watch(_:)-(Tensor)``. Gradients are
/// dense tensors, or ``IndexedSlices`` for sources reached only through ``Tensor/gather(_:)``.
///
/// A tape is thread-safe: its record is guarded by a mutex. Recording is scoped to the task or thread
/// that runs ``record(_:)``.
public final class GradientTape: Sendable {
    private let recorder: TapeRecorder

    /// Whether ``gradient(of:wrt:outputGradients:unconnected:)`` may be called more than once.
    public let persistent: Bool
    /// Whether trainable variables read while recording are watched automatically.
    public var watchAccessedVariables: Bool { recorder.watchAccessedVariables }

    /// Creates a tape. Nothing is recorded until ``record(_:)``.
    public init(persistent: Bool = false, watchAccessedVariables: Bool = true) {
        self.persistent = persistent
        self.recorder = TapeRecorder(watchAccessedVariables: watchAccessedVariables)
    }

    /// Runs `body` while recording its operations, and returns its result. May be called several times;
    /// tapes nest (an outer tape also records what an inner one does).
    public func record<R>(_ body: () throws -> R) rethrows -> R {
        try Autodiff.withRecorder(recorder, body)
    }

    /// Runs `body` inside a recording block without recording it (TensorFlow's `stop_recording`).
    public func stopRecording<R>(_ body: () throws -> R) rethrows -> R {
        try Autodiff.withoutRecorder(recorder, body)
    }

    /// Watches a tensor, returning it tagged so that operations on the returned value are recorded and
    /// gradients with respect to it can be requested.
    public func watch(_ tensor: Tensor) -> Tensor {
        let t = tensor.tapeNode == 0 ? tensor.tagged(Autodiff.newNodeID()) : tensor
        recorder.state.withLock { _ = $0.watched.insert(t.tapeNode) }
        return t
    }

    /// Watches a variable (needed for non-trainable variables, or with `watchAccessedVariables: false`).
    public func watch(_ variable: Variable) {
        recorder.watch(variable)
    }

    /// Watches several variables.
    public func watch(_ variables: [Variable]) { for v in variables { watch(v) } }

    /// The variables watched so far, in the order they were first watched or read.
    public var watchedVariables: [Variable] { recorder.state.withLock { $0.watchedVariables } }

    /// Forgets everything recorded so far (TensorFlow's `reset`).
    public func reset() {
        recorder.state.withLock { $0 = TapeRecorder.State() }
    }

    // MARK: Gradients

    /// The gradients of `target` with respect to each variable (TensorFlow's `tape.gradient`).
    ///
    /// - Parameters:
    ///   - target: the value to differentiate; a non-scalar target is treated as the sum of its elements
    ///     unless `outputGradients` is given.
    ///   - outputGradients: the gradient flowing into `target` (TensorFlow's `output_gradients`), same
    ///     shape and dtype as `target`.
    ///   - unconnected: what to return for a source `target` does not depend on.
    ///   - onReady: called with a source's position in `sources` and its final gradient as soon as the
    ///     backward pass has finished that gradient, before the remaining (earlier) operations run: a
    ///     distribution strategy starts summing a layer's gradients across replicas while the layers
    ///     below it are still being differentiated. Calls come in the order gradients finish (the last
    ///     layer's first), on the calling thread; unconnected sources get no call.
    /// - Returns: one gradient per source, in order: `nil` where unconnected (with `.none`).
    /// - Throws: ``AutodiffError`` when a non-persistent tape is reused or `outputGradients` mismatches.
    public func gradient(
        of target: Tensor, wrt sources: [Variable], outputGradients: Tensor? = nil,
        unconnected: UnconnectedGradients = .none, onReady: ((Int, Gradient) throws -> Void)? = nil
    ) throws -> [Gradient?] {
        try gradient(of: target, sourceIDs: sources.map(\.id), outputGradients: outputGradients,
                     sourceShapes: sources.map { ($0.shape, $0.dtype) },
                     unconnected: unconnected, onReady: onReady)
    }

    /// The gradient of `target` with respect to one variable.
    public func gradient(
        of target: Tensor, wrt source: Variable, outputGradients: Tensor? = nil,
        unconnected: UnconnectedGradients = .none
    ) throws -> Gradient? {
        try gradient(of: target, wrt: [source], outputGradients: outputGradients, unconnected: unconnected)[0]
    }

    /// The gradients of `target` with respect to watched tensors (see ``watch(_:)-(Tensor)``).
    public func gradient(
        of target: Tensor, wrt sources: [Tensor], outputGradients: Tensor? = nil,
        unconnected: UnconnectedGradients = .none
    ) throws -> [Gradient?] {
        try gradient(of: target, sourceIDs: sources.map(\.tapeNode), outputGradients: outputGradients,
                     sourceShapes: sources.map { ($0.shape, $0.dtype) }, unconnected: unconnected)
    }

    /// The gradient of `target` with respect to one watched tensor.
    public func gradient(
        of target: Tensor, wrt source: Tensor, outputGradients: Tensor? = nil,
        unconnected: UnconnectedGradients = .none
    ) throws -> Gradient? {
        try gradient(of: target, wrt: [source], outputGradients: outputGradients, unconnected: unconnected)[0]
    }

    private func gradient(
        of target: Tensor, sourceIDs: [Int], outputGradients: Tensor?, sourceShapes: [([Int], DType)],
        unconnected: UnconnectedGradients, onReady: ((Int, Gradient) throws -> Void)? = nil
    ) throws -> [Gradient?] {
        guard target.dtype.isFloatingPoint else { throw AutodiffError.nonDifferentiableTarget(target.dtype) }
        if let og = outputGradients, og.shape != target.shape || og.dtype != target.dtype {
            throw AutodiffError.outputGradientMismatch(target: target.shape, targetDType: target.dtype,
                                                       given: og.shape, givenDType: og.dtype)
        }
        let (operations, watched): ([RecordedOperation], [Int]) = try recorder.state.withLock { s in
            if s.used { throw AutodiffError.tapeAlreadyUsed }
            let ops = s.operations
            // Only sources this tape watches (or recorded) can receive a gradient, as in TensorFlow.
            let watched = sourceIDs.map { s.tracks($0) ? $0 : 0 }
            if !persistent {
                s.used = true
                s.operations = []
            }
            return (ops, watched)
        }
        let results = try stopRecording {
            try backpropagate(operations, target: target, sourceIDs: watched, seed: outputGradients, onReady: onReady)
        }
        return try results.enumerated().map { i, g in
            if let g { return g }
            return unconnected == .zero ? .dense(try Tensor.zeros(shape: sourceShapes[i].0, dtype: sourceShapes[i].1)) : nil
        }
    }

    /// Reverse-mode accumulation over the recorded operations, newest first, restricted to operations
    /// that lie on a path from a source to the target.
    ///
    /// Nodes are found by position, not by hashing: recorded outputs are ascending node ids (binary
    /// search gives an operation's index), and the few sources get a slot each.
    private func backpropagate(
        _ operations: [RecordedOperation], target: Tensor, sourceIDs: [Int], seed: Tensor?,
        onReady: ((Int, Gradient) throws -> Void)?
    ) throws -> [Gradient?] {
        let targetID = target.tapeNode
        guard targetID != 0 else { return sourceIDs.map { _ in nil } }
        let index = NodeIndex(operations)
        var sourceSlot: [Int: Int] = [:]
        for id in sourceIDs where id != 0 && sourceSlot[id] == nil { sourceSlot[id] = sourceSlot.count }
        func node(_ id: Int) -> BackpropNode? {
            if id == 0 { return nil }
            if let i = index.position(of: id) { return .op(i) }
            return sourceSlot[id].map { BackpropNode.source($0) }
        }
        // Forward pass: which operations depend on a source. An operation whose output is itself a source
        // (a watched result) collects a gradient even when its inputs do not depend on one.
        let count = operations.count
        var relevant = [Bool](repeating: false, count: count)
        var outputSlot = [Int?](repeating: nil, count: count)
        // Whether operation i's output collects a gradient: it depends on a source, or is one.
        var collects = [Bool](repeating: false, count: count)
        // The input nodes of every operation, flattened: those of operation i start at inputStart[i].
        var inputNodes: [BackpropNode?] = []
        var inputStart = [Int](repeating: 0, count: count + 1)
        for i in 0..<count {
            let op = operations[i]
            outputSlot[i] = sourceSlot[op.output]
            inputStart[i] = inputNodes.count
            for id in op.inputs {
                let n = node(id)
                inputNodes.append(n)
                switch n {
                case .op(let j)?: if collects[j] { relevant[i] = true }
                case .source?: relevant[i] = true
                case nil: break
                }
            }
            collects[i] = relevant[i] || outputSlot[i] != nil
        }
        inputStart[count] = inputNodes.count
        // With `onReady`: a source's gradient is final once the earliest operation that reads (or makes)
        // it has been processed; `readyAfter[i]` lists the slots final after operation i.
        var readyAfter: [Int: [Int]] = [:], slotPositions: [[Int]] = []
        if onReady != nil {
            slotPositions = Array(repeating: [], count: sourceSlot.count)
            for (position, id) in sourceIDs.enumerated() { if let s = sourceSlot[id] { slotPositions[s].append(position) } }
            var earliest = [Int](repeating: Int.max, count: sourceSlot.count)
            for i in 0..<count {
                if let s = outputSlot[i] { earliest[s] = Swift.min(earliest[s], i) }
                guard relevant[i] else { continue }
                for case .source(let s)? in inputNodes[inputStart[i]..<inputStart[i + 1]] { earliest[s] = Swift.min(earliest[s], i) }
            }
            for (s, i) in earliest.enumerated() where i != Int.max { readyAfter[i, default: []].append(s) }
        }
        var opGradients = [Gradient?](repeating: nil, count: count)
        var sourceGradients = [Gradient?](repeating: nil, count: sourceSlot.count)
        let seedGradient = { () throws -> Gradient in .dense(try seed?.untracked ?? Tensor.ones(shape: target.shape, dtype: target.dtype)) }
        switch node(targetID) {
        case .op(let t)? where collects[t]: opGradients[t] = try seedGradient()
        case .source(let s)?: sourceGradients[s] = try seedGradient()
        default: break
        }
        func announce(after i: Int) throws {
            guard let onReady, let slots = readyAfter[i] else { return }
            for s in slots {
                guard let g = sourceGradients[s] else { continue }
                for position in slotPositions[s] { try onReady(position, g) }
            }
        }
        for i in stride(from: count - 1, through: 0, by: -1) {
            if onReady != nil && i + 1 < count { try announce(after: i + 1) }
            guard let upstream = opGradients[i] else { continue }
            opGradients[i] = nil
            if let s = outputSlot[i] { sourceGradients[s] = upstream }
            guard relevant[i] else { continue }
            let inputGradients = try operations[i].backward(upstream.denseValue)
            for (n, g) in zip(inputNodes[inputStart[i]..<inputStart[i + 1]], inputGradients) {
                guard let g, let n else { continue }
                switch n {
                case .op(let j) where collects[j]:
                    opGradients[j] = try opGradients[j].map { try $0 + g } ?? g
                case .source(let s):
                    sourceGradients[s] = try sourceGradients[s].map { try $0 + g } ?? g
                default: break
                }
            }
        }
        if onReady != nil && count > 0 { try announce(after: 0) }
        return sourceIDs.map { id in sourceSlot[id].flatMap { sourceGradients[$0] } }
    }
}

/// What an input of a recorded operation is during backpropagation: the output of the operation at an
/// index, or a source (by slot) that no recorded operation produced.
enum BackpropNode { case op(Int), source(Int) }

/// The positions of recorded operations by output node id. Ids come from one increasing counter, so the
/// outputs of a tape are ascending (binary search); if threads recorded out of order, a dictionary.
struct NodeIndex {
    private let outputs: [Int]
    private let byID: [Int: Int]?

    init(_ operations: [RecordedOperation]) {
        outputs = operations.map(\.output)
        var ascending = true
        for i in outputs.indices.dropFirst() where outputs[i - 1] >= outputs[i] { ascending = false; break }
        byID = ascending ? nil : Dictionary(outputs.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The index of the operation whose output is `id`.
    func position(of id: Int) -> Int? {
        if let byID { return byID[id] }
        let i = outputs.lowerBound(of: id)
        return i < outputs.count && outputs[i] == id ? i : nil
    }
}

/// The recording half of a tape: the operations and what the tape tracks, behind a mutex.
///
/// Tracked nodes are the outputs of recorded operations (ascending ids, looked up by binary search: no
/// hashing per recorded operation) and watched nodes (variables and tensors, a set).
final class TapeRecorder: OperationRecorder {
    struct State {
        var operations: [RecordedOperation] = []
        /// Output node ids of `operations`, ascending.
        var outputs: [Int] = []
        var watched: Set<Int> = []
        var watchedVariables: [Variable] = []
        var used = false

        func tracks(_ id: Int) -> Bool { outputs.sortedContains(id) || watched.contains(id) }
    }
    let state = SanitizerVisibleMutex(State())
    let watchAccessedVariables: Bool

    init(watchAccessedVariables: Bool) { self.watchAccessedVariables = watchAccessedVariables }

    func watch(_ variable: Variable) {
        state.withLock { s in
            if s.watched.insert(variable.id).inserted { s.watchedVariables.append(variable) }
        }
    }

    func tracks(_ id: Int) -> Bool {
        state.withLock { $0.tracks(id) }
    }

    func record(_ operation: RecordedOperation) {
        state.withLock { s in
            s.operations.append(operation)
            // Ids are taken in increasing order; only threads racing on one tape can append out of order.
            if let last = s.outputs.last, last > operation.output {
                s.outputs.insert(operation.output, at: s.outputs.lowerBound(of: operation.output))
            } else {
                s.outputs.append(operation.output)
            }
        }
    }

    func noteVariableRead(_ id: Int, _ variable: AnyObject & Sendable) {
        guard watchAccessedVariables, let variable = variable as? Variable else { return }
        watch(variable)
    }
}
