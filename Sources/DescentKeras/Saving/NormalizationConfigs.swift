@_spi(DescentInternals) import DescentOptimizers
import DescentTensor

// Keras configs of BatchNormalization and LayerNormalization, in tf_keras 2.21's and Keras 3.15's key
// order (Tests/Fixtures/layers, scripts/golden/generate_norm_layers.py). tf_keras rewrites `axis` to
// the list of non-negative axes when the layer is built (`[1]` for `-1` on [batch, features]); Keras 3
// keeps BatchNormalization's integer and makes LayerNormalization's a list of the given axis.

extension LayerConfigReader {
    /// An axis written as an integer or a list of one integer (Keras' built form).
    func axis(_ key: String, _ fallback: Int) throws -> Int {
        guard let v = config[key], !v.isNull else { return fallback }
        if let list = v.arrayValue {
            guard list.count == 1, let i = list[0].intValue, list[0].doubleValue == Double(i) else {
                throw KerasError.invalidConfig(kind: kind, message: "\(key) must be an integer or a list of one integer (Descent normalizes over one axis), got \(v.serialized)")
            }
            return i
        }
        guard let i = v.intValue, v.doubleValue == Double(i) else {
            throw KerasError.invalidConfig(kind: kind, message: "\(key) must be an integer, got \(v.serialized)")
        }
        return i
    }

    /// A boolean that must be `false` (or absent) in Descent.
    func requireFalse(_ key: String) throws {
        if try bool(key, false) { throw KerasError.invalidConfig(kind: kind, message: "\(key)=true is not supported by Descent") }
    }
}

extension BatchNormalization: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        var c = commonConfig(format)
        switch format {
        case .tfKeras: c["axis"] = builtAxis.map { .array([.int($0)]) } ?? .int(axis)
        case .keras3: c["axis"] = .int(axis)
        }
        c["momentum"] = .double(momentum)
        c["epsilon"] = .double(epsilon)
        c["center"] = .bool(center)
        c["scale"] = .bool(scale)
        c["beta_initializer"] = KerasConfigParts.initializer(betaInitializer, format)
        c["gamma_initializer"] = KerasConfigParts.initializer(gammaInitializer, format)
        c["moving_mean_initializer"] = KerasConfigParts.initializer(movingMeanInitializer, format)
        c["moving_variance_initializer"] = KerasConfigParts.initializer(movingVarianceInitializer, format)
        c["beta_regularizer"] = KerasConfigParts.regularizer(betaRegularizer, format)
        c["gamma_regularizer"] = KerasConfigParts.regularizer(gammaRegularizer, format)
        c["beta_constraint"] = try KerasConfigParts.constraint(betaConstraint, field: "BatchNormalization '\(name)'.betaConstraint")
        c["gamma_constraint"] = try KerasConfigParts.constraint(gammaConstraint, field: "BatchNormalization '\(name)'.gammaConstraint")
        if format == .keras3 {
            c["synchronized"] = .bool(false)
            c["renorm"] = .bool(false)
            c["renorm_clipping"] = .null
            c["renorm_momentum"] = .double(0.99)
        }
        return c
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> BatchNormalization {
        let r = try LayerConfigReader(config, "BatchNormalization", allowed: [
            "axis", "momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer", "moving_mean_initializer",
            "moving_variance_initializer", "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint",
            "synchronized", "renorm", "renorm_clipping", "renorm_momentum", "virtual_batch_size", "fused"])
        try r.requireFalse("synchronized")
        try r.requireFalse("renorm")
        try r.requireNull("renorm_clipping")
        try r.requireNull("virtual_batch_size")
        // `fused` (tf_keras' V1 layer) only chooses a kernel when it is null or true.
        try r.requireNull("fused", orEqual: .bool(true))
        if let v = config["renorm_momentum"], !v.isNull, v.doubleValue == nil {
            throw KerasError.invalidConfig(kind: r.kind, message: "renorm_momentum must be a number, got \(v.typeName)")
        }
        let layer = try BatchNormalization(
            axis: try r.axis("axis", -1), momentum: try r.number("momentum", 0.99), epsilon: try r.number("epsilon", 0.001),
            center: try r.bool("center", true), scale: try r.bool("scale", true),
            betaInitializer: try KerasConfigParts.readInitializer(config["beta_initializer"], field: r.field("beta_initializer")) ?? .zeros,
            gammaInitializer: try KerasConfigParts.readInitializer(config["gamma_initializer"], field: r.field("gamma_initializer")) ?? .ones,
            movingMeanInitializer: try KerasConfigParts.readInitializer(config["moving_mean_initializer"], field: r.field("moving_mean_initializer")) ?? .zeros,
            movingVarianceInitializer: try KerasConfigParts.readInitializer(config["moving_variance_initializer"],
                                                                            field: r.field("moving_variance_initializer")) ?? .ones,
            betaRegularizer: try KerasConfigParts.readRegularizer(config["beta_regularizer"], field: r.field("beta_regularizer")),
            gammaRegularizer: try KerasConfigParts.readRegularizer(config["gamma_regularizer"], field: r.field("gamma_regularizer")),
            betaConstraint: try KerasConfigParts.readConstraint(config["beta_constraint"], field: r.field("beta_constraint")),
            gammaConstraint: try KerasConfigParts.readConstraint(config["gamma_constraint"], field: r.field("gamma_constraint")),
            name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension LayerNormalization: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        var c = commonConfig(format)
        switch format {
        case .tfKeras: c["axis"] = builtAxis.map { .array([.int($0)]) } ?? .int(axis)
        case .keras3: c["axis"] = isBuilt ? .array([.int(axis)]) : .int(axis)
        }
        c["epsilon"] = .double(epsilon)
        c["center"] = .bool(center)
        c["scale"] = .bool(scale)
        if format == .keras3 { c["rms_scaling"] = .bool(false) }
        c["beta_initializer"] = KerasConfigParts.initializer(betaInitializer, format)
        c["gamma_initializer"] = KerasConfigParts.initializer(gammaInitializer, format)
        c["beta_regularizer"] = KerasConfigParts.regularizer(betaRegularizer, format)
        c["gamma_regularizer"] = KerasConfigParts.regularizer(gammaRegularizer, format)
        c["beta_constraint"] = try KerasConfigParts.constraint(betaConstraint, field: "LayerNormalization '\(name)'.betaConstraint")
        c["gamma_constraint"] = try KerasConfigParts.constraint(gammaConstraint, field: "LayerNormalization '\(name)'.gammaConstraint")
        return c
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> LayerNormalization {
        let r = try LayerConfigReader(config, "LayerNormalization", allowed: [
            "axis", "epsilon", "center", "scale", "rms_scaling", "beta_initializer", "gamma_initializer", "beta_regularizer",
            "gamma_regularizer", "beta_constraint", "gamma_constraint"])
        try r.requireFalse("rms_scaling")
        let layer = try LayerNormalization(
            axis: try r.axis("axis", -1), epsilon: try r.number("epsilon", 0.001), center: try r.bool("center", true),
            scale: try r.bool("scale", true),
            betaInitializer: try KerasConfigParts.readInitializer(config["beta_initializer"], field: r.field("beta_initializer")) ?? .zeros,
            gammaInitializer: try KerasConfigParts.readInitializer(config["gamma_initializer"], field: r.field("gamma_initializer")) ?? .ones,
            betaRegularizer: try KerasConfigParts.readRegularizer(config["beta_regularizer"], field: r.field("beta_regularizer")),
            gammaRegularizer: try KerasConfigParts.readRegularizer(config["gamma_regularizer"], field: r.field("gamma_regularizer")),
            betaConstraint: try KerasConfigParts.readConstraint(config["beta_constraint"], field: r.field("beta_constraint")),
            gammaConstraint: try KerasConfigParts.readConstraint(config["gamma_constraint"], field: r.field("gamma_constraint")),
            name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}
