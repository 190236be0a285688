import DescentOptimizers
import DescentTensor

// tf_keras' `metrics_utils.update_confusion_matrix_variables` (and its bucketed variant
// `_update_confusion_matrix_variables_optimized`), on flat arrays in the metric's dtype.

/// Keras' `metrics_utils.NEG_INF`: the threshold of a top-k ``Precision``/``Recall`` and the value
/// `_filter_top_k` gives the predictions outside the top k.
let kerasNegInf = -1e10

/// Which of the four counts an update produces.
struct ConfusionCounts: OptionSet {
    let rawValue: Int
    static let truePositives = ConfusionCounts(rawValue: 1)
    static let trueNegatives = ConfusionCounts(rawValue: 2)
    static let falsePositives = ConfusionCounts(rawValue: 4)
    static let falseNegatives = ConfusionCounts(rawValue: 8)
}

/// The per-batch sums of one update, each of length `thresholds × labels` (row-major `[T, L]`; `L` is 1
/// unless multi-label). Counts not asked for are empty.
struct ConfusionBatch {
    var tp: [Double] = [], tn: [Double] = [], fp: [Double] = [], fn: [Double] = []
}

/// Labels, predictions and weights after Keras' preparation, flat (row-major) in the metric's dtype.
struct ConfusionInputs {
    /// `y_true != 0`.
    var labels: [Bool]
    var predictions: [Double]
    /// The weights broadcast to the predictions (`nil`: all 1).
    var weights: [Double]?
    /// The predictions' shape.
    var shape: [Int]
}

/// Whether Keras takes the bucketed path for `thresholds` (`is_evenly_distributed_thresholds`): at least
/// three, and `np.allclose(thresholds, arange(n, float32) / (n - 1), atol=1e-7)` (with NumPy's default
/// relative tolerance 1e-5).
func thresholdsAreEvenlyDistributed(_ thresholds: [Double]) -> Bool {
    let n = thresholds.count
    guard n >= 3 else { return false }
    for (i, t) in thresholds.enumerated() {
        let even = Double(Float(i) / Float(n - 1))
        if !(abs(t - even) <= kerasEpsilon + 1e-5 * abs(even)) { return false }
    }
    return true
}

/// Throws unless every threshold is a number in [0, 1] (Keras' `assert_thresholds_range`).
func checkThresholdRange(_ thresholds: [Double], metric: String) throws {
    let invalid = thresholds.filter { !($0 >= 0 && $0 <= 1) }
    guard invalid.isEmpty else {
        throw KerasError.invalidArgument(
            field: "thresholds", message: "\(metric): threshold values must be in [0, 1], got \(invalid)")
    }
}

/// Keras' preparation of one update: cast to `dtype`, `squeeze_or_expand_dimensions` of the predictions,
/// labels and weights, the shape check, `_filter_top_k`, the `class_id` column, and `broadcast_weights`.
///
/// The weight is aligned with the predictions' rank after their squeeze (Keras' documented rule; its code
/// compares with the rank before, which makes `[N]` labels, `[N, 1]` predictions and any non-scalar weight
/// an error there).
func prepareConfusionInputs(metric: String, dtype: DType, yTrue: Tensor, yPred: Tensor, sampleWeight: Tensor?,
                            topK: Int?, classId: Int?) throws -> ConfusionInputs {
    let (p, t) = try squeezeOrExpand(yPred: yPred.untracked.cast(to: dtype), yTrue: yTrue.untracked.cast(to: dtype))
    guard p.shape == t.shape else {
        throw TensorError.incompatibleShapes(
            operation: metric, lhs: yTrue.shape, rhs: yPred.shape,
            reason: "y_true (first) and y_pred (second) must have the same shape")
    }
    var shape = p.shape
    var predictions = p.doubles
    var labels = t.doubles.map { $0 != 0 }
    var weights: Tensor?
    if let sampleWeight {
        weights = try alignWeights(sampleWeight.untracked.cast(to: dtype), to: p, operation: "\(metric) sample_weight")
    }
    let math = DTypeArithmetic(dtype)
    if let topK {
        guard let classes = shape.last, topK <= classes else {
            throw KerasError.invalidArgument(
                field: "topK", message: "\(metric): top_k=\(topK) needs at least \(topK) values on y_pred's last axis, got shape \(yPred.shape)")
        }
        filterTopK(&predictions, classes: classes, k: topK, math: math)
    }
    if let classId {
        guard let classes = shape.last, classId < classes else {
            throw KerasError.invalidArgument(
                field: "classId", message: "\(metric): class_id=\(classId) needs more than \(classId) classes on y_pred's last axis, got shape \(yPred.shape)")
        }
        let rows = classes == 0 ? 0 : predictions.count / classes
        predictions = (0..<rows).map { predictions[$0 * classes + classId] }
        labels = (0..<rows).map { labels[$0 * classes + classId] }
        shape[shape.count - 1] = 1
    }
    var flatWeights: [Double]?
    if let w = weights {
        guard w.rank == 0 || (w.rank == shape.count && zip(w.shape, shape).allSatisfy { $0 == 1 || $0 == $1 }) else {
            throw TensorError.incompatibleShapes(
                operation: "\(metric) sample_weight", lhs: shape, rhs: sampleWeight?.shape ?? [],
                reason: "the sample weight (second) must be a scalar or broadcast to the predictions (first) "
                    + "with dimensions of 1 or equal")
        }
        flatWeights = try w.broadcast(to: shape).doubles
    }
    return ConfusionInputs(labels: labels, predictions: predictions, weights: flatWeights, shape: shape)
}

/// Keras' `_filter_top_k`: along the last axis (rows of `classes`), the `k` largest values are kept and the
/// others become `NEG_INF` (`x * mask + NEG_INF * (1 - mask)` in the dtype). Ties keep the lower index, as
/// `tf.math.top_k`; a NaN ranks below every number (TensorFlow's order with NaNs is unspecified).
func filterTopK(_ values: inout [Double], classes: Int, k: Int, math: DTypeArithmetic) {
    guard classes > 0 else { return }
    let negInf = math.round(kerasNegInf)
    var order = [Int](repeating: 0, count: classes)
    var keep = [Bool](repeating: false, count: classes)
    for row in 0..<(values.count / classes) {
        let base = row * classes
        for i in 0..<classes { order[i] = i; keep[i] = false }
        // A stable order by value, largest first; NaN last.
        order.sort { a, b in
            let x = values[base + a], y = values[base + b]
            if x.isNaN != y.isNaN { return y.isNaN }
            if !x.isNaN, x != y { return x > y }
            return a < b
        }
        for i in order.prefix(k) { keep[i] = true }
        for i in 0..<classes {
            let x = values[base + i]
            // x * 1 + NEG_INF * 0 is x; x * 0 + NEG_INF is NEG_INF (NaN for a non-finite x, as TensorFlow).
            values[base + i] = keep[i] ? math.add(x, 0 * negInf) : math.add(math.mul(x, 0), negInf)
        }
    }
}

/// One update's sums for `thresholds` (already in the dtype), Keras' `update_confusion_matrix_variables`.
///
/// With `multiLabel` the inputs must be `[N, L]` and the sums are per label (`[T, L]`); otherwise every
/// element is one sample and `L` is 1. `labelWeights` (length `L` of a `[N, L]` input, not multi-label)
/// multiply the weights element-wise. `evenlyDistributed` selects Keras' bucketed algorithm (which also
/// clips predictions to [0, 1]); `withEpsilon` is its flag for AUC's endpoints below 0 and above 1.
func confusionBatch(_ inputs: ConfusionInputs, thresholds: [Double], counts: ConfusionCounts, multiLabel: Bool,
                    labelWeights: [Double]?, evenlyDistributed: Bool, withEpsilon: Bool,
                    math: DTypeArithmetic) -> ConfusionBatch {
    let numLabels = multiLabel ? (inputs.shape.last ?? 1) : 1
    let n = inputs.predictions.count
    let thresholdCount = thresholds.count
    // The weight of every element: sample weight × label weight (each 1 when absent), in the dtype.
    var weights = inputs.weights
    if let labelWeights, !multiLabel {
        let columns = labelWeights.count
        weights = (0..<n).map { i in math.mul(inputs.weights?[i] ?? 1, labelWeights[i % columns]) }
    }
    var batch = ConfusionBatch()
    let size = thresholdCount * numLabels
    if evenlyDistributed {
        // Buckets: ceil(p (T - 1)) - 1 (ReLU'd with epsilon endpoints); segment sums, then a reverse cumsum.
        var tpBuckets = [Double](repeating: 0, count: size), fpBuckets = tpBuckets
        var totalTrue = [Double](repeating: 0, count: numLabels), totalFalse = totalTrue
        let scale = math.round(Double(thresholdCount - 1))
        for i in 0..<n {
            let label = i % numLabels
            let w = weights?[i] ?? 1
            let truth = inputs.labels[i] ? w : 0
            let falsehood = math.mul(inputs.labels[i] ? 0 : 1, w)
            totalTrue[label] = math.add(totalTrue[label], truth)
            totalFalse[label] = math.add(totalFalse[label], falsehood)
            let p = min(max(inputs.predictions[i], 0), 1)
            guard !p.isNaN else { continue }
            var bucket = Int(math.mul(p, scale).rounded(.up)) - 1
            if withEpsilon { bucket = max(bucket, 0) }
            guard bucket >= 0, bucket < thresholdCount else { continue }
            tpBuckets[bucket * numLabels + label] = math.add(tpBuckets[bucket * numLabels + label], truth)
            fpBuckets[bucket * numLabels + label] = math.add(fpBuckets[bucket * numLabels + label], falsehood)
        }
        var tp = tpBuckets, fp = fpBuckets
        for t in stride(from: thresholdCount - 2, through: 0, by: -1) {
            for l in 0..<numLabels {
                tp[t * numLabels + l] = math.add(tp[t * numLabels + l], tp[(t + 1) * numLabels + l])
                fp[t * numLabels + l] = math.add(fp[t * numLabels + l], fp[(t + 1) * numLabels + l])
            }
        }
        if counts.contains(.truePositives) { batch.tp = tp }
        if counts.contains(.falsePositives) { batch.fp = fp }
        if counts.contains(.trueNegatives) { batch.tn = (0..<size).map { math.sub(totalFalse[$0 % numLabels], fp[$0]) } }
        if counts.contains(.falseNegatives) { batch.fn = (0..<size).map { math.sub(totalTrue[$0 % numLabels], tp[$0]) } }
        return batch
    }
    // The direct comparison: prediction > threshold for every threshold. Sums in Double, rounded once.
    var tp = [Double](repeating: 0, count: size), tn = tp, fp = tp, fn = tp
    for i in 0..<n {
        let label = i % numLabels
        let w = weights?[i] ?? 1
        let positive = inputs.labels[i], p = inputs.predictions[i]
        for t in 0..<thresholdCount {
            let k = t * numLabels + label
            if p > thresholds[t] {
                if positive { tp[k] += w } else { fp[k] += w }
            } else {
                if positive { fn[k] += w } else { tn[k] += w }
            }
        }
    }
    if counts.contains(.truePositives) { batch.tp = tp.map(math.round) }
    if counts.contains(.trueNegatives) { batch.tn = tn.map(math.round) }
    if counts.contains(.falsePositives) { batch.fp = fp.map(math.round) }
    if counts.contains(.falseNegatives) { batch.fn = fn.map(math.round) }
    return batch
}

/// `state[i] += batch[i]` in the dtype.
func accumulate(_ state: inout [Double], _ batch: [Double], math: DTypeArithmetic) {
    for i in state.indices { state[i] = math.add(state[i], batch[i]) }
}

/// Reads a config's `thresholds`: `null`, a number, or a list of numbers.
func readThresholds(_ c: JSONObject, kind: String) throws -> (values: [Double]?, scalar: Bool) {
    guard let v = c["thresholds"], !v.isNull else { return (nil, false) }
    if let d = v.doubleValue { return ([d], true) }
    guard let list = v.arrayValue else {
        throw KerasError.invalidConfig(kind: kind, message: "thresholds must be null, a number or a list of numbers, got \(v.typeName)")
    }
    return (try list.map { item in
        guard let d = item.doubleValue else {
            throw KerasError.invalidConfig(kind: kind, message: "thresholds must hold numbers, got \(item.typeName)")
        }
        return d
    }, false)
}

/// Reads an optional integer field (`null` or absent: `nil`).
func readOptionalInt(_ c: JSONObject, _ key: String, kind: String) throws -> Int? {
    guard let v = c[key], !v.isNull else { return nil }
    guard case .int(let i) = v else {
        throw KerasError.invalidConfig(kind: kind, message: "\(key) must be an integer or null, got \(v.typeName)")
    }
    return i
}

/// Reads an optional boolean field.
func readBool(_ c: JSONObject, _ key: String, kind: String) throws -> Bool? {
    guard let v = c[key], !v.isNull else { return nil }
    guard let b = v.boolValue else {
        throw KerasError.invalidConfig(kind: kind, message: "\(key) must be true or false, got \(v.typeName)")
    }
    return b
}

/// Reads an optional string field.
func readString(_ c: JSONObject, _ key: String, kind: String) throws -> String? {
    guard let v = c[key], !v.isNull else { return nil }
    guard let s = v.stringValue else {
        throw KerasError.invalidConfig(kind: kind, message: "\(key) must be a string, got \(v.typeName)")
    }
    return s
}
