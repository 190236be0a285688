import CDescentBLAS
import Synchronization

/// When a matrix product runs on one OpenBLAS thread instead of ``ThreadPool/threadCount``.
///
/// OpenBLAS 0.3.21 threads every product above 262,144 multiply-adds, but it splits a product with few
/// columns or a short inner dimension badly: measured here with 2 threads against 1 (`descent bench
/// matmul`), a 256×1024·1024×10 product (a classifier's logits) took 322 µs against 112, its gradient
/// products 345 against 163 and 330 against 103, and 1024×1024·1024×32 took 1,317 against 760 µs.
/// Products with at most ``narrow`` columns or inner dimension therefore run on one thread.
///
/// OpenBLAS' thread count is one process-wide setting (read once at the start of each call): while a
/// narrow product runs, a wide one started on another thread also gets one thread (slower, and see below).
/// A count of narrow products in progress makes the first set one thread and the last restore
/// ``ThreadPool/threadCount`` as it is then.
///
/// **A product's last bits can depend on OpenBLAS' thread count.** Its threads split the rows and columns
/// of the result, never the inner dimension, but OpenBLAS' AVX2 kernels (Haswell, Zen) compute the rows
/// left over after the last whole 16-row panel with edge kernels that add the inner products in another
/// order, and a different split leaves different rows over: a 200×300·300×250 product on 2 threads differs
/// from the same product on 1 thread in the last bits of some elements (measured on an AMD EPYC with
/// OpenBLAS 0.3.21's Zen kernels; its SandyBridge and SkylakeX kernels gave the same bits). A run is still
/// reproducible at a fixed thread count.
enum BLASThreading {
    private static let narrowCalls = SanitizerVisibleMutex(0)

    /// Products whose `n` or `k` is at most this run on one thread.
    static let narrow = 32
    /// OpenBLAS runs products of at most this many multiply-adds on one thread anyway.
    static let openBLASThreshold = 65_536 * 4

    @inline(__always)
    static func run(m: Int, n: Int, k: Int, _ call: () -> Void) {
        let threads = ThreadPool.threadCount
        // The work in `Double`: the three sizes are checked one by one, their product is not.
        guard threads > 1, n <= narrow || k <= narrow, Double(m) * Double(n) * Double(k) > Double(openBLASThreshold)
        else { return call() }
        withOneThread(call)
    }

    /// Runs `body` with OpenBLAS on one thread (counted with the narrow products: the last region to end
    /// restores ``ThreadPool/threadCount``). Products inside it have the values of a one-thread run.
    static func withOneThread<R>(_ body: () throws -> R) rethrows -> R {
        narrowCalls.withLock { count in
            if count == 0 { OpenBLASForkGate.call { openblas_set_num_threads(1) } }
            count += 1
        }
        defer {
            narrowCalls.withLock { count in
                count -= 1
                if count == 0 {
                    let threads = Int32(ThreadPool.threadCount)  // read outside the gate: it may set OpenBLAS's count itself
                    OpenBLASForkGate.call { openblas_set_num_threads(threads) }
                }
            }
        }
        return try body()
    }
}
