/// A number that remembers whether it was written as an integer, so configs round-trip exactly
/// (`"decay_steps": 1000` stays an integer, `"decay_rate": 0.96` a float).
public struct ConfigNumber: Sendable, Equatable, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    CustomStringConvertible
{
    /// The value.
    public let value: Double
    /// Whether it serializes as an integer.
    public let isInteger: Bool

    public init(integerLiteral value: Int) { self.init(Double(value), isInteger: true) }
    public init(floatLiteral value: Double) { self.init(value, isInteger: false) }

    /// A float (or, with `isInteger`, an integer) number.
    public init(_ value: Double, isInteger: Bool = false) {
        self.value = value
        self.isInteger = isInteger && value == value.rounded() && abs(value) < 9.0e15
    }

    /// An integer number.
    public init(_ value: Int) { self.init(Double(value), isInteger: true) }

    /// The JSON form.
    public var json: JSONValue { isInteger ? .int(Int(value)) : .double(value) }

    public var description: String { json.serialized }

    /// Reads a JSON number, naming `field` on error.
    static func read(_ v: JSONValue?, field: String, owner: String) throws -> ConfigNumber? {
        guard let v, v != .null else { return nil }
        switch v {
        case .int(let i): return ConfigNumber(i)
        case .double(let d):
            try Float32Field.checkHyperparameter(d, field: field, owner: "\(owner) config")
            return ConfigNumber(d)
        default: throw OptimizerError.invalidArgument(field: field, message: "\(owner) expects a number, got \(v.typeName)")
        }
    }
}

/// The rule for a JSON number that goes into a float32 field.
///
/// Keras keeps hyperparameters in float32 variables, and a float32 replay variable holds float32 values,
/// so a number that float32 cannot hold is an error naming the field, not a silent `inf`:
/// - **Hyperparameters** (an optimizer config's `learning_rate`, `beta_1`, `epsilon`, `momentum`, `rho`,
///   `clipnorm`, `clipvalue`, `decay`, ...; schedule and constraint parameters): finite, with
///   `Float(x)` finite. `NaN` and `±Infinity` are errors too (no hyperparameter means anything with them).
/// - **Data** (replay variable values, gradient values of a float32 variable): `NaN` and `±Infinity` are
///   allowed (a NaN gradient is a case replay must be able to show), but a finite literal whose float32
///   rounding is infinite (`1e39`) is an error. float64 data takes any `Double`.
///
/// Integers always fit (|Int64| < 3.4e38).
@_spi(DescentInternals)
public enum Float32Field {
    /// Throws unless `x` is finite and fits float32. `owner` and `field` name it: `Adam config 'learning_rate'`.
    public static func checkHyperparameter(_ x: Double, field: String, owner: String) throws {
        if !x.isFinite {
            throw OptimizerError.invalidArgument(field: field, message: "\(owner): \(JSONValue.pythonRepr(x)) is not a finite number")
        }
        if Float(x).isInfinite {
            throw OptimizerError.invalidArgument(field: field, message: "\(owner): \(JSONValue.pythonRepr(x)) is out of range for float32")
        }
    }

    /// Throws if `x` is finite but its float32 rounding is not. `path` names it (`variables[0].value[3]`).
    @inline(__always)
    static func checkData(_ x: Double, path: @autoclosure () -> String) throws {
        if x.isFinite && Float(x).isInfinite {
            throw JSONError("\(path()): \(JSONValue.pythonRepr(x)) is out of range for float32")
        }
    }
}
