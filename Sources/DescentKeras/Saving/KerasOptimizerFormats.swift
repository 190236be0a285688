@_spi(DescentInternals) import DescentOptimizers

/// The seed's (legacy) optimizers in the two configs model files carry them.
///
/// tf_keras' `.h5` files hold the legacy serialization itself. Keras 3's `.keras` files hold a Keras 3
/// optimizer: the eight classes exist there under the same names with the same arguments and update
/// rule, on a base with more options (`weight_decay`, `use_ema`, ...). A legacy optimizer is written
/// as its Keras 3 counterpart (those options at their defaults; `decay` has no counterpart and must be
/// 0); a ``Keras3`` optimizer is written as it is. A Keras 3 config (`"module": "keras.optimizers"`) is
/// read as the ``Keras3`` class, as Python Keras 3 reads it.
enum KerasOptimizerFormats {
    /// The `metadata.json` key of a `.keras` file whose optimizer Descent wrote from a legacy class.
    static let familyMetadataKey = "descent_optimizer_family"

    /// While reading a `.keras` file Descent wrote from a legacy optimizer: read the optimizer config as
    /// the legacy class (see ``familyMetadataKey``).
    @TaskLocal static var readsLegacyFamily = false

    /// The Keras 3 base optimizer's options, in `get_config()` order, with their defaults.
    static let keras3BaseOptions: [(String, JSONValue)] = [
        ("weight_decay", .null), ("clipnorm", .null), ("global_clipnorm", .null), ("clipvalue", .null),
        ("use_ema", .bool(false)), ("ema_momentum", .double(0.99)), ("ema_overwrite_frequency", .null),
        ("loss_scale_factor", .null), ("gradient_accumulation_steps", .null),
    ]

    /// `{"module": "keras.optimizers", "class_name": ..., "config": {...}, "registered_name": null}`.
    /// - Throws: ``KerasError`` for a nonzero legacy `decay` or a class Keras 3 does not have.
    static func keras3Serialization(_ optimizer: Optimizer) throws -> JSONValue {
        // A Keras 3 optimizer is written as it is.
        if optimizer is Keras3.Optimizer { return .object(try optimizer.serialize()) }
        let legacy = try optimizer.serialize(legacyFormat: true)
        guard let className = legacy["class_name"]?.stringValue, let config = legacy["config"]?.objectValue else {
            throw KerasError.invalidArgument(field: "optimizer", message: "has no Keras config")
        }
        guard Optimizer.builtInFactories[className.lowercased()] != nil else {
            throw KerasError.invalidArgument(field: "optimizer '\(optimizer.name)'",
                                             message: "\(className) is not a Keras optimizer; a .keras file can hold Keras' own classes only (save as .h5)")
        }
        if let decay = config["decay"]?.doubleValue, decay != 0 {
            throw KerasError.invalidArgument(field: "optimizer '\(optimizer.name)'.decay",
                                             message: "Keras 3 optimizers have no decay (got \(decay)); use a learning-rate schedule, or save as .h5")
        }
        var out = JSONObject()
        let name = config["name"]?.stringValue ?? className
        out["name"] = .string(name == className ? KerasNaming.snakeCase(className) : name)
        out["learning_rate"] = config["learning_rate"] ?? .double(0.001)
        for (key, fallback) in keras3BaseOptions { out[key] = config[key] ?? fallback }
        for (key, value) in config where !["name", "learning_rate", "decay", "clipnorm", "global_clipnorm", "clipvalue"].contains(key) {
            out[key] = value
        }
        return KerasConfigParts.wrapper("keras.optimizers", className, out)
    }

    /// The optimizer of a model file's optimizer config.
    /// - Throws: the deserializer's error, or ``KerasError`` for a Keras 3 option Descent's legacy
    ///   classes do not have.
    static func deserialize(_ value: JSONValue, format: KerasFormat) throws -> Optimizer {
        guard let object = value.objectValue else {
            if let name = value.stringValue { return try Optimizer.deserialize(json: JSONValue.string(name).serialized) }
            throw KerasError.invalidConfig(kind: "optimizer", message: "expected an object, got \(value.typeName)")
        }
        guard object["module"]?.stringValue == "keras.optimizers" else { return try Optimizer.deserialize(object) }
        // Keras 3's own optimizers: the Keras 3 family, so that training resumes on Keras 3's numbers.
        if !readsLegacyFamily, format == .keras3 || Keras3.builtInFactories[(object["class_name"]?.stringValue ?? "").lowercased()] != nil {
            return try Optimizer.deserialize(object)
        }
        let (className, config) = try Optimizer.readWrapper(object, kind: "optimizer")
        var legacy = JSONObject()
        for (key, value) in config {
            if let option = keras3BaseOptions.first(where: { $0.0 == key }), !["clipnorm", "global_clipnorm", "clipvalue"].contains(key) {
                let atDefault = value == option.1 || value.isNull || (key == "weight_decay" && value.doubleValue == 0)
                    || (key == "ema_momentum" && config["use_ema"]?.boolValue != true)
                guard atDefault else {
                    throw KerasError.invalidConfig(kind: "optimizer \(className)",
                                                   message: "\(key) = \(value.serialized) needs Keras 3's optimizers, which Descent does not have yet")
                }
                continue
            }
            legacy[key] = value
        }
        return try Optimizer.deserialize(["class_name": .string(className), "config": .object(legacy)])
    }
}
