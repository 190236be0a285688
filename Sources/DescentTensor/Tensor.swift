/// An n-dimensional array of `float32`, `float64` or `int64` values.
///
/// `Tensor` is a value type: copies share one buffer until one of them is mutated (copy-on-write), so
/// passing tensors around and recording them on a gradient tape never copies data. Storage is
/// contiguous and row-major (the last axis varies fastest), as in NumPy and TensorFlow.
///
/// ```swift
/// let x = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
/// let y = try (x * 2 + 1).exp().sum(axes: [1])
/// ```
///
/// Operations that can fail because of their operands (shapes that do not broadcast, mismatched
/// dtypes, bad axes) throw a ``TensorError`` that names the operation and both shapes.
public struct Tensor: Sendable {
    /// The dimensions, outermost first. `[]` is a scalar.
    public internal(set) var shape: [Int]
    /// The element type.
    public internal(set) var dtype: DType
    /// The number of elements (the product of ``shape``).
    public internal(set) var scalarCount: Int
    @usableFromInline internal var storage: TensorStorage
    /// The node that identifies this value on active gradient tapes; 0 when no tape tracks it.
    @_spi(DescentInternals) public internal(set) var tapeNode: Int = 0

    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }

    @usableFromInline
    internal init(storage: TensorStorage, shape: [Int], dtype: DType, scalarCount: Int) {
        self.storage = storage
        self.shape = shape
        self.dtype = dtype
        self.scalarCount = scalarCount
    }

    /// A tensor with uninitialised contents; the caller writes every element.
    /// - Throws: ``TensorError`` naming `operation` and `shape` for a negative dimension, a shape whose
    ///   element count overflows (``Shape/elementCount(_:operation:)``), or a buffer the machine cannot
    ///   provide.
    @usableFromInline
    internal init(uninitializedShape shape: [Int], dtype: DType, operation: String) throws {
        let count = try Shape.elementCount(shape, operation: operation)
        let storage = try TensorStorage(byteCount: count * dtype.byteSize, shape: shape, operation: operation)
        self.init(storage: storage, shape: shape, dtype: dtype, scalarCount: count)
    }

    /// A new tensor of `shape` and `dtype` whose bytes `fill` writes (every byte of the buffer it is
    /// given, row-major): for readers that copy elements straight from a file into the tensor's memory.
    /// - Throws: ``TensorError`` naming `operation` for an invalid or too large shape, or what `fill`
    ///   throws.
    @_spi(DescentInternals)
    public init(shape: [Int], dtype: DType, operation: String, fillingBytes fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        try self.init(uninitializedShape: shape, dtype: dtype, operation: operation)
        try withExtendedLifetime(storage) {
            try fill(UnsafeMutableRawBufferPointer(start: storage.base, count: scalarCount * dtype.byteSize))
        }
    }

    /// A tensor with uninitialised contents, of `count` elements whose size already exists in memory
    /// (see ``TensorStorage/init(existingSizeByteCount:)``): for the few non-throwing operations whose
    /// result is as large as a value the caller already holds (`cast`, `zeros(like:)`, a tensor from an
    /// array). Internal invariant: `shape` is valid and `count` is its element count.
    @usableFromInline
    internal init(existingSizeShape shape: [Int], count: Int, dtype: DType) {
        self.init(storage: TensorStorage(existingSizeByteCount: count * dtype.byteSize), shape: shape, dtype: dtype,
                  scalarCount: count)
    }

    // MARK: - Creation

    /// Creates a tensor of the given shape from row-major scalars.
    /// - Throws: ``TensorError/invalidShape(operation:shape:reason:)`` when `scalars.count` is not the
    ///   product of `shape` or a dimension is negative.
    public init<T: TensorElement>(shape: [Int], scalars: [T]) throws {
        let count = try Shape.elementCount(shape, operation: "Tensor(shape:scalars:)")
        guard count == scalars.count else {
            throw TensorError.invalidShape(
                operation: "Tensor(shape:scalars:)", shape: shape,
                reason: "expected \(count) scalars, got \(scalars.count)")
        }
        try self.init(uninitializedShape: shape, dtype: T.dtype, operation: "Tensor(shape:scalars:)")
        scalars.withUnsafeBufferPointer { src in
            if let src = src.baseAddress { storage.base.copyMemory(from: src, byteCount: count * T.dtype.byteSize) }
        }
    }

    /// Creates a 1-d tensor from scalars.
    public init<T: TensorElement>(_ scalars: [T]) {
        // Cannot fail: the shape is derived from the count, and the array holds as many bytes.
        self.init(existingSizeShape: [scalars.count], count: scalars.count, dtype: T.dtype)
        scalars.withUnsafeBufferPointer { src in
            if let src = src.baseAddress {
                storage.base.copyMemory(from: src, byteCount: scalars.count * T.dtype.byteSize)
            }
        }
    }

    /// Creates a 2-d tensor from rows.
    /// - Throws: ``TensorError/invalidShape(operation:shape:reason:)`` if the rows are ragged.
    public init<T: TensorElement>(rows: [[T]]) throws {
        let columns = rows.first?.count ?? 0
        if let bad = rows.firstIndex(where: { $0.count != columns }) {
            throw TensorError.invalidShape(
                operation: "Tensor(rows:)", shape: [rows.count, columns],
                reason: "row \(bad) has \(rows[bad].count) elements, expected \(columns)")
        }
        try self.init(shape: [rows.count, columns], scalars: rows.flatMap { $0 })
    }

    /// Creates a scalar (rank-0) tensor.
    public init<T: TensorElement>(_ scalar: T) {
        self.init(existingSizeShape: [], count: 1, dtype: T.dtype)
        storage.base.assumingMemoryBound(to: T.self).pointee = scalar
    }

    /// Creates a tensor filled with `value` (TensorFlow's `fill`).
    /// - Throws: ``TensorError`` for a negative dimension, a shape whose element count overflows, or more
    ///   memory than the machine has.
    public init(repeating value: Double, shape: [Int], dtype: DType = .float32) throws {
        try self.init(uninitializedShape: shape, dtype: dtype, operation: "Tensor(repeating:shape:)")
        initializeElements(repeating: value)
    }

    /// Sets every element of a freshly allocated (unshared) buffer to `value` in this dtype.
    private func initializeElements(repeating value: Double) {
        switch dtype {
        case .float32: _mutablePointer(Float.self).initialize(repeating: Float(value), count: scalarCount)
        case .float64: _mutablePointer(Double.self).initialize(repeating: value, count: scalarCount)
        case .int64: _mutablePointer(Int64.self).initialize(repeating: Int64(fromDouble: value), count: scalarCount)
        }
    }

    /// A tensor of zeros.
    /// - Throws: ``TensorError`` for a negative dimension, a shape whose element count overflows, or more
    ///   memory than the machine has.
    public static func zeros(shape: [Int], dtype: DType = .float32) throws -> Tensor {
        let t = try Tensor(uninitializedShape: shape, dtype: dtype, operation: "Tensor.zeros")
        t.storage.zeroFill()
        return t
    }

    /// A tensor of ones.
    public static func ones(shape: [Int], dtype: DType = .float32) throws -> Tensor {
        try Tensor(repeating: 1, shape: shape, dtype: dtype)
    }

    /// A tensor of zeros with the shape and dtype of `other`.
    public static func zeros(like other: Tensor) -> Tensor {
        let t = Tensor(existingSizeShape: other.shape, count: other.scalarCount, dtype: other.dtype)
        t.storage.zeroFill()
        return t
    }

    /// A tensor of ones with the shape and dtype of `other`.
    public static func ones(like other: Tensor) -> Tensor {
        let t = Tensor(existingSizeShape: other.shape, count: other.scalarCount, dtype: other.dtype)
        t.initializeElements(repeating: 1)
        return t
    }

    /// `[start, start + step, ...)` up to `end`, like `tf.range`.
    public static func range(_ start: Double = 0, to end: Double, step: Double = 1, dtype: DType = .float32) throws
        -> Tensor
    {
        guard step != 0 else { throw TensorError.invalidArgument(operation: "Tensor.range", reason: "step must not be 0") }
        let steps = ((end - start) / step).rounded(.up)
        // `Int(_:)` would trap on a non-finite or huge count.
        guard start.isFinite, end.isFinite, !step.isNaN, let count = Int(exactly: Swift.max(0, steps)) else {
            throw TensorError.invalidArgument(operation: "Tensor.range",
                                              reason: "cannot count from \(start) to \(end) by \(step)")
        }
        var t = try Tensor(uninitializedShape: [count], dtype: dtype, operation: "Tensor.range")
        t.setElements { i in start + Double(i) * step }
        return t
    }

    // MARK: - Reading values

    /// The elements as a flat row-major array.
    /// - Throws: ``TensorError/dtypeMismatch(operation:lhs:rhs:)`` if `T` is not the tensor's dtype.
    public func scalars<T: TensorElement>(as type: T.Type = T.self) throws -> [T] {
        guard T.dtype == dtype else {
            throw TensorError.dtypeMismatch(operation: "scalars(as:)", lhs: dtype, rhs: T.dtype)
        }
        return Array(UnsafeBufferPointer(start: _pointer(T.self), count: scalarCount))
    }

    /// The elements converted to `Double`, row-major (any dtype).
    public var doubles: [Double] {
        switch dtype {
        case .float32: return UnsafeBufferPointer(start: _pointer(Float.self), count: scalarCount).map(Double.init)
        case .float64: return Array(UnsafeBufferPointer(start: _pointer(Double.self), count: scalarCount))
        case .int64: return UnsafeBufferPointer(start: _pointer(Int64.self), count: scalarCount).map(Double.init)
        }
    }

    /// The value of a one-element tensor, converted to `Double` (PyTorch's `item()`).
    /// - Throws: ``TensorError/invalidShape(operation:shape:reason:)`` unless the tensor has one element.
    public func item() throws -> Double {
        guard scalarCount == 1 else {
            throw TensorError.invalidShape(operation: "item()", shape: shape,
                                           reason: "expected exactly one element, got \(scalarCount)")
        }
        return element(flatIndex: 0)
    }

    /// The element at a multi-dimensional index, converted to `Double`.
    /// - Throws: if the index has the wrong rank or is out of range.
    public func element(at index: [Int]) throws -> Double {
        guard index.count == rank else {
            throw TensorError.invalidArgument(
                operation: "element(at:)", reason: "index \(index) has \(index.count) components for shape \(shape)")
        }
        var flat = 0
        for (axis, i) in index.enumerated() {
            guard i >= 0 && i < shape[axis] else {
                throw TensorError.indexOutOfRange(operation: "element(at:) axis \(axis)", index: i, bound: shape[axis])
            }
            flat = flat * shape[axis] + i
        }
        return element(flatIndex: flat)
    }

    @usableFromInline func element(flatIndex i: Int) -> Double {
        switch dtype {
        case .float32: return Double(_pointer(Float.self)[i])
        case .float64: return _pointer(Double.self)[i]
        case .int64: return Double(_pointer(Int64.self)[i])
        }
    }

    /// Calls `body` with the elements; the buffer is valid only inside `body`.
    /// - Throws: ``TensorError/dtypeMismatch(operation:lhs:rhs:)`` if `T` is not the tensor's dtype.
    public func withUnsafeBufferPointer<T: TensorElement, R>(
        as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> R
    ) throws -> R {
        guard T.dtype == dtype else {
            throw TensorError.dtypeMismatch(operation: "withUnsafeBufferPointer(as:)", lhs: dtype, rhs: T.dtype)
        }
        return try withExtendedLifetime(storage) {
            try body(UnsafeBufferPointer(start: _pointer(T.self), count: scalarCount))
        }
    }

    /// Calls `body` with mutable access to the elements, copying the buffer first if it is shared.
    /// - Throws: ``TensorError/dtypeMismatch(operation:lhs:rhs:)`` if `T` is not the tensor's dtype.
    public mutating func withUnsafeMutableBufferPointer<T: TensorElement, R>(
        as type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) throws -> R
    ) throws -> R {
        guard T.dtype == dtype else {
            throw TensorError.dtypeMismatch(operation: "withUnsafeMutableBufferPointer(as:)", lhs: dtype, rhs: T.dtype)
        }
        makeUnique()
        tapeNode = 0  // a value changed in place is no longer the one a tape recorded
        return try withExtendedLifetime(storage) {
            try body(UnsafeMutableBufferPointer(start: _mutablePointer(T.self), count: scalarCount))
        }
    }

    // MARK: - Internal access

    /// Typed pointer to the elements. The caller guarantees `T.dtype == dtype` and keeps `self` alive.
    @inlinable @inline(__always)
    func _pointer<T>(_: T.Type) -> UnsafePointer<T> {
        UnsafePointer(storage.base.assumingMemoryBound(to: T.self))
    }

    /// Typed mutable pointer. The caller guarantees `T.dtype == dtype` and that the storage is unique.
    @inlinable @inline(__always)
    func _mutablePointer<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        storage.base.assumingMemoryBound(to: T.self)
    }

    /// Ensures this value owns its buffer alone (copy-on-write).
    @inlinable mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// Whether the buffer is shared with another tensor (used by tests of copy-on-write).
    @_spi(DescentInternals) public mutating func isStorageShared() -> Bool {
        !isKnownUniquelyReferenced(&storage)
    }

    /// The buffer (for optimizers' kernels, which read gradients through raw pointers).
    @_spi(DescentInternals) public var unsafeStorage: TensorStorage { storage }

    /// Whether two tensors share one buffer.
    @_spi(DescentInternals) public func sharesStorage(with other: Tensor) -> Bool { storage === other.storage }

    /// Makes the buffer unique (copy-on-write) and returns it, for in-place updates by variables and
    /// optimizers. The caller must not let the buffer escape into another tensor.
    @_spi(DescentInternals) public mutating func uniqueStorage() -> TensorStorage {
        makeUnique()
        return storage
    }

    /// A copy of this tensor, tagged as tape node `node` (used by gradient tapes and variables).
    @_spi(DescentInternals) public func tagged(_ node: Int) -> Tensor {
        var t = self
        t.tapeNode = node
        return t
    }

    /// Writes `f(i)` into every element (any dtype).
    mutating func setElements(_ f: (Int) -> Double) {
        makeUnique()
        switch dtype {
        case .float32:
            let p = _mutablePointer(Float.self)
            for i in 0..<scalarCount { p[i] = Float(f(i)) }
        case .float64:
            let p = _mutablePointer(Double.self)
            for i in 0..<scalarCount { p[i] = f(i) }
        case .int64:
            let p = _mutablePointer(Int64.self)
            for i in 0..<scalarCount { p[i] = Int64(fromDouble: f(i)) }
        }
    }

    /// The same values with a new dtype (`tf.cast`). Casting to the same dtype returns `self`.
    public func cast(to newType: DType) -> Tensor {
        if newType == dtype { return self }
        let out = Tensor(existingSizeShape: shape, count: scalarCount, dtype: newType)
        func convert<S: TensorElement, D: TensorElement>(_: S.Type, _: D.Type) {
            let src = _pointer(S.self)
            let dst = out._mutablePointer(D.self)
            for i in 0..<scalarCount { dst[i] = D(fromDouble: src[i].doubleValue) }
        }
        switch (dtype, newType) {
        case (.float32, .float64):
            let s = _pointer(Float.self), d = out._mutablePointer(Double.self)
            for i in 0..<scalarCount { d[i] = Double(s[i]) }
        case (.float64, .float32):
            let s = _pointer(Double.self), d = out._mutablePointer(Float.self)
            for i in 0..<scalarCount { d[i] = Float(s[i]) }
        case (.float32, .int64): convert(Float.self, Int64.self)
        case (.float64, .int64): convert(Double.self, Int64.self)
        case (.int64, .float32):
            let s = _pointer(Int64.self), d = out._mutablePointer(Float.self)
            for i in 0..<scalarCount { d[i] = Float(s[i]) }
        case (.int64, .float64): convert(Int64.self, Double.self)
        // Internal invariant: equal dtypes returned `self` above; the six other pairs are listed.
        default: preconditionFailure("cast: unreachable \(dtype) -> \(newType)")
        }
        guard dtype.isFloatingPoint && newType.isFloatingPoint else { return out }
        return Autodiff.recordUnary("cast", self, out, backward: { [from = dtype] g in [.dense(g.cast(to: from))] })
    }
}

extension Tensor: Equatable {
    /// Two tensors are equal when they have the same dtype, shape and elements (NaN ≠ NaN).
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.dtype == rhs.dtype, lhs.shape == rhs.shape else { return false }
        if lhs.storage === rhs.storage { return !lhs.doubles.contains(where: \.isNaN) }
        if lhs.dtype == .int64 {
            // Compare as integers: `doubles` would merge values beyond 2^53.
            return UnsafeBufferPointer(start: lhs._pointer(Int64.self), count: lhs.scalarCount)
                .elementsEqual(UnsafeBufferPointer(start: rhs._pointer(Int64.self), count: rhs.scalarCount))
        }
        return lhs.doubles == rhs.doubles
    }
}
