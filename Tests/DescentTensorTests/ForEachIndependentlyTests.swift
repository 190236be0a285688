import Synchronization
import Testing
@testable import DescentTensor

// ThreadPool.forEachIndependently: every index runs once, with Descent's kernels single-threaded inside;
// the lowest failing index's error is rethrown after all have run; products inside are one-thread products.
@Suite struct ForEachIndependentlyTests {
    struct Failure: Error, Equatable { let index: Int }

    @Test func everyIndexRunsOnceOnOneThreadEach() throws {
        let seen = Mutex([Int]())
        let inner = Mutex([Int]())
        try ThreadPool.withThreadCount(2) {
            try ThreadPool.forEachIndependently(9) { i in
                seen.withLock { $0.append(i) }
                inner.withLock { $0.append(ThreadPool.threadCount) }
            }
        }
        #expect(seen.withLock { $0.sorted() } == Array(0..<9))
        #expect(inner.withLock { $0 } == Array(repeating: 1, count: 9))
        #expect(ThreadPool.withThreadCount(2) { ThreadPool.threadCount } == 2)
    }

    @Test func theLowestFailingIndexIsRethrownAfterAllRan() throws {
        let ran = Mutex(0)
        do {
            try ThreadPool.withThreadCount(2) {
                try ThreadPool.forEachIndependently(8) { i in
                    ran.withLock { $0 += 1 }
                    if i == 5 || i == 2 || i == 7 { throw Failure(index: i) }
                }
            }
            Issue.record("expected an error")
        } catch let error as Failure {
            #expect(error == Failure(index: 2))
        }
        #expect(ran.withLock { $0 } == 8)
    }

    @Test func productsInsideMatchProductsOutside() throws {
        var rng = SeededGenerator(seed: 3)
        let a = try (0..<4).map { _ in try Tensor.randomUniform(shape: [200, 300], min: -1, max: 1, using: &rng) }
        let b = try Tensor.randomUniform(shape: [300, 250], min: -1, max: 1, using: &rng)
        // One OpenBLAS thread outside too: OpenBLAS' AVX2 kernels give a product split across threads
        // other last bits (see BLASThreading).
        let outside = try BLASThreading.withOneThread { try a.map { try $0.matmul(b).doubles } }
        let inside = Mutex([[Double]](repeating: [], count: 4))
        try ThreadPool.withThreadCount(2) {
            try ThreadPool.forEachIndependently(4) { i in
                let product = try a[i].matmul(b).doubles
                inside.withLock { $0[i] = product }
            }
        }
        #expect(inside.withLock { $0 } == outside)
    }
}
