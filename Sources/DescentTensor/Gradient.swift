/// A sparse gradient: rows of a tensor given by their indices along axis 0 (TensorFlow's
/// `tf.IndexedSlices`).
///
/// The gradient of ``Tensor/gather(_:)`` (an embedding lookup) is an `IndexedSlices`: only the looked-up
/// rows are stored. `values` has shape `[indices.count] + denseShape.dropFirst()`. Indices may repeat;
/// repeated rows add up when densified.
public struct IndexedSlices: Sendable {
    /// The rows, shape `[indices.count] + denseShape[1...]`.
    public let values: Tensor
    /// The row of the dense tensor each row of `values` belongs to.
    public let indices: [Int]
    /// The shape of the dense tensor (a valid shape: see ``Shape``).
    public let denseShape: [Int]

    /// Creates slices, checking that the shapes agree and the indices are in range.
    /// - Throws: ``TensorError`` naming the mismatching shapes or the bad index, or the dense shape when
    ///   it has a negative dimension or too many elements (``Shape/elementCount(_:operation:)``).
    public init(values: Tensor, indices: [Int], denseShape: [Int]) throws {
        guard !denseShape.isEmpty else {
            throw TensorError.invalidShape(operation: "IndexedSlices", shape: denseShape,
                                           reason: "the dense shape needs at least one dimension")
        }
        // The dense shape is the caller's: with no indices, `values` (shape [0, ...]) says nothing about
        // its size, and `rowSize` and `toDense()` multiply its dimensions.
        _ = try Shape.elementCount(denseShape, operation: "IndexedSlices dense shape")
        let expected = [indices.count] + denseShape.dropFirst()
        guard values.shape == expected else {
            throw TensorError.incompatibleShapes(
                operation: "IndexedSlices", lhs: values.shape, rhs: denseShape,
                reason: "values must have shape \(expected) for \(indices.count) indices into dense shape \(denseShape)")
        }
        if let bad = indices.first(where: { $0 < 0 || $0 >= denseShape[0] }) {
            throw TensorError.indexOutOfRange(operation: "IndexedSlices", index: bad, bound: denseShape[0])
        }
        self.init(unchecked: values, indices: indices, denseShape: denseShape)
    }

    /// Slices whose shapes are known to agree. Internal invariant: `denseShape` is a tensor's (valid)
    /// shape, `values` has shape `[indices.count] + denseShape[1...]` and the indices are in range.
    @usableFromInline init(unchecked values: Tensor, indices: [Int], denseShape: [Int]) {
        self.values = values
        self.indices = indices
        self.denseShape = denseShape
    }

    /// The element type.
    public var dtype: DType { values.dtype }

    /// Elements per row (the product of `denseShape[1...]`).
    public var rowSize: Int { Shape.product(denseShape.dropFirst()) }  // denseShape is valid (init)

    /// The dense tensor: zeros with the rows of `values` added at their indices.
    /// - Throws: ``TensorError/allocationFailed(operation:shape:bytes:machineBytes:)`` when the dense
    ///   tensor does not fit in memory (the dense shape need not exist anywhere yet).
    public func toDense() throws -> Tensor {
        let out = try Tensor.zeros(shape: denseShape, dtype: dtype)
        let row = rowSize
        func scatter<T: FloatingElement>(_: T.Type) {
            let dst = out._mutablePointer(T.self)
            let src = values._pointer(T.self)
            for (r, index) in indices.enumerated() {
                let d = dst + index * row, s = src + r * row
                for j in 0..<row { d[j] += s[j] }
            }
        }
        switch dtype {
        case .float32: scatter(Float.self)
        case .float64: scatter(Double.self)
        case .int64:
            let dst = out._mutablePointer(Int64.self), src = values._pointer(Int64.self)
            for (r, index) in indices.enumerated() {
                for j in 0..<row { dst[index * row + j] += src[r * row + j] }
            }
        }
        return out
    }

    /// Sums the rows of repeated indices. The unique indices keep their first-occurrence order, as
    /// `tf.unique` + `tf.math.unsorted_segment_sum` do in OptimizerV2.
    public func deduplicated() -> IndexedSlices {
        var position: [Int: Int] = [:]
        position.reserveCapacity(indices.count)
        var unique: [Int] = []
        var segment = [Int](repeating: 0, count: indices.count)
        for (r, index) in indices.enumerated() {
            if let p = position[index] { segment[r] = p } else {
                position[index] = unique.count
                segment[r] = unique.count
                unique.append(index)
            }
        }
        if unique.count == indices.count { return self }
        let row = rowSize
        // At most as large as `values` (fewer rows), which exists.
        let summed = Tensor(existingSizeShape: [unique.count] + denseShape.dropFirst(), count: unique.count * row,
                            dtype: dtype)
        summed.storage.zeroFill()
        func sum<T: FloatingElement>(_: T.Type) {
            let dst = summed._mutablePointer(T.self), src = values._pointer(T.self)
            for r in 0..<indices.count {
                let d = dst + segment[r] * row, s = src + r * row
                for j in 0..<row { d[j] += s[j] }
            }
        }
        switch dtype {
        case .float32: sum(Float.self)
        case .float64: sum(Double.self)
        case .int64:
            let dst = summed._mutablePointer(Int64.self), src = values._pointer(Int64.self)
            for r in 0..<indices.count { for j in 0..<row { dst[segment[r] * row + j] += src[r * row + j] } }
        }
        return IndexedSlices(unchecked: summed, indices: unique, denseShape: denseShape)
    }
}

/// The gradient of a target with respect to one source: dense, or sparse rows (``IndexedSlices``).
public enum Gradient: Sendable {
    /// A dense gradient with the source's shape.
    case dense(Tensor)
    /// A sparse gradient (from ``Tensor/gather(_:)``).
    case sparse(IndexedSlices)

    /// The gradient as a dense tensor (sparse rows are scattered and summed).
    /// - Throws: as ``IndexedSlices/toDense()``, when a sparse gradient's dense tensor does not fit in memory.
    public var denseValue: Tensor {
        get throws {
            switch self {
            case .dense(let t): return t
            case .sparse(let s): return try s.toDense()
            }
        }
    }

    /// The shape of the source this gradient belongs to.
    public var shape: [Int] {
        switch self {
        case .dense(let t): return t.shape
        case .sparse(let s): return s.denseShape
        }
    }

    /// The element type.
    public var dtype: DType {
        switch self {
        case .dense(let t): return t.dtype
        case .sparse(let s): return s.dtype
        }
    }

    /// The sparse slices, if this gradient is sparse.
    public var indexedSlices: IndexedSlices? {
        if case .sparse(let s) = self { return s }
        return nil
    }

    /// Sums two gradients of the same source. Two sparse gradients stay sparse (their rows are
    /// concatenated, as TensorFlow aggregates `IndexedSlices`); anything with a dense part is dense.
    public static func + (lhs: Gradient, rhs: Gradient) throws -> Gradient {
        switch (lhs, rhs) {
        case let (.sparse(a), .sparse(b)):
            let values = try Tensor.concat([a.values, b.values], axis: 0)
            return .sparse(IndexedSlices(unchecked: values, indices: a.indices + b.indices, denseShape: a.denseShape))
        default:
            return .dense(try lhs.denseValue + rhs.denseValue)
        }
    }
}
