import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

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
    static let shared = SanitizerVisibleMutex(CustomObjects())
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
    /// `{"module": "keras.optimizers.legacy", "class_name": ..., "config": {...}, "registered_name": null}`;
    /// a ``Keras3`` optimizer writes `"module": "keras.optimizers"`, as Keras 3's `serialize` does.
    ///
    /// With `legacyFormat` (Keras' `use_legacy_format=True`) only `class_name` and `config` are written.
    public func serialize(legacyFormat: Bool = false) throws -> JSONObject {
        let className = type(of: self).kerasClassName
        let isKeras3 = self is Keras3.Optimizer
        let builtIn = (isKeras3 ? Keras3.builtInFactories : Optimizer.builtInFactories)[className.lowercased()] != nil
        var o = JSONObject()
        if !legacyFormat { o["module"] = builtIn ? .string(isKeras3 ? Keras3.module : "keras.optimizers.legacy") : .null }
        o["class_name"] = .string(className)
        o["config"] = .object(try config)
        if !legacyFormat { o["registered_name"] = builtIn ? .null : .string(className) }
        return o
    }

    /// The serialization as a JSON string, exactly as Python's `json.dumps` would write it.
    public func serializedJSON() throws -> String { try serialize().serialized }

    /// The keys of a serialized optimizer, schedule or constraint: Keras' `serialize_keras_object` writes
    /// `module`, `class_name`, `config` and `registered_name`; the legacy format only `class_name` and
    /// `config`. Any other key is an error (a misspelt `"config"` must not silently mean defaults).
    static let wrapperKeys = ["class_name", "config", "module", "registered_name"]

    /// Rebuilds an optimizer from Keras' serialized form (`tf.keras.optimizers.deserialize`), as written by
    /// Python Keras (with or without `"module"` / `"registered_name"`). Class names match built-ins
    /// case-insensitively (`"adam"`, `"SGD"`); others come from `customObjects` or the registry.
    ///
    /// **Which family**: `"module": "keras.optimizers"` (Keras 3's `serialize`) gives a ``Keras3``
    /// optimizer; `"keras.optimizers.legacy"`, or no module, the seed's (OptimizerV2) class of that name.
    /// A document without a module naming a class only Keras 3 has (`"AdamW"`, `"Lion"`, ...) gives the
    /// Keras 3 class.
    ///
    /// `class_name` and `config` are required (Keras: "Improper config format"); a key other than
    /// ``wrapperKeys`` is an error, as is an unknown key inside `config` (Keras' `TypeError: Unexpected
    /// keyword argument passed to optimizer`). Numbers must fit float32, Keras' hyperparameter dtype.
    /// - Throws: ``OptimizerError/unknownClass(kind:name:)`` or a ``JSONError`` naming the bad field.
    public static func deserialize(_ serialized: JSONObject, customObjects: CustomObjects = .none) throws -> Optimizer {
        let (className, config) = try readWrapper(serialized, kind: "optimizer")
        let custom = customObjects.merged()
        let registered = serialized["registered_name"]?.stringValue
        let optimizer: Optimizer
        // Keras 3's module, or (for a bare name) a class only Keras 3 has: the Keras 3 family.
        let module = serialized["module"]?.stringValue
        let keras3Factory = Keras3.builtInFactories[className.lowercased()]
        if let f = custom.optimizers[className] ?? registered.flatMap({ custom.optimizers[$0] }) {
            optimizer = try f(config, customObjects)
        } else if module == Keras3.module || (module == nil && builtInFactories[className.lowercased()] == nil),
                  let keras3Factory {
            return try keras3Factory(config, customObjects)
        } else if module == Keras3.module {
            throw OptimizerError.unknownClass(kind: "Keras 3 optimizer (module keras.optimizers)", name: className)
        } else if let f = builtInFactories[className.lowercased()] {
            optimizer = try f(config, customObjects)
        } else {
            throw OptimizerError.unknownClass(kind: "optimizer", name: className)
        }
        // An integer clip option (`"clipvalue": 2`) is written back as an integer, for custom classes too.
        for key in ["clipnorm", "clipvalue", "global_clipnorm"] {
            if case .int? = config[key] { optimizer.configNumbers[key] = config[key] }
        }
        return optimizer
    }

    /// The class name and config of a serialized object of `kind` ("optimizer", "schedule", "constraint",
    /// and in DescentKeras "loss" and "metric"): the one wrapper rule. Allowed keys `module`,
    /// `class_name`, `config`, `registered_name`; `class_name` a string; `config` present and an object.
    /// - Throws: ``JSONError`` naming the kind and the key.
    @_spi(DescentInternals)
    public static func readWrapper(_ serialized: JSONObject, kind: String) throws -> (className: String, config: JSONObject) {
        try serialized.rejectUnknownKeys(allowed: wrapperKeys, in: "\(kind) document")
        guard let classValue = serialized["class_name"] else { throw JSONError("\(kind): missing string field 'class_name'") }
        guard let className = classValue.stringValue else {
            throw JSONError("\(kind): field 'class_name' must be a string, got \(classValue.typeName)")
        }
        guard let configValue = serialized["config"] else {
            throw JSONError("\(kind) \(className): missing field 'config' (Keras needs both 'class_name' and 'config')")
        }
        guard let config = configValue.objectValue else {
            throw JSONError("\(kind) \(className): field 'config' must be an object, got \(configValue.typeName)")
        }
        return (className, config)
    }

    /// Deserializes from a JSON string, or from a bare name such as `"adam"` (Keras' `optimizers.get`).
    public static func deserialize(json: String, customObjects: CustomObjects = .none) throws -> Optimizer {
        try deserialize(jsonBytes: Array(json.utf8), customObjects: customObjects)
    }

    /// Deserializes from the UTF-8 bytes of a JSON document (parsed strictly, see
    /// ``JSONValue/init(parsing:options:)-(Collection<UInt8>,_)``), or of a bare name such as `adam`.
    public static func deserialize(jsonBytes: some Collection<UInt8>, customObjects: CustomObjects = .none) throws -> Optimizer {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        if let first = jsonBytes.first(where: { !isSpace($0) }), first != UInt8(ascii: "{"), first != UInt8(ascii: "\"") {
            guard let name = String(validating: Array(jsonBytes), as: UTF8.self) else {
                throw JSONError("optimizer: the name is not valid UTF-8")
            }
            return try deserialize(["class_name": .string(name.trimmingWhitespace), "config": .object(JSONObject())],
                                   customObjects: customObjects)
        }
        let value = try JSONValue(parsing: jsonBytes)
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
    @_spi(DescentInternals) public static let builtInFactories: [String: @Sendable (JSONObject, CustomObjects) throws -> Optimizer] = [
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

/// Reads a serialized schedule (`tf.keras.optimizers.schedules.deserialize`): `class_name` and `config`
/// are required; keys other than `module`, `class_name`, `config` and `registered_name` are errors.
public func deserializeSchedule(_ o: JSONObject, customObjects: CustomObjects = .none) throws -> any LearningRateSchedule {
    let (className, config) = try Optimizer.readWrapper(o, kind: "schedule")
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
