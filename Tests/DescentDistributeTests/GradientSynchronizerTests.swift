import DescentAutodiff
@testable import DescentDistribute
import DescentTensor
import Foundation
import Testing

/// A two-rank communicator inside one process whose other rank always holds the same values as this
/// one: every sum is twice the input, every all-gather repeats it. It checks the synchronizer's
/// bookkeeping (packing, offsets, pieces, dtypes, sparse rows) without MPI.
final class MirrorCommunicator: Communicator, @unchecked Sendable {
    // @unchecked Sendable invariant: `calls` is only touched on the strategy's serial collective queue
    // and read after `waitForSubmitted()`.
    var calls: [Int] = []
    var rank: Int { 0 }
    var size: Int { 2 }
    func allReduceSum(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int, dtype: DType) {
        calls.append(count)
        switch dtype {
        case .float32:
            for i in 0..<count { receive.storeBytes(of: 2 * send.load(fromByteOffset: i * 4, as: Float.self), toByteOffset: i * 4, as: Float.self) }
        case .float64:
            for i in 0..<count { receive.storeBytes(of: 2 * send.load(fromByteOffset: i * 8, as: Double.self), toByteOffset: i * 8, as: Double.self) }
        case .int64: fatalError("not a float")
        }
    }
    func reduceScatterSum(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, counts: [Int], dtype: DType) {
        allReduceSum(send, into: receive, count: counts[0], dtype: dtype)
    }
    func allGather(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, byteCounts counts: [Int]) {
        receive.copyMemory(from: send, byteCount: counts[0])
        (receive + counts[0]).copyMemory(from: send, byteCount: counts[1])
    }
    func allGather(_ value: Int) -> [Int] { [value, value] }
    func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) {}
    func allReduce(_ values: [Double], max: Bool) -> [Double] { max ? values : values.map { 2 * $0 } }
    func barrier() {}
    func abort(code: Int32) -> Never { exit(code) }
}

@Suite struct GradientSynchronizerTests {
    @Test(arguments: [true, false])
    func everyGradientIsSummedWhateverItsBucket(_ overlap: Bool) throws {
        let communicator = MirrorCommunicator()
        let strategy = Strategy(communicator: communicator)
        strategy.gradientBucketByteCount = 4096  // 1024 floats: small, packed, exact and split gradients
        strategy.overlapsGradientSummation = overlap
        let shapes: [[Int]] = [[3, 5], [1024], [2, 1500], [7], [300, 4], [1]]
        let variables = try shapes.enumerated().map { i, s in Variable(try Tensor.zeros(shape: s, dtype: i == 3 ? .float64 : .float32), name: "v\(i)") }
        var grads: [Gradient?] = try shapes.enumerated().map { i, s in
            .dense(try Tensor.randomNormal(shape: s, dtype: i == 3 ? .float64 : .float32, seed: UInt64(i)))
        }
        let embedding = Variable(try Tensor.zeros(shape: [10, 3]), name: "table")
        let rows = try IndexedSlices(values: try Tensor.randomNormal(shape: [2, 3], seed: 9), indices: [4, 1], denseShape: [10, 3])
        grads.append(.sparse(rows))
        grads.append(nil)  // unconnected
        let all = variables + [embedding, Variable(Tensor([1] as [Float]), name: "unused")]
        let sync = try GradientSynchronizer(strategy: strategy, variables: all)
        // Reported out of order (as a backward pass does); the rest at finish.
        for i in [4, 2, 0, 6] { try sync.gradientReady(i, grads[i]!) }
        let summed = try sync.finish(grads)
        for i in shapes.indices {
            let expected = try grads[i]!.denseValue.doubles.map { 2 * $0 }
            #expect(try summed[i]!.denseValue.doubles == expected, "gradient \(i) of shape \(shapes[i])")
            #expect(try summed[i]!.denseValue.dtype == grads[i]!.denseValue.dtype)
        }
        let gathered = try #require(summed[6]?.indexedSlices)
        #expect(gathered.indices == [4, 1, 4, 1])
        #expect(gathered.values.doubles == rows.values.doubles + rows.values.doubles)
        #expect(summed[7] == nil)
        // No MPI call of more than a bucket; the 3000-float gradient went in 3 equal pieces.
        #expect(communicator.calls.allSatisfy { $0 <= 1024 }, "\(communicator.calls)")
        #expect(communicator.calls.filter { $0 == 1000 }.count == 3, "\(communicator.calls)")
    }
}
