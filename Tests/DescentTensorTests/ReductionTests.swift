import DescentAutodiff
import DescentTensor
import Testing
#if canImport(Glibc)
import Glibc
#endif

// Reductions (sum, mean, max over any axes), argmax, l2Norm, softmax and logSoftmax: values against
// loops written here, finite-difference gradients, large tensors and axis errors.

// MARK: - Helpers

/// A shape and the axes to reduce (`nil` = all).
struct ReductionAxesCase: Sendable, CustomTestStringConvertible {
    let shape: [Int]
    let axes: [Int]?
    var testDescription: String { "\(shape) over \(axes.map { "\($0)" } ?? "all axes")" }
}

/// Reduces `x` (row-major, `shape`) over `axes` with `combine`, starting from `initial`.
private func reductionReference(
    _ x: [Double], _ shape: [Int], axes: [Int]?, keepDims: Bool, initial: Double,
    _ combine: (Double, Double) -> Double
) -> (shape: [Int], values: [Double]) {
    let rank = shape.count
    let reduced = Set((axes ?? Array(0..<rank)).map { $0 < 0 ? $0 + rank : $0 })
    let kept = shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
    var out = [Double](repeating: initial, count: kept.reduce(1, *))
    for flat in 0..<x.count {
        var rest = flat, target = 0, place = 1
        for axis in stride(from: rank - 1, through: 0, by: -1) {
            let coordinate = rest % shape[axis]
            rest /= shape[axis]
            if !reduced.contains(axis) { target += coordinate * place }
            place *= kept[axis]
        }
        out[target] = combine(out[target], x[flat])
    }
    let outShape = keepDims ? kept : shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
    return (outShape, out)
}

/// Distinct values 0.1 apart in a scrambled order (no ties for max/argmax, even after a 1e-5 step).
private func reductionDistinct(_ shape: [Int], dtype: DType = .float64) throws -> Tensor {
    let n = shape.reduce(1, *)
    precondition(n % 37 != 0)
    let values = (0..<n).map { Double(($0 * 37) % n) * 0.1 - Double(n) * 0.05 }
    return try Tensor(shape: shape, scalars: values).cast(to: dtype)
}

/// Runs `body`, expects exactly `expected`, and checks the message mentions every string.
private func expectReductionError(
    _ expected: TensorError, mentioning parts: [String], sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Tensor
) {
    let error = #expect(throws: TensorError.self, sourceLocation: sourceLocation) { _ = try body() }
    #expect(error == expected, sourceLocation: sourceLocation)
    let message = error?.description ?? ""
    for part in parts {
        #expect(message.contains(part), "\"\(message)\" should mention \(part)", sourceLocation: sourceLocation)
    }
}

/// The tape gradient of `sum(f(x) * weights)` (weights of `f(x)`'s shape, default all ones).
private func reductionGradient(_ x: Tensor, weights: Tensor? = nil, _ f: (Tensor) throws -> Tensor) throws -> Tensor {
    let tape = GradientTape()
    let watched = tape.watch(x)
    let y = try tape.record { () throws -> Tensor in
        let out = try f(watched)
        return try (weights.map { try out * $0 } ?? out).sum()
    }
    return try #require(try tape.gradient(of: y, wrt: watched)).denseValue
}

private let reductionCases: [ReductionAxesCase] = [
    ReductionAxesCase(shape: [2, 3, 4], axes: nil),
    ReductionAxesCase(shape: [2, 3, 4], axes: [0]),
    ReductionAxesCase(shape: [2, 3, 4], axes: [1]),
    ReductionAxesCase(shape: [2, 3, 4], axes: [2]),
    ReductionAxesCase(shape: [2, 3, 4], axes: [-1]),
    ReductionAxesCase(shape: [2, 3, 4], axes: [-3]),
    ReductionAxesCase(shape: [2, 3, 4], axes: [0, 1]),
    ReductionAxesCase(shape: [2, 3, 4], axes: [1, 2]),
    ReductionAxesCase(shape: [2, 3, 4], axes: [0, 2]),
    ReductionAxesCase(shape: [2, 3, 4], axes: [2, 0]),
    ReductionAxesCase(shape: [2, 3, 4], axes: [-1, 0]),
    ReductionAxesCase(shape: [2, 3, 4], axes: [0, 1, 2]),
    ReductionAxesCase(shape: [2, 3, 4, 5], axes: [1, 3]),
    ReductionAxesCase(shape: [2, 3, 4, 5], axes: [0, 2, 3]),
    ReductionAxesCase(shape: [3, 19], axes: [1]),
    ReductionAxesCase(shape: [3, 19], axes: [0]),
    ReductionAxesCase(shape: [7], axes: nil),
    ReductionAxesCase(shape: [7], axes: [0]),
]

@Suite struct ReductionTests {
    // MARK: - sum, mean, max values

    @Test(arguments: reductionCases, [false, true])
    func sumMeanMaxValues(_ c: ReductionAxesCase, keepDims: Bool) throws {
        for dtype in [DType.float32, .float64] {
            let x = try reductionDistinct(c.shape, dtype: dtype)
            let xs = x.doubles
            let tolerance = dtype == .float32 ? 1e-5 : 1e-12
            let sum = try x.sum(axes: c.axes, keepDims: keepDims)
            let refSum = reductionReference(xs, c.shape, axes: c.axes, keepDims: keepDims, initial: 0, +)
            #expect(sum.shape == refSum.shape, "sum \(dtype)")
            #expect(sum.dtype == dtype)
            expectClose(sum.doubles, refSum.values, tolerance: tolerance)

            let mean = try x.mean(axes: c.axes, keepDims: keepDims)
            let count = Double(x.scalarCount / Swift.max(refSum.values.count, 1))
            #expect(mean.shape == refSum.shape, "mean \(dtype)")
            #expect(mean.dtype == dtype)
            expectClose(mean.doubles, refSum.values.map { $0 / count }, tolerance: tolerance)

            let max = try x.max(axes: c.axes, keepDims: keepDims)
            let refMax = reductionReference(xs, c.shape, axes: c.axes, keepDims: keepDims, initial: -.infinity) {
                Swift.max($0, $1)
            }
            #expect(max.shape == refMax.shape, "max \(dtype)")
            #expect(max.dtype == dtype)
            #expect(max.doubles == refMax.values, "max \(dtype)")
        }
    }

    @Test(arguments: reductionCases, [false, true])
    func sumMeanMaxGradients(_ c: ReductionAxesCase, keepDims: Bool) throws {
        let x = try reductionDistinct(c.shape)
        try checkGradient([x]) { try $0[0].sum(axes: c.axes, keepDims: keepDims) }
        try checkGradient([x]) { try $0[0].mean(axes: c.axes, keepDims: keepDims) }
        try checkGradient([x]) { try $0[0].max(axes: c.axes, keepDims: keepDims) }
    }

    @Test func singleAxisOverloadsAndSpecialShapes() throws {
        let x = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        #expect(try x.sum(axis: 0).scalars(as: Float.self) == [5, 7, 9])
        #expect(try x.sum(axis: -1).scalars(as: Float.self) == [6, 15])
        #expect(try x.sum(axis: 1, keepDims: true).shape == [2, 1])
        #expect(try x.mean(axis: 0).scalars(as: Float.self) == [2.5, 3.5, 4.5])
        #expect(try x.mean(axis: 1, keepDims: true).scalars(as: Float.self) == [2, 5])
        #expect(try x.max(axis: 0).scalars(as: Float.self) == [4, 5, 6])
        #expect(try x.max(axis: -1, keepDims: true).shape == [2, 1])
        #expect(try x.sum().shape == [])
        #expect(try x.sum().item() == 21)
        #expect(try x.sum(keepDims: true).shape == [1, 1])
        #expect(try x.mean().item() == 3.5)
        #expect(try x.max().item() == 6)
        // No axes: nothing to reduce.
        #expect(try x.sum(axes: []) == x)
        #expect(try x.mean(axes: []) == x)
        #expect(try x.max(axes: []) == x)
        // A scalar reduces to itself.
        let s = Tensor(2.5)
        #expect(try s.sum() == s)
        #expect(try s.mean() == s)
        #expect(try s.max() == s)
        // Size-1 and empty dimensions.
        #expect(try Tensor.ones(shape: [1, 4, 1]).sum(axes: [0, 2]).scalars(as: Float.self) == [1, 1, 1, 1])
        let empty = try Tensor.zeros(shape: [2, 0])
        #expect(try empty.sum(axis: 1).doubles == [0, 0])
        #expect(try empty.sum().item() == 0)
        #expect(try empty.sum(axis: 0).shape == [0])
        // Negative values and -inf: max does not start from 0.
        let negative = Tensor([-5, -3, -.infinity, -4] as [Double])
        #expect(try negative.max().item() == -3)
        #expect(try Tensor([-Double.infinity, -.infinity]).max().item() == -.infinity)
    }

    // MARK: - max gradient and ties

    @Test func maxGradientSplitsTiesEqually() throws {
        let x = try Tensor(shape: [2, 3], scalars: [1, 3, 3, 2, 2, 2] as [Double])
        let rows = try reductionGradient(x, weights: Tensor([1, 6] as [Double])) { try $0.max(axis: 1) }
        #expect(rows.doubles == [0, 0.5, 0.5, 2, 2, 2])
        let kept = try reductionGradient(x, weights: try Tensor(shape: [2, 1], scalars: [1, 6] as [Double])) {
            try $0.max(axis: -1, keepDims: true)
        }
        #expect(kept.doubles == [0, 0.5, 0.5, 2, 2, 2])
        // Over axis 0: column 0 has a unique max, the others tie between the rows.
        let y = try Tensor(shape: [2, 3], scalars: [1, 3, 2, 2, 3, 2] as [Double])
        let cols = try reductionGradient(y, weights: Tensor([4, 4, 8] as [Double])) { try $0.max(axis: 0) }
        #expect(cols.doubles == [0, 2, 4, 4, 2, 4])
        let all = try reductionGradient(try Tensor(shape: [2, 2], scalars: [5, 1, 5, 5] as [Double])) { try $0.max() }
        expectClose(all.doubles, [1.0 / 3, 0, 1.0 / 3, 1.0 / 3], tolerance: 1e-15)
        // float32 gradients keep the dtype.
        let f = try reductionGradient(Tensor([2, 7, 7, 1] as [Float])) { try $0.max() }
        #expect(f.dtype == .float32)
        #expect(try f.scalars(as: Float.self) == [0, 0.5, 0.5, 0])
    }

    // MARK: - argmax

    @Test func argmaxValuesAndTies() throws {
        let x = try Tensor(shape: [3, 3], scalars: [1, 3, 3, 2, 2, 1, 0, 4, 5] as [Float])
        let rows = try x.argmax(axis: 1)
        #expect(rows.dtype == .int64)
        #expect(rows.shape == [3])
        #expect(try rows.scalars(as: Int64.self) == [1, 0, 2])
        #expect(try x.argmax().scalars(as: Int64.self) == [1, 0, 2])
        #expect(try x.argmax(axis: -1) == rows)
        #expect(try x.argmax(axis: 0).scalars(as: Int64.self) == [1, 2, 2])
        #expect(try x.argmax(axis: -2).scalars(as: Int64.self) == [1, 2, 2])
        // First index on ties, whatever the dtype.
        let ties = Tensor([7, 9, 9, 9, 2] as [Int64])
        #expect(try ties.argmax().shape == [])
        #expect(try ties.argmax().item() == 1)
        #expect(try Tensor([4, 4, 4] as [Double]).argmax().item() == 0)
        #expect(try Tensor([-Double.infinity, -.infinity]).argmax().item() == 0)
        #expect(try Tensor([-3, -1, -2] as [Float]).argmax().item() == 1)
    }

    @Test(arguments: [DType.float32, .float64, .int64], [0, 1, 2, -1])
    func argmaxAnyAxisMatchesLoop(_ dtype: DType, axis: Int) throws {
        let shape = [2, 3, 4]
        // Values in 0..<5 so that ties are frequent.
        let raw = try Tensor.randomUniform(shape: shape, min: 0, max: 5, dtype: .float64, seed: 71).doubles.map { $0.rounded(.down) }
        let x = try Tensor(shape: shape, scalars: raw).cast(to: dtype)
        let a = (axis + 3) % 3
        let outer = shape[..<a].reduce(1, *), r = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        var expected: [Int64] = []
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                for k in 0..<r where raw[(o * r + k) * inner + i] > raw[(o * r + best) * inner + i] { best = k }
                expected.append(Int64(best))
            }
        }
        var expectedShape = shape
        expectedShape.remove(at: a)
        let result = try x.argmax(axis: axis)
        #expect(result.shape == expectedShape)
        #expect(result.dtype == .int64)
        #expect(try result.scalars(as: Int64.self) == expected)
    }

    @Test func argmaxErrors() throws {
        let x = try Tensor.zeros(shape: [2, 3])
        expectReductionError(.invalidAxis(operation: "argmax", axis: 2, rank: 2), mentioning: ["argmax", "2", "rank 2"]) {
            try x.argmax(axis: 2)
        }
        expectReductionError(.invalidAxis(operation: "argmax", axis: -3, rank: 2), mentioning: ["argmax", "-3"]) {
            try x.argmax(axis: -3)
        }
        expectReductionError(.invalidAxis(operation: "argmax", axis: -1, rank: 0), mentioning: ["argmax"]) {
            try Tensor(1.0).argmax()
        }
        expectReductionError(.invalidShape(operation: "argmax", shape: [2, 0], reason: "axis 1 is empty"),
                             mentioning: ["argmax", "[2, 0]"]) { try Tensor.zeros(shape: [2, 0]).argmax(axis: 1) }
    }

    // MARK: - l2Norm

    @Test func l2NormValues() throws {
        let x = try Tensor(shape: [3, 2], scalars: [3, 4, 0, 0, 1, 1] as [Double])
        #expect(try x.l2Norm().item() == (27.0).squareRoot())
        #expect(try x.l2Norm().shape == [])
        #expect(try x.l2Norm(keepDims: true).shape == [1, 1])
        #expect(try x.l2Norm(axes: [1]).doubles == [5, 0, 2.0.squareRoot()])
        #expect(try x.l2Norm(axes: [-1], keepDims: true).shape == [3, 1])
        #expect(try x.l2Norm(axes: [0]).doubles == [(10.0).squareRoot(), (17.0).squareRoot()])
        let f = Tensor([3, 4] as [Float])
        #expect(try f.l2Norm().dtype == .float32)
        #expect(try f.l2Norm().item() == 5)
        // Negative entries count.
        #expect(try Tensor([-6, 8] as [Double]).l2Norm().item() == 10)
        let y = try reductionDistinct([2, 3, 4])
        let ref = reductionReference(y.doubles.map { $0 * $0 }, [2, 3, 4], axes: [0, 2], keepDims: false, initial: 0, +)
        expectClose(try y.l2Norm(axes: [0, 2]).doubles, ref.values.map { $0.squareRoot() }, tolerance: 1e-14)
    }

    @Test func l2NormGradients() throws {
        let x = try sample([3, 4], seed: 72)
        try checkGradient([x]) { try $0[0].l2Norm() }
        try checkGradient([x]) { try $0[0].l2Norm(axes: [1]) }
        try checkGradient([x]) { try $0[0].l2Norm(axes: [0], keepDims: true) }
        try checkGradient([try sample([2, 3, 4], seed: 73)]) { try $0[0].l2Norm(axes: [0, 2]) }
        // x / ||x||.
        let g = try reductionGradient(Tensor([3, 4] as [Double])) { try $0.l2Norm() }
        #expect(g.doubles == [0.6, 0.8])
    }

    @Test func l2NormGradientIsZeroAtZero() throws {
        let zero = try Tensor.zeros(shape: [2, 3], dtype: .float64)
        let g = try reductionGradient(zero) { try $0.l2Norm() }
        #expect(g.shape == [2, 3])
        #expect(g.doubles == [0, 0, 0, 0, 0, 0])
        // One zero row among non-zero rows: only that row's gradient is 0.
        let x = try Tensor(shape: [2, 2], scalars: [0, 0, 3, 4] as [Double])
        let rows = try reductionGradient(x) { try $0.l2Norm(axes: [1]) }
        #expect(rows.doubles == [0, 0, 0.6, 0.8])
        let f = try reductionGradient(try Tensor.zeros(shape: [3], dtype: .float32)) { try $0.l2Norm() }
        #expect(try f.scalars(as: Float.self) == [0, 0, 0])
    }

    // MARK: - softmax, logSoftmax

    @Test(arguments: [DType.float32, .float64])
    func softmaxValues(_ dtype: DType) throws {
        let rows: [[Double]] = [[1, 2, 3], [1000, 1001, 1002], [-1000, 0, 1000], [-5, -5, -5]]
        let x = try Tensor(rows: rows).cast(to: dtype)
        let tolerance = dtype == .float32 ? 1e-6 : 1e-14
        let s = try x.softmax(axis: -1)
        #expect(s.shape == [4, 3])
        #expect(s.dtype == dtype)
        #expect(s.doubles.allSatisfy { $0.isFinite && $0 >= 0 })
        let e = [Glibc.exp(-2.0), Glibc.exp(-1.0), 1]
        let ref012 = e.map { $0 / e.reduce(0, +) }
        expectClose(Array(s.doubles[0..<3]), ref012, tolerance: tolerance)
        expectClose(Array(s.doubles[3..<6]), ref012, tolerance: tolerance)
        expectClose(Array(s.doubles[6..<9]), [0, 0, 1], tolerance: tolerance)
        expectClose(Array(s.doubles[9..<12]), [1.0 / 3, 1.0 / 3, 1.0 / 3], tolerance: tolerance)
        let rowSums = try s.sum(axis: 1).doubles
        expectClose(rowSums, [1, 1, 1, 1], tolerance: tolerance)
        #expect(try x.softmax() == s)
        // Along axis 0: every column sums to 1.
        let s0 = try x.softmax(axis: 0)
        expectClose(try s0.sum(axis: 0).doubles, [1, 1, 1], tolerance: tolerance)
        #expect(s0.doubles.allSatisfy { $0.isFinite })

        let l = try x.logSoftmax(axis: -1)
        #expect(l.shape == [4, 3])
        #expect(l.doubles.allSatisfy { $0.isFinite })
        let logRef = ref012.map { Glibc.log($0) }
        expectClose(Array(l.doubles[0..<3]), logRef, tolerance: tolerance)
        expectClose(Array(l.doubles[3..<6]), logRef, tolerance: tolerance)
        // [-1000, 0, 1000]: exact log-probabilities even where softmax underflows to 0.
        expectClose(Array(l.doubles[6..<9]), [-2000, -1000, 0], tolerance: tolerance)
        #expect(try x.logSoftmax() == l)
        let l0 = try x.logSoftmax(axis: 0)
        #expect(l0.doubles.allSatisfy { $0.isFinite })
        expectClose(try l0.exp().sum(axis: 0).doubles, [1, 1, 1], tolerance: tolerance)
    }

    @Test func logSoftmaxIsLogOfSoftmax() throws {
        let x = try sample([3, 4, 5], seed: 74, low: -4, high: 4)
        for axis in [0, 1, 2, -1] {
            let l = try x.logSoftmax(axis: axis)
            let s = try x.softmax(axis: axis)
            expectClose(l.doubles, try s.log().doubles, tolerance: 1e-13)
            expectClose(try s.sum(axis: axis).doubles, [Double](repeating: 1, count: 60 / x.shape[(axis + 3) % 3]),
                        tolerance: 1e-14)
            // Reference along the axis with a plain loop.
            let a = (axis + 3) % 3
            let shape = x.shape, xs = x.doubles
            let outer = shape[..<a].reduce(1, *), r = shape[a], inner = shape[(a + 1)...].reduce(1, *)
            var expected = [Double](repeating: 0, count: xs.count)
            for o in 0..<outer {
                for i in 0..<inner {
                    let idx = (0..<r).map { (o * r + $0) * inner + i }
                    let total = idx.map { Glibc.exp(xs[$0]) }.reduce(0, +)
                    for j in idx { expected[j] = Glibc.exp(xs[j]) / total }
                }
            }
            expectClose(s.doubles, expected, tolerance: 1e-13)
        }
    }

    @Test func softmaxGradients() throws {
        let x = try sample([3, 4], seed: 75)
        try checkGradient([x]) { try $0[0].softmax(axis: -1) }
        try checkGradient([x]) { try $0[0].softmax(axis: 0) }
        try checkGradient([x]) { try $0[0].logSoftmax(axis: -1) }
        try checkGradient([x]) { try $0[0].logSoftmax(axis: 0) }
        let y = try sample([2, 3, 4], seed: 76)
        try checkGradient([y]) { try $0[0].softmax(axis: 1) }
        try checkGradient([y]) { try $0[0].logSoftmax(axis: 1) }
        // Large shifts do not change the gradient.
        try checkGradient([try x + 1000]) { try $0[0].logSoftmax(axis: -1) }
        // Softmax is shift-invariant: the gradient of sum(softmax) is 0.
        let g = try reductionGradient(x) { try $0.softmax() }
        #expect(g.doubles.allSatisfy { Swift.abs($0) < 1e-15 })
    }

    // MARK: - Large tensors (multi-threaded kernels)

    @Test func largeFullReductionsMatchLoops() throws {
        let n = 200_003
        var values = try Tensor.randomUniform(shape: [n], min: 0, max: 1, dtype: .float64, seed: 77).doubles
        values[n - 1] = 3  // the maximum sits in the scalar tail of the last chunk
        let x = try Tensor(shape: [n], scalars: values)
        var total = 0.0, best = -Double.infinity
        for v in values {
            total += v
            best = Swift.max(best, v)
        }
        expectClose([try x.sum().item()], [total], tolerance: 1e-12)
        expectClose([try x.mean().item()], [total / Double(n)], tolerance: 1e-12)
        #expect(try x.max().item() == 3)
        #expect(try x.argmax().item() == Double(n - 1))
        // The maximum in the first chunk.
        values[n - 1] = 0.5
        values[5] = 2
        #expect(try Tensor(shape: [n], scalars: values).max().item() == 2)
        // float32 with small integers, whose sums are exact in any order: every element must be counted once.
        var ints = values.map { ($0 * 4).rounded(.down) }
        ints[n - 1] = 9
        let x32 = try Tensor(shape: [n], scalars: ints).cast(to: .float32)
        let total32 = ints.reduce(0, +)
        #expect(total32 < 16_777_216)
        #expect(try x32.sum().item() == total32)
        #expect(try x32.max().item() == 9)
        let squares = ints.map { $0 * $0 }.reduce(0, +)
        #expect(try x32.l2Norm().item() == Double(Float(squares).squareRoot()))
    }

    @Test func largeRowAndColumnReductionsMatchLoops() throws {
        let rows = 1000, cols = 257
        let x = try Tensor.randomUniform(shape: [rows, cols], min: -1, max: 1, dtype: .float64, seed: 78)
        let xs = x.doubles
        var rowSums = [Double](repeating: 0, count: rows), rowMax = [Double](repeating: -.infinity, count: rows)
        var colSums = [Double](repeating: 0, count: cols), colMax = [Double](repeating: -.infinity, count: cols)
        for i in 0..<rows {
            for j in 0..<cols {
                let v = xs[i * cols + j]
                rowSums[i] += v
                rowMax[i] = Swift.max(rowMax[i], v)
                colSums[j] += v
                colMax[j] = Swift.max(colMax[j], v)
            }
        }
        expectClose(try x.sum(axis: 1).doubles, rowSums, tolerance: 1e-12)
        #expect(try x.max(axis: 1).doubles == rowMax)
        expectClose(try x.sum(axis: 0).doubles, colSums, tolerance: 1e-12)
        #expect(try x.max(axis: 0).doubles == colMax)
        expectClose([try x.sum(axes: [0, 1]).item()], [rowSums.reduce(0, +)], tolerance: 1e-12)
        // float32 with small integers (exact sums in any order).
        let ints = xs.map { ($0 * 8).rounded(.down) }
        let x32 = try Tensor(shape: [rows, cols], scalars: ints).cast(to: .float32)
        var rowSums32 = [Double](repeating: 0, count: rows), colSums32 = [Double](repeating: 0, count: cols)
        for i in 0..<rows {
            for j in 0..<cols {
                rowSums32[i] += ints[i * cols + j]
                colSums32[j] += ints[i * cols + j]
            }
        }
        #expect(try x32.sum(axis: -1).doubles == rowSums32)
        #expect(try x32.sum(axis: 0).doubles == colSums32)
        // Softmax rows of a large tensor still sum to 1.
        expectClose(try x.softmax().sum(axis: 1).doubles, [Double](repeating: 1, count: rows), tolerance: 1e-12)
    }

    // MARK: - Errors

    @Test func invalidAxes() throws {
        let x = try Tensor.zeros(shape: [2, 3])
        expectReductionError(.invalidAxis(operation: "sum", axis: 5, rank: 2), mentioning: ["sum", "axis 5", "rank 2"]) {
            try x.sum(axes: [5])
        }
        expectReductionError(.invalidAxis(operation: "sum", axis: 0, rank: 2), mentioning: ["sum", "axis 0", "rank 2"]) {
            try x.sum(axes: [0, 0])
        }
        expectReductionError(.invalidAxis(operation: "sum", axis: -1, rank: 2), mentioning: ["sum", "axis -1"]) {
            try x.sum(axes: [1, -1])
        }
        expectReductionError(.invalidAxis(operation: "sum", axis: -3, rank: 2), mentioning: ["sum", "-3"]) {
            try x.sum(axis: -3)
        }
        expectReductionError(.invalidAxis(operation: "mean", axis: 2, rank: 2), mentioning: ["mean"]) { try x.mean(axis: 2) }
        expectReductionError(.invalidAxis(operation: "max", axis: 2, rank: 2), mentioning: ["max"]) { try x.max(axes: [0, 2]) }
        expectReductionError(.invalidAxis(operation: "l2Norm", axis: 3, rank: 2), mentioning: ["l2Norm"]) {
            try x.l2Norm(axes: [3])
        }
        expectReductionError(.invalidAxis(operation: "softmax", axis: 2, rank: 2), mentioning: ["softmax"]) {
            try x.softmax(axis: 2)
        }
        expectReductionError(.invalidAxis(operation: "logSoftmax", axis: -3, rank: 2), mentioning: ["logSoftmax"]) {
            try x.logSoftmax(axis: -3)
        }
        expectReductionError(.invalidShape(operation: "max", shape: [2, 0], reason: "cannot take the maximum of an empty axis"),
                             mentioning: ["max", "[2, 0]"]) { try Tensor.zeros(shape: [2, 0]).max(axis: 1) }
    }

    @Test func int64ReductionsAreUnsupported() throws {
        let i = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4] as [Int64])
        let cases: [(String, (Tensor) throws -> Tensor)] = [
            ("sum", { try $0.sum() }), ("mean", { try $0.mean(axis: 0) }), ("max", { try $0.max() }),
            ("l2Norm", { try $0.l2Norm() }), ("softmax", { try $0.softmax() }), ("logSoftmax", { try $0.logSoftmax() }),
        ]
        for (name, f) in cases {
            expectReductionError(.unsupportedDType(operation: name, dtype: .int64), mentioning: [name, "int64"]) {
                try f(i)
            }
        }
    }
}
