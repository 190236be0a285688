import DescentAutodiff
@_spi(DescentInternals) import DescentOptimizers
@_spi(DescentInternals) import DescentTensor

// Keras configs of the convolution and pooling layers, in tf_keras 2.21's and Keras 3's key order
// (measured: Tests/Fixtures/layers/conv_configs.json, scripts/golden/generate_conv_layers.py).

extension LayerConfigReader {
    /// A tuple of `count` positive integers (Keras writes a list; a single integer is accepted as Keras'
    /// constructors accept it), or `fallback` when absent or `null`.
    func positiveInts(_ key: String, count: Int, _ fallback: [Int]? = nil) throws -> [Int] {
        guard let v = config[key], !v.isNull else {
            if let fallback { return fallback }
            throw KerasError.invalidConfig(kind: kind, message: "\(key) is missing")
        }
        let items: [JSONValue] = v.arrayValue ?? [v]
        let values = items.compactMap { item -> Int? in
            guard let i = item.intValue, item.doubleValue == Double(i), i > 0 else { return nil }
            return i
        }
        guard values.count == items.count, values.count == count || (values.count == 1 && v.arrayValue == nil) else {
            throw KerasError.invalidConfig(kind: kind, message: "\(key) must be \(count == 1 ? "a positive integer or a list of 1" : "a list of \(count)") positive integer\(count == 1 ? "" : "s"), got \(v.serialized)")
        }
        return values.count == count ? values : [Int](repeating: values[0], count: count)
    }

    /// `"valid"`, `"same"` (and `"causal"` when `allowed`), case-insensitive as Keras' `normalize_padding`.
    func padding(_ key: String, allowed: [Padding]) throws -> Padding {
        let text = try string(key, "valid")
        guard let p = Padding(rawValue: text.lowercased()), allowed.contains(p) else {
            throw KerasError.invalidConfig(kind: kind, message: "\(key) must be one of \(allowed.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), got \"\(text)\"")
        }
        return p
    }

    /// `data_format` must be `channels_last` (or `null`, Keras' default).
    func requireChannelsLast() throws {
        guard let v = config["data_format"], !v.isNull, v != .string("channels_last") else { return }
        throw KerasError.invalidConfig(kind: kind, message: "data_format must be \"channels_last\" (Descent's convolution and pooling layers are channels last), got \(v.serialized)")
    }
}

extension Convolution {
    /// The config of both convolution layers, with their window arguments.
    func convolutionConfig(_ format: KerasFormat, kernelSize: [Int], strides: [Int], padding: Padding, dilationRate: [Int]) throws -> JSONObject {
        let layer = "\(type(of: self)) '\(name)'"
        var c = commonConfig(format)
        c["filters"] = .int(filters)
        c["kernel_size"] = .array(kernelSize.map { .int($0) })
        c["strides"] = .array(strides.map { .int($0) })
        c["padding"] = .string(padding.rawValue)
        c["data_format"] = .string("channels_last")
        c["dilation_rate"] = .array(dilationRate.map { .int($0) })
        c["groups"] = .int(1)
        c["activation"] = .string(activation.rawValue)
        c["use_bias"] = .bool(useBias)
        c["kernel_initializer"] = KerasConfigParts.initializer(kernelInitializer, format)
        c["bias_initializer"] = KerasConfigParts.initializer(biasInitializer, format)
        c["kernel_regularizer"] = KerasConfigParts.regularizer(kernelRegularizer, format)
        c["bias_regularizer"] = KerasConfigParts.regularizer(biasRegularizer, format)
        c["activity_regularizer"] = .null
        c["kernel_constraint"] = try KerasConfigParts.constraint(kernelConstraint, field: "\(layer).kernelConstraint")
        c["bias_constraint"] = try KerasConfigParts.constraint(biasConstraint, field: "\(layer).biasConstraint")
        return c
    }

    /// The keys of a convolution config beyond the common ones.
    static let configKeys = [
        "filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation", "use_bias",
        "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer",
        "kernel_constraint", "bias_constraint", "lora_rank", "lora_alpha"]

    /// The shared fields of a convolution config, checked.
    struct ConfigFields {
        let filters: Int, activation: Activation, useBias: Bool
        let kernelInitializer: Initializer, biasInitializer: Initializer
        let kernelRegularizer: Regularizer?, biasRegularizer: Regularizer?
        let kernelConstraint: (any VariableConstraint)?, biasConstraint: (any VariableConstraint)?

        init(_ r: LayerConfigReader) throws {
            try r.requireChannelsLast()
            try r.requireNull("activity_regularizer")
            try r.requireNull("lora_rank")
            try r.requireNull("groups", orEqual: .int(1))
            let config = r.config
            filters = try r.int("filters")
            activation = try r.activation("activation")
            useBias = try r.bool("use_bias", true)
            kernelInitializer = try KerasConfigParts.readInitializer(config["kernel_initializer"], field: r.field("kernel_initializer")) ?? .glorotUniform
            biasInitializer = try KerasConfigParts.readInitializer(config["bias_initializer"], field: r.field("bias_initializer")) ?? .zeros
            kernelRegularizer = try KerasConfigParts.readRegularizer(config["kernel_regularizer"], field: r.field("kernel_regularizer"))
            biasRegularizer = try KerasConfigParts.readRegularizer(config["bias_regularizer"], field: r.field("bias_regularizer"))
            kernelConstraint = try KerasConfigParts.readConstraint(config["kernel_constraint"], field: r.field("kernel_constraint"))
            biasConstraint = try KerasConfigParts.readConstraint(config["bias_constraint"], field: r.field("bias_constraint"))
        }
    }
}

/// A constructor error as a config error of the layer (`KerasError.invalidArgument` → `invalidConfig`).
private func asConfigError<T>(_ kind: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let KerasError.invalidArgument(field, message) {
        throw KerasError.invalidConfig(kind: kind, message: "\(field): \(message)")
    }
}

extension Conv2D: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        try convolutionConfig(format, kernelSize: [kernelSize.height, kernelSize.width], strides: [strides.height, strides.width],
                              padding: padding, dilationRate: [dilationRate.height, dilationRate.width])
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> Conv2D {
        let r = try LayerConfigReader(config, "Conv2D", allowed: Convolution.configKeys)
        let f = try ConfigFields(r)
        let k = try r.positiveInts("kernel_size", count: 2), s = try r.positiveInts("strides", count: 2, [1, 1])
        let d = try r.positiveInts("dilation_rate", count: 2, [1, 1])
        let padding = try r.padding("padding", allowed: [.valid, .same])
        let layer = try asConfigError(r.kind) {
            try Conv2D(f.filters, kernelSize: Size2D(k[0], k[1]), strides: Size2D(s[0], s[1]), padding: padding,
                       dilationRate: Size2D(d[0], d[1]), activation: f.activation, useBias: f.useBias,
                       kernelInitializer: f.kernelInitializer, biasInitializer: f.biasInitializer,
                       kernelRegularizer: f.kernelRegularizer, biasRegularizer: f.biasRegularizer,
                       kernelConstraint: f.kernelConstraint, biasConstraint: f.biasConstraint, name: r.name)
        }
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension Conv1D: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        try convolutionConfig(format, kernelSize: [kernelSize], strides: [strides], padding: padding, dilationRate: [dilationRate])
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> Conv1D {
        let r = try LayerConfigReader(config, "Conv1D", allowed: Convolution.configKeys)
        let f = try ConfigFields(r)
        let k = try r.positiveInts("kernel_size", count: 1), s = try r.positiveInts("strides", count: 1, [1])
        let d = try r.positiveInts("dilation_rate", count: 1, [1])
        let padding = try r.padding("padding", allowed: [.valid, .same, .causal])
        let layer = try asConfigError(r.kind) {
            try Conv1D(f.filters, kernelSize: k[0], strides: s[0], padding: padding, dilationRate: d[0], activation: f.activation,
                       useBias: f.useBias, kernelInitializer: f.kernelInitializer, biasInitializer: f.biasInitializer,
                       kernelRegularizer: f.kernelRegularizer, biasRegularizer: f.biasRegularizer,
                       kernelConstraint: f.kernelConstraint, biasConstraint: f.biasConstraint, name: r.name)
        }
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension Pooling2D {
    func poolingConfig(_ format: KerasFormat) -> JSONObject {
        var c = commonConfig(format)
        c["pool_size"] = .array([.int(poolSize.height), .int(poolSize.width)])
        c["padding"] = .string(padding.rawValue)
        c["strides"] = .array([.int(strides.height), .int(strides.width)])
        c["data_format"] = .string("channels_last")
        return c
    }

    /// The pooling arguments of a config: `(poolSize, strides, padding)`.
    static func readPooling(_ r: LayerConfigReader) throws -> (Size2D, Size2D, Padding) {
        try r.requireChannelsLast()
        let p = try r.positiveInts("pool_size", count: 2, [2, 2])
        let s = try r.positiveInts("strides", count: 2, p)
        return (Size2D(p[0], p[1]), Size2D(s[0], s[1]), try r.padding("padding", allowed: [.valid, .same]))
    }
}

extension MaxPooling2D: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject { poolingConfig(format) }

    public static func fromKerasConfig(_ config: JSONObject) throws -> MaxPooling2D {
        let r = try LayerConfigReader(config, "MaxPooling2D", allowed: ["pool_size", "padding", "strides", "data_format"])
        let (p, s, padding) = try readPooling(r)
        let layer = try asConfigError(r.kind) { try MaxPooling2D(poolSize: p, strides: s, padding: padding, name: r.name) }
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension AveragePooling2D: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject { poolingConfig(format) }

    public static func fromKerasConfig(_ config: JSONObject) throws -> AveragePooling2D {
        let r = try LayerConfigReader(config, "AveragePooling2D", allowed: ["pool_size", "padding", "strides", "data_format"])
        let (p, s, padding) = try readPooling(r)
        let layer = try asConfigError(r.kind) { try AveragePooling2D(poolSize: p, strides: s, padding: padding, name: r.name) }
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

/// `data_format` and `keepdims`, the config of both global pooling layers.
private func globalPoolingConfig(_ layer: Layer, _ keepdims: Bool, _ format: KerasFormat) -> JSONObject {
    var c = layer.commonConfig(format)
    c["data_format"] = .string("channels_last")
    c["keepdims"] = .bool(keepdims)
    return c
}

extension GlobalAveragePooling1D: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject { globalPoolingConfig(self, keepdims, format) }

    public static func fromKerasConfig(_ config: JSONObject) throws -> GlobalAveragePooling1D {
        let r = try LayerConfigReader(config, "GlobalAveragePooling1D", allowed: ["data_format", "keepdims"])
        try r.requireChannelsLast()
        let layer = GlobalAveragePooling1D(keepdims: try r.bool("keepdims", false), name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension GlobalAveragePooling2D: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject { globalPoolingConfig(self, keepdims, format) }

    public static func fromKerasConfig(_ config: JSONObject) throws -> GlobalAveragePooling2D {
        let r = try LayerConfigReader(config, "GlobalAveragePooling2D", allowed: ["data_format", "keepdims"])
        try r.requireChannelsLast()
        let layer = GlobalAveragePooling2D(keepdims: try r.bool("keepdims", false), name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}
