@_spi(DescentInternals) import DescentOptimizers
import DescentTensor

// The built-in loss classes. Each one is Keras' `LossFunctionWrapper` around a function of `Losses`:
// `call` squeezes a trailing axis of size 1 (Keras' `squeeze_or_expand_dimensions`) and calls the
// function; `callAsFunction` (from `Loss`) weights and reduces.

/// Mean squared error (`tf.keras.losses.MeanSquaredError`): per sample `mean((yPred - yTrue)², axis: -1)`,
/// then weighted and reduced (default: `Σ w · loss / size`).
///
/// Note Keras' shape rule: `yTrue [batch]` against `yPred [batch, 1]` squeezes `yPred` to `[batch]`, so
/// the mean over the last axis makes the per-sample loss a scalar (the batch mean).
public final class MeanSquaredError: Loss {
    /// The name (default `"mean_squared_error"`).
    public let name: String
    /// The reduction (default ``LossReduction/sumOverBatchSize``).
    public let reduction: LossReduction

    /// Creates the loss.
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "mean_squared_error") {
        self.reduction = reduction
        self.name = name
    }

    /// Reads Keras' config (`reduction`, `name`, and `fn`, which must be `"mean_squared_error"`).
    /// - Throws: ``KerasError/invalidConfig(kind:message:)`` for an unknown key or invalid value.
    public convenience init(config: JSONObject) throws {
        let c = try LossConfigReader(config, Self.kerasClassName, allowed: [], fn: "mean_squared_error")
        self.init(reduction: c.reduction, name: c.name ?? "mean_squared_error")
    }

    /// `"MeanSquaredError"`.
    public static var kerasClassName: String { "MeanSquaredError" }

    /// `{"reduction", "name", "fn": "mean_squared_error"}`, Keras' key order.
    public var config: JSONObject {
        ["reduction": .string(reduction.rawValue), "name": .string(name), "fn": "mean_squared_error"]
    }

    /// `Losses.meanSquaredError` after squeezing a trailing axis of size 1.
    public func call(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        let (p, t) = try squeezeOrExpand(yPred: yPred, yTrue: yTrue)
        return try Losses.meanSquaredError(t, p)
    }
}

/// Mean absolute error (`tf.keras.losses.MeanAbsoluteError`): per sample `mean(|yPred - yTrue|, axis: -1)`,
/// then weighted and reduced (default: `Σ w · loss / size`).
public final class MeanAbsoluteError: Loss {
    /// The name (default `"mean_absolute_error"`).
    public let name: String
    /// The reduction (default ``LossReduction/sumOverBatchSize``).
    public let reduction: LossReduction

    /// Creates the loss.
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "mean_absolute_error") {
        self.reduction = reduction
        self.name = name
    }

    /// Reads Keras' config (`reduction`, `name`, and `fn`, which must be `"mean_absolute_error"`).
    /// - Throws: ``KerasError/invalidConfig(kind:message:)`` for an unknown key or invalid value.
    public convenience init(config: JSONObject) throws {
        let c = try LossConfigReader(config, Self.kerasClassName, allowed: [], fn: "mean_absolute_error")
        self.init(reduction: c.reduction, name: c.name ?? "mean_absolute_error")
    }

    /// `"MeanAbsoluteError"`.
    public static var kerasClassName: String { "MeanAbsoluteError" }

    /// `{"reduction", "name", "fn": "mean_absolute_error"}`, Keras' key order.
    public var config: JSONObject {
        ["reduction": .string(reduction.rawValue), "name": .string(name), "fn": "mean_absolute_error"]
    }

    /// `Losses.meanAbsoluteError` after squeezing a trailing axis of size 1.
    public func call(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        let (p, t) = try squeezeOrExpand(yPred: yPred, yTrue: yTrue)
        return try Losses.meanAbsoluteError(t, p)
    }
}

/// Binary crossentropy (`tf.keras.losses.BinaryCrossentropy`).
///
/// Per sample, with `y = yTrue · (1 - s) + 0.5 · s` (`s = labelSmoothing`, skipped when 0):
/// - `fromLogits`: `mean(max(x, 0) - x · y + log1p(exp(-|x|)), axis: -1)`;
/// - otherwise, with `p = clip(yPred, ε, 1 - ε)` and `ε = 1e-7`:
///   `mean(-(y · log(p + ε) + (1 - y) · log((1 - p) + ε)), axis: -1)`.
///
/// Then weighted and reduced (default: `Σ w · loss / size`). See
/// ``Losses/binaryCrossentropy(_:_:fromLogits:labelSmoothing:)``.
public final class BinaryCrossentropy: Loss {
    /// Whether `yPred` holds logits rather than probabilities.
    public let fromLogits: Bool
    /// The label smoothing `s` in `[0, 1]`: labels become `y · (1 - s) + 0.5 · s`.
    public let labelSmoothing: Double
    /// The name (default `"binary_crossentropy"`).
    public let name: String
    /// The reduction (default ``LossReduction/sumOverBatchSize``).
    public let reduction: LossReduction

    /// Creates the loss.
    public init(fromLogits: Bool = false, labelSmoothing: Double = 0, reduction: LossReduction = .sumOverBatchSize,
                name: String = "binary_crossentropy") {
        self.fromLogits = fromLogits
        self.labelSmoothing = labelSmoothing
        self.reduction = reduction
        self.name = name
    }

    /// Reads Keras' config (`reduction`, `name`, `from_logits`, `label_smoothing`, `axis` (only -1), `fn`).
    /// - Throws: ``KerasError/invalidConfig(kind:message:)`` for an unknown key or invalid value.
    public convenience init(config: JSONObject) throws {
        let c = try LossConfigReader(config, Self.kerasClassName, allowed: ["from_logits", "label_smoothing", "axis"],
                                     fn: "binary_crossentropy")
        try c.requireLastAxis()
        self.init(fromLogits: try c.bool("from_logits") ?? false, labelSmoothing: try c.number("label_smoothing") ?? 0,
                  reduction: c.reduction, name: c.name ?? "binary_crossentropy")
    }

    /// `"BinaryCrossentropy"`.
    public static var kerasClassName: String { "BinaryCrossentropy" }

    /// `{"reduction", "name", "from_logits", "label_smoothing", "axis": -1, "fn": "binary_crossentropy"}`.
    public var config: JSONObject {
        ["reduction": .string(reduction.rawValue), "name": .string(name), "from_logits": .bool(fromLogits),
         "label_smoothing": .double(labelSmoothing), "axis": -1, "fn": "binary_crossentropy"]
    }

    /// `Losses.binaryCrossentropy` after squeezing a trailing axis of size 1.
    public func call(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        let (p, t) = try squeezeOrExpand(yPred: yPred, yTrue: yTrue)
        return try Losses.binaryCrossentropy(t, p, fromLogits: fromLogits, labelSmoothing: labelSmoothing)
    }
}

/// Categorical crossentropy (`tf.keras.losses.CategoricalCrossentropy`) for one-hot (or soft) labels.
///
/// Per sample, with `y = yTrue · (1 - s) + s / C` (`s = labelSmoothing`, skipped when 0; `C` classes):
/// - `fromLogits`: TensorFlow's fused `softmax_cross_entropy_with_logits`,
///   `Σ_c y_c · (log Σ_k exp(x_k - m) - (x_c - m))`, gradient `softmax(x) - y`;
/// - otherwise: `-Σ_c y_c · log(clip(x_c / Σ_k x_k, ε, 1 - ε))`.
///
/// Then weighted and reduced (default: `Σ w · loss / size`). `yTrue` and `yPred` must have the same
/// shape. See ``Losses/categoricalCrossentropy(_:_:fromLogits:labelSmoothing:)``.
public final class CategoricalCrossentropy: Loss {
    /// Whether `yPred` holds logits rather than probabilities.
    public let fromLogits: Bool
    /// The label smoothing `s` in `[0, 1]`: labels become `y · (1 - s) + s / C`.
    public let labelSmoothing: Double
    /// The name (default `"categorical_crossentropy"`).
    public let name: String
    /// The reduction (default ``LossReduction/sumOverBatchSize``).
    public let reduction: LossReduction

    /// Creates the loss.
    public init(fromLogits: Bool = false, labelSmoothing: Double = 0, reduction: LossReduction = .sumOverBatchSize,
                name: String = "categorical_crossentropy") {
        self.fromLogits = fromLogits
        self.labelSmoothing = labelSmoothing
        self.reduction = reduction
        self.name = name
    }

    /// Reads Keras' config (`reduction`, `name`, `from_logits`, `label_smoothing`, `axis` (only -1), `fn`).
    /// - Throws: ``KerasError/invalidConfig(kind:message:)`` for an unknown key or invalid value.
    public convenience init(config: JSONObject) throws {
        let c = try LossConfigReader(config, Self.kerasClassName, allowed: ["from_logits", "label_smoothing", "axis"],
                                     fn: "categorical_crossentropy")
        try c.requireLastAxis()
        self.init(fromLogits: try c.bool("from_logits") ?? false, labelSmoothing: try c.number("label_smoothing") ?? 0,
                  reduction: c.reduction, name: c.name ?? "categorical_crossentropy")
    }

    /// `"CategoricalCrossentropy"`.
    public static var kerasClassName: String { "CategoricalCrossentropy" }

    /// `{"reduction", "name", "from_logits", "label_smoothing", "axis": -1, "fn": "categorical_crossentropy"}`.
    public var config: JSONObject {
        ["reduction": .string(reduction.rawValue), "name": .string(name), "from_logits": .bool(fromLogits),
         "label_smoothing": .double(labelSmoothing), "axis": -1, "fn": "categorical_crossentropy"]
    }

    /// `Losses.categoricalCrossentropy` after squeezing a trailing axis of size 1.
    public func call(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        let (p, t) = try squeezeOrExpand(yPred: yPred, yTrue: yTrue)
        return try Losses.categoricalCrossentropy(t, p, fromLogits: fromLogits, labelSmoothing: labelSmoothing)
    }
}

/// Sparse categorical crossentropy (`tf.keras.losses.SparseCategoricalCrossentropy`) for integer labels.
///
/// Labels (`int64` or integral floats, shape `[batch]` or `[batch, 1]`, or `[batch, d0, ...]` against
/// `[batch, d0, ..., C]` predictions) are cast to `int64`. With logits `x = yPred` (`fromLogits`) or
/// `x = log(clip(yPred, ε, 1 - ε))`, the per-sample loss is `log Σ_k exp(x_k - m) - (x_label - m)`
/// (`m = max x`; gradient `softmax(x) - onehot(label)`), then weighted and reduced (default:
/// `Σ w · loss / size`). See ``Losses/sparseCategoricalCrossentropy(_:_:fromLogits:)``.
public final class SparseCategoricalCrossentropy: Loss {
    /// Whether `yPred` holds logits rather than probabilities.
    public let fromLogits: Bool
    /// The name (default `"sparse_categorical_crossentropy"`).
    public let name: String
    /// The reduction (default ``LossReduction/sumOverBatchSize``).
    public let reduction: LossReduction

    /// Creates the loss.
    public init(fromLogits: Bool = false, reduction: LossReduction = .sumOverBatchSize,
                name: String = "sparse_categorical_crossentropy") {
        self.fromLogits = fromLogits
        self.reduction = reduction
        self.name = name
    }

    /// Reads Keras' config (`reduction`, `name`, `from_logits`, `ignore_class` (only `null`), `fn`).
    /// - Throws: ``KerasError/invalidConfig(kind:message:)`` for an unknown key or invalid value.
    public convenience init(config: JSONObject) throws {
        let c = try LossConfigReader(config, Self.kerasClassName, allowed: ["from_logits", "ignore_class"],
                                     fn: "sparse_categorical_crossentropy")
        if let ignore = config["ignore_class"], !ignore.isNull {
            throw KerasError.invalidConfig(kind: Self.kerasClassName,
                                           message: "ignore_class \(ignore) is not supported (only null)")
        }
        self.init(fromLogits: try c.bool("from_logits") ?? false, reduction: c.reduction,
                  name: c.name ?? "sparse_categorical_crossentropy")
    }

    /// `"SparseCategoricalCrossentropy"`.
    public static var kerasClassName: String { "SparseCategoricalCrossentropy" }

    /// `{"reduction", "name", "from_logits", "ignore_class": null, "fn": "sparse_categorical_crossentropy"}`.
    public var config: JSONObject {
        ["reduction": .string(reduction.rawValue), "name": .string(name), "from_logits": .bool(fromLogits),
         "ignore_class": .null, "fn": "sparse_categorical_crossentropy"]
    }

    /// `Losses.sparseCategoricalCrossentropy` after Keras' squeeze rule (which leaves `[batch]` labels
    /// against `[batch, C]` predictions alone).
    public func call(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        let (p, t) = try squeezeOrExpand(yPred: yPred, yTrue: yTrue)
        return try Losses.sparseCategoricalCrossentropy(t, p, fromLogits: fromLogits)
    }
}

// MARK: - Lookup and deserialization

extension Losses {
    /// Keras' function names and aliases, mapped to a loss object with the default options.
    static let functionNames: [(String, @Sendable () -> any Loss)] = [
        ("mean_squared_error", { MeanSquaredError() }), ("mse", { MeanSquaredError() }),
        ("MSE", { MeanSquaredError() }),
        ("mean_absolute_error", { MeanAbsoluteError() }), ("mae", { MeanAbsoluteError() }),
        ("MAE", { MeanAbsoluteError() }),
        ("binary_crossentropy", { BinaryCrossentropy() }), ("bce", { BinaryCrossentropy() }),
        ("BCE", { BinaryCrossentropy() }),
        ("categorical_crossentropy", { CategoricalCrossentropy() }),
        ("sparse_categorical_crossentropy", { SparseCategoricalCrossentropy() }),
    ]

    /// Keras' class names, mapped to a factory from a config.
    static let classNames: [(String, @Sendable (JSONObject) throws -> any Loss)] = [
        ("MeanSquaredError", { try MeanSquaredError(config: $0) }),
        ("MeanAbsoluteError", { try MeanAbsoluteError(config: $0) }),
        ("BinaryCrossentropy", { try BinaryCrossentropy(config: $0) }),
        ("CategoricalCrossentropy", { try CategoricalCrossentropy(config: $0) }),
        ("SparseCategoricalCrossentropy", { try SparseCategoricalCrossentropy(config: $0) }),
    ]

    /// Every name ``get(_:)`` accepts.
    public static var knownNames: [String] { functionNames.map(\.0) + classNames.map(\.0) }

    /// A loss by Keras name (`tf.keras.losses.get(identifier)`), with the default options.
    ///
    /// Function names and aliases (`"mean_squared_error"`, `"mse"`, `"MSE"`, `"mae"`, `"bce"`,
    /// `"binary_crossentropy"`, `"categorical_crossentropy"`, `"sparse_categorical_crossentropy"`, ...) give
    /// the loss `Model.compile(loss=...)` would use (Keras wraps the function with the function's name and
    /// reduction `auto`, which is the default object here); class names (`"MeanSquaredError"`,
    /// `"SparseCategoricalCrossentropy"`, ...) give the default instance.
    /// - Throws: ``KerasError/unknownIdentifier(kind:name:known:)`` for any other name.
    public static func get(_ identifier: String) throws -> any Loss {
        if let make = functionNames.first(where: { $0.0 == identifier })?.1 { return make() }
        if let make = classNames.first(where: { $0.0 == identifier })?.1 { return try make([:]) }
        throw KerasError.unknownIdentifier(kind: "loss function", name: identifier, known: knownNames)
    }

    /// A loss from Keras' serialized form (`tf.keras.losses.deserialize` / `get` with a dict):
    /// `{"class_name": "BinaryCrossentropy", "config": {...}}` (with or without `module` and
    /// `registered_name`), or a string, as ``get(_:)``.
    ///
    /// Read as strictly as an optimizer (the same wrapper rule, `Optimizer.readWrapper`): no other
    /// wrapper key, `config` present and an object, every config key one the class writes, each of its
    /// type (a present field of the wrong type is an error, never the default), numbers within float32.
    /// - Throws: ``KerasError`` for an unknown class or an invalid wrapper or config.
    public static func deserialize(_ value: JSONValue) throws -> any Loss {
        if let name = value.stringValue { return try get(name) }
        let (className, config) = try KerasConfig.readWrapper(value, kind: "loss")
        guard let make = classNames.first(where: { $0.0 == className })?.1 else {
            throw KerasError.unknownIdentifier(kind: "loss class", name: className, known: classNames.map(\.0))
        }
        return try make(config)
    }
}

/// Reads the common keys of a loss config and checks that no other key is present.
struct LossConfigReader {
    let config: JSONObject
    let kind: String
    let reduction: LossReduction
    let name: String?

    init(_ config: JSONObject, _ kind: String, allowed: [String], fn: String) throws {
        self.config = config
        self.kind = kind
        try KerasConfig.rejectUnknownKeys(config, allowed: ["reduction", "name", "fn"] + allowed, kind: kind)
        if let f = config["fn"], !f.isNull, f.stringValue != fn {
            throw KerasError.invalidConfig(kind: kind, message: "fn \(f) is not \"\(fn)\"")
        }
        switch config["reduction"] {
        case nil, .null?:
            reduction = .sumOverBatchSize
        case let .string(s)?:
            guard let r = LossReduction(kerasName: s) else {
                throw KerasError.invalidConfig(
                    kind: kind, message: "Invalid Reduction Key: \(s). Expected keys are auto, none, sum, sum_over_batch_size")
            }
            reduction = r
        case let other?:
            throw KerasError.invalidConfig(kind: kind, message: "reduction must be a string, got \(other.typeName)")
        }
        switch config["name"] {
        case nil, .null?: name = nil
        case let .string(s)?: name = s
        case let other?: throw KerasError.invalidConfig(kind: kind, message: "name must be a string, got \(other.typeName)")
        }
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = config[key], !v.isNull else { return nil }
        guard let b = v.boolValue else {
            throw KerasError.invalidConfig(kind: kind, message: "\(key) must be a boolean, got \(v.typeName)")
        }
        return b
    }

    /// A float32 number field: finite and within float32's range, as optimizer hyperparameters.
    func number(_ key: String) throws -> Double? { try KerasConfig.float32(config, key, kind: kind) }

    /// `axis`, when present and not null, must be the integer -1.
    func requireLastAxis() throws {
        if let axis = config["axis"], !axis.isNull, axis != .int(-1) {
            throw KerasError.invalidConfig(kind: kind, message: "axis \(axis) is not supported (only -1)")
        }
    }
}
