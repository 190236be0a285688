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
        _ = recorder.state.withLock { $0.tracked.insert(t.tapeNode) }
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
    /// - Returns: one gradient per source, in order: `nil` where unconnected (with `.none`).
    /// - Throws: ``AutodiffError`` when a non-persistent tape is reused or `outputGradients` mismatches.
    public func gradient(
        of target: Tensor, wrt sources: [Variable], outputGradients: Tensor? = nil,
        unconnected: UnconnectedGradients = .none
    ) throws -> [Gradient?] {
        try gradient(of: target, sourceIDs: sources.map(\.id), outputGradients: outputGradients,
                     sourceShapes: sources.map { ($0.shape, $0.dtype) },
                     unconnected: unconnected)
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
        unconnected: UnconnectedGradients
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
            let watched = sourceIDs.map { s.tracked.contains($0) ? $0 : 0 }
            if !persistent {
                s.used = true
                s.operations = []
            }
            return (ops, watched)
        }
        let results = try stopRecording {
            try backpropagate(operations, target: target, sourceIDs: watched, seed: outputGradients)
        }
        return try results.enumerated().map { i, g in
            if let g { return g }
            return unconnected == .zero ? .dense(try Tensor.zeros(shape: sourceShapes[i].0, dtype: sourceShapes[i].1)) : nil
        }
    }

    /// Reverse-mode accumulation over the recorded operations, newest first, restricted to operations
    /// that lie on a path from a source to the target.
    private func backpropagate(
        _ operations: [RecordedOperation], target: Tensor, sourceIDs: [Int], seed: Tensor?
    ) throws -> [Gradient?] {
        let targetID = target.tapeNode
        guard targetID != 0 else { return sourceIDs.map { _ in nil } }
        let sources = Set(sourceIDs.filter { $0 != 0 })
        // Forward pass: which nodes depend on a source.
        var reachable = sources
        var relevant = [Bool](repeating: false, count: operations.count)
        for (i, op) in operations.enumerated() where op.inputs.contains(where: reachable.contains) {
            relevant[i] = true
            reachable.insert(op.output)
        }
        var grads: [Int: Gradient] = [:]
        if sources.contains(targetID) || reachable.contains(targetID) {
            let seedGradient = try seed?.untracked ?? Tensor.ones(shape: target.shape, dtype: target.dtype)
            grads[targetID] = .dense(seedGradient)
        }
        for (i, op) in operations.enumerated().reversed() where relevant[i] {
            guard let upstream = sources.contains(op.output) ? grads[op.output] : grads.removeValue(forKey: op.output)
            else { continue }
            let inputGradients = try op.backward(upstream.denseValue)
            for (input, g) in zip(op.inputs, inputGradients) where input != 0 && reachable.contains(input) {
                guard let g else { continue }
                if let existing = grads[input] { grads[input] = try existing + g } else { grads[input] = g }
            }
        }
        return sourceIDs.map { $0 == 0 ? nil : grads[$0] }
    }
}

/// The recording half of a tape: the operations and the set of tracked nodes, behind a mutex.
final class TapeRecorder: OperationRecorder {
    struct State {
        var operations: [RecordedOperation] = []
        var tracked: Set<Int> = []
        var watchedVariables: [Variable] = []
        var used = false
    }
    let state = Mutex(State())
    let watchAccessedVariables: Bool

    init(watchAccessedVariables: Bool) { self.watchAccessedVariables = watchAccessedVariables }

    func watch(_ variable: Variable) {
        state.withLock { s in
            if s.tracked.insert(variable.id).inserted { s.watchedVariables.append(variable) }
        }
    }

    func tracks(_ id: Int) -> Bool {
        state.withLock { $0.tracked.contains(id) }
    }

    func record(_ operation: RecordedOperation) {
        state.withLock { s in
            s.operations.append(operation)
            s.tracked.insert(operation.output)
        }
    }

    func noteVariableRead(_ id: Int, _ variable: AnyObject & Sendable) {
        guard watchAccessedVariables, let variable = variable as? Variable else { return }
        watch(variable)
    }
}
