import DescentOptimizers
import DescentTensor

/// The area under the ROC or precision-recall curve (`tf.keras.metrics.AUC`), approximated from confusion
/// counts at a fixed list of thresholds, exactly as tf_keras 2.21 computes it.
///
/// **Thresholds.** `numThresholds` (default 200, at least 2) gives `[0 - 1e-7, 1/(n-1), ..., (n-2)/(n-1),
/// 1 + 1e-7]`; explicit `thresholds` (sorted) give `[0 - 1e-7] + thresholds + [1 + 1e-7]`, and
/// `numThresholds` becomes their count plus 2. The epsilon endpoints count every prediction in [0, 1] as
/// positive at the first threshold and none at the last.
///
/// **Update** (tf_keras' `update_confusion_matrix_variables`, see ``Precision``): with `fromLogits` a
/// sigmoid is applied to `yPred` first; labels are positive when nonzero; at each threshold `t`,
/// `tp[t] += Σ w·[label ∧ yPred > t]`, `fp[t] += Σ w·[¬label ∧ yPred > t]`, `tn[t] += Σ w·[¬label ∧ yPred ≤ t]`,
/// `fn[t] += Σ w·[label ∧ yPred ≤ t]`. Evenly spaced thresholds (the default ones, or explicit ones that
/// are `i/(n-1)` with the endpoints 0 and 1 added) use Keras' buckets: predictions clipped to [0, 1], the
/// bucket `max(ceil(yPred (n-1)) - 1, 0)`, a reverse cumulative sum, `fn = Σ positive weight - tp` and
/// `tn = Σ negative weight - fp`. Without `multiLabel` every element is one sample; `labelWeights` (one per
/// column of `[N, L]` labels) then multiply the weights of their column. With `multiLabel` the input must be
/// `[N, L]` and every label has its own counts (`[T, L]`, `L` from `numLabels` or the first batch).
///
/// **Result**, with `x[i] - x[i+1]` summed over the `n - 1` intervals:
/// - ROC: `x = fp / (fp + tn)`, `y = tp / (tp + fn)`; PR: `x = tp / (tp + fn)`, `y = tp / (tp + fp)`;
///   PR_GAIN: Keras' recall and precision gains. Every ratio is `divide_no_nan` (0 over 0 is 0).
/// - Heights: `interpolation` `(y[i] + y[i+1]) / 2`, `minoring` `min(y[i], y[i+1])`, `majoring` `max`;
///   area `Σ (x[i] - x[i+1]) · height[i]`.
/// - PR with `interpolation` is Davis & Goadrich's: with `P = tp + fp`, `dtp = tp[i] - tp[i+1]`,
///   `slope = dtp / max(P[i] - P[i+1], 0)`, `intercept = tp[i+1] - slope · P[i+1]`, the area is
///   `Σ slope · (dtp + intercept · log(P[i] / P[i+1])) / max(tp[i+1] + fn[i+1], 0)` (the log term 0 unless
///   both `P` are positive; every division `divide_no_nan`).
/// - `multiLabel`: the labels' areas are averaged, or with `labelWeights` weighted:
///   `Σ area_l · w_l / Σ w_l`.
///
/// All arithmetic is in ``dtype`` (float32 by default). The state is ``truePositives``, ``trueNegatives``,
/// ``falsePositives``, ``falseNegatives`` (each `T`, or `T × L` row-major for multi-label).
public final class AUC: TrainingMetric {
    /// The curve whose area is computed (Keras' `curve`).
    public enum Curve: String, Sendable, CaseIterable {
        /// The receiver operating characteristic: recall against the false positive rate.
        case roc = "ROC"
        /// Precision against recall.
        case pr = "PR"
        /// Precision gain against recall gain (Flach & Kull).
        case prGain = "PR_GAIN"

        /// Keras' `AUCCurve.from_str`: `"ROC"`/`"roc"`, `"PR"`/`"pr"`, `"PR_GAIN"`/`"pr_gain"`/`"PRGAIN"`/`"prgain"`.
        public init?(kerasName: String) {
            switch kerasName {
            case "ROC", "roc": self = .roc
            case "PR", "pr": self = .pr
            case "PR_GAIN", "pr_gain", "PRGAIN", "prgain": self = .prGain
            default: return nil
            }
        }
    }

    /// How the area between thresholds is summed (Keras' `summation_method`).
    public enum SummationMethod: String, Sendable, CaseIterable {
        /// Mid-point heights (ROC), Davis & Goadrich interpolation (PR).
        case interpolation
        /// The lower of the two heights.
        case minoring
        /// The higher of the two heights.
        case majoring

        /// Keras' `AUCSummationMethod.from_str`: the lowercase names, or capitalized.
        public init?(kerasName: String) {
            switch kerasName {
            case "interpolation", "Interpolation": self = .interpolation
            case "minoring", "Minoring": self = .minoring
            case "majoring", "Majoring": self = .majoring
            default: return nil
            }
        }
    }

    /// The metric's name (default `"auc"`).
    public let name: String
    /// The dtype of the state and result (float32 by default).
    public let dtype: DType
    /// The number of thresholds, endpoints included.
    public let numThresholds: Int
    /// Every threshold, with the endpoints `0 - 1e-7` and `1 + 1e-7` (Keras' `thresholds` property).
    public let thresholds: [Double]
    /// The curve.
    public let curve: Curve
    /// The summation method.
    public let summationMethod: SummationMethod
    /// Whether every label has its own curve (averaged in the result).
    public let multiLabel: Bool
    /// The number of labels as given (`nil`: taken from the first batch when multi-label).
    public let numLabels: Int?
    /// The labels' weights (in ``dtype``), or `nil`.
    public let labelWeights: [Double]?
    /// Whether predictions are logits (a sigmoid is applied first).
    public let fromLogits: Bool
    /// The number of labels of the state: 1 unless multi-label; `nil` for a multi-label metric before its
    /// first batch (and without `numLabels`).
    public private(set) var labelCount: Int?
    /// Weighted true positives per threshold (row-major `[T, L]` for multi-label).
    public private(set) var truePositives: [Double]
    /// Weighted true negatives per threshold.
    public private(set) var trueNegatives: [Double]
    /// Weighted false positives per threshold.
    public private(set) var falsePositives: [Double]
    /// Weighted false negatives per threshold.
    public private(set) var falseNegatives: [Double]

    private let givenThresholds: [Double]?
    private let evenlyDistributed: Bool

    /// Creates the metric; see ``AUC`` for the arguments' meaning.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the argument for `numThresholds < 2`
    ///   (without `thresholds`), a threshold outside [0, 1] (Keras accepts it silently), `numLabels` without
    ///   `multiLabel` or below 1, a negative label weight, label weights whose count differs from
    ///   `numLabels`, or a dtype that is not floating point.
    public init(numThresholds: Int = 200, curve: Curve = .roc, summationMethod: SummationMethod = .interpolation,
                thresholds: [Double]? = nil, multiLabel: Bool = false, numLabels: Int? = nil,
                labelWeights: [Double]? = nil, fromLogits: Bool = false, name: String = "auc",
                dtype: DType = .float32) throws {
        guard dtype.isFloatingPoint else {
            throw KerasError.invalidArgument(field: "dtype", message: "\(name): a metric's dtype must be float32 or float64, got \(dtype)")
        }
        if let thresholds {
            try checkThresholdRange(thresholds, metric: name)
            let sorted = thresholds.sorted()
            givenThresholds = sorted
            self.numThresholds = sorted.count + 2
            evenlyDistributed = thresholdsAreEvenlyDistributed([0] + sorted + [1])
            let low: Double = 0 - kerasEpsilon, high: Double = 1 + kerasEpsilon
            self.thresholds = [low] + sorted + [high]
        } else {
            guard numThresholds > 1 else {
                throw KerasError.invalidArgument(field: "numThresholds", message: "\(name): must be an integer > 1, got \(numThresholds)")
            }
            givenThresholds = nil
            self.numThresholds = numThresholds
            evenlyDistributed = true
            let inner: [Double] = (0..<(numThresholds - 2)).map { (i: Int) -> Double in Double(i + 1) * 1.0 / Double(numThresholds - 1) }
            let low: Double = 0 - kerasEpsilon, high: Double = 1 + kerasEpsilon
            self.thresholds = [low] + inner + [high]
        }
        if let numLabels {
            guard multiLabel else {
                throw KerasError.invalidArgument(field: "numLabels", message: "\(name): num_labels is needed only when multi_label is true")
            }
            guard numLabels >= 1 else {
                throw KerasError.invalidArgument(field: "numLabels", message: "\(name): must be at least 1, got \(numLabels)")
            }
        }
        let math = DTypeArithmetic(dtype)
        if let labelWeights {
            guard labelWeights.allSatisfy({ $0 >= 0 }) else {
                throw KerasError.invalidArgument(field: "labelWeights", message: "\(name): all values must be non-negative, got \(labelWeights)")
            }
            if let numLabels, labelWeights.count != numLabels {
                throw KerasError.invalidArgument(
                    field: "labelWeights", message: "\(name): needs one weight per label (\(numLabels)), got \(labelWeights.count)")
            }
        }
        self.labelWeights = labelWeights?.map(math.round)
        self.curve = curve
        self.summationMethod = summationMethod
        self.multiLabel = multiLabel
        self.numLabels = numLabels
        self.fromLogits = fromLogits
        self.name = name
        self.dtype = dtype
        labelCount = multiLabel ? numLabels : 1
        let size = self.numThresholds * (labelCount ?? 0)
        truePositives = Array(repeating: 0, count: size)
        trueNegatives = truePositives
        falsePositives = truePositives
        falseNegatives = truePositives
    }

    /// `"AUC"`.
    public static var kerasClassName: String { "AUC" }

    /// `{"name", "dtype", "num_thresholds", "curve", "summation_method", "multi_label", "num_labels",
    /// "label_weights", "from_logits"}`, then `"thresholds"` (without the endpoints) when they were given.
    /// `label_weights` is the list of the weights in ``dtype`` (as tf_keras' `get_config` gives it, a NumPy
    /// array written as a list).
    public var config: JSONObject {
        var c: JSONObject = ["name": .string(name), "dtype": .string(dtype.rawValue), "num_thresholds": .int(numThresholds),
                             "curve": .string(curve.rawValue), "summation_method": .string(summationMethod.rawValue),
                             "multi_label": .bool(multiLabel), "num_labels": numLabels.map { .int($0) } ?? .null,
                             "label_weights": labelWeights.map { .array($0.map { .double($0) }) } ?? .null,
                             "from_logits": .bool(fromLogits)]
        if let givenThresholds { c["thresholds"] = .array(givenThresholds.map { .double($0) }) }
        return c
    }

    /// Adds one batch's confusion counts; see ``AUC``.
    /// - Throws: `TensorError` naming the shapes when labels, predictions and weights do not fit;
    ///   ``KerasError/invalidArgument(field:message:)`` naming `multiLabel` or `labelWeights` when a
    ///   multi-label batch is not `[N, L]` with the metric's `L`, or labels do not have one column per label
    ///   weight.
    public func update(yTrue: Tensor, yPred: Tensor, sampleWeight: Tensor?) throws {
        var labels = labelCount
        if multiLabel {
            guard yPred.rank == 2 else {
                throw KerasError.invalidArgument(
                    field: "multiLabel", message: "\(name): y_pred must have rank 2 [batch, labels] when multi_label is true, got shape \(yPred.shape)")
            }
            let l = yPred.shape[1]
            if let built = labelCount, built != l {
                throw KerasError.invalidArgument(
                    field: "multiLabel", message: "\(name): the metric has \(built) labels, y_pred has shape \(yPred.shape)")
            }
            guard yTrue.rank == 2, yTrue.shape[1] == l else {
                throw KerasError.invalidArgument(
                    field: "multiLabel", message: "\(name): y_true must have shape [batch, \(l)] as y_pred \(yPred.shape), got \(yTrue.shape)")
            }
            labels = l
        }
        if let labelWeights {
            guard yTrue.rank == 2, yTrue.shape[1] == labelWeights.count else {
                throw KerasError.invalidArgument(
                    field: "labelWeights", message: "\(name): \(labelWeights.count) label weights need y_true of shape [batch, \(labelWeights.count)], got \(yTrue.shape)")
            }
        }
        var predictions = yPred.untracked.cast(to: dtype)
        if fromLogits { predictions = try predictions.sigmoid() }
        let inputs = try prepareConfusionInputs(metric: name, dtype: dtype, yTrue: yTrue, yPred: predictions,
                                                sampleWeight: sampleWeight, topK: nil, classId: nil)
        let math = DTypeArithmetic(dtype)
        let b = confusionBatch(inputs, thresholds: thresholds.map(math.round),
                               counts: [.truePositives, .trueNegatives, .falsePositives, .falseNegatives],
                               multiLabel: multiLabel, labelWeights: multiLabel ? nil : labelWeights,
                               evenlyDistributed: evenlyDistributed,
                               withEpsilon: thresholds[0] < 0 || thresholds[thresholds.count - 1] > 1, math: math)
        if labelCount == nil, let labels { build(labels) }
        accumulate(&truePositives, b.tp, math: math)
        accumulate(&trueNegatives, b.tn, math: math)
        accumulate(&falsePositives, b.fp, math: math)
        accumulate(&falseNegatives, b.fn, math: math)
    }

    /// Gives a multi-label metric its number of labels before its first batch (Keras' `_build` from the
    /// predictions' shape), so that its ``stateValues`` have their full length from the start (as replicas
    /// that sum states need, even one that has not seen a batch yet). Nothing changes when the metric
    /// already has that number of labels.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming `labelCount` when the metric is not
    ///   multi-label and `labelCount` is not 1, when it is below 1, or when the metric already has another
    ///   number of labels.
    public func build(labelCount labels: Int) throws {
        if let labelCount {
            guard labelCount == labels else {
                throw KerasError.invalidArgument(
                    field: "labelCount", message: "\(name): the metric has \(labelCount) labels, got \(labels)")
            }
            return
        }
        guard labels >= 1 else {
            throw KerasError.invalidArgument(field: "labelCount", message: "\(name): must be at least 1, got \(labels)")
        }
        if let labelWeights, labelWeights.count != labels {
            throw KerasError.invalidArgument(
                field: "labelCount", message: "\(name): the metric has \(labelWeights.count) label weights, got \(labels) labels")
        }
        build(labels)
    }

    private func build(_ labels: Int) {
        labelCount = labels
        truePositives = Array(repeating: 0, count: numThresholds * labels)
        trueNegatives = truePositives
        falsePositives = truePositives
        falseNegatives = truePositives
    }

    /// The area (a scalar of ``dtype``; 0 before any batch).
    public func result() -> Tensor { scalarTensor(resultValue(), dtype) }

    /// Zeroes the counts (a multi-label metric keeps its number of labels).
    public func reset() {
        truePositives = truePositives.map { _ in 0 }
        trueNegatives = truePositives
        falsePositives = truePositives
        falseNegatives = truePositives
    }

    /// `truePositives + trueNegatives + falsePositives + falseNegatives` (empty for a multi-label metric that
    /// has not seen a batch and has no `numLabels`).
    public var stateValues: [Double] { truePositives + trueNegatives + falsePositives + falseNegatives }

    /// The number of labels a state of `count` numbers holds.
    private func labels(inStateOf count: Int, field: String = "state") throws -> Int {
        let per = 4 * numThresholds
        if let labelCount {
            guard count == per * labelCount else { throw stateCountError(name, expected: per * labelCount, got: count) }
            return labelCount
        }
        // A multi-label metric not built yet: any whole number of labels (or none).
        guard count % per == 0 else {
            throw KerasError.invalidArgument(
                field: field, message: "metric '\(name)' has a state of \(per) numbers per label, got \(count)")
        }
        if let labelWeights, count > 0, count / per != labelWeights.count {
            throw KerasError.invalidArgument(
                field: field, message: "metric '\(name)' has \(labelWeights.count) label weights, a state of \(count / per) labels")
        }
        return count / per
    }

    /// Sets `[truePositives..., trueNegatives..., falsePositives..., falseNegatives...]`; a multi-label metric
    /// without its number of labels takes it from the count (an empty state leaves it unbuilt).
    public func restoreState(_ values: [Double]) throws {
        let l = try labels(inStateOf: values.count)
        let math = DTypeArithmetic(dtype)
        let size = numThresholds * l
        if labelCount == nil, l > 0 { labelCount = l }
        truePositives = values[0..<size].map(math.round)
        trueNegatives = values[size..<(2 * size)].map(math.round)
        falsePositives = values[(2 * size)..<(3 * size)].map(math.round)
        falseNegatives = values[(3 * size)...].map(math.round)
    }

    /// `[area]` for the state `values` (`[0]` for an empty multi-label state).
    public func resultValues(forState values: [Double]) throws -> [Double] {
        let l = try labels(inStateOf: values.count)
        guard l > 0 else { return [0] }
        let math = DTypeArithmetic(dtype)
        let t = numThresholds, size = t * l
        let state = values.map(math.round)
        var areas: [Double] = []
        for label in 0..<l {
            func column(_ part: Int) -> [Double] { (0..<t).map { state[part * size + $0 * l + label] } }
            areas.append(area(tp: column(0), tn: column(1), fp: column(2), fn: column(3), math: math))
        }
        guard multiLabel else { return [areas[0]] }
        if let labelWeights {
            var weighted = 0.0, total = 0.0
            for (a, w) in zip(areas, labelWeights) {
                weighted = math.add(weighted, math.mul(a, w))
                total = math.add(total, w)
            }
            return [math.divNoNan(weighted, total)]
        }
        return [math.div(areas.reduce(0, math.add), math.round(Double(l)))]
    }

    /// One curve's area from its counts per threshold.
    private func area(tp: [Double], tn: [Double], fp: [Double], fn: [Double], math: DTypeArithmetic) -> Double {
        let t = tp.count
        var sum = 0.0
        if curve == .pr, summationMethod == .interpolation {
            let p = (0..<t).map { math.add(tp[$0], fp[$0]) }
            for i in 0..<(t - 1) {
                let dtp = math.sub(tp[i], tp[i + 1])
                let dp = math.sub(p[i], p[i + 1])
                let slope = math.divNoNan(dtp, max(dp, 0))
                let intercept = math.sub(tp[i + 1], math.mul(slope, p[i + 1]))
                let ratio = p[i] > 0 && p[i + 1] > 0 ? math.divNoNan(p[i], max(p[i + 1], 0)) : 1
                let numerator = math.mul(slope, math.add(dtp, math.mul(intercept, math.log(ratio))))
                sum = math.add(sum, math.divNoNan(numerator, max(math.add(tp[i + 1], fn[i + 1]), 0)))
            }
            return sum
        }
        let recall = (0..<t).map { math.divNoNan(tp[$0], math.add(tp[$0], fn[$0])) }
        let x: [Double], y: [Double]
        switch curve {
        case .roc:
            x = (0..<t).map { math.divNoNan(fp[$0], math.add(fp[$0], tn[$0])) }
            y = recall
        case .pr:
            x = recall
            y = (0..<t).map { math.divNoNan(tp[$0], math.add(tp[$0], fp[$0])) }
        case .prGain:
            var rg = [Double](), pg = [Double]()
            for i in 0..<t {
                let scaling = math.divNoNan(math.add(tp[i], fn[i]), math.add(fp[i], tn[i]))
                var r = math.sub(1, math.mul(scaling, math.divNoNan(fn[i], tp[i])))
                var q = math.sub(1, math.mul(scaling, math.divNoNan(fp[i], tp[i])))
                if tp[i] == 0 { r = 0; q = 1 }
                r = max(r, 0)
                rg.append(r)
                pg.append(q)
            }
            x = rg
            y = pg
        }
        for i in 0..<(t - 1) {
            let height: Double
            switch summationMethod {
            case .interpolation: height = math.div(math.add(y[i], y[i + 1]), 2)
            case .minoring: height = min(y[i], y[i + 1])
            case .majoring: height = max(y[i], y[i + 1])
            }
            sum = math.add(sum, math.mul(math.sub(x[i], x[i + 1]), height))
        }
        return sum
    }
}
