import Synchronization
@_spi(DescentInternals) import DescentTensor

/// A rule applied to a variable's value after each dense optimizer update (Keras' `constraint`).
public protocol VariableConstraint: Sendable {
    /// Returns the constrained value (same shape and dtype as `value`).
    func apply(to value: Tensor) throws -> Tensor
    /// Throws if the constraint cannot apply to a variable of `shape` (e.g. a norm axis beyond its
    /// rank). Optimizers call it before updating any variable, so that a step that would fail in the
    /// constraint changes nothing. The default accepts every shape.
    func validate(for shape: [Int]) throws
}

extension VariableConstraint {
    /// Accepts every shape.
    public func validate(for shape: [Int]) throws {}
}

/// A constraint given as a closure.
public struct ClosureConstraint: VariableConstraint {
    private let body: @Sendable (Tensor) throws -> Tensor
    /// Wraps `body`, called with the variable's value after each dense update.
    public init(_ body: @escaping @Sendable (Tensor) throws -> Tensor) { self.body = body }
    public func apply(to value: Tensor) throws -> Tensor { try body(value) }
}

/// Watches variable creation in a scope: a distribution strategy mirrors every variable created in its
/// `scope` (every replica starts from rank 0's value), as TensorFlow's strategies do.
public enum VariableCreation {
    /// Called with each new variable, at the end of its initializer, on the creating task.
    @TaskLocal public static var observer: (@Sendable (Variable) -> Void)?
}

/// A named, mutable tensor that models and optimizers update in place (TensorFlow's `tf.Variable`).
///
/// A variable is a reference type: layers and optimizers share it. Its shape and dtype are fixed at
/// creation; ``assign(_:)`` and friends throw a ``TensorError`` naming the variable when a value does
/// not match. Reading ``value`` inside ``GradientTape/record(_:)`` makes a trainable variable a source
/// the tape can differentiate with respect to, as TensorFlow's tapes watch accessed variables.
///
/// Thread safety: the value is guarded by a mutex, so reads and assignments from several threads are
/// safe. An optimizer step updates the buffer in place after taking a unique reference under the lock;
/// as in TensorFlow (the optimizer is thread-compatible, not thread-safe), do not read a variable on
/// another thread while a step that updates it is running.
public final class Variable: @unchecked Sendable {
    // @unchecked Sendable invariant: `state` is only accessed through its Mutex; `name`, `id`,
    // `trainable`, `shape` and `dtype` are immutable.
    private struct State {
        var value: Tensor
        var constraint: (any VariableConstraint)?
    }
    private let state: SanitizerVisibleMutex<State>

    /// The variable's name (e.g. `"dense/kernel"`).
    public let name: String
    /// Whether gradient tapes watch this variable automatically and models list it as trainable.
    public let trainable: Bool
    /// The fixed shape.
    public let shape: [Int]
    /// The fixed element type.
    public let dtype: DType
    /// A process-unique identifier; also the variable's node on gradient tapes.
    public let id: Int

    /// Creates a variable holding `initialValue`.
    public convenience init(_ initialValue: Tensor, name: String = "Variable", trainable: Bool = true,
                            constraint: (any VariableConstraint)? = nil) {
        self.init(initialValue, name: name, trainable: trainable, constraint: constraint, observed: true)
    }

    /// Creates a variable; with `observed: false` the ``VariableCreation`` observer (a strategy's
    /// mirroring, a collective) does not see it: for state that exists on one replica only, such as
    /// sharded optimizer slots and gathered copies of them.
    @_spi(DescentInternals)
    public init(_ initialValue: Tensor, name: String, trainable: Bool, constraint: (any VariableConstraint)? = nil,
                observed: Bool) {
        self.name = name
        self.trainable = trainable
        self.shape = initialValue.shape
        self.dtype = initialValue.dtype
        self.id = Autodiff.newNodeID()
        self.state = SanitizerVisibleMutex(State(value: initialValue.untracked, constraint: constraint))
        if observed { VariableCreation.observer?(self) }
    }

    /// Creates a 1-d variable from scalars.
    public convenience init<T: TensorElement>(_ scalars: [T], name: String = "Variable", trainable: Bool = true) {
        self.init(Tensor(scalars), name: name, trainable: trainable)
    }

    /// Creates a scalar variable.
    public convenience init<T: TensorElement>(_ scalar: T, name: String = "Variable", trainable: Bool = true) {
        self.init(Tensor(scalar), name: name, trainable: trainable)
    }

    /// The constraint applied after each dense optimizer update, if any.
    public var constraint: (any VariableConstraint)? {
        get { state.withLock { $0.constraint } }
        set { state.withLock { $0.constraint = newValue } }
    }

    /// The current value. Inside a recording ``GradientTape`` the read is tracked, so gradients flow to
    /// this variable.
    public var value: Tensor {
        let current = state.withLock { $0.value }
        guard Autodiff.isRecording else { return current }
        if trainable { Autodiff.noteVariableRead(id, self) }
        return current.tagged(id)
    }

    /// The current value, never tracked by a tape (TensorFlow's `read_value()` under `stop_recording`).
    public var untrackedValue: Tensor { state.withLock { $0.value } }

    /// The number of elements.
    public var scalarCount: Int { shape.reduce(1, *) }

    private func checkCompatible(_ newValue: Tensor, _ operation: String) throws {
        guard newValue.dtype == dtype else {
            throw TensorError.dtypeMismatch(operation: "\(operation) to variable '\(name)'", lhs: dtype, rhs: newValue.dtype)
        }
        guard newValue.shape == shape else {
            throw TensorError.incompatibleShapes(operation: "\(operation) to variable '\(name)'", lhs: shape,
                                                 rhs: newValue.shape, reason: "the variable's shape is fixed")
        }
    }

    /// Replaces the value (`tf.Variable.assign`).
    /// - Throws: ``TensorError`` naming the variable if the shape or dtype differ.
    public func assign(_ newValue: Tensor) throws {
        try checkCompatible(newValue, "assign")
        state.withLock { $0.value = newValue.untracked }
    }

    /// Adds `delta` to the value (`assign_add`).
    public func assignAdd(_ delta: Tensor) throws {
        try checkCompatible(delta, "assignAdd")
        try state.withLock { $0.value = try ($0.value.untracked + delta.untracked).untracked }
    }

    /// Subtracts `delta` from the value (`assign_sub`).
    public func assignSub(_ delta: Tensor) throws {
        try checkCompatible(delta, "assignSub")
        try state.withLock { $0.value = try ($0.value.untracked - delta.untracked).untracked }
    }

    /// The variable's own buffer, made unique first, for an optimizer's in-place update of this step.
    /// The caller keeps the returned reference only for the duration of the update.
    @_spi(DescentInternals)
    public func uniqueStorageForUpdate() -> TensorStorage {
        state.withLock { $0.value.uniqueStorage() }
    }

    /// Calls `body` with the variable's own buffer, made unique first (so tensors read earlier keep
    /// their values). For optimizers' in-place updates; see the type's thread-safety note.
    @_spi(DescentInternals)
    public func withUniqueStorage<R>(_ body: (TensorStorage) throws -> R) rethrows -> R {
        let storage = state.withLock { $0.value.uniqueStorage() }
        return try withExtendedLifetime(storage) { try body(storage) }
    }
}

extension Variable: CustomStringConvertible {
    /// `Variable 'name' shape: [2] dtype: float32` followed by the values.
    public var description: String {
        "Variable '\(name)' shape: \(shape) dtype: \(dtype)\n" + untrackedValue.formattedValues
    }
}

// MARK: - Arithmetic on variables reads their values (tracked inside a tape)

extension Variable {
    public static func + (lhs: Variable, rhs: Variable) throws -> Tensor { try lhs.value + rhs.value }
    public static func - (lhs: Variable, rhs: Variable) throws -> Tensor { try lhs.value - rhs.value }
    public static func * (lhs: Variable, rhs: Variable) throws -> Tensor { try lhs.value * rhs.value }
    public static func / (lhs: Variable, rhs: Variable) throws -> Tensor { try lhs.value / rhs.value }
    public static func + (lhs: Variable, rhs: Tensor) throws -> Tensor { try lhs.value + rhs }
    public static func - (lhs: Variable, rhs: Tensor) throws -> Tensor { try lhs.value - rhs }
    public static func * (lhs: Variable, rhs: Tensor) throws -> Tensor { try lhs.value * rhs }
    public static func / (lhs: Variable, rhs: Tensor) throws -> Tensor { try lhs.value / rhs }
    public static func + (lhs: Tensor, rhs: Variable) throws -> Tensor { try lhs + rhs.value }
    public static func - (lhs: Tensor, rhs: Variable) throws -> Tensor { try lhs - rhs.value }
    public static func * (lhs: Tensor, rhs: Variable) throws -> Tensor { try lhs * rhs.value }
    public static func / (lhs: Tensor, rhs: Variable) throws -> Tensor { try lhs / rhs.value }
    public static func + (lhs: Double, rhs: Variable) throws -> Tensor { try lhs + rhs.value }
    public static func - (lhs: Double, rhs: Variable) throws -> Tensor { try lhs - rhs.value }
    public static func * (lhs: Double, rhs: Variable) throws -> Tensor { try lhs * rhs.value }
    public static func / (lhs: Double, rhs: Variable) throws -> Tensor { try lhs / rhs.value }
    public static func + (lhs: Variable, rhs: Double) throws -> Tensor { try lhs.value + rhs }
    public static func - (lhs: Variable, rhs: Double) throws -> Tensor { try lhs.value - rhs }
    public static func * (lhs: Variable, rhs: Double) throws -> Tensor { try lhs.value * rhs }
    public static func / (lhs: Variable, rhs: Double) throws -> Tensor { try lhs.value / rhs }
}
