import DescentAutodiff
@_spi(DescentInternals) import DescentOptimizers

/// Which Keras a model file is for: the two differ in small ways in their configs (`dtype` is a string
/// in tf_keras and a `DTypePolicy` object in Keras 3; `InputLayer` has `batch_input_shape` in one and
/// `batch_shape` in the other; Keras 3 adds keys such as `quantization_config`).
public enum KerasFormat: Sendable, Equatable {
    /// tf_keras 2 (`tf.keras` before TF 2.16): HDF5 `.h5` files.
    case tfKeras
    /// Keras 3: `.keras` zip files and `.weights.h5`.
    case keras3
}

/// Building and reading the pieces of Keras configs that every layer shares.
enum KerasConfigParts {
    /// `{"module": module, "class_name": className, "config": config, "registered_name": null}`.
    static func wrapper(_ module: String, _ className: String, _ config: JSONObject) -> JSONValue {
        .object(["module": .string(module), "class_name": .string(className), "config": .object(config), "registered_name": .null])
    }

    /// A layer's `dtype` entry: `"float32"`, or Keras 3's policy object.
    static func dtype(_ format: KerasFormat) -> JSONValue {
        switch format {
        case .tfKeras: return .string("float32")
        case .keras3: return wrapper("keras", "DTypePolicy", ["name": .string("float32")])
        }
    }

    /// A float32 number as Keras writes it (`0.009999999776482582` for 0.01).
    static func float32(_ value: Double) -> JSONValue { .double(Double(Float(value))) }

    /// A seed entry.
    static func seed(_ seed: UInt64?) -> JSONValue { seed.map { $0 <= UInt64(Int.max) ? .int(Int($0)) : .null } ?? .null }

    /// The serialized initializer.
    static func initializer(_ initializer: Initializer, _ format: KerasFormat) -> JSONValue {
        let axes: JSONObject = format == .keras3 ? ["input_axes": .null, "output_axes": .null] : JSONObject()
        func seeded(_ name: String, _ seed: UInt64?) -> JSONValue {
            var c: JSONObject = ["seed": KerasConfigParts.seed(seed)]
            for (k, v) in axes { c[k] = v }
            return wrapper("keras.initializers", name, c)
        }
        func distribution(_ name: String, _ a: (String, Double), _ b: (String, Double), _ seed: UInt64?) -> JSONValue {
            let s = KerasConfigParts.seed(seed)
            switch format {
            case .tfKeras: return wrapper("keras.initializers", name, [a.0: .double(a.1), b.0: .double(b.1), "seed": s])
            case .keras3: return wrapper("keras.initializers", name, ["seed": s, a.0: .double(a.1), b.0: .double(b.1)])
            }
        }
        switch initializer {
        case .glorotUniform(let seed): return seeded("GlorotUniform", seed)
        case .glorotNormal(let seed): return seeded("GlorotNormal", seed)
        case .heNormal(let seed): return seeded("HeNormal", seed)
        case .heUniform(let seed): return seeded("HeUniform", seed)
        case let .randomNormal(mean, std, seed): return distribution("RandomNormal", ("mean", mean), ("stddev", std), seed)
        case let .randomUniform(lo, hi, seed): return distribution("RandomUniform", ("minval", lo), ("maxval", hi), seed)
        case let .truncatedNormal(mean, std, seed): return distribution("TruncatedNormal", ("mean", mean), ("stddev", std), seed)
        case .zeros: return wrapper("keras.initializers", "Zeros", JSONObject())
        case .ones: return wrapper("keras.initializers", "Ones", JSONObject())
        case .constant(let v): return wrapper("keras.initializers", "Constant", ["value": .double(v)])
        }
    }

    /// Reads a serialized initializer (an object, or a name such as `"glorot_uniform"`).
    static func readInitializer(_ value: JSONValue?, field: String) throws -> Initializer? {
        guard let value, !value.isNull else { return nil }
        if let name = value.stringValue {
            guard let i = Initializer(kerasName: name) else { throw unknown(field, "initializer", name) }
            return i
        }
        let (className, config) = try KerasConfig.readWrapper(value, kind: field)
        let kind = field
        func seed() throws -> UInt64? {
            guard let v = config["seed"], !v.isNull else { return nil }
            guard let i = v.intValue, i >= 0 else { throw KerasError.invalidConfig(kind: kind, message: "seed must be a non-negative integer or null, got \(v)") }
            return UInt64(i)
        }
        func number(_ key: String, _ fallback: Double) throws -> Double {
            guard let v = config[key], !v.isNull else { return fallback }
            guard let d = v.doubleValue, d.isFinite else { throw KerasError.invalidConfig(kind: kind, message: "\(key) must be a finite number, got \(v)") }
            return d
        }
        let seededKeys = ["seed", "input_axes", "output_axes"]
        let result: Initializer
        switch className {
        case "GlorotUniform", "glorot_uniform": try KerasConfig.rejectUnknownKeys(config, allowed: seededKeys, kind: kind); result = .glorotUniform(seed: try seed())
        case "GlorotNormal", "glorot_normal": try KerasConfig.rejectUnknownKeys(config, allowed: seededKeys, kind: kind); result = .glorotNormal(seed: try seed())
        case "HeNormal", "he_normal": try KerasConfig.rejectUnknownKeys(config, allowed: seededKeys, kind: kind); result = .heNormal(seed: try seed())
        case "HeUniform", "he_uniform": try KerasConfig.rejectUnknownKeys(config, allowed: seededKeys, kind: kind); result = .heUniform(seed: try seed())
        case "RandomNormal", "random_normal":
            try KerasConfig.rejectUnknownKeys(config, allowed: ["mean", "stddev", "seed"], kind: kind)
            result = .randomNormal(mean: try number("mean", 0), standardDeviation: try number("stddev", 0.05), seed: try seed())
        case "RandomUniform", "random_uniform":
            try KerasConfig.rejectUnknownKeys(config, allowed: ["minval", "maxval", "seed"], kind: kind)
            result = .randomUniform(min: try number("minval", -0.05), max: try number("maxval", 0.05), seed: try seed())
        case "TruncatedNormal", "truncated_normal":
            try KerasConfig.rejectUnknownKeys(config, allowed: ["mean", "stddev", "seed"], kind: kind)
            result = .truncatedNormal(mean: try number("mean", 0), standardDeviation: try number("stddev", 0.05), seed: try seed())
        case "Zeros", "zeros": try KerasConfig.rejectUnknownKeys(config, allowed: [], kind: kind); result = .zeros
        case "Ones", "ones": try KerasConfig.rejectUnknownKeys(config, allowed: [], kind: kind); result = .ones
        case "Constant", "constant": try KerasConfig.rejectUnknownKeys(config, allowed: ["value"], kind: kind); result = .constant(try number("value", 0))
        default: throw unknown(field, "initializer", className)
        }
        try result.validate(field: field)
        return result
    }

    /// The serialized regularizer, or `null`.
    static func regularizer(_ r: Regularizer?, _ format: KerasFormat) -> JSONValue {
        guard let r else { return .null }
        // Keras rounds L1's and L2's factor to float32; tf_keras also L1L2's, Keras 3 does not.
        if r.l1 == 0 && r.l2 != 0 { return wrapper("keras.regularizers", "L2", ["l2": float32(r.l2)]) }
        if r.l2 == 0 && r.l1 != 0 { return wrapper("keras.regularizers", "L1", ["l1": float32(r.l1)]) }
        if format == .tfKeras { return wrapper("keras.regularizers", "L1L2", ["l1": float32(r.l1), "l2": float32(r.l2)]) }
        return wrapper("keras.regularizers", "L1L2", ["l1": .double(r.l1), "l2": .double(r.l2)])
    }

    /// Reads a serialized regularizer or `null`.
    static func readRegularizer(_ value: JSONValue?, field: String) throws -> Regularizer? {
        guard let value, !value.isNull else { return nil }
        let (className, config) = try KerasConfig.readWrapper(value, kind: field)
        let result: Regularizer
        switch className {
        case "L1", "l1":
            try KerasConfig.rejectUnknownKeys(config, allowed: ["l1"], kind: field)
            result = Regularizer(l1: try KerasConfig.float32(config, "l1", kind: field) ?? 0.01)
        case "L2", "l2":
            try KerasConfig.rejectUnknownKeys(config, allowed: ["l2"], kind: field)
            result = Regularizer(l2: try KerasConfig.float32(config, "l2", kind: field) ?? 0.01)
        case "L1L2", "l1_l2":
            try KerasConfig.rejectUnknownKeys(config, allowed: ["l1", "l2"], kind: field)
            result = Regularizer(l1: try KerasConfig.float32(config, "l1", kind: field) ?? 0, l2: try KerasConfig.float32(config, "l2", kind: field) ?? 0)
        default: throw unknown(field, "regularizer", className)
        }
        try result.validate(field: field)
        return result
    }

    /// The serialized constraint, or `null`.
    static func constraint(_ c: (any VariableConstraint)?, field: String) throws -> JSONValue {
        guard let c else { return .null }
        guard let k = c as? any KerasConstraint else {
            throw KerasError.invalidArgument(field: field, message: "a closure constraint has no Keras config and cannot be saved; use a Keras constraint (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)")
        }
        return .object(k.serialize())
    }

    /// Reads a serialized constraint or `null`.
    static func readConstraint(_ value: JSONValue?, field: String) throws -> (any VariableConstraint)? {
        guard let value, !value.isNull else { return nil }
        do { return try Constraints.deserialize(value) } catch { throw KerasError.invalidConfig(kind: field, message: "\(error)") }
    }

    static func unknown(_ field: String, _ what: String, _ name: String) -> KerasError {
        KerasError.invalidConfig(kind: field, message: "unknown \(what) '\(name)'")
    }
}
