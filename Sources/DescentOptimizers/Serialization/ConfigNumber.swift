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
        case .double(let d): return ConfigNumber(d)
        default: throw OptimizerError.invalidArgument(field: field, message: "\(owner) expects a number, got \(v.typeName)")
        }
    }
}
