@_spi(DescentInternals) import DescentTensor

/// Mutable access to some rows of a ``Variable``'s buffer, given to the closure of
/// ``Variable/withMutableRows(_:as:_:)``: the rows at `indices`, by position in `indices`.
///
/// The buffers point into the variable's own storage and are valid only inside that closure; do not
/// keep them, or this value, beyond it.
public struct MutableVariableRows<Element: TensorElement> {
    /// The row indices, as given (may repeat; every position addresses its row).
    public let indices: [Int]
    /// The number of elements of one row (the product of the variable's shape after its first axis).
    public let rowLength: Int
    private let base: UnsafeMutablePointer<Element>

    init(indices: [Int], rowLength: Int, base: UnsafeMutablePointer<Element>) {
        self.indices = indices
        self.rowLength = rowLength
        self.base = base
    }

    /// The number of rows (`indices.count`).
    public var count: Int { indices.count }

    /// The row `indices[position]` of the variable, `rowLength` elements, writable in place.
    /// - Precondition: `0 <= position < count` (as for an array subscript).
    public subscript(position: Int) -> UnsafeMutableBufferPointer<Element> {
        precondition(position >= 0 && position < indices.count, "row position \(position) outside 0..<\(indices.count)")
        return UnsafeMutableBufferPointer(start: base + indices[position] * rowLength, count: rowLength)
    }
}

/// Row-wise reads and in-place updates along the first axis (TensorFlow's `tf.Variable.scatter_*`,
/// `tf.gather`), for sparse optimizer updates.
///
/// The updates write the variable's own buffer in place, as the built-in optimizers' sparse updates do:
/// when no other tensor shares the buffer nothing is copied or allocated; when one does (a value read
/// earlier), the buffer is copied once first, so that value keeps its contents (copy-on-write). Every
/// argument is checked before anything is written: an error leaves the variable unchanged. The
/// thread-safety note of ``Variable`` applies: do not read the variable on another thread meanwhile.
/// Nothing here is recorded by a ``GradientTape``.
extension Variable {
    /// The rows at `indices` (each in `0..<shape[0]`, repeats allowed), shape `[indices.count] + shape[1...]`.
    /// - Throws: ``TensorError`` naming the variable for a scalar variable or an index out of range.
    public func gatherRows(_ indices: [Int]) throws -> Tensor {
        try checkRowIndices(indices, "gatherRows")
        return try untrackedValue.gather(indices).untracked
    }

    /// Adds row `r` of `values` to row `indices[r]` of the variable, for every `r`
    /// (`scatter_add`; a repeated index gets every one of its rows, in order).
    /// - Throws: ``TensorError`` naming the variable for an index out of range, `values` of another
    ///   dtype or not of shape `[indices.count] + shape[1...]`; nothing is written then.
    public func scatterAdd(indices: [Int], values: Tensor) throws {
        try scatter(indices, values, .add)
    }

    /// Subtracts row `r` of `values` from row `indices[r]` of the variable, for every `r` (`scatter_sub`).
    /// - Throws: as ``scatterAdd(indices:values:)``.
    public func scatterSub(indices: [Int], values: Tensor) throws {
        try scatter(indices, values, .sub)
    }

    /// Replaces row `indices[r]` of the variable by row `r` of `values`, for every `r` in order
    /// (`scatter_update`; for a repeated index the last row wins).
    /// - Throws: as ``scatterAdd(indices:values:)``.
    public func scatterUpdate(indices: [Int], values: Tensor) throws {
        try scatter(indices, values, .update)
    }

    /// Calls `body` with the variable's rows at `indices`, writable in place: for arbitrary row math
    /// (an optimizer's sparse rule over the variable and its slots, each with its own call).
    ///
    /// The buffer is made unique first (copy-on-write, see above), then `body` writes it directly.
    /// - Throws: ``TensorError`` naming the variable for a scalar variable, an index out of range or
    ///   `T` not the variable's dtype (before `body` runs); then whatever `body` throws (what it wrote
    ///   stays written).
    public func withMutableRows<T: TensorElement, R>(_ indices: [Int], as type: T.Type,
                                                     _ body: (MutableVariableRows<T>) throws -> R) throws -> R {
        guard T.dtype == dtype else {
            throw TensorError.dtypeMismatch(operation: "withMutableRows(as: \(T.self)) of variable '\(name)'", lhs: dtype, rhs: T.dtype)
        }
        try checkRowIndices(indices, "withMutableRows")
        let rowLength = shape.dropFirst().reduce(1, *)
        return try withUniqueStorage { storage in
            try body(MutableVariableRows(indices: indices, rowLength: rowLength, base: storage.base.assumingMemoryBound(to: T.self)))
        }
    }

    /// Throws unless the variable has rows and every index is one of them.
    private func checkRowIndices(_ indices: [Int], _ operation: String) throws {
        guard let rows = shape.first else {
            throw TensorError.invalidShape(operation: "\(operation) of variable '\(name)'", shape: shape,
                                           reason: "a scalar variable has no rows")
        }
        if let bad = indices.first(where: { $0 < 0 || $0 >= rows }) {
            throw TensorError.indexOutOfRange(operation: "\(operation) of variable '\(name)'", index: bad, bound: rows)
        }
    }

    /// How ``scatter(_:_:_:)`` combines a row of the variable with a row of values.
    private enum ScatterOperation: String {
        case add = "scatterAdd", sub = "scatterSub", update = "scatterUpdate"
    }

    /// Checks `indices` and `values`, then combines the rows in place.
    private func scatter(_ indices: [Int], _ values: Tensor, _ operation: ScatterOperation) throws {
        try checkRowIndices(indices, operation.rawValue)
        guard values.dtype == dtype else {
            throw TensorError.dtypeMismatch(operation: "\(operation.rawValue) of variable '\(name)'", lhs: dtype, rhs: values.dtype)
        }
        let expected = [indices.count] + shape.dropFirst()
        guard values.shape == expected else {
            throw TensorError.incompatibleShapes(operation: "\(operation.rawValue) of variable '\(name)'", lhs: expected,
                                                 rhs: values.shape,
                                                 reason: "values need one row per index, each of the variable's row shape")
        }
        switch dtype {
        case .float32: try scatter(Float.self, indices, values, operation)
        case .float64: try scatter(Double.self, indices, values, operation)
        case .int64: try scatter(Int64.self, indices, values, operation)
        }
    }

    private func scatter<T: TensorElement>(_: T.Type, _ indices: [Int], _ values: Tensor, _ operation: ScatterOperation) throws {
        try values.withUnsafeBufferPointer(as: T.self) { source in
            try withMutableRows(indices, as: T.self) { rows in
                let n = rows.rowLength
                guard n > 0, let base = source.baseAddress else { return }
                for r in 0..<rows.count {
                    let row = rows[r], from = base + r * n
                    switch operation {
                    case .add: for j in 0..<n { row[j] += from[j] }
                    case .sub: for j in 0..<n { row[j] -= from[j] }
                    case .update: for j in 0..<n { row[j] = from[j] }
                    }
                }
            }
        }
    }
}
