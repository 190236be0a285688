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
///
/// Failure: ``allocate(_:)`` returns `nil` instead of trapping when a request exceeds the machine's
/// memory (``SystemMemory/totalBytes``, checked first because Linux overcommits: a huge `malloc` may
/// succeed and the process be killed when the pages are touched) or when `posix_memalign` fails.
///
/// The lock is a ``SanitizerVisibleMutex``, so that
/// ThreadSanitizer sees it (see ``ThreadSanitizerHooks``).
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

    private static let state = SanitizerVisibleMutex(State())
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

    /// A 64-byte-aligned buffer of at least `bytes` bytes (uninitialised), or `nil` when the machine
    /// cannot provide it (see the type's documentation).
    static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer? {
        guard enabled, let (index, capacity) = sizeClass(bytes) else { return fresh(bytes) }
        let reused: UInt? = state.withLock { state in
            guard let address = state.stacks[index].popLast() else { return nil }
            state.cachedBytes -= capacity
            return address
        }
        if let reused, let pointer = UnsafeMutableRawPointer(bitPattern: reused) { return pointer }
        return fresh(capacity)
    }

    /// A new buffer from the system, huge-page backed from ``hugePageThreshold`` up; `nil` when it is
    /// larger than the machine's memory or the allocator refuses. (Not Swift's
    /// `UnsafeMutableRawPointer.allocate`, which traps on failure.)
    private static func fresh(_ bytes: Int) -> UnsafeMutableRawPointer? {
        guard bytes <= SystemMemory.totalBytes else { return nil }
        if bytes >= hugePageThreshold && hugePagesEnabled, let huge = allocateHuge(bytes) { return huge }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, max(bytes, 64)) == 0 else { return nil }
        return raw
    }

    /// A large buffer aligned to 2 MiB, advised (`MADV_HUGEPAGE`) before its pages are first touched, so
    /// that the kernel can back it with 2 MiB pages where transparent huge pages are in `madvise` mode:
    /// a memory-bound update streams through it without a TLB miss every 4 KiB. Freed with `free`, as
    /// every buffer here (Swift's aligned allocations are `free`d too).
    private static func allocateHuge(_ bytes: Int) -> UnsafeMutableRawPointer? {
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, hugePageBytes, bytes) == 0, let raw else { return nil }
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

/// The machine's memory, read once.
enum SystemMemory {
    /// Physical memory plus swap, in bytes: no single tensor buffer can be larger. (`Int.max` if the
    /// system does not say.)
    static let totalBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return Int.max }
        let (physical, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        if overflow { return Int.max }
        let (total, overflow2) = physical.addingReportingOverflow(swapBytes())
        return overflow2 ? Int.max : total
    }()
}

extension SystemMemory {
    /// The `SwapTotal` line of `/proc/meminfo`, in bytes (0 if it cannot be read).
    static func swapBytes() -> Int {
        guard let file = fopen("/proc/meminfo", "r") else { return 0 }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard text.hasPrefix("SwapTotal:") else { continue }
            // "SwapTotal:       2097148 kB"
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kib = Int(fields[1]) else { return 0 }
            let (bytes, overflow) = kib.multipliedReportingOverflow(by: 1024)
            return overflow ? Int.max : bytes
        }
        return 0
    }
}
