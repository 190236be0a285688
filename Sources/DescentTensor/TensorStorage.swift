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

    /// Allocates `byteCount` uninitialised bytes, 64-byte aligned.
    @usableFromInline init(byteCount: Int) {
        self.byteCount = byteCount
        self.base = BufferCache.allocate(byteCount)
    }

    /// Allocates a zero-filled buffer.
    @usableFromInline convenience init(zeroedByteCount byteCount: Int) {
        self.init(byteCount: byteCount)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    }

    /// A copy of this buffer.
    @usableFromInline func copy() -> TensorStorage {
        let other = TensorStorage(byteCount: byteCount)
        other.base.copyMemory(from: base, byteCount: byteCount)
        return other
    }

    deinit { BufferCache.deallocate(base, bytes: byteCount) }
}
