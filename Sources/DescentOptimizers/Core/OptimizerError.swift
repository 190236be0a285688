import DescentTensor

/// An error a caller can cause when configuring or using an optimizer. Each message names the
/// optimizer, variable or config field concerned and what was expected.
public enum OptimizerError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A constructor argument or config field with an invalid value.
    case invalidArgument(field: String, message: String)
    /// A config key the optimizer does not accept (Keras' "Unexpected keyword argument").
    case unexpectedKeyword(optimizer: String, key: String, allowed: [String])
    /// `applyGradients` got no gradient for any variable.
    case noGradients(variables: [String])
    /// A gradient whose shape or dtype does not match its variable.
    case gradientMismatch(variable: String, message: String)
    /// A sparse gradient for a variable with a constraint.
    case constraintWithSparseGradient(variable: String)
    /// `slot(for:named:)` for a slot that does not exist.
    case slotNotFound(variable: String, slot: String, available: [String])
    /// `setWeights` with the wrong number of values.
    case weightCountMismatch(optimizer: String, expected: Int, given: Int)
    /// `setWeights` with a value of the wrong shape.
    case weightShapeMismatch(weight: String, expected: [Int], given: [Int])
    /// `getGradients` found a variable without a gradient.
    case missingGradient(variable: String)
    /// A subclass did not implement a required hook.
    case notImplemented(optimizer: String, method: String)
    /// `iterations` was set after the optimizer's weights were created.
    case iterationsAlreadyCreated(optimizer: String)
    /// A class name that is neither built in nor registered.
    case unknownClass(kind: String, name: String)
    /// A hyperparameter that is not a number where one is needed.
    case invalidHyperparameter(name: String, message: String)
    /// An update rule read a coefficient that ``Optimizer/prepare(_:)`` did not store (Keras' `KeyError`).
    case missingCoefficient(name: String, dtype: DType, available: [String])
    /// A variable's constraint cannot apply to the variable (e.g. an axis beyond its rank).
    case invalidConstraint(variable: String, message: String)
    /// `setWeights` with a value that cannot be stored in its weight (e.g. NaN for the `int64` iteration count).
    case invalidWeightValue(weight: String, message: String)

    public var description: String {
        switch self {
        case let .invalidArgument(field, message):
            return "invalid argument '\(field)': \(message)"
        case let .unexpectedKeyword(optimizer, key, allowed):
            return "\(optimizer): unexpected keyword argument '\(key)'; allowed: \(allowed.joined(separator: ", "))"
        case let .noGradients(variables):
            return "No gradients provided for any variable: [\(variables.map { "'\($0)'" }.joined(separator: ", "))]"
        case let .gradientMismatch(variable, message):
            return "gradient for variable '\(variable)': \(message)"
        case let .constraintWithSparseGradient(variable):
            return "Cannot use a constraint function on a sparse variable: variable '\(variable)' has a constraint and received a sparse (IndexedSlices) gradient"
        case let .slotNotFound(variable, slot, available):
            return "no slot '\(slot)' for variable '\(variable)' (available: \(available.isEmpty ? "none" : available.joined(separator: ", ")))"
        case let .weightCountMismatch(optimizer, expected, given):
            return "setWeights on optimizer \(optimizer): got \(given) values, but the optimizer has \(expected) weights (build it first with build(_:) or one applyGradients call)"
        case let .weightShapeMismatch(weight, expected, given):
            return "setWeights: weight '\(weight)' has shape \(expected), the provided value has shape \(given)"
        case let .missingGradient(variable):
            return "Variable '\(variable)' has no gradient. Make sure all of the operations between it and the loss are differentiable."
        case let .notImplemented(optimizer, method):
            return "\(optimizer) does not implement \(method)"
        case let .iterationsAlreadyCreated(optimizer):
            return "\(optimizer): cannot set iterations to a new variable after the optimizer's weights were created"
        case let .unknownClass(kind, name):
            return "unknown \(kind) class '\(name)' (register custom classes with customObjects or the registry)"
        case let .invalidHyperparameter(name, message):
            return "hyperparameter '\(name)': \(message)"
        case let .missingCoefficient(name, dtype, available):
            return "coefficient '\(name)' was not prepared for \(dtype) (prepared: \(available.isEmpty ? "none" : available.joined(separator: ", "))); store it in prepare(_:) with set(_:_:)"
        case let .invalidConstraint(variable, message):
            return "constraint of variable '\(variable)': \(message)"
        case let .invalidWeightValue(weight, message):
            return "setWeights: weight '\(weight)': \(message)"
        }
    }
}
