import DescentTensor

/// The value of an optimizer hyperparameter, as Keras accepts it: a number, a tensor, a closure evaluated
/// at each ``Optimizer/applyGradients(_:)``, or (for the learning rate) a ``LearningRateSchedule`` called
/// with the current step.
///
/// Number literals convert implicitly: `Adam(learningRate: 0.01)`, `optimizer.learningRate = 0.05`.
public enum Hyperparameter: Sendable, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
    /// A Python `float`.
    case number(Double)
    /// A Python `int` (kept distinct so configs round-trip exactly: `"learning_rate": 1`).
    case integer(Int)
    /// A scalar tensor (used as given, cast to each variable's dtype).
    case tensor(Tensor)
    /// A closure evaluated once per `applyGradients` (and by `config`).
    case closure(@Sendable () throws -> Double)
    /// A learning-rate schedule, called with the step (`iterations` before the update).
    case schedule(any LearningRateSchedule)

    public init(floatLiteral value: Double) { self = .number(value) }
    public init(integerLiteral value: Int) { self = .integer(value) }

    /// A number hyperparameter (`Double` values from variables).
    public static func value(_ v: Double) -> Hyperparameter { .number(v) }

    /// The number, if this is `.number` or `.integer`.
    public var numericValue: Double? {
        switch self {
        case .number(let v): return v
        case .integer(let i): return Double(i)
        default: return nil
        }
    }

    /// The schedule, if this is `.schedule`.
    public var scheduleValue: (any LearningRateSchedule)? {
        if case .schedule(let s) = self { return s }
        return nil
    }

    /// The value written into a config: numbers as they are, tensors by value, closures by their
    /// current result, schedules serialized (Keras' `_serialize_hyperparameter`).
    func serialized() throws -> JSONValue {
        switch self {
        case .number(let v): return .double(v)
        case .integer(let i): return .int(i)
        case .tensor(let t): return .double(try t.item())
        case .closure(let f): return .double(try f())
        case .schedule(let s): return .object(try serializeSchedule(s))
        }
    }

    /// Reads a hyperparameter from a config value: a number or a serialized schedule.
    static func fromConfig(_ value: JSONValue, field: String, customObjects: CustomObjects) throws -> Hyperparameter {
        switch value {
        case .int(let i): return .integer(i)
        case .double(let d): return .number(d)
        case .object(let o): return .schedule(try deserializeSchedule(o, customObjects: customObjects))
        default:
            throw OptimizerError.invalidArgument(field: field, message: "expected a number or a schedule, got \(value.typeName)")
        }
    }
}

/// A learning rate that depends on the step (Keras' `LearningRateSchedule`).
///
/// The optimizer calls it with `iterations` before the update (0 on the first step), as a floating-point
/// number. Built-in schedules compute in `float32`, as Keras does for a Python-float initial learning
/// rate. A schedule that should be serializable overrides ``config`` and registers its class name
/// (``ScheduleRegistry``).
public protocol LearningRateSchedule: Sendable {
    /// The learning rate at `step`.
    func callAsFunction(_ step: Double) throws -> Double
    /// The Keras class name written into configs (e.g. `"ExponentialDecay"`).
    var className: String { get }
    /// The constructor arguments (Keras' `get_config`).
    var config: JSONObject { get throws }
}

/// A schedule given as a closure of the step. It cannot be serialized.
public struct ClosureSchedule: LearningRateSchedule {
    private let body: @Sendable (Double) throws -> Double
    /// Wraps `body`, called with the step.
    public init(_ body: @escaping @Sendable (Double) throws -> Double) { self.body = body }
    public func callAsFunction(_ step: Double) throws -> Double { try body(step) }
    public var className: String { "ClosureSchedule" }
    public var config: JSONObject {
        get throws {
            throw OptimizerError.invalidArgument(field: "learning_rate",
                                                 message: "a ClosureSchedule cannot be serialized; use a built-in or registered schedule")
        }
    }
}
