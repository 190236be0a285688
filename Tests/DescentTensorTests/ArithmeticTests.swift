import DescentAutodiff
import DescentTensor
import Testing
#if canImport(Glibc)
import Glibc
#endif

// Arithmetic with broadcasting, pow, maximum/minimum, clipping, comparisons and the errors a caller can
// cause. Values are checked against plain loops written here; gradients against finite differences.

// MARK: - Helpers

/// One broadcasting pattern: the operand shapes and the expected result shape.
struct ArithmeticBroadcastCase: Sendable, CustomTestStringConvertible {
    let lhs: [Int]
    let rhs: [Int]
    let result: [Int]
    var testDescription: String { "\(lhs) with \(rhs)" }
}

/// A NumPy-broadcasting reference: `op` applied to every pair of broadcast elements, row-major.
private func arithmeticReference(
    _ a: [Double], _ aShape: [Int], _ b: [Double], _ bShape: [Int], _ op: (Double, Double) -> Double
) -> (shape: [Int], values: [Double]) {
    let rank = max(aShape.count, bShape.count)
    let pa = [Int](repeating: 1, count: rank - aShape.count) + aShape
    let pb = [Int](repeating: 1, count: rank - bShape.count) + bShape
    let shape = zip(pa, pb).map { max($0, $1) }
    let count = shape.reduce(1, *)
    var values: [Double] = []
    for flat in 0..<count {
        var rest = flat
        var coords = [Int](repeating: 0, count: rank)
        for axis in stride(from: rank - 1, through: 0, by: -1) {
            coords[axis] = rest % shape[axis]
            rest /= shape[axis]
        }
        var ia = 0, ib = 0
        for axis in 0..<rank {
            ia = ia * pa[axis] + (pa[axis] == 1 ? 0 : coords[axis])
            ib = ib * pb[axis] + (pb[axis] == 1 ? 0 : coords[axis])
        }
        values.append(op(a[ia], b[ib]))
    }
    return (shape, values)
}

/// Values in `[0.5, 2)` with alternating signs: safe divisors and bases away from ties and zero.
private func arithmeticNonZero(_ shape: [Int], seed: UInt64) throws -> Tensor {
    let magnitudes = try sample(shape, seed: seed, low: 0.5, high: 2).doubles
    let values = magnitudes.enumerated().map { $0.offset % 2 == 0 ? $0.element : -$0.element }
    return try Tensor(shape: shape, scalars: values)
}

/// Runs `body`, expects it to throw exactly `expected`, and checks the message mentions every string.
private func expectArithmeticError(
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

/// The gradient of `sum(f(xs) * weights)` with respect to each of `xs`, as dense tensors (zeros if unconnected).
private func arithmeticGradients(
    _ xs: [Tensor], _ f: ([Tensor]) throws -> Tensor
) throws -> [Tensor] {
    let tape = GradientTape()
    let watched = xs.map { tape.watch($0) }
    let y = try tape.record { try f(watched).sum() }
    return try tape.gradient(of: y, wrt: watched, unconnected: .zero).map { try #require($0).denseValue }
}

private let arithmeticOps: [(name: String, tensor: @Sendable (Tensor, Tensor) throws -> Tensor,
                             reference: @Sendable (Double, Double) -> Double)] = [
    ("add", { try $0 + $1 }, { $0 + $1 }),
    ("subtract", { try $0 - $1 }, { $0 - $1 }),
    ("multiply", { try $0 * $1 }, { $0 * $1 }),
    ("divide", { try $0 / $1 }, { $0 / $1 }),
]

@Suite struct ArithmeticTests {
    // MARK: - Broadcasting + - * /

    @Test(arguments: [
        ArithmeticBroadcastCase(lhs: [2, 3], rhs: [2, 3], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [], rhs: [2, 3], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [2, 3], rhs: [], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [], rhs: [], result: []),
        ArithmeticBroadcastCase(lhs: [], rhs: [2, 3, 4], result: [2, 3, 4]),
        ArithmeticBroadcastCase(lhs: [2, 3], rhs: [3], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [3], rhs: [2, 3], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [2, 3], rhs: [2, 1], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [2, 1], rhs: [2, 3], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [3, 1], rhs: [1, 4], result: [3, 4]),
        ArithmeticBroadcastCase(lhs: [1, 4], rhs: [3, 1], result: [3, 4]),
        ArithmeticBroadcastCase(lhs: [2, 3, 4], rhs: [3, 1], result: [2, 3, 4]),
        ArithmeticBroadcastCase(lhs: [3, 1], rhs: [2, 3, 4], result: [2, 3, 4]),
        ArithmeticBroadcastCase(lhs: [4], rhs: [2, 3, 4], result: [2, 3, 4]),
        ArithmeticBroadcastCase(lhs: [2, 3, 4], rhs: [4], result: [2, 3, 4]),
        ArithmeticBroadcastCase(lhs: [2, 1, 4], rhs: [3, 1], result: [2, 3, 4]),
        ArithmeticBroadcastCase(lhs: [2, 3, 4], rhs: [1, 3, 1], result: [2, 3, 4]),
        ArithmeticBroadcastCase(lhs: [1], rhs: [2, 3], result: [2, 3]),
        // Inner runs longer than one SIMD vector, with a scalar tail, for each stride pattern.
        ArithmeticBroadcastCase(lhs: [2, 37], rhs: [37], result: [2, 37]),
        ArithmeticBroadcastCase(lhs: [3, 40], rhs: [3, 1], result: [3, 40]),
        ArithmeticBroadcastCase(lhs: [3, 1], rhs: [3, 40], result: [3, 40]),
        ArithmeticBroadcastCase(lhs: [3, 1], rhs: [1, 33], result: [3, 33]),
    ])
    func arithmeticBroadcastValues(_ c: ArithmeticBroadcastCase) throws {
        let a64 = try sample(c.lhs, seed: 11)
        let b64 = try arithmeticNonZero(c.rhs, seed: 12)
        for dtype in [DType.float32, .float64] {
            let a = a64.cast(to: dtype), b = b64.cast(to: dtype)
            for op in arithmeticOps {
                let result = try op.tensor(a, b)
                let ref = arithmeticReference(a.doubles, a.shape, b.doubles, b.shape, op.reference)
                #expect(result.shape == c.result, "\(op.name) \(dtype)")
                #expect(ref.shape == c.result)
                #expect(result.dtype == dtype)
                // One correctly rounded operation: the float64 reference rounded to the dtype is exact.
                let expected = dtype == .float32 ? ref.values.map { Double(Float($0)) } : ref.values
                #expect(result.doubles == expected, "\(op.name) \(dtype)")
            }
        }
    }

    @Test(arguments: [
        ArithmeticBroadcastCase(lhs: [2, 3], rhs: [2, 3], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [], rhs: [2, 3], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [2, 3], rhs: [], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [2, 3], rhs: [3], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [2, 3], rhs: [2, 1], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [3, 1], rhs: [1, 4], result: [3, 4]),
        ArithmeticBroadcastCase(lhs: [2, 3, 4], rhs: [3, 1], result: [2, 3, 4]),
        ArithmeticBroadcastCase(lhs: [4], rhs: [2, 3, 4], result: [2, 3, 4]),
        ArithmeticBroadcastCase(lhs: [2, 1, 4], rhs: [3, 1], result: [2, 3, 4]),
        ArithmeticBroadcastCase(lhs: [1], rhs: [2, 3], result: [2, 3]),
        ArithmeticBroadcastCase(lhs: [3, 1], rhs: [1, 33], result: [3, 33]),
    ])
    func arithmeticBroadcastGradients(_ c: ArithmeticBroadcastCase) throws {
        let a = try sample(c.lhs, seed: 21)
        let b = try arithmeticNonZero(c.rhs, seed: 22)
        for op in arithmeticOps {
            try checkGradient([a, b]) { try op.tensor($0[0], $0[1]) }
        }
        // d sum(a + b) / d operand = how many times each operand element was broadcast.
        let outCount = Double(c.result.reduce(1, *))
        let grads = try arithmeticGradients([a, b]) { try $0[0] + $0[1] }
        #expect(grads[0].shape == c.lhs)
        #expect(grads[1].shape == c.rhs)
        #expect(grads[0].doubles == [Double](repeating: outCount / Double(a.scalarCount), count: a.scalarCount))
        #expect(grads[1].doubles == [Double](repeating: outCount / Double(b.scalarCount), count: b.scalarCount))
        let diff = try arithmeticGradients([a, b]) { try $0[0] - $0[1] }
        #expect(diff[1].shape == c.rhs)
        #expect(diff[1].doubles == [Double](repeating: -outCount / Double(b.scalarCount), count: b.scalarCount))
    }

    @Test func arithmeticWithDoubles() throws {
        let x = Tensor([1.5, -2, 4] as [Float])
        #expect(try (x + 1).scalars(as: Float.self) == [2.5, -1, 5])
        #expect(try (1 + x).scalars(as: Float.self) == [2.5, -1, 5])
        #expect(try (x - 1).scalars(as: Float.self) == [0.5, -3, 3])
        #expect(try (1 - x).scalars(as: Float.self) == [-0.5, 3, -3])
        #expect(try (x * 2).scalars(as: Float.self) == [3, -4, 8])
        #expect(try (2 * x).scalars(as: Float.self) == [3, -4, 8])
        #expect(try (x / 2).scalars(as: Float.self) == [0.75, -1, 2])
        #expect(try (2 / x).scalars(as: Float.self) == [Float(2) / 1.5, -1, 0.5])
        // The Double is converted to the tensor's dtype; the result keeps it.
        #expect(try (x + 0.1).dtype == .float32)
        #expect(try (x + 0.1).scalars(as: Float.self) == [1.5 + Float(0.1), -2 + Float(0.1), 4 + Float(0.1)])
        let d = Tensor([0.25, 3] as [Double])
        #expect(try (0.1 + d).scalars(as: Double.self) == [0.1 + 0.25, 0.1 + 3])
        #expect(try (d * 3).dtype == .float64)
        let scalar = Tensor(Float(3))
        #expect(try (scalar - 5).shape == [])
        #expect(try (scalar - 5).item() == -2)

        try checkGradient([try sample([2, 3], seed: 3)]) { try ($0[0] + 2) * 3 - 1 }
        try checkGradient([try sample([2, 3], seed: 4)]) { try (2 - $0[0]) / 4 }
        try checkGradient([try arithmeticNonZero([2, 3], seed: 5)]) { try 3 / $0[0] }
        try checkGradient([try sample([4], seed: 6)]) { try 0.5 * $0[0] + 1.5 }
    }

    @Test func arithmeticInt64() throws {
        let a = try Tensor(shape: [2, 3], scalars: [1, -2, 3, 4, 5, -6] as [Int64])
        let b = Tensor([10, 20, 30] as [Int64])
        #expect(try (a + b).scalars(as: Int64.self) == [11, 18, 33, 14, 25, 24])
        #expect(try (a - b).scalars(as: Int64.self) == [-9, -22, -27, -6, -15, -36])
        #expect(try (a * b).scalars(as: Int64.self) == [10, -40, 90, 40, 100, -180])
        #expect(try (a + 2).scalars(as: Int64.self) == [3, 0, 5, 6, 7, -4])
        #expect(try (10 - a).scalars(as: Int64.self) == [9, 12, 7, 6, 5, 16])
        #expect(try (a * b).dtype == .int64)
        let column = try Tensor(shape: [2, 1], scalars: [100, 200] as [Int64])
        #expect(try (a + column).scalars(as: Int64.self) == [101, 98, 103, 204, 205, 194])
        #expect(try a.maximum(b).scalars(as: Int64.self) == [10, 20, 30, 10, 20, 30])
        #expect(try a.minimum(Tensor(Int64(2))).scalars(as: Int64.self) == [1, -2, 2, 2, 2, -6])
        #expect(try Tensor(shape: [2, 3], scalars: [-1, 2, -3, -4, -5, 6] as [Int64]) == -a)
    }

    @Test func arithmeticCompoundAssignment() throws {
        let a = try sample([2, 3], seed: 7)
        let b = try arithmeticNonZero([3], seed: 8)
        var t = a
        try t += b
        #expect(try t == a + b)
        try t -= 1.5
        #expect(try t == a + b - 1.5)
        try t *= b
        #expect(try t == (a + b - 1.5) * b)
        try t /= 2
        #expect(try t == (a + b - 1.5) * b / 2)
        try t -= b
        try t /= b
        try t += 3
        try t *= 0.5
        #expect(try t == (((a + b - 1.5) * b / 2 - b) / b + 3) * 0.5)
        // Value semantics: the original is untouched.
        #expect(try a == sample([2, 3], seed: 7))
        // A failed compound assignment leaves the left side unchanged.
        var u = a
        #expect(throws: TensorError.self) { try u += Tensor([1, 2, 3, 4] as [Double]) }
        #expect(u == a)
        // Compound assignment is differentiable like the plain operators.
        try checkGradient([a, b]) { xs in
            var y = xs[0]
            try y += xs[1]
            try y *= xs[1]
            try y -= xs[0]
            try y /= xs[1]
            return y
        }
    }

    @Test func arithmeticNegation() throws {
        let x = Tensor([1.5, -2, 0, 37] as [Float])
        #expect(try (-x).scalars(as: Float.self) == [-1.5, 2, 0, -37])
        #expect(try (-Tensor([1e300, -3] as [Double])).scalars(as: Double.self) == [-1e300, 3])
        #expect(try (-Tensor(Int64(5))).item() == -5)
        let long = Tensor((0..<37).map { Double($0) - 18 })
        #expect((-long).doubles == (0..<37).map { 18 - Double($0) })
        try checkGradient([try sample([2, 3], seed: 9)]) { -$0[0] }
        try checkGradient([try sample([3], seed: 9), try sample([2, 3], seed: 10)]) { try -($0[0] * $0[1]) }
    }

    @Test func sumToShapeReducesBroadcastAxes() throws {
        let g = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Double])
        #expect(try g.sumToShape([2, 3]) == g)
        #expect(try g.sumToShape([3]).doubles == [5, 7, 9])
        #expect(try g.sumToShape([1, 3]).shape == [1, 3])
        #expect(try g.sumToShape([1, 3]).doubles == [5, 7, 9])
        #expect(try g.sumToShape([2, 1]).doubles == [6, 15])
        #expect(try g.sumToShape([]).shape == [])
        #expect(try g.sumToShape([]).doubles == [21])
        #expect(try g.sumToShape([1]).doubles == [21])
        // Targets that do not broadcast to [2, 3] are errors, not silent reshapes.
        expectArithmeticError(
            .incompatibleShapes(operation: "sumToShape", lhs: [2, 3], rhs: [1, 2, 3], reason: "target has a higher rank"),
            mentioning: ["sumToShape", "[2, 3]", "[1, 2, 3]"]
        ) { try g.sumToShape([1, 2, 3]) }
        for target in [[3, 2], [6], [2], [2, 2], [4, 3]] {
            expectArithmeticError(
                .incompatibleShapes(operation: "sumToShape", lhs: [2, 3], rhs: target,
                                    reason: "target does not broadcast to this shape"),
                mentioning: ["sumToShape", "[2, 3]", "\(target)"]
            ) { try g.sumToShape(target) }
        }
    }

    // MARK: - pow

    @Test func powValues() throws {
        let base = try Tensor(shape: [2, 3], scalars: [0.5, 1, 2, 3, 4, 9] as [Double])
        let exponent = Tensor([2, -1, 0.5] as [Double])
        let ref = arithmeticReference(base.doubles, base.shape, exponent.doubles, exponent.shape) { Glibc.pow($0, $1) }
        let result = try base.pow(exponent)
        #expect(result.shape == [2, 3])
        expectClose(result.doubles, ref.values, tolerance: 1e-15)
        #expect(try base.pow(2).doubles == [0.25, 1, 4, 9, 16, 81])
        expectClose(try base.pow(0.5).doubles, base.doubles.map { $0.squareRoot() }, tolerance: 1e-15)
        // float32, and C pow semantics for a negative base with an integral exponent.
        let f = Tensor([-2, -3, 4, 0] as [Float])
        #expect(try f.pow(3).scalars(as: Float.self) == [-8, -27, 64, 0])
        #expect(try f.pow(Tensor([2, 1, -0.5, 2] as [Float])).scalars(as: Float.self) == [4, -3, 0.5, 0])
        #expect(try f.pow(0.5).doubles[0].isNaN)
        // A scalar base with a tensor exponent.
        #expect(try Tensor(2.0).pow(Tensor([0, 1, 10] as [Double])).doubles == [1, 2, 1024])
    }

    @Test func powGradients() throws {
        let base = try sample([2, 3], seed: 31, low: 0.5, high: 2)
        try checkGradient([base, try sample([2, 3], seed: 32)]) { try $0[0].pow($0[1]) }
        try checkGradient([base, try sample([3], seed: 33)]) { try $0[0].pow($0[1]) }
        try checkGradient([base, try sample([], seed: 34)]) { try $0[0].pow($0[1]) }
        try checkGradient([try sample([3], seed: 35, low: 0.5, high: 2), try sample([2, 1], seed: 36)]) {
            try $0[0].pow($0[1])
        }
        try checkGradient([base]) { try $0[0].pow(2.5) }
        try checkGradient([base]) { try $0[0].pow(-1.5) }
        // Negative base, integral exponent: d/dx = y x^(y-1); the exponent's gradient is 0 where x <= 0.
        let x = Tensor([-2, 3] as [Double]), y = Tensor([2, 2] as [Double])
        let grads = try arithmeticGradients([x, y]) { try $0[0].pow($0[1]) }
        #expect(grads[0].doubles == [-4, 6])
        expectClose(grads[1].doubles, [0, 9 * Glibc.log(3.0)], tolerance: 1e-15)
    }

    // MARK: - maximum, minimum, clipped

    @Test func maximumMinimumValues() throws {
        let a = try Tensor(shape: [2, 3], scalars: [1, 5, -3, 2, 0, 7] as [Float])
        let b = Tensor([2, 4, -3] as [Float])
        #expect(try a.maximum(b).scalars(as: Float.self) == [2, 5, -3, 2, 4, 7])
        #expect(try a.minimum(b).scalars(as: Float.self) == [1, 4, -3, 2, 0, -3])
        #expect(try maximum(a, b) == a.maximum(b))
        #expect(try minimum(b, a) == a.minimum(b))
        #expect(try a.maximum(1.5).scalars(as: Float.self) == [1.5, 5, 1.5, 2, 1.5, 7])
        #expect(try a.minimum(1.5).scalars(as: Float.self) == [1, 1.5, -3, 1.5, 0, 1.5])
        // Long enough for the SIMD path, in float64, against a loop.
        let x = try sample([3, 37], seed: 41), y = try sample([37], seed: 42)
        let refMax = arithmeticReference(x.doubles, x.shape, y.doubles, y.shape) { Swift.max($0, $1) }
        let refMin = arithmeticReference(x.doubles, x.shape, y.doubles, y.shape) { Swift.min($0, $1) }
        #expect(try x.maximum(y).doubles == refMax.values)
        #expect(try maximum(y, x).doubles == refMax.values)
        #expect(try x.minimum(y).doubles == refMin.values)
        #expect(try minimum(y, x).doubles == refMin.values)
    }

    @Test func maximumMinimumGradients() throws {
        // Inputs at least 0.1 apart everywhere, so finite differences never straddle a tie.
        let a = try Tensor(shape: [2, 3], scalars: [0.3, -1.2, 1.7, -0.4, 0.9, 2.1] as [Double])
        let b = Tensor([0.1, -0.6, 1.9] as [Double])
        try checkGradient([a, b]) { try $0[0].maximum($0[1]) }
        try checkGradient([a, b]) { try $0[0].minimum($0[1]) }
        try checkGradient([a, b]) { try maximum($0[1], $0[0]) }
        try checkGradient([a, b]) { try minimum($0[1], $0[0]) }
        try checkGradient([a]) { try $0[0].maximum(0.5) }
        try checkGradient([a]) { try $0[0].minimum(0.5) }
        let grads = try arithmeticGradients([a, b]) { try $0[0].maximum($0[1]) }
        #expect(grads[0].doubles == [1, 0, 0, 0, 1, 1])
        #expect(grads[1].doubles == [1, 1, 1])
    }

    @Test func maximumMinimumTiesGoToSelf() throws {
        let a = Tensor([1, 2, 3] as [Double]), b = Tensor([1, 0, 5] as [Double])
        var g = try arithmeticGradients([a, b]) { try $0[0].maximum($0[1]) }
        #expect(g[0].doubles == [1, 1, 0])
        #expect(g[1].doubles == [0, 0, 1])
        g = try arithmeticGradients([a, b]) { try maximum($0[1], $0[0]) }
        #expect(g[0].doubles == [0, 1, 0])
        #expect(g[1].doubles == [1, 0, 1])
        g = try arithmeticGradients([a, b]) { try $0[0].minimum($0[1]) }
        #expect(g[0].doubles == [1, 0, 1])
        #expect(g[1].doubles == [0, 1, 0])
        g = try arithmeticGradients([a, b]) { try minimum($0[1], $0[0]) }
        #expect(g[0].doubles == [0, 0, 1])
        #expect(g[1].doubles == [1, 1, 0])
        // With broadcasting: a scalar other gets the summed gradient of the elements it wins strictly.
        let m = try Tensor(shape: [2, 2], scalars: [2, 1, 2, 3] as [Double]), s = Tensor(2.0)
        g = try arithmeticGradients([m, s]) { try $0[0].maximum($0[1]) }
        #expect(g[0].doubles == [1, 0, 1, 1])
        #expect(g[1].shape == [])
        #expect(g[1].doubles == [1])
    }

    @Test func clippedValuesAndGradient() throws {
        let x = Tensor([-3, -1, 0, 0.5, 1, 2] as [Float])
        #expect(try x.clipped(min: -1, max: 1).scalars(as: Float.self) == [-1, -1, 0, 0.5, 1, 1])
        #expect(try x.clipped(min: 0.5, max: 0.5).scalars(as: Float.self) == [0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
        let i = Tensor([-5, 0, 5] as [Int64])
        #expect(try i.clipped(min: -2, max: 3).scalars(as: Int64.self) == [-2, 0, 3])
        // The gradient passes where min <= x <= max, bounds included.
        let d = Tensor([-3, -1, 0, 0.5, 1, 2] as [Double])
        let g = try arithmeticGradients([d]) { try $0[0].clipped(min: -1, max: 1) }
        #expect(g[0].doubles == [0, 1, 1, 1, 1, 0])
        try checkGradient([Tensor([-2.5, -0.7, 0.2, 0.8, 1.6, 3] as [Double])]) { try $0[0].clipped(min: -1, max: 1) }
        // Tensor bounds broadcast against self.
        let m = try Tensor(shape: [2, 3], scalars: [-3, 0, 3, 1, 2, 5] as [Double])
        let clippedByTensors = try m.clipped(min: Tensor([-1, 1, 2] as [Double]), max: Tensor(2.5))
        #expect(clippedByTensors.doubles == [-1, 1, 2.5, 1, 2, 2.5])
        // min > max is a caller error.
        expectArithmeticError(
            .invalidArgument(operation: "clipped", reason: "min 2.0 is greater than max 1.0"),
            mentioning: ["clipped", "2.0", "1.0"]
        ) { try x.clipped(min: 2, max: 1) }
    }

    // MARK: - Comparisons

    @Test(arguments: [DType.float32, .float64, .int64])
    func comparisonsReturnOnesAndZerosInTheOperandDType(_ dtype: DType) throws {
        let a = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Double]).cast(to: dtype)
        let b = Tensor([2, 2, 7] as [Double]).cast(to: dtype)
        let cases: [(Tensor, [Double])] = [
            (try a.equal(b), [0, 1, 0, 0, 0, 0]),
            (try a.notEqual(b), [1, 0, 1, 1, 1, 1]),
            (try a.less(b), [1, 0, 1, 0, 0, 1]),
            (try a.lessEqual(b), [1, 1, 1, 0, 0, 1]),
            (try a.greater(b), [0, 0, 0, 1, 1, 0]),
            (try a.greaterEqual(b), [0, 1, 0, 1, 1, 0]),
            (try b.less(a), [0, 0, 0, 1, 1, 0]),
            (try a.equal(a.cast(to: dtype)), [1, 1, 1, 1, 1, 1]),
        ]
        for (result, expected) in cases {
            #expect(result.dtype == dtype)
            #expect(result.shape == [2, 3])
            #expect(result.doubles == expected)
        }
        // A scalar operand and a longer run, against a loop.
        let long = try Tensor(shape: [41], scalars: (0..<41).map { Double($0 % 7) }).cast(to: dtype)
        let three = Tensor(3.0).cast(to: dtype)
        #expect(try long.less(three).doubles == (0..<41).map { $0 % 7 < 3 ? 1.0 : 0.0 })
        #expect(try three.lessEqual(long).doubles == (0..<41).map { 3 <= $0 % 7 ? 1.0 : 0.0 })
        #expect(try long.equal(three).doubles == (0..<41).map { $0 % 7 == 3 ? 1.0 : 0.0 })
    }

    @Test func comparisonsWithNaN() throws {
        let x = Tensor([Float.nan, 1] as [Float]), y = Tensor([Float.nan, 1] as [Float])
        #expect(try x.equal(y).scalars(as: Float.self) == [0, 1])
        #expect(try x.notEqual(y).scalars(as: Float.self) == [1, 0])
        #expect(try x.lessEqual(y).scalars(as: Float.self) == [0, 1])
        #expect(try x.greaterEqual(y).scalars(as: Float.self) == [0, 1])
    }

    // MARK: - Large tensors (multi-threaded kernels)

    @Test func arithmeticLargeTensorsMatchLoops() throws {
        let n = 200_003
        let a = try Tensor.randomUniform(shape: [n], min: -2, max: 2, dtype: .float64, seed: 51)
        let b = try Tensor.randomUniform(shape: [n], min: 0.5, max: 2, dtype: .float64, seed: 52)
        let av = a.doubles, bv = b.doubles
        for (name, f, g) in arithmeticOps {
            let result = try f(a, b)
            var expected = [Double](repeating: 0, count: n)
            for i in 0..<n { expected[i] = g(av[i], bv[i]) }
            #expect(result.doubles == expected, "\(name)")
            // Scalar on either side (flat path with a zero stride).
            let s = Tensor(1.25)
            for i in 0..<n { expected[i] = g(av[i], 1.25) }
            #expect(try f(a, s).doubles == expected, "\(name) scalar rhs")
            for i in 0..<n { expected[i] = g(1.25, bv[i]) }
            #expect(try f(s, b).doubles == expected, "\(name) scalar lhs")
        }
        var expected = [Double](repeating: 0, count: n)
        for i in 0..<n { expected[i] = Swift.max(av[i], bv[i]) }
        #expect(try a.maximum(b).doubles == expected)
        for i in 0..<n { expected[i] = av[i] < bv[i] ? 1 : 0 }
        #expect(try a.less(b).doubles == expected)
        // float32 as well.
        let a32 = a.cast(to: .float32), b32 = b.cast(to: .float32)
        let a32v = try a32.scalars(as: Float.self), b32v = try b32.scalars(as: Float.self)
        var expected32 = [Float](repeating: 0, count: n)
        for i in 0..<n { expected32[i] = a32v[i] * b32v[i] }
        #expect(try (a32 * b32).scalars(as: Float.self) == expected32)
        // A large broadcast: [1000, 257] + [257].
        let m = try Tensor.randomUniform(shape: [1000, 257], min: -1, max: 1, dtype: .float64, seed: 53)
        let row = try Tensor.randomUniform(shape: [257], min: -1, max: 1, dtype: .float64, seed: 54)
        let mv = m.doubles, rv = row.doubles
        var expectedM = [Double](repeating: 0, count: mv.count)
        for i in 0..<1000 { for j in 0..<257 { expectedM[i * 257 + j] = mv[i * 257 + j] - rv[j] } }
        #expect(try (m - row).doubles == expectedM)
    }

    // MARK: - Errors

    @Test func arithmeticBroadcastErrors() throws {
        let a = try Tensor.zeros(shape: [2, 3]), b = try Tensor.zeros(shape: [4])
        let ops: [(String, (Tensor, Tensor) throws -> Tensor)] = [
            ("add", { try $0 + $1 }), ("subtract", { try $0 - $1 }), ("multiply", { try $0 * $1 }),
            ("divide", { try $0 / $1 }), ("pow", { try $0.pow($1) }), ("maximum", { try $0.maximum($1) }),
            ("minimum", { try $0.minimum($1) }), ("equal", { try $0.equal($1) }), ("notEqual", { try $0.notEqual($1) }),
            ("less", { try $0.less($1) }), ("lessEqual", { try $0.lessEqual($1) }), ("greater", { try $0.greater($1) }),
            ("greaterEqual", { try $0.greaterEqual($1) }),
        ]
        for (name, op) in ops {
            expectArithmeticError(
                .incompatibleShapes(operation: name, lhs: [2, 3], rhs: [4], reason: "cannot broadcast"),
                mentioning: [name, "[2, 3]", "[4]"]
            ) { try op(a, b) }
        }
        expectArithmeticError(
            .incompatibleShapes(operation: "add", lhs: [3, 1], rhs: [2, 4], reason: "cannot broadcast"),
            mentioning: ["add", "[3, 1]", "[2, 4]"]
        ) { try Tensor.zeros(shape: [3, 1]) + Tensor.zeros(shape: [2, 4]) }
        var c = a
        expectArithmeticError(
            .incompatibleShapes(operation: "add", lhs: [2, 3], rhs: [4], reason: "cannot broadcast"),
            mentioning: ["add"]
        ) { try c += b; return c }
    }

    @Test func arithmeticDTypeErrors() throws {
        let f32 = try Tensor.zeros(shape: [2, 3], dtype: .float32)
        let f64 = try Tensor.zeros(shape: [2, 3], dtype: .float64)
        let i64 = try Tensor.zeros(shape: [2, 3], dtype: .int64)
        expectArithmeticError(.dtypeMismatch(operation: "add", lhs: .float32, rhs: .float64),
                              mentioning: ["add", "float32", "float64"]) { try f32 + f64 }
        expectArithmeticError(.dtypeMismatch(operation: "multiply", lhs: .float64, rhs: .int64),
                              mentioning: ["multiply", "float64", "int64"]) { try f64 * i64 }
        expectArithmeticError(.dtypeMismatch(operation: "maximum", lhs: .int64, rhs: .float32),
                              mentioning: ["maximum", "int64", "float32"]) { try i64.maximum(f32) }
        expectArithmeticError(.dtypeMismatch(operation: "less", lhs: .float32, rhs: .int64),
                              mentioning: ["less", "float32", "int64"]) { try f32.less(i64) }
        // The dtype is checked before the shapes.
        expectArithmeticError(.dtypeMismatch(operation: "subtract", lhs: .float32, rhs: .float64),
                              mentioning: ["subtract"]) { try f32 - Tensor.zeros(shape: [4], dtype: .float64) }
        expectArithmeticError(.unsupportedDType(operation: "divide", dtype: .int64),
                              mentioning: ["divide", "int64"]) { try i64 / i64 }
        expectArithmeticError(.unsupportedDType(operation: "divide", dtype: .int64),
                              mentioning: ["divide", "int64"]) { try i64 / 2 }
        expectArithmeticError(.unsupportedDType(operation: "pow", dtype: .int64),
                              mentioning: ["pow", "int64"]) { try i64.pow(2) }
    }
}
