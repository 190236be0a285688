@_spi(DescentInternals) import DescentOptimizers
@_spi(DescentInternals) import DescentTensor

/// A layer that has a Keras config (`get_config()` / `from_config`), so model files can carry it.
///
/// Descent's layers conform; a custom layer conforms and is registered with
/// ``KerasLayers/register(_:_:)`` to be saved and loaded.
public protocol KerasSerializableLayer: Layer {
    /// The constructor arguments as `format`'s Keras writes them, in its key order.
    func kerasConfig(_ format: KerasFormat) throws -> JSONObject
    /// The layer a config describes.
    /// - Throws: ``KerasError`` naming the field that is wrong.
    static func fromKerasConfig(_ config: JSONObject) throws -> Self
}

/// The layer classes model files can hold, by Keras class name.
public enum KerasLayers {
    /// A builder of a layer from its config.
    public typealias Builder = @Sendable (JSONObject) throws -> Layer

    private static let registry = SanitizerVisibleMutex<[String: Builder]>([
        "Dense": { try Dense.fromKerasConfig($0) },
        "Sequential": { try Sequential.fromKerasConfig($0) },
        "Embedding": { try Embedding.fromKerasConfig($0) },
        "Dropout": { try Dropout.fromKerasConfig($0) },
        "Flatten": { try Flatten.fromKerasConfig($0) },
        "Conv1D": { try Conv1D.fromKerasConfig($0) },
        "Conv2D": { try Conv2D.fromKerasConfig($0) },
        "MaxPooling2D": { try MaxPooling2D.fromKerasConfig($0) },
        "AveragePooling2D": { try AveragePooling2D.fromKerasConfig($0) },
        "GlobalAveragePooling1D": { try GlobalAveragePooling1D.fromKerasConfig($0) },
        "GlobalAveragePooling2D": { try GlobalAveragePooling2D.fromKerasConfig($0) },
        "Activation": { try ActivationLayer.fromKerasConfig($0) },
        "Softmax": { try Softmax.fromKerasConfig($0) },
        "ReLU": { try ReLU.fromKerasConfig($0) },
        "Reshape": { try Reshape.fromKerasConfig($0) },
        "BatchNormalization": { try BatchNormalization.fromKerasConfig($0) },
        "LayerNormalization": { try LayerNormalization.fromKerasConfig($0) },
    ])

    /// Registers (or replaces) the builder for `className`.
    public static func register(_ className: String, _ builder: @escaping Builder) {
        registry.withLock { $0[className] = builder }
    }

    /// The registered class names, sorted.
    public static var classNames: [String] { registry.withLock { $0.keys.sorted() } }

    /// The layer of a serialized layer entry (`{"class_name": "Dense", "config": {...}, ...}`).
    /// - Throws: ``KerasError`` for an unknown class (naming the classes Descent has) or a bad config.
    static func deserialize(_ className: String, _ config: JSONObject) throws -> Layer {
        guard let builder = registry.withLock({ $0[className] }) else {
            throw KerasError.invalidConfig(kind: "layer", message: "unknown layer class '\(className)' (Descent has \(classNames.joined(separator: ", ")))")
        }
        return try builder(config)
    }
}

/// The keys every Keras layer config may have beyond its own arguments.
private let commonLayerKeys = ["name", "trainable", "dtype", "batch_input_shape", "batch_size", "input_dim", "input_shape"]

/// Reading a layer config: typed fields with errors naming the field, and unknown keys refused.
struct LayerConfigReader {
    let config: JSONObject
    let kind: String

    init(_ config: JSONObject, _ className: String, allowed: [String]) throws {
        self.config = config
        let name = config["name"]?.stringValue
        self.kind = name.map { "\(className) '\($0)'" } ?? className
        try KerasConfig.rejectUnknownKeys(config, allowed: commonLayerKeys + allowed, kind: kind)
        if let dtype = config["dtype"], !dtype.isNull {
            let text = dtype.stringValue ?? dtype.objectValue?["config"]?.objectValue?["name"]?.stringValue
            guard text == "float32" else {
                throw KerasError.invalidConfig(kind: kind, message: "dtype must be float32 (Descent's layers compute in float32), got \(dtype)")
            }
        }
    }

    var name: String? { config["name"]?.stringValue }

    func bool(_ key: String, _ fallback: Bool) throws -> Bool {
        guard let v = config[key], !v.isNull else { return fallback }
        guard let b = v.boolValue else { throw KerasError.invalidConfig(kind: kind, message: "\(key) must be true or false, got \(v.typeName)") }
        return b
    }

    func int(_ key: String) throws -> Int {
        guard let v = config[key], let i = v.intValue, v.doubleValue == Double(i) else {
            throw KerasError.invalidConfig(kind: kind, message: "\(key) must be an integer, got \(config[key]?.typeName ?? "nothing")")
        }
        return i
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let v = config[key], !v.isNull else { return nil }
        return try int(key)
    }

    func number(_ key: String, _ fallback: Double) throws -> Double {
        guard let v = config[key], !v.isNull else { return fallback }
        guard let d = v.doubleValue, d.isFinite else { throw KerasError.invalidConfig(kind: kind, message: "\(key) must be a finite number, got \(v)") }
        return d
    }

    func string(_ key: String, _ fallback: String) throws -> String {
        guard let v = config[key], !v.isNull else { return fallback }
        guard let s = v.stringValue else { throw KerasError.invalidConfig(kind: kind, message: "\(key) must be a string, got \(v.typeName)") }
        return s
    }

    /// `null` (or absent), or the only value Descent supports.
    func requireNull(_ key: String, orEqual allowed: JSONValue? = nil) throws {
        guard let v = config[key], !v.isNull, v != allowed else { return }
        throw KerasError.invalidConfig(kind: kind, message: "\(key) is not supported by Descent (expected \(allowed?.serialized ?? "null"), got \(v.serialized))")
    }

    func activation(_ key: String) throws -> Activation {
        let text = try string(key, "linear")
        guard let a = Activation(kerasName: text) else {
            throw KerasError.invalidConfig(kind: kind, message: "unknown activation '\(text)' (Descent has \(Activation.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return a
    }

    func field(_ key: String) -> String { "\(kind).\(key)" }
}

extension Layer {
    /// The keys at the start of every layer config.
    func commonConfig(_ format: KerasFormat) -> JSONObject {
        ["name": .string(name), "trainable": .bool(trainable), "dtype": KerasConfigParts.dtype(format)]
    }
}

extension Dense: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        var c = commonConfig(format)
        c["units"] = .int(units)
        c["activation"] = .string(activation.rawValue)
        c["use_bias"] = .bool(useBias)
        c["kernel_initializer"] = KerasConfigParts.initializer(kernelInitializer, format)
        c["bias_initializer"] = KerasConfigParts.initializer(biasInitializer, format)
        c["kernel_regularizer"] = KerasConfigParts.regularizer(kernelRegularizer, format)
        c["bias_regularizer"] = KerasConfigParts.regularizer(biasRegularizer, format)
        if format == .tfKeras { c["activity_regularizer"] = .null }
        c["kernel_constraint"] = try KerasConfigParts.constraint(kernelConstraint, field: "Dense '\(name)'.kernelConstraint")
        c["bias_constraint"] = try KerasConfigParts.constraint(biasConstraint, field: "Dense '\(name)'.biasConstraint")
        if format == .keras3 { c["quantization_config"] = .null }
        return c
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> Dense {
        let r = try LayerConfigReader(config, "Dense", allowed: [
            "units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
            "activity_regularizer", "kernel_constraint", "bias_constraint", "quantization_config", "lora_rank", "lora_alpha"])
        try r.requireNull("activity_regularizer")
        try r.requireNull("quantization_config")
        try r.requireNull("lora_rank")
        let layer = try Dense(
            try r.int("units"), activation: try r.activation("activation"), useBias: try r.bool("use_bias", true),
            kernelInitializer: try KerasConfigParts.readInitializer(config["kernel_initializer"], field: r.field("kernel_initializer")) ?? .glorotUniform,
            biasInitializer: try KerasConfigParts.readInitializer(config["bias_initializer"], field: r.field("bias_initializer")) ?? .zeros,
            kernelRegularizer: try KerasConfigParts.readRegularizer(config["kernel_regularizer"], field: r.field("kernel_regularizer")),
            biasRegularizer: try KerasConfigParts.readRegularizer(config["bias_regularizer"], field: r.field("bias_regularizer")),
            kernelConstraint: try KerasConfigParts.readConstraint(config["kernel_constraint"], field: r.field("kernel_constraint")),
            biasConstraint: try KerasConfigParts.readConstraint(config["bias_constraint"], field: r.field("bias_constraint")),
            name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension Embedding: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        var c = commonConfig(format)
        if format == .tfKeras { c["batch_input_shape"] = .array([.null, .null]) }
        c["input_dim"] = .int(inputDim)
        c["output_dim"] = .int(outputDim)
        c["embeddings_initializer"] = KerasConfigParts.initializer(embeddingsInitializer, format)
        c["embeddings_regularizer"] = KerasConfigParts.regularizer(embeddingsRegularizer, format)
        c["activity_regularizer"] = .null
        c["embeddings_constraint"] = .null
        c["mask_zero"] = .bool(false)
        if format == .tfKeras { c["input_length"] = .null } else { c["quantization_config"] = .null }
        return c
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> Embedding {
        let r = try LayerConfigReader(config, "Embedding", allowed: [
            "input_dim", "output_dim", "embeddings_initializer", "embeddings_regularizer", "activity_regularizer",
            "embeddings_constraint", "mask_zero", "input_length", "quantization_config", "sparse", "lora_rank", "lora_alpha"])
        for key in ["activity_regularizer", "embeddings_constraint", "quantization_config", "lora_rank"] { try r.requireNull(key) }
        try r.requireNull("mask_zero", orEqual: .bool(false))
        try r.requireNull("sparse", orEqual: .bool(false))
        let layer = try Embedding(
            inputDim: try r.int("input_dim"), outputDim: try r.int("output_dim"),
            embeddingsInitializer: try KerasConfigParts.readInitializer(config["embeddings_initializer"], field: r.field("embeddings_initializer")) ?? .randomUniform(),
            embeddingsRegularizer: try KerasConfigParts.readRegularizer(config["embeddings_regularizer"], field: r.field("embeddings_regularizer")),
            name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension Dropout: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        var c = commonConfig(format)
        switch format {
        case .tfKeras:
            c["rate"] = .double(rate)
            c["noise_shape"] = .null
            c["seed"] = KerasConfigParts.seed(seed)
        case .keras3:
            c["rate"] = .double(rate)
            c["seed"] = KerasConfigParts.seed(seed)
            c["noise_shape"] = .null
        }
        return c
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> Dropout {
        let r = try LayerConfigReader(config, "Dropout", allowed: ["rate", "noise_shape", "seed"])
        try r.requireNull("noise_shape")
        let seed = try r.optionalInt("seed")
        if let seed, seed < 0 { throw KerasError.invalidConfig(kind: r.kind, message: "seed must be a non-negative integer or null, got \(seed)") }
        let layer = try Dropout(try r.number("rate", 0.5), seed: seed.map { UInt64($0) }, name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension Flatten: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        var c = commonConfig(format)
        c["data_format"] = .string("channels_last")
        return c
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> Flatten {
        let r = try LayerConfigReader(config, "Flatten", allowed: ["data_format"])
        try r.requireNull("data_format", orEqual: .string("channels_last"))
        let layer = Flatten(name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}
