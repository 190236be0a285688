import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Recycles the buffers of ``TensorStorage``.
///
/// A training step allocates and frees the same tensor sizes every step (activations, gradients,
/// temporaries). Through `malloc` each 64-byte-aligned allocation costs a `posix_memalign` search, and a
/// freed large block is returned to the system and faulted in again next step; on the digits MLP
/// allocation took about 10% of a step. Here freed buffers of up to 4 MiB are kept in size classes (four
/// per power of two, so a buffer is at most 25% larger than asked for) and handed out again.
///
/// Bounds: at most ``buffersPerClass`` buffers per class and ``maximumCachedBytes`` in all; beyond
/// that, buffers go back to `free`. `DESCENT_BUFFER_CACHE=0` turns the cache off (for memory checkers).
enum BufferCache {
    /// The largest buffer kept.
    static let maximumBufferBytes = 4 << 20
    /// The most bytes kept in all.
    static let maximumCachedBytes = 64 << 20
    /// The most buffers kept per size class.
    static let buffersPerClass = 32
    static let classCount = 4 * 17 + 4

    private struct State {
        var stacks: [[UInt]]
        var cachedBytes = 0
        init() {
            stacks = (0..<BufferCache.classCount).map { _ in
                var stack: [UInt] = []
                stack.reserveCapacity(BufferCache.buffersPerClass)
                return stack
            }
        }
    }

    private static let state = Mutex(State())
    private static let enabled = environmentFlag("DESCENT_BUFFER_CACHE")

    /// An on-by-default switch: off only when the environment variable `name` is `0`.
    private static func environmentFlag(_ name: String) -> Bool {
        guard let value = getenv(name) else { return true }
        return String(cString: value) != "0"
    }

    /// The size class of a request of `bytes` bytes: its index and the capacity of its buffers, or `nil`
    /// for requests too large to cache.
    @inline(__always)
    static func sizeClass(_ bytes: Int) -> (index: Int, capacity: Int)? {
        let n = max(bytes, 64)
        guard n <= maximumBufferBytes else { return nil }
        let k = Int.bitWidth - (n - 1).leadingZeroBitCount  // 2^(k-1) < n <= 2^k, k >= 6
        let step = 1 << (k - 3)                              // quarters of (2^(k-1), 2^k]
        let q = (n + step - 1) / step                        // 5...8
        return ((k - 6) * 4 + (q - 5), q * step)
    }

    /// Buffers from this size up are aligned to 2 MiB and asked to be backed by transparent huge pages.
    static let hugePageThreshold = 2 << 20
    private static let hugePageBytes = 2 << 20
    private static let hugePagesEnabled = environmentFlag("DESCENT_HUGE_PAGES")

    /// A 64-byte-aligned buffer of at least `bytes` bytes (uninitialised).
    static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard enabled, let (index, capacity) = sizeClass(bytes) else { return fresh(bytes) }
        let reused: UInt? = state.withLock { state in
            guard let address = state.stacks[index].popLast() else { return nil }
            state.cachedBytes -= capacity
            return address
        }
        if let reused, let pointer = UnsafeMutableRawPointer(bitPattern: reused) { return pointer }
        return fresh(capacity)
    }

    /// A new buffer from the system: huge-page backed from ``hugePageThreshold`` up.
    private static func fresh(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes >= hugePageThreshold && hugePagesEnabled { return allocateHuge(bytes) }
        return UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    }

    /// A large buffer aligned to 2 MiB, advised (`MADV_HUGEPAGE`) before its pages are first touched, so
    /// that the kernel can back it with 2 MiB pages where transparent huge pages are in `madvise` mode:
    /// a memory-bound update streams through it without a TLB miss every 4 KiB. Freed with `free`, as
    /// every buffer here (Swift's aligned allocations are `free`d too).
    private static func allocateHuge(_ bytes: Int) -> UnsafeMutableRawPointer {
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, hugePageBytes, bytes) == 0, let raw else {
            return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        }
        _ = madvise(raw, bytes, MADV_HUGEPAGE)
        return raw
    }

    /// Returns a buffer that ``allocate(_:)`` gave out for `bytes` bytes.
    static func deallocate(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        guard enabled, let (index, capacity) = sizeClass(bytes) else {
            free(pointer)
            return
        }
        let kept = state.withLock { state in
            guard state.stacks[index].count < buffersPerClass,
                  state.cachedBytes + capacity <= maximumCachedBytes else { return false }
            state.stacks[index].append(UInt(bitPattern: pointer))
            state.cachedBytes += capacity
            return true
        }
        if !kept { free(pointer) }
    }
}
