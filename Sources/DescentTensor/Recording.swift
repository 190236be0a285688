import Synchronization

/// The vector-Jacobian product of one recorded operation: given the gradient of the target with respect
/// to the operation's output, it returns one gradient per input (`nil` where an input gets none).
public typealias BackwardFunction = @Sendable (_ outputGradient: Tensor) throws -> [Gradient?]

/// One differentiable operation as a gradient tape stores it.
@_spi(DescentInternals)
public struct RecordedOperation: Sendable {
    /// The operation's name, for error messages and debugging.
    public let name: String
    /// The tape nodes of the inputs (0 for inputs no tape tracks).
    public let inputs: [Int]
    /// The tape node of the output.
    public let output: Int
    /// The output's shape and dtype (to build a zero gradient when needed).
    public let outputShape: [Int]
    public let outputDType: DType
    /// The vector-Jacobian product.
    public let backward: BackwardFunction
}

/// A consumer of recorded operations: `GradientTape` in DescentAutodiff implements it.
@_spi(DescentInternals)
public protocol OperationRecorder: AnyObject, Sendable {
    /// Whether operations consuming node `id` must be recorded.
    func tracks(_ id: Int) -> Bool
    /// Stores an operation whose inputs include a tracked node.
    func record(_ operation: RecordedOperation)
    /// A trainable variable (`variable`, with node `id`) was read while this recorder was active.
    func noteVariableRead(_ id: Int, _ variable: AnyObject & Sendable)
}

/// The link between tensor operations and gradient tapes.
///
/// Every differentiable operation computes its result and then asks `Autodiff` to record it. Recording
/// happens only when an input carries a tape node *and* an active tape tracks that node, so code that
/// runs outside any tape pays one integer comparison per operation and allocates nothing.
@_spi(DescentInternals)
public enum Autodiff {
    /// Number of tapes recording on any thread: a cheap filter before consulting the task-local list.
    private static let activeCount = Atomic<Int>(0)
    private static let nodeCounter = Atomic<Int>(1)

    /// The tapes recording in the current task or thread, innermost last.
    @TaskLocal public static var activeRecorders: [any OperationRecorder] = []

    /// A fresh, process-unique tape node id.
    public static func newNodeID() -> Int {
        nodeCounter.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Whether any tape is recording in this task or thread.
    public static var isRecording: Bool {
        activeCount.load(ordering: .relaxed) > 0 && !activeRecorders.isEmpty
    }

    /// Runs `body` with `recorder` active (nested inside the current ones).
    public static func withRecorder<R>(_ recorder: any OperationRecorder, _ body: () throws -> R) rethrows -> R {
        activeCount.add(1, ordering: .relaxed)
        defer { activeCount.subtract(1, ordering: .relaxed) }
        return try $activeRecorders.withValue(activeRecorders + [recorder]) { try body() }
    }

    /// Runs `body` with `recorder` paused (TensorFlow's `stop_recording`).
    public static func withoutRecorder<R>(_ recorder: any OperationRecorder, _ body: () throws -> R) rethrows -> R {
        try $activeRecorders.withValue(activeRecorders.filter { $0 !== recorder }) { try body() }
    }

    /// Reports a trainable variable read to the active tapes (which watch it automatically).
    public static func noteVariableRead(_ id: Int, _ variable: AnyObject & Sendable) {
        guard isRecording else { return }
        for recorder in activeRecorders { recorder.noteVariableRead(id, variable) }
    }

    /// Records a one-input operation if a tape tracks `input`; returns `output`, tagged when recorded.
    @inlinable
    public static func recordUnary(
        _ name: String, _ input: Tensor, _ output: Tensor, backward: @autoclosure () -> BackwardFunction
    ) -> Tensor {
        if input.tapeNode == 0 { return output }
        return record(name, inputs: [input.tapeNode], output, backward: backward())
    }

    /// Records a two-input operation if a tape tracks either input.
    @inlinable
    public static func recordBinary(
        _ name: String, _ a: Tensor, _ b: Tensor, _ output: Tensor, backward: @autoclosure () -> BackwardFunction
    ) -> Tensor {
        if a.tapeNode == 0 && b.tapeNode == 0 { return output }
        return record(name, inputs: [a.tapeNode, b.tapeNode], output, backward: backward())
    }

    /// Records an operation with any number of inputs if a tape tracks one of them.
    @inlinable
    public static func recordNary(
        _ name: String, _ inputs: [Tensor], _ output: Tensor, backward: @autoclosure () -> BackwardFunction
    ) -> Tensor {
        if !inputs.contains(where: { $0.tapeNode != 0 }) { return output }
        return record(name, inputs: inputs.map(\.tapeNode), output, backward: backward())
    }

    @usableFromInline
    static func record(_ name: String, inputs: [Int], _ output: Tensor, backward: @escaping BackwardFunction) -> Tensor {
        guard isRecording else { return output }
        var id = 0
        var tagged = output
        for recorder in activeRecorders where inputs.contains(where: { $0 != 0 && recorder.tracks($0) }) {
            if id == 0 {
                id = newNodeID()
                tagged.tapeNode = id
            }
            recorder.record(RecordedOperation(
                name: name, inputs: inputs, output: id, outputShape: output.shape, outputDType: output.dtype,
                backward: backward))
        }
        return id == 0 ? output.untracked : tagged
    }
}

extension Tensor {
    /// The same value, not tracked by any tape (TensorFlow's `stop_gradient`).
    public var untracked: Tensor {
        var t = self
        t.tapeNode = 0
        return t
    }

    /// TensorFlow's `tf.stop_gradient`: the same value, through which no gradient flows.
    public func stoppingGradient() -> Tensor { untracked }
}
