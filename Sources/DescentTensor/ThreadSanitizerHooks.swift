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
struct ThreadSanitizerHooks: @unchecked Sendable {
    typealias Hook = @convention(c) (UnsafeMutableRawPointer?) -> Void

    /// `__tsan_acquire(address)`: the caller synchronises with every earlier release of `address`.
    let acquire: Hook
    /// `__tsan_release(address)`.
    let release: Hook
    /// The address the annotated locks synchronise on (one for all: under TSan only, annotated locks
    /// therefore also order each other's holders, which can hide a race but never report a false one).
    ///
    /// `@unchecked Sendable`: the hooks are C functions and the token's bytes are never read or written.
    let token: UnsafeMutableRawPointer

    /// The hooks, when the TSan runtime is loaded.
    static let current: ThreadSanitizerHooks? = {
        let everywhere = UnsafeMutableRawPointer(bitPattern: 0)  // RTLD_DEFAULT
        guard let acquire = dlsym(everywhere, "__tsan_acquire"), let release = dlsym(everywhere, "__tsan_release")
        else { return nil }
        return ThreadSanitizerHooks(acquire: unsafeBitCast(acquire, to: Hook.self),
                                    release: unsafeBitCast(release, to: Hook.self),
                                    token: .allocate(byteCount: 1, alignment: 1))
    }()
}

extension Mutex where Value: ~Copyable {
    /// `withLock(_:)`, annotated so that ThreadSanitizer sees the lock (see ``ThreadSanitizerHooks``).
    @inline(__always)
    borrowing func withSanitizerVisibleLock<Result>(_ body: (inout sending Value) -> sending Result) -> sending Result {
        withLock { value in
            guard let hooks = ThreadSanitizerHooks.current else { return body(&value) }
            hooks.acquire(hooks.token)
            defer { hooks.release(hooks.token) }
            return body(&value)
        }
    }
}
