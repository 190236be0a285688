@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// Rows of a sparse update, kept as Keras 3's TensorFlow backend keeps `IndexedSlices` through `multiply`,
/// `divide` by a dense tensor, unary ops, and `assign_add`/`assign_sub` (a scatter, row by row in order).
struct Keras3SparseRows {
    /// The rows, shape `[indices.count] + denseShape[1...]`.
    var values: Tensor
    /// The row of the dense tensor each row of `values` belongs to (repeats allowed).
    var indices: [Int]
    /// The dense tensor's shape.
    let denseShape: [Int]

    init(values: Tensor, indices: [Int], denseShape: [Int]) {
        self.values = values
        self.indices = indices
        self.denseShape = denseShape
    }

    init(_ s: IndexedSlices) {
        self.init(values: s.values.untracked, indices: s.indices, denseShape: s.denseShape)
    }

    /// `values` with `transform` applied (an element-wise op or a product with a scalar).
    func mapValues(_ transform: (Tensor) throws -> Tensor) rethrows -> Keras3SparseRows {
        Keras3SparseRows(values: try transform(values).untracked, indices: indices, denseShape: denseShape)
    }

    /// Keras 3's `multiply(dense, slices)`: the dense tensor's rows at the indices times the rows.
    func multipliedByRows(of dense: Tensor) throws -> Keras3SparseRows {
        Keras3SparseRows(values: try (try dense.gather(indices).untracked * values).untracked, indices: indices,
                         denseShape: denseShape)
    }

    /// Keras 3's `divide(slices, dense)` (`sparse.elementwise_division`): each row divided by the dense
    /// tensor's row at its index. Where a row of the divisor holds a zero or NaN that no index names, Keras
    /// adds that row (0 divided by it: NaN), so the result stays what the dense division gives there.
    func divided(by dense: Tensor) throws -> Keras3SparseRows {
        var rows = self
        let rowSize = denseShape.dropFirst().reduce(1, *)
        let divisor = dense.doubles
        let present = Set(indices)
        var extra: [Int] = []
        if rowSize > 0 {
            for r in 0..<denseShape[0] where !present.contains(r) {
                if divisor[(r * rowSize)..<((r + 1) * rowSize)].contains(where: { $0 == 0 || $0.isNaN }) { extra.append(r) }
            }
        }
        if !extra.isEmpty {
            let zeros = try Tensor.zeros(shape: [extra.count] + denseShape.dropFirst(), dtype: values.dtype)
            rows.values = try Tensor.concat([values, zeros], axis: 0).untracked
            rows.indices = indices + extra
        }
        rows.values = try (rows.values / (try dense.gather(rows.indices).untracked)).untracked
        return rows
    }

    /// The dense tensor: zeros with the rows added at their indices (`convert_to_tensor`).
    func densified() throws -> Tensor {
        try IndexedSlices(values: values, indices: indices, denseShape: denseShape).toDense().untracked
    }

    /// `variable.scatter_add(rows)` (or `scatter_sub` when `subtract`): each row added in turn, repeated
    /// indices included.
    func scatter(into variable: Variable, subtract: Bool) {
        let storage = variable.uniqueStorageForUpdate()
        let row = denseShape.dropFirst().reduce(1, *)
        func run<T: FloatingElement>(_: T.Type) {
            let w = storage.base.assumingMemoryBound(to: T.self)
            let src = values.unsafeStorage.base.assumingMemoryBound(to: T.self)
            for (r, index) in indices.enumerated() {
                if subtract {
                    for j in 0..<row { w[index * row + j] -= src[r * row + j] }
                } else {
                    for j in 0..<row { w[index * row + j] += src[r * row + j] }
                }
            }
        }
        withExtendedLifetime((storage, values)) {
            if variable.dtype == .float32 { run(Float.self) } else { run(Double.self) }
        }
    }
}
