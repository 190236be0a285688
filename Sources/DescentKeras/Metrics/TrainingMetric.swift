import DescentTensor

/// A metric that `fit` and `evaluate` can track: it is updated from labels and predictions, and its whole
/// accumulated state is a list of numbers that replicas can add up and backups can store.
///
/// The contract, which every conforming metric keeps:
/// - ``stateValues`` is the entire state (Keras' metric variables, flattened row-major and concatenated in
///   the order Keras creates them), each number exactly representable in the metric's ``Metric/dtype``.
/// - The state is **additive**: for two metrics `a` and `b` of one configuration, the element-wise sum of
///   `a.stateValues` and `b.stateValues`, given to ``resultValues(forState:)`` (or to a third metric with
///   ``restoreState(_:)``), gives the result of one metric updated with all of `a`'s and `b`'s batches (up to
///   the rounding of the sums: exact when the summed numbers are integers, as unweighted counts are). So
///   replicas may sum their states with `Strategy.reduce(.sum, ...)` and compute the result from the sum.
/// - ``resultValues(forState:)`` is a pure function of the state: ``Metric/result()`` is
///   `resultValues(forState: stateValues)` as a tensor.
///
/// ``MeanMetricWrapper`` (state `[total, count]`), ``Precision`` (`[truePositives..., falsePositives...]`),
/// ``Recall`` (`[truePositives..., falseNegatives...]`) and ``AUC`` (`[truePositives..., trueNegatives...,
/// falsePositives..., falseNegatives...]`) conform.
public protocol TrainingMetric: Metric, MetricIdentifier {
    /// Accumulates one batch (Keras' `update_state(y_true, y_pred, sample_weight)`).
    /// - Throws: an error naming the metric and the argument when the shapes do not fit together, or a
    ///   prediction does not fit the metric's configuration (`topK`, `classId`, the labels of a
    ///   multi-label ``AUC``). A failed update leaves the state unchanged.
    func update(yTrue: Tensor, yPred: Tensor, sampleWeight: Tensor?) throws

    /// The whole accumulated state as numbers (see ``TrainingMetric`` for the layout and the sum rule).
    var stateValues: [Double] { get }

    /// Replaces the state by `values` (a ``stateValues`` saved earlier, or a sum of several), rounded to
    /// ``Metric/dtype``.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the metric when `values` has the wrong
    ///   count; the state is then unchanged.
    func restoreState(_ values: [Double]) throws

    /// The result a metric holding the state `values` reports, without changing this metric: one number,
    /// or one per threshold for a ``Precision``/``Recall`` with several thresholds. Computed in
    /// ``Metric/dtype``'s precision, exactly as ``Metric/result()``.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the metric when `values` has the wrong
    ///   count.
    func resultValues(forState values: [Double]) throws -> [Double]
}

extension TrainingMetric {
    /// ``update(yTrue:yPred:sampleWeight:)`` without sample weights.
    public func update(yTrue: Tensor, yPred: Tensor) throws {
        try update(yTrue: yTrue, yPred: yPred, sampleWeight: nil)
    }

    /// The current result as numbers: ``resultValues(forState:)`` of ``stateValues``.
    public var resultValues: [Double] {
        // Cannot fail: the metric's own state has its own layout.
        (try? resultValues(forState: stateValues)) ?? []
    }

    /// The current result as one number (what `fit` logs): the only value, or for a metric with several
    /// thresholds the value at the first threshold (use ``resultValues`` for all of them).
    public func resultValue() -> Double { resultValues.first ?? 0 }

    /// ``resultValues(forState:)`` as one number, as ``resultValue()`` picks it.
    public func resultValue(forState values: [Double]) throws -> Double {
        try resultValues(forState: values).first ?? 0
    }
}

/// The element-wise sum of equally long metric states (what replicas' `Strategy.reduce(.sum, ...)` gives),
/// in the order given.
/// - Throws: ``KerasError/invalidArgument(field:message:)`` when the states have different lengths.
public func sumMetricStates(_ states: [[Double]]) throws -> [Double] {
    guard var sum = states.first else { return [] }
    for s in states.dropFirst() {
        guard s.count == sum.count else {
            throw KerasError.invalidArgument(
                field: "states", message: "metric states to sum must have one length, got \(sum.count) and \(s.count)")
        }
        for i in sum.indices { sum[i] += s[i] }
    }
    return sum
}

// MARK: - Mean and MeanMetricWrapper

extension Mean {
    /// `[total, count]`.
    public var stateValues: [Double] {
        // Cannot fail: both are scalars.
        [(try? total.item()) ?? 0, (try? count.item()) ?? 0]
    }

    /// Sets `[total, count]`.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the metric unless `values` holds two
    ///   numbers.
    public func restoreState(_ values: [Double]) throws {
        guard values.count == 2 else { throw stateCountError(name, expected: 2, got: values.count) }
        restoreState(total: values[0], count: values[1])
    }

    /// `[total / count]` in ``dtype`` (0 when `count` is 0), as ``result()``.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` unless `values` holds two numbers.
    public func resultValues(forState values: [Double]) throws -> [Double] {
        guard values.count == 2 else { throw stateCountError(name, expected: 2, got: values.count) }
        let total = DTypeArithmetic(dtype).round(values[0]), count = DTypeArithmetic(dtype).round(values[1])
        return [count == 0 ? 0 : DTypeArithmetic(dtype).div(total, count)]
    }
}

extension MeanMetricWrapper: TrainingMetric {}

/// The error for a state of the wrong length.
func stateCountError(_ metric: String, expected: Int, got: Int) -> KerasError {
    .invalidArgument(field: "state", message: "metric '\(metric)' has a state of \(expected) numbers, got \(got)")
}

/// Arithmetic in a dtype's precision on `Double`s: every operation's result is rounded to `Float` for
/// `float32`. (Rounding a `Double` result of `+ - * /` on two `Float`s gives exactly the `Float`
/// operation's result, since 53 ≥ 2·24 + 2 bits.)
struct DTypeArithmetic {
    let isFloat32: Bool
    init(_ dtype: DType) { isFloat32 = dtype != .float64 }

    @inline(__always) func round(_ x: Double) -> Double { isFloat32 ? Double(Float(x)) : x }
    @inline(__always) func add(_ a: Double, _ b: Double) -> Double { round(a + b) }
    @inline(__always) func sub(_ a: Double, _ b: Double) -> Double { round(a - b) }
    @inline(__always) func mul(_ a: Double, _ b: Double) -> Double { round(a * b) }
    @inline(__always) func div(_ a: Double, _ b: Double) -> Double { round(a / b) }
    /// TensorFlow's `divide_no_nan`: 0 when `b` is 0, else `a / b`.
    @inline(__always) func divNoNan(_ a: Double, _ b: Double) -> Double { b == 0 ? 0 : round(a / b) }
    /// The natural logarithm (in `Float` for float32: rounded from the correctly rounded `Double` one).
    @inline(__always) func log(_ x: Double) -> Double { round(_log(x)) }
}

@inline(__always) private func _log(_ x: Double) -> Double {
    #if canImport(Glibc)
    return Glibc.log(x)
    #else
    return Foundation.log(x)
    #endif
}

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif
