import DescentAutodiff
import DescentTensor

// Keras' weight constraints (`tf.keras.constraints`), applied by an optimizer to a variable after each
// dense update. Norms are taken over `axis` (Keras' default 0: each column of a Dense kernel), with
// Keras' epsilon 1e-7 in the denominator.

/// A constraint with a Keras config, so it can be serialized with its variable.
public protocol KerasConstraint: VariableConstraint {
    /// The Keras class name (`"MaxNorm"`).
    var className: String { get }
    /// The constructor arguments.
    var config: JSONObject { get }
}

extension KerasConstraint {
    /// `{"module": "keras.constraints", "class_name", "config", "registered_name": null}`.
    public func serialize() -> JSONObject {
        ["module": "keras.constraints", "class_name": .string(className), "config": .object(config), "registered_name": .null]
    }
}

/// The axes of a constraint: one axis or several.
public enum ConstraintAxis: Sendable, Equatable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
    case axis(Int)
    case axes([Int])
    public init(integerLiteral value: Int) { self = .axis(value) }
    public init(arrayLiteral elements: Int...) { self = .axes(elements) }
    var list: [Int] { switch self { case .axis(let a): return [a]; case .axes(let a): return a } }

    /// Throws unless every axis names a distinct dimension of a tensor of `shape` (`-rank..<rank`, as the
    /// norm's reduction requires).
    func validate(for shape: [Int], owner: String) throws {
        var seen: [Int] = []
        for a in list {
            let n = a < 0 ? a + shape.count : a
            guard n >= 0 && n < shape.count else {
                throw OptimizerError.invalidArgument(
                    field: "axis", message: "\(owner) axis \(a) is out of range for a variable of rank \(shape.count) (shape \(shape))")
            }
            guard !seen.contains(n) else {
                throw OptimizerError.invalidArgument(field: "axis", message: "\(owner) lists axis \(a) twice (shape \(shape))")
            }
            seen.append(n)
        }
    }
    var json: JSONValue { switch self { case .axis(let a): return .int(a); case .axes(let a): return .array(a.map { .int($0) }) } }

    static func read(_ v: JSONValue?, owner: String) throws -> ConstraintAxis {
        guard let v, v != .null else { return .axis(0) }
        if let i = v.intValue { return .axis(i) }
        if let items = v.arrayValue {
            return .axes(try items.map { item in
                guard let i = item.intValue else {
                    throw OptimizerError.invalidArgument(field: "axis", message: "\(owner) expects integer axes, got \(item.typeName)")
                }
                return i
            })
        }
        throw OptimizerError.invalidArgument(field: "axis", message: "\(owner) expects an integer or a list of integers, got \(v.typeName)")
    }
}

private let constraintEpsilon = 1e-7

private func columnNorms(_ w: Tensor, _ axis: ConstraintAxis) throws -> Tensor {
    try w.squared().sum(axes: axis.list, keepDims: true).sqrt()
}

/// Keeps weights non-negative: `w · (w >= 0)`.
public struct NonNeg: KerasConstraint {
    public init() {}
    public func apply(to w: Tensor) throws -> Tensor { try w * w.greaterEqual(w.scalarLikeZero) }
    public var className: String { "NonNeg" }
    public var config: JSONObject { JSONObject() }
}

/// Rescales slices whose norm exceeds `maxValue` down to it.
public struct MaxNorm: KerasConstraint {
    public var maxValue: ConfigNumber
    public var axis: ConstraintAxis
    public init(maxValue: ConfigNumber = 2, axis: ConstraintAxis = 0) {
        self.maxValue = maxValue
        self.axis = axis
    }
    public func apply(to w: Tensor) throws -> Tensor {
        let norms = try columnNorms(w, axis)
        let desired = try norms.clipped(min: 0, max: maxValue.value)
        return try w * (desired / (norms + constraintEpsilon))
    }
    /// Throws unless ``axis`` fits a variable of `shape`.
    public func validate(for shape: [Int]) throws { try axis.validate(for: shape, owner: "MaxNorm") }
    public var className: String { "MaxNorm" }
    public var config: JSONObject { ["max_value": maxValue.json, "axis": axis.json] }
}

/// Rescales slices to unit norm.
public struct UnitNorm: KerasConstraint {
    public var axis: ConstraintAxis
    public init(axis: ConstraintAxis = 0) { self.axis = axis }
    public func apply(to w: Tensor) throws -> Tensor { try w / (columnNorms(w, axis) + constraintEpsilon) }
    /// Throws unless ``axis`` fits a variable of `shape`.
    public func validate(for shape: [Int]) throws { try axis.validate(for: shape, owner: "UnitNorm") }
    public var className: String { "UnitNorm" }
    public var config: JSONObject { ["axis": axis.json] }
}

/// Moves slice norms toward `[minValue, maxValue]` at `rate` (1 = all the way).
public struct MinMaxNorm: KerasConstraint {
    public var minValue: ConfigNumber
    public var maxValue: ConfigNumber
    public var rate: ConfigNumber
    public var axis: ConstraintAxis
    public init(minValue: ConfigNumber = 0.0, maxValue: ConfigNumber = 1.0, rate: ConfigNumber = 1.0, axis: ConstraintAxis = 0) {
        self.minValue = minValue
        self.maxValue = maxValue
        self.rate = rate
        self.axis = axis
    }
    public func apply(to w: Tensor) throws -> Tensor {
        let norms = try columnNorms(w, axis)
        let desired = try norms.clipped(min: minValue.value, max: maxValue.value) * rate.value + norms * (1 - rate.value)
        return try w * (desired / (norms + constraintEpsilon))
    }
    /// Throws unless ``axis`` fits a variable of `shape`.
    public func validate(for shape: [Int]) throws { try axis.validate(for: shape, owner: "MinMaxNorm") }
    public var className: String { "MinMaxNorm" }
    public var config: JSONObject {
        ["min_value": minValue.json, "max_value": maxValue.json, "rate": rate.json, "axis": axis.json]
    }
}

extension Tensor {
    fileprivate var scalarLikeZero: Tensor { (try? Tensor.zeros(shape: [], dtype: dtype)) ?? self }
}

/// Keras' serialized constraints, and `null`.
public enum Constraints {
    /// Reads a serialized constraint (`tf.keras.constraints.deserialize`) or a bare name (`"non_neg"`).
    /// An object needs `class_name` and `config`; other keys than `module` and `registered_name` are errors,
    /// as are unknown config keys. Numbers must be finite and fit float32.
    public static func deserialize(_ value: JSONValue, customObjects: CustomObjects = .none) throws -> (any VariableConstraint)? {
        if value == .null { return nil }
        if let name = value.stringValue {
            return try deserialize(["class_name": .string(name), "config": .object(JSONObject())], customObjects: customObjects)
        }
        guard let o = value.objectValue else {
            throw JSONError("constraint: expected null, a name or an object with 'class_name' and 'config', got \(value.typeName)")
        }
        let (className, wrappedConfig) = try Optimizer.readWrapper(o, kind: "constraint")
        var config = wrappedConfig
        let custom = customObjects.merged()
        if let f = custom.constraints[className] { return try f(config) }
        func number(_ key: String, _ fallback: ConfigNumber) throws -> ConfigNumber {
            try ConfigNumber.read(config.removeValue(forKey: key), field: key, owner: className) ?? fallback
        }
        let result: any VariableConstraint
        switch className {
        case "NonNeg", "non_neg", "NonNegative":
            result = NonNeg()
        case "MaxNorm", "max_norm":
            let maxValue = try number("max_value", 2)
            result = MaxNorm(maxValue: maxValue, axis: try ConstraintAxis.read(config.removeValue(forKey: "axis"), owner: className))
        case "UnitNorm", "unit_norm":
            result = UnitNorm(axis: try ConstraintAxis.read(config.removeValue(forKey: "axis"), owner: className))
        case "MinMaxNorm", "min_max_norm":
            let minValue = try number("min_value", 0.0), maxValue = try number("max_value", 1.0), rate = try number("rate", 1.0)
            result = MinMaxNorm(minValue: minValue, maxValue: maxValue, rate: rate,
                                axis: try ConstraintAxis.read(config.removeValue(forKey: "axis"), owner: className))
        default:
            throw OptimizerError.unknownClass(kind: "constraint", name: className)
        }
        if let key = config.keys.first {
            throw OptimizerError.unexpectedKeyword(optimizer: className, key: key, allowed: [])
        }
        return result
    }
}
