import DescentAutodiff
import DescentTensor
import Testing

// Matrix multiplication: values against a reference loop, transposes, batching, gradients and errors.

/// `op(a) x op(b)` over the last two axes by the textbook triple loop, in `Double`. Batch axes must be
/// equal, or one operand must be a plain matrix (broadcast over the other's batch).
private func referenceMatmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> (shape: [Int], values: [Double]) {
    let (av, bv) = (a.doubles, b.doubles)
    let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    let (m, k) = transposeA ? (ac, ar) : (ar, ac)
    let n = transposeB ? br : bc
    let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
    let batch = aBatch.isEmpty ? bBatch : aBatch
    let batchCount = batch.reduce(1, *)
    var out = [Double](repeating: 0, count: batchCount * m * n)
    for t in 0..<batchCount {
        let aOff = aBatch.isEmpty ? 0 : t * ar * ac, bOff = bBatch.isEmpty ? 0 : t * br * bc
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let x = transposeA ? av[aOff + p * ac + i] : av[aOff + i * ac + p]
                    let y = transposeB ? bv[bOff + j * bc + p] : bv[bOff + p * bc + j]
                    sum += x * y
                }
                out[t * m * n + i * n + j] = sum
            }
        }
    }
    return (batch + [m, n], out)
}

/// Stored shape of an operand whose (possibly transposed) logical shape is `batch + [rows, columns]`.
private func storedShape(_ batch: [Int], _ rows: Int, _ columns: Int, transposed: Bool) -> [Int] {
    batch + (transposed ? [columns, rows] : [rows, columns])
}

/// Runs `body`, expecting a `TensorError` whose message contains every string in `fragments`.
private func expectMatmulError(
    containing fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    let error = #expect(throws: TensorError.self, sourceLocation: sourceLocation) { try body() }
    guard let message = error?.description else { return }
    for fragment in fragments {
        #expect(message.contains(fragment), "\"\(message)\" should mention \"\(fragment)\"", sourceLocation: sourceLocation)
    }
}

/// One batch configuration: the batch axes of each operand.
struct MatmulBatchCase: Sendable, CustomTestStringConvertible {
    let aBatch: [Int], bBatch: [Int]
    var testDescription: String { "a batch \(aBatch), b batch \(bBatch)" }
}

private let matmulBatchCases = [
    MatmulBatchCase(aBatch: [], bBatch: []),
    MatmulBatchCase(aBatch: [2], bBatch: [2]),
    MatmulBatchCase(aBatch: [2], bBatch: []),
    MatmulBatchCase(aBatch: [], bBatch: [2]),
    MatmulBatchCase(aBatch: [2, 3], bBatch: [2, 3]),
    MatmulBatchCase(aBatch: [3, 2], bBatch: []),
]

@Suite struct MatmulTests {
    @Test func smallMatrixExactValues() throws {
        let a = try Tensor(rows: [[1, 2, 3], [4, 5, 6]] as [[Float]])
        let b = try Tensor(rows: [[7, 8], [9, 10], [11, 12]] as [[Float]])
        let c = try a.matmul(b)
        #expect(c.shape == [2, 2])
        #expect(c.dtype == .float32)
        #expect(try c.scalars(as: Float.self) == [58, 64, 139, 154])
        #expect(try matmul(a, b) == c)
        #expect(try matmul(b, a, transposeA: true, transposeB: true) == c.transposed())
    }

    @Test(arguments: [DType.float32, .float64])
    func twoDimensionalMatchesReference(dtype: DType) throws {
        let a = try sample([7, 5], seed: 1).cast(to: dtype), b = try sample([5, 9], seed: 2).cast(to: dtype)
        let c = try a.matmul(b)
        let ref = referenceMatmul(a, b)
        #expect(c.shape == ref.shape)
        #expect(c.dtype == dtype)
        expectClose(c.doubles, ref.values, tolerance: dtype == .float32 ? 1e-5 : 1e-12)
    }

    @Test func largerThanBlasBlockingMatchesReference() throws {
        let a = try sample([33, 65], seed: 3), b = try sample([65, 17], seed: 4)
        expectClose(try a.matmul(b).doubles, referenceMatmul(a, b).values, tolerance: 1e-12)
        let a32 = a.cast(to: .float32), b32 = b.cast(to: .float32)
        expectClose(try a32.matmul(b32).doubles, referenceMatmul(a32, b32).values, tolerance: 1e-4)
    }

    @Test(arguments: [false, true], [false, true])
    func transposeFlagsValuesAndGradients(transposeA: Bool, transposeB: Bool) throws {
        let (m, k, n) = (3, 4, 2)
        for dtype in [DType.float32, .float64] {
            let a = try sample(storedShape([], m, k, transposed: transposeA), seed: 5).cast(to: dtype)
            let b = try sample(storedShape([], k, n, transposed: transposeB), seed: 6).cast(to: dtype)
            let c = try a.matmul(b, transposeA: transposeA, transposeB: transposeB)
            let ref = referenceMatmul(a, b, transposeA: transposeA, transposeB: transposeB)
            #expect(c.shape == [m, n])
            expectClose(c.doubles, ref.values, tolerance: dtype == .float32 ? 1e-5 : 1e-12)
            // The flags agree with materialising the transposes.
            let explicit = try (transposeA ? a.transposed() : a).matmul(transposeB ? b.transposed() : b)
            expectClose(c.doubles, explicit.doubles, tolerance: 1e-6)
            #expect(try matmul(a, b, transposeA: transposeA, transposeB: transposeB) == c)
        }
        try checkGradient([try sample(storedShape([], m, k, transposed: transposeA), seed: 7),
                           try sample(storedShape([], k, n, transposed: transposeB), seed: 8)]) {
            try $0[0].matmul($0[1], transposeA: transposeA, transposeB: transposeB)
        }
    }

    @Test(arguments: matmulBatchCases, [(false, false), (false, true), (true, false), (true, true)])
    func batchedValuesAndGradients(batchCase: MatmulBatchCase, flags: (Bool, Bool)) throws {
        let (transposeA, transposeB) = flags
        let (m, k, n) = (3, 4, 5)
        let aShape = storedShape(batchCase.aBatch, m, k, transposed: transposeA)
        let bShape = storedShape(batchCase.bBatch, k, n, transposed: transposeB)
        let expectedBatch = batchCase.aBatch.isEmpty ? batchCase.bBatch : batchCase.aBatch
        for dtype in [DType.float32, .float64] {
            let a = try sample(aShape, seed: 9).cast(to: dtype), b = try sample(bShape, seed: 10).cast(to: dtype)
            let c = try a.matmul(b, transposeA: transposeA, transposeB: transposeB)
            let ref = referenceMatmul(a, b, transposeA: transposeA, transposeB: transposeB)
            #expect(c.shape == expectedBatch + [m, n])
            #expect(c.dtype == dtype)
            expectClose(c.doubles, ref.values, tolerance: dtype == .float32 ? 1e-5 : 1e-12)
        }
        try checkGradient([try sample(aShape, seed: 11), try sample(bShape, seed: 12)]) {
            try $0[0].matmul($0[1], transposeA: transposeA, transposeB: transposeB)
        }
    }

    @Test func batchedShapes() throws {
        #expect(try sample([2, 3, 4]).matmul(sample([2, 4, 5])).shape == [2, 3, 5])
        #expect(try sample([2, 3, 4]).matmul(sample([4, 5])).shape == [2, 3, 5])
        #expect(try sample([3, 4]).matmul(sample([2, 4, 5])).shape == [2, 3, 5])
        #expect(try sample([2, 4, 3]).matmul(sample([5, 4]), transposeA: true, transposeB: true).shape == [2, 3, 5])
    }

    @Test func broadcastOperandGradientSumsOverTheBatch() throws {
        let a = try sample([2, 3, 4], seed: 13), b = try sample([4, 5], seed: 14)
        let tape = GradientTape()
        let (wa, wb) = (tape.watch(a), tape.watch(b))
        let loss = try tape.record { try wa.matmul(wb).sum() }
        let grads = try tape.gradient(of: loss, wrt: [wa, wb])
        let gb = try #require(grads[1]).denseValue
        #expect(gb.shape == [4, 5])
        // d(sum(A_t B))/dB = sum over t of A_t^T 1.
        let ones = try Tensor.ones(shape: [3, 5], dtype: .float64)
        let expected = try (a.slice(rows: 0..<1).squeezing(axes: [0]).matmul(ones, transposeA: true)
                            + a.slice(rows: 1..<2).squeezing(axes: [0]).matmul(ones, transposeA: true))
        expectClose(gb.doubles, expected.doubles, tolerance: 1e-12)
        let ga = try #require(grads[0]).denseValue
        #expect(ga.shape == [2, 3, 4])
        let rowSums = try b.sum(axes: [1]).doubles  // d/dA_t[i, p] = sum_j B[p, j]
        expectClose(ga.doubles, (0..<6).flatMap { _ in rowSums }, tolerance: 1e-12)
    }

    @Test func freeFunctionMatchesMethod() throws {
        let a = try sample([2, 4, 3], seed: 15), b = try sample([4, 5], seed: 16)
        #expect(try matmul(a, b, transposeA: true) == a.matmul(b, transposeA: true))
        #expect(try matmul(b, b, transposeA: true) == b.matmul(b, transposeA: true))
        try checkGradient([a, b]) { try matmul($0[0], $0[1], transposeA: true) }
    }

    @Test func zeroSizedDimensions() throws {
        // k = 0: an empty sum, so zeros.
        let z = try Tensor.zeros(shape: [2, 0]).matmul(Tensor.zeros(shape: [0, 3]))
        #expect(z.shape == [2, 3])
        #expect(z.doubles == [0, 0, 0, 0, 0, 0])
        let zt = try Tensor.zeros(shape: [0, 2], dtype: .float64).matmul(Tensor.zeros(shape: [3, 0], dtype: .float64),
                                                                         transposeA: true, transposeB: true)
        #expect(zt.shape == [2, 3] && zt.doubles == [0, 0, 0, 0, 0, 0])
        #expect(try Tensor.zeros(shape: [2, 2, 0]).matmul(Tensor.zeros(shape: [0, 4])).doubles == [Double](repeating: 0, count: 16))
        // m = 0, n = 0 and an empty batch give empty results.
        #expect(try Tensor.zeros(shape: [0, 3]).matmul(Tensor.ones(shape: [3, 2])).shape == [0, 2])
        #expect(try Tensor.ones(shape: [2, 3]).matmul(Tensor.zeros(shape: [3, 0])).shape == [2, 0])
        #expect(try Tensor.zeros(shape: [0, 2, 3]).matmul(Tensor.ones(shape: [3, 4])).shape == [0, 2, 4])
        // Gradients through k = 0 have the (empty) operand shapes.
        let tape = GradientTape()
        let (a, b) = (tape.watch(try Tensor.zeros(shape: [2, 0], dtype: .float64)), tape.watch(try Tensor.zeros(shape: [0, 3], dtype: .float64)))
        let loss = try tape.record { try a.matmul(b).sum() }
        let grads = try tape.gradient(of: loss, wrt: [a, b], unconnected: .zero)
        #expect(grads.map { $0?.shape } == [[2, 0], [0, 3]])
    }

    @Test func errorsNameBothShapes() throws {
        let a = try Tensor.zeros(shape: [2, 3]), b = try Tensor.zeros(shape: [4, 5])
        #expect(throws: TensorError.incompatibleShapes(operation: "matmul", lhs: [2, 3], rhs: [4, 5],
                                                       reason: "inner dimensions 3 and 4 differ")) {
            try a.matmul(b)
        }
        expectMatmulError(containing: ["matmul", "[2, 3]", "[4, 5]", "inner dimensions 2 and 4", "transposeA: true"]) {
            _ = try a.matmul(b, transposeA: true)
        }
        expectMatmulError(containing: ["matmul", "[2, 3]", "[4, 5]", "transposeB: true"]) {
            _ = try a.matmul(b, transposeB: true)
        }
        #expect(throws: TensorError.incompatibleShapes(operation: "matmul", lhs: [3], rhs: [3, 2],
                                                       reason: "both operands need rank >= 2")) {
            try Tensor.zeros(shape: [3]).matmul(Tensor.zeros(shape: [3, 2]))
        }
        expectMatmulError(containing: ["matmul", "[2, 3]", "[3]", "rank >= 2"]) { _ = try a.matmul(Tensor.zeros(shape: [3])) }
        expectMatmulError(containing: ["matmul", "[]", "rank >= 2"]) { _ = try Tensor(Float(1)).matmul(a) }
        #expect(throws: TensorError.incompatibleShapes(operation: "matmul", lhs: [2, 3, 4], rhs: [3, 4, 5],
                                                       reason: "batch dimensions [2] and [3] differ")) {
            try Tensor.zeros(shape: [2, 3, 4]).matmul(Tensor.zeros(shape: [3, 4, 5]))
        }
        // Batch axes do not broadcast among themselves (only a plain matrix is broadcast).
        expectMatmulError(containing: ["matmul", "[1, 3, 4]", "[2, 4, 5]", "batch dimensions"]) {
            _ = try Tensor.zeros(shape: [1, 3, 4]).matmul(Tensor.zeros(shape: [2, 4, 5]))
        }
        expectMatmulError(containing: ["matmul", "[2, 2, 3, 4]", "[2, 4, 5]", "batch dimensions"]) {
            _ = try Tensor.zeros(shape: [2, 2, 3, 4]).matmul(Tensor.zeros(shape: [2, 4, 5]))
        }
        #expect(throws: TensorError.dtypeMismatch(operation: "matmul", lhs: .float32, rhs: .float64)) {
            try a.matmul(Tensor.zeros(shape: [3, 2], dtype: .float64))
        }
        #expect(throws: TensorError.unsupportedDType(operation: "matmul", dtype: .int64)) {
            try Tensor.zeros(shape: [2, 3], dtype: .int64).matmul(Tensor.zeros(shape: [3, 2], dtype: .int64))
        }
    }
}
