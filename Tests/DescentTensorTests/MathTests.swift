import DescentAutodiff
import DescentTensor
import Testing
#if canImport(Glibc)
import Glibc
#endif

// The element-wise functions of MathOps.swift: values against Glibc scalars in float32 and float64,
// finite-difference gradients, stability at large |x|, int64 support and errors.

// MARK: - Helpers

/// One unary function: its tensor form, a float64 reference, the reference's float32 form, and a domain
/// for value tests and one (inside the differentiable region) for gradient tests.
private struct MathFunction: Sendable {
    let name: String
    let apply: @Sendable (Tensor) throws -> Tensor
    let reference: @Sendable (Double) -> Double
    let reference32: @Sendable (Float) -> Float
    let domain: ClosedRange<Double>
    /// Values for gradient checks: `magnitude` in this range, with alternating signs when `alternate`.
    let gradientRange: ClosedRange<Double>
    let alternate: Bool
}

private let mathFunctions: [String: MathFunction] = {
    let list = [
        MathFunction(name: "abs", apply: { try $0.abs() }, reference: { Glibc.fabs($0) }, reference32: { Glibc.fabsf($0) },
                     domain: -3...3, gradientRange: 0.2...2, alternate: true),
        MathFunction(name: "sign", apply: { try $0.sign() }, reference: { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) },
                     reference32: { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) },
                     domain: -3...3, gradientRange: 0.2...2, alternate: true),
        MathFunction(name: "exp", apply: { try $0.exp() }, reference: { Glibc.exp($0) }, reference32: { Glibc.expf($0) },
                     domain: -10...10, gradientRange: -2...2, alternate: false),
        MathFunction(name: "log", apply: { try $0.log() }, reference: { Glibc.log($0) }, reference32: { Glibc.logf($0) },
                     domain: 0.05...20, gradientRange: 0.3...3, alternate: false),
        MathFunction(name: "log1p", apply: { try $0.log1p() }, reference: { Glibc.log1p($0) },
                     reference32: { Glibc.log1pf($0) }, domain: -0.9...5, gradientRange: -0.5...2, alternate: false),
        MathFunction(name: "expm1", apply: { try $0.expm1() }, reference: { Glibc.expm1($0) },
                     reference32: { Glibc.expm1f($0) }, domain: -3...3, gradientRange: -2...2, alternate: false),
        MathFunction(name: "sqrt", apply: { try $0.sqrt() }, reference: { Glibc.sqrt($0) }, reference32: { Glibc.sqrtf($0) },
                     domain: 0...10, gradientRange: 0.3...3, alternate: false),
        MathFunction(name: "rsqrt", apply: { try $0.rsqrt() }, reference: { 1 / Glibc.sqrt($0) },
                     reference32: { 1 / Glibc.sqrtf($0) }, domain: 0.05...10, gradientRange: 0.3...3, alternate: false),
        MathFunction(name: "squared", apply: { try $0.squared() }, reference: { $0 * $0 }, reference32: { $0 * $0 },
                     domain: -4...4, gradientRange: -2...2, alternate: false),
        MathFunction(name: "reciprocal", apply: { try $0.reciprocal() }, reference: { 1 / $0 }, reference32: { 1 / $0 },
                     domain: 0.1...5, gradientRange: 0.4...2, alternate: true),
        MathFunction(name: "tanh", apply: { try $0.tanh() }, reference: { Glibc.tanh($0) }, reference32: { Glibc.tanhf($0) },
                     domain: -5...5, gradientRange: -2...2, alternate: false),
        MathFunction(name: "sigmoid", apply: { try $0.sigmoid() }, reference: { 1 / (1 + Glibc.exp(-$0)) },
                     reference32: { Float(1 / (1 + Glibc.exp(-Double($0)))) },
                     domain: -20...20, gradientRange: -3...3, alternate: false),
        MathFunction(name: "relu", apply: { try $0.relu() }, reference: { Swift.max($0, 0) }, reference32: { Swift.max($0, 0) },
                     domain: -3...3, gradientRange: 0.2...2, alternate: true),
        MathFunction(name: "softplus", apply: { try $0.softplus() }, reference: { Glibc.log1p(Glibc.exp($0)) },
                     reference32: { Float(Glibc.log1p(Glibc.exp(Double($0)))) },
                     domain: -20...20, gradientRange: -3...3, alternate: false),
    ]
    return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
}()

private let mathFunctionNames = [
    "abs", "sign", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "squared", "reciprocal", "tanh", "sigmoid",
    "relu", "softplus",
]

/// `count` evenly spaced points of `range`, both ends included; with `alternate`, every other one negated.
private func mathGrid(_ range: ClosedRange<Double>, count: Int, alternate: Bool = false) -> [Double] {
    (0..<count).map { i in
        let x = range.lowerBound + (range.upperBound - range.lowerBound) * Double(i) / Double(count - 1)
        return alternate && i % 2 == 1 ? -x : x
    }
}

/// Expects `|actual - expected| <= relative * |expected|` element-wise (exact for zeros, equal infinities
/// and NaN where NaN is expected).
private func expectMathClose(
    _ actual: [Double], _ expected: [Double], relative: Double, _ comment: String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, sourceLocation: sourceLocation)
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let ok = e.isNaN ? a.isNaN : (a == e || Swift.abs(a - e) <= relative * Swift.abs(e))
        if !ok {
            Issue.record("\(comment) element \(i): \(a) vs expected \(e)", sourceLocation: sourceLocation)
            return
        }
    }
}

/// Runs `body`, expects exactly `expected`, and checks the message mentions every string.
private func expectMathError(
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

/// The tape gradient of `sum(f(x))` with respect to `x`.
private func mathGradient(_ x: Tensor, _ f: (Tensor) throws -> Tensor) throws -> Tensor {
    let tape = GradientTape()
    let watched = tape.watch(x)
    let y = try tape.record { try f(watched).sum() }
    return try #require(try tape.gradient(of: y, wrt: watched)).denseValue
}

@Suite struct MathTests {
    // MARK: - Values

    /// 37 points (two SIMD vectors of float32 plus a scalar tail), shaped [37] and [1, 37].
    @Test(arguments: mathFunctionNames)
    func valuesMatchGlibc(_ name: String) throws {
        let f = try #require(mathFunctions[name])
        let xs = mathGrid(f.domain, count: 37, alternate: name == "reciprocal")
        // float64
        let x64 = try Tensor(shape: [1, 37], scalars: xs)
        let y64 = try f.apply(x64)
        #expect(y64.dtype == .float64)
        #expect(y64.shape == [1, 37])
        expectMathClose(y64.doubles, xs.map(f.reference), relative: 1e-14, "\(name) float64")
        // float32, against the float32 libm function on the same float inputs
        let xs32 = xs.map { Float($0) }
        let y32 = try f.apply(Tensor(xs32))
        #expect(y32.dtype == .float32)
        #expect(y32.shape == [37])
        expectMathClose(y32.doubles, xs32.map { Double(f.reference32($0)) }, relative: 1e-6, "\(name) float32")
        // A rank-0 tensor goes through the same kernels.
        let scalar = try f.apply(Tensor(xs[5]))
        #expect(scalar.shape == [])
        expectMathClose(scalar.doubles, [f.reference(xs[5])], relative: 1e-14, "\(name) scalar")
    }

    @Test func accurateNearZero() throws {
        let tiny = Tensor([1e-10, -1e-12, 3e-9] as [Double])
        expectMathClose(try tiny.log1p().doubles, [Glibc.log1p(1e-10), Glibc.log1p(-1e-12), Glibc.log1p(3e-9)],
                        relative: 1e-14)
        expectMathClose(try tiny.expm1().doubles, [Glibc.expm1(1e-10), Glibc.expm1(-1e-12), Glibc.expm1(3e-9)],
                        relative: 1e-14)
        // The naive forms lose most digits here.
        #expect(try tiny.log1p().doubles[0] != (tiny + 1).log().doubles[0])
        let tiny32 = Tensor([1e-7, -1e-8] as [Float])
        expectMathClose(try tiny32.log1p().doubles, [Double(Glibc.log1pf(1e-7)), Double(Glibc.log1pf(-1e-8))],
                        relative: 1e-6)
        expectMathClose(try tiny32.expm1().doubles, [Double(Glibc.expm1f(1e-7)), Double(Glibc.expm1f(-1e-8))],
                        relative: 1e-6)
    }

    @Test func ieeeEdgeValues() throws {
        let x = Tensor([0, -1, .infinity] as [Double])
        #expect(try x.log().doubles[0] == -.infinity)
        #expect(try x.log().doubles[1].isNaN)
        #expect(try x.sqrt().doubles[1].isNaN)
        #expect(try x.rsqrt().doubles[0] == .infinity)
        #expect(try x.reciprocal().doubles == [.infinity, -1, 0])
        #expect(try x.exp().doubles == [1, Glibc.exp(-1), .infinity])
        #expect(try x.tanh().doubles == [0, Glibc.tanh(-1), 1])
        #expect(try x.sigmoid().doubles[2] == 1)
        #expect(try x.softplus().doubles[2] == .infinity)
    }

    @Test func signAndNaN() throws {
        // 17 values: one float32 vector and a tail.
        var values: [Float] = [-2, -0.0, 0, 3, .nan, -.infinity, .infinity, 1e-30, -1e-30]
        values += [Float](repeating: .nan, count: 8)
        let s = try Tensor(values).sign().scalars(as: Float.self)
        #expect(Array(s.prefix(4)) == [-1, 0, 0, 1])
        #expect(s[4].isNaN)
        #expect(Array(s[5...8]) == [-1, 1, 1, -1])
        #expect(s[9...].allSatisfy { $0.isNaN })
        #expect(try Tensor([.nan, -1] as [Double]).abs().doubles[0].isNaN)
        #expect(try Tensor([.nan, -1] as [Double]).relu().doubles[0].isNaN)
        #expect(try Tensor([Float](repeating: .nan, count: 20)).relu().doubles.allSatisfy { $0.isNaN })
    }

    /// abs must clear the sign bit of -0 in the SIMD body as in the scalar tail (1 / abs(-0) is +inf).
    @Test func absOfNegativeZeroIsPositiveZero() throws {
        let f = try Tensor([Float](repeating: -0.0, count: 37)).abs().scalars(as: Float.self)
        #expect(f.allSatisfy { $0 == 0 && $0.sign == .plus }, "\(f.map { $0.sign })")
        let d = try Tensor([Double](repeating: -0.0, count: 19)).abs().scalars(as: Double.self)
        #expect(d.allSatisfy { $0 == 0 && $0.sign == .plus }, "\(d.map { $0.sign })")
        #expect(try Tensor([Float](repeating: -0.0, count: 16)).abs().reciprocal().doubles.allSatisfy { $0 == .infinity })
    }

    // MARK: - Stability

    @Test(arguments: [DType.float32, .float64])
    func sigmoidAndSoftplusAreStableAtLargeMagnitudes(_ dtype: DType) throws {
        let x = Tensor([-1000, -100, -30, 30, 100, 1000] as [Double]).cast(to: dtype)
        let sigmoid = try x.sigmoid().doubles
        let softplus = try x.softplus().doubles
        #expect(sigmoid.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 }, "\(sigmoid)")
        #expect(softplus.allSatisfy { $0.isFinite && $0 >= 0 }, "\(softplus)")
        #expect(sigmoid[4] == 1 && sigmoid[5] == 1)
        #expect(sigmoid[0] == 0)
        #expect(softplus[4] == 100 && softplus[5] == 1000)
        #expect(softplus[0] == 0)
        let relative = dtype == .float32 ? 1e-6 : 1e-14
        // sigmoid(-30) = e^-30 / (1 + e^-30), softplus(±30) = log1p(e^±30): far from the naive form's range.
        expectMathClose([sigmoid[2], softplus[2], softplus[3]],
                        [Glibc.exp(-30) / (1 + Glibc.exp(-30)), Glibc.log1p(Glibc.exp(-30)), 30 + Glibc.log1p(Glibc.exp(-30))],
                        relative: relative)
        if dtype == .float64 {
            // e^-100 is a normal double: both keep full relative accuracy.
            expectMathClose([sigmoid[1], softplus[1]], [Glibc.exp(-100.0), Glibc.exp(-100.0)], relative: 1e-14)
        }
        // Gradients stay finite: softplus' = sigmoid, sigmoid' = y (1 - y).
        let gSoftplus = try mathGradient(x) { try $0.softplus() }.doubles
        #expect(gSoftplus.allSatisfy { $0.isFinite })
        #expect(gSoftplus[5] == 1 && gSoftplus[0] == 0)
        let gSigmoid = try mathGradient(x) { try $0.sigmoid() }.doubles
        #expect(gSigmoid.allSatisfy { $0.isFinite && $0 >= 0 }, "\(gSigmoid)")
        #expect(gSigmoid[5] == 0 && gSigmoid[0] == 0)
    }

    @Test func tanhAndExpAtLargeMagnitudes() throws {
        let x = Tensor([-100, 100] as [Float])
        #expect(try x.tanh().scalars(as: Float.self) == [-1, 1])
        #expect(try mathGradient(x) { try $0.tanh() }.scalars(as: Float.self) == [0, 0])
        #expect(try Tensor([100] as [Float]).exp().scalars(as: Float.self) == [.infinity])
    }

    // MARK: - Gradients

    @Test(arguments: mathFunctionNames)
    func gradientsMatchFiniteDifferences(_ name: String) throws {
        let f = try #require(mathFunctions[name])
        let grid = mathGrid(f.gradientRange, count: 12, alternate: f.alternate)
        try checkGradient([try Tensor(shape: [3, 4], scalars: grid)]) { try f.apply($0[0]) }
        // Long enough for the vector kernels, random order.
        var x = try sample([2, 19], seed: 61, low: 0, high: 1).doubles.enumerated().map { i, u in
            let magnitude = f.gradientRange.lowerBound + u * (f.gradientRange.upperBound - f.gradientRange.lowerBound)
            return f.alternate && i % 2 == 1 ? -magnitude : magnitude
        }
        x[0] = grid[0]
        try checkGradient([try Tensor(shape: [2, 19], scalars: x)]) { try f.apply($0[0]) }
    }

    @Test func analyticGradients() throws {
        let x = Tensor([-2, -0.5, 0.5, 2] as [Double])
        #expect(try mathGradient(x) { try $0.abs() }.doubles == [-1, -1, 1, 1])
        #expect(try mathGradient(x) { try $0.sign() }.doubles == [0, 0, 0, 0])
        #expect(try mathGradient(x) { try $0.relu() }.doubles == [0, 0, 1, 1])
        #expect(try mathGradient(x) { try $0.squared() }.doubles == [-4, -1, 1, 4])
        #expect(try mathGradient(x) { try $0.reciprocal() }.doubles == [-0.25, -4, -4, -0.25])
        let p = Tensor([0.25, 4] as [Double])
        #expect(try mathGradient(p) { try $0.sqrt() }.doubles == [1, 0.25])
        #expect(try mathGradient(p) { try $0.rsqrt() }.doubles == [-4, -1.0 / 16])
        #expect(try mathGradient(p) { try $0.log() }.doubles == [4, 0.25])
        // Gradient at the kink: abs and relu give 0 at 0, as TensorFlow.
        let zero = Tensor([0, 0] as [Double])
        #expect(try mathGradient(zero) { try $0.abs() }.doubles == [0, 0])
        #expect(try mathGradient(zero) { try $0.relu() }.doubles == [0, 0])
        // float32 gradients keep the dtype.
        let g32 = try mathGradient(Tensor([1, 2] as [Float])) { try $0.exp() }
        #expect(g32.dtype == .float32)
        #expect(try g32.scalars(as: Float.self) == [Glibc.expf(1), Glibc.expf(2)])
    }

    @Test func chainedFunctionsGradient() throws {
        try checkGradient([try sample([3, 5], seed: 62)]) { x in
            try (x[0].tanh() * x[0].sigmoid() + x[0].squared().log1p()).softplus().expm1()
        }
        try checkGradient([try sample([3, 5], seed: 63, low: 0.5, high: 2)]) { x in
            try x[0].sqrt().reciprocal() * x[0].rsqrt().log()
        }
    }

    // MARK: - int64

    @Test func int64SupportedFunctions() throws {
        let x = Tensor([-3, 0, 7, Int64.max] as [Int64])
        #expect(try (-x).scalars(as: Int64.self) == [3, 0, -7, -Int64.max])
        #expect(try x.abs().scalars(as: Int64.self) == [3, 0, 7, Int64.max])
        #expect(try x.sign().scalars(as: Int64.self) == [-1, 0, 1, 1])
        #expect(try Tensor([-3, 0, 7, 3_000_000_000] as [Int64]).squared().scalars(as: Int64.self)
                == [9, 0, 49, 9_000_000_000_000_000_000])
        #expect(try x.abs().dtype == .int64)
        // Large int64 tensors (parallel scalar kernel) against a loop.
        let n = 100_003
        let big = Tensor((0..<n).map { Int64($0) - 50_000 })
        #expect(try big.abs().scalars(as: Int64.self) == (0..<n).map { Int64(Swift.abs($0 - 50_000)) })
        #expect(try big.sign().scalars(as: Int64.self) == (0..<n).map { Int64(($0 - 50_000).signum()) })
    }

    @Test func int64UnsupportedFunctions() throws {
        let x = Tensor([1, 2, 3] as [Int64])
        let cases: [(String, (Tensor) throws -> Tensor)] = [
            ("exp", { try $0.exp() }), ("log", { try $0.log() }), ("log1p", { try $0.log1p() }),
            ("expm1", { try $0.expm1() }), ("sqrt", { try $0.sqrt() }), ("rsqrt", { try $0.rsqrt() }),
            ("reciprocal", { try $0.reciprocal() }), ("tanh", { try $0.tanh() }), ("sigmoid", { try $0.sigmoid() }),
            ("relu", { try $0.relu() }), ("softplus", { try $0.softplus() }),
        ]
        for (name, f) in cases {
            expectMathError(.unsupportedDType(operation: name, dtype: .int64), mentioning: [name, "int64"]) { try f(x) }
        }
    }

    // MARK: - Large tensors (multi-threaded kernels)

    @Test func largeUnaryMatchesLoops() throws {
        let n = 200_003
        let x = try Tensor.randomUniform(shape: [n], min: -3, max: 3, dtype: .float64, seed: 64)
        let xs = x.doubles
        var expected = [Double](repeating: 0, count: n)
        for i in 0..<n { expected[i] = Swift.abs(xs[i]) }
        #expect(try x.abs().doubles == expected)
        for i in 0..<n { expected[i] = -xs[i] }
        #expect((-x).doubles == expected)
        for i in 0..<n { expected[i] = xs[i] * xs[i] }
        #expect(try x.squared().doubles == expected)
        for i in 0..<n { expected[i] = Glibc.exp(xs[i]) }
        #expect(try x.exp().doubles == expected)
        for i in 0..<n { expected[i] = Glibc.tanh(xs[i]) }
        #expect(try x.tanh().doubles == expected)
        // float32: a vector kernel (sqrt) and a transcendental one (exp).
        let x32 = try x.abs().cast(to: .float32)
        let xs32 = try x32.scalars(as: Float.self)
        var expected32 = [Float](repeating: 0, count: n)
        for i in 0..<n { expected32[i] = Glibc.sqrtf(xs32[i]) }
        #expect(try x32.sqrt().scalars(as: Float.self) == expected32)
        for i in 0..<n { expected32[i] = Glibc.expf(xs32[i]) }
        #expect(try x32.exp().scalars(as: Float.self) == expected32)
        let sig = try x.cast(to: .float32).sigmoid().doubles
        expectMathClose(sig, xs.map { 1 / (1 + Glibc.exp(-Double(Float($0)))) }, relative: 1e-6, "sigmoid")
    }
}
