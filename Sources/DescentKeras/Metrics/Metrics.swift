@_spi(DescentInternals) import DescentOptimizers
import DescentTensor

/// A stateful Keras metric (`tf.keras.metrics.Metric`): it accumulates statistics over batches and reports
/// ``result()`` until ``reset()``.
///
/// Metrics are reference types with mutable state; use one metric from one task at a time. Their
/// updates are not recorded on gradient tapes.
public protocol Metric: AnyObject {
    /// The metric's name (Keras' `name`, e.g. `"sparse_categorical_accuracy"`).
    var name: String { get }
    /// The dtype of the state and the result (Keras' default `float32`).
    var dtype: DType { get }
    /// The current value (Keras' `result()`): a scalar of ``dtype`` (for a ``Precision`` or ``Recall``
    /// with several thresholds, one value per threshold).
    func result() -> Tensor
    /// Clears the accumulated state (Keras' `reset_state()`).
    func reset()
    /// The constructor arguments as Keras' `get_config()` writes them.
    var config: JSONObject { get }
    /// The class name used in serialized configs.
    static var kerasClassName: String { get }
}

extension Metric {
    /// Keras' serialization (`tf.keras.metrics.serialize`):
    /// `{"module": "keras.metrics", "class_name": ..., "config": {...}, "registered_name": null}`.
    public func serialize() -> JSONObject {
        ["module": "keras.metrics", "class_name": .string(type(of: self).kerasClassName), "config": .object(config),
         "registered_name": .null]
    }
}

/// The (weighted) mean of the values seen (`tf.keras.metrics.Mean`).
///
/// State: `total` and `count`, scalars of ``dtype``. An update with values `v` and weights `w` (default 1):
/// 1. `v` and `w` are cast to ``dtype``; `w` is aligned with `v` (a scalar stays; one extra trailing axis of
///    size 1 is squeezed; one missing trailing axis is added), then broadcast to `v`'s shape; if it cannot be
///    (its rank is still lower), `v` is instead averaged over its trailing axes down to `w`'s rank;
/// 2. `total += Σ v · w`, `count += Σ w` (without weights: `count += size(v)`).
///
/// ``result()`` is `total / count`, or 0 while `count` is 0 (`divide_no_nan`). The arithmetic is done in
/// ``dtype`` (float32 by default), as Keras' variables are.
open class Mean: Metric {
    /// The metric's name (default `"mean"`).
    public let name: String
    /// The dtype of the state and result.
    public let dtype: DType
    /// The running weighted sum.
    public private(set) var total: Tensor
    /// The running sum of the weights.
    public private(set) var count: Tensor

    /// Creates the metric with zero state.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` when `dtype` is not floating point.
    public init(name: String = "mean", dtype: DType = .float32) throws {
        guard dtype.isFloatingPoint else {
            throw KerasError.invalidArgument(field: "dtype", message: "a metric's dtype must be float32 or float64, got \(dtype)")
        }
        self.name = name
        self.dtype = dtype
        total = scalarTensor(0, dtype)
        count = scalarTensor(0, dtype)
    }

    /// `"Mean"`.
    open class var kerasClassName: String { "Mean" }

    /// `{"name", "dtype"}`.
    open var config: JSONObject { ["name": .string(name), "dtype": .string(dtype.rawValue)] }

    /// Adds `values` (weighted by `sampleWeight`) to the state; see ``Mean``.
    /// - Throws: `TensorError` naming the values' and the weight's shapes when they cannot be combined.
    public func update(_ values: Tensor, sampleWeight: Tensor? = nil) throws {
        var v = values.untracked.cast(to: dtype)
        var added: Tensor
        if let sampleWeight {
            var w = try alignWeights(sampleWeight.untracked.cast(to: dtype), to: v, operation: "\(name) sample_weight")
            if canBroadcastWeights(w.shape, to: v.shape) {
                w = try w.broadcast(to: v.shape)
            } else if w.rank < v.rank {
                v = try v.mean(axes: Array(w.rank..<v.rank))
            }
            guard broadcastable(v.shape, w.shape) else {
                throw TensorError.incompatibleShapes(
                    operation: "\(name) sample_weight", lhs: values.shape, rhs: sampleWeight.shape,
                    reason: "the sample weight (second) does not broadcast to the values (first)")
            }
            v = try v * w
            added = try w.sum()
        } else {
            added = scalarTensor(Double(v.scalarCount), dtype)
        }
        let sum = try v.sum()
        total = try total + sum
        count = try count + added
    }

    /// `total / count`, or 0 when `count` is 0.
    public func result() -> Tensor {
        // Cannot fail: two scalars of one dtype.
        if (try? count.item()) == 0 { return scalarTensor(0, dtype) }
        return try! total / count
    }

    /// Sets `total` and `count` (a saved state, as ``BackupAndRestore`` restores it mid-epoch).
    public func restoreState(total: Double, count: Double) {
        self.total = scalarTensor(total, dtype)
        self.count = scalarTensor(count, dtype)
    }

    /// Sets `total` and `count` to 0.
    public func reset() {
        total = scalarTensor(0, dtype)
        count = scalarTensor(0, dtype)
    }

    /// TensorFlow's `assert_broadcastable`: weights of rank 0, or of the values' rank with every dimension
    /// 1 or equal to the values' one.
    private func canBroadcastWeights(_ w: [Int], to v: [Int]) -> Bool {
        if w.isEmpty { return true }
        guard w.count == v.count else { return false }
        return zip(w, v).allSatisfy { $0 == 1 || $0 == $1 }
    }
}

/// A mean of per-sample values computed by a function of `(yTrue, yPred)` (`tf.keras.metrics.MeanMetricWrapper`).
///
/// An update casts `yTrue` and `yPred` to ``Mean/dtype``, squeezes a trailing axis of size 1 from the one
/// with a dimension more (Keras' `squeeze_or_expand_dimensions`), computes `matches = function(yTrue, yPred)`
/// and adds them as ``Mean/update(_:sampleWeight:)`` does.
open class MeanMetricWrapper: Mean {
    /// The per-sample function `(yTrue, yPred) -> values`.
    public let function: @Sendable (Tensor, Tensor) throws -> Tensor
    /// The Keras name of `function` when it is one of Keras' metric functions
    /// (`"sparse_categorical_accuracy"`), which model files record as `fn`; `nil` for a closure.
    public internal(set) var kerasFunctionName: String?

    /// Wraps `function` under `name`.
    public init(name: String, dtype: DType = .float32,
                _ function: @escaping @Sendable (Tensor, Tensor) throws -> Tensor) throws {
        self.function = function
        try super.init(name: name, dtype: dtype)
    }

    /// `"MeanMetricWrapper"`.
    open override class var kerasClassName: String { "MeanMetricWrapper" }

    /// Accumulates `function(yTrue, yPred)`, weighted by `sampleWeight`.
    /// - Throws: `TensorError` naming the shapes when `yTrue`, `yPred` and the weight do not fit together.
    public func update(yTrue: Tensor, yPred: Tensor, sampleWeight: Tensor? = nil) throws {
        let (p, t) = try squeezeOrExpand(yPred: yPred.untracked.cast(to: dtype), yTrue: yTrue.untracked.cast(to: dtype))
        try update(function(t, p), sampleWeight: sampleWeight)
    }
}

/// How often predictions equal labels exactly (`tf.keras.metrics.Accuracy`): the mean of
/// ``Metrics/accuracy(_:_:)``, `yTrue == yPred` as 1/0, after both are cast to ``Mean/dtype``.
public final class Accuracy: MeanMetricWrapper {
    /// Creates the metric (name `"accuracy"` by default).
    public init(name: String = "accuracy", dtype: DType = .float32) throws {
        try super.init(name: name, dtype: dtype) { try Metrics.accuracy($0, $1) }
    }

    /// `"Accuracy"`.
    public override class var kerasClassName: String { "Accuracy" }
}

/// How often thresholded predictions match binary labels (`tf.keras.metrics.BinaryAccuracy`): the mean of
/// ``Metrics/binaryMatches(_:_:threshold:)``, `yTrue == (yPred > threshold ? 1 : 0)` per element.
public final class BinaryAccuracy: MeanMetricWrapper {
    /// The decision threshold: a prediction counts as 1 when strictly greater.
    public let threshold: Double

    /// Creates the metric (name `"binary_accuracy"`, threshold 0.5 by default).
    public init(name: String = "binary_accuracy", dtype: DType = .float32, threshold: Double = 0.5) throws {
        self.threshold = threshold
        try super.init(name: name, dtype: dtype) { try Metrics.binaryMatches($0, $1, threshold: threshold) }
    }

    /// `"BinaryAccuracy"`.
    public override class var kerasClassName: String { "BinaryAccuracy" }

    /// `{"name", "dtype", "threshold"}`.
    public override var config: JSONObject {
        var c = super.config
        c["threshold"] = .double(threshold)
        return c
    }
}

/// How often the arg-max of the predictions matches the arg-max of one-hot labels
/// (`tf.keras.metrics.CategoricalAccuracy`): the mean of ``Metrics/categoricalAccuracy(_:_:)``. Ties take the
/// first index.
public final class CategoricalAccuracy: MeanMetricWrapper {
    /// Creates the metric (name `"categorical_accuracy"` by default).
    public init(name: String = "categorical_accuracy", dtype: DType = .float32) throws {
        try super.init(name: name, dtype: dtype) { try Metrics.categoricalAccuracy($0, $1) }
    }

    /// `"CategoricalAccuracy"`.
    public override class var kerasClassName: String { "CategoricalAccuracy" }
}

/// How often the arg-max of the predictions equals an integer label
/// (`tf.keras.metrics.SparseCategoricalAccuracy`): the mean of ``Metrics/sparseCategoricalMatches(_:_:)``.
/// Labels may be `[batch]` or `[batch, 1]`, `int64` or float.
public final class SparseCategoricalAccuracy: MeanMetricWrapper {
    /// Creates the metric (name `"sparse_categorical_accuracy"` by default).
    public init(name: String = "sparse_categorical_accuracy", dtype: DType = .float32) throws {
        try super.init(name: name, dtype: dtype) { try Metrics.sparseCategoricalMatches($0, $1) }
    }

    /// `"SparseCategoricalAccuracy"`.
    public override class var kerasClassName: String { "SparseCategoricalAccuracy" }
}

/// Keras' metric functions (`tf.keras.metrics.accuracy`, ...) and metric lookup (`tf.keras.metrics.get`).
///
/// The functions return per-sample `float32` values of 1 (match) or 0.
public enum Metrics {
    /// `yTrue == yPred` as 1/0 `float32` (`tf.keras.metrics.accuracy`); `yPred` is cast to `yTrue`'s dtype.
    /// - Throws: `TensorError` naming both shapes unless they are equal.
    public static func accuracy(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        try requireSameShape(yTrue, yPred, "accuracy")
        return try yTrue.equal(yPred.cast(to: yTrue.dtype)).cast(to: .float32)
    }

    /// `yTrue == (yPred > threshold ? 1 : 0)` as 1/0 `float32`, element-wise with broadcasting (Keras'
    /// `metrics_utils.binary_matches`; the threshold is rounded to `yPred`'s dtype).
    /// - Throws: `TensorError` naming both shapes when they do not broadcast.
    public static func binaryMatches(_ yTrue: Tensor, _ yPred: Tensor, threshold: Double = 0.5) throws -> Tensor {
        try requireBroadcastable(yTrue, yPred, "binary_matches")
        let predicted = try yPred.greater(scalarTensor(threshold, yPred.dtype))
        return try yTrue.cast(to: yPred.dtype).equal(predicted).cast(to: .float32)
    }

    /// `mean(binaryMatches(yTrue, yPred, threshold), axis: -1)` (`tf.keras.metrics.binary_accuracy`).
    public static func binaryAccuracy(_ yTrue: Tensor, _ yPred: Tensor, threshold: Double = 0.5) throws -> Tensor {
        try binaryMatches(yTrue, yPred, threshold: threshold).mean(axes: [-1])
    }

    /// `argmax(yTrue, -1) == argmax(yPred, -1)` as 1/0 `float32` (`tf.keras.metrics.categorical_accuracy`).
    public static func categoricalAccuracy(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        try sparseCategoricalMatches(yTrue.argmax(axis: -1), yPred)
    }

    /// `yTrue == argmax(yPred, -1)` as 1/0 `float32` (Keras' `metrics_utils.sparse_categorical_matches`).
    ///
    /// When `yTrue` has `yPred`'s rank its last axis (which must be 1) is squeezed first, and the matches
    /// are reshaped back to `yTrue`'s shape. The arg-max (first index on ties) is cast to `yTrue`'s dtype.
    /// - Throws: `TensorError` naming both shapes when they do not fit.
    public static func sparseCategoricalMatches(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        var labels = yTrue
        let reshape = yTrue.rank == yPred.rank
        if reshape {
            guard yTrue.shape.last == 1 else {
                throw TensorError.incompatibleShapes(
                    operation: "sparse_categorical_matches", lhs: yTrue.shape, rhs: yPred.shape,
                    reason: "labels (first) of the predictions' rank (second) must end in an axis of size 1")
            }
            labels = try yTrue.squeezing(axes: [-1])
        }
        let predicted = try yPred.argmax(axis: -1).cast(to: labels.dtype)
        guard broadcastable(labels.shape, predicted.shape) else {
            throw TensorError.incompatibleShapes(
                operation: "sparse_categorical_matches", lhs: yTrue.shape, rhs: yPred.shape,
                reason: "labels (first) must match the predictions (second) without their class axis")
        }
        let matches = try labels.equal(predicted).cast(to: .float32)
        return reshape ? try matches.reshaped(to: yTrue.shape) : matches
    }

    /// `sparseCategoricalMatches`, with a trailing axis of size 1 squeezed from the result
    /// (`tf.keras.metrics.sparse_categorical_accuracy`).
    public static func sparseCategoricalAccuracy(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        let matches = try sparseCategoricalMatches(yTrue, yPred)
        return matches.rank > 1 && matches.shape.last == 1 ? try matches.squeezing(axes: [-1]) : matches
    }

    // MARK: Lookup

    private static let functions: [(String, @Sendable (Tensor, Tensor) throws -> Tensor)] = [
        ("accuracy", { try accuracy($0, $1) }), ("acc", { try accuracy($0, $1) }), ("ACC", { try accuracy($0, $1) }),
        ("binary_accuracy", { try binaryAccuracy($0, $1) }),
        ("categorical_accuracy", { try categoricalAccuracy($0, $1) }),
        ("sparse_categorical_accuracy", { try sparseCategoricalAccuracy($0, $1) }),
        ("top_k_categorical_accuracy", { try topKCategoricalAccuracy($0, $1) }),
        ("sparse_top_k_categorical_accuracy", { try sparseTopKCategoricalAccuracy($0, $1) }),
    ]

    /// The classes by Keras name; each factory accepts exactly the keys its `config` writes
    /// (`name`, `dtype`, and `threshold` for `BinaryAccuracy`; see the confusion metrics' factories).
    private static let classes: [(String, @Sendable (JSONObject) throws -> any TrainingMetric)] = [
        ("Accuracy", { c in
            try KerasConfig.rejectUnknownKeys(c, allowed: ["name", "dtype"], kind: "Accuracy")
            return try Accuracy(name: try name(c) ?? "accuracy", dtype: try dtype(c))
        }),
        ("BinaryAccuracy", { c in
            try KerasConfig.rejectUnknownKeys(c, allowed: ["name", "dtype", "threshold"], kind: "BinaryAccuracy")
            return try BinaryAccuracy(name: try name(c) ?? "binary_accuracy", dtype: try dtype(c),
                                      threshold: try KerasConfig.float32(c, "threshold", kind: "BinaryAccuracy") ?? 0.5)
        }),
        ("CategoricalAccuracy", { c in
            try KerasConfig.rejectUnknownKeys(c, allowed: ["name", "dtype"], kind: "CategoricalAccuracy")
            return try CategoricalAccuracy(name: try name(c) ?? "categorical_accuracy", dtype: try dtype(c))
        }),
        ("SparseCategoricalAccuracy", { c in
            try KerasConfig.rejectUnknownKeys(c, allowed: ["name", "dtype"], kind: "SparseCategoricalAccuracy")
            return try SparseCategoricalAccuracy(name: try name(c) ?? "sparse_categorical_accuracy", dtype: try dtype(c))
        }),
        ("TopKCategoricalAccuracy", { c in
            try KerasConfig.rejectUnknownKeys(c, allowed: ["name", "dtype", "k"], kind: "TopKCategoricalAccuracy")
            return try TopKCategoricalAccuracy(k: try readOptionalInt(c, "k", kind: "TopKCategoricalAccuracy") ?? 5,
                                               name: try name(c) ?? "top_k_categorical_accuracy", dtype: try dtype(c))
        }),
        ("SparseTopKCategoricalAccuracy", { c in
            try KerasConfig.rejectUnknownKeys(c, allowed: ["name", "dtype", "k"], kind: "SparseTopKCategoricalAccuracy")
            return try SparseTopKCategoricalAccuracy(k: try readOptionalInt(c, "k", kind: "SparseTopKCategoricalAccuracy") ?? 5,
                                                     name: try name(c) ?? "sparse_top_k_categorical_accuracy", dtype: try dtype(c))
        }),
        ("Precision", { c in
            let (t, scalar, topK, classId) = try readThresholdMetricConfig(c, kind: "Precision")
            let n = try name(c) ?? "precision", d = try dtype(c)
            if scalar, let t { return try Precision(threshold: t[0], topK: topK, classId: classId, name: n, dtype: d) }
            return try Precision(thresholds: t, topK: topK, classId: classId, name: n, dtype: d)
        }),
        ("Recall", { c in
            let (t, scalar, topK, classId) = try readThresholdMetricConfig(c, kind: "Recall")
            let n = try name(c) ?? "recall", d = try dtype(c)
            if scalar, let t { return try Recall(threshold: t[0], topK: topK, classId: classId, name: n, dtype: d) }
            return try Recall(thresholds: t, topK: topK, classId: classId, name: n, dtype: d)
        }),
        ("AUC", { c in try aucFromConfig(c) }),
    ]

    /// Keras 3's snake-case names of classes (`keras.metrics.get("auc")`); tf_keras 2.21 accepts only the
    /// class names for these. Each gives the default instance.
    private static let classAliases: [(String, String)] = [("auc", "AUC"), ("precision", "Precision"), ("recall", "Recall")]

    /// An AUC from its config (`thresholds` overrides `num_thresholds`, as in Keras; `label_weights` a list
    /// or NumPy's `{"class_name": "__numpy__", "config": {"value": [...]}}`).
    private static func aucFromConfig(_ c: JSONObject) throws -> AUC {
        let kind = "AUC"
        try KerasConfig.rejectUnknownKeys(c, allowed: ["name", "dtype", "num_thresholds", "curve", "summation_method", "multi_label",
                                                       "num_labels", "label_weights", "from_logits", "thresholds"], kind: kind)
        var curve = AUC.Curve.roc, method = AUC.SummationMethod.interpolation
        if let s = try readString(c, "curve", kind: kind) {
            guard let v = AUC.Curve(kerasName: s) else {
                throw KerasError.invalidConfig(kind: kind, message: "curve must be one of ROC, PR, PR_GAIN, got '\(s)'")
            }
            curve = v
        }
        if let s = try readString(c, "summation_method", kind: kind) {
            guard let v = AUC.SummationMethod(kerasName: s) else {
                throw KerasError.invalidConfig(kind: kind, message: "summation_method must be one of interpolation, majoring, minoring, got '\(s)'")
            }
            method = v
        }
        var labelWeights: [Double]?
        if var v = c["label_weights"], !v.isNull {
            if let o = v.objectValue, o["class_name"]?.stringValue == "__numpy__", let value = o["config"]?.objectValue?["value"] { v = value }
            guard let list = v.arrayValue, let weights = Optional(list.compactMap(\.doubleValue)), weights.count == list.count else {
                throw KerasError.invalidConfig(kind: kind, message: "label_weights must be null or a list of numbers, got \(v.typeName)")
            }
            labelWeights = weights
        }
        return try AUC(numThresholds: try readOptionalInt(c, "num_thresholds", kind: kind) ?? 200, curve: curve,
                       summationMethod: method, thresholds: try readThresholds(c, kind: kind).values,
                       multiLabel: try readBool(c, "multi_label", kind: kind) ?? false,
                       numLabels: try readOptionalInt(c, "num_labels", kind: kind), labelWeights: labelWeights,
                       fromLogits: try readBool(c, "from_logits", kind: kind) ?? false,
                       name: try name(c) ?? "auc", dtype: try dtype(c))
    }

    /// Every name ``get(_:)`` accepts.
    public static var knownNames: [String] { functions.map(\.0) + classAliases.map(\.0) + classes.map(\.0) }

    /// A metric by Keras name (`tf.keras.metrics.get`, then `compile`'s wrapping of functions).
    ///
    /// Function names (`"accuracy"`, `"acc"`, `"binary_accuracy"`, `"categorical_accuracy"`,
    /// `"sparse_categorical_accuracy"`, `"top_k_categorical_accuracy"`, `"sparse_top_k_categorical_accuracy"`
    /// (k = 5)) give a ``MeanMetricWrapper`` of that function named by the string; class names
    /// (`"Accuracy"`, `"BinaryAccuracy"`, `"CategoricalAccuracy"`, `"SparseCategoricalAccuracy"`,
    /// `"TopKCategoricalAccuracy"`, `"SparseTopKCategoricalAccuracy"`, `"Precision"`, `"Recall"`, `"AUC"`)
    /// give the default instance, and so do Keras 3's `"auc"`, `"precision"`, `"recall"`. Note that
    /// `"binary_accuracy"` is Keras' function, which averages over the last axis per sample, while
    /// `BinaryAccuracy` averages over every element (the same mean without weights, up to rounding).
    ///
    /// `Model.compile(metrics=["accuracy"])` picks binary, sparse or categorical accuracy from the shapes:
    /// that is ``compiled(_:yTrueShape:yPredShape:)``.
    /// - Throws: ``KerasError/unknownIdentifier(kind:name:known:)`` for any other name.
    public static func get(_ identifier: String) throws -> any TrainingMetric {
        if let f = functions.first(where: { $0.0 == identifier })?.1 {
            let m = try MeanMetricWrapper(name: identifier, f)
            m.kerasFunctionName = ["acc", "accuracy"].contains(identifier) ? "accuracy" : identifier
            return m
        }
        let className = classAliases.first(where: { $0.0 == identifier })?.1 ?? identifier
        if let make = classes.first(where: { $0.0 == className })?.1 { return try make([:]) }
        throw KerasError.unknownIdentifier(kind: "metric function", name: identifier, known: knownNames)
    }

    /// ``get(_:)`` where the caller needs one class (`let m: MeanMetricWrapper = try Metrics.get(name)`).
    /// - Throws: also ``KerasError/invalidArgument(field:message:)`` when the metric is not an `M`.
    public static func get<M: Metric>(_ identifier: String) throws -> M {
        try typed(get(identifier) as any TrainingMetric, identifier)
    }

    /// The metric `Model.compile(metrics=[identifier])` builds for an output (Keras'
    /// `MetricsContainer._get_metric_object`).
    ///
    /// For `"accuracy"`/`"acc"` (any case): binary accuracy (the function) when `yPred`'s last dimension
    /// is 1; else sparse categorical accuracy when `yTrue` has a lower rank than `yPred`, or `yTrue`'s last
    /// dimension is 1 and `yPred`'s is not; else categorical accuracy. The metric keeps the name as given.
    /// Other identifiers are looked up with ``get(_:)``.
    public static func compiled(_ identifier: String, yTrueShape: [Int], yPredShape: [Int]) throws -> any TrainingMetric {
        guard ["accuracy", "acc"].contains(identifier.lowercased()) else { return try get(identifier) as any TrainingMetric }
        let isBinary = yPredShape.last == 1
        let isSparse = yTrueShape.count < yPredShape.count || (yTrueShape.last == 1 && yPredShape.last != 1)
        let m: MeanMetricWrapper
        if isBinary {
            m = try MeanMetricWrapper(name: identifier) { try binaryAccuracy($0, $1) }
            m.kerasFunctionName = "binary_accuracy"
        } else if isSparse {
            m = try MeanMetricWrapper(name: identifier) { try sparseCategoricalAccuracy($0, $1) }
            m.kerasFunctionName = "sparse_categorical_accuracy"
        } else {
            m = try MeanMetricWrapper(name: identifier) { try categoricalAccuracy($0, $1) }
            m.kerasFunctionName = "categorical_accuracy"
        }
        return m
    }

    /// ``compiled(_:yTrueShape:yPredShape:)`` where the caller needs one class.
    /// - Throws: also ``KerasError/invalidArgument(field:message:)`` when the metric is not an `M`.
    public static func compiled<M: Metric>(_ identifier: String, yTrueShape: [Int], yPredShape: [Int]) throws -> M {
        try typed(compiled(identifier, yTrueShape: yTrueShape, yPredShape: yPredShape) as any TrainingMetric, identifier)
    }

    /// A metric from Keras' serialized form (`{"class_name": "BinaryAccuracy", "config": {...}}`) or a name.
    ///
    /// Read as strictly as an optimizer (the same wrapper rule, `Optimizer.readWrapper`): no other
    /// wrapper key, `config` present and an object, every config key one the class writes, each of its
    /// type (a present field of the wrong type is an error, never the default), numbers within float32.
    /// - Throws: ``KerasError`` for an unknown class or an invalid wrapper or config.
    public static func deserialize(_ value: JSONValue) throws -> any TrainingMetric {
        if let name = value.stringValue { return try get(name) as any TrainingMetric }
        let (className, config) = try KerasConfig.readWrapper(value, kind: "metric")
        guard let make = classes.first(where: { $0.0 == className })?.1 else {
            throw KerasError.unknownIdentifier(kind: "metric class", name: className, known: classes.map(\.0))
        }
        return try make(config)
    }

    /// ``deserialize(_:)`` where the caller needs one class.
    /// - Throws: also ``KerasError/invalidArgument(field:message:)`` when the metric is not an `M`.
    public static func deserialize<M: Metric>(_ value: JSONValue) throws -> M {
        try typed(deserialize(value) as any TrainingMetric, value.stringValue ?? value.objectValue?["class_name"]?.stringValue ?? "metric")
    }

    private static func typed<M: Metric>(_ metric: any TrainingMetric, _ identifier: String) throws -> M {
        guard let m = metric as? M else {
            throw KerasError.invalidArgument(
                field: "metric", message: "'\(identifier)' is a \(type(of: metric).kerasClassName), where a \(M.kerasClassName) is needed")
        }
        return m
    }

    private static func name(_ c: JSONObject) throws -> String? {
        guard let v = c["name"], !v.isNull else { return nil }
        guard let s = v.stringValue else {
            throw KerasError.invalidConfig(kind: "metric", message: "name must be a string, got \(v.typeName)")
        }
        return s
    }

    private static func dtype(_ c: JSONObject) throws -> DType {
        guard let v = c["dtype"], !v.isNull else { return .float32 }
        guard let s = v.stringValue, let d = DType(kerasName: s) else {
            throw KerasError.invalidConfig(kind: "metric", message: "unknown dtype \(v)")
        }
        return d
    }
}
