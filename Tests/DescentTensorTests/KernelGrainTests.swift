import Synchronization
import Testing
@testable import DescentTensor

// ThreadPool.kernelGrain: a tensor kernel splits only when each chunk gets at least the grain's work;
// withKernelGrain changes it for the current task only; results do not depend on it.
@Suite struct KernelGrainTests {
    /// The ranges `parallelFor` hands out for `count` elements at the kernels' grain.
    func ranges(_ count: Int) -> [Range<Int>] {
        let seen = Mutex([Range<Int>]())
        ThreadPool.withThreadCount(2) {
            ThreadPool.parallelFor(count, grain: ThreadPool.kernelGrain) { r in seen.withLock { $0.append(r) } }
        }
        return seen.withLock { $0.sorted { $0.lowerBound < $1.lowerBound } }
    }

    @Test func aKernelSplitsAtTwiceTheGrain() {
        #expect(ThreadPool.kernelGrain == ThreadPool.defaultKernelGrain)
        let grain = ThreadPool.kernelGrain
        #expect(ranges(2 * grain - 1) == [0..<(2 * grain - 1)])
        #expect(ranges(2 * grain) == [0..<grain, grain..<(2 * grain)])
        ThreadPool.withKernelGrain(64) {
            #expect(ThreadPool.kernelGrain == 64)
            #expect(ranges(128) == [0..<64, 64..<128])
            ThreadPool.withKernelGrain(0) { #expect(ThreadPool.kernelGrain == 1) }
        }
        #expect(ThreadPool.kernelGrain == grain)
    }

    /// Element-wise and axis kernels give the same bits inline and split.
    @Test func resultsDoNotDependOnTheGrain() throws {
        let x = try Tensor.randomNormal(shape: [300, 97], seed: 3)
        func run() throws -> [[Float]] {
            [try (x * 3 + 1).relu().scalars(as: Float.self), try x.exp().scalars(as: Float.self),
             try x.sum(axes: [0]).scalars(as: Float.self), try x.sum(axes: [1]).scalars(as: Float.self)]
        }
        let inline = try ThreadPool.withThreadCount(2) { try run() }
        let split = try ThreadPool.withThreadCount(2) { try ThreadPool.withKernelGrain(1 << 8) { try run() } }
        #expect(inline == split)
    }
}
