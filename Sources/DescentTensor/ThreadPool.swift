import CDescentBLAS
import CDescentMath
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The one parallel runtime of Descent's kernels.
///
/// Large element-wise kernels, reductions and the optimizers' multi-tensor update split their work into
/// at most ``threadCount`` chunks and run them with `DispatchQueue.concurrentPerform`, which executes on
/// Dispatch's worker threads (one per core) and costs about 0.1 µs per call. Small tensors run inline on
/// the calling thread.
///
/// - `threadCount` defaults to the number of active cores, or to the `DESCENT_NUM_THREADS`
///   environment variable when set; ``setThreadCount(_:)`` changes it at run time.
/// - Every chunk runs in the calling thread's floating-point mode (denormal flushing, see
///   ``DenormalFlushing``), so results never depend on which thread ran a chunk.
/// - **OpenBLAS policy.** Matrix multiplies are always called from the caller's thread, never from inside a
///   parallel region of ours, so the two pools never run at once. OpenBLAS gets the same thread count
///   (`openblas_set_num_threads`), set whenever ours changes, except while a narrow product runs on one
///   thread (`BLASThreading`); see ARCHITECTURE.md.
public enum ThreadPool {
    private static let configured = Atomic<Int>(0)

    /// The least work, in element-wise additions' worth, one chunk of a tensor kernel gets: a kernel over
    /// fewer than twice this many runs on the calling thread. Element-wise kernels, reductions along
    /// axes, convolution's im2col and col2im, pooling and normalization size their chunks from it.
    ///
    /// Handing a chunk to another core costs more than starting it: the worker wakes (5–9 µs in this
    /// project's 2-vCPU KVM guests) and reads its inputs from the L3 cache or memory, because the calling
    /// core has just written them into its own L2. Measured on the digits CNN step (`descent bench train
    /// --model cnn`, 2 threads, 8 alternating runs; its largest activations are 65,536 floats): with 2^15
    /// the median fit step was 1.77 ms, with 2^17 1.38 ms, with 2^18 1.39 ms; the large MLP's step
    /// (256 × 1024 activations, still split) did not change. The optimizers' multi-tensor update keeps
    /// its own grain (2^15, `Optimizer`'s dense jobs), which the optimizer benchmarks were measured with.
    public static var kernelGrain: Int { scopedKernelGrain ?? defaultKernelGrain }

    /// ``kernelGrain`` outside ``withKernelGrain(_:_:)``.
    public static let defaultKernelGrain = 1 << 17

    /// A kernel grain for the current task only (``withKernelGrain(_:_:)``).
    @TaskLocal static var scopedKernelGrain: Int?

    /// Runs `body` with ``kernelGrain`` set to `grain` (at least 1) in the current task only: what a test
    /// uses to run a small tensor through the kernels' parallel path. Results never depend on it.
    public static func withKernelGrain<R>(_ grain: Int, _ body: () throws -> R) rethrows -> R {
        try $scopedKernelGrain.withValue(max(1, grain), operation: body)
    }

    /// A thread count for the current task only (``withThreadCount(_:_:)``).
    @TaskLocal static var scopedThreadCount: Int?

    /// The number of chunks a large kernel is split into.
    public static var threadCount: Int {
        if let scoped = scopedThreadCount { return scoped }
        let n = configured.load(ordering: .relaxed)
        if n > 0 { return n }
        return initialize()
    }

    /// Sets the number of threads for Descent's kernels and OpenBLAS (at least 1).
    public static func setThreadCount(_ count: Int) {
        let n = max(1, count)
        configured.store(n, ordering: .relaxed)
        OpenBLASForkGate.call { openblas_set_num_threads(Int32(n)) }  // never during a fork
    }

    /// Runs `body` with Descent's kernels split into `count` chunks (at least 1) in the current task only,
    /// leaving the process-wide ``threadCount`` (and OpenBLAS's) to the other tasks: what a test comparing
    /// thread counts uses while other tests run beside it.
    public static func withThreadCount<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        try $scopedThreadCount.withValue(max(1, count), operation: body)
    }

    private static func initialize() -> Int {
        var n = ProcessInfoLite.activeProcessorCount
        if let env = getenv("DESCENT_NUM_THREADS"), let value = Int(String(cString: env)), value > 0 {
            n = value
        }
        setThreadCount(n)
        return n
    }

    /// Runs `body` over `0..<count` split into contiguous ranges: inline when `count < grain * 2` or one
    /// thread is configured, otherwise in up to ``threadCount`` parallel chunks whose bounds are
    /// multiples of `alignment`.
    @inlinable
    public static func parallelFor(
        _ count: Int, grain: Int = 1 << 15, alignment: Int = 16, _ body: (Range<Int>) -> Void
    ) {
        let threads = threadCount
        if threads <= 1 || count < grain * 2 {
            if count > 0 { body(0..<count) }
            return
        }
        let chunks = min(threads, count / grain)
        let chunkSize = ((count + chunks - 1) / chunks + alignment - 1) / alignment * alignment
        let mode = descent_fp_state()
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let start = c * chunkSize
                let end = min(count, start + chunkSize)
                if start < end { DenormalFlushing.run(inMode: mode) { box.value(start..<end) } }
            }
        }
    }

    /// Runs `body(i)` for `i` in `0..<count` in parallel, each call on one thread with everything inside it
    /// single-threaded: Descent's kernels (``withThreadCount(_:_:)`` 1) and OpenBLAS (one thread while the
    /// region runs, also for products started elsewhere meanwhile). For many independent pieces of
    /// mid-size work, each too small to split well (Muon's Newton–Schulz products on several matrices:
    /// OpenBLAS' two threads spend a quarter of a 256×256 product synchronising). The indices are handed
    /// out in order, so list the largest pieces first. Every index runs even when some throw; the error of
    /// the lowest index that threw is rethrown. Inline, in order, with one thread or one index.
    public static func forEachIndependently(_ count: Int, _ body: (Int) throws -> Void) throws {
        if count <= 1 || threadCount <= 1 {
            for i in 0..<count { try body(i) }
            return
        }
        let errors = SanitizerVisibleMutex([Int: any Error]())
        try withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            BLASThreading.withOneThread {
                forEach(count) { i in
                    do { try withThreadCount(1) { try box.value(i) } } catch { errors.withLock { $0[i] = error } }
                }
            }
            if let first = errors.withLock({ $0.min(by: { $0.key < $1.key }) }) { throw first.value }
        }
    }

    /// Runs `body(i)` for `i` in `0..<count` in parallel (one task per index), inline if `count == 1`.
    @inlinable
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 || threadCount <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        let mode = descent_fp_state()
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: count) { i in DenormalFlushing.run(inMode: mode) { box.value(i) } }
        }
    }

}

/// Wraps a value to cross into a parallel region.
///
/// `@unchecked Sendable` invariant: used only by ``ThreadPool`` for closures and pointers whose
/// concurrent use touches disjoint memory (each chunk writes its own range) and which outlive the region.
@usableFromInline
struct UncheckedSendable<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(_ value: T) { self.value = value }
}

enum ProcessInfoLite {
    static var activeProcessorCount: Int {
        let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return n > 0 ? Int(n) : 1
    }
}
