/// The heap buffer behind a ``Tensor``: contiguous, 64-byte aligned, untyped.
///
/// Thread safety (`@unchecked Sendable`): the bytes are written only (a) while the buffer is being
/// initialised, before any other reference exists, (b) through `Tensor`'s copy-on-write mutators, which
/// first make the reference unique, or (c) by a `Variable` that holds its own lock and the only
/// reference. Otherwise the buffer is immutable, so sharing it across threads is safe.
public final class TensorStorage: @unchecked Sendable {
    /// Start of the buffer.
    public let base: UnsafeMutableRawPointer
    /// Size in bytes.
    public let byteCount: Int

    /// Allocates `byteCount` uninitialised bytes, 64-byte aligned, for a tensor of `shape`.
    /// - Throws: ``TensorError/allocationFailed(operation:shape:bytes:machineBytes:)`` naming `operation`
    ///   and `shape` when the machine cannot provide the bytes.
    @usableFromInline init(byteCount: Int, shape: [Int], operation: String) throws {
        guard let base = BufferCache.allocate(byteCount) else {
            throw TensorError.allocationFailed(operation: operation, shape: shape, bytes: byteCount,
                                               machineBytes: SystemMemory.totalBytes)
        }
        self.byteCount = byteCount
        self.base = base
    }

    /// Allocates `byteCount` bytes for a tensor whose shape already exists in memory (an operation's
    /// output of its input's size: a copy, a cast, `zeros(like:)`).
    ///
    /// Internal invariant, not a check: the size was validated when the first such tensor was made, so
    /// a failure here is the process running out of memory mid-computation, which traps as Swift's own
    /// allocations (arrays, strings) do. Every size a caller chooses goes through the throwing
    /// initialiser.
    @usableFromInline init(existingSizeByteCount byteCount: Int) {
        guard let base = BufferCache.allocate(byteCount) else {
            preconditionFailure("out of memory: cannot allocate \(byteCount) bytes for a copy of an existing tensor")
        }
        self.byteCount = byteCount
        self.base = base
    }

    /// Fills the buffer with zero bytes.
    @usableFromInline func zeroFill() {
        base.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    }

    /// A copy of this buffer.
    @usableFromInline func copy() -> TensorStorage {
        let other = TensorStorage(existingSizeByteCount: byteCount)
        other.base.copyMemory(from: base, byteCount: byteCount)
        return other
    }

    deinit { BufferCache.deallocate(base, bytes: byteCount) }
}
