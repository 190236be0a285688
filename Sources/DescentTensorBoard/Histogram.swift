// TensorBoard's histogram summaries: the buckets tensorboard 2.21's `tf.summary.histogram` writes.

/// One histogram bucket: `[left, right)` (the last one closed) and how many values fell in it.
public struct HistogramBucket: Sendable, Equatable {
    public var left: Double
    public var right: Double
    public var count: Double

    public init(left: Double, right: Double, count: Double) {
        self.left = left
        self.right = right
        self.count = count
    }
}

/// The buckets of tensorboard 2.21's histogram summary (`tensorboard.plugins.histogram.summary_v2.
/// _buckets`, what `tf.summary.histogram` and Keras' `TensorBoard(histogram_freq:)` write), in `Double`.
public enum HistogramBuckets {
    /// tensorboard's default bucket count.
    public static let defaultBucketCount = 30

    /// The `bucketCount` buckets of `values` (all of them, in any order; the non-finite ones are left
    /// out, see below):
    ///
    /// - no values: `bucketCount` buckets `(0, 0, 0)`; `bucketCount == 0`: no bucket.
    /// - one distinct value `v`: every bucket is `(v, v, 0)` except the last, `(v, v, n)`.
    /// - otherwise, with `lo = min`, `hi = max`, `width = (hi − lo) / bucketCount`: value `x` counts in
    ///   bucket `min(⌊(x − lo) / width⌋, bucketCount − 1)`; the edges are TensorFlow's
    ///   `linspace(lo, hi, bucketCount + 1)`, `e[i] = lo + i·((hi − lo) / bucketCount)`, with
    ///   `e[bucketCount] = hi` exactly; bucket `i` is `(e[i], e[i+1], count)`.
    ///
    /// NaN and ±infinity make tensorboard's buckets meaningless; they are not counted here.
    /// - Throws: ``TensorBoardError/invalidArgument(field:message:)`` for a negative `bucketCount`.
    public static func buckets(_ values: some Collection<Double>, bucketCount: Int = defaultBucketCount) throws -> [HistogramBucket] {
        guard bucketCount >= 0 else {
            throw TensorBoardError.invalidArgument(field: "bucketCount", message: "must be >= 0, got \(bucketCount)")
        }
        if bucketCount == 0 { return [] }
        var lo = Double.infinity, hi = -Double.infinity, n = 0
        for x in values where x.isFinite {
            lo = Swift.min(lo, x)
            hi = Swift.max(hi, x)
            n += 1
        }
        if n == 0 { return Array(repeating: HistogramBucket(left: 0, right: 0, count: 0), count: bucketCount) }
        let range = hi - lo
        if range == 0 {
            var result = Array(repeating: HistogramBucket(left: hi, right: hi, count: 0), count: bucketCount)
            result[bucketCount - 1].count = Double(n)
            return result
        }
        let width = range / Double(bucketCount)
        var counts = [Double](repeating: 0, count: bucketCount)
        for x in values where x.isFinite {
            // (x − lo) / width is in [0, bucketCount·(1 + ε)]: the conversion cannot overflow.
            let index = Swift.min(Int(((x - lo) / width).rounded(.down)), bucketCount - 1)
            counts[index] += 1
        }
        // TensorFlow's LinSpace: start + i·step for i < num − 1, step = (stop − start) / (num − 1).
        var edges = (0..<bucketCount).map { lo + Double($0) * width }
        edges.append(hi)
        return (0..<bucketCount).map { HistogramBucket(left: edges[$0], right: edges[$0 + 1], count: counts[$0]) }
    }
}
