import DescentAutodiff
@_spi(DescentInternals) import DescentTensor
import Testing

// Layout operations: reshape, expand/squeeze, flatten, transpose, broadcast, concat, slice and one-hot.

/// Runs `body`, expecting a `TensorError` whose message contains every string in `fragments`.
private func expectShapeOpsError(
    containing fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    let error = #expect(throws: TensorError.self, sourceLocation: sourceLocation) { try body() }
    guard let message = error?.description else { return }
    for fragment in fragments {
        #expect(message.contains(fragment), "\"\(message)\" should mention \"\(fragment)\"", sourceLocation: sourceLocation)
    }
}

/// Row-major strides of `shape`.
private func shapeOpsStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
    return strides
}

/// A straightforward transpose: output element at index `o` reads the input at the permuted index.
private func referenceTranspose(_ values: [Double], shape: [Int], permutation perm: [Int]) -> [Double] {
    let outShape = perm.map { shape[$0] }
    let inStrides = shapeOpsStrides(shape)
    return (0..<values.count).map { o in
        var rest = o, offset = 0
        for axis in stride(from: outShape.count - 1, through: 0, by: -1) {
            offset += (rest % outShape[axis]) * inStrides[perm[axis]]
            rest /= outShape[axis]
        }
        return values[offset]
    }
}

/// The tensor `0, 1, 2, ...` of the given shape and dtype.
private func iota(_ shape: [Int], dtype: DType = .float64) throws -> Tensor {
    try Tensor.range(to: Double(shape.reduce(1, *)), dtype: dtype).reshaped(to: shape)
}

@Suite struct ShapeOpsTests {
    // MARK: reshape

    @Test func reshapeInfersOneDimensionAndSharesStorage() throws {
        let t = try iota([2, 3], dtype: .float32)
        let r = try t.reshaped(to: [3, -1])
        #expect(r.shape == [3, 2])
        #expect(r.doubles == [0, 1, 2, 3, 4, 5])
        #expect(r.sharesStorage(with: t))
        #expect(try t.reshaped(to: [-1]).shape == [6])
        #expect(try t.reshaped(to: [1, -1, 1]).shape == [1, 6, 1])
        #expect(try t.reshaped(to: [6, 1, 1]).shape == [6, 1, 1])
        #expect(try Tensor(Float(2)).reshaped(to: [1, 1]).shape == [1, 1])
        #expect(try Tensor([Float(2)]).reshaped(to: []).shape == [])
        #expect(try Tensor.zeros(shape: [0, 4]).reshaped(to: [2, 0, 3]).shape == [2, 0, 3])
        let ints = try iota([4], dtype: .int64).reshaped(to: [2, 2])
        #expect(try ints.scalars(as: Int64.self) == [0, 1, 2, 3])
    }

    @Test func reshapeErrorsNameTheShapes() throws {
        let t = try iota([2, 3])
        #expect(throws: TensorError.invalidShape(operation: "reshape", shape: [-1, -1],
                                                 reason: "at most one dimension may be -1 and none may be below -1")) {
            try t.reshaped(to: [-1, -1])
        }
        expectShapeOpsError(containing: ["reshape", "[3, -2]"]) { _ = try t.reshaped(to: [3, -2]) }
        expectShapeOpsError(containing: ["reshape", "[2, 3]", "[4, 2]", "6", "8"]) { _ = try t.reshaped(to: [4, 2]) }
        expectShapeOpsError(containing: ["reshape", "[2, 3]", "[4, -1]"]) { _ = try t.reshaped(to: [4, -1]) }
        expectShapeOpsError(containing: ["reshape", "[0, -1]"]) { _ = try Tensor.zeros(shape: [0, 3]).reshaped(to: [0, -1]) }
    }

    @Test func reshapeGradient() throws {
        try checkGradient([try sample([2, 3, 2])]) { try $0[0].reshaped(to: [3, -1]) * $0[0].reshaped(to: [3, 4]) }
        try checkGradient([try sample([6])]) { try $0[0].reshaped(to: [2, 3]).exp() }
    }

    // MARK: expandingDims, squeezing, flattenedBatch

    @Test func expandingDims() throws {
        let t = try iota([2, 3])
        #expect(try t.expandingDims(at: 0).shape == [1, 2, 3])
        #expect(try t.expandingDims(at: 1).shape == [2, 1, 3])
        #expect(try t.expandingDims(at: 2).shape == [2, 3, 1])
        #expect(try t.expandingDims(at: -1).shape == [2, 3, 1])
        #expect(try t.expandingDims(at: -3).shape == [1, 2, 3])
        #expect(try t.expandingDims(at: 1).doubles == t.doubles)
        #expect(try Tensor(3.0).expandingDims(at: 0).shape == [1])
        #expect(throws: TensorError.invalidAxis(operation: "expandingDims", axis: 3, rank: 3)) { try t.expandingDims(at: 3) }
        #expect(throws: TensorError.invalidAxis(operation: "expandingDims", axis: -4, rank: 3)) { try t.expandingDims(at: -4) }
        try checkGradient([try sample([2, 3])]) { try $0[0].expandingDims(at: 1) * sample([2, 4, 3], seed: 3) }
    }

    @Test func squeezing() throws {
        let t = try iota([1, 2, 1, 3])
        #expect(try t.squeezing().shape == [2, 3])
        #expect(try t.squeezing().doubles == t.doubles)
        #expect(try t.squeezing(axes: [0]).shape == [2, 1, 3])
        #expect(try t.squeezing(axes: [-2]).shape == [1, 2, 3])
        #expect(try t.squeezing(axes: [2, 0]).shape == [2, 3])
        #expect(try t.squeezing(axes: []).shape == [1, 2, 1, 3])
        #expect(try Tensor.ones(shape: [1, 1]).squeezing().shape == [])
        #expect(throws: TensorError.invalidShape(operation: "squeezing", shape: [1, 2, 1, 3],
                                                 reason: "axis 1 has size 2, not 1")) {
            try t.squeezing(axes: [1])
        }
        #expect(throws: TensorError.invalidAxis(operation: "squeezing", axis: 4, rank: 4)) { try t.squeezing(axes: [4]) }
        try checkGradient([try sample([1, 3, 1])]) { try $0[0].squeezing() * sample([2, 3], seed: 4) }
    }

    @Test func flattenedBatch() throws {
        let t = try iota([2, 3, 4])
        let f = try t.flattenedBatch()
        #expect(f.shape == [2, 12])
        #expect(f.doubles == t.doubles)
        #expect(try iota([5]).flattenedBatch().shape == [5, 1])
        #expect(try Tensor.zeros(shape: [3, 0, 2]).flattenedBatch().shape == [3, 0])
        #expect(throws: TensorError.invalidShape(operation: "flattenedBatch", shape: [], reason: "needs rank >= 1")) {
            try Tensor(1.0).flattenedBatch()
        }
        try checkGradient([try sample([2, 2, 3])]) { try $0[0].flattenedBatch().exp() }
    }

    // MARK: transposed

    @Test func transposeDefaultReversesAxes() throws {
        let t = try iota([2, 3, 4])
        let r = try t.transposed()
        #expect(r.shape == [4, 3, 2])
        #expect(r.doubles == referenceTranspose(t.doubles, shape: [2, 3, 4], permutation: [2, 1, 0]))
        #expect(try r.element(at: [3, 1, 0]) == t.element(at: [0, 1, 3]))
        #expect(try Tensor(2.0).transposed() == Tensor(2.0))
        #expect(try iota([5]).transposed().doubles == [0, 1, 2, 3, 4])
    }

    @Test func transpose2D() throws {
        let t = try Tensor(rows: [[1, 2, 3], [4, 5, 6]] as [[Float]])
        let r = try t.transposed()
        #expect(r.shape == [3, 2])
        #expect(try r.scalars(as: Float.self) == [1, 4, 2, 5, 3, 6])
        #expect(try t.transposed(permutation: [1, 0]) == r)
        #expect(try t.transposed(permutation: [0, 1]) == t)
        #expect(try r.transposed() == t)
    }

    @Test(arguments: [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])
    func transpose3DPermutations(permutation: [Int]) throws {
        let shape = [2, 3, 4]
        for dtype in DType.allCases {
            let t = try iota(shape, dtype: dtype)
            let r = try t.transposed(permutation: permutation)
            #expect(r.dtype == dtype)
            #expect(r.shape == permutation.map { shape[$0] })
            #expect(r.doubles == referenceTranspose(t.doubles, shape: shape, permutation: permutation))
        }
        try checkGradient([try sample(shape)]) { try $0[0].transposed(permutation: permutation) }
    }

    @Test func transpose4DAndZeroSized() throws {
        let shape = [2, 3, 1, 5]
        let t = try iota(shape)
        let perm = [3, 1, 0, 2]
        #expect(try t.transposed(permutation: perm).doubles == referenceTranspose(t.doubles, shape: shape, permutation: perm))
        let empty = try Tensor.zeros(shape: [0, 3]).transposed()
        #expect(empty.shape == [3, 0])
        #expect(try Tensor.zeros(shape: [2, 0, 3]).transposed(permutation: [2, 0, 1]).shape == [3, 2, 0])
    }

    @Test(arguments: [DType.float32, .float64, .int64])
    func transposeLargeMatrixMatchesReference(dtype: DType) throws {
        // Larger than the 32x32 blocks of the 2-d path, with ragged edges.
        let t = try iota([100, 70], dtype: dtype)
        let r = try t.transposed()
        #expect(r.shape == [70, 100])
        #expect(r.doubles == referenceTranspose(t.doubles, shape: [100, 70], permutation: [1, 0]))
        #expect(try r.transposed() == t)
    }

    @Test func transposeInt64() throws {
        let t = try Tensor(shape: [2, 2], scalars: [Int64.max, 1, -5, Int64.min])
        #expect(try t.transposed().scalars(as: Int64.self) == [Int64.max, -5, 1, Int64.min])
    }

    @Test func invalidPermutationThrows() throws {
        let t = try iota([2, 3])
        #expect(throws: TensorError.invalidArgument(
            operation: "transposed", reason: "permutation [0, 0] is not a permutation of the 2 axes of shape [2, 3]")) {
            try t.transposed(permutation: [0, 0])
        }
        expectShapeOpsError(containing: ["transposed", "[0, 1, 2]", "[2, 3]"]) { _ = try t.transposed(permutation: [0, 1, 2]) }
        expectShapeOpsError(containing: ["transposed", "[1, 2]"]) { _ = try t.transposed(permutation: [1, 2]) }
        expectShapeOpsError(containing: ["transposed", "[-1, 0]"]) { _ = try t.transposed(permutation: [-1, 0]) }
    }

    @Test func transposeGradient() throws {
        try checkGradient([try sample([3, 4])]) { try $0[0].transposed() }
        // A non-involutive permutation, so a wrong inverse in the backward pass shows.
        try checkGradient([try sample([2, 3, 4])]) { try $0[0].transposed(permutation: [1, 2, 0]) * sample([3, 4, 2], seed: 5) }
        try checkGradient([try sample([2, 2, 3, 2])]) { try $0[0].transposed(permutation: [3, 0, 2, 1]).exp() }
    }

    // MARK: broadcast

    @Test func broadcastValues() throws {
        let row = Tensor([1, 2, 3] as [Float])
        let b = try row.broadcast(to: [2, 3])
        #expect(b.shape == [2, 3])
        #expect(try b.scalars(as: Float.self) == [1, 2, 3, 1, 2, 3])
        let column = try Tensor(shape: [2, 1], scalars: [1.0, 2])
        #expect(try column.broadcast(to: [2, 3]).doubles == [1, 1, 1, 2, 2, 2])
        #expect(try column.broadcast(to: [2, 2, 2]).doubles == [1, 1, 2, 2, 1, 1, 2, 2])
        #expect(try Tensor(7.0).broadcast(to: [2, 2]).doubles == [7, 7, 7, 7])
        let ints = try Tensor([Int64(4), -1]).broadcast(to: [3, 2])
        #expect(ints.dtype == .int64)
        #expect(try ints.scalars(as: Int64.self) == [4, -1, 4, -1, 4, -1])
        #expect(try row.broadcast(to: [3]) == row)
        #expect(try row.broadcast(to: [0, 3]).shape == [0, 3])
    }

    @Test func broadcastErrors() throws {
        let t = Tensor([1, 2, 3] as [Float])
        expectShapeOpsError(containing: ["broadcast(to:)", "[3]", "[2, 4]"]) { _ = try t.broadcast(to: [2, 4]) }
        #expect(throws: TensorError.incompatibleShapes(operation: "broadcast(to:)", lhs: [2, 3], rhs: [3],
                                                       reason: "cannot broadcast to the target")) {
            try t.broadcast(to: [2, 3]).broadcast(to: [3])
        }
        expectShapeOpsError(containing: ["broadcast(to:)", "[2, 1]", "[1, 3]"]) {
            _ = try Tensor.zeros(shape: [2, 1]).broadcast(to: [1, 3])
        }
    }

    @Test func broadcastGradient() throws {
        try checkGradient([try sample([2, 1])]) { try $0[0].broadcast(to: [2, 3]) }
        try checkGradient([try sample([3])]) { try $0[0].broadcast(to: [4, 2, 3]) }
        try checkGradient([try sample([1, 3, 1])]) { try $0[0].broadcast(to: [2, 3, 4]) }
        try checkGradient([try sample([])]) { try $0[0].broadcast(to: [2, 2]) }
    }

    // MARK: concat

    @Test func concatAlongAxes() throws {
        let a = try Tensor(rows: [[1, 2], [3, 4]] as [[Float]])
        let b = try Tensor(rows: [[5, 6]] as [[Float]])
        let c0 = try Tensor.concat([a, b])
        #expect(c0.shape == [3, 2])
        #expect(try c0.scalars(as: Float.self) == [1, 2, 3, 4, 5, 6])

        let d = try Tensor(rows: [[7], [8]] as [[Float]])
        let c1 = try Tensor.concat([a, d], axis: 1)
        #expect(c1.shape == [2, 3])
        #expect(try c1.scalars(as: Float.self) == [1, 2, 7, 3, 4, 8])
        #expect(try Tensor.concat([a, d], axis: -1) == c1)

        // Three inputs on the middle axis of a 3-d tensor.
        let x = try iota([2, 1, 2]), y = try iota([2, 2, 2]) + 10, z = try iota([2, 3, 2]) + 100
        let c = try Tensor.concat([x, y, z], axis: 1)
        #expect(c.shape == [2, 6, 2])
        #expect(c.doubles == [0, 1, 10, 11, 12, 13, 100, 101, 102, 103, 104, 105,
                              2, 3, 14, 15, 16, 17, 106, 107, 108, 109, 110, 111])
        #expect(try Tensor.concat([x, y, z], axis: -2) == c)
        // Last axis of the 3-d tensors.
        let last = try Tensor.concat([iota([2, 2, 1]), iota([2, 2, 2]) + 10], axis: -1)
        #expect(last.doubles == [0, 10, 11, 1, 12, 13, 2, 14, 15, 3, 16, 17])
    }

    @Test func concatInt64AndEdgeCases() throws {
        let a = Tensor([Int64.max, 1]), b = Tensor([Int64.min])
        let c = try Tensor.concat([a, b, a])
        #expect(c.dtype == .int64)
        #expect(try c.scalars(as: Int64.self) == [Int64.max, 1, Int64.min, Int64.max, 1])
        let single = Tensor([1.0, 2])
        #expect(try Tensor.concat([single]) == single)
        let withEmpty = try Tensor.concat([Tensor.zeros(shape: [2, 0], dtype: .float64), iota([2, 3])], axis: 1)
        #expect(withEmpty.shape == [2, 3])
        #expect(withEmpty.doubles == [0, 1, 2, 3, 4, 5])
    }

    @Test func concatErrors() throws {
        let a = try Tensor.zeros(shape: [2, 3]), b = try Tensor.zeros(shape: [3]), c = try Tensor.zeros(shape: [2, 4])
        #expect(throws: TensorError.incompatibleShapes(operation: "concat", lhs: [2, 3], rhs: [3], reason: "ranks differ")) {
            try Tensor.concat([a, b])
        }
        #expect(throws: TensorError.incompatibleShapes(operation: "concat", lhs: [2, 3], rhs: [2, 4],
                                                       reason: "dimensions other than axis 0 must match")) {
            try Tensor.concat([a, c], axis: 0)
        }
        expectShapeOpsError(containing: ["concat", "[2, 3]", "[2, 4]"]) { _ = try Tensor.concat([a, a, c]) }
        #expect(throws: TensorError.dtypeMismatch(operation: "concat", lhs: .float32, rhs: .float64)) {
            try Tensor.concat([a, a.cast(to: .float64)])
        }
        #expect(throws: TensorError.invalidArgument(operation: "concat", reason: "needs at least one tensor")) {
            try Tensor.concat([])
        }
        #expect(throws: TensorError.invalidAxis(operation: "concat", axis: 2, rank: 2)) { try Tensor.concat([a, a], axis: 2) }
        #expect(throws: TensorError.invalidAxis(operation: "concat", axis: -3, rank: 2)) { try Tensor.concat([a, a], axis: -3) }
        #expect(throws: TensorError.invalidAxis(operation: "concat", axis: 0, rank: 0)) {
            try Tensor.concat([Tensor(1.0), Tensor(2.0)])
        }
    }

    @Test func concatGradientReachesEachInput() throws {
        try checkGradient([try sample([2, 3]), try sample([1, 3], seed: 2), try sample([3, 3], seed: 3)]) {
            try Tensor.concat($0, axis: 0)
        }
        try checkGradient([try sample([2, 1, 3]), try sample([2, 2, 3], seed: 2)]) { try Tensor.concat($0, axis: 1) }
        try checkGradient([try sample([2, 2, 1]), try sample([2, 2, 3], seed: 2), try sample([2, 2, 2], seed: 3)]) {
            try Tensor.concat($0, axis: -1).exp()
        }
        // The same tensor twice: both slices of the gradient add up.
        try checkGradient([try sample([2, 2])]) { try Tensor.concat([$0[0], $0[0] * $0[0]], axis: 1) }
    }

    // MARK: slice

    @Test func sliceValues() throws {
        let t = try iota([3, 4])
        let s = try t.slice(start: [1, 1], size: [2, -1])
        #expect(s.shape == [2, 3])
        #expect(s.doubles == [5, 6, 7, 9, 10, 11])
        #expect(try t.slice(start: [0, 2], size: [-1, 1]).doubles == [2, 6, 10])
        #expect(try t.slice(start: [0, 0], size: [-1, -1]) == t)
        #expect(try t.slice(start: [2, 4], size: [-1, -1]).shape == [1, 0])
        let cube = try iota([2, 3, 4])
        #expect(try cube.slice(start: [1, 1, 2], size: [1, 2, 2]).doubles == [18, 19, 22, 23])
        let ints = try iota([4, 2], dtype: .int64)
        #expect(try ints.slice(start: [1, 1], size: [3, 1]).scalars(as: Int64.self) == [3, 5, 7])
        #expect(try Tensor(5.0).slice(start: [], size: []) == Tensor(5.0))
    }

    @Test func sliceRows() throws {
        let t = try iota([5, 2])
        #expect(try t.slice(rows: 1..<3).doubles == [2, 3, 4, 5])
        #expect(try t.slice(rows: 1..<3).shape == [2, 2])
        #expect(try t.slice(rows: 4..<5).doubles == [8, 9])
        #expect(try t.slice(rows: 2..<2).shape == [0, 2])
        #expect(try iota([4]).slice(rows: 1..<4).doubles == [1, 2, 3])
    }

    @Test func sliceErrors() throws {
        let t = try iota([3, 4])
        #expect(throws: TensorError.invalidArgument(operation: "slice",
                                                    reason: "start [2, 0] with size [2, 4] is outside shape [3, 4]")) {
            try t.slice(start: [2, 0], size: [2, 4])
        }
        expectShapeOpsError(containing: ["slice", "[-1, 0]", "[3, 4]"]) { _ = try t.slice(start: [-1, 0], size: [1, 1]) }
        expectShapeOpsError(containing: ["slice", "[0, 0]", "[1, -2]"]) { _ = try t.slice(start: [0, 0], size: [1, -2]) }
        expectShapeOpsError(containing: ["slice", "[4, 0]"]) { _ = try t.slice(start: [4, 0], size: [-1, -1]) }
        expectShapeOpsError(containing: ["slice", "[0]", "[3, 4]"]) { _ = try t.slice(start: [0], size: [1]) }
        expectShapeOpsError(containing: ["slice", "[3, 4]"]) { _ = try t.slice(rows: 2..<5) }
        #expect(throws: TensorError.invalidShape(operation: "slice(rows:)", shape: [], reason: "needs rank >= 1")) {
            try Tensor(1.0).slice(rows: 0..<1)
        }
    }

    @Test func sliceGradient() throws {
        try checkGradient([try sample([3, 4])]) { try $0[0].slice(start: [1, 1], size: [2, -1]) }
        try checkGradient([try sample([2, 3, 4])]) { try $0[0].slice(start: [0, 1, 2], size: [2, 2, 1]).exp() }
        try checkGradient([try sample([5, 2])]) { try $0[0].slice(rows: 1..<4) * $0[0].slice(rows: 0..<3) }
    }

    // MARK: oneHot

    @Test func oneHotRows() throws {
        let indices = Tensor([0, 2, 5, -1, 1] as [Int64])
        let o = try Tensor.oneHot(indices, depth: 3)
        #expect(o.shape == [5, 3])
        #expect(o.dtype == .float32)
        #expect(try o.scalars(as: Float.self) == [1, 0, 0,  0, 0, 1,  0, 0, 0,  0, 0, 0,  0, 1, 0])

        let grid = try Tensor(shape: [2, 2], scalars: [1, 0, 0, 1] as [Int64])
        let g = try Tensor.oneHot(grid, depth: 2, dtype: .float64)
        #expect(g.shape == [2, 2, 2])
        #expect(g.doubles == [0, 1, 1, 0, 1, 0, 0, 1])
        let i = try Tensor.oneHot(Tensor([Int64(1)]), depth: 4, dtype: .int64)
        #expect(try i.scalars(as: Int64.self) == [0, 1, 0, 0])
        #expect(try Tensor.oneHot(Tensor(Int64(2)), depth: 3).doubles == [0, 0, 1])
        #expect(try Tensor.oneHot(Tensor([Int64(0)]), depth: 0).shape == [1, 0])
        #expect(throws: TensorError.invalidArgument(operation: "oneHot", reason: "depth -1 is negative")) {
            try Tensor.oneHot(Tensor([Int64(0)]), depth: -1)
        }
    }

    @Test func oneHotOfNonIntegralFloatIndicesGivesZeroRows() throws {
        let indices = Tensor([1, 1.5, .nan, .infinity, -.infinity, 1e300, 2] as [Double])
        let o = try Tensor.oneHot(indices, depth: 3)
        #expect(o.doubles == [0, 1, 0] + [Double](repeating: 0, count: 15) + [0, 0, 1])
    }
}
