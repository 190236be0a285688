import DescentOptimizers
import DescentTensor

/// The settings and checks ``Precision`` and ``Recall`` share (tf_keras' constructor arguments).
struct ThresholdSettings: Sendable {
    /// The thresholds as given (`nil`: the default), and whether they were given as one number.
    let given: [Double]?
    let givenAsNumber: Bool
    /// The thresholds in use: the given ones, else 0.5, or `NEG_INF` with `topK`.
    let thresholds: [Double]
    let topK: Int?
    let classId: Int?
    /// Keras' `_thresholds_distributed_evenly`.
    let evenlyDistributed: Bool

    init(metric: String, thresholds: [Double]?, givenAsNumber: Bool, topK: Int?, classId: Int?, dtype: DType) throws {
        guard dtype.isFloatingPoint else {
            throw KerasError.invalidArgument(field: "dtype", message: "\(metric): a metric's dtype must be float32 or float64, got \(dtype)")
        }
        if let thresholds {
            guard !thresholds.isEmpty else {
                throw KerasError.invalidArgument(field: "thresholds", message: "\(metric): needs at least one threshold (or nil for the default)")
            }
            try checkThresholdRange(thresholds, metric: metric)
        }
        if let topK, topK < 1 {
            throw KerasError.invalidArgument(field: "topK", message: "\(metric): top_k must be at least 1, got \(topK)")
        }
        if let classId, classId < 0 {
            throw KerasError.invalidArgument(field: "classId", message: "\(metric): class_id must be 0 or more, got \(classId)")
        }
        given = thresholds
        self.givenAsNumber = givenAsNumber && thresholds?.count == 1
        self.thresholds = thresholds ?? [topK == nil ? 0.5 : kerasNegInf]
        self.topK = topK
        self.classId = classId
        evenlyDistributed = thresholdsAreEvenlyDistributed(self.thresholds)
    }

    /// `thresholds`, `top_k`, `class_id` as Keras writes them.
    func configEntries(into c: inout JSONObject) {
        if let given {
            c["thresholds"] = givenAsNumber ? .double(given[0]) : .array(given.map { .double($0) })
        } else {
            c["thresholds"] = .null
        }
        c["top_k"] = topK.map { .int($0) } ?? .null
        c["class_id"] = classId.map { .int($0) } ?? .null
    }

    /// The two counts `counts` of one batch.
    func batch(metric: String, dtype: DType, yTrue: Tensor, yPred: Tensor, sampleWeight: Tensor?,
               counts: ConfusionCounts) throws -> ConfusionBatch {
        let inputs = try prepareConfusionInputs(metric: metric, dtype: dtype, yTrue: yTrue, yPred: yPred,
                                                sampleWeight: sampleWeight, topK: topK, classId: classId)
        let math = DTypeArithmetic(dtype)
        return confusionBatch(inputs, thresholds: thresholds.map(math.round), counts: counts, multiLabel: false,
                              labelWeights: nil, evenlyDistributed: evenlyDistributed, withEpsilon: false, math: math)
    }

    /// `divide_no_nan(tp, tp + other)` per threshold, from a state `[tp..., other...]`.
    func ratios(_ values: [Double], metric: String, dtype: DType) throws -> [Double] {
        let t = thresholds.count
        guard values.count == 2 * t else { throw stateCountError(metric, expected: 2 * t, got: values.count) }
        let math = DTypeArithmetic(dtype)
        return (0..<t).map { i in
            let tp = math.round(values[i]), other = math.round(values[t + i])
            return math.divNoNan(tp, math.add(tp, other))
        }
    }

    /// The result tensor: a scalar for one threshold, else one value per threshold.
    func resultTensor(_ values: [Double], dtype: DType) -> Tensor {
        if values.count == 1 { return scalarTensor(values[0], dtype) }
        // Cannot fail: the shape matches the count.
        let t = try! Tensor(shape: [values.count], scalars: values)
        return t.cast(to: dtype)
    }
}

/// Reads `thresholds`, `top_k`, `class_id`, `name` and `dtype` from a Precision/Recall config.
func readThresholdMetricConfig(_ c: JSONObject, kind: String) throws
    -> (thresholds: [Double]?, scalar: Bool, topK: Int?, classId: Int?) {
    try KerasConfig.rejectUnknownKeys(c, allowed: ["name", "dtype", "thresholds", "top_k", "class_id"], kind: kind)
    let (thresholds, scalar) = try readThresholds(c, kind: kind)
    return (thresholds, scalar, try readOptionalInt(c, "top_k", kind: kind), try readOptionalInt(c, "class_id", kind: kind))
}

/// The state of ``Precision`` or ``Recall``: their settings and two counts per threshold, the true
/// positives and the `other` count (false positives for precision, false negatives for recall).
struct ThresholdRatioState {
    let settings: ThresholdSettings
    /// Which confusion count is `other`.
    let otherCount: ConfusionCounts
    private(set) var truePositives: [Double]
    private(set) var other: [Double]

    init(settings: ThresholdSettings, other: ConfusionCounts) {
        self.settings = settings
        otherCount = other
        truePositives = Array(repeating: 0, count: settings.thresholds.count)
        self.other = truePositives
    }

    /// Adds one batch's counts.
    mutating func update(metric: String, dtype: DType, yTrue: Tensor, yPred: Tensor, sampleWeight: Tensor?) throws {
        let b = try settings.batch(metric: metric, dtype: dtype, yTrue: yTrue, yPred: yPred, sampleWeight: sampleWeight,
                                   counts: [.truePositives, otherCount])
        let math = DTypeArithmetic(dtype)
        accumulate(&truePositives, b.tp, math: math)
        accumulate(&other, otherCount == .falsePositives ? b.fp : b.fn, math: math)
    }

    mutating func reset() {
        truePositives = truePositives.map { _ in 0 }
        other = truePositives
    }

    var values: [Double] { truePositives + other }

    /// Sets `[truePositives..., other...]`, rounded to `dtype`.
    mutating func restore(_ values: [Double], metric: String, dtype: DType) throws {
        let t = settings.thresholds.count
        guard values.count == 2 * t else { throw stateCountError(metric, expected: 2 * t, got: values.count) }
        let math = DTypeArithmetic(dtype)
        truePositives = values[0..<t].map(math.round)
        other = values[t...].map(math.round)
    }
}

/// The precision of the predictions (`tf.keras.metrics.Precision`): `tp / (tp + fp)` per threshold, 0 while
/// nothing was predicted positive (`divide_no_nan`).
///
/// An update follows tf_keras' `update_confusion_matrix_variables`:
/// 1. `yTrue` and `yPred` are cast to ``dtype``; a trailing axis of 1 is squeezed from the one with a
///    dimension more; they must then have the same shape. A sample weight is aligned (one trailing axis
///    added or squeezed) and must broadcast to the predictions (a scalar, or each dimension 1 or equal).
/// 2. With ``topK``, along the last axis only the `k` largest predictions are kept and the others become
///    `-1e10` (ties keep the lower index); with ``classId``, only that column of the last axis is used.
/// 3. Every element is one sample: a label is positive when nonzero, a prediction is positive at threshold
///    `t` when `yPred > t` (strictly). `tp[t] += Σ w · [label ∧ yPred > t]`, `fp[t] += Σ w · [¬label ∧ yPred > t]`.
///
/// When the thresholds are evenly spaced on [0, 1] (at least three: `i / (n - 1)`), Keras counts with
/// buckets `ceil(yPred (n - 1)) - 1` after clipping predictions to [0, 1]; this does the same, so a
/// prediction outside [0, 1] counts as 0 or 1 there.
///
/// The thresholds default to 0.5, or with ``topK`` to `-1e10` (every top-k prediction is positive). The
/// state is ``truePositives`` then ``falsePositives``, one per threshold, in ``dtype``.
public final class Precision: TrainingMetric {
    /// The metric's name (default `"precision"`).
    public let name: String
    /// The dtype of the state and result (float32 by default).
    public let dtype: DType
    private var state: ThresholdRatioState
    private var settings: ThresholdSettings { state.settings }
    /// The weighted count of true positives per threshold.
    public var truePositives: [Double] { state.truePositives }
    /// The weighted count of false positives per threshold.
    public var falsePositives: [Double] { state.other }

    /// Creates the metric.
    /// - Parameters:
    ///   - thresholds: the decision thresholds in [0, 1] (`nil`: 0.5, or `-1e10` with `topK`); one result
    ///     per threshold.
    ///   - topK: only the `k` largest predictions of the last axis can be positive.
    ///   - classId: only this column of the last axis is used.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` for an empty list, a threshold outside [0, 1],
    ///   `topK < 1`, `classId < 0`, or a dtype that is not floating point.
    public convenience init(thresholds: [Double]? = nil, topK: Int? = nil, classId: Int? = nil, name: String = "precision",
                            dtype: DType = .float32) throws {
        try self.init(settings: ThresholdSettings(metric: name, thresholds: thresholds, givenAsNumber: false, topK: topK,
                                                  classId: classId, dtype: dtype), name: name, dtype: dtype)
    }

    /// Creates the metric with one threshold given as a number (Keras' `thresholds=0.4`, which its config
    /// keeps as a number rather than a list).
    public convenience init(threshold: Double, topK: Int? = nil, classId: Int? = nil, name: String = "precision",
                            dtype: DType = .float32) throws {
        try self.init(settings: ThresholdSettings(metric: name, thresholds: [threshold], givenAsNumber: true, topK: topK,
                                                  classId: classId, dtype: dtype), name: name, dtype: dtype)
    }

    private init(settings: ThresholdSettings, name: String, dtype: DType) {
        state = ThresholdRatioState(settings: settings, other: .falsePositives)
        self.name = name
        self.dtype = dtype
    }

    /// The thresholds in use.
    public var thresholds: [Double] { settings.thresholds }
    /// The top-k restriction.
    public var topK: Int? { settings.topK }
    /// The class column used.
    public var classId: Int? { settings.classId }

    /// `"Precision"`.
    public static var kerasClassName: String { "Precision" }

    /// `{"name", "dtype", "thresholds", "top_k", "class_id"}`, `thresholds` as given (`null`, a number or a list).
    public var config: JSONObject {
        var c: JSONObject = ["name": .string(name), "dtype": .string(dtype.rawValue)]
        settings.configEntries(into: &c)
        return c
    }

    /// Adds one batch's true and false positives; see ``Precision``.
    public func update(yTrue: Tensor, yPred: Tensor, sampleWeight: Tensor?) throws {
        try state.update(metric: name, dtype: dtype, yTrue: yTrue, yPred: yPred, sampleWeight: sampleWeight)
    }

    /// `tp / (tp + fp)`: a scalar for one threshold, else one value per threshold.
    public func result() -> Tensor { settings.resultTensor(resultValues, dtype: dtype) }

    /// Zeroes the counts.
    public func reset() {
        state.reset()
    }

    /// `truePositives + falsePositives`.
    public var stateValues: [Double] { state.values }

    /// Sets `[truePositives..., falsePositives...]`.
    public func restoreState(_ values: [Double]) throws {
        try state.restore(values, metric: name, dtype: dtype)
    }

    /// `divide_no_nan(tp, tp + fp)` per threshold.
    public func resultValues(forState values: [Double]) throws -> [Double] {
        try settings.ratios(values, metric: name, dtype: dtype)
    }
}

/// The recall of the predictions (`tf.keras.metrics.Recall`): `tp / (tp + fn)` per threshold, 0 while there
/// was no positive label (`divide_no_nan`).
///
/// Updates exactly as ``Precision`` (the same preparation, ``topK``, ``classId``, thresholds and buckets),
/// counting `tp[t] += Σ w · [label ∧ yPred > t]` and `fn[t] += Σ w · [label ∧ yPred ≤ t]`. The state is
/// ``truePositives`` then ``falseNegatives``, one per threshold, in ``dtype``.
public final class Recall: TrainingMetric {
    /// The metric's name (default `"recall"`).
    public let name: String
    /// The dtype of the state and result (float32 by default).
    public let dtype: DType
    private var state: ThresholdRatioState
    private var settings: ThresholdSettings { state.settings }
    /// The weighted count of true positives per threshold.
    public var truePositives: [Double] { state.truePositives }
    /// The weighted count of false negatives per threshold.
    public var falseNegatives: [Double] { state.other }

    /// Creates the metric; the arguments and errors are ``Precision``'s.
    public convenience init(thresholds: [Double]? = nil, topK: Int? = nil, classId: Int? = nil, name: String = "recall",
                            dtype: DType = .float32) throws {
        try self.init(settings: ThresholdSettings(metric: name, thresholds: thresholds, givenAsNumber: false, topK: topK,
                                                  classId: classId, dtype: dtype), name: name, dtype: dtype)
    }

    /// Creates the metric with one threshold given as a number (Keras' `thresholds=0.4`, which its config
    /// keeps as a number rather than a list).
    public convenience init(threshold: Double, topK: Int? = nil, classId: Int? = nil, name: String = "recall",
                            dtype: DType = .float32) throws {
        try self.init(settings: ThresholdSettings(metric: name, thresholds: [threshold], givenAsNumber: true, topK: topK,
                                                  classId: classId, dtype: dtype), name: name, dtype: dtype)
    }

    private init(settings: ThresholdSettings, name: String, dtype: DType) {
        state = ThresholdRatioState(settings: settings, other: .falseNegatives)
        self.name = name
        self.dtype = dtype
    }

    /// The thresholds in use.
    public var thresholds: [Double] { settings.thresholds }
    /// The top-k restriction.
    public var topK: Int? { settings.topK }
    /// The class column used.
    public var classId: Int? { settings.classId }

    /// `"Recall"`.
    public static var kerasClassName: String { "Recall" }

    /// `{"name", "dtype", "thresholds", "top_k", "class_id"}`, `thresholds` as given.
    public var config: JSONObject {
        var c: JSONObject = ["name": .string(name), "dtype": .string(dtype.rawValue)]
        settings.configEntries(into: &c)
        return c
    }

    /// Adds one batch's true positives and false negatives; see ``Recall``.
    public func update(yTrue: Tensor, yPred: Tensor, sampleWeight: Tensor?) throws {
        try state.update(metric: name, dtype: dtype, yTrue: yTrue, yPred: yPred, sampleWeight: sampleWeight)
    }

    /// `tp / (tp + fn)`: a scalar for one threshold, else one value per threshold.
    public func result() -> Tensor { settings.resultTensor(resultValues, dtype: dtype) }

    /// Zeroes the counts.
    public func reset() {
        state.reset()
    }

    /// `truePositives + falseNegatives`.
    public var stateValues: [Double] { state.values }

    /// Sets `[truePositives..., falseNegatives...]`.
    public func restoreState(_ values: [Double]) throws {
        try state.restore(values, metric: name, dtype: dtype)
    }

    /// `divide_no_nan(tp, tp + fn)` per threshold.
    public func resultValues(forState values: [Double]) throws -> [Double] {
        try settings.ratios(values, metric: name, dtype: dtype)
    }
}
