import DescentAutodiff
@_spi(DescentInternals) import DescentTensor
import Testing

// gather (embedding lookups), its sparse gradient through a tape, and IndexedSlices.

/// Runs `body`, expecting a `TensorError` whose message contains every string in `fragments`.
private func expectGatherError(
    containing fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    let error = #expect(throws: TensorError.self, sourceLocation: sourceLocation) { try body() }
    guard let message = error?.description else { return }
    for fragment in fragments {
        #expect(message.contains(fragment), "\"\(message)\" should mention \"\(fragment)\"", sourceLocation: sourceLocation)
    }
}

/// A [rows, columns] float64 table whose element (r, c) is 10 * r + c.
private func gatherTable(_ rows: Int, _ columns: Int) throws -> Tensor {
    try Tensor(shape: [rows, columns], scalars: (0..<rows * columns).map { Double(10 * ($0 / columns) + $0 % columns) })
}

@Suite struct GatherTests {
    // MARK: Values

    @Test func gatherRowsByIntArray() throws {
        let t = try gatherTable(4, 3)
        let g = try t.gather([2, 0, 2])
        #expect(g.shape == [3, 3])
        #expect(g.doubles == [20, 21, 22, 0, 1, 2, 20, 21, 22])
        #expect(try t.gather([]).shape == [0, 3])
        #expect(try t.gather([3]).doubles == [30, 31, 32])

        let cube = try Tensor(shape: [3, 2, 2], scalars: (0..<12).map { Float($0) })
        let c = try cube.gather([1, 1, 0])
        #expect(c.shape == [3, 2, 2])
        #expect(try c.scalars(as: Float.self) == [4, 5, 6, 7, 4, 5, 6, 7, 0, 1, 2, 3])

        let ints = Tensor([Int64(7), -8, 9])
        #expect(try ints.gather([2, 1]).scalars(as: Int64.self) == [9, -8])
        #expect(try ints.gather([0]).shape == [1])
    }

    @Test func gatherByIndexTensor() throws {
        let t = try gatherTable(4, 3)
        let indices = try Tensor(shape: [2, 2], scalars: [1, 3, 3, 0] as [Int64])
        let g = try t.gather(indices)
        #expect(g.shape == [2, 2, 3])
        #expect(g.doubles == [10, 11, 12, 30, 31, 32, 30, 31, 32, 0, 1, 2])
        // A scalar index drops the leading axis; integral floating-point indices are accepted.
        let row = try t.gather(Tensor(Int64(2)))
        #expect(row.shape == [3])
        #expect(row.doubles == [20, 21, 22])
        #expect(try t.gather(Tensor([1, 0] as [Float])).doubles == [10, 11, 12, 0, 1, 2])
        #expect(try t.gather(Tensor([] as [Int64])).shape == [0, 3])
        #expect(try Tensor([5.0, 6]).gather(Tensor(shape: [1, 2], scalars: [Int64(1), 1])).shape == [1, 2])
    }

    @Test func gatherErrors() throws {
        let t = try gatherTable(4, 3)
        #expect(throws: TensorError.indexOutOfRange(operation: "gather", index: 4, bound: 4)) { try t.gather([0, 4]) }
        #expect(throws: TensorError.indexOutOfRange(operation: "gather", index: -1, bound: 4)) { try t.gather([-1]) }
        #expect(throws: TensorError.indexOutOfRange(operation: "gather", index: 7, bound: 4)) {
            try t.gather(Tensor([Int64(1), 7]))
        }
        #expect(throws: TensorError.invalidArgument(operation: "gather", reason: "index 1.5 is not an integer")) {
            try t.gather(Tensor([0, 1.5]))
        }
        expectGatherError(containing: ["gather", "not an integer"]) { _ = try t.gather(Tensor([Double.nan])) }
        // Values no Int can hold must throw, not trap.
        expectGatherError(containing: ["gather"]) { _ = try t.gather(Tensor([Double.infinity])) }
        expectGatherError(containing: ["gather"]) { _ = try t.gather(Tensor([-1e300])) }
        expectGatherError(containing: ["gather"]) { _ = try t.gather(Tensor([Float(1e20)])) }
        #expect(throws: TensorError.invalidShape(operation: "gather", shape: [], reason: "needs rank >= 1")) {
            try Tensor(1.0).gather([0])
        }
        #expect(throws: TensorError.indexOutOfRange(operation: "gather", index: 0, bound: 0)) {
            try Tensor.zeros(shape: [0, 2]).gather([0])
        }
    }

    // MARK: Gradients

    @Test func gatherGradientMatchesFiniteDifferences() throws {
        try checkGradient([try sample([4, 3])]) { try $0[0].gather([0, 2, 2]) }
        try checkGradient([try sample([3, 2, 2])]) { try $0[0].gather([2, 0]).exp() }
        try checkGradient([try sample([4, 2])]) {
            try $0[0].gather(Tensor(shape: [2, 2], scalars: [1, 3, 3, 0] as [Int64])) * 2
        }
        // Gather of a gather, and gather combined with a dense use.
        try checkGradient([try sample([5, 2])]) { try $0[0].gather([4, 1, 1]).gather([2, 0, 2]) }
        try checkGradient([try sample([3, 2])]) { try $0[0].gather([1]) * $0[0] }
    }

    @Test func gradientWithRespectToAVariableIsSparse() throws {
        let v = Variable(try gatherTable(4, 3), name: "embedding")
        let w = try Tensor(shape: [3, 3], scalars: (1...9).map(Double.init))
        let tape = GradientTape()
        let loss = try tape.record { try (v.value.gather([0, 2, 2]) * w).sum() }
        // rows [0, 1, 2], [20, 21, 22] twice, weighted by 1...9.
        #expect(try loss.item() == 831)
        let g = try #require(try tape.gradient(of: loss, wrt: v))
        let slices = try #require(g.indexedSlices)
        #expect(slices.indices == [0, 2, 2])
        #expect(slices.values == w)
        #expect(slices.denseShape == [4, 3])
        #expect(g.shape == [4, 3])
        #expect(g.dtype == .float64)
        #expect(try g.denseValue.shape == [4, 3])
        #expect(try g.denseValue.doubles == [1, 2, 3, 0, 0, 0, 11, 13, 15, 0, 0, 0])
    }

    @Test func sparseGradientThroughAnIndexTensorAndFloat32() throws {
        let v = Variable(try gatherTable(4, 2).cast(to: .float32))
        let upstream = try Tensor(shape: [2, 2, 2], scalars: [1, 2, 3, 4, 5, 6, 7, 8] as [Float])
        let tape = GradientTape()
        let loss = try tape.record {
            try (v.value.gather(Tensor(shape: [2, 2], scalars: [1, 3, 3, 0] as [Int64])) * upstream).sum()
        }
        let g = try #require(try tape.gradient(of: loss, wrt: v))
        let slices = try #require(g.indexedSlices)
        #expect(slices.indices == [1, 3, 3, 0])
        #expect(slices.values.shape == [4, 2])
        #expect(try slices.values.scalars(as: Float.self) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(slices.dtype == .float32)
        #expect(try g.denseValue.scalars(as: Float.self) == [7, 8, 1, 2, 0, 0, 8, 10])
    }

    @Test func twoGathersGiveConcatenatedSlices() throws {
        let v = Variable(try gatherTable(4, 2))
        let a = try Tensor(shape: [1, 2], scalars: [1.0, 2])
        let b = try Tensor(shape: [2, 2], scalars: [10.0, 20, 30, 40])
        let tape = GradientTape()
        let loss = try tape.record { try (v.value.gather([1]) * a).sum() + (v.value.gather([3, 1]) * b).sum() }
        let g = try #require(try tape.gradient(of: loss, wrt: v))
        let slices = try #require(g.indexedSlices, "two sparse gradients stay sparse")
        #expect(slices.values.shape == [3, 2])
        let rows = slices.values.doubles
        let pairs = slices.indices.enumerated().map { r, index in [Double(index), rows[2 * r], rows[2 * r + 1]] }
        #expect(pairs.sorted { $0.lexicographicallyPrecedes($1) } == [[1, 1, 2], [1, 30, 40], [3, 10, 20]])
        #expect(try g.denseValue.doubles == [0, 0, 31, 42, 0, 0, 10, 20])
    }

    @Test func gatherPlusDenseUseGivesADenseGradient() throws {
        let v = Variable(try gatherTable(3, 2))
        let w = try Tensor(shape: [2, 2], scalars: [1.0, 2, 3, 4])
        let tape = GradientTape()
        let loss = try tape.record { try (v.value.gather([0, 0]) * w).sum() + (v.value * 2).sum() }
        let g = try #require(try tape.gradient(of: loss, wrt: v))
        #expect(g.indexedSlices == nil)
        guard case .dense(let dense) = g else {
            Issue.record("expected a dense gradient, got \(g)")
            return
        }
        #expect(dense.shape == [3, 2])
        #expect(dense.doubles == [6, 8, 2, 2, 2, 2])
    }

    @Test func unrelatedVariableHasNoGradient() throws {
        let v = Variable(try gatherTable(3, 2)), u = Variable(try gatherTable(2, 2))
        let tape = GradientTape()
        let loss = try tape.record { _ = u.value; return try v.value.gather([1]).sum() }
        let grads = try tape.gradient(of: loss, wrt: [v, u])
        #expect(grads[0]?.indexedSlices?.indices == [1])
        #expect(grads[1] == nil)
    }

    // MARK: IndexedSlices

    @Test func indexedSlicesValidation() throws {
        let values = try gatherTable(2, 3)
        #expect(throws: TensorError.incompatibleShapes(
            operation: "IndexedSlices", lhs: [2, 3], rhs: [4, 3],
            reason: "values must have shape [1, 3] for 1 indices into dense shape [4, 3]")) {
            try IndexedSlices(values: values, indices: [0], denseShape: [4, 3])
        }
        expectGatherError(containing: ["IndexedSlices", "[2, 3]", "[4, 2]"]) {
            _ = try IndexedSlices(values: values, indices: [0, 1], denseShape: [4, 2])
        }
        #expect(throws: TensorError.indexOutOfRange(operation: "IndexedSlices", index: 4, bound: 4)) {
            try IndexedSlices(values: values, indices: [0, 4], denseShape: [4, 3])
        }
        #expect(throws: TensorError.indexOutOfRange(operation: "IndexedSlices", index: -1, bound: 4)) {
            try IndexedSlices(values: values, indices: [-1, 0], denseShape: [4, 3])
        }
        expectGatherError(containing: ["IndexedSlices", "[]"]) {
            _ = try IndexedSlices(values: Tensor(1.0), indices: [], denseShape: [])
        }
        let ok = try IndexedSlices(values: values, indices: [3, 3], denseShape: [4, 3])
        #expect(ok.rowSize == 3)
        #expect(ok.dtype == .float64)
    }

    @Test(arguments: DType.allCases)
    func toDenseScattersAndSums(dtype: DType) throws {
        let values = try Tensor(shape: [3, 2], scalars: [1.0, 2, 3, 4, 5, 6]).cast(to: dtype)
        let slices = try IndexedSlices(values: values, indices: [2, 0, 2], denseShape: [4, 2])
        let dense = try slices.toDense()
        #expect(dense.dtype == dtype)
        #expect(dense.shape == [4, 2])
        #expect(dense.doubles == [3, 4, 0, 0, 6, 8, 0, 0])
    }

    @Test func toDenseOfHigherRankAndEmptySlices() throws {
        let values = try Tensor(shape: [2, 2, 2], scalars: (1...8).map(Double.init))
        let slices = try IndexedSlices(values: values, indices: [1, 1], denseShape: [3, 2, 2])
        #expect(slices.rowSize == 4)
        #expect(try slices.toDense().doubles == [0, 0, 0, 0, 6, 8, 10, 12, 0, 0, 0, 0])
        let empty = try IndexedSlices(values: Tensor.zeros(shape: [0, 3]), indices: [], denseShape: [2, 3])
        #expect(try empty.toDense() == (try Tensor.zeros(shape: [2, 3])))
    }

    @Test(arguments: DType.allCases)
    func deduplicatedSumsRowsInFirstOccurrenceOrder(dtype: DType) throws {
        let values = try Tensor(shape: [4, 2], scalars: [1.0, 2, 3, 4, 5, 6, 7, 8]).cast(to: dtype)
        let slices = try IndexedSlices(values: values, indices: [3, 1, 3, 0], denseShape: [5, 2])
        let d = slices.deduplicated()
        #expect(d.indices == [3, 1, 0])
        #expect(d.values.shape == [3, 2])
        #expect(d.values.dtype == dtype)
        #expect(d.values.doubles == [6, 8, 3, 4, 7, 8])
        #expect(d.denseShape == [5, 2])
        #expect(try d.toDense() == slices.toDense())
    }

    @Test func deduplicatedWithoutRepeatsKeepsOrder() throws {
        let values = try gatherTable(3, 2)
        let slices = try IndexedSlices(values: values, indices: [2, 0, 1], denseShape: [3, 2])
        let d = slices.deduplicated()
        #expect(d.indices == [2, 0, 1])
        #expect(d.values == values)
        let repeated = try IndexedSlices(values: Tensor.ones(shape: [4, 1, 2], dtype: .float64),
                                         indices: [1, 1, 1, 1], denseShape: [2, 1, 2]).deduplicated()
        #expect(repeated.indices == [1])
        #expect(repeated.values.shape == [1, 1, 2])
        #expect(repeated.values.doubles == [4, 4])
    }

    @Test func gradientEnumProperties() throws {
        let slices = try IndexedSlices(values: Tensor.ones(shape: [1, 2], dtype: .float64), indices: [1], denseShape: [3, 2])
        let sparse = Gradient.sparse(slices)
        #expect(sparse.shape == [3, 2])
        #expect(sparse.dtype == .float64)
        #expect(sparse.indexedSlices?.indices == [1])
        #expect(try sparse.denseValue.doubles == [0, 0, 1, 1, 0, 0])
        let dense = Gradient.dense(try Tensor.ones(shape: [3, 2], dtype: .float32))
        #expect(dense.indexedSlices == nil)
        #expect(dense.shape == [3, 2] && dense.dtype == .float32)

        let other = try IndexedSlices(values: Tensor(shape: [2, 2], scalars: [5.0, 6, 7, 8]), indices: [0, 1], denseShape: [3, 2])
        let both = try sparse + .sparse(other)
        let s = try #require(both.indexedSlices)
        #expect(s.indices == [1, 0, 1])
        #expect(s.values.doubles == [1, 1, 5, 6, 7, 8])
        #expect(try both.denseValue.doubles == [5, 6, 8, 9, 0, 0])
        let mixed = try sparse + .dense(try Tensor.ones(shape: [3, 2], dtype: .float64))
        #expect(mixed.indexedSlices == nil)
        #expect(try mixed.denseValue.doubles == [1, 1, 2, 2, 1, 1])
    }
}
