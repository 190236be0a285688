import Foundation
import Testing

@testable import DescentTensorBoard

@Suite struct HistogramTests {
    /// tensorboard 2.21's `_buckets` of float32 data (Tests/Fixtures/tensorboard/tf_keras_reference.json,
    /// `histograms`): Descent's buckets are the same doubles, bit for bit.
    @Test func matchesTensorBoardsBuckets() throws {
        let cases = try TensorBoardFixtures.reference().histograms
        #expect(cases.count == 12)
        for (name, c) in cases.sorted(by: { $0.key < $1.key }) {
            // The data are float32 values, as weights are.
            #expect(c.data.allSatisfy { Double(Float($0)) == $0 }, "\(name)")
            let ours = try HistogramBuckets.buckets(c.data, bucketCount: c.buckets)
            #expect(ours.map { [$0.left, $0.right, $0.count] } == c.histogram, "\(name)")
        }
    }

    @Test func edgeCases() throws {
        #expect(try HistogramBuckets.buckets([Double](), bucketCount: 3) == Array(repeating: HistogramBucket(left: 0, right: 0, count: 0), count: 3))
        #expect(try HistogramBuckets.buckets([1, 2], bucketCount: 0).isEmpty)
        #expect(try HistogramBuckets.buckets([2, 2], bucketCount: 2) == [HistogramBucket(left: 2, right: 2, count: 0), HistogramBucket(left: 2, right: 2, count: 2)])
        // Non-finite values are not counted.
        let b = try HistogramBuckets.buckets([0, 1, .nan, .infinity], bucketCount: 2)
        #expect(b.map(\.count) == [1, 1])
        #expect(b.last?.right == 1)
        #expect(try HistogramBuckets.buckets([0, 1]).count == 30)
        let error = #expect(throws: TensorBoardError.self) { try HistogramBuckets.buckets([1], bucketCount: -2) }
        #expect(error.map { "\($0)" }?.contains("bucketCount") == true)
    }
}
