/// A sparse gradient: rows of a tensor given by their indices along axis 0 (TensorFlow's
/// `tf.IndexedSlices`).
///
/// The gradient of ``Tensor/gather(_:)`` (an embedding lookup) is an `IndexedSlices`: only the looked-up
/// rows are stored. `values` has shape `[indices.count] + denseShape.dropFirst()`. Indices may repeat;
/// repeated rows add up when densified.
public struct IndexedSlices: Sendable {
    /// The rows, shape `[indices.count] + denseShape[1...]`.
    public var values: Tensor
    /// The row of the dense tensor each row of `values` belongs to.
    public var indices: [Int]
    /// The shape of the dense tensor.
    public var denseShape: [Int]

    /// Creates slices, checking that the shapes agree and the indices are in range.
    /// - Throws: ``TensorError`` naming the mismatching shapes or the bad index.
    public init(values: Tensor, indices: [Int], denseShape: [Int]) throws {
        guard !denseShape.isEmpty else {
            throw TensorError.invalidShape(operation: "IndexedSlices", shape: denseShape,
                                           reason: "the dense shape needs at least one dimension")
        }
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

    @usableFromInline init(unchecked values: Tensor, indices: [Int], denseShape: [Int]) {
        self.values = values
        self.indices = indices
        self.denseShape = denseShape
    }

    /// The element type.
    public var dtype: DType { values.dtype }

    /// Elements per row (the product of `denseShape[1...]`).
    public var rowSize: Int { denseShape.dropFirst().reduce(1, *) }

    /// The dense tensor: zeros with the rows of `values` added at their indices.
    public func toDense() -> Tensor {
        let out = try! Tensor.zeros(shape: denseShape, dtype: dtype)  // valid shape by construction
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
        let summed = try! Tensor.zeros(shape: [unique.count] + denseShape.dropFirst(), dtype: dtype)
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
    public var denseValue: Tensor {
        switch self {
        case .dense(let t): return t
        case .sparse(let s): return s.toDense()
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
