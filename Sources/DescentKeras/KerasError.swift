/// An error a caller can cause when looking up or configuring a Keras loss or metric. Shape and dtype
/// problems in the computations themselves are thrown as `TensorError`, naming both shapes.
public enum KerasError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A name that is neither a built-in loss/metric name nor a class name (Keras' `Unknown loss function`).
    case unknownIdentifier(kind: String, name: String, known: [String])
    /// A config with a missing, unexpected or invalid field.
    case invalidConfig(kind: String, message: String)
    /// A constructor argument with an invalid value.
    case invalidArgument(field: String, message: String)

    /// A message naming the identifier or field concerned.
    public var description: String {
        switch self {
        case let .unknownIdentifier(kind, name, known):
            return "Unknown \(kind): '\(name)' (known: \(known.joined(separator: ", ")))"
        case let .invalidConfig(kind, message):
            return "invalid \(kind) config: \(message)"
        case let .invalidArgument(field, message):
            return "invalid argument '\(field)': \(message)"
        }
    }
}
