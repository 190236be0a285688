import Foundation
import DescentTensor

/// How values from every replica combine (TensorFlow's `tf.distribute.ReduceOp`).
public enum ReduceOp: String, Sendable {
    /// The sum over replicas.
    case sum = "SUM"
    /// The sum divided by the number of replicas.
    case mean = "MEAN"
}

/// An error from a distribution strategy: a bad argument, or a failed or inconsistent collective.
public enum DistributionError: Error, CustomStringConvertible, Sendable {
    /// A caller's argument that cannot work (the message names it and what was expected).
    case invalidArgument(String)
    /// The ranks disagree (e.g. different variable shapes) or the communication library failed.
    case communication(String)

    public var description: String {
        switch self {
        case .invalidArgument(let m): return m
        case .communication(let m): return m
        }
    }
}

/// The collective operations a strategy is built on: one replica per process, `size` processes.
///
/// Every rank must call the same collectives, with the same sizes, in the same order (MPI's rule);
/// ``Strategy`` guarantees that by issuing all of them from one ``CollectiveQueue``. Implementations:
/// ``LocalCommunicator`` (one process, no library) and `MPICommunicator` (module `DescentMPI`, Open MPI).
/// Methods block until the collective is complete on this rank. Buffers are raw memory; `count`s are in
/// elements of `dtype` (float32 or float64 for sums).
public protocol Communicator: AnyObject, Sendable {
    /// This process's index, `0..<size`.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Sums `count` elements read from `send` on every rank into `receive` on every rank. Every rank
    /// receives the **same bytes** (a fixed reduction order). `send` may equal `receive` (in place).
    func allReduceSum(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int, dtype: DType)
    /// Sums `counts.reduce(0, +)` elements from every rank; rank `r` receives the `counts[r]` elements
    /// that start at `counts[0..<r].sum` (MPI's reduce-scatter).
    func reduceScatterSum(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, counts: [Int], dtype: DType)
    /// Concatenates, in rank order, `counts[r]` bytes from each rank `r` into `receive` on every rank.
    func allGather(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, byteCounts counts: [Int])
    /// Each rank's one integer, gathered in rank order.
    func allGather(_ value: Int) -> [Int]
    /// Copies `byteCount` bytes of `root`'s `buffer` into every rank's `buffer`.
    func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int)
    /// The element-wise maximum (`max == true`) or sum over ranks of small vectors (metrics, flags).
    func allReduce(_ values: [Double], max: Bool) -> [Double]
    /// Waits until every rank has called it.
    func barrier()
    /// Ends every process of the job with `code` (MPI_Abort): an error on one rank must not leave the
    /// others waiting in a collective.
    func abort(code: Int32) -> Never
}

extension Communicator {
    /// Each rank's bytes, gathered in rank order (two collectives: the sizes, then the bytes).
    public func allGather(bytes: [UInt8]) -> [[UInt8]] {
        let counts = allGather(bytes.count)
        var all = [UInt8](repeating: 0, count: counts.reduce(0, +))
        bytes.withUnsafeBytes { send in
            all.withUnsafeMutableBytes { receive in
                allGather(send.baseAddress ?? UnsafeRawPointer(receive.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!),
                          into: receive.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!, byteCounts: counts)
            }
        }
        var result: [[UInt8]] = [], start = 0
        for c in counts {
            result.append(Array(all[start..<(start + c)]))
            start += c
        }
        return result
    }
}

/// The communicator of a single process: every collective is a copy (or nothing).
public final class LocalCommunicator: Communicator {
    /// Creates the one-process communicator.
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int, dtype: DType) {
        if send != UnsafeRawPointer(receive) { receive.copyMemory(from: send, byteCount: count * dtype.byteSize) }
    }
    public func reduceScatterSum(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, counts: [Int], dtype: DType) {
        allReduceSum(send, into: receive, count: counts[0], dtype: dtype)
    }
    public func allGather(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, byteCounts counts: [Int]) {
        if send != UnsafeRawPointer(receive) { receive.copyMemory(from: send, byteCount: counts[0]) }
    }
    public func allGather(_ value: Int) -> [Int] { [value] }
    public func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) {}
    public func allReduce(_ values: [Double], max: Bool) -> [Double] { values }
    public func barrier() {}
    public func abort(code: Int32) -> Never { exit(code) }
}
