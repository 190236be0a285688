import DescentAutodiff
import DescentTensor
import Synchronization

/// Classes a config may name besides the built-ins (Keras' `custom_objects`), by class name.
public struct CustomObjects: Sendable {
    /// Optimizer factories from a config.
    public var optimizers: [String: @Sendable (JSONObject, CustomObjects) throws -> Optimizer] = [:]
    /// Schedule factories from a config.
    public var schedules: [String: @Sendable (JSONObject) throws -> any LearningRateSchedule] = [:]
    /// Constraint factories from a config.
    public var constraints: [String: @Sendable (JSONObject) throws -> any VariableConstraint] = [:]

    public init() {}

    /// No custom classes.
    public static let none = CustomObjects()

    /// These classes plus the process-wide registry (``Optimizer/register(className:factory:)``).
    func merged() -> CustomObjects {
        var all = Registry.shared.withLock { $0 }
        all.optimizers.merge(optimizers) { $1 }
        all.schedules.merge(schedules) { $1 }
        all.constraints.merge(constraints) { $1 }
        return all
    }
}

/// The process-wide registry of custom classes (Keras' `register_keras_serializable`).
enum Registry {
    static let shared = Mutex(CustomObjects())
}

extension Optimizer {
    /// Registers a custom optimizer class for ``deserialize(_:customObjects:)`` by its class name.
    public static func register(className: String, factory: @escaping @Sendable (JSONObject, CustomObjects) throws -> Optimizer) {
        Registry.shared.withLock { $0.optimizers[className] = factory }
    }

    /// Registers a custom schedule class for deserialization.
    public static func registerSchedule(className: String, factory: @escaping @Sendable (JSONObject) throws -> any LearningRateSchedule) {
        Registry.shared.withLock { $0.schedules[className] = factory }
    }

    /// Registers a custom constraint class for deserialization.
    public static func registerConstraint(className: String, factory: @escaping @Sendable (JSONObject) throws -> any VariableConstraint) {
        Registry.shared.withLock { $0.constraints[className] = factory }
    }

    /// The Keras serialization of this optimizer (`tf.keras.optimizers.serialize`):
    /// `{"module": "keras.optimizers.legacy", "class_name": ..., "config": {...}, "registered_name": null}`.
    ///
    /// With `legacyFormat` (Keras' `use_legacy_format=True`) only `class_name` and `config` are written.
    public func serialize(legacyFormat: Bool = false) throws -> JSONObject {
        let className = type(of: self).kerasClassName
        let builtIn = Optimizer.builtInFactories[className.lowercased()] != nil
        var o = JSONObject()
        if !legacyFormat { o["module"] = builtIn ? "keras.optimizers.legacy" : .null }
        o["class_name"] = .string(className)
        o["config"] = .object(try config)
        if !legacyFormat { o["registered_name"] = builtIn ? .null : .string(className) }
        return o
    }

    /// The serialization as a JSON string, exactly as Python's `json.dumps` would write it.
    public func serializedJSON() throws -> String { try serialize().serialized }

    /// Rebuilds an optimizer from Keras' serialized form (`tf.keras.optimizers.deserialize`), as written by
    /// Python Keras (with or without `"module"` / `"registered_name"`). Class names match built-ins
    /// case-insensitively (`"adam"`, `"SGD"`); others come from `customObjects` or the registry.
    /// - Throws: ``OptimizerError/unknownClass(kind:name:)`` or a ``JSONError`` naming the bad field.
    public static func deserialize(_ serialized: JSONObject, customObjects: CustomObjects = .none) throws -> Optimizer {
        guard let className = serialized["class_name"]?.stringValue else {
            throw JSONError("optimizer: missing string field 'class_name'")
        }
        let config = try serialized["config"].map { v -> JSONObject in
            guard let o = v.objectValue else { throw JSONError("optimizer \(className): field 'config' must be an object, got \(v.typeName)") }
            return o
        } ?? JSONObject()
        let custom = customObjects.merged()
        let registered = serialized["registered_name"]?.stringValue
        if let f = custom.optimizers[className] ?? registered.flatMap({ custom.optimizers[$0] }) {
            return try f(config, customObjects)
        }
        if let f = builtInFactories[className.lowercased()] {
            let optimizer = try f(config, customObjects)
            for key in ["clipnorm", "clipvalue", "global_clipnorm"] {
                if case .int? = config[key] { optimizer.configNumbers[key] = config[key] }
            }
            return optimizer
        }
        throw OptimizerError.unknownClass(kind: "optimizer", name: className)
    }

    /// Deserializes from a JSON string, or from a bare name such as `"adam"` (Keras' `optimizers.get`).
    public static func deserialize(json: String, customObjects: CustomObjects = .none) throws -> Optimizer {
        let trimmed = json.trimmingWhitespace
        if let first = trimmed.first, first != "{" && first != "\"" {
            return try deserialize(["class_name": .string(trimmed), "config": .object(JSONObject())], customObjects: customObjects)
        }
        let value = try JSONValue(parsing: json)
        if let name = value.stringValue { return try deserialize(json: name, customObjects: customObjects) }
        guard let object = value.objectValue else { throw JSONError("optimizer: expected a JSON object, got \(value.typeName)") }
        return try deserialize(object, customObjects: customObjects)
    }

    /// Rebuilds an optimizer of this class from its config (Keras' `from_config`): `lr` is renamed to
    /// `learning_rate`, a serialized schedule is deserialized, unknown keys throw.
    public static func fromConfig(_ config: JSONObject, customObjects: CustomObjects = .none) throws -> Optimizer {
        try deserialize(["class_name": .string(kerasClassName), "config": .object(config)], customObjects: customObjects)
    }

    /// The built-in optimizers by lower-cased class name (with Keras' aliases).
    static let builtInFactories: [String: @Sendable (JSONObject, CustomObjects) throws -> Optimizer] = [
        "sgd": { try SGD(config: $0, customObjects: $1) },
        "adam": { try Adam(config: $0, customObjects: $1) },
        "adagrad": { try Adagrad(config: $0, customObjects: $1) },
        "adadelta": { try Adadelta(config: $0, customObjects: $1) },
        "adamax": { try Adamax(config: $0, customObjects: $1) },
        "ftrl": { try Ftrl(config: $0, customObjects: $1) },
        "nadam": { try Nadam(config: $0, customObjects: $1) },
        // Keras' class `RMSprop` and its alias `RMSProp` (the lookup is case-insensitive).
        "rmsprop": { try RMSprop(config: $0, customObjects: $1) },
    ]
}

/// `{"module": "keras.optimizers.schedules", "class_name", "config", "registered_name": null}`.
public func serializeSchedule(_ schedule: any LearningRateSchedule, legacyFormat: Bool = false) throws -> JSONObject {
    let builtIn = builtInSchedules[schedule.className] != nil
    var o = JSONObject()
    if !legacyFormat { o["module"] = builtIn ? "keras.optimizers.schedules" : .null }
    o["class_name"] = .string(schedule.className)
    o["config"] = .object(try schedule.config)
    if !legacyFormat { o["registered_name"] = builtIn ? .null : .string(schedule.className) }
    return o
}

/// Reads a serialized schedule (`tf.keras.optimizers.schedules.deserialize`).
public func deserializeSchedule(_ o: JSONObject, customObjects: CustomObjects = .none) throws -> any LearningRateSchedule {
    guard let className = o["class_name"]?.stringValue else { throw JSONError("schedule: missing string field 'class_name'") }
    let config = o["config"]?.objectValue ?? JSONObject()
    let custom = customObjects.merged()
    if let f = custom.schedules[className] ?? o["registered_name"]?.stringValue.flatMap({ custom.schedules[$0] }) {
        return try f(config)
    }
    guard let f = builtInSchedules[className] else { throw OptimizerError.unknownClass(kind: "schedule", name: className) }
    return try f(config)
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}

/// Reading constructor arguments out of a config, with errors naming the field.
struct ConfigReader {
    let className: String
    var config: JSONObject
    let customObjects: CustomObjects

    init(_ config: JSONObject, className: String, customObjects: CustomObjects) {
        self.config = config
        self.className = className
        self.customObjects = customObjects
    }

    /// Removes and returns `key`.
    mutating func take(_ key: String) -> JSONValue? {
        let v = config.removeValue(forKey: key)
        return v == .null ? nil : v
    }

    mutating func double(_ key: String) throws -> Double? {
        guard let v = take(key) else { return nil }
        guard let d = v.doubleValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(className) expects a number, got \(v.typeName)")
        }
        return d
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let v = take(key) else { return nil }
        guard let b = v.boolValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(className) expects true or false, got \(v.typeName)")
        }
        return b
    }

    mutating func string(_ key: String) throws -> String? {
        guard let v = take(key) else { return nil }
        guard let s = v.stringValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(className) expects a string, got \(v.typeName)")
        }
        return s
    }

    mutating func hyper(_ key: String) throws -> Hyperparameter? {
        guard let v = take(key) else { return nil }
        return try Hyperparameter.fromConfig(v, field: key, customObjects: customObjects)
    }

    /// The learning rate: `lr` wins over `learning_rate`, as in Keras.
    mutating func learningRate() throws -> Hyperparameter? {
        let lr = try hyper("lr")
        let learningRate = try hyper("learning_rate")
        return lr ?? learningRate
    }

    /// Throws for any key left over (Keras' "Unexpected keyword argument").
    func finish(allowed: [String]) throws {
        if let key = config.keys.first {
            throw OptimizerError.unexpectedKeyword(optimizer: className, key: key, allowed: allowed)
        }
    }

    /// The options every optimizer accepts.
    mutating func common() throws -> (name: String?, clipnorm: Double?, clipvalue: Double?, globalClipnorm: Double?, decay: Double?) {
        _ = take("is_legacy_optimizer")  // written by Keras 2.11-2.12's serialize; always legacy here
        return (try string("name"), try double("clipnorm"), try double("clipvalue"), try double("global_clipnorm"), try double("decay"))
    }

    static let commonKeys = ["name", "clipnorm", "clipvalue", "global_clipnorm", "decay", "lr", "is_legacy_optimizer"]
}
