import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// ThreadSanitizer's annotation functions, found at run time: present only when the process runs with
/// the TSan runtime (`swift test --sanitize=thread`), `nil` otherwise.
///
/// Why they are needed: on Linux, `Synchronization.Mutex` is a futex lock whose lock and unlock live in
/// the prebuilt, uninstrumented Synchronization library; in a debug build they are not inlined into
/// Descent's (instrumented) code, so TSan never sees the lock taken and reports the accesses it
/// protects as data races. A 30-line program passing buffers between two threads through a correctly
/// used `Mutex` shows it (3 reports at `-Onone`, 0 at `-O`; 0 with these annotations). The annotations
/// tell TSan what the lock already guarantees: what one holder did happens before the next holder's
/// accesses. They change nothing in the locking itself.
///
/// Cost without TSan: one load of ``current`` and a branch per lock. Measured (release, best of 15 runs
/// of 10⁷ allocate+free pairs on the buffer cache's state, on a shared 2-core machine): plain `Mutex`
/// 30.6–34.4 ns per pair, annotated 31.3–37.1 (within the run-to-run noise); a `pthread_mutex_t` lock,
/// which TSan models without annotations, 43.9–49.9 ns, so it was not used.
///
/// Every lock in Descent is a ``SanitizerVisibleMutex``, which takes its `Mutex` this way.
@usableFromInline
struct ThreadSanitizerHooks: @unchecked Sendable {
    @usableFromInline typealias Hook = @convention(c) (UnsafeMutableRawPointer?) -> Void

    /// `__tsan_acquire(address)`: the caller synchronises with every earlier release of `address`.
    @usableFromInline let acquire: Hook
    /// `__tsan_release(address)`.
    @usableFromInline let release: Hook
    /// The address the annotated locks synchronise on (one for all: under TSan only, annotated locks
    /// therefore also order each other's holders, which can hide a race but never report a false one).
    ///
    /// `@unchecked Sendable`: the hooks are C functions and the token's bytes are never read or written.
    @usableFromInline let token: UnsafeMutableRawPointer

    /// The hooks, when the TSan runtime is loaded. A global `let`: `dlsym` runs once per process, and
    /// each lock then costs one load of it and a branch.
    @usableFromInline static let current: ThreadSanitizerHooks? = {
        let everywhere = UnsafeMutableRawPointer(bitPattern: 0)  // RTLD_DEFAULT
        guard let acquire = dlsym(everywhere, "__tsan_acquire"), let release = dlsym(everywhere, "__tsan_release")
        else { return nil }
        return ThreadSanitizerHooks(acquire: unsafeBitCast(acquire, to: Hook.self),
                                    release: unsafeBitCast(release, to: Hook.self),
                                    token: .allocate(byteCount: 1, alignment: 1))
    }()
}

/// A `Mutex` that ThreadSanitizer sees (see ``ThreadSanitizerHooks``): the lock every Descent module
/// uses for shared mutable state.
///
/// Its only API is ``withLock(_:)``, which takes the `Mutex` and, under TSan only, tells TSan that one
/// holder's accesses happen before the next holder's. Using it instead of `Mutex` everywhere is what keeps
/// `swift test --sanitize=thread` free of false reports: a plain `Mutex.withLock` is invisible to TSan
/// in a debug build. `MutexUseTests` checks that no file in `Sources` uses `Mutex` directly.
///
/// Like `Mutex` it is `~Copyable` and `Sendable`; store it in a `let` (a class's property or a
/// `static let`), as a `Mutex` must be.
@_spi(DescentInternals)
public struct SanitizerVisibleMutex<Value: ~Copyable>: ~Copyable, Sendable {
    @usableFromInline let mutex: Mutex<Value>

    /// A lock around `initialValue`.
    @inlinable
    public init(_ initialValue: consuming sending Value) { mutex = Mutex(initialValue) }

    /// Runs `body` with exclusive access to the value (`Mutex.withLock`), visible to ThreadSanitizer.
    @inlinable @inline(__always)
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            guard let hooks = ThreadSanitizerHooks.current else { return try body(&value) }
            hooks.acquire(hooks.token)
            defer { hooks.release(hooks.token) }
            return try body(&value)
        }
    }
}
