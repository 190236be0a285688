import CDescentBLAS

#if canImport(Glibc)
import Glibc
#endif

/// Keeps OpenBLAS calls and Descent's own `fork()` apart, so that a fork never happens while an OpenBLAS
/// product runs.
///
/// **Why.** `fork()` runs the process's `pthread_atfork` handlers. OpenBLAS (pthread build) registers
/// `blas_thread_shutdown_` as a prepare handler: it writes a stop request into each worker's queue slot,
/// then `pthread_join`s the workers, with no regard for a product running on another thread (OpenBLAS
/// 0.3.21, `driver/others/blas_server.c`). A worker busy with its share of the product overwrites the slot
/// with "idle" when it finishes, never sees the request, and waits for more work: the join, and so the
/// fork, waits forever. Or a worker takes the stop request in place of the share queued for it and exits:
/// the product waits forever for that share. Both were seen (`LoadDuringMatmulTests`). Opening an HDF5 file forks
/// (CDescentHDF5/metadata.h: a damaged file's metadata is decoded in a child so that libhdf5 1.10.8's
/// buffer overrun cannot corrupt this process), so training on one thread while a checkpoint or an app's
/// UI thread loaded an `.h5` file hung for good, with libhdf5's lock held. `openblas_set_num_threads`
/// changes the same thread table (it can start workers) and is kept out of the fork as well.
///
/// **How.** One process-wide `pthread_rwlock_t`: every OpenBLAS call (``call(_:)``: the two GEMMs in
/// DType.swift, every `openblas_set_num_threads`) holds it shared, so products on many threads run side
/// by side; ``forking(_:)`` holds it exclusively around the `fork()` alone, so OpenBLAS's handler finds its
/// workers idle and stops them cleanly (the next product restarts them: OpenBLAS re-creates its threads
/// after a fork). The lock prefers writers, so a fork waits only for the products already running, never
/// for a stream of new ones on other threads. Uncontended, a shared lock and unlock cost two atomic
/// operations (tens of nanoseconds) next to a GEMM's microseconds or more.
///
/// Rules that keep it deadlock-free: ``call(_:)`` wraps only the C call itself (no Swift code that might
/// take the lock again: a writer-preferring lock blocks a second shared hold while a fork waits), and the
/// forking code calls no OpenBLAS. The child of the fork never calls OpenBLAS either (it runs libhdf5 and
/// exits), so the lock it inherits held is never touched there.
///
/// Why not the alternatives: `posix_spawn` skips atfork handlers but needs an executable for the child,
/// which a library cannot count on; a raw `clone`/`_Fork` skips them too but also skips glibc's own reset
/// of malloc's locks, and the child (libhdf5) allocates, so it could deadlock on a lock another thread
/// held; and decoding in this process is what the child exists to avoid.
@_spi(DescentInternals)
public enum OpenBLASForkGate {
    /// The lock (allocated once, never freed: it lives as long as the process).
    ///
    /// `nonisolated(unsafe)`: the pointer itself never changes; the lock it points to is the
    /// synchronisation, and pthread locks are made for concurrent use.
    nonisolated(unsafe) private static let lock: UnsafeMutablePointer<pthread_rwlock_t> = {
        let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        let status = pthread_rwlock_init(lock, &attributes)
        pthread_rwlockattr_destroy(&attributes)
        precondition(status == 0, "OpenBLASForkGate: pthread_rwlock_init failed (\(status))")
        return lock
    }()

    /// Runs one OpenBLAS call (`body` must be just that call) holding the lock shared.
    @inline(__always)
    static func call<R>(_ body: () -> R) -> R {
        let status = pthread_rwlock_rdlock(lock)
        // EAGAIN (more than 2³¹ readers) or EDEADLK cannot happen with one hold per call.
        precondition(status == 0, "OpenBLASForkGate: pthread_rwlock_rdlock failed (\(status))")
        defer { pthread_rwlock_unlock(lock) }
        return body()
    }

    /// Runs `body`, which forks, while no OpenBLAS call is in progress in this process: waits for the ones
    /// running to return and holds new ones back until `body` returns. `body` must not call OpenBLAS
    /// (no matrix products, no ``ThreadPool/setThreadCount(_:)``) and should be short: just the `fork()`,
    /// not the wait for the child.
    public static func forking<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        let status = pthread_rwlock_wrlock(lock)
        precondition(status == 0, "OpenBLASForkGate: pthread_rwlock_wrlock failed (\(status))")
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
